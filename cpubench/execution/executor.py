"""The executor: start engine processes, tie them to the runner, wait with a time limit, and say what each did.

Why a role of its own: *how* a child runs (its environment, its CPUs, its process group, its log, its time limit,
and how it is killed) is the same whether the sweep runs one engine at a time or, for the tuner, several pinned
instances at once. :meth:`Executor.start` starts one child without waiting; :meth:`Executor.wait` waits for any
number of them, calling back while they run (for progress lines); :meth:`Executor.run` is both for one child.

Every child is tied to the runner: its own process group (a timeout or Ctrl-C kills the whole group), and on Linux
``PR_SET_PDEATHSIG`` so the kernel kills it when the runner dies (``kill -9``), so no orphan keeps a core busy under
the next run. :func:`child_environment` decides what the child sees: the caller's environment without the
thread-limiting variables it did not mean to pass (``OMP_NUM_THREADS=1`` left in a shell), plus the config's
``env:``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tf_cnn_benchmarks import hostfacts
from tf_cnn_benchmarks.record import RecordError, RunRecord

# The last line that says what went wrong; lines of dashes, table headers and our own trailer are not reasons.
_ERROR_LINE = re.compile(
    r"error|exception|out of memory|\boom\b|resourceexhausted|killed|fatal|abort|segmentation|cannot|failed", re.I
)
_NOT_A_REASON = re.compile(r"^(#\s*cpubench|[-=_*~]{3,}$|Step\s+Img/sec|Running warm up|Done warm up|Batch norm: )")


def child_environment(parent: Mapping[str, str], config_env: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The engine's environment, and the inherited thread-limiting variables left out of it.

    A variable the config's ``env:`` sets is passed as the config says; one only inherited from the caller's shell
    that limits or pins threads is removed, so a sweep measures what its config says wherever it is started from.
    """
    removed = sorted(k for k in parent if hostfacts.is_thread_limiting(k) and k not in config_env)
    env = {k: v for k, v in parent.items() if k not in removed}
    env.update(config_env)
    env["PYTHONUNBUFFERED"] = "1"
    return env, removed


def last_error_line(text: str) -> str | None:
    """The line that says what went wrong: the last error-like line, else the last meaningful line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not _NOT_A_REASON.match(ln.strip())]
    for ln in reversed(lines):
        if _ERROR_LINE.search(ln):
            return ln[:300]
    return lines[-1][:300] if lines else None


def log_tail(path: Path, size: int = 65536) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def signal_name(rc: int | None) -> str | None:
    if rc is None or rc >= 0:
        return None
    try:
        return signal.Signals(-rc).name
    except ValueError:
        return f"signal {-rc}"


@dataclass
class Job:
    """One engine process to run: its command, where its log and result go, its environment and limits."""

    command: list[str]
    log: Path
    result_json: Path
    env: dict[str, str]
    timeout: float
    header: list[str] = field(default_factory=list)  # lines written at the top of the log
    cpus: list[int] | None = None  # pin the child to these CPUs (None: inherit)
    membind: list[int] | None = None  # bind the child's memory to these NUMA nodes (None: the default policy)
    preload: str | None = None  # a library put first in the child's LD_PRELOAD (the allocator axis)

    def child_env(self) -> dict[str, str]:
        """The child's environment: ``env``, with ``preload`` first in LD_PRELOAD (after it, what env preloads)."""
        if not self.preload:
            return self.env
        rest = self.env.get("LD_PRELOAD", "")
        return {**self.env, "LD_PRELOAD": f"{self.preload}:{rest}" if rest else self.preload}


@dataclass
class Outcome:
    """What one engine process did: status and reason, how it ended, and the record its result JSON holds."""

    status: str
    reason: str | None
    duration: float
    exit_code: int | None = None
    signal: str | None = None
    record: RunRecord | None = None  # the engine's own record (its result JSON), when readable
    rc: int | None = None  # the process's return code (negative: killed by that signal)

    @property
    def images_per_sec(self) -> float | None:
        return self.record.images_per_sec if self.status == "ok" and self.record else None


def read_result(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The result JSON as an object, or None with why (absent, or unreadable)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None, None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        return None, f"the result JSON is unreadable ({hostfacts.first_line(e)})"
    if not isinstance(data, dict):
        return None, "the result JSON is not an object"
    return data, None


def interpret(
    rc: int | None, timed_out: bool, timeout: float, result: dict[str, Any] | None, log: Path, duration: float
) -> Outcome:
    """Turn an exit status, a result JSON (authoritative when it is a valid record) and the log tail into an
    outcome. A run is ok only when its record says ok with images/sec > 0; never a 0 in a table."""
    sig = signal_name(rc)
    exit_code = rc if rc is not None and rc >= 0 else None
    how = f"killed by {sig}" if sig else f"exit code {rc}"
    record: RunRecord | None = None
    invalid = None
    if result is not None:
        try:
            record = RunRecord.from_dict(result)
        except RecordError as e:
            invalid = f"the result JSON is not a valid record: {e}"
    if timed_out:
        return Outcome("timeout", f"timeout after {timeout:g} s", duration, exit_code, sig, record)
    if record is not None and record.ok:
        return Outcome("ok", None, duration, exit_code, sig, record)
    if invalid is not None:
        return Outcome("failed", f"{how}: {invalid}", duration, exit_code, sig, None)
    if record is not None and record.reason:
        line = hostfacts.first_line(record.reason)
    else:
        line = last_error_line(log_tail(log))
        if result is None and rc == 0:
            line = f"no result JSON written{': ' + line if line else ''}"
    if sig == "SIGKILL" and not line:
        line = "no error line (the kernel's out-of-memory killer sends SIGKILL)"
    return Outcome("failed", f"{how}: {line}" if line else how, duration, exit_code, sig, record)


@dataclass
class Running:
    """A started child: its job, its process and log file, when it started."""

    job: Job
    proc: subprocess.Popen[bytes] | None
    log_file: Any
    t0: float
    outcome: Outcome | None = None
    timed_out: bool = False


class Executor:
    """Starts and waits for engine children; :meth:`kill_all` ends every one (the runner's signal handler)."""

    def __init__(self) -> None:
        self.running: list[Running] = []

    def start(self, job: Job) -> Running:
        """Start one child without waiting. A child that cannot start is finished at once with the reason."""
        job.log.parent.mkdir(parents=True, exist_ok=True)
        job.result_json.unlink(missing_ok=True)
        # a new file, never one already there nor through a link (O_EXCL): a kept log is never written over
        fd = os.open(job.log, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, hostfacts.file_mode())
        f = os.fdopen(fd, "wb")
        try:
            header = [
                *job.header,
                f"# cpubench command: {shlex.join(job.command)}",
                f"# cpubench env: {' '.join(f'{k}={v}' for k, v in hostfacts.thread_env(job.env).items())}",
            ]
            if job.cpus:
                header.append(f"# cpubench cpus: {','.join(map(str, job.cpus))}")
            if job.membind:
                header.append(f"# cpubench memory bound to nodes: {','.join(map(str, job.membind))}")
            if job.preload:
                header.append(f"# cpubench preload: {job.preload}")
            f.write(("\n".join(header) + "\n").encode())
            f.flush()
        except OSError:
            f.close()
            raise
        t0 = time.monotonic()
        try:
            proc = subprocess.Popen(
                job.command,
                stdin=subprocess.DEVNULL,
                stdout=f,
                stderr=subprocess.STDOUT,
                env=job.child_env(),
                start_new_session=True,
                preexec_fn=hostfacts.tie_to_parent(os.getpid(), job.cpus, job.membind),
            )
        except (OSError, ValueError, subprocess.SubprocessError) as e:
            why = f"could not start the engine: {hostfacts.first_line(e)}"
            try:
                f.write(f"# cpubench: {why}\n".encode())
            finally:
                f.close()
            return Running(job, None, None, t0, Outcome("failed", why, time.monotonic() - t0))
        r = Running(job, proc, f, t0)
        self.running.append(r)
        return r

    def kill_all(self) -> None:
        """SIGKILL every running child's process group (safe from a signal handler)."""
        for r in list(self.running):
            if r.proc is not None and r.proc.poll() is None:
                try:
                    os.killpg(r.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def _finish(self, r: Running, rc: int | None) -> None:
        duration = time.monotonic() - r.t0
        what = "timeout, killed" if r.timed_out else "exit"
        try:
            r.log_file.write(f"\n# cpubench: {what} rc={rc} after {duration:.2f} s\n".encode())
            r.log_file.close()
        except OSError:
            pass  # a full disk must not cost the outcome: the result JSON decides, the trailer is for people
        result, unreadable = read_result(r.job.result_json)
        out = interpret(rc, r.timed_out, r.job.timeout, result, r.job.log, duration)
        if unreadable and out.status == "failed" and result is None:
            out.reason = f"{out.reason}; {unreadable}"
        out.rc = rc
        r.outcome = out
        if r in self.running:
            self.running.remove(r)

    def wait(
        self, started: Sequence[Running], tick: Callable[[float], None] | None = None, poll: float = 0.5
    ) -> list[Outcome]:
        """Wait for every started child (each within its own time limit), calling ``tick(elapsed)`` meanwhile."""
        t_start = time.monotonic()
        while True:
            pending = [r for r in started if r.outcome is None]
            if not pending:
                break
            for r in pending:
                assert r.proc is not None
                rc = r.proc.poll()
                if rc is None and time.monotonic() - r.t0 > r.job.timeout:
                    r.timed_out = True
                    try:
                        os.killpg(r.proc.pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                    rc = r.proc.wait()
                if rc is not None:
                    self._finish(r, rc)
            if any(r.outcome is None for r in started):
                if tick is not None:
                    tick(time.monotonic() - t_start)
                first = min(
                    (r for r in started if r.outcome is None and r.proc is not None), key=lambda r: r.t0, default=None
                )
                left = first.job.timeout - (time.monotonic() - first.t0) if first else poll
                try:
                    if first is not None and first.proc is not None:
                        first.proc.wait(timeout=max(0.01, min(poll, left)))
                except subprocess.TimeoutExpired:
                    pass
        return [r.outcome for r in started if r.outcome is not None]

    def run(self, job: Job, tick: Callable[[float], None] | None = None) -> Outcome:
        """Run one child to its end."""
        return self.wait([self.start(job)], tick)[0]


def log_header(**fields: Any) -> str:
    """The first line of a run's log: when, and which run (``key=value`` pairs)."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return f"# cpubench run: {now} " + " ".join(f"{k}={v}" for k, v in fields.items())
