"""The session behind ``cpubench run``: run a config's matrix on this host, one engine process per group, and never
lose a measurement.

The roles, each in its module:

- :mod:`cpubench.sweep.planner` decides what is still to do (resume by a per-run identity hash; ``--retry-failed``
  reruns failed and timed-out runs) and can grow its plan while results arrive;
- :mod:`cpubench.execution.group` is the one way engine children start: a group (one process, one or more batch
  sizes), alone or as an ensemble of pinned groups; it builds their commands, logs and records;
- :mod:`cpubench.execution.executor` starts children tied to the runner and turns how each ended into an outcome;
- :mod:`cpubench.execution.recorder` makes the typed record and files it in :mod:`cpubench.results.store`;
- :mod:`cpubench.sweep.progress` prints what happens: a live line on a terminal, heartbeats without one.

This module ties them together: the locks (one benchmark per machine, one writer per folder), signals, the host's
record, the generated real-data set, and the plan resolved against this host's topology. The command line is
:mod:`cpubench.commands.run`.

Why one process per group (``python -m tf_cnn_benchmarks ... --result_json``): a crash, an out-of-memory kill or a
hang costs one group, not the sweep, and every group starts from the same cold state as the classic scripts did. The
result JSON is the contract; the log (``logs/<setting>/<model>-bs<k>-r<i>.log``) is kept for people. A run without
a usable result JSON is ``failed`` with the exit code or signal and the last error line of its log, never a 0.

The engine command is ``<python> -m tf_cnn_benchmarks``; the environment variable ``CPUBENCH_ENGINE`` (a shell-style
command line) or a config's ``engine:`` key replaces it, for tests and for other engines that take the same flags.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import os
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from cpubench.execution.executor import Executor, child_environment
from cpubench.execution.group import Context as GroupContext
from cpubench.execution.group import Group, GroupRunner
from cpubench.execution.quiet import wait_for_quiet
from cpubench.execution.recorder import DiskFull, Recorder, Unrecorded
from cpubench.host import facts, limits, price
from cpubench.host.locks import Busy, MachineLock
from cpubench.results import hosts, store
from cpubench.spec import axes
from cpubench.spec import config as cfg
from cpubench.sweep.planner import PlannedRun, Planner, engine_identity, select
from cpubench.sweep.progress import Progress, hms
from cpubench.sweep.realdata import DataPlan, generate_data, plan_data
from tf_cnn_benchmarks import hostfacts
from tf_cnn_benchmarks.record import STATUSES, RunRecord

ENGINE_ENV = "CPUBENCH_ENGINE"
LOCK_FILE = ".runner.lock"  # per host folder: one writer at a time, even with --force


def engine_command(config: cfg.Config) -> tuple[list[str], bool]:
    """``$CPUBENCH_ENGINE`` if set, else the config's ``engine:``, else this Python's ``-m tf_cnn_benchmarks``
    (the second value says whether it is that default)."""
    env = os.environ.get(ENGINE_ENV, "").strip()
    if env:
        return shlex.split(env), False
    if config.engine:
        return list(config.engine), False
    return [sys.executable, "-m", "tf_cnn_benchmarks"], True


# ---------------------------------------------------------------------------------------------------------------
# The sweep


@dataclass
class HostHold:
    """This machine and one host folder, held for a measurement: the machine lock (one benchmark per machine; with
    ``force`` measured anyway, and ``forced`` says beside what) and the folder's writer lock (one writer, always)."""

    machine: MachineLock
    lock: TextIO
    forced: str | None

    @classmethod
    def take(cls, host_dir: Path, force: bool = False) -> HostHold:
        """Raises Busy with one line when the machine or the folder is taken."""
        machine = MachineLock()
        try:
            host_dir.mkdir(parents=True, exist_ok=True)
            forced = machine.acquire(host_dir, force)
        except OSError as e:
            raise Busy(hostfacts.first_line(e)) from None
        lock = open(host_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            machine.release()
            raise Busy(f"another cpubench run is writing to {host_dir}") from None
        return cls(machine, lock, forced)

    def release(self) -> None:
        self.lock.close()
        self.machine.release()


class Interrupted(BaseException):
    """Ctrl-C, SIGTERM or SIGHUP: the children were killed; the sweep stops with a summary.

    A BaseException, as KeyboardInterrupt is, because the signal handler raises it wherever the runner happens to be:
    code that keeps going after its own errors (``except Exception`` around py-cpuinfo while the host's facts are
    read, say) would otherwise swallow it, write what it was cut short of as a fact (``host.json`` without the CPU's
    family and model, kept on later runs) and let the sweep start the next engine after Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class Summary:
    """Counts of this invocation, for the closing lines."""

    counts: dict[str, int] = field(default_factory=lambda: {s: 0 for s in STATUSES})
    already: int = 0
    still_na: int = 0  # runs skipped here for the reason their records already give (not recorded again)
    data_seconds: float = 0.0
    unrecorded: list[str] = field(default_factory=list)


class Runner:
    """Runs one config on this host into ``root/<host_id>/``."""

    def __init__(
        self, config: cfg.Config, root: Path, host_id: str, engine: list[str], default_engine: bool = False
    ) -> None:
        self.config = config
        self.root = root
        self.host_id = host_id
        self.engine = engine
        self.default_engine = default_engine
        self.host_dir = store.host_dir(root, host_id)
        self.executor = Executor()
        self.child_env, self.env_removed = child_environment(os.environ, config.env)
        self.scratch = store.scratch_dir(root, host_id)
        self.child_env["TMPDIR"] = str(self.scratch)
        self._interrupted: int | None = None
        self._writing = False  # while a record is written, a signal waits so the line is never cut
        self._closing = False  # the sweep is over (or stopping): a signal only kills what may still run
        self.wait_quiet: float | None = None  # seconds to wait for a quiet machine before each run
        self.price_per_hour: float | None = None  # --price-per-hour: recorded in host.json (cpubench.host.price)
        self.recorder = Recorder(root, host_id)

    # -- planning

    def host_notes(self) -> list[str]:
        """How this host restricts the sweep's process (fewer CPUs than it has, a CPU quota), for a config that was
        not resolved against it (no ``all``, no pinning): :func:`cfg.plan_notes` says it for one that was. Every
        engine child inherits the restriction, so the figures are of it whatever the config asks."""
        from cpubench.host import topology

        if self.config.topology is not None:
            return []
        try:
            return topology.Topology.read().notes()
        except topology.TopologyError:
            return []

    def planner(self, data: DataPlan, retry_failed: bool) -> Planner:
        """The plan against what the folder holds; records that cannot be read are named on stderr."""
        from cpubench.host import topology

        # Bound to this host (`all`, placements, core lists); a no-op for a config the command already resolved.
        self.config = cfg.resolve(self.config, topology.Topology.read)
        identity = engine_identity(
            self.engine, self.default_engine, facts.tf_version_installed(), facts.torch_version_installed()
        )
        runs = store.read_runs(self.host_dir) if self.host_dir.is_dir() else store.RunsFile()
        for w in runs.warnings:
            print(f"cpubench: warning: {w}", file=sys.stderr)
        return Planner(self.config, runs, data.source, identity, hostfacts.thread_env(self.child_env), retry_failed)

    def command(self, run: cfg.Planned, data: DataPlan, result_json: Path) -> list[str]:
        """The engine command of one run, as the group runner builds it."""
        return self.group_runner(data).command(Group([PlannedRun(run, "")]), result_json)

    def dry_run(self, only: list[str], repeats: int | None, retry_failed: bool, out: TextIO) -> int:
        data = plan_data(self.config, self.root)
        planner = self.planner(data, retry_failed)
        planner.extend(select(self.config, only, repeats))
        todo = planner.pending()
        for p in todo:
            run = p.run
            log = store.log_path(self.root, self.host_id, run.setting.name, run.model, run.batch_size, run.repeat)
            cmd = self.command(run, data, log.with_suffix(".json"))
            print(f"{run.setting.name}  {run.model}  bs{run.batch_size}  r{run.repeat}  {shlex.join(cmd)}", file=out)
        note = ""
        if any(p.run.setting.params["data"] == "real" for p in todo):
            note = f"; real data: {data.unavailable or ('generated ' if data.generated else '') + data.path}"
        if self.env_removed:
            note += f"; left out of the engine's environment: {', '.join(self.env_removed)}"
        print(
            f"cpubench: {len(todo)} runs to do, {planner.already} already done ({self.config.name} on {self.host_id}"
            f" -> {self.host_dir}){note}",
            file=out,
        )
        for line in [*cfg.plan_notes(self.config), *self.host_notes()]:
            print(f"cpubench: {line}", file=out)
        return 0

    def group_runner(self, data: DataPlan, progress: Progress | None = None, forced: str | None = None) -> GroupRunner:
        """The one way this sweep starts engine children (a run, a point's batch sizes, an ensemble)."""
        ctx = GroupContext(self.root, self.host_id, self.config, self.engine, self.child_env, self.env_removed,
                           data.path, data.generated, data.unavailable, forced)  # fmt: skip
        say = progress.say if progress is not None else (lambda _line: None)
        limit = self.wait_quiet
        return GroupRunner(
            ctx,
            self.executor,
            self.recorder,
            tick=progress.tick if progress is not None else None,
            quiet=None if limit is None else (lambda what: wait_for_quiet(limit, say, what)),
            check=self._check_interrupted,
            writing=self._writing_record,
            say=say,
        )

    def _check_interrupted(self) -> None:
        if self._interrupted is not None:
            raise Interrupted(self._interrupted)

    @contextlib.contextmanager
    def _writing_record(self) -> Iterator[None]:
        """While records are appended a signal only marks the sweep interrupted, so a line is never cut."""
        self._writing = True
        try:
            yield
        finally:
            self._writing = False

    # -- signals

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        """Kill the children; stop the sweep at the first signal only. A second Ctrl-C (a user pressing it again
        while the sweep winds down) or one after the sweep is over must not cut the closing line, the emptying of
        the scratch folder or the release of the locks short with a traceback."""
        first = self._interrupted is None
        if first:
            self._interrupted = signum
        self.executor.kill_all()
        if first and not self._writing and not self._closing:
            raise Interrupted(signum)

    def _launch(self, run: cfg.Planned) -> tuple[axes.Launch, tuple[str, str] | None]:
        """How to start the run's child, or why it cannot run here: ("skipped", "n/a: one NUMA node") for a value
        this host cannot give, ("failed", reason) for a topology that cannot be read or too many threads."""
        from cpubench.host import topology

        try:
            return axes.launch(run.values, self._topology), None
        except topology.NotApplicable as e:
            return axes.Launch(), ("skipped", f"n/a: {e}")
        except (topology.PlacementError, topology.TopologyError) as e:
            return axes.Launch(), ("failed", f"placement: {e}")

    @functools.cached_property
    def _topology(self) -> Any:
        """The topology the plan was resolved against, else this host's, read when a run first needs it."""
        from cpubench.host import topology

        if self.config.topology is not None:
            return self.config.topology
        try:
            return topology.Topology.read()
        except topology.TopologyError:
            return None  # axes.launch says a run needs one

    # -- the sweep

    def sweep(
        self, only: list[str], repeats: int | None, retry_failed: bool, progress: Progress, force: bool = False
    ) -> int:
        """Run what is missing; returns 0 when every run of this invocation is ok, 1 when some are not, 130 on
        Ctrl-C / SIGTERM, 2 when the machine or the folder is busy, 3 when the disk is full."""
        # before the lock, the scratch folder's emptying and every record and log: nothing through a link
        store.check_no_links(self.host_dir, "run")
        try:
            held = HostHold.take(self.host_dir, force)
        except Busy as e:
            print(f"cpubench run: error: {e}", file=sys.stderr)
            return 2
        forced = held.forced
        self._empty_scratch()
        if forced:
            progress.say(f"cpubench: warning: --force: another benchmark is running ({forced}); records say so")
        summary = Summary()
        self.recorder = Recorder(self.root, self.host_id)
        t_start = time.monotonic()
        old: dict[int, Any] = {}
        self._interrupted, self._closing = None, False
        try:
            # Inside the try: a signal that lands as the handlers go in is still the closing line and exit 130.
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                old[s] = signal.signal(s, self._on_signal)
            return self._sweep(only, repeats, retry_failed, progress, summary, forced)
        except Interrupted as e:
            wall = time.monotonic() - t_start
            c = summary.counts
            progress.mode = "plain" if progress.mode == "never" else progress.mode
            progress.say(
                f"cpubench: interrupted by {e}: any run in flight was killed and not recorded; {c['ok']} ok, "
                f"{c['failed']} failed, {c['timeout']} timeout in {hms(wall)}; run the same command to resume "
                f"-> {self.host_dir}"
            )
            return 130
        except DiskFull as e:
            self._closing = True
            left = f"{e.left} runs resume" if e.left is not None else "the runs not recorded resume"
            print(f"cpubench run: error: {e}; free space, then run the same command again: {left}", file=sys.stderr)
            return 3
        finally:
            # Our handler stays until the last step, so a signal now kills what may still run and raises nothing.
            self._closing = True
            self.executor.kill_all()
            self._empty_scratch()
            held.release()
            for s, h in old.items():
                signal.signal(s, h)

    def _empty_scratch(self) -> None:
        """A fresh, empty temporary folder for the children (what a killed child left there goes)."""
        shutil.rmtree(self.scratch, ignore_errors=True)
        self.scratch.mkdir(parents=True, exist_ok=True)

    def _sweep(
        self,
        only: list[str],
        repeats: int | None,
        retry_failed: bool,
        progress: Progress,
        summary: Summary,
        forced: str | None,
    ) -> int:
        previous = hosts.read_previous(self.root, self.host_id, progress.say)
        try:
            host = limits.attach(facts.collect_host(self.host_id, previous), previous, progress.say)
            store.write_host(self.root, price.with_price(host, previous, self.price_per_hour))
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull(f"no space left on the disk of {self.host_dir}") from e
            raise
        data = plan_data(self.config, self.root)
        planner = self.planner(data, retry_failed)
        planner.extend(select(self.config, only, repeats))
        summary.already = planner.already
        total = len(planner)
        progress.say(
            f"cpubench: {self.config.name} on {self.host_id}: {total} runs to do, {summary.already} already done "
            f"-> {self.host_dir}"
        )
        if planner.newer:
            progress.say(f"cpubench: {planner.newer} runs were recorded by a newer cpubench: not rerun (upgrade)")
        for line in [*cfg.plan_notes(self.config), *self.host_notes()]:
            progress.say(f"cpubench: {line}")
        if self.env_removed:
            progress.say(
                f"cpubench: left out of the engine's environment (inherited, not in the config's env:): "
                f"{', '.join(self.env_removed)}"
            )
        if data.needs_generation and any(p.run.setting.params.get("data") == "real" for p in planner.pending()):
            t0 = time.monotonic()
            generate_data(data, self.config, self.executor, progress)
            summary.data_seconds = time.monotonic() - t0
        groups = self.group_runner(data, progress, forced)
        t_loop = time.monotonic()
        n = 0
        for p in planner:
            # A signal that arrived while records were written, and the group then went unrecorded: stop before
            # the next engine starts rather than after it has run.
            self._check_interrupted()
            members = [p, *planner.take_point(p)] if self.config.batches_per_process else [p]
            launch, not_here = self._launch(p.run)
            if not_here is not None and not_here[0] == "skipped":
                if all(planner.skipped_before(q, not_here[1]) for q in members):
                    summary.still_na += len(members)
                    continue
            n += len(members)
            progress.started(n, n + len(planner), p.run, [q.run for q in planner.pending()])
            try:
                recs = groups.run(Group(members, launch, not_here))
            except DiskFull as e:
                e.left = len(planner) + len(members)
                raise
            except Exception as e:  # noqa: BLE001 - one group's trouble is said and counted; the sweep goes on
                if not isinstance(e, Unrecorded):
                    e = Unrecorded(f"unrecorded: the runner failed on this run ({hostfacts.first_line(e)})")
                for q in members:
                    summary.unrecorded.append(f"{q.run.label}: {e}")
                    progress.say(f"cpubench: warning: {summary.unrecorded[-1]}")
                continue
            for q, rec in zip(members, recs, strict=True):
                summary.counts[rec.status] += 1
                progress.finished(q.run, rec, [x.run for x in planner.pending()])
            if self._interrupted is not None:  # arrived while writing: the finished runs are recorded, then stop
                raise Interrupted(self._interrupted)
        wall = time.monotonic() - t_loop
        progress.mode = "plain" if progress.mode == "never" else progress.mode
        for line in closing_lines(summary, self.recorder.records, wall, self.host_dir):
            progress.say(line)
        bad = summary.counts["failed"] + summary.counts["timeout"] + len(summary.unrecorded)
        return 0 if bad == 0 else 1


# ---------------------------------------------------------------------------------------------------------------
# Closing lines and the overhead breakdown


def overhead_breakdown(records: Iterable[RunRecord], wall: float) -> dict[str, float]:
    """Where the sweep's wall time went: process start+exit, import, setup, build, warm-up, measured, runner.

    ``overhead_pct`` is the share of wall time outside the engines' measured windows beyond the unavoidable import
    and graph build. Runs that are not ok count whole as process time.
    """
    parts = {"import": 0.0, "setup": 0.0, "build": 0.0, "warmup": 0.0, "measured": 0.0}
    total_duration = 0.0
    for rec in records:
        total_duration += float(rec.duration or 0.0)
        if rec.status != "ok":
            continue  # a failed run's phases measured nothing: all of it is overhead (process time)
        t = rec.timings or {}
        for k in parts:
            v = t.get(k)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                parts[k] += float(v)
    process = max(0.0, total_duration - sum(parts.values()))
    runner = max(0.0, wall - total_duration)
    overhead = wall - parts["measured"] - parts["import"] - parts["setup"] - parts["build"]
    return {
        "wall": wall,
        "process": process,
        **parts,
        "runner": runner,
        "overhead_pct": 100.0 * overhead / wall if wall > 0 else 0.0,
    }


def format_overhead(b: dict[str, float]) -> str:
    return (
        f"overhead {b['overhead_pct']:.1f}% of wall outside measured windows beyond import+build: "
        f"process start+exit {b['process']:.1f} s, import {b['import']:.1f} s, "
        f"setup (devices, strategy) {b['setup']:.1f} s, build {b['build']:.1f} s, "
        f"warm-up {b['warmup']:.1f} s, measured {b['measured']:.1f} s, runner {b['runner']:.1f} s "
        f"of {b['wall']:.1f} s wall"
    )


def closing_lines(summary: Summary, records: list[RunRecord], wall: float, host_dir: Path) -> list[str]:
    c = summary.counts
    done = f"; {summary.already} already done" if summary.already else ""
    done += f"; {summary.still_na} still n/a as recorded before" if summary.still_na else ""
    data = f"; data generation {summary.data_seconds:.1f} s" if summary.data_seconds else ""
    lost = f"; {len(summary.unrecorded)} unrecorded" if summary.unrecorded else ""
    lines = [f"cpubench: {c['ok']} ok, {c['failed']} failed, {c['timeout']} timeout in {hms(wall)}{done}{data}{lost}"]
    if records:
        lines.append("cpubench: " + format_overhead(overhead_breakdown(records, wall)))
    if c["failed"] + c["timeout"]:
        lines.append("cpubench: reasons are in runs.jsonl and the logs; rerun them with --retry-failed")
    lines.append(f"results: {host_dir}")
    return lines
