"""One way to run engine children: a group (one engine process measuring one or more batch sizes of one point),
alone or as an ensemble (several groups started together, each pinned to its own cores).

Why one code path: a sweep runs one group at a time (one batch size, or every batch size of a point with
``batches_per_process``), and the tuner runs N concurrent pinned instances, each its own group. Each way used to
build its own command, result-file names, log header and records, and they drifted apart (one skipped the load
re-read after a quiet wait, one shared the process's wall time out equally between batch sizes). Here all of them
are one :meth:`GroupRunner.run_ensemble`, a single group being an ensemble of one:

- :meth:`GroupRunner.prepare` builds a group's command (``--batch_sizes`` and a ``{batch_size}`` result template
  when it measures several sizes), its log and result paths (:mod:`cpubench.results.store`), its log header and the
  runner's half of each record (:meth:`GroupRunner.base`);
- a run measured but never recorded (the sweep stopped between the engine's exit and the record) is recorded from
  its kept result JSON (:func:`recover`) and not measured again;
- the children start together, each with its own CPUs and memory binding, and are waited for together;
- each batch size's record gets its own wall time (the engine measures it), its own outcome (an ok size stays ok
  when a later size crashed) and the declared fields that say how it was measured: ``launch``, ``recovered_from``,
  ``quiet_wait``, ``group`` and, in an ensemble, ``ensemble`` and ``instance``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shlex
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from cpubench.execution.executor import Executor, Job, Outcome, interpret, log_header, log_tail, read_result
from cpubench.execution.recorder import DiskFull, Recorder
from cpubench.host.topology import format_cpulist
from cpubench.results import store
from cpubench.spec import axes
from cpubench.spec import config as cfg
from tf_cnn_benchmarks.preflight import BARRIER_ABORT, BARRIER_GO
from tf_cnn_benchmarks.record import RecordError, RunRecord


class Member(Protocol):
    """A planned run and its identity hash (the planner's ``PlannedRun``)."""

    @property
    def run(self) -> cfg.Planned: ...

    @property
    def run_hash(self) -> str: ...


@dataclass
class Group:
    """What one engine process measures: runs of one point (setting, model, repeat) that differ only by batch size.

    ``launch`` is where its child runs (its CPUs and memory nodes), resolved against this host's topology by the
    caller; ``not_here`` is why it cannot run here instead (("skipped", "n/a: ...") or ("failed", reason)).
    """

    members: Sequence[Member]
    launch: axes.Launch = field(default_factory=axes.Launch)
    not_here: tuple[str, str] | None = None

    @property
    def first(self) -> cfg.Planned:
        return self.members[0].run

    @property
    def sizes(self) -> list[int]:
        return [m.run.batch_size for m in self.members]


@dataclass
class Context:
    """What every group of one sweep shares: where results go, how the engine is started, what the child sees."""

    root: Path
    host_id: str
    config: cfg.Config
    engine: list[str]
    child_env: dict[str, str]
    env_removed: list[str]
    data_path: str = ""
    data_generated: bool = False
    data_unavailable: str | None = None
    forced: str | None = None  # another benchmark held the machine (--force): every record says so


@dataclass
class _Prepared:
    """A group ready to start: its job and the runner's half of each member's record."""

    group: Group
    job: Job
    jsons: list[Path]
    bases: list[dict[str, Any]]
    outcomes: list[Outcome | None]
    todo: list[int] = field(default_factory=list)  # the members the child measures (the others were recovered)
    skip: tuple[str, str] | None = None  # (status, reason): recorded without a child


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@dataclass
class Recovered:
    """A run measured but never recorded, found again: its outcome, the log that names it and that log's command."""

    outcome: Outcome
    log: Path
    command: list[str] | None


def newest_writer(log: Path, result_json: Path) -> Path | None:
    """The log of the newest attempt at ``log``'s point (model, repeat) that measured ``result_json``'s batch size,
    or None when there is none or two are equally new (then which one wrote the file cannot be told).

    Which sizes an attempt measured is in its log's name (:func:`cpubench.results.store.point_logs` reads it back);
    attempts at one folder run one after another (its writer lock), so the newest by modification time is the last
    to start."""
    stem = log.name.split("-bs", 1)[0]
    repeat = log.stem.rsplit("-r", 1)[-1]
    size = re.fullmatch(rf"{re.escape(stem)}-bs(\d+)-r{re.escape(repeat)}\.json", result_json.name)
    if size is None:
        return None
    writers: list[tuple[int, Path]] = []
    for path in store.point_logs(log, size.group(1)):
        try:
            writers.append((os.lstat(path).st_mtime_ns, path))
        except OSError:
            continue
    writers.sort(key=lambda w: w[0])
    if not writers or (len(writers) > 1 and writers[-1][0] == writers[-2][0]):
        return None
    return writers[-1][1]


def recover(run_hash: str, log: Path, result_json: Path) -> Recovered | None:
    """A run that was measured but never recorded (the sweep stopped between the engine's exit and the record: a
    full disk, ``kill -9``): a log of its point names the same run hash and its result JSON is a valid ok record.
    Recording it beats measuring it again: a measured run is never dropped, and its kept evidence never rewritten.

    The log is ``log`` or another attempt's at the same point (a resumed point measures only its missing batch sizes,
    into a log named after them). It must be the newest attempt that wrote ``result_json``: every attempt removes
    that file before its log is made, so the file can only be the newest writer's. An older attempt of this run
    (killed before its result) followed by one of another identity at the same file name (the config edited, say
    ``num_batches``) leaves that other measurement there, which must never be recorded as this run's."""
    path = newest_writer(log, result_json)
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = [f.readline() for _ in range(3)]
    except OSError:
        return None
    if f"run_hash={run_hash}" not in head[0].split():
        return None
    result, _ = read_result(result_json)
    if result is None:
        return None
    try:
        rec = RunRecord.from_dict(result)
    except RecordError:
        return None
    if not rec.ok:
        return None
    wall = (rec.timings or {}).get("wall")
    m = re.search(r"^# cpubench: exit rc=(-?\d+) after ([\d.]+) s$", log_tail(path), re.M)
    if isinstance(wall, (int, float)) and not isinstance(wall, bool):
        duration = float(wall)
    else:
        duration = float(m.group(2)) if m else float((rec.timings or {}).get("total_in_engine") or 0.0)
    prefix = "# cpubench command: "
    command = next((shlex.split(h[len(prefix) :]) for h in head if h.startswith(prefix)), None)
    out = Outcome("ok", None, duration, exit_code=int(m.group(1)) if m else None, record=rec)
    return Recovered(out, path, command)


def launch_mismatch(launch: axes.Launch, outcome: Outcome) -> str | None:
    """Why an ok run did not run as it was started (its CPUs or memory policy, as the engine saw them), or None.

    An engine that does not report them (a result JSON without ``cpus``) cannot be checked; its record keeps what
    was asked under ``launch``."""
    rec = outcome.record
    if outcome.status != "ok" or rec is None:
        return None
    if launch.cpus and rec.cpus is not None and sorted(rec.cpus) != sorted(launch.cpus):
        return f"pinned to CPUs {format_cpulist(launch.cpus)} but the engine could run on {format_cpulist(rec.cpus)}"
    if launch.membind and rec.memory_policy is not None:
        mode, nodes = rec.memory_policy.get("mode"), rec.memory_policy.get("nodes")
        if mode != "bind" or sorted(nodes or []) != sorted(launch.membind):
            return f"memory bound to nodes {format_cpulist(launch.membind)} but the engine's policy is {mode} {nodes}"
    if launch.allocator and rec.allocator is not None and rec.allocator.get("name") != launch.allocator:
        seen = rec.allocator.get("name") or "unknown"
        return f"allocator {launch.allocator} preloaded ({launch.preload}) but the engine's memory map shows {seen}"
    return None


class GroupRunner:
    """Runs groups (alone or as an ensemble) through one :class:`Executor` and files their records.

    ``quiet`` (optional) waits for a quiet machine before a start and returns what happened (recorded as
    ``quiet_wait``); ``check`` is called after the children end (the runner raises there when a signal arrived);
    ``writing`` wraps the appends so a signal never cuts a record in half.
    """

    def __init__(
        self,
        ctx: Context,
        executor: Executor,
        recorder: Recorder,
        tick: Callable[[float], None] | None = None,
        quiet: Callable[[str], dict[str, Any]] | None = None,
        check: Callable[[], None] | None = None,
        writing: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.executor = executor
        self.recorder = recorder
        self.tick = tick
        self.quiet = quiet
        self.check = check or (lambda: None)
        self.writing = writing or contextlib.nullcontext
        self.say = say or (lambda _line: None)

    # -- one group's files, command and records

    def command(self, group: Group, result_json: Path) -> list[str]:
        """The engine command of a group: the first run's flags, and ``--batch_sizes`` for several sizes (the result
        path is then a template the engine fills with each size)."""
        argv = [*self.ctx.engine, *cfg.engine_flags(self.ctx.config, group.first, self.ctx.data_path)]
        if len(group.members) > 1:
            argv.append(f"--batch_sizes={','.join(map(str, group.sizes))}")
        return [*argv, f"--result_json={result_json}"]

    def paths(self, group: Group) -> tuple[Path, list[Path], Path]:
        """The group's log, each member's result JSON, and the result path the engine is given."""
        first = group.first
        name: int | str = first.batch_size if len(group.members) == 1 else "-".join(map(str, group.sizes))
        log = store.log_path(self.ctx.root, self.ctx.host_id, first.setting.name, first.model, name, first.repeat)
        jsons = [log.with_name(f"{first.model}-bs{b}-r{first.repeat}.json") for b in group.sizes]
        given = (
            jsons[0]
            if len(group.members) == 1
            else log.with_name(f"{first.model}-bs{{batch_size}}-r{first.repeat}.json")
        )
        return log, jsons, given

    def base(self, member: Member, cmd: list[str], log: Path) -> dict[str, Any]:
        """The runner's fields of a record: the spec as planned and the run's place in the sweep."""
        run, ctx = member.run, self.ctx
        params = dict(run.setting.params)
        return {
            "host_id": ctx.host_id,
            "setting": run.setting.name,
            "model": run.model,
            "batch_size": run.batch_size,
            "num_devices": params.get("num_devices"),
            "params": params,
            "repeat": run.repeat,
            "run_hash": member.run_hash,
            "config_name": ctx.config.name,
            "started": now(),
            "load_avg_before": load_avg(),
            "log": log.relative_to(store.host_dir(ctx.root, ctx.host_id)).as_posix(),
            "command": cmd,
            "engine": {"command": shlex.join(ctx.engine)},
            "env": dict(ctx.config.env),
            "env_removed": list(ctx.env_removed),
            "data_generated": params.get("data") == "real" and ctx.data_generated,
            "lock_forced": f"measured while another benchmark ran ({ctx.forced})" if ctx.forced else None,
        }

    def prepare(
        self,
        group: Group,
        ensemble: dict[str, Any] | None = None,
        instance: int | None = None,
        barrier: Path | None = None,
    ) -> _Prepared:
        """A group's job and records-to-be. Members measured before but not recorded are recorded from their kept
        result JSONs; the child measures only the others, into a log of their own (kept evidence is never
        rewritten)."""
        log, jsons, _ = self.paths(group)
        outcomes: list[Outcome | None] = [None] * len(group.members)
        found: dict[int, Recovered] = {}
        if group.not_here is None:
            for i, (m, js) in enumerate(zip(group.members, jsons, strict=True)):
                r = recover(m.run_hash, log, js)
                if r is not None:
                    found[i], outcomes[i] = r, r.outcome
        todo = Group([m for i, m in enumerate(group.members) if i not in found], group.launch, group.not_here)
        if todo.members:
            log, todo_jsons, given = self.paths(todo)
            log = store.unused_log(log)
        else:
            todo_jsons, given = [], jsons[0]
        cmd = self.command(todo if todo.members else group, given)
        if barrier is not None:
            cmd.insert(len(cmd) - 1, f"--barrier={barrier}")
        bases = []
        for i, m in enumerate(group.members):
            r = found.get(i)
            b = self.base(m, r.command or cmd if r else cmd, r.log if r else log)
            if r is not None:
                b["recovered_from"] = jsons[i].name
            measured_with = group.sizes if r is not None else todo.sizes
            if len(measured_with) > 1:
                b["group"] = {"batch_sizes": measured_with}
            if ensemble is not None:
                b["ensemble"], b["instance"] = dict(ensemble), instance
            if group.launch.cpus or group.launch.membind:
                b["launch"] = {"cpus": group.launch.cpus, "membind": group.launch.membind}
            if group.launch.preload:
                b["launch"] = {**b.get("launch", {"cpus": None, "membind": None}), "preload": group.launch.preload}
            bases.append(b)
        first, sizes = (todo if todo.members else group).first, (todo if todo.members else group).sizes
        one = {"batch_size": first.batch_size} if len(sizes) == 1 else {"batch_sizes": ",".join(map(str, sizes))}
        header = log_header(host=self.ctx.host_id, config=self.ctx.config.name, setting=first.setting.name,
                            model=first.model, **one, repeat=first.repeat)  # fmt: skip
        header += "".join(f" run_hash={m.run_hash}" for m in (todo.members or group.members))
        for js in todo_jsons[1:]:
            js.unlink(missing_ok=True)  # a stale result of an earlier attempt must not pass for this one's
        job = Job(cmd, log, todo_jsons[0] if todo_jsons else given, self.ctx.child_env,
                  self.ctx.config.timeout * max(1, len(todo.members)), header=[header], cpus=group.launch.cpus,
                  membind=group.launch.membind, preload=group.launch.preload)  # fmt: skip
        prepared = _Prepared(
            group, job, jsons, bases, outcomes, todo=[i for i in range(len(outcomes)) if i not in found]
        )
        if any(m.run.setting.params.get("data") == "real" for m in group.members) and self.ctx.data_unavailable:
            prepared.skip = ("failed", self.ctx.data_unavailable)
        elif group.not_here is not None:
            prepared.skip = group.not_here
        return prepared

    # -- running

    def run(self, group: Group) -> list[RunRecord]:
        """Run one group and file a record per batch size (in the group's order)."""
        return self.run_ensemble([group])[0]

    def run_ensemble(
        self,
        groups: Sequence[Group],
        window: float | None = None,
        kind: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> list[list[RunRecord]]:
        """Start every group's child together (each on its own CPUs), wait for all, and file their records. With
        more than one group, each record says which ensemble and which instance it was measured in (``kind`` names
        what the ensemble is for, e.g. a tune verification, and ``meta`` what its kind needs to read it back).

        ``window`` (seconds) puts the children behind a barrier: each warms up and says ready, and once all are, all
        time their steps together for at least that long (:func:`tf_cnn_benchmarks.preflight.barrier_wait`); each
        record then says how much of its timed window overlapped every other instance's (``ensemble.overlap``)."""
        ensemble: dict[str, Any] | None = None
        if len(groups) > 1 or window is not None:
            ensemble = {"id": uuid.uuid4().hex[:12], "instances": len(groups), **({"kind": kind} if kind else {}),
                        **(meta or {})}  # fmt: skip
        barrier = None
        if window is not None:
            assert ensemble is not None
            if any(len(g.members) != 1 for g in groups):
                raise ValueError("a barrier ensemble measures one batch size per instance")
            barrier = store.scratch_dir(self.ctx.root, self.ctx.host_id) / f"barrier-{ensemble['id']}"
            barrier.mkdir(parents=True)
        prepared = [self.prepare(g, ensemble, i if ensemble else None, barrier) for i, g in enumerate(groups)]
        to_start = [p for p in prepared if p.skip is None and any(o is None for o in p.outcomes)]
        for p in prepared:
            for i, o in enumerate(p.outcomes):
                if o is not None:
                    self.say(f"cpubench: {p.group.members[i].run.label}: measured before, not recorded; "
                             f"recorded from {p.jsons[i]}")  # fmt: skip
        if to_start:
            if self.quiet is not None:
                waited = self.quiet(to_start[0].group.first.label)
                for p in to_start:
                    for b in p.bases:
                        b["quiet_wait"] = waited
                        b["load_avg_before"] = load_avg()
            procs = self._start_and_wait([p.job for p in to_start], barrier, window)
            self.check()
            after = load_avg()
            for p, proc in zip(to_start, procs, strict=True):
                self._outcomes(p, proc, after)
            if ensemble is not None:
                overlaps(prepared)
        if barrier is not None:
            shutil.rmtree(barrier, ignore_errors=True)
        return [self._record(p) for p in prepared]

    def _start_and_wait(
        self, jobs: list[Job], barrier: Path | None = None, window: float | None = None
    ) -> list[Outcome]:
        """Start the children and wait for them. A log that cannot be written means that child never started: a full
        disk stops the sweep (DiskFull), any other write error is that group's failure with the reason. Behind a
        barrier, the go (with the windows' end time) is written once every started child is ready, or an abort once
        one ends before."""
        started, early = [], {}
        for k, job in enumerate(jobs):
            try:
                started.append(self.executor.start(job))
            except OSError as e:
                if e.errno in (errno.ENOSPC, errno.EDQUOT):
                    self.executor.kill_all()
                    raise DiskFull(
                        f"no space left on the disk of {store.host_dir(self.ctx.root, self.ctx.host_id)}"
                    ) from e
                early[k] = Outcome("failed", f"could not write the log {job.log} ({e.strerror})", 0.0)
        tick = self.tick
        if barrier is not None and window is not None:
            tick = _Barrier(barrier, started, window, self.tick)
            if early:
                tick.abort("an instance could not start")
        waited = iter(self.executor.wait(started, tick, poll=0.02 if barrier is not None else 0.5))
        return [early[k] if k in early else next(waited) for k in range(len(jobs))]

    def _outcomes(self, p: _Prepared, proc: Outcome, after: list[float]) -> None:
        """Each member's outcome from its own result JSON: a size the engine finished is ok even when a later size
        crashed or the process timed out. Its duration is its own wall time as the engine measured it; the
        process's start and exit (the time no size accounted for) go to the first size that has no wall time of its
        own (the one that crashed), else to the first size, which paid for the process's start."""
        single = len(p.todo) == 1
        fresh = [i for i, o in enumerate(p.outcomes) if o is None]
        walls: dict[int, float] = {}
        for i in fresh:
            p.bases[i]["load_avg_after"] = after
            if proc.rc is None and proc.status == "failed":  # the child never started
                p.outcomes[i] = Outcome("failed", proc.reason, proc.duration if i == fresh[0] else 0.0)
                continue
            res, _ = read_result(p.jsons[i])
            finished = res is not None and res.get("status") == "ok"
            timed_out = proc.status == "timeout" and (single or not finished)
            out = interpret(proc.rc, timed_out, p.job.timeout, res, p.job.log, proc.duration)
            if not single and res is None:
                out.reason = f"{out.reason} (before batch size {p.group.sizes[i]} finished)"
            mismatch = launch_mismatch(p.group.launch, out)
            if mismatch is not None:
                out.status, out.reason = "failed", mismatch
            wall = ((res or {}).get("timings") or {}).get("wall")
            if isinstance(wall, (int, float)) and not isinstance(wall, bool) and wall >= 0:
                walls[i] = float(wall)
            p.outcomes[i] = out
        if single or not fresh or (proc.rc is None and proc.status == "failed"):
            return
        rest = max(0.0, proc.duration - sum(walls.values()))
        takes_rest = next((i for i in fresh if i not in walls), fresh[0])
        for i in fresh:
            o = p.outcomes[i]
            assert o is not None
            o.duration = walls.get(i, 0.0) + (rest if i == takes_rest else 0.0)

    def _record(self, p: _Prepared) -> list[RunRecord]:
        status, reason = p.skip if p.skip is not None else ("failed", None)
        recs = [
            self.recorder.build(b, None if p.skip is not None else o, self.ctx.child_env, reason=reason, status=status)
            for b, o in zip(p.bases, p.outcomes, strict=True)
        ]
        out = []
        with self.writing():
            for rec, js in zip(recs, p.jsons, strict=True):
                out.append(self.recorder.accept(rec, kept_at=js))
        return out


class _Barrier:
    """The starter's side of the barrier, called while the children run: once every started child has said ready,
    write ``go`` with the end time of the common window; if a child ends first, write ``abort`` with why."""

    def __init__(self, folder: Path, started: Sequence[Any], window: float, tick: Callable[[float], None] | None):
        self.folder, self.started, self.window, self.tick = folder, started, window, tick
        self.done = False

    def _write(self, name: str, text: str) -> None:
        tmp = self.folder / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, self.folder / name)  # whole or not at all: a child never reads half a time
        self.done = True

    def abort(self, why: str) -> None:
        if not self.done:
            self._write(BARRIER_ABORT, why)

    def __call__(self, elapsed: float) -> None:
        if self.tick is not None:
            self.tick(elapsed)
        if self.done:
            return
        if any(r.outcome is not None for r in self.started):
            self.abort("another instance ended before every instance was ready")
        elif len(list(self.folder.glob("ready.*"))) >= len(self.started):
            self._write(BARRIER_GO, f"{time.time() + self.window:.6f}")


def overlaps(prepared: Sequence[_Prepared]) -> None:
    """Each ok record's share of its timed window that every other instance's window covered too
    (``ensemble.overlap``, 0..1): 1.0 when all instances timed at once, less when one started or ended apart."""
    outs = [(b, o) for p in prepared for b, o in zip(p.bases, p.outcomes, strict=True)]
    windows = [o.record.window for _, o in outs if o is not None and o.status == "ok" and o.record and o.record.window]
    if len(windows) != len(outs) or not windows:
        return  # an instance without a window (failed): no common window to speak of
    start, end = max(w["start"] for w in windows), min(w["end"] for w in windows)
    for (b, _), w in zip(outs, windows, strict=True):
        own = w["end"] - w["start"]
        b["ensemble"]["overlap"] = round(max(0.0, end - start) / own, 4) if own > 0 else 0.0
