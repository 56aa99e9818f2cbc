"""The one way to run engine children (cpubench.execution.group): a group is one engine process measuring one or more
batch sizes, an ensemble is several groups started together, each pinned. Real subprocesses (a small fake engine
that takes the engine's flags), real files, the real store.

What is checked: an ensemble's children run at the same time on their own CPUs and their records say which
ensemble and instance they were measured in; a point whose process times out after some batch sizes finished keeps
those sizes ok, each with its own wall time; a point resumed after a kill records the finished sizes from their kept
result JSONs, asks the engine for the missing sizes only, and leaves the kept JSONs and log as they were.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from cpubench.execution.executor import Executor, child_environment
from cpubench.execution.group import Context, Group, GroupRunner
from cpubench.execution.recorder import Recorder
from cpubench.results import store
from cpubench.spec import axes
from cpubench.spec import config as cfg

ROOT = Path(__file__).resolve().parents[1]

# Takes the engine's flags; measures each batch size in turn (sleeping FAKE_SLEEP, or for ever at batch size 99) and
# writes one result per size with its own wall time; notes every start in FAKE_CALLS.
ENGINE = textwrap.dedent(
    r"""
    import json, os, sys, time
    from tf_cnn_benchmarks import hostfacts
    args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
    sizes = [int(x) for x in args.get("batch_sizes", args["batch_size"]).split(",")]
    with open(os.environ["FAKE_CALLS"], "a") as f:
        f.write(json.dumps({"sizes": sizes, "argv": sys.argv[1:]}) + "\n")
    if b"crash" in args["model"].encode() and sizes == [3]:
        sys.exit(3)
    until = None
    if args.get("barrier"):
        from tf_cnn_benchmarks.preflight import BenchmarkError, barrier_wait
        time.sleep(0.3 * sizes[0])  # instances get ready at different times
        try:
            until = barrier_wait(args["barrier"], 30)
        except BenchmarkError as e:
            with open(args["result_json"], "w") as f:
                json.dump({"schema": 2, "status": "failed", "reason": str(e)}, f)
            sys.exit(1)
    for b in sizes:
        t0 = time.time()
        if b == 99:
            time.sleep(600)
        time.sleep(float(os.environ.get("FAKE_SLEEP", "0.2")))
        while until is not None and time.time() < until:
            time.sleep(0.01)
        print("total images/sec: %.2f" % (10.0 * b), flush=True)
        rec = {"schema": 2, "status": "ok", "images_per_sec": 10.0 * b, "model": args["model"], "batch_size": b,
               "step_times": [0.1, 0.1], "cpus": hostfacts.schedulable_cpus(),
               "timings": {"measured": 0.2, "wall": time.time() - t0}, "details": {"t0": t0, "t1": time.time()},
               "window": {"start": t0, "end": time.time()}}
        path = args["result_json"].replace("{batch_size}", str(b))
        with open(path + ".tmp", "w") as f:
            json.dump(rec, f)
        os.replace(path + ".tmp", path)
    """
)


@dataclass(frozen=True)
class Member:
    run: cfg.Planned
    run_hash: str


def config(tmp_path: Path, timeout: float = 30.0) -> cfg.Config:
    engine = tmp_path / "engine.py"
    engine.write_text(ENGINE)
    text = json.dumps({"name": "g", "models": {"trivial": 1}, "repeats": 1, "timeout": timeout,
                       "engine": [sys.executable, str(engine)]})  # fmt: skip
    return cfg.parse_config(text, "g.yaml")


def members(sizes: list[int], repeat: int = 0, setting: str = "syn-replicated-1cpus") -> list[Member]:
    params = {**axes.defaults(), "forward_only": True}
    return [Member(cfg.Planned(cfg.Setting(setting, params), "trivial", b, repeat), f"h{b}r{repeat}") for b in sizes]


def runner(tmp_path: Path, c: cfg.Config, sleep: float = 0.2) -> GroupRunner:
    env, removed = child_environment({**os.environ, "PYTHONPATH": str(ROOT), "FAKE_CALLS": str(calls_file(tmp_path)),
                                      "FAKE_SLEEP": str(sleep)}, c.env)  # fmt: skip
    root = tmp_path / "data"
    ctx = Context(root, "h", c, list(c.engine or []), env, removed)
    return GroupRunner(ctx, Executor(), Recorder(root, "h"))


def calls_file(tmp_path: Path) -> Path:
    return tmp_path / "calls.jsonl"


def calls(tmp_path: Path) -> list[dict]:
    f = calls_file(tmp_path)
    return [json.loads(x) for x in f.read_text().splitlines()] if f.exists() else []


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2, reason="2 CPUs")
def test_an_ensemble_runs_its_groups_together_each_pinned_and_says_so(tmp_path: Path) -> None:
    cpus = sorted(os.sched_getaffinity(0))[:2]
    gr = runner(tmp_path, config(tmp_path), sleep=2.0)  # long enough that start-up jitter cannot separate them
    pairs = enumerate(zip([1, 2], cpus, strict=True))
    groups = [Group(members([b], setting=f"s{k}"), axes.Launch(cpus=[c])) for k, (b, c) in pairs]
    recs = [r for rs in gr.run_ensemble(groups) for r in rs]
    assert [r.status for r in recs] == ["ok", "ok"]
    assert [r.cpus for r in recs] == [[c] for c in cpus] and [r.launch["cpus"] for r in recs] == [[c] for c in cpus]
    assert recs[0].ensemble["id"] == recs[1].ensemble["id"] and recs[0].ensemble["instances"] == 2
    assert all(r.ensemble["overlap"] > 0.5 for r in recs)  # started together, with no barrier
    assert [r.instance for r in recs] == [0, 1]
    spans = [(r.details["t0"], r.details["t1"]) for r in recs]
    assert max(a for a, _ in spans) < min(b for _, b in spans)  # their measured windows overlapped
    stored = store.read_runs(tmp_path / "data" / "h")
    assert not stored.warnings and [r.instance for r in stored.records] == [0, 1]
    # A group alone is an ensemble of one: no ensemble fields.
    alone = gr.run(Group(members([4], setting="s9")))
    assert alone[0].ok and alone[0].ensemble is None and alone[0].instance is None


def test_a_point_that_times_out_keeps_the_sizes_it_finished_each_with_its_own_time(tmp_path: Path) -> None:
    gr = runner(tmp_path, config(tmp_path, timeout=2.0))
    recs = gr.run(Group(members([1, 2, 99])))
    assert [r.status for r in recs] == ["ok", "ok", "timeout"], [r.reason for r in recs]
    assert recs[2].reason.startswith("timeout after 6 s")
    assert all(r.group == {"batch_sizes": [1, 2, 99]} for r in recs)
    # Each finished size's duration is its own wall time, not a third of the process's.
    assert 0.15 < recs[1].duration < 1.5
    assert recs[2].duration > 3.0  # the time no finished size accounted for goes to the size that hung
    assert abs(sum(r.duration for r in recs) - 6.0) < 2.0


def test_a_resumed_point_measures_only_its_missing_sizes_and_keeps_the_evidence(tmp_path: Path) -> None:
    c = config(tmp_path)
    gr = runner(tmp_path, c)
    point = members([1, 2, 4])
    # A first attempt measured sizes 1 and 2 and was killed before anything was recorded: its log and JSONs stay.
    log, jsons, given = gr.paths(Group(point))
    first = gr.prepare(Group(point))
    gr.executor.run(first.job)
    assert [calls(tmp_path)[0]["sizes"]] == [[1, 2, 4]]
    jsons[2].unlink()  # size 4 never finished
    kept = {p: p.read_bytes() for p in (log, jsons[0], jsons[1])}
    recs = gr.run(Group(point))
    assert [r.status for r in recs] == ["ok", "ok", "ok"]
    assert calls(tmp_path)[1]["sizes"] == [4]  # the engine was asked for the missing size only
    assert [r.recovered_from for r in recs] == [jsons[0].name, jsons[1].name, None]
    assert {p: p.read_bytes() for p in kept} == kept  # nothing kept was rewritten
    assert recs[0].log == recs[1].log == log.relative_to(tmp_path / "data" / "h").as_posix()
    assert recs[2].log.endswith("trivial-bs4-r0.log") and recs[2].log != recs[0].log
    assert "--batch_sizes=1,2,4" in recs[0].command and "--batch_sizes" not in " ".join(recs[2].command)


def test_a_barrier_ensemble_times_one_common_window_and_says_how_much_overlapped(tmp_path: Path) -> None:
    gr = runner(tmp_path, config(tmp_path))
    groups = [Group(members([b], setting=f"s{b}")) for b in (1, 2, 3)]
    recs = [r for rs in gr.run_ensemble(groups, window=1.0, kind="test") for r in rs]
    assert [r.status for r in recs] == ["ok"] * 3, [r.reason for r in recs]
    assert all("--barrier=" in " ".join(r.command) for r in recs)
    ens = [r.ensemble for r in recs]
    assert len({e["id"] for e in ens}) == 1 and all(e["kind"] == "test" and e["instances"] == 3 for e in ens)
    # Ready at 0.3, 0.6 and 0.9 s, yet every window starts at the go and ends at the common end.
    assert all(e["overlap"] > 0.8 for e in ens), ens
    assert all(r.window["end"] - r.window["start"] >= 0.9 for r in recs)


def test_an_instance_that_dies_before_the_barrier_releases_the_others_at_once(tmp_path: Path) -> None:
    gr = runner(tmp_path, config(tmp_path))
    point = [Member(cfg.Planned(cfg.Setting(f"s{b}", {**axes.defaults(), "forward_only": True}), m, b, 0), f"x{b}")
             for m, b in (("trivial", 1), ("crash", 3))]  # fmt: skip
    t0 = time.monotonic()
    recs = [r for rs in gr.run_ensemble([Group([m]) for m in point], window=1.0) for r in rs]
    assert time.monotonic() - t0 < 20
    assert [r.status for r in recs] == ["failed", "failed"]
    assert "barrier: another instance ended before every instance was ready" in recs[0].reason
    assert recs[1].reason.startswith("exit code 3")
