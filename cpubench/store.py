"""The one place that knows the results layout: ``<root>/<host-id>/host.json``, ``runs.jsonl`` and ``logs/``.

Why a module of its own: the runner writes here, the report and ``import-logs`` read and write here, and future
studies will too. Keeping the layout, the schema versions and the crash-safety rules in one file means a change of
layout is one change.

Crash safety (a benchmark night must never lose a measurement):
- ``runs.jsonl`` is appended one whole line per record, flushed and fsynced; a reader drops a half-written last line
  (left by ``kill -9``) with a warning instead of failing.
- ``host.json`` is written to a temporary file and renamed over the old one.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RUN_SCHEMA = 1
HOST_SCHEMA = 1

HOST_FILE = "host.json"
RUNS_FILE = "runs.jsonl"
LOGS_DIR = "logs"

STATUSES = ("ok", "failed", "timeout", "skipped")

# Keys every run record carries (others may be added freely; readers must ignore what they do not know).
RUN_KEYS = (
    "schema",  # RUN_SCHEMA
    "host_id",
    "setting",  # e.g. "syn-replicated-nccl-4gpus"; see cpubench.config.setting_name
    "model",
    "batch_size",  # per device
    "num_devices",
    "repeat",  # 0-based index of the repeat
    "status",  # one of STATUSES
    "images_per_sec",  # float, or None unless status == "ok"
    "step_times",  # list of per-step seconds after warm-up ([] when not ok)
    "reason",  # None when ok; else one line: exit code or signal and the last error line
    "started",  # ISO 8601 UTC
    "duration",  # wall seconds of the whole process
    "load_avg_before",  # [1, 5, 15] minute load averages just before the run
    "config_hash",
    "engine_version",
)


class StoreError(Exception):
    """A results folder that cannot be read as this schema: the message names the file and the fix."""


@dataclass
class HostResults:
    """One host folder as read from disk."""

    path: Path
    host: dict[str, Any]
    runs: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def host_id(self) -> str:
        return str(self.host.get("host_id") or self.path.name)


def host_dir(root: str | os.PathLike[str], host_id: str) -> Path:
    return Path(root) / host_id


def log_path(
    root: str | os.PathLike[str], host_id: str, setting: str, model: str, batch_size: int, repeat: int
) -> Path:
    """``<root>/<host-id>/logs/<setting>/<model>-bs<k>-r<i>.log``: the full stdout+stderr of one engine process."""
    return host_dir(root, host_id) / LOGS_DIR / setting / f"{model}-bs{batch_size}-r{repeat}.log"


def write_host(root: str | os.PathLike[str], host: dict[str, Any]) -> Path:
    """Write ``host.json`` atomically (write a temporary file, then rename)."""
    host = dict(host)
    host.setdefault("schema", HOST_SCHEMA)
    d = host_dir(root, host["host_id"])
    d.mkdir(parents=True, exist_ok=True)
    target = d / HOST_FILE
    _atomic_write_text(target, json.dumps(host, indent=2, sort_keys=True) + "\n")
    return target


def read_host(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    f = p / HOST_FILE if p.is_dir() else p
    try:
        host = json.loads(f.read_text())
    except FileNotFoundError as e:
        raise StoreError(f"{f}: no host.json; run `cpubench run` on that host or `cpubench import-logs` first") from e
    except json.JSONDecodeError as e:
        raise StoreError(f"{f}: not valid JSON ({e.msg} at line {e.lineno}); restore it from the host's copy") from e
    if host.get("schema") != HOST_SCHEMA:
        schema = host.get("schema")
        raise StoreError(f"{f}: host schema {schema!r}, this cpubench reads {HOST_SCHEMA}; upgrade cpubench")
    return host


def append_run(root: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append one run record as one line, flushed and fsynced, so a crash loses at most the run in flight."""
    rec = dict(record)
    rec.setdefault("schema", RUN_SCHEMA)
    missing = [k for k in RUN_KEYS if k not in rec]
    if missing:
        raise ValueError(f"run record lacks {missing}")
    if rec["status"] not in STATUSES:
        raise ValueError(f"run status {rec['status']!r} is not one of {STATUSES}")
    if rec["status"] != "ok" and rec.get("images_per_sec") is not None:
        raise ValueError("a run that is not ok has no images_per_sec")
    d = host_dir(root, rec["host_id"])
    d.mkdir(parents=True, exist_ok=True)
    line = json.dumps(rec, sort_keys=True, allow_nan=False) + "\n"
    path = d / RUNS_FILE
    with open(path, "a+b") as f:
        # A previous writer killed mid-line leaves no trailing newline: start on a fresh line so this record is whole.
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")
        f.write(line.encode())
        f.flush()
        os.fsync(f.fileno())


def iter_runs(path: str | os.PathLike[str], warnings: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Yield the records of one ``runs.jsonl``; broken lines (a crash mid-write) are skipped with a warning."""
    p = Path(path)
    f = p / RUNS_FILE if p.is_dir() else p
    if not f.exists():
        return
    with open(f, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                msg = f"{f}:{n}: dropped a half-written record (a run killed mid-write); it will be run again"
                _warn(msg, warnings)
                continue
            if not isinstance(rec, dict) or rec.get("schema") != RUN_SCHEMA:
                schema = rec.get("schema") if isinstance(rec, dict) else None
                msg = f"{f}:{n}: record of unknown schema {schema!r} (this cpubench reads {RUN_SCHEMA}); skipped"
                _warn(msg, warnings)
                continue
            yield rec


def load_host(path: str | os.PathLike[str]) -> HostResults:
    """Read one host folder (``host.json`` and ``runs.jsonl``)."""
    p = Path(path)
    warnings: list[str] = []
    host = read_host(p)
    runs = list(iter_runs(p, warnings))
    return HostResults(path=p, host=host, runs=runs, warnings=warnings)


def find_host_dirs(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Accept host folders or folders of host folders (``data/``); return the host folders, in the order given."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if (p / HOST_FILE).is_file():
            out.append(p)
        elif p.is_dir():
            out.extend(sorted(c for c in p.iterdir() if (c / HOST_FILE).is_file()))
        else:
            raise StoreError(f"{p}: no such folder; give a host folder (with host.json) or a folder of them")
    return out


def _atomic_write_text(target: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _warn(msg: str, sink: list[str] | None) -> None:
    if sink is not None:
        sink.append(msg)
    print(f"cpubench: warning: {msg}", file=sys.stderr)
