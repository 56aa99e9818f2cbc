"""The one place that knows the results layout: ``<root>/<host-id>/host.json``, ``runs.jsonl`` and ``logs/``.

Why a module of its own: the runner writes here, the report and ``import-logs`` read and write here, and future
studies (and records streamed home from other hosts) will too. Keeping the layout, the schema versions, the checks
on what is read and the crash-safety rules in one file means a change of layout is one change.

Rules:
- A host id is a folder name: every path is built by :func:`host_dir`, which refuses ids that would leave the root
  (``../x``, ``/etc``), so no command writes outside its ``--out``.
- ``runs.jsonl`` holds one :class:`~tf_cnn_benchmarks.record.RunRecord` per line, appended whole, flushed and
  fsynced; a user's file is never rewritten in place. Lines of every schema so far are read (schema 1: cpubench
  0.1); a line that is not a valid record is skipped with ``runs.jsonl:LINE: what is wrong`` and counted; a line of
  a newer schema says "upgrade" and its run is never rerun by this version.
- ``host.json`` holds one :class:`~cpubench.host.record.HostRecord`, read by :func:`read_host` and written by
  :func:`write_host` only (to a temporary file, then renamed over the old one).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cpubench.host.record import HOST_SCHEMA, HostRecord, HostRecordError, NewerHostRecord
from cpubench.spec import axes, frameworks
from tf_cnn_benchmarks import hostfacts
from tf_cnn_benchmarks.record import RECORD_SCHEMA, STATUSES, RecordError, RunRecord, is_plain_name

RUN_SCHEMA = RECORD_SCHEMA

HOST_FILE = "host.json"
RUNS_FILE = "runs.jsonl"
LOGS_DIR = "logs"

__all__ = ["HOST_SCHEMA", "STATUSES", "HostRecord", "RunRecord", "RecordError"]

_HOST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class StoreError(Exception):
    """A results folder that cannot be read or written: the message names the file and the fix."""


class HostIdError(StoreError):
    """A host id that cannot be a results folder name."""


class NewerHostError(StoreError):
    """A ``host.json`` written by a newer cpubench: upgrade to read it; never overwrite it."""


@dataclass
class NewerRecord:
    """A line written by a newer cpubench: not read, but its run is known to exist (never rerun here)."""

    line: int
    schema: int
    run_hash: str | None
    repeat: int | None


@dataclass
class RunsFile:
    """What one ``runs.jsonl`` holds: its valid records, the newer-schema lines, and a warning per skipped line."""

    records: list[RunRecord] = field(default_factory=list)
    newer: list[NewerRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    invalid: int = 0


@dataclass
class HostResults:
    """One host folder as read from disk."""

    path: Path
    host: HostRecord
    runs: list[RunRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    invalid: int = 0

    @property
    def host_id(self) -> str:
        return self.host.host_id


def validate_host_id(host_id: str) -> str:
    """A host id becomes a folder name and a table column: letters, digits, ``._-`` only, no leading dot."""
    if not isinstance(host_id, str) or not _HOST_ID.fullmatch(host_id):
        raise HostIdError(
            f"host id {host_id!r}: use letters, digits, '.', '_' and '-' (at most 64, not starting with '.' or '-')"
        )
    return host_id


class FileNameError(StoreError):
    """Text from data that cannot be part of a file name."""


def file_part(text: object, what: str = "name") -> str:
    """The one gate for text from data (a model, a setting, a framework) that becomes part of a file or folder name:
    letters, digits and ``._+-``, not starting with a dot or a dash, at most 128 characters. Anything else (``..``,
    ``/``, a NUL, a newline) is refused with StoreError: text from data is data, never a path."""
    if not is_plain_name(text):
        raise FileNameError(f"{what} {text!r} cannot be part of a file name (letters, digits, '.', '_', '+', '-' only)")
    return text


def host_dir(root: str | os.PathLike[str], host_id: str) -> Path:
    """``<root>/<host-id>``, for a valid host id only: nothing is ever written outside ``root``."""
    return Path(root) / validate_host_id(host_id)


SCRATCH_DIR = "tmp"


def scratch_dir(root: str | os.PathLike[str], host_id: str) -> Path:
    """``<root>/<host-id>/tmp``: the engine children's temporary folder (``TMPDIR``), so the files frameworks leave
    in a temporary folder (TensorFlow's autograph sources, torch.compile's caches) stay inside the results folder,
    even from a child killed at its timeout; the runner empties it at the start and the end of a sweep."""
    return host_dir(root, host_id) / SCRATCH_DIR


def log_path(
    root: str | os.PathLike[str], host_id: str, setting: str, model: str, batch_size: int | str, repeat: int
) -> Path:
    """``<root>/<host-id>/logs/<setting>/<model>-bs<k>-r<i>.log``: the full stdout+stderr of one engine process
    (``bs1-2-4`` when one process measured several batch sizes)."""
    file_part(setting, "setting")
    file_part(model, "model")
    return host_dir(root, host_id) / LOGS_DIR / setting / f"{model}-bs{batch_size}-r{repeat}.log"


def unused_log(path: Path) -> Path:
    """``path``, or where something is already there (an earlier attempt's log: a retried failure, a point resumed
    without its record), the first free ``<model>-bs<k>-tryN-r<i>.log`` beside it: a kept log is never written over,
    and the name still reads as that point's (``<model>-bs*-r<i>.log``)."""
    if not os.path.lexists(path):
        return path
    base, _, repeat = path.name.rpartition("-r")
    for n in range(2, 100_000):
        candidate = path.with_name(f"{base}-try{n}-r{repeat}")
        if not os.path.lexists(candidate):
            return candidate
    raise StoreError(f"{path.parent}: no free log name left for {path.name}: move old attempts' logs away")


def point_logs(log: Path, batch_size: str) -> list[Path]:
    """The logs beside ``log`` of its point (model, repeat) whose process measured ``batch_size``: ``log`` itself
    and every other attempt's, as :func:`log_path` and :func:`unused_log` name them
    (``<model>-bs<k>[-<k2>...][-tryN]-r<i>.log``), read back from the names."""
    stem = log.name.split("-bs", 1)[0]
    repeat = log.stem.rsplit("-r", 1)[-1]
    name = re.compile(rf"{re.escape(stem)}-bs(\d+(?:-\d+)*)(?:-try\d+)?-r{re.escape(repeat)}\.log")
    out = []
    for path in log.parent.glob(f"{stem}-bs*-r{repeat}.log"):
        m = name.fullmatch(path.name)
        if m is not None and batch_size in m.group(1).split("-"):
            out.append(path)
    return out


def check_no_links(folder: Path, verb: str) -> None:
    """Refuse (StoreError naming the first one) a folder ``cpubench VERB`` writes into that is a symbolic link or
    holds one anywhere inside: a link in a folder someone shared (``summary.md -> ~/.bashrc``, ``logs -> /etc``)
    would have the writer write through it, outside the folder. Nothing is followed to look."""
    if folder.is_symlink():
        raise StoreError(f"{folder}: a symbolic link; `cpubench {verb}` writes only into a folder itself, never "
                         "through a link: give it the folder the link points at, or a new one")  # fmt: skip
    if not folder.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(folder):  # links to folders are listed, never entered
        for name in (*dirnames, *filenames):
            p = Path(dirpath) / name
            if p.is_symlink():
                raise StoreError(f"{p}: a symbolic link; `cpubench {verb}` writes only plain files and folders, never "
                                 "through a link: remove the link (or replace it with a copy of the file)")  # fmt: skip


def check_writable(root: str | os.PathLike[str]) -> None:
    """Refuse, with one line, a results root that is a file or cannot be written (before anything is measured)."""
    p = Path(root)
    if p.exists() and not p.is_dir():
        raise StoreError(f"{p} is a file, not a folder: give --out a folder (it is created if missing)")
    probe = p
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise StoreError(f"{probe} is a file, not a folder: give --out a folder (it is created if missing)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise StoreError(f"{probe} is not writable: give --out a folder you can write to")


def check_output(root: Path, marker: str, verb: str, older: Callable[[Path], bool] | None = None) -> bool:
    """Refuse (StoreError, one line, before anything is read or written) an output folder ``cpubench VERB`` must not
    write: a file, or a folder that is not empty and holds neither ``marker`` (written into every folder of its
    output) nor, where ``older`` says so, the output of a version from before the marker. Someone's own folder is
    never overwritten. Returns whether the folder holds the marker."""
    check_writable(root)
    check_no_links(root, verb)
    if not root.is_dir() or not any(root.iterdir()):
        return False
    if (root / marker).is_file():
        return True
    if older is not None and older(root):
        return False
    raise StoreError(
        f"{root} is not empty and holds no output `cpubench {verb}` wrote (no {marker}): give -o a new or empty "
        f"folder, or one an earlier `cpubench {verb}` wrote"
    )


def write_host(root: str | os.PathLike[str], host: HostRecord | Mapping[str, Any]) -> Path:
    """Write ``host.json`` atomically (a temporary file, then a rename), as :meth:`HostRecord.to_dict` gives it.

    A plain mapping (tests, hand-made folders) is read as a record first (``schema`` defaults to this version's),
    so nothing reaches the disk that :func:`read_host` would refuse. Raises StoreError for an invalid mapping.
    """
    if not isinstance(host, HostRecord):
        try:
            host = HostRecord.from_dict({"schema": HOST_SCHEMA, **host})
        except HostRecordError as e:
            raise StoreError(f"host record for {root}: {e}") from e
    d = host_dir(root, host.host_id)
    d.mkdir(parents=True, exist_ok=True)
    target = d / HOST_FILE
    hostfacts.atomic_write_text(target, json.dumps(host.to_dict(), indent=2, sort_keys=True, default=str) + "\n")
    return target


def read_host(path: str | os.PathLike[str]) -> HostRecord:
    """The host record in a host folder (or a ``host.json`` path); StoreError names the file, what is wrong and the
    fix (a newer schema: upgrade)."""
    p = Path(path)
    f = p / HOST_FILE if p.is_dir() else p
    try:
        data = json.loads(read_regular(f, MAX_HOST_BYTES))
    except RecursionError:
        raise StoreError(f"{f}: nested deeper than a host record; restore it from the host's copy") from None
    except UnicodeDecodeError:
        raise StoreError(f"{f}: not UTF-8 text; restore it from the host's copy") from None
    except FileNotFoundError as e:
        raise StoreError(f"{f}: no host.json; run `cpubench run` on that host or `cpubench import-logs` first") from e
    except json.JSONDecodeError as e:
        raise StoreError(f"{f}: not valid JSON ({e.msg} at line {e.lineno}); restore it from the host's copy") from e
    except ValueError:  # a number of more digits than Python converts: no host record holds one
        raise StoreError(f"{f}: a number longer than any host record holds; restore it from the host's copy") from None
    except OSError as e:
        raise StoreError(f"{f}: cannot read ({e.strerror})") from e
    try:
        return HostRecord.from_dict(data)
    except NewerHostRecord as e:
        raise NewerHostError(f"{f}: {e}") from e
    except HostRecordError as e:
        raise StoreError(f"{f}: {e}; restore it from the host's copy") from e


MAX_LINE_BYTES = 16 * 2**20  # a record of 100,000 steps is about 4 MiB: a longer line is not a record
MAX_HOST_BYTES = 16 * 2**20


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):  # fmt: skip
        if test(mode):
            return name
    return "not a plain file"


def open_regular(path: str | os.PathLike[str], flags: int = os.O_RDONLY, mode: int = 0o644) -> int:
    """Open a store file as itself: never through a symbolic link (``O_NOFOLLOW``) and only when it is a regular
    file (a named pipe would block a reader for ever, a device would be read without end). Raises StoreError naming
    the path and the fix; FileNotFoundError and other OSErrors pass through."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise StoreError(
                f"{path}: a symbolic link; the store reads and writes only the file itself, never through a link: "
                "replace the link with a copy of the file"
            ) from None
        if e.errno == errno.ENXIO:  # a named pipe opened for writing with no reader
            raise StoreError(f"{path}: a named pipe, not a file: move it away and run again") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise StoreError(f"{path}: {_kind(st.st_mode)}, not a file: move it away and run again")
    os.set_blocking(fd, True)
    return fd


def read_regular(path: str | os.PathLike[str], limit: int, what: str = "a results file") -> bytes:
    """The bytes of a regular file (see :func:`open_regular`), refused past ``limit`` bytes, which is more than
    ``what`` (the kind of file the caller reads) ever holds."""
    with os.fdopen(open_regular(path), "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise StoreError(f"{path}: {size:,} bytes, more than {what} holds ({limit:,}): not {what}")
        return f.read(limit + 1)


def check(record: RunRecord) -> RunRecord:
    """What the store asks of a record beyond its own reader: axis values of the declared type (a report orders and
    plots by them) and a stated figure its own step times agree with. Raises RecordError naming the field."""
    for name, value in record.params.items():
        why = axes.value_problem(name, value)
        if why:
            raise RecordError(f"params.{name}: {why}")
    known = frameworks.table()
    fw = record.params.get("framework")
    if fw is not None and fw not in known:  # what a framework can run is this version's knowledge: none of it here
        raise RecordError(f"params.framework: {fw!r} is none this cpubench knows ({', '.join(known)})")
    for name, value in (record.threads or {}).items():
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise RecordError(f"threads.{name}: expected a count of threads, got {value!r}")
    why = record.inconsistency()
    if why:
        raise RecordError(why)
    return record


def record_line(record: RunRecord) -> str:
    """The line a record is stored as; raises RecordError when the record would not read back."""
    data = record.to_dict()
    check(RunRecord.from_dict(data))  # what the reader would refuse is refused here, before it is written
    return json.dumps(data, sort_keys=True, allow_nan=False) + "\n"


def append_run(root: str | os.PathLike[str], record: RunRecord) -> Path:
    """Append one run record as one line, flushed and fsynced, so a crash loses at most the run in flight.

    Records that come from elsewhere (another host streaming home) go through here too: they are checked the same.
    Raises RecordError for an invalid record and OSError (ENOSPC included) when the line cannot be written; a
    failed write leaves no partial line behind.
    """
    if not record.host_id:
        raise RecordError("host_id: a stored record needs its host")
    line = record_line(record).encode()
    d = host_dir(root, record.host_id)
    d.mkdir(parents=True, exist_ok=True)
    path = d / RUNS_FILE
    fd = open_regular(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, hostfacts.file_mode())
    try:
        size = os.fstat(fd).st_size
        # A previous writer killed mid-line leaves no trailing newline: start on a fresh line so this record is whole.
        if size > 0 and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(errno.ENOSPC, "short write", str(path))
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)  # no half line left behind for the next reader
            raise
    finally:
        os.close(fd)
    return path


def read_runs(path: str | os.PathLike[str]) -> RunsFile:
    """Read one ``runs.jsonl`` (or the one in a host folder); never raises on bad lines, says what each one is."""
    p = Path(path)
    f = p / RUNS_FILE if p.is_dir() else p
    out = RunsFile()
    if not os.path.lexists(f):
        return out
    try:
        fd = open_regular(f)
    except FileNotFoundError:
        return out
    except OSError as e:
        raise StoreError(f"{f}: cannot read ({e.strerror})") from e
    with os.fdopen(fd, "rb") as stream:
        for n, bline in enumerate(stream, 1):
            _read_line(out, f, n, bline)
    return out


def _read_line(out: RunsFile, f: Path, n: int, bline: bytes) -> None:
    """One line of ``runs.jsonl`` into ``out``: a record, a newer-schema line, or a warning saying why it is skipped.
    The parse is bounded: a line longer than any record or nested deeper than one is skipped, never parsed."""
    if len(bline) > MAX_LINE_BYTES:
        _skip(out, f"{f}:{n}: a line of {len(bline)} bytes, longer than any record; skipped")
        return
    text = bline.decode("utf-8", "replace").strip()
    if not text:
        return
    try:
        data = json.loads(text)
    except RecursionError:
        _skip(out, f"{f}:{n}: nested deeper than any record; skipped")
        return
    except json.JSONDecodeError as e:
        if text.startswith("{") and not text.endswith("}"):  # an object cut short: a writer killed mid-line
            why = "dropped a half-written record (a run killed mid-write); that run will be run again"
        else:
            why = f"not a JSON record ({e.msg} at column {e.colno}); skipped"
        _skip(out, f"{f}:{n}: {why}")
        return
    except ValueError:  # a number of more digits than Python converts (JSONDecodeError, also a ValueError, is above)
        _skip(out, f"{f}:{n}: a number longer than any record holds; skipped")
        return
    schema = data.get("schema", 1) if isinstance(data, dict) else None
    if isinstance(schema, int) and not isinstance(schema, bool) and schema > RECORD_SCHEMA:
        rh, rep = data.get("run_hash"), data.get("repeat")
        out.newer.append(
            NewerRecord(n, schema, rh if isinstance(rh, str) else None, rep if isinstance(rep, int) else None)
        )
        out.warnings.append(
            f"{f}:{n}: written by a newer cpubench (record schema {schema}, this one reads up to "
            f"{RECORD_SCHEMA}): upgrade cpubench to read it; it is not rerun"
        )
        return
    try:
        out.records.append(check(RunRecord.from_dict(data)))
    except RecordError as e:
        _skip(out, f"{f}:{n}: {e}; skipped")


def _skip(out: RunsFile, msg: str) -> None:
    out.invalid += 1
    out.warnings.append(msg)


def iter_runs(path: str | os.PathLike[str], warnings: list[str] | None = None) -> Iterator[RunRecord]:
    """The valid records of one ``runs.jsonl``; what was skipped is added to ``warnings`` (and printed when None)."""
    runs = read_runs(path)
    for w in runs.warnings:
        _warn(w, warnings)
    yield from runs.records


def load_host(path: str | os.PathLike[str]) -> HostResults:
    """Read one host folder (``host.json`` and ``runs.jsonl``)."""
    p = Path(path)
    host = read_host(p)
    runs = read_runs(p)
    for w in runs.warnings:
        _warn(w, None)
    return HostResults(path=p, host=host, runs=runs.records, warnings=list(runs.warnings), invalid=runs.invalid)


def find_host_dirs(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Accept host folders or folders of host folders (``data/``); return the host folders, in the order given.

    A folder reached twice (``data data``, or ``data data/HOST``) is read once, where it first comes: read twice,
    each of its runs would be the same run recorded twice."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if (p / HOST_FILE).is_file():
            out.append(p)
        elif p.is_dir():
            out.extend(sorted(c for c in p.iterdir() if (c / HOST_FILE).is_file()))
        else:
            raise StoreError(f"{p}: no such folder; give a host folder (with host.json) or a folder of them")
    return _once(out)


def folders_without_host(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[Path]]:
    """The folders :func:`find_host_dirs` passes over that hold runs: (those named in ``paths``, those inside a
    folder of hosts) that have ``runs.jsonl`` but no ``host.json`` (a copy that lost it, a host whose record has
    not come home yet). Readers name them rather than show one host fewer without a word."""
    named: list[Path] = []
    inside: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.is_dir() or (p / HOST_FILE).is_file():
            continue
        if os.path.lexists(p / RUNS_FILE):
            named.append(p)
            continue
        inside.extend(c for c in sorted(p.iterdir())
                      if c.is_dir() and not (c / HOST_FILE).is_file() and os.path.lexists(c / RUNS_FILE))  # fmt: skip
    return _once(named), _once(inside)


def _once(folders: list[Path]) -> list[Path]:
    """``folders`` with each folder kept where it first comes (a folder named twice is named once)."""
    seen: set[Path] = set()
    out: list[Path] = []
    for f in folders:
        if (real := f.resolve()) not in seen:
            seen.add(real)
            out.append(f)
    return out


def _warn(msg: str, sink: list[str] | None) -> None:
    if sink is not None:
        sink.append(msg)
    else:
        print(f"cpubench: warning: {msg}", file=sys.stderr)
