"""``--variable_update`` modes on several devices and several workers, in real engine subprocesses.

With ``--device=cpu --num_gpus=2`` the host is split into two logical CPU devices. The synthetic global batch is drawn
from the seed and sliced per replica, so 2 devices x batch 4 see exactly what 1 device sees at batch 8: averaged
gradients (parameter_server, replicated, collective all-reduce) must give the same losses; independent updates must
not. The runs start together on a small pool; each test waits for its own.
"""

from __future__ import annotations

import math
import socket
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from enginerun import REPO, Run, read_result
from enginerun import clean_env as _env

from cpubench.results.logparse import parse_log

ENGINE = [sys.executable, "-m", "tf_cnn_benchmarks"]
STEPS = ["--model=lenet", "--seed=1234", "--display_every=1", "--num_batches=3"]
TIMEOUT = 180


def _start(args: list[str], out: Path) -> tuple[subprocess.Popen, list[str], Path]:
    out.mkdir(parents=True, exist_ok=True)
    result = out / "result.json"
    argv = [*ENGINE, *args, f"--result_json={result}"]
    p = subprocess.Popen(argv, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p, argv, result


def _finish(started: tuple[subprocess.Popen, list[str], Path], t0: float) -> Run:
    p, argv, result = started
    try:
        stdout, stderr = p.communicate(timeout=max(1.0, TIMEOUT - (time.monotonic() - t0)))
    except subprocess.TimeoutExpired:
        p.kill()
        stdout, stderr = p.communicate()
        pytest.fail(f"engine hung for {TIMEOUT} s: {argv}\n{stdout[-2000:]}\n{stderr[-2000:]}")
    wall = time.monotonic() - t0
    return Run(argv, p.returncode, stdout, stderr, wall, read_result(result))


def run_engine(args: list[str], out: Path) -> Run:
    t0 = time.monotonic()
    return _finish(_start(args, out), t0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_workers(common: list[str], out: Path) -> list[Run]:
    """Two workers on 127.0.0.1, started together; both must end within TIMEOUT."""
    hosts = f"127.0.0.1:{_free_port()},127.0.0.1:{_free_port()}"
    args = [*common, "--variable_update=collective_all_reduce", "--job_name=worker", f"--worker_hosts={hosts}"]
    t0 = time.monotonic()
    started = [_start([*args, f"--task_index={i}"], out / f"task{i}") for i in (0, 1)]
    try:
        return [_finish(s, t0) for s in started]
    finally:
        for p, _, _ in started:
            if p.poll() is None:
                p.kill()
                p.wait()


SPLIT = [*STEPS, "--num_warmup_batches=0", "--batch_size=4", "--num_gpus=2"]
WORKER = ["--model=lenet", "--seed=1234", "--batch_size=4", "--num_batches=3", "--display_every=1"]

RUNS: dict[str, list[str]] = {
    "single": [*STEPS, "--num_warmup_batches=0", "--batch_size=8", "--num_gpus=1"],
    "single_warm": [*STEPS, "--num_warmup_batches=1", "--batch_size=8", "--num_gpus=1"],
    "parameter_server": [*SPLIT, "--variable_update=parameter_server"],
    "replicated": [*SPLIT, "--variable_update=replicated"],
    "independent": [*SPLIT, "--variable_update=independent"],
    "nccl_spec": [*SPLIT, "--device=cpu", "--variable_update=replicated", "--all_reduce_spec=nccl"],
    "use_nccl": [*SPLIT, "--device=cpu", "--variable_update=replicated", "--use_nccl=true"],
    "ps_hosts": [
        *WORKER,
        "--variable_update=distributed_replicated",
        "--job_name=worker",
        "--worker_hosts=127.0.0.1:1,127.0.0.1:2",
        "--ps_hosts=127.0.0.1:3",
    ],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Future]:
    base = tmp_path_factory.mktemp("strategy_runs")
    pool = ThreadPoolExecutor(max_workers=3)
    futures: dict[str, Future] = {
        # The two workers first: they are one job of two processes.
        "workers": pool.submit(run_workers, [*WORKER, "--num_warmup_batches=1"], base / "workers"),
    }
    futures.update({name: pool.submit(run_engine, args, base / name) for name, args in RUNS.items()})
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


def ok(runs: dict[str, Future], name: str) -> Run:
    run = runs[name].result()
    assert run.rc == 0, run.show()
    assert run.result is not None and run.result.status == "ok", run.show()
    assert "total images/sec" in run.stdout
    return run


def assert_same_losses(a: list[tuple[int, float]], b: list[tuple[int, float]]) -> None:
    assert [s for s, _ in a] == [s for s, _ in b]
    for (step, x), (_, y) in zip(a, b, strict=True):
        assert x == pytest.approx(y, rel=1e-4), f"step {step}: {x} != {y}"


# -- 1. one host, two devices ---------------------------------------------------------------------------------------
def test_single_device_baseline(runs):
    run = ok(runs, "single")
    losses = run.losses()
    assert [s for s, _ in losses] == [1, 2, 3]
    assert all(math.isfinite(x) for _, x in losses)
    assert losses[0][1] != losses[-1][1]  # it trains, so the comparisons below compare something
    assert parse_log(run.stdout).devices == ["/cpu:0"]


@pytest.mark.parametrize("mode", ["parameter_server", "replicated"])
def test_aggregated_modes_equal_one_device_at_twice_the_batch(runs, mode):
    run = ok(runs, mode)
    assert_same_losses(run.losses(), ok(runs, "single").losses())


@pytest.mark.parametrize(
    "mode, all_reduce", [("parameter_server", None), ("replicated", "reduce_to_one_device"), ("independent", None)]
)
def test_two_device_header_and_result(runs, mode, all_reduce):
    run = ok(runs, mode)
    log = parse_log(run.stdout)
    assert log.devices == ["/cpu:0", "/cpu:1"]
    assert run.stdout.splitlines().count("Devices:     ['/cpu:0', '/cpu:1']") == 1
    assert log.variable_update == mode
    assert log.all_reduce == all_reduce
    assert (log.batch_size_global, log.batch_size_per_device) == (8, 4)
    r = run.result
    assert r.details["variables"] == mode
    assert r.details["all_reduce"] == all_reduce
    assert r.num_devices == 2
    assert r.samples.global_batch == 8 and r.batch_size == 4
    assert r.devices == ["/cpu:0", "/cpu:1"]


def test_independent_drifts_after_first_step(runs):
    ind = ok(runs, "independent").losses()
    single = ok(runs, "single").losses()
    assert ind[0][1] == pytest.approx(single[0][1], rel=1e-4)  # same weights, same batch: same first loss
    for (step, x), (_, y) in zip(ind[1:], single[1:], strict=True):
        assert x != pytest.approx(y, rel=1e-3), f"step {step}: independent updates gave the averaged loss {y}"


# -- 2. NCCL on CPU -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["nccl_spec", "use_nccl"])
def test_nccl_on_cpu_is_a_clear_error(runs, name):
    run = runs[name].result()
    assert run.rc > 0, run.show()
    lines = run.error_lines()
    assert len(lines) == 1, run.show()
    assert "NCCL" in lines[0] and "--device=gpu" in lines[0] and "drop it" in lines[0]
    assert "total images/sec" not in run.stdout
    assert run.result is not None and run.result.status == "failed"
    assert "NCCL" in run.result.reason


# -- 3. two workers -------------------------------------------------------------------------------------------------
def test_two_workers_match_one_process(runs):
    workers = runs["workers"].result()
    for w in workers:
        assert w.rc == 0, w.show()
        assert w.result is not None and w.result.status == "ok", w.show()
    a, b = (w.losses() for w in workers)
    assert [s for s, _ in a] == [1, 2, 3]
    assert_same_losses(a, b)
    # Both ran one warm-up step before the timed ones, as did this single process at the global batch of 8.
    assert_same_losses(a, ok(runs, "single_warm").losses())
    # ... which is the single run without warm-up shifted by one step.
    single = dict(ok(runs, "single").losses())
    for step, loss in a[:2]:
        assert loss == pytest.approx(single[step + 1], rel=1e-4)


def test_two_workers_header_and_result(runs):
    for i, w in enumerate(runs["workers"].result()):
        assert w.rc == 0, w.show()
        log = parse_log(w.stdout)
        assert (log.batch_size_global, log.batch_size_per_device) == (8, 4)
        assert log.variable_update == "collective_all_reduce"
        assert len(log.devices) == 2
        assert log.complete
        r = w.result
        assert r.details["num_workers"] == 2 and r.num_devices == 2 and r.samples.global_batch == 8
        assert r.details["variables"] == "collective_all_reduce"
        assert r.details["flags"]["task_index"] == i


# -- 4. a peer that never comes -------------------------------------------------------------------------------------
def test_lonely_worker_fails_within_timeout(tmp_path):
    hosts = f"127.0.0.1:{_free_port()},127.0.0.1:{_free_port()}"
    args = [
        *WORKER,
        "--num_warmup_batches=1",
        "--variable_update=collective_all_reduce",
        "--job_name=worker",
        f"--worker_hosts={hosts}",
        "--task_index=0",
        "--cluster_timeout=5",
    ]
    run = run_engine(args, tmp_path)
    assert run.rc != 0, run.show()
    assert run.wall < 30, f"took {run.wall:.0f} s\n{run.show()}"
    lines = run.error_lines()
    assert len(lines) == 1, run.show()
    assert "did not come together" in lines[0] and hosts in lines[0] and "--cluster_timeout" in lines[0]
    assert run.result is not None and run.result.status == "failed", run.show()
    assert "did not come together" in run.result.reason


# -- 5. parameter-server tasks --------------------------------------------------------------------------------------
def test_distributed_replicated_with_ps_hosts_is_a_clear_error(runs):
    run = runs["ps_hosts"].result()
    assert run.rc > 0, run.show()
    lines = run.error_lines()
    assert len(lines) == 1, run.show()
    assert "parameter-server tasks are not used" in lines[0] and "--ps_hosts" in lines[0]
    assert run.result is not None and run.result.status == "failed"
    assert "--ps_hosts" in run.result.reason
