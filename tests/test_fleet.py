"""``cpubench fleet`` end to end on loopback: a real ``dask scheduler`` and three ``cpubench fleet worker`` processes
standing for three hosts (each with its own machine lock and results folder), driven by the real CLI.

The engine is the fake one (a sleep of batch size / 20 s), except multi-worker training, which is real TensorFlow.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from fakeengine import ROOT, wait_for, write_config  # noqa: E402
from fleetcluster import Fleet, free_port  # noqa: E402

from cpubench.fleet import connect  # noqa: E402
from cpubench.fleet.home import Home, record_key  # noqa: E402
from cpubench.results import store  # noqa: E402
from tf_cnn_benchmarks.record import RunRecord  # noqa: E402

HOSTS = ["h1", "h2", "h3"]
# A record as the store files it: its stated figure agrees with its step times.
RECORD = {"status": "ok", "images_per_sec": 100.0, "step_times": [0.01, 0.01], "model": "trivial", "batch_size": 1,
          "host_id": "h1", "run_hash": "abc", "repeat": 0, "started": "2026-01-01T00:00:00+00:00", "setting": "syn",
          "log": "logs/syn/trivial-bs1-r0.log"}  # fmt: skip
NANNY_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    f = Fleet(tmp_path_factory.mktemp("fleet"))
    try:
        f.start(HOSTS)
        yield f
    finally:
        f.close()


def keys(folder: Path, sizes: range | None = None) -> list[str]:
    """The records of a host folder by their identity (only those of ``sizes`` when given: a host's folder also
    holds what earlier tests measured there, and all of it comes home)."""
    recs = store.read_runs(folder).records
    return [record_key(r) for r in recs if sizes is None or r.batch_size in sizes]


def run_fleet(fleet: Fleet, tmp_path: Path, config: Path, *extra: str) -> subprocess.CompletedProcess:
    args = ["run", "--scheduler", fleet.address, "--config", str(config), "--out", str(tmp_path / "home"),
            "--report", str(tmp_path / "summary"), "--no-plots", "--no-model-table", *extra]  # fmt: skip
    return fleet.cli(*args, timeout=240)


def test_three_hosts_each_folder_arrives_complete(fleet: Fleet, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", {"trivial": [1, 2]}, repeats=2)
    p = run_fleet(fleet, tmp_path, cfg)
    assert p.returncode == 0, p.stdout + p.stderr
    home = tmp_path / "home"
    for h in HOSTS:
        recs = store.read_runs(home / h).records
        assert len(recs) == 4 and all(r.status == "ok" and r.host_id == h for r in recs), p.stdout
        # Home holds what the host's own folder holds: the same records, the same logs, its host record.
        assert sorted(keys(home / h)) == sorted(keys(fleet.staging(h) / h))
        for r in recs:
            assert (home / h / r.log).read_text() == (fleet.staging(h) / h / r.log).read_text()
            assert "Model:       trivial" in (home / h / r.log).read_text()
        assert store.read_host(home / h).host_id == h
        # One engine per host at a time, never another host's runs.
        starts = [c for c in fleet.calls(h) if c["event"] == "start"]
        assert len(starts) >= 4
        # The worker runs without Dask's nanny: no thread variable set behind the user's back, in it or its engines.
        environ = Path(f"/proc/{fleet.procs[h].pid}/environ").read_bytes().split(b"\0")
        assert not [v for v in environ if v.split(b"=")[0].decode() in NANNY_VARS]
        assert all(c["omp"] is None for c in starts)
    assert "3 host(s), 12 runs home, 0 host(s) failed" in p.stdout
    summary = (tmp_path / "summary" / "summary.md").read_text()
    assert all(h in summary for h in HOSTS)
    status = fleet.cli("status", "--scheduler", fleet.address)
    assert status.returncode == 0, status.stderr
    rows = {ln.split()[0]: ln for ln in status.stdout.splitlines()[1:]}
    assert all(" done " in rows[h] and "4/4" in rows[h] for h in HOSTS), status.stdout
    # A rerun resumes: nothing to do anywhere, no engine started.
    before = {h: len(fleet.calls(h)) for h in HOSTS}
    again = run_fleet(fleet, tmp_path, cfg)
    assert again.returncode == 0, again.stdout + again.stderr
    assert {h: len(fleet.calls(h)) for h in HOSTS} == before
    assert all(len(store.read_runs(home / h).records) == 4 for h in HOSTS)


SIZES = range(10, 16)


def test_killed_worker_keeps_its_runs_others_finish_rerun_does_the_rest(fleet: Fleet, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", {"trivial": [10, 11, 12, 13, 14, 15]})  # 0.5-0.75 s a run
    home = tmp_path / "home"
    run = fleet.start_run("--config", str(cfg), "--out", str(home), "--report", str(tmp_path / "summary"),
                          "--no-plots", "--no-model-table")  # fmt: skip
    try:
        # Records arrive while the sweep goes on, not at the end.
        wait_for(lambda: len(keys(home / "h2", SIZES)) >= 2 if (home / "h2").is_dir() else False, 90, "h2's first runs")
        fleet.kill("h2")
        out, err = run.communicate(timeout=180)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 1, out + err
    home_h2 = keys(home / "h2", SIZES)
    assert 2 <= len(home_h2) < 6, out
    assert set(home_h2) <= set(keys(fleet.staging("h2") / "h2", SIZES))
    assert "h2: FAILED: its worker's connection closed" in out, out
    for h in ("h1", "h3"):
        assert len(keys(home / h, SIZES)) == 6 and f"{h}: done, 6 runs home" in out, out
    status = fleet.cli("status", "--scheduler", fleet.address)
    row = next(ln for ln in status.stdout.splitlines() if ln.startswith("h2 "))
    assert "failed" in row and "connection closed" in row and "(no worker)" in row, status.stdout
    # No benchmark of the dead worker runs on: its machine lock is free.
    with open(fleet.lock("h2"), "a+") as f:
        wait_for(lambda: _lockable(f), 20, "h2's machine lock to be released")

    # The worker comes back; the rerun measures only h2's missing runs.
    fleet.start_worker("h2")
    fleet.wait_workers(["h2"])
    staged = len(keys(fleet.staging("h2") / "h2", SIZES))
    before = {h: len([c for c in fleet.calls(h) if c["event"] == "start"]) for h in HOSTS}
    p = run_fleet(fleet, tmp_path, cfg)
    assert p.returncode == 0, p.stdout + p.stderr
    after = {h: len([c for c in fleet.calls(h) if c["event"] == "start"]) for h in HOSTS}
    assert after["h1"] == before["h1"] and after["h3"] == before["h3"]
    assert after["h2"] - before["h2"] == 6 - staged
    recs = [r for r in store.read_runs(home / "h2").records if r.batch_size in SIZES]
    assert len(recs) == 6 and len({(r.run_hash, r.repeat) for r in recs}) == 6
    assert all(r.status == "ok" for r in recs)


def _lockable(f: object) -> bool:
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    fcntl.flock(f, fcntl.LOCK_UN)
    return True


def test_two_fleet_runs_at_once_are_refused(fleet: Fleet, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", {"trivial": [40]}, repeats=2)  # 2 s a run
    first = fleet.start_run("--config", str(cfg), "--out", str(tmp_path / "a"), "--no-report")
    try:

        def running() -> bool:
            d = fleet.client.get_metadata(["cpubench-fleet", "hosts", "h1"], default=None)
            return isinstance(d, dict) and d["state"] == "running" and d["run"] != getattr(running, "seen", None)

        running.seen = (fleet.client.get_metadata(["cpubench-fleet", "hosts", "h1"], default=None) or {}).get("run")
        wait_for(running, 60, "the first fleet run to start")
        second = run_fleet(fleet, tmp_path, cfg, "--out", str(tmp_path / "b"), "--hosts", "h1")
        assert second.returncode == 2, second.stdout + second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "h1 is busy: fleet run" in lines[0], second.stderr
        assert not (tmp_path / "b" / "h1").exists()
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, out + err
    # The locks went with the first run: the next one is let in (and has nothing to do).
    third = run_fleet(fleet, tmp_path, cfg, "--out", str(tmp_path / "a"), "--no-report")
    assert third.returncode == 0, third.stdout + third.stderr


def test_status_shows_a_host_left_running_by_a_dead_dispatcher_as_stopped(fleet: Fleet) -> None:
    """A dispatcher killed mid-run leaves its hosts' entries "running" on the scheduler; no fleet run holds their
    locks any more, so ``status`` shows them stopped with why. A host whose lock is held is still running."""
    from distributed import Lock

    from cpubench.fleet.status import HostState

    for host in ("h8", "h9"):
        state = HostState(host=host, address="tcp://10.0.0.9:1", run=f"run-{host}", by="someone@laptop",
                          state="running", total=4, current="trivial bs 1 (1/4)")  # fmt: skip
        fleet.client.set_metadata(["cpubench-fleet", "hosts", host], state.to_dict())
    lock = Lock("cpubench-fleet-host-h8")  # through the test's client, the default one here
    assert lock.acquire(blocking=False)
    try:
        status = fleet.cli("status", "--scheduler", fleet.address)
    finally:
        lock.release()
        for host in ("h8", "h9"):  # ended, as a dispatcher that finished would leave them
            done = HostState(host=host, address="tcp://10.0.0.9:1", run=f"run-{host}", by="someone@laptop",
                             state="done")  # fmt: skip
            fleet.client.set_metadata(["cpubench-fleet", "hosts", host], done.to_dict())
    assert status.returncode == 0, status.stderr
    rows = {ln.split()[0]: ln for ln in status.stdout.splitlines()[1:]}
    assert " running " in rows["h8"] and "trivial bs 1 (1/4)" in rows["h8"], status.stdout
    assert " stopped " in rows["h9"] and "dispatcher (someone@laptop, fleet run run-h9)" in rows["h9"], status.stdout
    assert "resumes it" in rows["h9"]


def test_multi_worker_training_matches_one_process(fleet: Fleet, tmp_path: Path) -> None:
    steps = {"num_batches": 3, "num_warmup_batches": 1, "flags": {"seed": 1234, "display_every": 1}}
    cfg = write_config(tmp_path / "c.yaml", {"trivial": [4]}, matrix={"variable_update": ["collective_all_reduce"]},
                       timeout=150, **steps)  # fmt: skip
    p = run_fleet(fleet, tmp_path, cfg, "--workers", "2", "--cluster-port", str(free_port(2)))
    assert p.returncode == 0, p.stdout + p.stderr
    mw = "collective_all_reduce"
    recs = [[r for r in store.read_runs(tmp_path / "home" / h).records if r.params["variable_update"] == mw]
            for h in ("h1", "h2")]  # fmt: skip
    assert [len(r) for r in recs] == [1, 1] and not (tmp_path / "home" / "h3").exists()
    a, b = (r[0] for r in recs)
    assert a.status == b.status == "ok", (a.reason, b.reason)
    assert a.details["num_workers"] == 2 and a.samples.global_batch == 8
    assert "--task_index=0" in a.command and "--task_index=1" in b.command
    cluster = [x for x in a.command if x.startswith("--worker_hosts=")]
    assert cluster and cluster == [x for x in b.command if x.startswith("--worker_hosts=")]
    single = subprocess.run(
        [sys.executable, "-m", "tf_cnn_benchmarks", "--model=trivial", "--seed=1234", "--display_every=1",
         "--num_batches=3", "--num_warmup_batches=1", "--batch_size=8", "--device=cpu", "--num_gpus=1",
         f"--result_json={tmp_path / 'single.json'}"], capture_output=True, text=True, cwd=ROOT, timeout=150,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr[-2000:]
    one = RunRecord.from_dict(json.loads((tmp_path / "single.json").read_text()))
    losses = [[(int(s), float(x)) for s, x in r.details["losses"]] for r in (a, b, one)]
    assert [s for s, _ in losses[0]] == [1, 2, 3] and losses[0][0][1] != losses[0][-1][1]
    for other in losses[1:]:
        assert [s for s, _ in other] == [1, 2, 3]
        for (_, x), (_, y) in zip(losses[0], other, strict=True):
            assert x == pytest.approx(y, rel=1e-4)


def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def fleet(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cpubench", "fleet", *args], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=60)  # fmt: skip

    good = write_config(tmp_path / "c.yaml", {"trivial": [1]})
    bad = tmp_path / "typo.yaml"
    bad.write_text(good.read_text().replace('"models"', '"modles"'))
    nobody = f"tcp://127.0.0.1:{free_port()}"
    cases = {
        "no scheduler": (
            [
                "run",
                "--scheduler",
                nobody,
                "--config",
                str(good),
                "--out",
                str(tmp_path / "d"),
                "--connect-timeout",
                "2",
            ],
            "no scheduler at",
        ),  # fmt: skip
        "typo": (["run", "--scheduler", nobody, "--config", str(bad)], "modles"),
        "address": (["status", "--scheduler", "http://x"], "expected tcp://HOST:PORT"),
        "tls without certificates": (["status", "--scheduler", "tls://127.0.0.1:1"], "needs --tls-ca-file"),
        "workers of one": (["run", "--scheduler", nobody, "--config", str(good), "--workers", "1"], "at least 2"),
        "workers without all-reduce": (
            ["run", "--scheduler", nobody, "--config", str(good), "--workers", "2"],
            "collective_all_reduce",
        ),  # fmt: skip
    }
    for name, (args, what) in cases.items():
        p = fleet(*args)
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 2 and len(lines) == 1 and what in lines[0], (name, p.stderr)
        assert "Traceback" not in p.stderr
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())


def test_home_files_only_what_a_host_may_write(tmp_path: Path) -> None:
    """What a worker sends is data: only its own host's folder, records the store accepts, logs by plain names."""
    root = tmp_path / "out"
    home = Home(root, {"h1"})

    def msg(r: RunRecord, log: str | None = "the log") -> dict:
        return {"kind": "record", "record_json": json.dumps(r.to_dict()), "log": log}

    ok = RunRecord.from_dict(RECORD)
    assert home.receive("h1", msg(ok)) is None
    assert home.receive("h1", msg(ok)) is None  # a re-send: harmless
    assert len(store.read_runs(root / "h1").records) == 1
    assert (root / "h1" / "logs" / "syn" / "trivial-bs1-r0.log").read_text() == "the log"
    retried = RunRecord.from_dict({**ok.to_dict(), "started": "2026-01-02T00:00:00+00:00"})
    assert home.receive("h1", msg(retried)) is None and len(store.read_runs(root / "h1").records) == 2
    hostile = [
        ("h2", msg(ok)),  # a host this run did not ask
        ("h1", msg(RunRecord.from_dict({**ok.to_dict(), "host_id": "h2", "started": "x"}))),  # another host's record
        ("h1", {"kind": "record", "record_json": json.dumps({**ok.to_dict(), "model": "../../evil"})}),  # a path
        ("h1", {"kind": "record", "record_json": "[" * 100000}),
        ("h1", {"kind": "host", "host_json": json.dumps({"schema": 1, "host_id": "../../x"})}),
        ("h1", {"kind": "nonsense"}),
    ]
    for host, m in hostile:
        assert home.receive(host, m) is not None, m
    escaped = RunRecord.from_dict({**ok.to_dict(), "log": "logs/../../../escaped.log", "started": "z"})
    assert home.receive("h1", msg(escaped)) is None  # the record is fine; its log name is not: not written
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["out/h1/logs/syn/trivial-bs1-r0.log", "out/h1/runs.jsonl"], files
    assert len(store.read_runs(root / "h1").records) == 3


def test_plain_tcp_off_loopback_names_the_risk_and_tls_connects(tmp_path: Path) -> None:
    assert "anyone who can reach it can run code" in connect.risk_line("tcp://10.1.2.3:8786")
    assert connect.risk_line("10.1.2.3:8786") is not None
    for quiet in ("tcp://127.0.0.1:8786", "tcp://localhost:8786", "tls://10.1.2.3:8786", "tcp://[::1]:8786"):
        assert connect.risk_line(quiet) is None, quiet
    # A TLS scheduler with a self-signed certificate: fleet status reaches it with the certificates, not without.
    pem, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(pem),
                    "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True)  # fmt: skip
    port = free_port()
    sched = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
         "--no-dashboard", "--protocol", "tls", "--tls-ca-file", str(pem), "--tls-cert", str(pem), "--tls-key",
         str(key)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        certs = ["--tls-ca-file", str(pem), "--tls-cert", str(pem), "--tls-key", str(key)]
        args = [sys.executable, "-m", "cpubench", "fleet", "status", "--scheduler", f"tls://127.0.0.1:{port}"]
        deadline = time.monotonic() + 60
        while True:
            p = subprocess.run([*args, *certs], capture_output=True, text=True, env=env, timeout=60)
            if p.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert p.returncode == 0 and p.stdout.startswith("host"), p.stderr
        plain_tcp = subprocess.run([*args[:-1], f"tcp://127.0.0.1:{port}", "--connect-timeout", "3"],
                                   capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
        assert plain_tcp.returncode == 2 and "no scheduler" in plain_tcp.stderr
    finally:
        sched.send_signal(signal.SIGTERM)
        sched.wait(timeout=30)
