"""Legacy tf_cnn_benchmarks logs into run records (the verb, ``cpubench import-logs``, is
:mod:`cpubench.commands.import_logs`).

Why: years of old results (classic
``<model>-<syn|real>-<parameter_server|replicated>[-nccl][-distortions]-<N>gpus-<batch>-<iter>.log`` files, or any
upstream stdout) should merge with new runs in ``cpubench report`` instead of living in hand-made tables.
Each log becomes one run record (``source: "import"``) in ``<out>/<host-id>/runs.jsonl`` through
``cpubench.results.store``, with the log copied to ``<out>/<host-id>/logs/import/`` so the data folder stands on its
own.

Rules:
- The header block (when present) wins over the file name; a disagreement is reported.
- A log without ``total images/sec`` is a failed record with the reason ``no total images/sec line`` (plus the last
  error line seen), never a 0.
- A log that cannot be a record (a total of nan, inf or 0, a model or setting that is not a plain name, a setting
  it does not tell) is skipped with one warning line naming the file and why; the others import.
- Every log is read and every record checked before anything is written (:func:`plan_import`), and a new host folder
  is built aside and moved into place whole (:func:`write_import`): a failed import leaves no host.json without its
  records, no copied log without its record.
- Files are read as themselves, never through a symbolic link (a linked log or folder is skipped with a warning),
  and only regular files (a named pipe or a device is skipped): a link must not copy a file from elsewhere into a
  results folder that others are sent.
- Re-running the import skips logs already imported into that host (matched by their path under DIR), so it is safe
  to run again after adding logs.
- Importing into a folder that holds a measured host (a real machine fingerprint) is refused: give another --host-id.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cpubench.host.record import HostRecord, HostRecordError
from cpubench.results import store
from cpubench.results.logparse import ClassicName, ParsedLog, parse_log, parse_log_name
from cpubench.spec import axes
from tf_cnn_benchmarks import hostfacts
from tf_cnn_benchmarks.models import registry
from tf_cnn_benchmarks.record import RecordError, RunRecord

LOG_SUFFIXES = (".log", ".txt", ".out")
IMPORT_LOGS_DIR = "import"
STAGING_DIR = ".import"  # under --out: a new host folder is built here, then moved into place (no id starts with ".")
MAX_LOG_BYTES = 256 * 2**20  # upstream prints a line per 10 steps: a longer file is not one benchmark's stdout


class LogSkipped(Exception):
    """Why one log cannot be imported: one line, without the file's path (the caller names it)."""


@dataclass
class LogFile:
    """One legacy log on disk with what its name and its text say."""

    path: Path
    rel: str  # path under the imported folder, POSIX style: the import's identity
    data: bytes  # the bytes read (once, not through a link): what is parsed is what is copied
    parsed: ParsedLog
    name: ClassicName | None


@dataclass
class ImportPlan:
    """Everything an import will write, checked before any of it is: the host record, the new records and the logs
    they copy, and what was skipped and why."""

    out: Path
    host: HostRecord
    new_host: bool  # no host folder yet: it is built aside and moved into place whole
    existing: int  # records the host folder already holds
    candidates: int  # files under DIR that could have been logs (by their suffix)
    already: int  # logs imported by an earlier run, not imported again
    records: list[RunRecord] = field(default_factory=list)
    logs: dict[str, LogFile] = field(default_factory=dict)  # by LogFile.rel
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # each log not imported, and why
    warnings: list[str] = field(default_factory=list)  # one line each: skipped logs and notes, in the order found

    @property
    def empty(self) -> bool:
        """Nothing imported now or before: the user gave no importable log (an error, never an empty host)."""
        return not self.records and not self.already

    def skip(self, path: Path, why: str) -> None:
        self.skipped.append((path, why))
        self.warnings.append(f"{path}: {why}; skipped")


def find_logs(root: Path, warnings: list[str] | None = None) -> list[Path]:
    """Every candidate log file under ``root`` (or ``root`` itself when it is not a folder), sorted for a stable
    import order.

    Links are listed, never followed: a linked folder is not entered (it is named in ``warnings``) and a linked file
    is returned, so that reading it refuses it with a line that says so.
    """
    if not root.is_dir():
        return [root]
    notes = warnings if warnings is not None else []

    def unreadable(e: OSError) -> None:
        notes.append(f"{e.filename}: cannot read this folder ({e.strerror}); skipped")

    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        base = Path(dirpath)
        for d in sorted(dirnames):
            if (base / d).is_symlink():
                notes.append(
                    f"{base / d}: a symbolic link to a folder, not followed (copy the folder in to import its logs); "
                    "skipped"
                )
        found.extend(base / f for f in filenames if Path(f).suffix.lower() in LOG_SUFFIXES)
    return sorted(found)


def read_log(path: Path) -> bytes:
    """The bytes of one log file, read as itself: never through a symbolic link and only from a regular file (the
    store's :func:`~cpubench.results.store.open_regular`). Raises LogSkipped saying why not."""
    try:
        return store.read_regular(path, MAX_LOG_BYTES, "one benchmark's output")
    except store.StoreError as e:
        raise LogSkipped(str(e).removeprefix(f"{path}: ")) from None
    except OSError as e:
        raise LogSkipped(f"cannot read ({e.strerror})") from None


def read_logs(root: Path, plan: ImportPlan) -> list[LogFile]:
    """Read and parse every candidate file; what is not a readable tf_cnn_benchmarks log is skipped in ``plan``."""
    out: list[LogFile] = []
    paths = find_logs(root, plan.warnings)
    plan.candidates = len(paths)
    for path in paths:
        try:
            data = read_log(path)
        except LogSkipped as e:
            plan.skip(path, str(e))
            continue
        parsed = parse_log(data.decode("utf-8", errors="replace"))
        name = parse_log_name(path.name)
        if not parsed.is_benchmark_log and name is None:
            plan.skip(path, "not a tf_cnn_benchmarks log (no header, step or total line)")
            continue
        rel = path.relative_to(root).as_posix() if root.is_dir() else path.name
        out.append(LogFile(path=path, rel=rel, data=data, parsed=parsed, name=name))
    return out


def record_for(log: LogFile, host_id: str, warnings: list[str]) -> RunRecord:
    """One run record for one log (``repeat`` filled in later), checked as the store will check it.

    Raises LogSkipped when the log cannot be a record (its setting cannot be told, its figure is not a number, its
    text is not a name); the notes about a log that is skipped are dropped with it, so it costs one line.
    """
    p, n = log.parsed, log.name
    why = p.total_problem
    if why:
        raise LogSkipped(why)
    notes: list[str] = []
    if n is not None and p.has_header:
        for what, from_name, from_header in (
            ("model", n.model, p.model),
            ("batch size", n.batch_size, p.batch_size_per_device),
            ("device count", n.num_devices, p.num_devices),
            ("variable update", n.variable_update, p.variable_update),
        ):
            if from_header is not None and from_name != from_header:
                notes.append(
                    f"{log.path}: file name says {what} {from_name}, header says {from_header}; used the header"
                )
    model = p.model or (n.model if n else None)
    if p.synthetic is not None:
        data: str | None = "syn" if p.synthetic else "real"
    else:
        data = n.data if n else None
    variable_update = p.variable_update or (n.variable_update if n else None)
    nccl = bool(p.all_reduce and "nccl" in p.all_reduce.lower()) or bool(n and n.nccl)
    distortions = n.distortions if n else None
    num_devices = p.num_devices or (n.num_devices if n else None)
    device = p.device_kind or ("gpu" if n else None)
    batch_size = p.batch_size_per_device or (n.batch_size if n else None)
    forward_only = bool(p.forward_only)
    missing = [
        k
        for k, v in (
            ("model", model),
            ("data", data),
            ("variable update", variable_update),
            ("devices", num_devices),
            ("batch size", batch_size),
        )
        if v is None
    ]
    if missing:
        raise LogSkipped(f"cannot tell the {', '.join(missing)} (no header line, no classic name)")
    assert data is not None and variable_update is not None and num_devices is not None and device is not None
    known = {"data": data, "variable_update": variable_update, "nccl": nccl, "distortions": distortions,
             "forward_only": forward_only, "device": device, "num_devices": num_devices}  # fmt: skip
    if p.framework == "pytorch":  # our PyTorch engine's log: its header says the mode too
        known.update(framework="pytorch", execution=p.header.get("Execution") or None)
    # Every axis a log does not tell stays None (unknown): left out of the setting name, never a guessed default.
    params = {a.name: known.get(a.name) for a in axes.setting_axes()}
    ok = p.complete
    record = RunRecord(
        host_id=host_id,
        setting=axes.setting_name(params),
        model=model,
        batch_size=batch_size,
        num_devices=num_devices,
        status="ok" if ok else "failed",
        images_per_sec=p.total_images_per_sec if ok else None,  # upstream logs print running means, not steps
        reason=p.failure_reason,
        params=params,
        framework=p.framework or "tensorflow",
        framework_version=p.tf_version,
        log=f"{store.LOGS_DIR}/{IMPORT_LOGS_DIR}/{log.rel}",
        source="import",
        details={"source_file": log.rel, "legacy_iteration": n.iteration if n else None},
    )
    try:
        store.file_part(record.setting, "setting")  # a setting names a log folder wherever it is run again
        store.record_line(record)  # what the store would refuse to append is refused here, before anything is written
    except (RecordError, store.StoreError) as e:
        raise LogSkipped(str(e)) from None
    warnings.extend(notes)
    return record


def assign_repeats(records: list[RunRecord], taken: dict[tuple[Any, ...], int] | None = None) -> None:
    """Number repeats 0, 1, ... within each setting x model x batch size, in classic iteration then file order.

    ``taken`` counts repeats already stored per group, so a later import continues the numbering.
    """
    counts = dict(taken or {})

    def order(r: RunRecord) -> tuple[Any, ...]:
        it = r.details.get("legacy_iteration")
        return (it is None, it or 0, r.details.get("source_file"))

    for rec in sorted(records, key=order):
        key = (rec.setting, rec.model, rec.batch_size)
        rec.repeat = counts.get(key, 0)
        counts[key] = rec.repeat + 1


def plan_import(src: Path, out: Path, host_id: str, cpu_brand: str | None = None) -> ImportPlan:
    """Read and check everything an import of ``src`` into ``out/host_id`` would write, writing nothing.

    Raises store.StoreError when the target folder belongs to a measured host or is not a host folder at all.
    """
    hdir = store.host_dir(out, host_id)
    fingerprint = f"import:{host_id}"
    host = HostRecord(host_id=host_id, machine_fingerprint=fingerprint, source="import")
    warnings: list[str] = []
    existing: list[RunRecord] = []
    new_host = not os.path.lexists(hdir / store.HOST_FILE)
    if not new_host:
        host = store.read_host(hdir)
        if host.machine_fingerprint != fingerprint:
            raise store.StoreError(
                f"{hdir} holds runs measured on a machine ({host.machine_fingerprint}); "
                f"import the logs under another --host-id (e.g. {host_id}-legacy)"
            )
        existing = list(store.iter_runs(hdir, warnings))
    elif os.path.lexists(hdir) and (hdir.is_symlink() or not hdir.is_dir() or any(hdir.iterdir())):
        raise store.StoreError(
            f"{hdir} exists but holds no {store.HOST_FILE}: it is no host folder, so nothing is imported into it; "
            "give another --host-id or move it away"
        )
    plan = ImportPlan(out=out, host=host, new_host=new_host, existing=len(existing), candidates=0, already=0,
                      warnings=warnings)  # fmt: skip
    done = {r.details.get("source_file") for r in existing if r.source == "import"}
    logs = read_logs(src, plan)
    fresh = [lg for lg in logs if lg.rel not in done]
    plan.already = len(logs) - len(fresh)
    for lg in fresh:
        try:
            plan.records.append(record_for(lg, host_id, plan.warnings))
        except LogSkipped as e:
            plan.skip(lg.path, str(e))
            continue
        plan.logs[lg.rel] = lg
    for model in dict.fromkeys(r.model for r in plan.records if r.model):
        other = registry.upstream_differs(model)
        if other:
            plan.warnings.append(f"{model}: {other}: its imported figures are of that network, and their % of peak "
                                 "is n/a")  # fmt: skip
    if not new_host:
        store.check_no_links(hdir, "import-logs")  # copied logs, records and host.json land only inside it
    taken: dict[tuple[Any, ...], int] = {}
    for r in existing:
        key = (r.setting, r.model, r.batch_size)
        taken[key] = max(taken.get(key, 0), int(r.repeat or 0) + 1)
    assign_repeats(plan.records, taken)
    if cpu_brand:
        host = replace(host, cpu_brand=cpu_brand)
    versions = {str(v) for v in [host.tf_version, *(r.framework_version for r in plan.records)] if v}
    for v in list(versions):
        versions.update(x.strip() for x in v.split(",") if x.strip())
        if "," in v:
            versions.discard(v)
    if versions:
        host = replace(host, tf_version=", ".join(sorted(versions)))
    try:
        plan.host = HostRecord.from_dict(host.to_dict())  # what read_host would refuse is refused before writing
    except HostRecordError as e:
        raise store.StoreError(f"host record for {hdir}: {e}") from None
    return plan


def write_import(plan: ImportPlan) -> None:
    """Write what :func:`plan_import` checked. A new host folder is built under ``<out>/.import/`` and renamed into
    place whole, so a failure (a full disk, a signal) leaves no host folder at all; into an existing one each log is
    copied before its record is appended (and removed again if the append fails), so every record has its log and
    every copied log its record."""
    if not plan.records and not plan.existing:
        return  # nothing to file: leave no empty host folder behind
    if not plan.new_host:
        _write_into(plan.out, plan)
        return
    staging_root = plan.out / STAGING_DIR
    staging_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=staging_root, prefix=f"{plan.host.host_id}."))
    try:
        _write_into(staging, plan)
        os.rename(store.host_dir(staging, plan.host.host_id), store.host_dir(plan.out, plan.host.host_id))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            staging_root.rmdir()  # another import may be staging beside this one: then it stays


def _write_into(root: Path, plan: ImportPlan) -> None:
    hdir = store.host_dir(root, plan.host.host_id)
    for rec in plan.records:
        assert rec.log is not None
        target = hdir / rec.log
        copied = not os.path.lexists(target)
        # the bytes read and parsed: the source is not opened again (it may have changed or become a link since)
        hostfacts.atomic_write_bytes(target, plan.logs[rec.details["source_file"]].data)
        try:
            store.append_run(root, rec)
        except BaseException:
            if copied:
                with contextlib.suppress(OSError):
                    target.unlink()
            raise
    store.write_host(root, plan.host)


def import_logs(src: Path, out: Path, host_id: str, cpu_brand: str | None = None) -> tuple[int, int, list[str]]:
    """Import the logs under ``src`` into ``out/host_id``; return (imported, already there, warnings).

    Raises store.StoreError when the target folder belongs to a measured host.
    """
    plan = plan_import(src, out, host_id, cpu_brand)
    write_import(plan)
    return len(plan.records), plan.already, plan.warnings
