"""What a sweep prints while it runs: a line per finished run, and signs of life while a run is in flight.

Why: a sweep runs for hours, often under ``nohup`` or over ``ssh`` without a terminal; a silent runner cannot be
told from a hung one. On a terminal one live line is rewritten in place (the run, its elapsed time, the sweep's
ETA); without one a heartbeat line is printed at least every ``heartbeat`` seconds (60 by default).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TextIO

from cpubench.spec import config as cfg
from tf_cnn_benchmarks.record import RunRecord


def hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class Eta:
    """Seconds left: each remaining run costs what the same setting+model took, else the same model, else the mean."""

    def __init__(self) -> None:
        self.durations: dict[tuple[str, str], list[float]] = {}

    def add(self, run: cfg.Planned, seconds: float) -> None:
        self.durations.setdefault((run.setting.name, run.model), []).append(seconds)

    def left(self, runs: Sequence[cfg.Planned]) -> float | None:
        if not self.durations:
            return None
        every = [d for ds in self.durations.values() for d in ds]
        mean = sum(every) / len(every)
        by_model: dict[str, list[float]] = {}
        for (_s, m), ds in self.durations.items():
            by_model.setdefault(m, []).extend(ds)
        total = 0.0
        for run in runs:
            ds = self.durations.get((run.setting.name, run.model)) or by_model.get(run.model)
            total += sum(ds) / len(ds) if ds else mean
        return total


class Progress:
    """``mode``: "live" (a terminal: a line rewritten in place), "plain" (lines and heartbeats), "never"."""

    def __init__(self, out: TextIO, mode: str, heartbeat: float = 60.0) -> None:
        self.out = out
        self.mode = mode
        self.heartbeat = heartbeat
        self.eta = Eta()
        self._run: cfg.Planned | None = None
        self._n = self._total = 0
        self._left: Sequence[cfg.Planned] = ()
        self._last_line = time.monotonic()
        self._live_len = 0
        self.gone = False  # the output failed (a closed terminal, a pipe nobody reads): print nothing more

    def say(self, line: str) -> None:
        """A line that stays (cleared of any live line first)."""
        if self.mode == "never" or self.gone:
            return
        self._clear()
        self._write(line + "\n")
        self._last_line = time.monotonic()

    def _clear(self) -> None:
        if self._live_len:
            self._write("\r" + " " * self._live_len + "\r")
            self._live_len = 0

    def _write(self, text: str) -> None:
        """Write and flush, or, when the output is gone (the terminal closed: EIO; the reader of a pipe exited:
        EPIPE), stop printing for good: the sweep's results are in its files and nobody reads these lines, so a
        lost terminal must not turn into a traceback in the middle of a run or of its SIGHUP's closing line."""
        if self.gone:
            return
        try:
            self.out.write(text)
            self.out.flush()
        except OSError:
            self.gone = True

    def started(self, n: int, total: int, run: cfg.Planned, left: Sequence[cfg.Planned]) -> None:
        self._run, self._n, self._total, self._left = run, n, total, left
        self._last_line = time.monotonic()
        if self.mode == "live":
            self.tick(0.0)

    def _eta_text(self, elapsed: float) -> str:
        eta = self.eta.left(self._left)
        if eta is None:
            return ""
        return f", ETA {hms(eta + max(0.0, (self.eta.left([self._run]) or 0.0) - elapsed))}" if self._run else ""

    def tick(self, elapsed: float) -> None:
        """Called while the run is in flight."""
        if self._run is None or self.mode == "never":
            return
        text = f"[{self._n}/{self._total}] {self._run.label}: running {hms(elapsed)}{self._eta_text(elapsed)}"
        if self.mode == "live":
            self._clear()
            self._write(text)
            self._live_len = 0 if self.gone else len(text)
        elif time.monotonic() - self._last_line >= self.heartbeat:
            self.say(text + " (heartbeat)")

    def finished(self, run: cfg.Planned, rec: RunRecord, left: Sequence[cfg.Planned]) -> None:
        self.eta.add(run, float(rec.duration or 0.0))
        self._run = None
        if rec.status == "ok":
            res = f"ok {rec.images_per_sec:.2f} img/s"
        else:
            res = f"{rec.status.upper()} ({rec.reason})"
        eta = self.eta.left(left)
        eta_s = f", ETA {hms(eta)}" if eta is not None and left else ""
        self.say(
            f"[{self._n}/{self._total}] {run.label}: {res} in {rec.duration or 0.0:.1f} s; {len(left)} left{eta_s}"
        )
