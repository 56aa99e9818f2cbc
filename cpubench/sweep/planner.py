"""The planner: which runs of a config are still to do on this host, in what order, and under what identity.

Why a role of its own: resume is only honest when a stored record is reused for exactly the same measurement, so the
planner owns the identity of a run (:func:`cpubench.spec.config.run_hash` over the axis values, counts, flags, data
source, engine and thread environment) and matches it against the store. The plan is a queue that can grow while
results arrive (:meth:`Planner.extend`), which is what a tuner needs: measure some points, then decide the next.

Records written by cpubench 0.1 (schema 1) resume by the hash they were recorded with (:func:`run_hash_v1`);
records written by a newer cpubench are never rerun.
"""

from __future__ import annotations

import shlex
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import tf_cnn_benchmarks
from cpubench.results import store
from cpubench.spec import config as cfg


@dataclass(frozen=True)
class PlannedRun:
    """A run to do and its identity hash."""

    run: cfg.Planned
    run_hash: str


def engine_identity(
    engine: list[str], default: bool, framework_version: str | None, torch_version: str | None = None
) -> dict[str, Any]:
    """What identifies the engine in a run hash: our engine by name and version (wherever it is installed), any
    other by its command line; with the version of each framework the default engine can run on (a run's identity
    keeps its own framework's: :func:`cpubench.spec.config.engine_for`)."""
    if default:
        return {"name": "tf_cnn_benchmarks", "version": tf_cnn_benchmarks.__version__, "framework": "tensorflow",
                "framework_version": framework_version, "versions": {"pytorch": torch_version}}  # fmt: skip
    return {"command": shlex.join(engine)}


class Planner:
    """The pending runs of one config on one host folder."""

    def __init__(
        self,
        config: cfg.Config,
        runs: store.RunsFile,
        data_source: dict[str, Any],
        engine: dict[str, Any],
        thread_env: dict[str, str],
        retry_failed: bool = False,
    ) -> None:
        self.config = config
        self.data_source = data_source
        self.engine = engine
        self.thread_env = thread_env
        self.retry_failed = retry_failed
        self.queue: deque[PlannedRun] = deque()
        self.already = 0
        self.newer = 0
        self._ok: set[tuple[Any, ...]] = set()
        self._bad: set[tuple[Any, ...]] = set()
        self._skipped: dict[tuple[Any, ...], str | None] = {}
        for rec in runs.records:
            key = (rec.run_hash, rec.repeat) if rec.schema >= 2 else _v1_key(rec)
            if rec.status == "ok":
                self._ok.add(key)
            elif rec.status in ("failed", "timeout"):
                self._bad.add(key)
            if rec.schema >= 2:
                self._skipped[key] = rec.reason if rec.status == "skipped" else None  # the latest word counts
        self._newer = {(n.run_hash, n.repeat) for n in runs.newer}

    def skipped_before(self, planned: PlannedRun, reason: str) -> bool:
        """Whether this run's latest record already says it is skipped here for ``reason``.

        Why a skipped run is planned again at all: the reason can go (a library installed, a second NUMA node), and
        a resume should then measure it. Why it is not recorded again when the reason stands: each resume would add
        the same "n/a" line to ``runs.jsonl`` and count it as still to do."""
        return self._skipped.get((planned.run_hash, planned.run.repeat)) == reason

    def run_hash(self, run: cfg.Planned) -> str:
        return cfg.run_hash(self.config, run, self.data_source, self.engine, self.thread_env)

    def _done(self, run: cfg.Planned, h: str) -> bool:
        keys = [(h, run.repeat)]
        v1 = cfg.run_hash_v1(self.config, run, self.data_source)
        if v1 is not None and "command" not in self.engine:  # cpubench 0.1 ran our engine unless told otherwise
            keys.append((run.setting.name, run.model, run.batch_size, run.repeat, v1))
        if (h, run.repeat) in self._newer:
            self.newer += 1
            return True
        return any(k in self._ok or (k in self._bad and not self.retry_failed) for k in keys)

    def extend(self, runs: Iterable[cfg.Planned]) -> int:
        """Queue the runs that are not done yet; returns how many were queued."""
        n = 0
        for run in runs:
            h = self.run_hash(run)
            if self._done(run, h):
                self.already += 1
                continue
            self.queue.append(PlannedRun(run, h))
            n += 1
        return n

    def __len__(self) -> int:
        return len(self.queue)

    def __iter__(self) -> Iterator[PlannedRun]:
        """Take runs off the queue in order; runs queued meanwhile are taken too."""
        while self.queue:
            yield self.queue.popleft()

    def take_point(self, first: PlannedRun) -> list[PlannedRun]:
        """The runs queued right after ``first`` that differ from it only by batch size (one engine process can
        measure them all), taken off the queue."""
        out: list[PlannedRun] = []
        key = (first.run.setting.name, first.run.model, first.run.repeat)
        while self.queue and (self.queue[0].run.setting.name, self.queue[0].run.model, self.queue[0].run.repeat) == key:
            out.append(self.queue.popleft())
        return out

    def pending(self) -> list[PlannedRun]:
        """The queue as it stands (for a dry run and the ETA)."""
        return list(self.queue)


def _v1_key(rec: store.RunRecord) -> tuple[Any, ...]:
    return (rec.setting, rec.model, rec.batch_size, rec.repeat, rec.run_hash)


def select(config: cfg.Config, only: list[str], repeats: int | None) -> list[cfg.Planned]:
    """The config's runs that ``--only`` keeps, repeats outermost."""
    return [r for r in cfg.plan(config, repeats) if not only or cfg.matches(r, only)]
