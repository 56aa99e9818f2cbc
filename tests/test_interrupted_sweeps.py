"""A sweep interrupted mid-run and resumed: signals, a lost terminal, config edits between attempts.

Real ``cpubench run`` subprocesses, real signals and real files. Where a signal must land at one exact point of the
runner (inside py-cpuinfo, while a record is written, while the sweep is stopping), a ``sitecustomize`` on the
runner's ``PYTHONPATH`` wraps that one function to send the runner a real signal from there, so no test depends on
timing.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from fakeengine import calls, pid_alive, records, wait_for, write_config

from cpubench.host import topology

RUN = [sys.executable, "-m", "cpubench", "run"]


def inject(tmp_path: Path, env: dict[str, str], code: str) -> dict[str, str]:
    """``env`` with a ``sitecustomize`` (``code``) that every Python it starts imports first."""
    folder = tmp_path / "inject"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(textwrap.dedent(code))
    return {**env, "PYTHONPATH": f"{folder}{os.pathsep}{env['PYTHONPATH']}"}


def run_args(cfg: Path, out: Path) -> list[str]:
    return [*RUN, "--config", str(cfg), "--out", str(out), "--host-id", "h1"]


def ctrl_c(proc: subprocess.Popen, ready: Callable[[], bool], what: str) -> tuple[str, str]:
    """Once ``ready()``, the user's Ctrl-C to the runner; its stdout and stderr (it is killed if it outlives them)."""
    try:
        wait_for(ready, 60, what)
        proc.send_signal(signal.SIGINT)
        return proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


def starts(tmp_path: Path) -> list[dict]:
    return [c for c in calls(tmp_path) if c["event"] == "start"]


def test_a_signal_while_the_host_facts_are_read_stops_the_sweep_and_records_no_fact(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """Ctrl-C while py-cpuinfo runs (the first second of a first sweep on a machine) was swallowed by its
    ``except Exception``: host.json kept "no family, no model" for good, and the first engine still ran."""
    env = inject(tmp_path, env, """\
        import os, signal
        if os.environ.get("INJECT_ONCE") and not os.path.exists(os.environ["INJECT_ONCE"]):
            import cpuinfo
            _real = cpuinfo.get_cpu_info
            def get_cpu_info():
                open(os.environ["INJECT_ONCE"], "w").close()
                os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl-C, while the CPU's facts are read
                return _real()
            cpuinfo.get_cpu_info = get_cpu_info
        """)  # fmt: skip
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8})
    out = tmp_path / "data"
    p = subprocess.run(run_args(cfg, out), env={**env, "INJECT_ONCE": str(tmp_path / "once")}, cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert (tmp_path / "once").exists()  # the signal was sent from inside py-cpuinfo
    assert p.returncode == 130, p.stdout + p.stderr
    assert "Traceback" not in p.stderr and "cpubench: interrupted by SIGINT" in p.stdout
    assert starts(tmp_path) == []  # no engine started after Ctrl-C
    assert not (out / "h1" / "host.json").exists()  # nothing half-collected is kept as this machine's facts
    p = subprocess.run(run_args(cfg, out), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    host = json.loads((out / "h1" / "host.json").read_text())
    assert "py-cpuinfo failed" not in json.dumps(host)
    assert [r["status"] for r in records(out)] == ["ok"]


# An engine whose behaviour the runner's environment picks: "hang" before writing its result, "linger" after it
# (a real engine's teardown), "ok" at once. Its images/sec is its --num_batches, so which attempt's result a record
# holds can be told.
ENGINE = """\
import json, os, sys, time
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
mode = os.environ.get("ENGINE_MODE", "ok")
with open(os.environ["FAKE_CALLS"], "a") as f:
    f.write(json.dumps({"event": "start", "pid": os.getpid(), "mode": mode, "argv": sys.argv[1:]}) + "\\n")
print("Model: " + args["model"], flush=True)
if mode == "hang":
    time.sleep(120)
rec = {"schema": 1, "engine_version": "fake-1", "model": args["model"], "batch_size": int(args["batch_size"]),
       "status": "ok", "reason": None, "images_per_sec": float(args["num_batches"]), "step_times": [0.01]}
with open(args["result_json"] + ".tmp", "w") as f:
    json.dump(rec, f)
os.replace(args["result_json"] + ".tmp", args["result_json"])
if mode == "linger":
    time.sleep(120)
"""


def test_a_resume_never_records_another_attempts_result_as_its_own(tmp_path: Path, env: dict[str, str]) -> None:
    """Attempt 1 (num_batches 2) is interrupted before its result; the config is edited (num_batches 5) and attempt
    2 is interrupted after writing its result, at the same file name; the edit is undone and the sweep resumed. The
    resume found attempt 1's log (its run hash) and recorded attempt 2's result, a num_batches=5 measurement, as the
    num_batches=2 run: ok, with a command it was not measured with."""
    engine = tmp_path / "engine.py"
    engine.write_text(ENGINE)
    env = {**env, "CPUBENCH_ENGINE": f"{sys.executable} {engine}"}
    out = tmp_path / "data"
    result = out / "h1" / "logs" / "syn-replicated-1cpus" / "trivial-bs8-r0.json"

    def interrupted(mode: str, num_batches: int, ready: object, repeats: int = 1) -> None:
        cfg = write_config(tmp_path / "c.yaml", {"trivial": 8}, num_batches=num_batches, repeats=repeats)
        proc = subprocess.Popen(run_args(cfg, out), env={**env, "ENGINE_MODE": mode}, cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        _, err = ctrl_c(proc, ready, f"the {mode} engine")
        assert proc.returncode == 130, err
        assert not pid_alive(calls(tmp_path)[-1]["pid"])

    interrupted("hang", 2, lambda: len(calls(tmp_path)) == 1)
    interrupted("linger", 5, lambda: len(calls(tmp_path)) == 2 and result.exists())
    assert records(out) == []
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8}, num_batches=2)
    p = subprocess.run(run_args(cfg, out), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    (rec,) = records(out)
    assert "--num_batches=2" in rec["command"]
    assert rec["images_per_sec"] == 2.0 and rec.get("recovered_from") is None  # measured now, not borrowed
    assert len(calls(tmp_path)) == 3

    # The rule still lets a run measured but never recorded be recorded from its own result: no fourth engine.
    interrupted("linger", 2, lambda: len(calls(tmp_path)) == 4 and result.with_name("trivial-bs8-r1.json").exists(),
                repeats=2)  # fmt: skip
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8}, num_batches=2, repeats=2)
    p = subprocess.run(run_args(cfg, out), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    last = records(out)[-1]
    assert last["repeat"] == 1 and last["recovered_from"] == "trivial-bs8-r1.json" and last["images_per_sec"] == 2.0
    assert len(calls(tmp_path)) == 4


def test_sighup_after_the_terminal_closed_stops_cleanly(tmp_path: Path, env: dict[str, str]) -> None:
    """The terminal closes (its output now fails with EIO), then SIGHUP arrives: the closing line cannot be printed,
    which was a traceback and exit 1 instead of the stop the signal asks for."""
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8}, repeats=2)
    out = tmp_path / "data"
    master, slave = pty.openpty()
    with open(tmp_path / "stderr", "w") as err:
        proc = subprocess.Popen(run_args(cfg, out), env={**env, "FAKE_SLEEP": "60"}, cwd=tmp_path, stdin=slave,
                                stdout=slave, stderr=err, start_new_session=True)  # fmt: skip
    os.close(slave)
    try:
        wait_for(lambda: bool(calls(tmp_path)), 60, "the engine to start")
        os.close(master)  # the terminal goes away
        proc.send_signal(signal.SIGHUP)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert (tmp_path / "stderr").read_text() == ""
    assert not pid_alive(calls(tmp_path)[0]["pid"]) and records(out) == []
    p = subprocess.run(run_args(cfg, out), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr  # the locks were released
    assert len(records(out)) == 2


def test_a_reader_of_the_output_that_exits_does_not_stop_the_sweep(tmp_path: Path, env: dict[str, str]) -> None:
    """``cpubench run | head -1``, or a ``tee`` that died: printing the first finished run was a BrokenPipeError
    traceback that ended the sweep there; the sweep now goes on without printing."""
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8}, repeats=3)
    out = tmp_path / "data"
    read, write = os.pipe()
    os.close(read)
    try:
        p = subprocess.run(run_args(cfg, out), env=env, cwd=tmp_path, stdout=write, stderr=subprocess.PIPE,
                           text=True, timeout=120)  # fmt: skip
    finally:
        os.close(write)
    assert p.returncode == 0 and p.stderr == ""
    assert [r["status"] for r in records(out)] == ["ok", "ok", "ok"]


def test_a_second_ctrl_c_while_the_sweep_stops_is_no_traceback(tmp_path: Path, env: dict[str, str]) -> None:
    """A user presses Ctrl-C again while the sweep stops: the second signal raised again inside the handling of the
    first, a traceback and exit 1 in place of the closing line."""
    env = inject(tmp_path, env, """\
        import os, signal
        if os.environ.get("INJECT_RUNNER") == "1":
            os.environ["INJECT_RUNNER"] = "0"  # not in the engine children
            from cpubench.sweep import progress
            _say = progress.Progress.say
            def say(self, line):
                if line.startswith("cpubench: interrupted by"):
                    os.kill(os.getpid(), signal.SIGINT)  # the second Ctrl-C
                _say(self, line)
            progress.Progress.say = say
        """)  # fmt: skip
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8}, repeats=2)
    out = tmp_path / "data"
    proc = subprocess.Popen(run_args(cfg, out), env={**env, "FAKE_SLEEP": "60", "INJECT_RUNNER": "1"}, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    stdout, stderr = ctrl_c(proc, lambda: bool(calls(tmp_path)), "the engine to start")
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and stdout.strip().splitlines()[-1].startswith("cpubench: interrupted by SIGINT")
    assert not pid_alive(calls(tmp_path)[0]["pid"]) and records(out) == []


def test_ctrl_c_while_a_record_is_refused_starts_no_other_engine(tmp_path: Path, env: dict[str, str]) -> None:
    """Ctrl-C lands while a record is written (so it waits for the write) and the write then fails (the folder
    became read-only): the sweep went on to the next run and measured it whole before it stopped."""
    env = inject(tmp_path, env, """\
        import errno, os, signal
        if os.environ.get("INJECT_RUNNER") == "1":
            os.environ["INJECT_RUNNER"] = "0"  # not in the engine children
            from cpubench.results import store
            def append_run(root, record):
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the record is written
                raise OSError(errno.EROFS, "Read-only file system")
            store.append_run = append_run
        """)  # fmt: skip
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8}, repeats=3)
    out = tmp_path / "data"
    p = subprocess.run(run_args(cfg, out), env={**env, "INJECT_RUNNER": "1"}, cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert p.returncode == 130, p.stdout + p.stderr
    assert "unrecorded: cannot write" in p.stdout and "cpubench: interrupted by SIGINT" in p.stdout
    assert len(starts(tmp_path)) == 1  # the next engine never started


def test_the_limits_probes_children_die_with_a_probe_killed_outright(tmp_path: Path, env: dict[str, str]) -> None:
    """``kill -9`` of a process measuring the host's limits: its GEMM child and its triad children go with it, so a
    sweep started again at once never reads the limits against a leftover probe keeping every core busy.

    Each child is held (a ``sitecustomize``) just after it starts, long enough that only the tie to its parent can
    end it within the test."""
    env = inject(tmp_path, env, """\
        import sys, time
        if "cpubench.host.limits" in getattr(sys, "orig_argv", ()):
            time.sleep(120)  # a probe child, held: it must die with its parent, not when it is done
        """)  # fmt: skip
    for how in ("gemm", "triad"):
        call = 'limits._child(["gemm", "--dtypes", "fp32"])' if how == "gemm" else "limits.triad([0])"
        parent = subprocess.Popen([sys.executable, "-c", f"from cpubench.host import limits; {call}"], env=env,
                                  cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

        def children(pid: int = parent.pid) -> list[int]:
            found = []
            for task in Path(f"/proc/{pid}/task").glob("*"):
                found += [int(c) for c in (task / "children").read_text().split()]
            return found

        kids: list[int] = []
        try:
            wait_for(lambda: children() != [], 60, f"the {how} probe's child")
            kids = children()
            parent.kill()
            parent.wait(timeout=30)
            wait_for(lambda held=kids: not any(map(pid_alive, held)), 30, f"the {how} probe's children to die")
        finally:
            if parent.poll() is None:
                parent.kill()
            for k in kids:  # a failed check leaves none behind
                if pid_alive(k):
                    os.kill(k, signal.SIGKILL)


@pytest.mark.skipif(len(topology.Topology.read().nodes) != 1, reason="remote memory is n/a on one-node hosts only")
def test_a_run_still_na_for_its_recorded_reason_is_not_recorded_again_on_resume(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """A skipped run is tried again on every resume (its reason may have gone), but while the reason stands its
    record already says so: resumes add no copy of the "n/a" line and count it as still n/a, not as to do."""
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8}, matrix={"memory": ["remote"]})
    out = tmp_path / "data"
    for _ in range(3):
        p = subprocess.run(run_args(cfg, out), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
    recs = records(out)
    assert [(r["status"], r["reason"]) for r in recs] == [("skipped", "n/a: one NUMA node")]
    assert "; 1 still n/a as recorded before" in p.stdout, p.stdout
