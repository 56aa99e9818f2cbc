"""``cpubench fleet`` against hostile and careless parties: a worker that sends garbage or speaks for another host,
a results folder holding links, metadata on the scheduler that is not a fleet's. Each case is a real scheduler and
real worker processes on loopback (tests/fleetcluster.py), driven by the real CLI.

The hostile worker is ``cpubench fleet worker`` with its task (:func:`cpubench.fleet.worker.run_host`) replaced by
one that sends the events a plan file lists and returns the result the plan says: what any machine holding a
worker's certificate could send.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed")

from fakeengine import wait_for, write_config  # noqa: E402
from fleetcluster import Fleet  # noqa: E402

from cpubench.fleet.home import Home  # noqa: E402
from cpubench.results import store  # noqa: E402

HOSTILE_WORKER = """
import json, os, sys, time
from pathlib import Path
import cpubench.fleet.worker as fw

def run_host(job):
    from distributed import get_worker
    w = get_worker()
    plan = json.loads(Path(os.environ["HOSTILE_PLAN"]).read_text())
    if plan.get("wait_for"):  # another host's engine has started: what is sent now reaches a running host
        while not os.path.exists(plan["wait_for"]):
            time.sleep(0.05)
    for ev in plan.get("events", []):
        w.log_event(ev.get("topic") or job["topic"], {"host": job["host"], **ev["msg"]})
    return plan.get("result", {"host": job["host"], "rc": 0, "tail": [], "seconds": 0.0, "sent": 0})

fw.run_host = run_host  # what the scheduler's task names is looked up here, by module and name
from cpubench.cli import main
sys.exit(main(["fleet", "worker", *sys.argv[1:]]))
"""

# A record as the store files it (schema 1, whose hash is "config_hash"), for host "bad".
RECORD = {"status": "ok", "images_per_sec": 100.0, "step_times": [0.01, 0.01], "model": "trivial", "batch_size": 1,
          "host_id": "bad", "config_hash": "abc", "repeat": 0, "started": "2026-01-01T00:00:00+00:00", "setting": "syn",
          "log": "logs/syn/trivial-bs1-r0.log"}  # fmt: skip


class HostileFleet(Fleet):
    """A scheduler, a hostile worker ``bad`` and an honest worker ``good``."""

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        self.plan = base / "plan.json"
        self.script = base / "hostile_worker.py"
        self.script.write_text(HOSTILE_WORKER)

    def start_worker(self, host: str) -> None:
        if host != "bad":
            super().start_worker(host)
            return
        log = open(self.base / f"worker-{host}.log", "ab")  # noqa: SIM115 - the process owns it
        self.procs[host] = subprocess.Popen(
            [sys.executable, str(self.script), "--scheduler", self.address, "--host-id", host, "--staging",
             str(self.staging(host)), "--connect-timeout", "60"],
            stdout=log, stderr=subprocess.STDOUT, env={**self.env(host), "HOSTILE_PLAN": str(self.plan)},
            cwd=self.base,
        )  # fmt: skip

    def run(self, tmp_path: Path, plan: dict[str, Any], *extra: str, models: dict[str, int] | None = None) -> Any:
        """``cpubench fleet run`` with the hostile worker following ``plan``."""
        self.plan.write_text(json.dumps(plan))
        cfg = write_config(tmp_path / "c.yaml", models or {"trivial": [1]})
        return self.cli("run", "--scheduler", self.address, "--config", str(cfg), "--out", str(tmp_path / "home"),
                        "--no-report", *extra, timeout=120)  # fmt: skip


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> HostileFleet:
    f = HostileFleet(tmp_path_factory.mktemp("hostile"))
    try:
        f.start(["bad", "good"])
        yield f
    finally:
        f.close()


def one_line_no_traceback(p: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in p.stdout + p.stderr, p.stdout + p.stderr


def test_garbage_progress_and_result_fail_the_host_in_one_line(fleet: HostileFleet, tmp_path: Path) -> None:
    """A progress message whose counts are not counts, a result that is not run_host's: the host fails with why,
    never a traceback that stops the fleet run (and leaves its locks to expire)."""
    garbage = [{"msg": {"kind": "progress", "total": 3, "already": "lots", "current": 7}},
               {"msg": {"kind": "progress", "total": [1], "already": 10**18}}]  # fmt: skip
    for result in ("garbage", {"rc": 0, "sent": "5", "seconds": "x"}, {"rc": "0", "tail": [1, 2]}):
        p = fleet.run(tmp_path, {"events": garbage, "result": result}, "--hosts", "bad")
        one_line_no_traceback(p)
        assert p.returncode == 1, p.stdout + p.stderr
        assert "bad: FAILED: its worker returned something that is not a cpubench fleet result" in p.stdout, p.stdout
    p = fleet.run(tmp_path, {"events": garbage}, "--hosts", "bad")  # the counts alone: dropped, the host is done
    one_line_no_traceback(p)
    assert p.returncode == 0 and "bad: done" in p.stdout, p.stdout + p.stderr


def test_a_worker_cannot_fail_another_host(fleet: HostileFleet, tmp_path: Path) -> None:
    """A worker that logs a scheduler-like ``remove-worker`` event on another worker's topic (its address) while
    that host runs: the event is stamped with the sender, so it is not the scheduler's word; the other host goes on
    and its runs come home."""
    calls = fleet.base / "calls-good.jsonl"
    calls.unlink(missing_ok=True)
    good = fleet.workers()["good"]
    spoof = {"action": "remove-worker", "stimulus_id": "handle-worker-cleanup-1", "expected": False}
    plan = {"wait_for": str(calls), "events": [{"topic": good, "msg": spoof}]}
    p = fleet.run(tmp_path, plan, models={"trivial": [60]})  # good's run sleeps 3 s: it runs when the spoof lands
    one_line_no_traceback(p)
    assert "good: FAILED" not in p.stdout and "good: done, 1 runs home" in p.stdout, p.stdout + p.stderr
    assert [r.batch_size for r in store.read_runs(tmp_path / "home" / "good").records] == [60]


def test_a_log_at_home_is_never_written_over(tmp_path: Path) -> None:
    """A record whose log name is already taken at home by other text (a reinstalled host names its first log
    ``-r0`` again; a hostile worker may name any log) is filed with its log beside the kept one; the same text again
    is the same file."""
    root = tmp_path / "out"
    home = Home(root, {"bad"})

    def msg(d: dict[str, Any], log: str) -> dict[str, Any]:
        return {"kind": "record", "record_json": json.dumps(d), "log": log}

    assert home.receive("bad", msg(RECORD, "the first measurement")) is None
    logs = root / "bad" / "logs" / "syn"
    other = {**RECORD, "config_hash": "def", "started": "2026-02-01T00:00:00+00:00"}
    assert home.receive("bad", msg(other, "another run's log")) is None
    assert (logs / "trivial-bs1-r0.log").read_text() == "the first measurement"
    assert (logs / "trivial-bs1-try2-r0.log").read_text() == "another run's log"
    # The same log again with a record home has not filed yet: the file home has, not a copy.
    again = {**RECORD, "started": "2026-03-01T00:00:00+00:00"}
    assert home.receive("bad", msg(again, "the first measurement")) is None
    # A link where a log would go is left alone, never written through; the log goes beside it.
    outside = tmp_path / "outside.txt"
    outside.write_text("not the fleet's")
    os.symlink(outside, logs / "trivial-bs2-r0.log")
    linked = {
        **RECORD,
        "batch_size": 2,
        "config_hash": "ghi",
        "started": "2026-04-01T00:00:00+00:00",
        "log": "logs/syn/trivial-bs2-r0.log",
    }
    assert home.receive("bad", msg(linked, "bs2's log")) is None
    assert outside.read_text() == "not the fleet's" and (logs / "trivial-bs2-try2-r0.log").read_text() == "bs2's log"
    recs = {r.started: r for r in store.read_runs(root / "bad").records}
    assert [recs[d["started"]].log for d in (RECORD, other, again)] == [
        "logs/syn/trivial-bs1-r0.log",
        "logs/syn/trivial-bs1-try2-r0.log",
        "logs/syn/trivial-bs1-r0.log",
    ]
    assert recs[linked["started"]].log == "logs/syn/trivial-bs2-try2-r0.log"
    assert sorted(p.name for p in logs.iterdir()) == [
        "trivial-bs1-r0.log",
        "trivial-bs1-try2-r0.log",
        "trivial-bs2-r0.log",
        "trivial-bs2-try2-r0.log",
    ]


@pytest.mark.parametrize("link", ["good", "good/logs"])
def test_a_home_folder_holding_a_link_is_refused_before_anything_runs(
    fleet: HostileFleet, tmp_path: Path, link: str
) -> None:
    """``--out`` from someone else (a shared results folder) whose host folder is, or holds, a link: refused in one
    line before anything is dispatched, as ``cpubench run`` refuses it; nothing is written through the link."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    home = tmp_path / "home"
    (home / link).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(elsewhere, home / link)
    calls = len(fleet.calls("good"))
    p = fleet.run(tmp_path, {}, "--hosts", "good", models={"trivial": [3]})
    one_line_no_traceback(p)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and "a symbolic link" in lines[0], p.stdout + p.stderr
    assert list(elsewhere.iterdir()) == [] and len(fleet.calls("good")) == calls


def test_status_and_a_busy_host_survive_metadata_that_is_not_a_fleets(fleet: HostileFleet, tmp_path: Path) -> None:
    """Anything that reaches the scheduler can write its metadata: an entry of the wrong types (a state that is not
    text, a start that is not a time, durations whose sum is not finite) is shown as far as it can be, never a
    traceback from ``fleet status`` or from the refusal of a busy host."""
    from distributed import Lock

    from cpubench.fleet.status import _FIELDS as status_fields
    from cpubench.fleet.status import HostState

    garbage = {"host": 1, "address": None, "run": ["x"], "by": {"a": 1}, "state": 5, "total": 10**6, "done": 1,
               "already": "x", "not_ok": "many", "current": 3, "reason": 4, "started": "yesterday",
               "ended": "x", "seconds": 9e10, "junk": 1}  # fmt: skip
    assert set(status_fields) == set(HostState.__dataclass_fields__)  # every field is checked as it is read
    fleet.client.set_metadata(["cpubench-fleet", "hosts", "bad"], {**garbage, "started": 1e308})
    fleet.client.set_metadata(["cpubench-fleet", "hosts", "zz"], {**garbage, "state": "running"})
    locks = [Lock(f"cpubench-fleet-host-{h}") for h in ("bad", "zz")]  # held: shown as running, not stopped
    assert all(lk.acquire(blocking=False) for lk in locks)
    try:
        status = fleet.cli("status", "--scheduler", fleet.address)
        busy = fleet.run(tmp_path, {}, "--hosts", "bad")
    finally:
        for lk in locks:
            lk.release()
        fleet.client.set_metadata(["cpubench-fleet", "hosts", "zz"], {**garbage, "state": "done"})
    one_line_no_traceback(status)
    assert status.returncode == 0, status.stdout + status.stderr
    rows = {ln.split()[0]: ln for ln in status.stdout.splitlines()[1:]}
    assert {"bad", "zz"} <= set(rows) and " running " in rows["zz"], status.stdout
    one_line_no_traceback(busy)
    lines = busy.stderr.strip().splitlines()
    assert busy.returncode == 2 and len(lines) == 1 and "bad is busy" in lines[0], busy.stdout + busy.stderr
    # The whole table replaced by something that is not one: status lists the workers as it would with no entries.
    before = fleet.client.get_metadata(["cpubench-fleet", "hosts"], default={})
    fleet.client.set_metadata(["cpubench-fleet", "hosts"], ["not", "a", "table"])
    try:
        listed = fleet.cli("status", "--scheduler", fleet.address)
    finally:
        fleet.client.set_metadata(["cpubench-fleet", "hosts"], before)
    one_line_no_traceback(listed)
    assert listed.returncode == 0 and "host" in listed.stdout, listed.stdout + listed.stderr


def test_scheduler_lost_mid_run_is_one_line_and_a_rerun_resumes(tmp_path: Path) -> None:
    """The scheduler's process dies while a host runs: one line saying so and what to do (exit 2), not a host shown
    "cancelled" and a traceback; what came home is kept, and a rerun on a new scheduler finishes only the rest."""
    import signal

    f = Fleet(tmp_path / "cluster")
    try:
        f.start(["h1"])
        cfg = write_config(tmp_path / "c.yaml", {"trivial": [1, 200]})  # bs 200: 10 s, still running at the kill
        home = tmp_path / "home"
        run = f.start_run("--config", str(cfg), "--out", str(home), "--no-report")
        try:
            wait_for(lambda: len(store.read_runs(home / "h1").records) == 1 if (home / "h1").is_dir() else False,
                     60, "h1's first run home")  # fmt: skip
            f.client.close()
            f.client = None
            f.kill("scheduler", signal.SIGKILL)
            out, err = run.communicate(timeout=60)
        finally:
            if run.poll() is None:
                run.kill()
        assert "Traceback" not in err and "cancelled" not in out, out + err
        lines = err.strip().splitlines()
        assert run.returncode == 2 and len(lines) == 1, out + err
        assert "lost the scheduler mid-run" in lines[0] and "1 run(s) that came home are kept" in lines[0], err
        assert [r.batch_size for r in store.read_runs(home / "h1").records] == [1]
        # A new scheduler, the worker again (it left with the old one): the rerun measures bs 200 only.
        f.kill("h1")  # gone already, or going: the next one takes its name
        f.start(["h1"])
        p = f.cli("run", "--scheduler", f.address, "--config", str(cfg), "--out", str(home), "--no-report")
        assert p.returncode == 0, p.stdout + p.stderr
        assert sorted(r.batch_size for r in store.read_runs(home / "h1").records if r.status == "ok") == [1, 200]
        assert len([c for c in f.calls("h1") if c["event"] == "start" and "--batch_size=1" in c["argv"]]) == 1
    finally:
        f.close()
