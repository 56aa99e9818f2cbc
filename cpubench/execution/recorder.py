"""The recorder: turn a planned run and its outcome into one :class:`RunRecord` and file it in the store.

Why a role of its own: the record is where the runner's facts (host, setting, repeat, hash, log, load, what was
removed from the child's environment) meet the engine's (threads, CPUs, memory policy, versions, samples), and the
one place that decides what a run *was*. Records that arrive from elsewhere (another host, streamed home) enter
through :meth:`Recorder.accept` and are checked like our own.

A record that cannot be written is never silently lost: a full disk (``ENOSPC``) becomes :class:`DiskFull` (the
sweep stops with the fix), any other write error becomes :class:`Unrecorded` naming the result JSON that still
holds the measurement.
"""

from __future__ import annotations

import errno
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from cpubench.execution.executor import Outcome
from cpubench.results import store
from tf_cnn_benchmarks import hostfacts
from tf_cnn_benchmarks.record import RECORD_SCHEMA, RecordError, RunRecord


class Unrecorded(Exception):
    """A run whose record could not be written; the message says why and where its result is kept."""


class DiskFull(Unrecorded):
    """No space left for the record: the sweep stops; running the same command again resumes."""

    left: int | None = None  # runs still to do when it filled, the one in flight included


class Recorder:
    """Files records under ``root/<host_id>/``; keeps this invocation's records for the closing lines."""

    def __init__(self, root: Path, host_id: str) -> None:
        self.root = root
        self.host_id = host_id
        self.host_dir = store.host_dir(root, host_id)
        self.records: list[RunRecord] = []

    def build(
        self,
        base: dict[str, Any],
        outcome: Outcome | None,
        child_env: dict[str, str] | None,
        reason: str | None = None,
        status: str = "failed",
    ) -> RunRecord:
        """The record of one run: ``base`` holds the runner's fields (spec and sweep position); the engine's own
        record (when its result JSON was valid) adds what only the child could see. Without an outcome (the run
        could not start here) the record is ``status`` (failed, or skipped for "n/a") with ``reason``."""
        engine_rec = outcome.record if outcome is not None else None
        rec = engine_rec if engine_rec is not None else RunRecord()
        seen_env = rec.thread_env if rec.thread_env is not None else (
            hostfacts.thread_env(child_env) if child_env is not None else None
        )  # fmt: skip
        base = dict(base)
        engine = {**rec.engine, **base.pop("engine", {})}
        group = {**(rec.group or {}), **(base.pop("group", None) or {})} or None
        details = {k: v for k, v in rec.details.items() if k != "flags"}  # the command line has the flags
        fields: dict[str, Any] = {
            **base,
            "engine": engine,
            "group": group,
            "thread_env": seen_env,
            "details": details,
            "source": "run",
            "schema": RECORD_SCHEMA,
        }
        if outcome is None:
            fields.update(status=status, reason=reason, images_per_sec=None, duration=0.0)
        else:
            fields.update(
                status=outcome.status,
                reason=outcome.reason,
                images_per_sec=rec.images_per_sec if outcome.status == "ok" else None,
                duration=round(outcome.duration, 3),
                exit_code=outcome.exit_code,
                signal=outcome.signal,
            )
        return replace(rec, **fields)

    def accept(self, record: RunRecord, kept_at: Path | None = None) -> RunRecord:
        """Append one record (ours or one from elsewhere); raise :class:`DiskFull` / :class:`Unrecorded`."""
        if record.host_id != self.host_id:
            record = replace(record, host_id=self.host_id)
        try:
            store.append_run(self.root, record)
        except RecordError as e:
            where = f"; its result is kept at {kept_at}" if kept_at else ""
            raise Unrecorded(f"unrecorded: the record is invalid ({e}){where}") from e
        except OSError as e:
            where = f"; its result is kept at {kept_at}" if kept_at and kept_at.exists() else ""
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull(f"no space left on the disk of {self.host_dir}{where}") from e
            raise Unrecorded(f"unrecorded: cannot write {self.host_dir / store.RUNS_FILE} ({os.strerror(e.errno or 0)})"
                             f"{where}") from e  # fmt: skip
        self.records.append(record)
        return record
