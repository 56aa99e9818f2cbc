"""``cpubench run`` end to end, in real subprocesses with real files.

Most tests drive a fake engine (a small Python script, via ``CPUBENCH_ENGINE``) whose behaviour depends on the model
name, so crashes, hangs and slow runs are deterministic and fast. One test runs the real engine on the trivial model,
kills the runner with SIGKILL mid-sweep and resumes.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fakeengine import ROOT, calls, cpubench_run, pid_alive, records, wait_for, write_config

from cpubench import cli
from cpubench.execution import executor
from cpubench.host import locks
from cpubench.render import report
from cpubench.results import store
from cpubench.sweep import session as runner
from tf_cnn_benchmarks.record import RunRecord

RECORD_KEYS = (
    "schema", "host_id", "setting", "model", "batch_size", "num_devices", "repeat", "status", "images_per_sec",
    "step_times", "warmup_times", "latency_ms", "reason", "started", "duration", "load_avg_before", "run_hash",
    "engine", "params", "config_name", "log", "timings", "command", "exit_code", "signal", "thread_env",
    "env_removed", "cpus", "threads", "framework", "framework_version", "data_generated",
)  # fmt: skip
PARAM_KEYS = {
    "data", "variable_update", "nccl", "distortions", "forward_only", "device", "num_devices", "num_intra_threads",
    "num_inter_threads", "precision", "xla_compile", "framework", "execution", "placement", "memory", "logical_gpus",
    "allocator",
}  # fmt: skip


def test_crash_timeout_and_ok_are_recorded_with_reasons(tmp_path: Path, env: dict[str, str]) -> None:
    models = {"trivial": 8, "lenet": 16, "alexnet": 4, "vgg16": 2, "googlenet": 4}
    cfg = write_config(tmp_path / "c.yaml", models, timeout=3)
    out = tmp_path / "data"
    t0 = time.monotonic()
    p = cpubench_run(["--config", str(cfg), "--out", str(out), "--host-id", "h1"], env, tmp_path)
    assert time.monotonic() - t0 < 60
    assert p.returncode == 1, p.stderr
    recs = {r["model"]: r for r in records(out)}
    assert set(recs) == set(models)
    for r in recs.values():
        assert all(k in r for k in RECORD_KEYS), sorted(r)
        assert r["schema"] == store.RUN_SCHEMA and r["source"] == "run"
        assert set(r["params"]) == PARAM_KEYS
        assert r["setting"] == "syn-replicated-1cpus" and r["config_name"] == "test"
        assert (out / "h1" / r["log"]).is_file()
        assert r["command"][-1].startswith("--result_json=") and "--model=" + r["model"] in r["command"]
        assert len(r["load_avg_before"]) == 3 and r["duration"] > 0
        if r["status"] != "ok":
            assert r["images_per_sec"] is None and r["step_times"] == [] and "\n" not in r["reason"]

    ok = recs["trivial"]
    assert ok["status"] == "ok" and ok["images_per_sec"] == 108.0 and ok["reason"] is None
    assert ok["exit_code"] == 0 and ok["signal"] is None and ok["engine"]["version"] == "fake-1"
    assert ok["timings"] == {"import": 0.01, "build": 0.02, "warmup": 0.03, "measured": 0.04}
    assert ok["log"] == "logs/syn-replicated-1cpus/trivial-bs8-r0.log"

    oom = recs["lenet"]
    assert oom["status"] == "failed" and oom["exit_code"] == 1
    assert oom["reason"].startswith("exit code 1: out of memory")

    hang = recs["alexnet"]
    assert hang["status"] == "timeout" and hang["reason"] == "timeout after 3 s" and hang["signal"] == "SIGKILL"
    assert 3 <= hang["duration"] < 20
    # The hung engine was killed with its process group, not left running.
    hang_pid = next(c["pid"] for c in calls(tmp_path) if c["key"].endswith("/alexnet/4"))
    assert not pid_alive(hang_pid)

    segv = recs["vgg16"]
    assert segv["status"] == "failed" and segv["signal"] == "SIGSEGV" and segv["exit_code"] is None
    assert segv["reason"] == "killed by SIGSEGV: Fatal Python error: Segmentation fault"

    zero = recs["googlenet"]
    assert zero["status"] == "failed" and zero["images_per_sec"] is None
    assert "not a valid record: images_per_sec: an ok run needs images/sec > 0, got 0.0" in zero["reason"]

    # The full stdout and stderr are in the log.
    log = (out / "h1" / oom["log"]).read_text()
    assert "Model:       lenet" in log and "ResourceExhaustedError: OOM" in log
    # The closing lines: counts, overhead breakdown, where the results are.
    assert "1 ok, 3 failed, 1 timeout" in p.stdout
    assert "overhead" in p.stdout and "measured 0.0 s" in p.stdout
    assert p.stdout.strip().splitlines()[-1] == f"results: {out / 'h1'}"
    # Not a tty: a plain line per run (no live line rewritten with carriage returns).
    assert "[1/5] syn-replicated-1cpus trivial bs8 r0: ok 108.00 img/s" in p.stdout and "\r" not in p.stdout
    host = store.read_host(out / "h1")
    assert host.host_id == "h1" and host.schema == store.HOST_SCHEMA and not host.extra


def test_resume_skips_done_and_retry_failed_reruns_only_failures(tmp_path: Path, env: dict[str, str]) -> None:
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8, "lenet": 16}, repeats=2)
    out = tmp_path / "data"
    args = ["--config", str(cfg), "--out", str(out), "--host-id", "h1", "--progress", "always"]
    first = cpubench_run(args, env, tmp_path)
    assert first.returncode == 1
    assert "[1/4] syn-replicated-1cpus trivial bs8 r0: ok 108.00 img/s" in first.stdout
    assert "[2/4] syn-replicated-1cpus lenet bs16 r0: FAILED (exit code 1: out of memory" in first.stdout
    assert "3 left, ETA" in first.stdout
    n_calls = len(calls(tmp_path))
    assert n_calls == 6  # 2 ok (start+done) + 2 failed (start only)

    again = cpubench_run(args, env, tmp_path)
    assert again.returncode == 0 and "0 ok, 0 failed, 0 timeout" in again.stdout and "4 already done" in again.stdout
    assert len(calls(tmp_path)) == n_calls

    retry = cpubench_run([*args, "--retry-failed"], env, tmp_path)
    assert retry.returncode == 1
    new = calls(tmp_path)[n_calls:]
    assert [c["key"].split("/")[2] for c in new] == ["lenet", "lenet"]
    recs = records(out)
    assert Counter((r["model"], r["repeat"], r["status"]) for r in recs) == Counter(
        {("trivial", 0, "ok"): 1, ("trivial", 1, "ok"): 1, ("lenet", 0, "failed"): 2, ("lenet", 1, "failed"): 2}
    )


def test_changed_config_reruns_only_what_changed(tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "data"
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8})
    args = ["--config", str(cfg), "--out", str(out), "--host-id", "h1"]
    assert cpubench_run(args, env, tmp_path).returncode == 0
    write_config(cfg, {"trivial": 8, "googlenet": 4}, timeout=60, name="renamed")  # new model; timeout/name differ
    cpubench_run(args, env, tmp_path)
    assert [c["key"].split("/")[2] for c in calls(tmp_path) if c["event"] == "start"] == ["trivial", "googlenet"]
    write_config(cfg, {"trivial": 8}, num_batches=5)  # the measurement changes: rerun
    assert cpubench_run(args, env, tmp_path).returncode == 0
    starts = [c for c in calls(tmp_path) if c["event"] == "start"]
    assert len(starts) == 3 and "--num_batches=5" in starts[-1]["argv"]
    hashes = {r["run_hash"] for r in records(out) if r["model"] == "trivial"}
    assert len(hashes) == 2


def test_sigkill_mid_sweep_loses_only_the_run_in_flight(tmp_path: Path, env: dict[str, str]) -> None:
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8}, repeats=3,
                       matrix={"variable_update": ["parameter_server", "replicated"]})  # fmt: skip
    out = tmp_path / "data"
    args = ["--config", str(cfg), "--out", str(out), "--host-id", "h1"]
    env = {**env, "FAKE_SLEEP": "0.4"}
    proc = subprocess.Popen([sys.executable, "-m", "cpubench", "run", *args], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        # Kill while the third run is in flight (two recorded, a third engine started).
        wait_for(lambda: len(records(out)) >= 2 and sum(c["event"] == "start" for c in calls(tmp_path)) >= 3, 60,
                 "two records and a third run started")  # fmt: skip
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    before = records(out)
    assert len(before) in (2, 3)
    in_flight = [c for c in calls(tmp_path) if c["event"] == "start"][-1]
    # The engine in flight dies with the runner (no orphan measuring under the next run).
    wait_for(lambda: not pid_alive(in_flight["pid"]), 10, "the orphaned engine to die")

    # Simulate the worst moment: the kill landed mid-write of a record.
    with open(out / "h1" / store.RUNS_FILE, "a") as f:
        f.write('{"schema": 1, "host_id": "h1", "setting": "syn-repl')
    resume = cpubench_run(args, env, tmp_path)
    assert resume.returncode == 0, resume.stderr
    assert "dropped a half-written record" in resume.stderr
    recs = records(out)
    assert len(recs) == 6 and all(r["status"] == "ok" for r in recs)
    assert len({(r["setting"], r["repeat"]) for r in recs}) == 6  # nothing recorded twice
    assert recs[: len(before)] == before  # nothing lost
    done = Counter(c["key"] + str(c["argv"]) for c in calls(tmp_path) if c["event"] == "done")
    assert max(done.values()) == 1  # no completed run was run again
    assert sum(done.values()) == 6


def test_ctrl_c_kills_the_engine_and_prints_one_summary_line(tmp_path: Path, env: dict[str, str]) -> None:
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8}, repeats=2)
    out = tmp_path / "data"
    env = {**env, "FAKE_SLEEP": "60"}
    proc = subprocess.Popen([sys.executable, "-m", "cpubench", "run", "--config", str(cfg), "--out", str(out),
                             "--host-id", "h1"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        wait_for(lambda: bool(calls(tmp_path)), 30, "the engine to start")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert time.monotonic() - t0 < 10
    lines = stdout.strip().splitlines()
    assert lines[-1].startswith("cpubench: interrupted by SIGINT") and "0 ok" in lines[-1]
    assert sum("interrupted" in ln for ln in lines) == 1 and not any(ln.startswith("[") for ln in lines)
    assert not pid_alive(calls(tmp_path)[0]["pid"])
    assert records(out) == []


def test_dry_run_lists_commands_and_writes_nothing(tmp_path: Path, env: dict[str, str]) -> None:
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8, "lenet": [16, 32]}, repeats=2)
    out = tmp_path / "data"
    p = cpubench_run(["--config", str(cfg), "--out", str(out), "--host-id", "h1", "--dry-run", "--only", "lenet"],
                     env, tmp_path)  # fmt: skip
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 5 and lines[-1].startswith("cpubench: 4 runs to do, 0 already done")
    assert lines[0].startswith("syn-replicated-1cpus  lenet  bs16  r0  ")
    assert "--model=lenet --batch_size=16" in lines[0] and "--result_json=" in lines[0]
    assert lines[3].startswith("syn-replicated-1cpus  lenet  bs32  r1  ")
    assert not out.exists() and calls(tmp_path) == []


def test_real_data_without_data_fails_with_reason_and_syn_still_runs(tmp_path: Path, env: dict[str, str]) -> None:
    empty = tmp_path / "nodata"
    empty.mkdir()
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8}, data_dir=str(empty),
                       matrix={"data": ["syn", "real"], "variable_update": "replicated"})  # fmt: skip
    out = tmp_path / "data"
    p = cpubench_run(["--config", str(cfg), "--out", str(out), "--host-id", "h1"], env, tmp_path)
    assert p.returncode == 1
    recs = {r["setting"]: r for r in records(out)}
    assert recs["syn-replicated-1cpus"]["status"] == "ok"
    real = recs["real-replicated-1cpus"]
    assert real["status"] == "failed" and real["params"]["data"] == "real"
    assert real["reason"].startswith("real data unavailable") and "no train-* TFRecords" in real["reason"]
    assert len(calls(tmp_path)) == 2  # only the synthetic run started an engine


def test_real_data_dir_is_passed_to_the_engine(tmp_path: Path, env: dict[str, str]) -> None:
    data = tmp_path / "imagenet"
    data.mkdir()
    (data / "train-00000-of-00001").write_bytes(b"")
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8}, data_dir=str(data),
                       matrix={"data": "real", "distortions": [False, True]})  # fmt: skip
    out = tmp_path / "data"
    p = cpubench_run(["--config", str(cfg), "--out", str(out), "--host-id", "h1"], env, tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    recs = {r["setting"]: r for r in records(out)}
    assert set(recs) == {"real-parameter_server-1cpus", "real-parameter_server-distortions-1cpus"}
    for r in recs.values():
        assert f"--data_dir={data}" in r["command"] and "--data_name=imagenet" in r["command"]
        assert r["data_generated"] is False
    assert "--distortions=true" in recs["real-parameter_server-distortions-1cpus"]["command"]


def test_second_runner_on_the_same_folder_is_refused(tmp_path: Path, env: dict[str, str]) -> None:
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8})
    out = tmp_path / "data"
    (out / "h1").mkdir(parents=True)
    with open(out / "h1" / runner.LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        p = cpubench_run(["--config", str(cfg), "--out", str(out), "--host-id", "h1"], env, tmp_path)
    assert p.returncode == 2 and "another cpubench run is writing to" in p.stderr
    assert calls(tmp_path) == []


def test_print_host_dir_and_bad_config_exit_codes(tmp_path: Path, env: dict[str, str]) -> None:
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8})
    p = cpubench_run(["--config", str(cfg), "--out", str(tmp_path / "d"), "--host-id", "box", "--print-host-dir"],
                     env, tmp_path)  # fmt: skip
    assert p.returncode == 0 and p.stdout.strip() == str(tmp_path / "d" / "box")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodels: {trivial: 8}\nmatrix:\n  data: [syn, reall]\n")
    p = cpubench_run(["--config", str(bad)], env, tmp_path)
    assert p.returncode == 2
    assert p.stderr.strip() == (
        f"cpubench run: error: {bad}:4: matrix.data[1]: 'reall' is not one of syn, real (did you mean real?)"
    )


def test_interpret_prefers_the_result_json_and_never_records_zero(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("# cpubench command: x\nsome output\nERROR: CUDA_ERROR_OUT_OF_MEMORY: out of memory\nbye\n")
    o = executor.interpret(-9, False, 10, None, log, 1.0)
    assert o.status == "failed" and o.signal == "SIGKILL" and o.exit_code is None
    assert o.reason == "killed by SIGKILL: ERROR: CUDA_ERROR_OUT_OF_MEMORY: out of memory"
    o = executor.interpret(0, False, 10, None, log, 1.0)
    assert o.status == "failed" and o.reason.startswith("exit code 0: no result JSON written")
    o = executor.interpret(0, False, 10, {"status": "ok", "images_per_sec": float("nan")}, log, 1.0)
    assert o.status == "failed" and o.images_per_sec is None
    o = executor.interpret(3, False, 10, {"status": "failed", "reason": "bad flag\nmore"}, log, 1.0)
    assert o.reason == "exit code 3: bad flag"
    o = executor.interpret(None, True, 7.5, {"status": "ok", "images_per_sec": 5.0}, log, 7.6)
    assert o.status == "timeout" and o.reason == "timeout after 7.5 s" and o.images_per_sec is None


def test_overhead_breakdown() -> None:
    recs = [
        RunRecord(status="ok", duration=10.0, timings={"import": 3.0, "build": 1.0, "warmup": 1.0, "measured": 4.0}),
        RunRecord(status="failed", duration=2.0, timings=None),  # a crash: all of it is process time
        RunRecord(status="timeout", duration=0.0, timings={"measured": 9.0}),  # measured nothing usable
    ]
    b = runner.overhead_breakdown(recs, wall=13.0)
    assert b["process"] == pytest.approx(3.0) and b["runner"] == pytest.approx(1.0)
    assert b["overhead_pct"] == pytest.approx(100 * (13.0 - 4.0 - 3.0 - 1.0) / 13.0)
    assert "overhead 38.5%" in runner.format_overhead(b)


ENGINE_READY = (ROOT / "tf_cnn_benchmarks" / "__main__.py").exists()


@pytest.mark.timeout(400)
@pytest.mark.skipif(not ENGINE_READY, reason="the engine (python -m tf_cnn_benchmarks) is not in this checkout yet")
def test_real_engine_tiny_sweep_survives_sigkill_and_resumes(tmp_path: Path) -> None:
    """The trivial model for real, 2 settings x 2 repeats; SIGKILL the runner during the second run; resume."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        textwrap.dedent(
            """\
            name: tiny-real
            device: cpu
            num_gpus: [1]
            repeats: 2
            num_batches: 3
            num_warmup_batches: 1
            timeout: 240
            models: {trivial: 8}
            matrix:
              variable_update: [parameter_server, replicated]
            flags: {display_every: 1}
            """
        )
    )
    out = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k != runner.ENGINE_ENV}
    # A shell that limits OpenMP to one thread: the engine must not inherit it, and the records must say so.
    env.update({"CPUBENCH_NO_TF_PROBE": "1", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    args = ["--config", str(cfg), "--out", str(out), "--host-id", "real"]
    proc = subprocess.Popen([sys.executable, "-m", "cpubench", "run", *args], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    second_log = store.log_path(out, "real", "syn-replicated-1cpus", "trivial", 8, 0)
    try:
        wait_for(lambda: len(records(out, "real")) == 1 and second_log.exists(), 200, "the first run and a second")
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    before = records(out, "real")
    assert len(before) == 1 and before[0]["status"] == "ok", before
    resume = cpubench_run(args, env, tmp_path, timeout=360)
    assert resume.returncode == 0, resume.stdout + resume.stderr
    assert "3 ok, 0 failed, 0 timeout" in resume.stdout and "1 already done" in resume.stdout
    recs = records(out, "real")
    assert recs[0] == before[0]
    assert sorted((r["setting"], r["repeat"]) for r in recs) == [
        ("syn-parameter_server-1cpus", 0), ("syn-parameter_server-1cpus", 1),
        ("syn-replicated-1cpus", 0), ("syn-replicated-1cpus", 1),
    ]  # fmt: skip
    for r in recs:
        assert r["status"] == "ok" and r["images_per_sec"] > 0 and len(r["step_times"]) == 3
        assert set(r["timings"]) >= {"import", "build", "warmup", "measured"}
        assert "total images/sec:" in (out / "real" / r["log"]).read_text()
    assert store.read_host(out / "real").cores_logical == os.cpu_count()
    cpus = sorted(os.sched_getaffinity(0))
    for r in recs:  # what the engine saw from inside, and the per-batch latency statistics
        assert r["cpus"] == cpus and r["threads"]["intra_effective"] == len(cpus)
        assert r["env_removed"] == ["OMP_NUM_THREADS"] and "OMP_NUM_THREADS" not in r["thread_env"]
        assert r["thread_env"]["TF_ENABLE_ONEDNN_OPTS"] == "1" and r["framework_version"]
        lat = r["latency_ms"]
        assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    files, _ = report.build_report([out], tmp_path / "summary", model_rows=None, plots=False)
    rows = list(csv.DictReader(open(files.csv)))
    assert len(rows) == 4
    for row in rows:
        assert row["threads_intra"] == str(len(cpus)) and row["cpus"] and row["framework_version"]
        assert "TF_ENABLE_ONEDNN_OPTS=1" in row["thread_env"] and row["env_removed"] == "OMP_NUM_THREADS"
        assert float(row["latency_ms_p50"]) <= float(row["latency_ms_p90"]) <= float(row["latency_ms_p99"])


@pytest.mark.skipif(not (ROOT / ".venv" / ".cpubench-installed").is_file(), reason="the script would install the venv")
def test_cpu_benchmark_script_runs_then_reports_and_keeps_the_run_status(tmp_path: Path, env: dict[str, str]) -> None:
    write_config(tmp_path / "c.yaml", {"trivial": 8, "lenet": 4})
    script = ROOT / "scripts" / "cpu_benchmark.sh"
    p = subprocess.run(["bash", str(script), "c.yaml", "--out", "out", "--host-id", "h1"], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=180)  # fmt: skip
    assert p.returncode == 1, p.stdout + p.stderr  # lenet failed: the run's status survives the report
    assert [r["status"] for r in records(tmp_path / "out")] == ["ok", "failed"]
    assert (tmp_path / "out" / "h1" / "summary" / "summary.md").is_file()
    assert f"report: {tmp_path / 'out' / 'h1' / 'summary' / 'summary.md'}" in p.stdout


def test_other_engine_or_env_does_not_resume_from_another_sweeps_results(tmp_path: Path, env: dict[str, str]) -> None:
    engine = tmp_path / "fake_engine.py"
    other = tmp_path / "other_engine.py"
    other.write_text(engine.read_text())
    env = {k: v for k, v in env.items() if k != runner.ENGINE_ENV}
    out = tmp_path / "data"
    args = ["--config", str(tmp_path / "c.yaml"), "--out", str(out), "--host-id", "h1"]

    def sweep(engine_path: Path, **extra: Any) -> subprocess.CompletedProcess:
        write_config(tmp_path / "c.yaml", {"trivial": 8}, engine=[sys.executable, str(engine_path)], **extra)
        return cpubench_run(args, env, tmp_path)

    assert sweep(engine).returncode == 0
    again = sweep(engine)
    assert "0 ok" in again.stdout and "1 already done" in again.stdout  # same engine and env: resumed
    assert "1 ok" in sweep(other).stdout  # another engine command: measured again
    assert "1 ok" in sweep(other, env={"OMP_NUM_THREADS": "2"}).stdout  # another env: measured again
    assert "1 already done" in sweep(other, env={"OMP_NUM_THREADS": "2"}).stdout
    starts = [c for c in calls(tmp_path) if c["event"] == "start"]
    assert [Path(c["exe"]).name for c in starts] == ["fake_engine.py", "other_engine.py", "other_engine.py"]
    assert [c["omp"] for c in starts] == [None, None, "2"]
    assert len({r["run_hash"] for r in records(out)}) == 3


def test_inherited_thread_variables_are_kept_from_the_engine_and_recorded(tmp_path: Path, env: dict[str, str]) -> None:
    env = {**env, "OMP_NUM_THREADS": "1", "KMP_AFFINITY": "compact", "OPENBLAS_CORETYPE": "Haswell"}
    out = tmp_path / "data"
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8})
    p = cpubench_run(["--config", str(cfg), "--out", str(out), "--host-id", "h1"], env, tmp_path)
    assert p.returncode == 0, p.stderr
    assert "left out of the engine's environment (inherited, not in the config's env:): KMP_AFFINITY, " \
           "OMP_NUM_THREADS" in p.stdout  # fmt: skip
    (rec,) = records(out)
    assert rec["env_removed"] == ["KMP_AFFINITY", "OMP_NUM_THREADS"]
    assert "OMP_NUM_THREADS" not in rec["thread_env"] and rec["thread_env"]["OPENBLAS_CORETYPE"] == "Haswell"
    assert calls(tmp_path)[0]["omp"] is None
    # Set on purpose in the config: passed, and the record shows what the engine saw.
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8}, env={"OMP_NUM_THREADS": "3"})
    p = cpubench_run(["--config", str(cfg), "--out", str(out), "--host-id", "h1"], env, tmp_path)
    rec = records(out)[-1]
    assert rec["env_removed"] == ["KMP_AFFINITY"] and rec["thread_env"]["OMP_NUM_THREADS"] == "3"
    assert calls(tmp_path)[-1]["omp"] == "3"


def test_heartbeat_lines_while_a_run_is_in_flight_without_a_terminal(tmp_path: Path, env: dict[str, str]) -> None:
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8})
    env = {**env, "FAKE_SLEEP": "2.5"}
    args = ["--config", str(cfg), "--out", str(tmp_path / "data"), "--host-id", "h1", "--heartbeat", "0.5"]
    p = cpubench_run(args, env, tmp_path)
    assert p.returncode == 0, p.stderr
    beats = [ln for ln in p.stdout.splitlines() if ln.endswith("(heartbeat)")]
    assert len(beats) >= 3, p.stdout
    assert all(ln.startswith("[1/1] syn-replicated-1cpus trivial bs8 r0: running 0m0") for ln in beats)
    # On a terminal: one line rewritten in place (carriage returns; read as bytes, text mode would hide them).
    cmd = [sys.executable, "-m", "cpubench", "run", *args[:-2]]
    live = subprocess.run([*cmd, "--host-id", "h2", "--progress", "live"], env=env, cwd=tmp_path,
                          capture_output=True, timeout=60).stdout  # fmt: skip
    assert b"\r[1/1] syn-replicated-1cpus trivial bs8 r0: running 0m0" in live and b"(heartbeat)" not in live
    plain = subprocess.run([*cmd, "--host-id", "h3"], env=env, cwd=tmp_path, capture_output=True, timeout=60).stdout
    assert b"\r" not in plain


SCHEMA1 = ROOT / "tests" / "fixtures" / "schema1"


def schema1_copy(tmp_path: Path) -> Path:
    """The schema-1 fixture folder, claimed for this machine (its host.json names the machine that recorded it)."""
    from cpubench.host import facts

    out = tmp_path / "data"
    shutil.copytree(SCHEMA1 / "data", out)
    host = json.loads((out / "schema1-host" / "host.json").read_text())
    host["machine_fingerprint"] = facts.machine_fingerprint()
    (out / "schema1-host" / "host.json").write_text(json.dumps(host))
    return out


def test_a_schema1_folder_resumes_reports_and_imports(tmp_path: Path) -> None:
    out = schema1_copy(tmp_path)
    before = (out / "schema1-host" / store.RUNS_FILE).read_bytes()
    env = {k: v for k, v in os.environ.items() if k != runner.ENGINE_ENV}
    env.update({"CPUBENCH_NO_TF_PROBE": "1", "PYTHONPATH": str(ROOT), locks.LOCK_ENV: str(tmp_path / "lock")})
    for name, done in (("schema1", 6), ("schema1-real", 1)):
        args = ["--config", str(SCHEMA1 / f"{name}.yaml"), "--out", str(out), "--host-id", "schema1-host"]
        p = cpubench_run([*args, "--dry-run"], env, tmp_path)
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip().splitlines()[-1].startswith(f"cpubench: 0 runs to do, {done} already done"), p.stdout
    # It reports: every record read, ordered by its params, no warnings.
    files, merged = report.build_report([out], tmp_path / "summary", model_rows=None, plots=False)
    assert len(merged.runs) == 7 and not merged.warnings
    assert {r.rec.schema for r in merged.runs} == {1}
    md = files.summary.read_text()
    assert md.index("**syn-parameter_server-1cpus**") < md.index("**syn-parameter_server-1cpus-inference**")
    assert md.index("**syn-parameter_server-1cpus-inference**") < md.index("**real-parameter_server-1cpus**")
    rows = list(csv.DictReader(open(files.csv)))
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 6 and all(float(r["latency_ms_p50"]) <= float(r["latency_ms_p99"]) for r in ok)
    # Its logs import as another host, and the two report together.
    assert cli.main(["import-logs", str(out / "schema1-host" / "logs"), "--host-id", "imported", "--out",
                     str(out)]) == 0  # fmt: skip
    _, both = report.build_report([out], tmp_path / "summary2", model_rows=None, plots=False)
    assert both.host_ids == ["imported", "schema1-host"] and len(both.runs) == 13
    # Nothing rewrote the user's file.
    assert (out / "schema1-host" / store.RUNS_FILE).read_bytes() == before
