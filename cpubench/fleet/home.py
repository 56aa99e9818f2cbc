"""What comes home from a fleet host: records, their logs and the host record, filed through the store.

Why every message is checked as if a stranger wrote it: a Dask worker is another machine, and whatever it sends
lands in the user's results folder. So a message is only ever filed under the host the dispatcher asked (a worker
cannot write into another host's folder), a record goes through :func:`cpubench.results.store.append_run` (its own
validation, fsynced, whole lines), a log's name is rebuilt from plain name parts (``store.file_part``), never taken as
a path, and the host record goes through :func:`cpubench.results.store.write_host`. Nothing is written outside
``--out``.

Why records are deduplicated by (run hash, repeat, start time, status) and not by (run hash, repeat): a re-send of
the same record (a worker's catch-up after a cut connection, the closing sweep of the event log) must be harmless,
but a retried run (``--retry-failed``) is a new record with the same hash and repeat, and must arrive.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cpubench.host.record import HostRecord, HostRecordError
from cpubench.results import store
from tf_cnn_benchmarks import hostfacts
from tf_cnn_benchmarks.record import RecordError, RunRecord

MAX_LOG_CHARS = 8 * 2**20  # a log longer than this is cut (its head and tail kept): an engine log is far smaller


def _json(text: object, limit: int) -> Any:
    """A record as JSON text (msgpack would turn its lists into tuples), parsed under the store's own bounds."""
    if not isinstance(text, str) or len(text) > limit:
        raise ValueError("not a record's JSON text, or longer than any record")
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested deeper than any record") from None


def record_key(rec: RunRecord) -> str:
    """The identity of one record as a line of a store: a re-send has the same key, a retried run does not."""
    return f"{rec.run_hash}/{rec.repeat}/{rec.started}/{rec.status}"


def store_keys(host_folder: Path) -> dict[str, RunRecord]:
    """The records a host folder holds, by :func:`record_key` (an absent folder holds none)."""
    if not host_folder.is_dir():
        return {}
    return {record_key(r): r for r in store.read_runs(host_folder).records}


def log_parts(log: object) -> tuple[str, str] | None:
    """``logs/<setting>/<file>`` as its two name parts, or None when it is anything else (``..``, ``/``, deeper)."""
    if not isinstance(log, str):
        return None
    parts = log.split("/")
    if len(parts) != 3 or parts[0] != store.LOGS_DIR:
        return None
    try:
        return store.file_part(parts[1], "log folder"), store.file_part(parts[2], "log file")
    except store.StoreError:
        return None


@dataclass
class Home:
    """The local results root (``--out``) receiving records from the hosts a fleet run dispatched to."""

    root: Path
    hosts: set[str]
    keys: dict[str, set[str]] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for h in self.hosts:
            # A host folder that is, or holds, a link (a shared ``--out``: ``h1 -> /elsewhere``, ``logs -> /etc``)
            # would have every record and log written through it: refused (StoreError, one line) before anything
            # is dispatched, as ``cpubench run`` refuses it.
            store.check_no_links(store.host_dir(self.root, h), "fleet run")
            self.keys[h] = set(store_keys(store.host_dir(self.root, h)))
            self.received[h] = 0

    def records(self, host: str) -> list[dict[str, Any]]:
        """What home holds for a host, as dicts: sent with the job so the host's folder can be seeded."""
        return [r.to_dict() for r in store_keys(store.host_dir(self.root, host)).values()]

    def receive(self, host: str, msg: Any) -> str | None:
        """File one message a host's task sent (``kind`` record or host); returns a warning, or None when it was
        filed or was a harmless re-send. ``host`` is who the dispatcher asked, never what the message claims."""
        if host not in self.hosts or not isinstance(msg, dict):
            return self._warn(f"{host}: a message from a host this run did not ask; dropped")
        kind = msg.get("kind")
        try:
            if kind == "record":
                return self._record(host, msg)
            if kind == "host":
                rec = HostRecord.from_dict(_json(msg.get("host_json"), store.MAX_HOST_BYTES))
                if rec.host_id != host:
                    return self._warn(f"{host}: sent a host record for {rec.host_id!r}; dropped")
                store.write_host(self.root, rec)
                return None
        except (HostRecordError, RecordError, store.StoreError, ValueError, TypeError, json.JSONDecodeError) as e:
            return self._warn(f"{host}: {kind} refused: {hostfacts.first_line(e)}")
        return self._warn(f"{host}: a message of unknown kind {str(kind)[:40]!r}; dropped")

    def _record(self, host: str, msg: dict[str, Any]) -> str | None:
        rec = RunRecord.from_dict(_json(msg.get("record_json"), store.MAX_LINE_BYTES))
        store.check(rec)
        if rec.host_id != host:
            return self._warn(f"{host}: sent a record of host {str(rec.host_id)[:64]!r}; dropped")
        key = record_key(rec)
        if key in self.keys[host]:
            return None  # a re-send: already home
        parts = log_parts(rec.log)
        text = msg.get("log")
        # The log first, then the record: a record at home always has its log beside it when one came.
        if parts is not None and isinstance(text, str):
            rec = self._write_log(host, rec, parts, text)
        elif rec.log is not None and text is not None:
            self._warn(f"{host}: log name {str(rec.log)[:80]!r} is not logs/<setting>/<file>; log not kept")
        store.append_run(self.root, rec)
        self.keys[host].add(key)
        self.received[host] += 1
        return None

    def _write_log(self, host: str, rec: RunRecord, parts: tuple[str, str], text: str) -> RunRecord:
        """Write a record's log and return the record as it is filed: with its log's name at home.

        Why the name can change: a log already at home is evidence of another run and is never written over (a
        host reinstalled names its first log ``...-r0.log`` again, a worker may send any name), so a log whose name
        is taken by other text goes beside it as ``<model>-bs<k>-tryN-r<i>.log`` (:func:`store.unused_log`, as
        ``cpubench run`` names a retry's), and the record says so. The same text again (a re-send after home
        filed the log but not yet its record) is the same file."""
        folder = store.host_dir(self.root, host) / store.LOGS_DIR / parts[0]
        folder.mkdir(parents=True, exist_ok=True)
        base = store.host_dir(self.root, host).resolve()
        if not folder.resolve().is_relative_to(base):  # a link planted in the home folder: never followed out
            raise store.StoreError(f"{folder} leads outside {base}; log not written")
        if len(text) > MAX_LOG_CHARS:
            half = MAX_LOG_CHARS // 2
            text = text[:half] + "\n[... cut by cpubench fleet ...]\n" + text[-half:]
        data = text.encode("utf-8", "replace")
        target = folder / parts[1]
        if os.path.lexists(target):
            try:
                if store.read_regular(target, len(data), "this log") == data:
                    return rec  # already home, whole
            except (store.StoreError, OSError):
                pass  # a link, a folder, other text: kept as it is, never written through or over
            target = store.unused_log(target)
            rec = replace(rec, log=f"{store.LOGS_DIR}/{parts[0]}/{target.name}")
        hostfacts.atomic_write_bytes(target, data)
        return rec

    def _warn(self, msg: str) -> str:
        self.warnings.append(msg)
        return msg
