"""``cpubench tune --verify``: run a recommended split for real, beside the fat and thin baselines, and record it.

Each configuration runs as an ensemble through the runner's one way of starting engine children
(:meth:`cpubench.execution.group.GroupRunner.run_ensemble`): one engine process per instance, each pinned to its
own physical cores (first-fit over the sockets, largest instance first; an instance never spans sockets), started
together behind a barrier so every instance's timed window is the same wall-clock window. Every record keeps its
ensemble (kind ``tune``, the core budget, the batch, which configuration, the split and its expected latency) and
its instance index, so ``cpubench report`` and ``pages`` read the verification back from the store alone
(:mod:`cpubench.analysis.tune`).

Resume: a configuration's repeat whose instances are all recorded ok (by their identity hash) is not run again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpubench.analysis.tune import KIND
from cpubench.execution.executor import Executor, child_environment
from cpubench.execution.group import Context, Group, GroupRunner
from cpubench.execution.recorder import Recorder
from cpubench.host import facts
from cpubench.host.locks import Busy
from cpubench.host.topology import Topology
from cpubench.results import store
from cpubench.spec import axes
from cpubench.spec import config as cfg
from cpubench.sweep.planner import PlannedRun, engine_identity
from cpubench.sweep.session import HostHold, engine_command
from cpubench.tune.optimizer import Split
from tf_cnn_benchmarks import hostfacts


class VerifyError(Exception):
    """A verification that cannot run here: one line, the reason and the fix."""


@dataclass(frozen=True)
class Candidate:
    """A configuration to run: ``label`` (split, fat, thin), its instances, and the latency the profile expects."""

    label: str
    batch: int
    instances: tuple[tuple[int, int], ...]  # (threads, batch) per instance, expanded
    expected_ms: float | None

    @classmethod
    def of(cls, label: str, batch: int, split: Split | None, fallback: Sequence[tuple[int, int]] = ()) -> Candidate:
        if split is None:
            return cls(label, batch, tuple(fallback), None)
        inst = tuple((i.threads, i.batch) for i in split.instances for _ in range(i.count))
        return cls(label, batch, inst, split.latency_ms)

    @property
    def split(self) -> list[list[int]]:
        counts: dict[tuple[int, int], int] = {}
        for tb in self.instances:
            counts[tb] = counts.get(tb, 0) + 1
        return [[t, b, n] for (t, b), n in sorted(counts.items(), key=lambda kv: (-kv[0][0], -kv[0][1]))]


def thin_instances(cores: int, batch: int) -> list[tuple[int, int]]:
    """The thin baseline: one-thread instances, as many as cores (at most one per image), the batch shared out as
    evenly as it goes (sizes differ by at most one)."""
    n = min(cores, batch)
    return [(1, batch // n + (1 if k < batch % n else 0)) for k in range(n)]


def place(instances: Sequence[tuple[int, int]], topo: Topology) -> list[list[int]]:
    """CPUs for each instance (in the given order): one logical CPU per physical core, cores of one socket only,
    largest instance first into the socket with the most free cores. Raises VerifyError when it cannot fit."""
    free = {s: [core[0] for core in topo.cores(s)] for s in topo.sockets}
    out: dict[int, list[int]] = {}
    for k in sorted(range(len(instances)), key=lambda k: -instances[k][0]):
        t = instances[k][0]
        socket = max(free, key=lambda s: (len(free[s]), -s))
        if len(free[socket]) < t:
            raise VerifyError(
                f"{len(instances)} instances of {', '.join(str(i[0]) for i in instances)} threads do not fit this "
                f"host's {topo.physical_cores} physical cores without an instance spanning sockets "
                f"({len(topo.sockets)} x {topo.cores_per_socket})"
            )
        out[k], free[socket] = free[socket][:t], free[socket][t:]
    return [out[k] for k in range(len(instances))]


@dataclass
class Request:
    """What to verify: the model and its engine, the candidates, and how long each ensemble times its window."""

    host_dir: Path
    model: str
    framework: str
    execution: str
    cores: int
    candidates: list[Candidate]
    repeats: int = 3
    window_s: float = 5.0
    num_batches: int = 5
    num_warmup_batches: int = 5
    timeout: float = 600.0
    force: bool = False


def _config(req: Request) -> cfg.Config:
    """The runs' config, validated as any config is (the model, framework and mode must exist and agree)."""
    doc = {
        "name": "tune-verify",
        "models": {req.model: sorted({b for c in req.candidates for _, b in c.instances})},
        "matrix": {"forward_only": [True], "framework": [req.framework], "execution": [req.execution]},
        "repeats": req.repeats,
        "num_batches": req.num_batches,
        "num_warmup_batches": req.num_warmup_batches,
        "timeout": req.timeout,
    }
    try:
        return cfg.parse_config(json.dumps(doc), "cpubench tune --verify")
    except cfg.ConfigError as e:
        raise VerifyError(str(e)) from None


def _params(req: Request, threads: int) -> dict[str, Any]:
    params = {a.name: a.default for a in axes.setting_axes()}
    params.update(forward_only=True, framework=req.framework, execution=req.execution, num_intra_threads=threads)
    return params


def verify(req: Request, say: Callable[[str], None]) -> list[Any]:
    """Run every candidate ``req.repeats`` times (what is recorded already is not run again); return the records
    written by this call."""
    config = _config(req)
    host_id = req.host_dir.name
    root = req.host_dir.parent
    topo = Topology.read()
    engine, default = engine_command(config)
    env, removed = child_environment(os.environ, config.env)
    env["TMPDIR"] = str(store.scratch_dir(root, host_id))
    identity = engine_identity(engine, default, facts.tf_version_installed(), facts.torch_version_installed())
    thread_env = hostfacts.thread_env(env)
    placements = {c: place(c.instances, topo) for c in req.candidates}
    runs = store.read_runs(req.host_dir)
    done = {(r.run_hash, r.repeat) for r in runs.records if r.ok}
    try:
        held = HostHold.take(req.host_dir, req.force)
    except Busy as e:
        raise VerifyError(str(e)) from None
    scratch = store.scratch_dir(root, host_id)
    scratch.mkdir(parents=True, exist_ok=True)
    executor = Executor()
    recorder = Recorder(root, host_id)
    ctx = Context(root, host_id, config, engine, env, removed, forced=held.forced)
    runner = GroupRunner(ctx, executor, recorder, say=say)
    written = []
    try:
        for repeat in range(req.repeats):
            for c in req.candidates:
                members = []
                for k, (t, b) in enumerate(c.instances):
                    setting = cfg.Setting(f"tune-c{req.cores}-b{c.batch}-{c.label}-i{k}", _params(req, t))
                    planned = cfg.Planned(setting, req.model, b, repeat)
                    base = cfg.run_hash(config, planned, {}, identity, thread_env)
                    what = json.dumps([base, req.cores, c.batch, c.label, c.split, k], separators=(",", ":"))
                    members.append(PlannedRun(planned, hashlib.sha256(what.encode()).hexdigest()[:16]))
                if all((m.run_hash, repeat) in done for m in members):
                    continue
                say(f"cpubench tune: batch {c.batch}, {c.label} ({len(members)} instance(s)), repeat {repeat + 1}")
                groups = [Group([m], axes.Launch(cpus=cpus)) for m, cpus in zip(members, placements[c], strict=True)]
                meta = {"cores": req.cores, "batch": c.batch, "label": c.label, "split": c.split,
                        "expected_ms": c.expected_ms}  # fmt: skip
                for recs in runner.run_ensemble(groups, window=req.window_s, kind=KIND, meta=meta):
                    written.extend(recs)
    finally:
        executor.kill_all()
        held.release()
    return written
