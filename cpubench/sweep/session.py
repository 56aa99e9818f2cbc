"""``cpubench run``: run a config's matrix on this host, one engine process per run, and never lose a measurement.

The roles, each in its module:

- :mod:`cpubench.sweep.planner` decides what is still to do (resume by a per-run identity hash; ``--retry-failed``
reruns
  failed and timed-out runs) and can grow its plan while results
  arrive;
- :mod:`cpubench.execution.executor` starts engine children tied to the runner, with the environment the config
means, and
  turns how each ended into an outcome (one child now, several pinned children for the tuner);
- :mod:`cpubench.execution.recorder` makes the typed record and files it in :mod:`cpubench.results.store`;
- :mod:`cpubench.sweep.progress` prints what happens: a live line on a terminal, heartbeats without one.

This module ties them together: the command line, the locks (one benchmark per machine, one writer per folder),
signals, the host's metadata and the generated real-data set.

Why one process per run (``python -m tf_cnn_benchmarks ... --result_json``): a crash, an out-of-memory kill or a
hang costs one run, not the sweep, and every run starts from the same cold state as the classic scripts did. The
result JSON is the contract; the log (``logs/<setting>/<model>-bs<k>-r<i>.log``) is kept for people. A run without
a usable result JSON is ``failed`` with the exit code or signal and the last error line of its log, never a 0.

The engine command is ``<python> -m tf_cnn_benchmarks``; the environment variable ``CPUBENCH_ENGINE`` (a shell-style
command line) or a config's ``engine:`` key replaces it, for tests and for other engines that take the same flags.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import functools
import os
import re
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from cpubench.execution.executor import (
    Executor,
    Job,
    Outcome,
    child_environment,
    interpret,
    log_header,
    log_tail,
    read_result,
)
from cpubench.execution.recorder import DiskFull, Recorder, Unrecorded
from cpubench.host import facts as sysinfo
from cpubench.host.locks import Busy, MachineLock
from cpubench.results import store
from cpubench.spec import axes
from cpubench.spec import config as cfg
from cpubench.sweep.planner import PlannedRun, Planner, engine_identity, select
from cpubench.sweep.progress import Progress, describe, hms
from cpubench.sweep.realdata import DataPlan, generate_data, plan_data
from tf_cnn_benchmarks import hostfacts
from tf_cnn_benchmarks.record import STATUSES, RecordError, RunRecord

ENGINE_ENV = "CPUBENCH_ENGINE"
LOCK_FILE = ".runner.lock"  # per host folder: one writer at a time, even with --force


# ---------------------------------------------------------------------------------------------------------------
# Command line


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        metavar="FILE",
        help=f"YAML config, or a shipped name ({', '.join(cfg.packaged_configs())}); "
        f"default: the embedded {cfg.DEFAULT_CONFIG}",
    )
    p.add_argument(
        "--out", metavar="DIR", default="data", help="results root; runs go to DIR/<host-id>/ (default data/)"
    )
    p.add_argument("--host-id", metavar="ID", help="host folder name (default: short CPU name like EPYC-9654)")
    p.add_argument(
        "--unique-host-id",
        action="store_true",
        help="add this machine's short stable suffix to the default host id (identical machines)",
    )
    p.add_argument(
        "--only",
        metavar="GLOB",
        action="append",
        default=[],
        help="run only settings/models matching GLOB (setting, model, or setting/model-bs<k>); repeatable",
    )
    p.add_argument("--repeats", type=int, metavar="N", help="repeats per run (overrides the config)")
    p.add_argument("--dry-run", action="store_true", help="list the runs (setting, model, batch, repeat, command)")
    p.add_argument("--retry-failed", action="store_true", help="rerun failed and timed-out runs too")
    p.add_argument(
        "--progress",
        choices=("auto", "live", "plain", "always", "never"),
        default="auto",
        help="live: one line rewritten in place; plain: a line per run and a heartbeat while one runs; "
        "auto (default): live on a terminal, else plain; always = live; never: closing lines only",
    )
    p.add_argument(
        "--heartbeat",
        type=float,
        metavar="SECONDS",
        default=60.0,
        help="without a terminal, print a line at least this often while a run is in flight (default 60)",
    )
    p.add_argument(
        "--wait-quiet",
        nargs="?",
        type=float,
        const=300.0,
        default=None,
        metavar="SECONDS",
        help="before each run, wait until other processes use at most 5%% of the CPUs (up to SECONDS, default 300; "
        "then run anyway and say so)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="run even while another benchmark holds this machine (the records say so)",
    )
    p.add_argument(
        "--print-host-dir",
        action="store_true",
        help="print the results folder DIR/<host-id> this command would use, and exit",
    )


def main(args: argparse.Namespace) -> int:
    try:
        config = cfg.load_config(args.config)
        if args.repeats is not None and args.repeats < 1:
            raise cfg.ConfigError(f"--repeats={args.repeats}: must be at least 1")
        if not args.heartbeat > 0:
            raise cfg.ConfigError(f"--heartbeat={args.heartbeat}: must be more than 0 seconds")
        if args.wait_quiet is not None and not 0 < args.wait_quiet < float("inf"):
            raise cfg.ConfigError(f"--wait-quiet={args.wait_quiet:g}: must be a number of seconds above 0")
        host_id = sysinfo.resolve_host_id(args.out, args.host_id, args.unique_host_id)
        if not args.print_host_dir and not args.dry_run:
            store.check_writable(args.out)
    except (cfg.ConfigError, store.StoreError) as e:
        print(f"cpubench run: error: {e}", file=sys.stderr)
        return 2
    if args.print_host_dir:
        print(store.host_dir(args.out, host_id))
        return 0
    engine, default = engine_command(config)
    runner = Runner(config, Path(args.out), host_id, engine, default_engine=default)
    if args.dry_run:
        return runner.dry_run(args.only, args.repeats, args.retry_failed, sys.stdout)
    mode = {"always": "live", "auto": "live" if sys.stdout.isatty() else "plain"}.get(args.progress, args.progress)
    progress = Progress(sys.stdout, mode, args.heartbeat)
    runner.wait_quiet = args.wait_quiet
    return runner.sweep(args.only, args.repeats, args.retry_failed, progress, force=args.force)


def engine_command(config: cfg.Config) -> tuple[list[str], bool]:
    """``$CPUBENCH_ENGINE`` if set, else the config's ``engine:``, else this Python's ``-m tf_cnn_benchmarks``
    (the second value says whether it is that default)."""
    env = os.environ.get(ENGINE_ENV, "").strip()
    if env:
        return shlex.split(env), False
    if config.engine:
        return list(config.engine), False
    return [sys.executable, "-m", "tf_cnn_benchmarks"], True


def launch_mismatch(launch: axes.Launch, outcome: Outcome) -> str | None:
    """Why an ok run did not run as it was started (its CPUs or memory policy, as the engine saw them), or None.

    An engine that does not report them (a result JSON without ``cpus``) cannot be checked; its record keeps what
    was asked under ``details.launch``."""
    rec = outcome.record
    if outcome.status != "ok" or rec is None:
        return None
    if launch.cpus and rec.cpus is not None and sorted(rec.cpus) != sorted(launch.cpus):
        return f"pinned to CPUs {_cpus(launch.cpus)} but the engine could run on {_cpus(rec.cpus)}"
    if launch.membind and rec.memory_policy is not None:
        mode, nodes = rec.memory_policy.get("mode"), rec.memory_policy.get("nodes")
        if mode != "bind" or sorted(nodes or []) != sorted(launch.membind):
            return f"memory bound to nodes {_cpus(launch.membind)} but the engine's policy is {mode} {nodes}"
    return None


def _cpus(cpus: list[int]) -> str:
    from cpubench.host.topology import format_cpulist

    return format_cpulist(cpus)


QUIET_PCT = 5.0  # other processes' share of the CPUs under which the machine counts as quiet


def wait_for_quiet(limit: float, progress: Progress, what: str, sample: float = 1.0) -> dict[str, Any]:
    """Wait until other processes use at most 5% of the machine's CPUs (sampled over ``sample`` seconds), up to
    ``limit`` seconds; what happened goes into the record."""
    t0 = time.monotonic()
    while True:
        start = hostfacts.CpuSnapshot.take()
        time.sleep(sample)
        n = hostfacts.noise_between(start, hostfacts.CpuSnapshot.take())
        busy = n["foreign_cpu_pct"]
        waited = time.monotonic() - t0
        if busy is None or busy <= QUIET_PCT + (n["resolution_pct"] or 0.0):
            return {"waited_s": round(waited, 1), "busy_pct": busy, "gave_up": False}
        if waited >= limit:
            progress.say(
                f"cpubench: {what}: gave up waiting for a quiet machine after {waited:.0f} s (other processes used "
                f"{busy:.1f}% of the CPUs); running anyway"
            )
            return {"waited_s": round(waited, 1), "busy_pct": busy, "gave_up": True}


def recover(run_hash: str, log: Path, result_json: Path) -> Outcome | None:
    """The outcome of a run that was measured but never recorded (the sweep stopped between the engine's exit and
    the record: a full disk, ``kill -9``): its log names the same run hash and its result JSON is a valid ok record.
    Recording it beats measuring it again: a measured run is never dropped."""
    try:
        with open(log, encoding="utf-8", errors="replace") as f:
            first = f.readline()
    except OSError:
        return None
    if f"run_hash={run_hash}" not in first.split():
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
    m = re.search(r"^# cpubench: exit rc=(-?\d+) after ([\d.]+) s$", log_tail(log), re.M)
    duration = float(m.group(2)) if m else float((rec.timings or {}).get("total_in_engine") or 0.0)
    return Outcome("ok", None, duration, exit_code=int(m.group(1)) if m else None, record=rec)


# ---------------------------------------------------------------------------------------------------------------
# The sweep


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: the children were killed; the sweep stops with a summary."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class Summary:
    """Counts of this invocation, for the closing lines."""

    counts: dict[str, int] = field(default_factory=lambda: {s: 0 for s in STATUSES})
    already: int = 0
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
        self.wait_quiet: float | None = None  # seconds to wait for a quiet machine before each run

    # -- planning

    def planner(self, data: DataPlan, retry_failed: bool) -> Planner:
        """The plan against what the folder holds; records that cannot be read are named on stderr."""
        identity = engine_identity(
            self.engine, self.default_engine, sysinfo.tf_version_installed(), sysinfo.torch_version_installed()
        )
        runs = store.read_runs(self.host_dir) if self.host_dir.is_dir() else store.RunsFile()
        for w in runs.warnings:
            print(f"cpubench: warning: {w}", file=sys.stderr)
        return Planner(self.config, runs, data.source, identity, hostfacts.thread_env(self.child_env), retry_failed)

    def command(self, run: cfg.Planned, data: DataPlan, result_json: Path) -> list[str]:
        return [*self.engine, *cfg.engine_flags(self.config, run, data.path), f"--result_json={result_json}"]

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
        return 0

    # -- signals

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._interrupted = signum
        self.executor.kill_all()
        if not self._writing:
            raise Interrupted(signum)

    # -- one run

    def _base(self, p: PlannedRun, cmd: list[str], log: Path, started: str, load: list[float], data: DataPlan,
              forced: str | None) -> dict[str, Any]:  # fmt: skip
        """The runner's fields of a record: the spec as planned and the run's place in the sweep."""
        run = p.run
        params = dict(run.setting.params)
        details = {"lock_forced": f"measured while another benchmark ran ({forced})"} if forced else {}
        return {
            "host_id": self.host_id,
            "setting": run.setting.name,
            "model": run.model,
            "batch_size": run.batch_size,
            "num_devices": params.get("num_devices"),
            "params": params,
            "repeat": run.repeat,
            "run_hash": p.run_hash,
            "config_name": self.config.name,
            "started": started,
            "load_avg_before": load,
            "log": log.relative_to(self.host_dir).as_posix(),
            "command": cmd,
            "engine": {"command": shlex.join(self.engine)},
            "env": dict(self.config.env),
            "env_removed": list(self.env_removed),
            "data_generated": params.get("data") == "real" and data.generated,
            "details": details,
        }

    def _one(self, p: PlannedRun, data: DataPlan, progress: Progress, forced: str | None) -> RunRecord:
        """Run, record and count one planned run. Raises DiskFull; any other failure to record is Unrecorded."""
        run = p.run
        log = store.log_path(self.root, self.host_id, run.setting.name, run.model, run.batch_size, run.repeat)
        result_json = log.with_suffix(".json")
        cmd = self.command(run, data, result_json)
        started = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        load = [round(x, 2) for x in os.getloadavg()]
        base = self._base(p, cmd, log, started, load, data, forced)
        launch, not_here = self._launch(run)
        if run.setting.params.get("data") == "real" and data.unavailable:
            rec = self.recorder.build(base, None, self.child_env, reason=data.unavailable)
        elif not_here is not None:
            status, why = not_here
            rec = self.recorder.build(base, None, self.child_env, reason=why, status=status)
        else:
            header = log_header(host=self.host_id, config=self.config.name, setting=run.setting.name,
                                model=run.model, batch_size=run.batch_size, repeat=run.repeat,
                                run_hash=p.run_hash)  # fmt: skip
            job = Job(cmd, log, result_json, self.child_env, self.config.timeout, header=[header],
                      cpus=launch.cpus, membind=launch.membind)  # fmt: skip
            if launch.cpus or launch.membind:
                base["details"]["launch"] = {"cpus": launch.cpus, "membind": launch.membind}
            outcome = recover(p.run_hash, log, result_json)
            if outcome is not None:
                base["details"]["recovered"] = f"recorded from {result_json.name}, kept by a sweep that stopped"
                progress.say(f"cpubench: {describe(run)}: measured before, not recorded; recorded from {result_json}")
            else:
                if self.wait_quiet is not None:
                    base["details"]["wait_quiet"] = wait_for_quiet(self.wait_quiet, progress, describe(run))
                    base["load_avg_before"] = [round(x, 2) for x in os.getloadavg()]
                outcome = self._execute(job, progress)
                base["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
            if self._interrupted is not None:
                raise Interrupted(self._interrupted)
            mismatch = launch_mismatch(launch, outcome)
            if mismatch is not None:
                outcome.status, outcome.reason = "failed", mismatch
            rec = self.recorder.build(base, outcome, self.child_env)
        self._writing = True
        try:
            return self.recorder.accept(rec, kept_at=result_json)
        finally:
            self._writing = False

    def _execute(self, job: Job, progress: Progress) -> Outcome:
        """Run one engine child. A log that cannot be written means it never started: a full disk stops the sweep
        (DiskFull), any other write error is that run's failure with the reason."""
        try:
            return self.executor.run(job, progress.tick)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull(f"no space left on the disk of {self.host_dir}") from e
            return Outcome("failed", f"could not write the log {job.log} ({e.strerror})", 0.0)

    def _point(
        self, group: list[PlannedRun], data: DataPlan, progress: Progress, forced: str | None
    ) -> list[RunRecord]:
        """Every batch size of one point (same setting, model and repeat) measured by one engine process
        (``batches_per_process: true``): one log, one result JSON and one record per batch size. Import and
        runtime set-up are paid once; the process's wall time is shared out equally between the records."""
        first = group[0].run
        sizes = [p.run.batch_size for p in group]
        name = "-".join(map(str, sizes))
        log = store.log_path(self.root, self.host_id, first.setting.name, first.model, name, first.repeat)
        jsons = [log.with_name(f"{first.model}-bs{b}-r{first.repeat}.json") for b in sizes]
        template = log.with_name(f"{first.model}-bs{{batch_size}}-r{first.repeat}.json")
        cmd = [*self.engine, *cfg.engine_flags(self.config, first, data.path),
               f"--batch_sizes={','.join(map(str, sizes))}", f"--result_json={template}"]  # fmt: skip
        started = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        load = [round(x, 2) for x in os.getloadavg()]
        bases = [self._base(p, cmd, log, started, load, data, forced) for p in group]
        for base in bases:
            base["details"]["process"] = {"batch_sizes": sizes}
        launch, not_here = self._launch(first)
        outcomes: list[Outcome | None] = [recover(p.run_hash, log, js) for p, js in zip(group, jsons, strict=True)]
        reason, status = None, "failed"
        if not_here is not None:
            status, reason = not_here
            outcomes = [None] * len(group)
        elif any(o is None for o in outcomes):
            header = log_header(
                host=self.host_id,
                config=self.config.name,
                setting=first.setting.name,
                model=first.model,
                batch_sizes=",".join(map(str, sizes)),
                repeat=first.repeat,
            )
            header += "".join(f" run_hash={p.run_hash}" for p in group)  # fmt: skip
            job = Job(cmd, log, jsons[0], self.child_env, self.config.timeout * len(group), header=[header],
                      cpus=launch.cpus, membind=launch.membind)  # fmt: skip
            if self.wait_quiet is not None:
                quiet = wait_for_quiet(self.wait_quiet, progress, describe(first))
                for base in bases:
                    base["details"]["wait_quiet"] = quiet
            proc = self._execute(job, progress)
            if self._interrupted is not None:
                raise Interrupted(self._interrupted)
            after = [round(x, 2) for x in os.getloadavg()]
            for i, js in enumerate(jsons):
                if outcomes[i] is not None:
                    bases[i]["details"]["recovered"] = f"recorded from {js.name}, kept by a sweep that stopped"
                    continue
                bases[i]["load_avg_after"] = after
                if proc.rc is None and proc.status == "failed":
                    outcomes[i] = Outcome("failed", proc.reason, proc.duration / len(group))
                    continue
                result, _ = read_result(js)
                out = interpret(proc.rc, proc.status == "timeout", job.timeout, result, log, proc.duration / len(group))
                mismatch = launch_mismatch(launch, out)
                if mismatch is not None:
                    out.status, out.reason = "failed", mismatch
                outcomes[i] = out
            if launch.cpus or launch.membind:
                for base in bases:
                    base["details"]["launch"] = {"cpus": launch.cpus, "membind": launch.membind}
        records = [self.recorder.build(base, o, self.child_env, reason=reason, status=status)
                   for base, o in zip(bases, outcomes, strict=True)]  # fmt: skip
        accepted = []
        self._writing = True
        try:
            for rec, js in zip(records, jsons, strict=True):
                accepted.append(self.recorder.accept(rec, kept_at=js))
        finally:
            self._writing = False
        return accepted

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
        """This host's topology, read when a run first needs it (pinned placement, bound memory)."""
        from cpubench.host import topology

        try:
            return topology.Topology.read()
        except topology.TopologyError:
            return None  # axes.launch reads it again and says why

    # -- the sweep

    def sweep(
        self, only: list[str], repeats: int | None, retry_failed: bool, progress: Progress, force: bool = False
    ) -> int:
        """Run what is missing; returns 0 when every run of this invocation is ok, 1 when some are not, 130 on
        Ctrl-C / SIGTERM, 2 when the machine or the folder is busy, 3 when the disk is full."""
        machine = MachineLock()
        try:
            self.host_dir.mkdir(parents=True, exist_ok=True)
            forced = machine.acquire(self.host_dir, force)
        except (Busy, OSError) as e:
            print(f"cpubench run: error: {hostfacts.first_line(e) if isinstance(e, OSError) else e}", file=sys.stderr)
            return 2
        lock = open(self.host_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held for the whole sweep
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            machine.release()
            print(f"cpubench run: error: another cpubench run is writing to {self.host_dir}", file=sys.stderr)
            return 2
        self._empty_scratch()
        if forced:
            progress.say(f"cpubench: warning: --force: another benchmark is running ({forced}); records say so")
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        summary = Summary()
        self.recorder = Recorder(self.root, self.host_id)
        t_start = time.monotonic()
        try:
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
            left = f"{e.left} runs resume" if e.left is not None else "the runs not recorded resume"
            print(f"cpubench run: error: {e}; free space, then run the same command again: {left}", file=sys.stderr)
            return 3
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            self.executor.kill_all()
            self._empty_scratch()
            lock.close()
            machine.release()

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
        previous = sysinfo.read_previous(self.root, self.host_id)
        try:
            store.write_host(self.root, sysinfo.collect_host(self.host_id, previous))
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
        for why, n in cfg.left_out(self.config).items():
            progress.say(f"cpubench: {n} settings left out of the plan: {why}")
        if self.env_removed:
            progress.say(
                f"cpubench: left out of the engine's environment (inherited, not in the config's env:): "
                f"{', '.join(self.env_removed)}"
            )
        if data.needs_generation and any(p.run.setting.params.get("data") == "real" for p in planner.pending()):
            t0 = time.monotonic()
            generate_data(data, self.config, self.executor, progress)
            summary.data_seconds = time.monotonic() - t0
        t_loop = time.monotonic()
        n = 0
        for p in planner:
            group = [p, *planner.take_point(p)] if self.config.batches_per_process else [p]
            n += len(group)
            progress.started(n, n + len(planner), p.run, [q.run for q in planner.pending()])
            try:
                if len(group) > 1:
                    recs = self._point(group, data, progress, forced)
                    for q, rec in zip(group, recs[:-1], strict=False):
                        summary.counts[rec.status] += 1
                        progress.finished(q.run, rec, [x.run for x in planner.pending()])
                    rec = recs[-1]
                    p = group[-1]
                else:
                    rec = self._one(p, data, progress, forced)
            except DiskFull as e:
                e.left = len(planner) + 1
                raise
            except Interrupted:
                raise
            except Exception as e:  # noqa: BLE001 - one run's trouble is said and counted; the sweep goes on
                if not isinstance(e, Unrecorded):
                    e = Unrecorded(f"unrecorded: the runner failed on this run ({hostfacts.first_line(e)})")
                summary.unrecorded.append(
                    f"{p.run.setting.name} {p.run.model} bs{p.run.batch_size} r{p.run.repeat}: {e}"
                )
                progress.say(f"cpubench: warning: {summary.unrecorded[-1]}")
                continue
            if self._interrupted is not None:  # arrived while writing: the finished run is recorded, then stop
                raise Interrupted(self._interrupted)
            summary.counts[rec.status] += 1
            progress.finished(p.run, rec, [q.run for q in planner.pending()])
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
    data = f"; data generation {summary.data_seconds:.1f} s" if summary.data_seconds else ""
    lost = f"; {len(summary.unrecorded)} unrecorded" if summary.unrecorded else ""
    lines = [f"cpubench: {c['ok']} ok, {c['failed']} failed, {c['timeout']} timeout in {hms(wall)}{done}{data}{lost}"]
    if records:
        lines.append("cpubench: " + format_overhead(overhead_breakdown(records, wall)))
    if c["failed"] + c["timeout"]:
        lines.append("cpubench: reasons are in runs.jsonl and the logs; rerun them with --retry-failed")
    lines.append(f"results: {host_dir}")
    return lines
