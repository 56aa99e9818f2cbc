"""``cpubench run``: run a config's matrix on this host, one engine process per run, and never lose a measurement.

Why it is built this way:

- One process per run (``python -m tf_cnn_benchmarks ... --result_json``): a crash, an out-of-memory kill or a
  hang costs one run, not the sweep, and every run starts from the same cold state as the classic scripts did.
- The result JSON is the contract; the log (full stdout+stderr, under ``logs/<setting>/<model>-bs<k>-r<i>.log``) is
  kept for people. A run without a usable result JSON is ``failed`` with the exit code or signal and the last error
  line of its log, never a 0 in a table.
- Records go through :mod:`cpubench.store` (one fsynced line per run), so ``kill -9`` of the runner loses at most
  the run in flight; the child is tied to the runner (its own process group, killed on timeout, Ctrl-C, and by the
  kernel when the runner dies) so no orphan keeps a core busy under the next run.
- Resume is by a per-run hash of everything that changes the measurement (:func:`cpubench.config.run_hash`): running
  the same command again runs only what is missing; ``--retry-failed`` reruns failed and timed-out runs.

The engine command is ``<python> -m tf_cnn_benchmarks``; the environment variable ``CPUBENCH_ENGINE`` (a shell-style
command line) or a config's ``engine:`` key replaces it, for tests and for other engines that take the same flags.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from cpubench import config as cfg
from cpubench import store, sysinfo

ENGINE_ENV = "CPUBENCH_ENGINE"
GENERATED_DIR = "_generated"  # under --out: generated real-data sets, shared by the hosts' folders
LOCK_FILE = ".runner.lock"
_ERROR_LINE = re.compile(
    r"error|exception|out of memory|\boom\b|resourceexhausted|killed|fatal|abort|segmentation|cannot|failed", re.I
)


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
        choices=("auto", "always", "never"),
        default="auto",
        help="one line per run: auto = only on a terminal",
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
        host_id = sysinfo.resolve_host_id(args.out, args.host_id, args.unique_host_id)
    except (cfg.ConfigError, sysinfo.HostIdError) as e:
        print(f"cpubench run: error: {e}", file=sys.stderr)
        return 2
    if args.print_host_dir:
        print(store.host_dir(args.out, host_id))
        return 0
    runner = Runner(config, Path(args.out), host_id, engine_command(config))
    progress = args.progress == "always" or (args.progress == "auto" and sys.stdout.isatty())
    if args.dry_run:
        return runner.dry_run(args.only, args.repeats, args.retry_failed, sys.stdout)
    return runner.sweep(args.only, args.repeats, args.retry_failed, progress, sys.stdout)


def engine_command(config: cfg.Config) -> list[str]:
    """``$CPUBENCH_ENGINE`` if set, else the config's ``engine:``, else this Python's ``-m tf_cnn_benchmarks``."""
    env = os.environ.get(ENGINE_ENV, "").strip()
    if env:
        return shlex.split(env)
    if config.engine:
        return list(config.engine)
    return [sys.executable, "-m", "tf_cnn_benchmarks"]


# ---------------------------------------------------------------------------------------------------------------
# Real data


@dataclass
class DataPlan:
    """Where real-data runs read from; ``source`` goes into the run hash, ``unavailable`` into failed records."""

    source: dict[str, Any]
    path: str = ""
    generated: bool = False
    unavailable: str | None = None
    needs_generation: bool = False


def has_records(path: str) -> bool:
    """A folder of ImageNet-format TFRecord shards (``train-*`` or ``validation-*``)."""
    return bool(path) and os.path.isdir(path) and any(n.startswith(("train-", "validation-")) for n in os.listdir(path))


def plan_data(config: cfg.Config, root: Path) -> DataPlan:
    """Decide, without side effects, where real data comes from: the config's data_dir, else a generated set."""
    data_dir = cfg.expand_data_dir(config.data_dir)
    if has_records(data_dir):
        return DataPlan(source={"dir": config.data_dir}, path=data_dir)
    g = config.generate_data
    if g is not None:
        target = root / GENERATED_DIR / f"imagenet-{g.label}"
        ready = (target / ".complete").exists() and has_records(str(target))
        return DataPlan(
            source={"generated": {"count": g.count, "size": g.size}},
            path=str(target),
            generated=True,
            needs_generation=not ready,
        )
    where = f"data_dir {config.data_dir!r}" if config.data_dir else "no data_dir"
    return DataPlan(
        source={"dir": config.data_dir},
        path=data_dir,
        unavailable=f"real data unavailable: {where} holds no train-* TFRecords and the config has no generate_data",
    )


def make_data_command(src: Path, target: Path, gen: cfg.GenerateData) -> list[str]:
    """``cpubench make-data SRC OUT --generate COUNT [--size S]`` in its own process (it imports TensorFlow)."""
    cmd = [sys.executable, "-m", "cpubench", "make-data", str(src), str(target), "--generate", str(gen.count)]
    return cmd + (["--size", gen.size] if gen.size else [])


def generate_data(data: DataPlan, config: cfg.Config, out: TextIO | None) -> None:
    """Generate the small real-data set once (into a temporary folder renamed into place); on failure mark it
    unavailable with the reason, so the real-data runs fail with that reason instead of the sweep stopping."""
    g = config.generate_data
    assert g is not None
    target = Path(data.path)
    tmp = target.with_name(target.name + ".partial")
    src = target.with_name(target.name + ".jpeg")
    for d in (tmp, src):
        shutil.rmtree(d, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    cmd = make_data_command(src, tmp, g)
    if out is not None:
        print(f"cpubench: generating {g.count} JPEGs for the real-data settings: {target}", file=out, flush=True)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(600.0, config.timeout))
        ok = proc.returncode == 0 and has_records(str(tmp))
        why = last_error_line((proc.stdout or "") + (proc.stderr or "")) or f"exit code {proc.returncode}"
    except (OSError, subprocess.SubprocessError) as e:
        ok, why = False, str(e)
    shutil.rmtree(src, ignore_errors=True)
    if not ok:
        shutil.rmtree(tmp, ignore_errors=True)
        data.unavailable = f"real data unavailable: make-data failed: {why}"
        return
    (tmp / ".complete").write_text(json.dumps({"count": g.count, "size": g.size, "command": cmd}) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    data.needs_generation = False


# ---------------------------------------------------------------------------------------------------------------
# One run


def last_error_line(text: str) -> str | None:
    """The line that says what went wrong: the last line that looks like an error, else the last line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("# cpubench")]
    for ln in reversed(lines):
        if _ERROR_LINE.search(ln):
            return ln[:300]
    return lines[-1][:300] if lines else None


def _log_tail(path: Path, size: int = 65536) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _signal_name(rc: int | None) -> str | None:
    if rc is None or rc >= 0:
        return None
    try:
        return signal.Signals(-rc).name
    except ValueError:
        return f"signal {-rc}"


_PR_SET_PDEATHSIG = 1


def _child_setup(parent: int) -> Callable[[], None] | None:
    """On Linux, make the kernel SIGKILL the engine if the runner dies (``kill -9``): no orphan keeps measuring."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def setup() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the runner died before prctl took effect
            os._exit(1)

    return setup


@dataclass
class Outcome:
    """What one engine process did: the fields of its record that are not known before it starts."""

    status: str
    images_per_sec: float | None
    step_times: list[float]
    reason: str | None
    duration: float
    exit_code: int | None
    signal: str | None
    timings: dict[str, float] | None
    engine_version: str | None


def interpret(
    rc: int | None, timed_out: bool, timeout: float, result: dict[str, Any] | None, log: Path, duration: float
) -> Outcome:
    """Turn an exit status, a result JSON (authoritative when present) and the log tail into an outcome."""
    sig = _signal_name(rc)
    exit_code = rc if rc is not None and rc >= 0 else None
    timings = result.get("timings") if isinstance(result, dict) and isinstance(result.get("timings"), dict) else None
    version = result.get("engine_version") if isinstance(result, dict) else None
    how = f"killed by {sig}" if sig else f"exit code {rc}"
    if timed_out:
        return Outcome("timeout", None, [], f"timeout after {timeout:g} s", duration, exit_code, sig, timings, version)
    if result is not None and result.get("status") == "ok":
        ips = result.get("images_per_sec")
        if isinstance(ips, (int, float)) and not isinstance(ips, bool) and math.isfinite(ips) and ips > 0:
            steps = [float(x) for x in result.get("step_times") or []]
            return Outcome("ok", float(ips), steps, None, duration, exit_code, sig, timings, version)
        reason = f"{how}: result JSON says ok but images_per_sec is {ips!r}"
        return Outcome("failed", None, [], reason, duration, exit_code, sig, timings, version)
    if result is not None and result.get("reason"):
        line = str(result["reason"]).splitlines()[0][:300]
    else:
        line = last_error_line(_log_tail(log))
        if result is None and rc == 0:
            line = f"no result JSON written{': ' + line if line else ''}"
    if sig == "SIGKILL" and not line:
        line = "no error line (the kernel's out-of-memory killer sends SIGKILL)"
    reason = f"{how}: {line}" if line else how
    return Outcome("failed", None, [], reason, duration, exit_code, sig, timings, version)


def _read_result(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: the child was killed; the sweep stops with a summary."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# ---------------------------------------------------------------------------------------------------------------
# The sweep


@dataclass
class Summary:
    """Counts and the records of this invocation, for the closing lines."""

    counts: dict[str, int] = field(default_factory=lambda: {s: 0 for s in store.STATUSES})
    records: list[dict[str, Any]] = field(default_factory=list)
    already: int = 0
    data_seconds: float = 0.0


class Runner:
    """Runs one config on this host into ``root/<host_id>/``."""

    def __init__(self, config: cfg.Config, root: Path, host_id: str, engine: list[str]) -> None:
        self.config = config
        self.root = root
        self.host_id = host_id
        self.engine = engine
        self.host_dir = store.host_dir(root, host_id)
        self._child: subprocess.Popen[bytes] | None = None
        self._interrupted: int | None = None
        self._writing = False  # while a record is written, a signal waits so the line is never cut

    # -- planning

    def pending(
        self, only: list[str], repeats: int | None, retry_failed: bool, data: DataPlan
    ) -> tuple[list[tuple[cfg.Planned, str]], int]:
        """Runs still to do (with their hashes) and how many are already done."""
        done_ok: set[tuple[Any, ...]] = set()
        done_bad: set[tuple[Any, ...]] = set()
        for rec in store.iter_runs(self.host_dir):
            key = (
                rec.get("setting"),
                rec.get("model"),
                rec.get("batch_size"),
                rec.get("repeat"),
                rec.get("config_hash"),
            )
            if rec.get("status") == "ok":
                done_ok.add(key)
            elif rec.get("status") in ("failed", "timeout"):
                done_bad.add(key)
        todo, already = [], 0
        for run in cfg.plan(self.config, repeats):
            if only and not cfg.matches(run, only):
                continue
            h = cfg.run_hash(self.config, run, data.source)
            key = (*run.key, h)
            if key in done_ok or (key in done_bad and not retry_failed):
                already += 1
                continue
            todo.append((run, h))
        return todo, already

    def command(self, run: cfg.Planned, data: DataPlan, result_json: Path) -> list[str]:
        return [*self.engine, *cfg.engine_flags(self.config, run, data.path), f"--result_json={result_json}"]

    def dry_run(self, only: list[str], repeats: int | None, retry_failed: bool, out: TextIO) -> int:
        data = plan_data(self.config, self.root)
        todo, already = self.pending(only, repeats, retry_failed, data)
        for run, _h in todo:
            log = store.log_path(self.root, self.host_id, run.setting.name, run.model, run.batch_size, run.repeat)
            cmd = self.command(run, data, log.with_suffix(".json"))
            print(f"{run.setting.name}  {run.model}  bs{run.batch_size}  r{run.repeat}  {shlex.join(cmd)}", file=out)
        note = ""
        if any(r.setting.params["data"] == "real" for r, _ in todo):
            note = f"; real data: {data.unavailable or ('generated ' if data.generated else '') + data.path}"
        print(
            f"cpubench: {len(todo)} runs to do, {already} already done ({self.config.name} on {self.host_id}"
            f" -> {self.host_dir}){note}",
            file=out,
        )
        return 0

    # -- running

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._interrupted = signum
        self._kill_child()
        if not self._writing:
            raise Interrupted(signum)

    def _kill_child(self) -> None:
        child = self._child
        if child is not None and child.poll() is None:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def _execute(self, run: cfg.Planned, cmd: list[str], log: Path, result_json: Path, env: dict[str, str]) -> Outcome:
        log.parent.mkdir(parents=True, exist_ok=True)
        result_json.unlink(missing_ok=True)
        with open(log, "wb") as f:
            header = [
                f"# cpubench run: {datetime.now(timezone.utc).isoformat(timespec='seconds')} host={self.host_id} "
                f"config={self.config.name} setting={run.setting.name} model={run.model} "
                f"batch_size={run.batch_size} repeat={run.repeat}",
                f"# cpubench command: {shlex.join(cmd)}",
                f"# cpubench env: {' '.join(f'{k}={v}' for k, v in sysinfo.speed_env(env).items())}",
            ]
            f.write(("\n".join(header) + "\n").encode())
            f.flush()
            t0 = time.monotonic()
            timed_out = False
            try:
                self._child = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=f,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                    preexec_fn=_child_setup(os.getpid()),
                )
            except OSError as e:
                duration = time.monotonic() - t0
                f.write(f"# cpubench: could not start the engine: {e}\n".encode())
                return Outcome("failed", None, [], f"could not start the engine: {e}", duration, None, None, None, None)
            if self._interrupted is not None:  # a signal arrived while the child was being started
                self._kill_child()
                raise Interrupted(self._interrupted)
            try:
                rc: int | None = self._child.wait(timeout=self.config.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                self._kill_child()
                rc = self._child.wait()
            finally:
                if self._interrupted is not None:
                    self._kill_child()
                    self._child.wait()
                self._child = None
            duration = time.monotonic() - t0
            f.write(
                f"\n# cpubench: {'timeout, killed' if timed_out else 'exit'} rc={rc} after {duration:.2f} s\n".encode()
            )
        return interpret(rc, timed_out, self.config.timeout, _read_result(result_json), log, duration)

    def _record(
        self,
        run: cfg.Planned,
        run_hash: str,
        cmd: list[str],
        log: Path,
        outcome: Outcome | None,
        started: str,
        load: list[float],
        data: DataPlan,
        reason: str | None = None,
    ) -> dict[str, Any]:
        params = dict(run.setting.params)
        params["data_generated"] = params["data"] == "real" and data.generated
        rec: dict[str, Any] = {
            "schema": store.RUN_SCHEMA,
            "host_id": self.host_id,
            "setting": run.setting.name,
            "model": run.model,
            "batch_size": run.batch_size,
            "num_devices": params["num_devices"],
            "repeat": run.repeat,
            "status": outcome.status if outcome else "failed",
            "images_per_sec": outcome.images_per_sec if outcome else None,
            "step_times": outcome.step_times if outcome else [],
            "reason": outcome.reason if outcome else reason,
            "started": started,
            "duration": round(outcome.duration, 3) if outcome else 0.0,
            "load_avg_before": load,
            "config_hash": run_hash,
            "engine_version": outcome.engine_version if outcome else None,
            "params": params,
            "config_name": self.config.name,
            "log": log.relative_to(self.host_dir).as_posix(),
            "timings": outcome.timings if outcome else None,
            "command": cmd,
            "exit_code": outcome.exit_code if outcome else None,
            "signal": outcome.signal if outcome else None,
            "env": dict(self.config.env),
        }
        return rec

    def sweep(self, only: list[str], repeats: int | None, retry_failed: bool, progress: bool, out: TextIO) -> int:
        """Run what is missing; returns 0 when every run of this invocation is ok, 1 when some are not, 130 on
        Ctrl-C / SIGTERM, 2 when the results folder is busy."""
        self.host_dir.mkdir(parents=True, exist_ok=True)
        lock = open(self.host_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held for the whole sweep
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"cpubench run: error: another cpubench run is writing to {self.host_dir}", file=sys.stderr)
            return 2
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        summary = Summary()
        t_start = time.monotonic()
        try:
            return self._sweep(only, repeats, retry_failed, progress, out, summary, t_start)
        except Interrupted as e:
            wall = time.monotonic() - t_start
            c = summary.counts
            print(
                f"cpubench: interrupted by {e}: any run in flight was killed and not recorded; {c['ok']} ok, "
                f"{c['failed']} failed, {c['timeout']} timeout in {_hms(wall)}; run the same command to resume "
                f"-> {self.host_dir}",
                file=out,
                flush=True,
            )
            return 130
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            lock.close()

    def _sweep(
        self,
        only: list[str],
        repeats: int | None,
        retry_failed: bool,
        progress: bool,
        out: TextIO,
        summary: Summary,
        t_start: float,
    ) -> int:
        previous = sysinfo.read_previous(self.root, self.host_id)
        store.write_host(self.root, sysinfo.collect_host(self.host_id, previous))
        data = plan_data(self.config, self.root)
        todo, summary.already = self.pending(only, repeats, retry_failed, data)
        if progress:
            print(
                f"cpubench: {self.config.name} on {self.host_id}: {len(todo)} runs to do, {summary.already} already "
                f"done -> {self.host_dir}",
                file=out,
                flush=True,
            )
        if data.needs_generation and any(r.setting.params["data"] == "real" for r, _ in todo):
            t0 = time.monotonic()
            generate_data(data, self.config, out if progress else None)
            summary.data_seconds = time.monotonic() - t0
        env = {**os.environ, **self.config.env, "PYTHONUNBUFFERED": "1"}
        t_loop = time.monotonic()
        durations: dict[tuple[str, str], list[float]] = {}
        for i, (run, run_hash) in enumerate(todo):
            log = store.log_path(self.root, self.host_id, run.setting.name, run.model, run.batch_size, run.repeat)
            result_json = log.with_suffix(".json")
            cmd = self.command(run, data, result_json)
            started = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
            load = [round(x, 2) for x in os.getloadavg()]
            if run.setting.params["data"] == "real" and data.unavailable:
                rec = self._record(run, run_hash, cmd, log, None, started, load, data, reason=data.unavailable)
            else:
                outcome = self._execute(run, cmd, log, result_json, env)
                rec = self._record(run, run_hash, cmd, log, outcome, started, load, data)
            self._writing = True
            try:
                store.append_run(self.root, rec)
            finally:
                self._writing = False
            if self._interrupted is not None:  # arrived while writing: the finished run is recorded, then stop
                raise Interrupted(self._interrupted)
            summary.counts[rec["status"]] += 1
            summary.records.append(rec)
            durations.setdefault((run.setting.name, run.model), []).append(rec["duration"])
            if progress:
                left = todo[i + 1 :]
                print(_progress_line(i + 1, len(todo), rec, len(left), _eta(left, durations)), file=out, flush=True)
        wall = time.monotonic() - t_loop
        for line in closing_lines(summary, wall, self.host_dir):
            print(line, file=out, flush=True)
        return 0 if summary.counts["failed"] + summary.counts["timeout"] == 0 else 1


# ---------------------------------------------------------------------------------------------------------------
# Terminal output and the overhead breakdown


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _eta(left: list[tuple[cfg.Planned, str]], durations: dict[tuple[str, str], list[float]]) -> float | None:
    """Seconds left: each remaining run costs what the same setting+model took, else the same model, else the mean."""
    if not durations:
        return None
    every = [d for ds in durations.values() for d in ds]
    mean = sum(every) / len(every)
    by_model: dict[str, list[float]] = {}
    for (_s, m), ds in durations.items():
        by_model.setdefault(m, []).extend(ds)
    total = 0.0
    for run, _h in left:
        ds = durations.get((run.setting.name, run.model)) or by_model.get(run.model)
        total += sum(ds) / len(ds) if ds else mean
    return total


def _progress_line(n: int, total: int, rec: dict[str, Any], left: int, eta: float | None) -> str:
    what = f"{rec['setting']} {rec['model']} bs{rec['batch_size']} r{rec['repeat']}"
    if rec["status"] == "ok":
        res = f"ok {rec['images_per_sec']:.2f} img/s"
    else:
        res = f"{rec['status'].upper()} ({rec['reason']})"
    eta_s = f", ETA {_hms(eta)}" if eta is not None and left else ""
    return f"[{n}/{total}] {what}: {res} in {rec['duration']:.1f} s; {left} left{eta_s}"


def overhead_breakdown(records: Iterable[dict[str, Any]], wall: float) -> dict[str, float]:
    """Where the sweep's wall time went: process start+exit, import, setup, build, warm-up, measured, runner.

    ``overhead_pct`` is the share of wall time outside the engines' measured windows beyond the unavoidable import
    and graph build (the issue's target: at most 10 %). Runs that are not ok count whole as process time.
    """
    parts = {"import": 0.0, "setup": 0.0, "build": 0.0, "warmup": 0.0, "measured": 0.0}
    total_duration = 0.0
    for rec in records:
        total_duration += float(rec.get("duration") or 0.0)
        if rec.get("status", "ok") != "ok":
            continue  # a failed run's phases measured nothing: all of it is overhead (process time)
        t = rec.get("timings") or {}
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
        f"overhead {b['overhead_pct']:.1f}% of wall outside measured windows beyond import+build (target <= 10%): "
        f"process start+exit {b['process']:.1f} s, import {b['import']:.1f} s, "
        f"setup (devices, strategy) {b['setup']:.1f} s, build {b['build']:.1f} s, "
        f"warm-up {b['warmup']:.1f} s, measured {b['measured']:.1f} s, runner {b['runner']:.1f} s "
        f"of {b['wall']:.1f} s wall"
    )


def closing_lines(summary: Summary, wall: float, host_dir: Path) -> list[str]:
    c = summary.counts
    done = f"; {summary.already} already done" if summary.already else ""
    data = f"; data generation {summary.data_seconds:.1f} s" if summary.data_seconds else ""
    lines = [f"cpubench: {c['ok']} ok, {c['failed']} failed, {c['timeout']} timeout in {_hms(wall)}{done}{data}"]
    if summary.records:
        lines.append("cpubench: " + format_overhead(overhead_breakdown(summary.records, wall)))
    if c["failed"] + c["timeout"]:
        lines.append("cpubench: reasons are in runs.jsonl and the logs; rerun them with --retry-failed")
    lines.append(f"results: {host_dir}")
    return lines
