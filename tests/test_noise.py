"""Noise is measured, not assumed: a run that shared the machine with another busy process says so.

The real engine runs the trivial model while a busy loop takes a CPU on purpose; the record must show the foreign
CPU time of its measured window, and ``--wait-quiet`` must say that it gave up waiting.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakeengine import ROOT, cpubench_run, records, write_config

from cpubench.host import locks
from cpubench.render import report
from cpubench.sweep import session as runner

BUSY = "import time\nt = time.time()\nwhile time.time() - t < 120:\n    pass\n"


@pytest.fixture
def busy_cpu() -> Iterator[subprocess.Popen]:
    """A process that keeps one CPU busy until the test ends."""
    p = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        yield p
    finally:
        p.kill()
        p.wait()


def real_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != runner.ENGINE_ENV}
    env.update({"CPUBENCH_NO_TF_PROBE": "1", "PYTHONPATH": str(ROOT), locks.LOCK_ENV: str(tmp_path / "lock")})
    return env


@pytest.mark.timeout(300)
def test_foreign_cpu_during_the_measured_window_is_recorded(tmp_path: Path, busy_cpu: subprocess.Popen) -> None:
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8}, num_batches=5, timeout=240,
                       flags={"min_window_seconds": 2.0})  # fmt: skip
    out = tmp_path / "data"
    p = cpubench_run(["--config", str(cfg), "--out", str(out), "--host-id", "h1"], real_env(tmp_path), tmp_path,
                     timeout=280)  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    (rec,) = records(out)
    noise = rec["noise"]
    assert noise["window_s"] >= 2.0 and noise["resolution_pct"] < 5
    # The busy loop had a whole CPU of the machine's os.cpu_count() for most of the window.
    assert noise["foreign_cpu_pct"] > 100 / (os.cpu_count() or 1) / 3, noise
    assert rec["load_avg_after"] is not None and len(rec["load_avg_after"]) == 3
    # The report flags the cell, with the figure.
    files, _ = report.build_report([out], tmp_path / "summary", model_rows=None, plots=False)
    md = files.summary.read_text()
    row = next(ln for ln in md.splitlines() if ln.startswith("| trivial |"))
    assert re.search(r"\| [\d.]+ [~]?![\^*]?\[\d+\] \|$", row), row
    assert f"noisy: a repeat saw {noise['foreign_cpu_pct']:.1f}% foreign CPU during its measured window" in md


def test_wait_quiet_gives_up_on_a_busy_machine_and_says_so(
    tmp_path: Path, env: dict[str, str], busy_cpu: subprocess.Popen
) -> None:
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8})
    out = tmp_path / "data"
    p = cpubench_run(["--config", str(cfg), "--out", str(out), "--host-id", "h1", "--wait-quiet=2"], env, tmp_path)
    assert p.returncode == 0, p.stderr
    assert "syn-replicated-1cpus trivial bs8 r0: gave up waiting for a quiet machine after 2 s" in p.stdout
    (rec,) = records(out)
    assert rec["quiet_wait"]["gave_up"] is True and rec["quiet_wait"]["busy_pct"] > 5
    bad = cpubench_run(["--config", str(cfg), "--wait-quiet=-1"], env, tmp_path)
    assert bad.returncode == 2 and "--wait-quiet=-1: must be a number of seconds above 0" in bad.stderr


def test_shipped_configs_repeat_at_least_three_times() -> None:
    from cpubench.spec import config as cfg

    for name in cfg.packaged_configs():
        assert cfg.load_config(name).repeats >= 3, name
