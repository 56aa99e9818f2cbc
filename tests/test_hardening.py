"""A hostile but realistic user: full disks, broken records, read-only folders, two sweeps at once, kill -9 while
data is generated. Real subprocesses and real files; full and read-only disks are real tmpfs mounts in a private
mount namespace (``unshare -m``), so nothing outside the test's folders is touched."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from fakeengine import ROOT, calls, cpubench_run, pid_alive, records, wait_for, write_config

from cpubench.execution import executor
from cpubench.host import locks
from cpubench.render import report
from cpubench.results import store

HAVE_NAMESPACES = shutil.which("unshare") is not None and subprocess.run(
    ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True
).returncode == 0  # fmt: skip
needs_mounts = pytest.mark.skipif(not HAVE_NAMESPACES, reason="needs unshare -m and tmpfs mounts (root)")


def in_namespace(script: str, environ: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a shell script in a private mount namespace (its mounts vanish with it)."""
    return subprocess.run(["unshare", "-m", "sh", "-euc", script], env=environ, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


@needs_mounts
def test_full_disk_stops_the_sweep_with_the_fix_and_the_measured_run_is_recorded_after(
    tmp_path: Path, env: dict[str, str]
) -> None:
    cfg = write_config(tmp_path / "c.yaml", {"inception3": 8, "trivial": 8})
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    run = f"{sys.executable} -m cpubench run --config {cfg} --out {mnt}/data --host-id h1"
    logs = f"{mnt}/data/h1/logs/syn-replicated-1cpus"
    p = in_namespace(
        textwrap.dedent(
            f"""\
            mount -t tmpfs -o size=1m tmpfs {mnt}
            rc=0; {run} > {tmp_path}/first.out 2> {tmp_path}/first.err || rc=$?
            echo "first rc=$rc"
            ls {logs} > {tmp_path}/first.ls
            cp {mnt}/data/h1/runs.jsonl {tmp_path}/first.jsonl 2>/dev/null || true
            rm {logs}/filler
            rc=0; {run} > {tmp_path}/second.out 2> {tmp_path}/second.err || rc=$?
            echo "second rc=$rc"
            cp {mnt}/data/h1/runs.jsonl {tmp_path}/second.jsonl
            """
        ),
        env,
        tmp_path,
    )
    assert p.returncode == 0, p.stderr
    assert "first rc=3" in p.stdout and "second rc=0" in p.stdout
    err = (tmp_path / "first.err").read_text()
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("cpubench run: error: no space left on the disk of ")
    assert f"its result is kept at {logs}/inception3-bs8-r0.json" in err
    assert err.rstrip().endswith("free space, then run the same command again: 2 runs resume")
    assert "inception3-bs8-r0.json" in (tmp_path / "first.ls").read_text()
    assert not (tmp_path / "first.jsonl").exists() or (tmp_path / "first.jsonl").read_text() == ""
    recs = [json.loads(ln) for ln in (tmp_path / "second.jsonl").read_text().splitlines()]
    assert [(r["model"], r["status"]) for r in recs] == [("inception3", "ok"), ("trivial", "ok")]
    assert recs[0]["images_per_sec"] == 50.0 and recs[0]["recovered_from"] == "inception3-bs8-r0.json"
    assert "measured before, not recorded; recorded from" in (tmp_path / "second.out").read_text()
    starts = [c["key"].split("/")[2] for c in calls(tmp_path) if c["event"] == "start"]
    assert starts == ["inception3", "trivial"]  # the measured run was not measured again


@needs_mounts
def test_read_only_out_or_out_that_is_a_file_is_one_clear_line(tmp_path: Path, env: dict[str, str]) -> None:
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8})
    mnt = tmp_path / "ro"
    mnt.mkdir()
    p = in_namespace(
        f"mount -t tmpfs -o ro tmpfs {mnt}\n"
        f"{sys.executable} -m cpubench run --config {cfg} --out {mnt}/data --host-id h1 || echo rc=$?",
        env,
        tmp_path,
    )
    assert "rc=2" in p.stdout
    assert p.stderr == f"cpubench run: error: {mnt} is not writable: give --out a folder you can write to\n"
    afile = tmp_path / "afile"
    afile.write_text("x")
    p = cpubench_run(["--config", str(cfg), "--out", str(afile), "--host-id", "h1"], env, tmp_path)
    assert p.returncode == 2
    assert p.stderr == f"cpubench run: error: {afile} is a file, not a folder: give --out a folder (it is created " \
                       "if missing)\n"  # fmt: skip
    assert calls(tmp_path) == []


def test_a_result_json_with_step_times_that_are_not_numbers_is_a_failed_run(
    tmp_path: Path, env: dict[str, str]
) -> None:
    cfg = write_config(tmp_path / "c.yaml", {"mobilenet": 8, "trivial": 8})
    p = cpubench_run(["--config", str(cfg), "--out", str(tmp_path / "data"), "--host-id", "h1"], env, tmp_path)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    bad, ok = records(tmp_path / "data")
    assert bad["status"] == "failed" and bad["images_per_sec"] is None
    assert bad["reason"] == (
        "exit code 0: the result JSON is not a valid record: step_times: expected seconds (finite numbers >= 0), "
        "found 'fast'"
    )
    assert ok["status"] == "ok"  # the sweep went on


def test_make_data_dies_with_the_runner(tmp_path: Path, env: dict[str, str]) -> None:
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8}, matrix={"data": ["real"]},
                       generate_data={"count": 20000, "size": 64})  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "cpubench", "run", "--config", str(cfg), "--out",
                             str(tmp_path / "data"), "--host-id", "h1"], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def make_data_pid() -> int | None:
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    cmd = (d / "cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if b"make-data" in cmd and any(str(tmp_path).encode() in c for c in cmd):
                    return int(d.name)
        return None

    try:
        wait_for(lambda: make_data_pid() is not None, 60, "make-data to start")
        child = make_data_pid()
        assert child is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        wait_for(lambda: not pid_alive(child), 10, "make-data to die with the runner")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_one_benchmark_per_machine_whatever_its_folder(tmp_path: Path, env: dict[str, str]) -> None:
    first_cfg = write_config(tmp_path / "a.yaml", {"trivial": 8})
    first = subprocess.Popen([sys.executable, "-m", "cpubench", "run", "--config", str(first_cfg), "--out",
                              str(tmp_path / "a"), "--host-id", "h1"], env={**env, "FAKE_SLEEP": "8"}, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        wait_for(lambda: bool(calls(tmp_path)), 30, "the first sweep's engine to start")
        cfg = write_config(tmp_path / "b.yaml", {"trivial": 4})
        args = ["--config", str(cfg), "--out", str(tmp_path / "b"), "--host-id", "other"]
        p = cpubench_run(args, env, tmp_path)
        assert p.returncode == 2 and p.stdout == ""
        assert p.stderr.startswith(
            f"cpubench run: error: another benchmark is running on this machine (pid {first.pid} writing to "
            f"{(tmp_path / 'a' / 'h1').resolve()} since "
        )
        assert p.stderr.rstrip().endswith("pass --force to measure anyway (the records will say so)")
        assert not (tmp_path / "b" / "other" / store.RUNS_FILE).exists()
        forced = cpubench_run([*args, "--force"], env, tmp_path)
        assert forced.returncode == 0, forced.stderr
        assert "--force: another benchmark is running" in forced.stdout
        (rec,) = records(tmp_path / "b", "other")
        assert rec["lock_forced"].startswith(f"measured while another benchmark ran (pid {first.pid}")
    finally:
        first.wait(60)
    (rec,) = records(tmp_path / "a")
    assert rec["status"] == "ok" and rec["lock_forced"] is None


def _write_lines(path: Path, recs: list[Any]) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in recs))


def test_the_store_checks_known_fields_and_names_file_and_line(tmp_path: Path) -> None:
    root = tmp_path / "data"
    store.write_host(root, {"host_id": "h", "machine_fingerprint": "x"})
    good = {"schema": 2, "host_id": "h", "setting": "syn-replicated-1cpus", "model": "resnet50", "batch_size": 8,
            "num_devices": 1, "repeat": 0, "status": "ok", "images_per_sec": 10.0, "run_hash": "a",
            "params": {"data": "syn", "variable_update": "replicated", "device": "cpu", "num_devices": 1}}  # fmt: skip
    lines = [
        good,
        {**good, "repeat": 1, "images_per_sec": True},
        {**good, "repeat": 2, "images_per_sec": -5.0},
        {**good, "repeat": 3, "status": "great"},
        {**good, "repeat": 4, "images_per_sec": "fast"},
        "this is not a record",
        {**good, "repeat": 5, "step_times": [0.1, "x"]},
        {**good, "repeat": 6, "images_per_sec": 12.0},
        {**good, "repeat": 7, "schema": 99},
    ]
    _write_lines(root / "h" / store.RUNS_FILE, lines)
    f = root / "h" / store.RUNS_FILE
    files, merged = report.build_report([root], tmp_path / "s", model_rows=None, plots=False)
    assert [r.rec.repeat for r in merged.runs] == [0, 6]
    assert merged.warnings == [
        f"{f}:2: images_per_sec: expected a number, got True; skipped",
        f"{f}:3: images_per_sec: an ok run needs images/sec > 0, got -5.0; skipped",
        f"{f}:4: status: expected one of ok, failed, timeout, skipped, got 'great'; skipped",
        f"{f}:5: images_per_sec: expected a number, got 'fast'; skipped",
        f"{f}:6: not a JSON record (Expecting value at column 1); skipped",
        f"{f}:7: step_times: expected seconds (finite numbers >= 0), found 'x'; skipped",
        f"{f}:9: written by a newer cpubench (record schema 99, this one reads up to 2): upgrade cpubench to read "
        "it; it is not rerun",
    ]
    md = files.summary.read_text()
    assert "| resnet50 | 11.00 ~[1] |" in md  # the median of 10 and 12 only (and their spread is flagged)
    assert md.count("runs.jsonl:") == 7  # each skipped line is in the report's warnings


def test_records_of_a_newer_cpubench_are_never_rerun(tmp_path: Path, env: dict[str, str]) -> None:
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8})
    out = tmp_path / "data"
    args = ["--config", str(cfg), "--out", str(out), "--host-id", "h1"]
    assert cpubench_run(args, env, tmp_path).returncode == 0
    (rec,) = records(out)
    _write_lines(out / "h1" / store.RUNS_FILE, [{**rec, "schema": 3, "new_field": {"x": 1}}])
    p = cpubench_run(args, env, tmp_path)
    assert p.returncode == 0
    assert "0 runs to do, 1 already done" in p.stdout
    assert "1 runs were recorded by a newer cpubench: not rerun (upgrade)" in p.stdout
    assert "runs.jsonl:1: written by a newer cpubench (record schema 3" in p.stderr and "upgrade" in p.stderr
    assert len([c for c in calls(tmp_path) if c["event"] == "start"]) == 1


def test_a_crash_reason_is_the_last_meaningful_line() -> None:
    assert executor.last_error_line("Generating model\nRunning warm up\n" + "-" * 64 + "\n") == "Generating model"
    assert (
        executor.last_error_line("ValueError: bad shape\nStep\tImg/sec\ttotal_loss\n----\n") == "ValueError: bad shape"
    )
    assert executor.last_error_line("# cpubench command: x\n==========\n") is None


def test_files_are_as_readable_as_the_umask_allows(tmp_path: Path, env: dict[str, str]) -> None:
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8})
    out = tmp_path / "data"
    p = subprocess.run([sys.executable, "-m", "cpubench", "run", "--config", str(cfg), "--out", str(out),
                        "--host-id", "h1"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
                       preexec_fn=lambda: os.umask(0o022))  # fmt: skip
    assert p.returncode == 0, p.stderr
    for f in (out / "h1" / "host.json", out / "h1" / store.RUNS_FILE):
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f
    assert locks.LOCK_ENV in env  # the machine lock of this test is its own file


def test_a_reader_of_stdout_that_left_is_no_traceback() -> None:
    """``cpubench compare A B --json | head``: the reader leaves before the command has written all it has. The
    command stops as a tool killed by SIGPIPE does (exit 141), with nothing on stderr."""
    p = subprocess.Popen([sys.executable, "-m", "cpubench", "models"], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()  # before the command writes its first line
    err = p.stderr.read()
    assert p.wait(timeout=60) == 141 and err == "", err
