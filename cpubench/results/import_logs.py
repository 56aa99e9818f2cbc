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
- Re-running the import skips logs already imported into that host (matched by their path under DIR), so it is safe
  to run again after adding logs.
- Importing into a folder that holds a measured host (a real machine fingerprint) is refused: give another --host-id.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cpubench.host.record import HostRecord
from cpubench.results import store
from cpubench.results.logparse import ClassicName, ParsedLog, parse_log, parse_log_name
from cpubench.spec import axes
from tf_cnn_benchmarks.record import RunRecord

LOG_SUFFIXES = (".log", ".txt", ".out")
IMPORT_LOGS_DIR = "import"


@dataclass
class LogFile:
    """One legacy log on disk with what its name and its text say."""

    path: Path
    rel: str  # path under the imported folder, POSIX style: the import's identity
    parsed: ParsedLog
    name: ClassicName | None


def find_logs(root: Path) -> list[Path]:
    """Every candidate log file under ``root`` (or ``root`` itself), sorted for a stable import order."""
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in LOG_SUFFIXES)


def read_logs(root: Path, warnings: list[str]) -> list[LogFile]:
    """Parse every candidate file; files that are not tf_cnn_benchmarks logs are skipped with a warning."""
    out: list[LogFile] = []
    for path in find_logs(root):
        text = path.read_text(encoding="utf-8", errors="replace")
        parsed = parse_log(text)
        name = parse_log_name(path.name)
        if not parsed.is_benchmark_log and name is None:
            warnings.append(f"{path}: not a tf_cnn_benchmarks log (no header, step or total line); skipped")
            continue
        rel = path.name if root.is_file() else path.relative_to(root).as_posix()
        out.append(LogFile(path=path, rel=rel, parsed=parsed, name=name))
    return out


def record_for(log: LogFile, host_id: str, warnings: list[str]) -> RunRecord | None:
    """One run record for one log (``repeat`` filled in later), or None when the setting cannot be told."""
    p, n = log.parsed, log.name
    if n is not None and p.has_header:
        for what, from_name, from_header in (
            ("model", n.model, p.model),
            ("batch size", n.batch_size, p.batch_size_per_device),
            ("device count", n.num_devices, p.num_devices),
            ("variable update", n.variable_update, p.variable_update),
        ):
            if from_header is not None and from_name != from_header:
                warnings.append(
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
        warnings.append(f"{log.path}: cannot tell the {', '.join(missing)} (no header line, no classic name); skipped")
        return None
    assert data is not None and variable_update is not None and num_devices is not None and device is not None
    known = {"data": data, "variable_update": variable_update, "nccl": nccl, "distortions": distortions,
             "forward_only": forward_only, "device": device, "num_devices": num_devices}  # fmt: skip
    if p.framework == "pytorch":  # our PyTorch engine's log: its header says the mode too
        known.update(framework="pytorch", execution=p.header.get("Execution") or None)
    # Every axis a log does not tell stays None (unknown): left out of the setting name, never a guessed default.
    params = {a.name: known.get(a.name) for a in axes.setting_axes()}
    ok = p.complete
    return RunRecord(
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


def import_logs(src: Path, out: Path, host_id: str, cpu_brand: str | None = None) -> tuple[int, int, list[str]]:
    """Import the logs under ``src`` into ``out/host_id``; return (imported, already there, warnings).

    Raises store.StoreError when the target folder belongs to a measured host.
    """
    warnings: list[str] = []
    hdir = store.host_dir(out, host_id)
    fingerprint = f"import:{host_id}"
    host = HostRecord(host_id=host_id, machine_fingerprint=fingerprint, source="import")
    existing: list[RunRecord] = []
    if (hdir / store.HOST_FILE).exists():
        host = store.read_host(hdir)
        if host.machine_fingerprint != fingerprint:
            raise store.StoreError(
                f"{hdir} holds runs measured on a machine ({host.machine_fingerprint}); "
                f"import the logs under another --host-id (e.g. {host_id}-legacy)"
            )
        existing = list(store.iter_runs(hdir, warnings))
    done = {r.details.get("source_file") for r in existing if r.source == "import"}
    logs = read_logs(src, warnings)
    fresh = [lg for lg in logs if lg.rel not in done]
    records = [r for r in (record_for(lg, host_id, warnings) for lg in fresh) if r is not None]
    taken: dict[tuple[Any, ...], int] = {}
    for r in existing:
        key = (r.setting, r.model, r.batch_size)
        taken[key] = max(taken.get(key, 0), int(r.repeat or 0) + 1)
    assign_repeats(records, taken)
    if not records and not existing:
        return 0, len(logs) - len(fresh), warnings  # nothing to file: leave no empty host folder behind
    if cpu_brand:
        host = replace(host, cpu_brand=cpu_brand)
    versions = {str(v) for v in [host.tf_version, *(r.framework_version for r in records)] if v}
    for v in list(versions):
        versions.update(x.strip() for x in v.split(",") if x.strip())
        if "," in v:
            versions.discard(v)
    if versions:
        host = replace(host, tf_version=", ".join(sorted(versions)))
    store.write_host(out, host)
    by_rel = {lg.rel: lg for lg in fresh}
    for rec in records:
        assert rec.log is not None
        target = hdir / rec.log
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(by_rel[rec.details["source_file"]].path, target)
        store.append_run(out, rec)
    return len(records), len(logs) - len(fresh), warnings
