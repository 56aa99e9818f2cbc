"""Results a user can trust and share, through the real CLI (subprocesses, real files): no credential recorded, the
store never writes or reads through a link or a pipe, a point's measured batch sizes are never lost or rewritten,
pathological but valid JSON lines are skipped with ``runs.jsonl:LINE``, records that contradict themselves are
refused, and a folder is never compared with itself."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fakeengine import cpubench_run, fake_env, records, wait_for, write_config

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "schema2" / "data"

SECRETS = {"TF_TOKEN_app_terraform_io": "tok-123-SECRET", "TF_VAR_db_password": "pw-456-SECRET",
           "AWS_SECRET_ACCESS_KEY": "aws-789-SECRET", "OMP_AUTH_KEY": "omp-000-SECRET"}  # fmt: skip


def cpubench(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run([sys.executable, "-m", "cpubench", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def one_line(p: subprocess.CompletedProcess, *words: str) -> None:
    """Exit 2 with one stderr line (no traceback) holding every word."""
    err = p.stderr.strip()
    assert p.returncode == 2 and "Traceback" not in p.stderr and err.count("\n") == 0, (p.returncode, p.stderr)
    for w in words:
        assert w in err, err


# ---------------------------------------------------------------------------------------------------- credentials


def test_no_credential_in_the_environment_is_recorded(tmp_path: Path, env: dict[str, str]) -> None:
    env.update(SECRETS)
    env["TF_ENABLE_ONEDNN_OPTS"] = "1"
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8})
    out = tmp_path / "data"
    p = cpubench_run(["--config", str(cfg), "--out", str(out), "--host-id", "h1"], env, tmp_path)
    assert p.returncode == 0, p.stderr
    report = cpubench(["report", str(out), "-o", str(tmp_path / "summary"), "--no-model-table", "--no-plots"],
                      tmp_path)  # fmt: skip
    assert report.returncode == 0, report.stderr
    written = [out / "h1" / "host.json", out / "h1" / "runs.jsonl", *sorted((tmp_path / "summary").iterdir())]
    for f in written + sorted((out / "h1" / "logs").rglob("*.log")):
        text = f.read_text()
        for name, value in SECRETS.items():
            assert name not in text and value not in text, f
    host = json.loads((out / "h1" / "host.json").read_text())
    assert host["env"]["TF_ENABLE_ONEDNN_OPTS"] == "1"  # what changes speed is still there
    assert records(out)[0]["thread_env"]["TF_ENABLE_ONEDNN_OPTS"] == "1"


# ------------------------------------------------------------------------------------------- links, pipes, sizes


def test_a_runs_file_that_links_elsewhere_is_never_written_through(tmp_path: Path, env: dict[str, str]) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours\n")
    out = tmp_path / "data"
    (out / "h1").mkdir(parents=True)
    (out / "h1" / "runs.jsonl").symlink_to(outside)
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8})
    p = cpubench_run(["--config", str(cfg), "--out", str(out), "--host-id", "h1"], env, tmp_path)
    one_line(p, "runs.jsonl", "symbolic link")
    assert outside.read_text() == "not yours\n" and not any(c.get("event") == "start" for c in _calls(tmp_path))
    one_line(cpubench_run(["--config", str(cfg), "--out", str(out), "--host-id", "h1", "--dry-run"], env, tmp_path),
             "symbolic link")  # fmt: skip


def _calls(tmp_path: Path) -> list[dict]:
    f = tmp_path / "calls.jsonl"
    return [json.loads(x) for x in f.read_text().splitlines()] if f.exists() else []


@pytest.mark.parametrize("what", ["fifo", "dir", "link-host"])
def test_store_files_that_are_not_files_are_one_line_not_a_hang(tmp_path: Path, what: str) -> None:
    data = tmp_path / "data"
    shutil.copytree(FIXTURE, data)
    for host in ("s2-a", "s2-b"):
        shutil.rmtree(data / host / "logs")
    runs = data / "s2-a" / "runs.jsonl"
    target = data / "s2-a" / "host.json" if what == "link-host" else runs
    if what == "link-host":
        (tmp_path / "host.json").write_text(target.read_text())
        target.unlink()
        target.symlink_to(tmp_path / "host.json")
    else:
        runs.unlink()
        os.mkfifo(runs) if what == "fifo" else runs.mkdir()
    word = "symbolic link" if what == "link-host" else ("named pipe" if what == "fifo" else "a folder")
    t0 = time.monotonic()
    for args in (["report", "data", "-o", "out", "--no-model-table", "--no-plots"],
                 ["compare", "data/s2-a", "data/s2-b"], ["pages", "data", "-o", "site", "--no-plots"]):  # fmt: skip
        one_line(cpubench(args, tmp_path, timeout=60), str(target.relative_to(tmp_path)), word)
    assert time.monotonic() - t0 < 60


# ------------------------------------------------------------------------------------- a point's measured sizes

# Takes the engine's flags; measures each batch size (FAKE_HANG: the size that hangs; FAKE_CALLS: every start).
POINT_ENGINE = textwrap.dedent(
    r"""
    import json, os, sys, time
    args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
    sizes = [int(x) for x in args.get("batch_sizes", args["batch_size"]).split(",")]
    with open(os.environ["FAKE_CALLS"], "a") as f:
        f.write(json.dumps({"event": "start", "sizes": sizes, "pid": os.getpid()}) + "\n")
    for b in sizes:
        t0 = time.time()
        if str(b) == os.environ.get("FAKE_HANG"):
            time.sleep(600)
        steps = [0.01 * b, 0.01 * b]
        print("total images/sec: 100.00", flush=True)
        rec = {"schema": 2, "status": "ok", "images_per_sec": 100.0, "model": args["model"], "batch_size": b,
               "global_batch_size": b, "step_times": steps, "timings": {"wall": time.time() - t0}}
        path = args["result_json"].replace("{batch_size}", str(b))
        with open(path + ".tmp", "w") as f:
            json.dump(rec, f)
        os.replace(path + ".tmp", path)
    """
)


def point_env(tmp_path: Path, hang: str) -> dict[str, str]:
    env = fake_env(tmp_path)
    engine = tmp_path / "point_engine.py"
    engine.write_text(POINT_ENGINE)
    env["CPUBENCH_ENGINE"] = f"{sys.executable} {engine}"
    env["FAKE_HANG"] = hang
    return env


def point_config(tmp_path: Path, timeout: float = 30) -> Path:
    return write_config(tmp_path / "p.yaml", {"trivial": [1, 2, 4]}, batches_per_process=True, timeout=timeout,
                        matrix={"forward_only": [True]})  # fmt: skip


def test_a_point_that_times_out_keeps_the_sizes_it_measured(tmp_path: Path) -> None:
    out = tmp_path / "data"
    p = cpubench_run(["--config", str(point_config(tmp_path, timeout=2)), "--out", str(out), "--host-id", "h1"],
                     point_env(tmp_path, hang="4"), tmp_path)  # fmt: skip
    assert p.returncode == 1, p.stderr
    recs = {r["batch_size"]: r for r in records(out)}
    assert {b: r["status"] for b, r in recs.items()} == {1: "ok", 2: "ok", 4: "timeout"}
    assert recs[1]["images_per_sec"] == 100.0 and "2 ok, 0 failed, 1 timeout" in p.stdout
    assert recs[2]["duration"] < 1.5 < recs[4]["duration"]  # each its own time, the hang's to the size that hung


def test_a_point_resumed_after_a_kill_measures_only_what_is_missing_and_rewrites_nothing(tmp_path: Path) -> None:
    out = tmp_path / "data"
    args = ["--config", str(point_config(tmp_path)), "--out", str(out), "--host-id", "h1"]
    env = point_env(tmp_path, hang="4")
    proc = subprocess.Popen([sys.executable, "-m", "cpubench", "run", *args], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    logs = out / "h1" / "logs" / "syn-parameter_server-1cpus-inference"
    wait_for(lambda: (logs / "trivial-bs2-r0.json").exists(), 60, "sizes 1 and 2 measured")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    engine_pid = _calls(tmp_path)[0]["pid"]
    wait_for(lambda: not Path(f"/proc/{engine_pid}").exists() or "Z" in _state(engine_pid), 10, "the engine to die")
    kept = {f: f.read_bytes() for f in logs.iterdir()}
    assert set(f.name for f in kept) == {"trivial-bs1-2-4-r0.log", "trivial-bs1-r0.json", "trivial-bs2-r0.json"}
    assert records(out) == []  # killed before anything was recorded
    p = cpubench_run(args, point_env(tmp_path, hang=""), tmp_path)
    assert p.returncode == 0, p.stderr
    assert [c["sizes"] for c in _calls(tmp_path)] == [[1, 2, 4], [4]]  # the engine was asked for the missing size
    assert {f: f.read_bytes() for f in kept} == kept  # the kept evidence is as it was
    recs = {r["batch_size"]: r for r in records(out)}
    assert [recs[b]["status"] for b in (1, 2, 4)] == ["ok", "ok", "ok"]
    assert recs[1]["recovered_from"] == "trivial-bs1-r0.json" and recs[4]["recovered_from"] is None
    assert recs[1]["log"].endswith("trivial-bs1-2-4-r0.log") and recs[4]["log"].endswith("trivial-bs4-r0.log")


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1]
    except OSError:
        return "Z"


# ------------------------------------------------------------------------------------------ pathological lines


def pathological_lines() -> dict[str, str]:
    """Lines that are valid JSON (or nearly) but no record, each with the words its warning must hold."""
    good = json.loads((FIXTURE / "s2-a" / "runs.jsonl").read_text().splitlines()[0])

    def edit(**kw: object) -> str:
        return json.dumps({**good, **kw})

    return {
        "[" * 100_000 + "]" * 100_000: "nested deeper",
        "{" + '"a":' * 50_000 + "1" + "}" * 50_000: "not a JSON record",
        '"just a string"': "not a JSON object",
        edit(params=["a"]): "params",
        edit(params={**good["params"], "num_intra_threads": "abc"}): "params.num_intra_threads",
        edit(params={**good["params"], "forward_only": "yes"}): "params.forward_only",
        edit(threads=[1, 2]): "threads",
        edit(timings={"import": "slow"}): "timings",
        edit(images_per_sec=1e308): "more than any host measures",
        edit(images_per_sec=good["images_per_sec"] * 2): "disagrees with its own step times",
        edit(step_times=[1e308, 1e308]): "disagrees with its own step times",
        edit(model="../../../ESCAPED"): "model",
        edit(model="a\nb"): "model",
        edit(host_id=7): "host_id",
        edit(repeat=-1): "repeat",
        edit(noise={"foreign_cpu_pct": "x"}): "noise",
        edit(latency_ms="fast"): "",  # derived on read: a stored one is ignored, the record is fine
    }


def test_pathological_lines_are_skipped_with_their_line_and_the_folder_still_works(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(FIXTURE, data)
    lines = pathological_lines()
    with open(data / "s2-a" / "runs.jsonl", "a") as f:
        f.writelines(line + "\n" for line in lines)
    base = 40  # the fixture's lines
    for args in (["report", "data", "-o", "out", "--no-model-table", "--no-plots"],
                 ["compare", "data/s2-a", "data/s2-b"], ["pages", "data", "-o", "site", "--no-plots"]):  # fmt: skip
        p = cpubench(args, tmp_path)
        assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
        for n, words in enumerate(lines.values(), base + 1):
            if words:
                assert any(f"runs.jsonl:{n}: " in ln and words in ln for ln in p.stderr.splitlines()), (
                    n,
                    words,
                    p.stderr,
                )
    env = {**os.environ, "CPUBENCH_NO_TF_PROBE": "1", "CPUBENCH_LOCK": str(tmp_path / "lock"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # fmt: skip
    p = cpubench(["run", "--config", str(FIXTURE.parent / "scaling.yaml"), "--out", "data", "--host-id", "s2-a",
                  "--dry-run"], tmp_path, env)  # fmt: skip
    assert p.returncode == 0 and "0 runs to do, 24 already done" in p.stdout, p.stdout + p.stderr


def test_a_folder_is_never_compared_with_itself(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE, tmp_path / "data")
    (tmp_path / "alias").symlink_to(tmp_path / "data" / "s2-a")
    for other in ("data/s2-a/", "./data/s2-a", "alias", str(tmp_path / "data" / "s2-a")):
        one_line(cpubench(["compare", "data/s2-a", other], tmp_path), "same folder")
