"""A fake engine for runner tests (via ``CPUBENCH_ENGINE``) and helpers that drive ``cpubench run`` in subprocesses.

The fake engine's behaviour depends on the model name, so crashes, hangs and slow runs are deterministic and fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from cpubench.host import locks
from cpubench.results import store
from cpubench.sweep import session as runner

ROOT = Path(__file__).resolve().parents[1]

# Model -> behaviour: trivial ok (sleeps FAKE_SLEEP), lenet fails with a result JSON (OOM), alexnet hangs (timeout),
# vgg16 dies of SIGSEGV without a result JSON, googlenet claims ok with 0 images/sec, mobilenet claims ok with a
# step time that is not a number, inception3 is ok and then fills the disk of its log folder, resnet101 reports
# CPUs it was not pinned to.
FAKE_ENGINE = textwrap.dedent(
    r"""
    import json, os, signal, sys, time
    args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
    model, bs = args["model"], int(args["batch_size"])
    key = "/".join([args["variable_update"], args.get("data_dir", "syn"), model, str(bs)])
    calls = os.environ.get("FAKE_CALLS")
    def note(event):
        if calls:
            with open(calls, "a") as f:
                f.write(json.dumps({"event": event, "pid": os.getpid(), "key": key, "argv": sys.argv[1:],
                                    "omp": os.environ.get("OMP_NUM_THREADS"), "exe": sys.argv[0]}) + "\n")
    note("start")
    def result(**kw):
        base = {"schema": 1, "engine_version": "fake-1", "model": model, "batch_size": bs, "step_times": [],
                "timings": {"import": 0.01, "build": 0.02, "warmup": 0.03, "measured": 0.04}}
        base.update(kw)
        with open(args["result_json"] + ".tmp", "w") as f:
            json.dump(base, f)
        os.replace(args["result_json"] + ".tmp", args["result_json"])
    print("TensorFlow:  fake")
    print("Model:       " + model)
    if model == "trivial":
        time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
        print("total images/sec: %.2f" % (100.0 + bs))
        result(status="ok", reason=None, images_per_sec=100.0 + bs, step_times=[0.01, 0.02])
    elif model == "lenet":
        print("Traceback (most recent call last):", file=sys.stderr)
        print("tensorflow.python.framework.errors_impl.ResourceExhaustedError: OOM when allocating tensor",
              file=sys.stderr)
        result(status="failed", reason="out of memory: OOM when allocating tensor of shape [64,3,224,224]",
               images_per_sec=None)
        sys.exit(1)
    elif model == "alexnet":
        print("Running warm up", flush=True)
        time.sleep(120)
    elif model == "vgg16":
        sys.stdout.flush()
        print("Fatal Python error: Segmentation fault", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGSEGV)
    elif model == "googlenet":
        result(status="ok", reason=None, images_per_sec=0.0)
    elif model == "resnet101":  # says it ran on a CPU it was not pinned to
        result(schema=2, status="ok", reason=None, images_per_sec=7.0, cpus=[99])
    elif model == "mobilenet":
        result(status="ok", reason=None, images_per_sec=5.0, step_times=["fast", 0.1])
    elif model == "inception3":  # measured, then the disk fills up before the runner records it
        result(status="ok", reason=None, images_per_sec=50.0, step_times=[0.1, 0.2])
        fd = os.open(os.path.join(os.path.dirname(args["result_json"]), "filler"), os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"x" * 4096)
        except OSError:
            os.close(fd)
    note("done")
    """
)


def fake_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a runner subprocess using the fake engine; calls are logged to ``tmp_path/calls.jsonl``."""
    engine = tmp_path / "fake_engine.py"
    engine.write_text(FAKE_ENGINE)
    e = dict(os.environ)
    e.update(
        {
            runner.ENGINE_ENV: f"{sys.executable} {engine}",
            "CPUBENCH_NO_TF_PROBE": "1",
            "FAKE_CALLS": str(tmp_path / "calls.jsonl"),
            "PYTHONPATH": str(ROOT),
            locks.LOCK_ENV: str(tmp_path / "machine.lock"),
        }
    )
    return e


def write_config(path: Path, models: dict[str, int], **extra: Any) -> Path:
    cfg = {
        "name": "test",
        "device": "cpu",
        "num_gpus": [1],
        "repeats": 1,
        "num_batches": 2,
        "num_warmup_batches": 1,
        "timeout": 30,
        "models": models,
        "matrix": {"variable_update": ["replicated"]},
    }
    cfg.update(extra)
    path.write_text(json.dumps(cfg))  # JSON is YAML
    return path


def cpubench_run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cpubench", "run", *args], env=env, cwd=cwd, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def calls(tmp_path: Path) -> list[dict[str, Any]]:
    f = tmp_path / "calls.jsonl"
    return [json.loads(ln) for ln in f.read_text().splitlines()] if f.exists() else []


def records(out: Path, host: str = "h1") -> list[dict[str, Any]]:
    return [r.to_dict() for r in store.iter_runs(out / host)]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z"))


def wait_for(cond: Any, timeout: float, what: str) -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
