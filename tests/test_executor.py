"""The executor starts several pinned children at once (what concurrent pinned instances need), each tied to the
runner, each seeing from inside the CPUs and memory policy it was given."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from cpubench.execution.executor import Executor, Job

# A child that reports, from inside, where it may run and allocate, as an ok schema-2 result.
CHILD = r"""
import json, sys, time
from tf_cnn_benchmarks import hostfacts
t0 = time.time()
time.sleep(float(sys.argv[2]))
json.dump({"schema": 2, "status": "ok", "images_per_sec": 1.0, "cpus": hostfacts.schedulable_cpus(),
           "memory_policy": hostfacts.memory_policy(), "details": {"t0": t0, "t1": time.time()}},
          open(sys.argv[1], "w"))
"""


def job(tmp_path: Path, name: str, cpus: list[int] | None, membind: list[int] | None, sleep: float) -> Job:
    out = tmp_path / f"{name}.json"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return Job([sys.executable, "-c", CHILD, str(out), str(sleep)], tmp_path / f"{name}.log", out, env, 30.0,
               cpus=cpus, membind=membind)  # fmt: skip


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux only")
def test_n_pinned_children_run_together_each_on_its_cpus(tmp_path: Path) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    ex = Executor()
    t0 = time.monotonic()
    started = [ex.start(job(tmp_path, f"i{k}", [c], [0], 1.0)) for k, c in enumerate(cpus)]
    outcomes = ex.wait(started)
    wall = time.monotonic() - t0
    assert [o.status for o in outcomes] == ["ok"] * len(cpus)
    assert [o.record.cpus for o in outcomes] == [[c] for c in cpus]
    assert all(o.record.memory_policy["mode"] == "bind" and o.record.memory_policy["nodes"] == [0] for o in outcomes)
    spans = [(o.record.details["t0"], o.record.details["t1"]) for o in outcomes]
    assert max(a for a, _ in spans) < min(b for _, b in spans)  # they ran at the same time
    assert wall < 1.0 * len(cpus) + 5 and not ex.running
    for k in range(len(cpus)):
        log = (tmp_path / f"i{k}.log").read_text()
        assert f"# cpubench cpus: {cpus[k]}" in log and "# cpubench memory bound to nodes: 0" in log


def test_a_child_past_its_time_limit_is_killed_while_the_others_finish(tmp_path: Path) -> None:
    ex = Executor()
    slow = job(tmp_path, "slow", None, None, 60.0)
    slow.timeout = 1.0
    fast = job(tmp_path, "fast", None, None, 0.1)
    outcomes = ex.wait([ex.start(slow), ex.start(fast)])
    assert [o.status for o in outcomes] == ["timeout", "ok"]
    assert json.loads((tmp_path / "fast.json").read_text())["status"] == "ok"
