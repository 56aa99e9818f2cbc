"""The tuner's profile: one instance's batch latency for each (threads, batch) point, from a scaling study in the
store or from a CSV in Packrat's layout.

Why two sources: the profile a user has is either their own study (``cpubench run --config scaling``, read from
``DATA_DIR/HOST``) or a published one (Packrat's ``<model>_latency.csv``, and ``cpubench pages``' CSVs, which keep
that layout). Both become the same :class:`~cpubench.tune.optimizer.Profile`; every way a source can be unusable
(no such column, nothing left after the filters, two rows for one point) is one :class:`ProfileError` line naming
the source and the fix.

Every number is bounded before it is used: thread counts and batches by the optimizer's
:data:`~cpubench.tune.optimizer.MAX_CORES` and :data:`~cpubench.tune.optimizer.MAX_BATCH` (a point sizes the
optimizer's tables, so one forged record must not decide how much memory a run takes), latencies from
:data:`MIN_LATENCY_MS` to :data:`MAX_LATENCY_MS` (the throughput of a point divides by its latency), and a CSV by
:data:`MAX_CSV_BYTES`.

Packrat's optimizer reads the column its CSV calls ``latency(avg)``; its profile writer puts the *max* under that
header (it writes min, max, avg under ``latency(min), latency(avg), latency(max)``). ``--latency-column`` picks
another column for such files; ours hold what their headers say.
"""

from __future__ import annotations

import csv
import fnmatch
import io
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpubench.analysis.points import Point, base_points, build_study, workload_of
from cpubench.analysis.tune import is_tune
from cpubench.results import store
from cpubench.tune.optimizer import MAX_BATCH, MAX_CORES, Profile
from tf_cnn_benchmarks.record import RunRecord

#: A profile of every thread count to 4096 at 17 batch sizes is about 4 MiB: a larger file is not a profile.
MAX_CSV_BYTES = 16 * 2**20
#: A point's latency, from a nanosecond to a day: outside, it is a unit mistake or a forged figure, and a
#: throughput (batch / latency) summed over thousands of instances would no longer be a finite float.
MIN_LATENCY_MS = 1e-6
MAX_LATENCY_MS = 86_400_000.0
REQUIRED = ("benchmark", "topology", "intraop_threads", "batch_size")


class ProfileError(Exception):
    """A profile that cannot be used: the message names the source, what is wrong and the fix."""


@dataclass(frozen=True)
class Source:
    """Where a profile came from, for the output and for --verify (which model, framework and mode to run)."""

    where: str
    model: str | None = None
    framework: str | None = None
    execution: str | None = None
    placement: str | None = None
    workload: str | None = None  # the setting name at the study axes' defaults (cpubench.analysis.points)


def from_csv(
    path: str | Path,
    benchmark: str = "*script*",
    topology: str = "sequential",
    latency_column: str = "latency(avg)",
    allocator: str | None = None,
) -> tuple[Profile, Source]:
    """Rows of a Packrat-layout CSV whose ``benchmark`` matches the glob and whose ``topology`` is the one given
    (and ``allocator``, when given and the file has the column) into a profile; ``p99`` is read when present."""
    p = Path(path)
    raw = _read(p)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ProfileError(f"{p}: not UTF-8 text; give the CSV itself") from None
    reader = csv.DictReader(io.StringIO(text))
    try:
        columns = [c.strip() for c in reader.fieldnames or []]
    except csv.Error as e:
        raise ProfileError(f"{p}:1: not a CSV header ({e}); give the profile CSV itself") from None
    missing = [c for c in (*REQUIRED, latency_column) if c not in columns]
    if missing:
        has = ", ".join(_shown(c) for c in columns[:16]) + (", ..." if len(columns) > 16 else "")
        raise ProfileError(
            f"{p}: no column {', '.join(_shown(c) for c in missing)} (it has: {has or 'none'}); "
            "a Packrat-layout CSV has benchmark,topology,intraop_threads,batch_size,latency(avg)"
        )
    latency: dict[tuple[int, int], float] = {}
    p99: dict[tuple[int, int], float] = {}
    seen: dict[tuple[int, int], int] = {}
    benchmarks: set[str] = set()
    for n, raw_row in _rows(reader, p):
        if None in raw_row:
            fields = len(columns) + len(raw_row[None])
            raise ProfileError(f"{p}:{n}: {fields} fields, but the header names {len(columns)}; quote a field "
                               "that holds a comma, or drop the extra fields")  # fmt: skip
        row = {(k or "").strip(): (v or "").strip() for k, v in raw_row.items()}
        benchmarks.add(row["benchmark"])
        if not fnmatch.fnmatchcase(row["benchmark"], benchmark) or row["topology"] != topology:
            continue
        if allocator is not None and "allocator" in row and row["allocator"] != allocator:
            continue
        t = _int(row["intraop_threads"], p, n, "intraop_threads", MAX_CORES)
        b = _int(row["batch_size"], p, n, "batch_size", MAX_BATCH)
        key = (t, b)
        if key in seen:
            raise ProfileError(f"{p}:{n}: a second row for {t} threads, batch {b} (first at line {seen[key]}); "
                               "narrow it with --benchmark, --topology or --allocator")  # fmt: skip
        seen[key] = n
        latency[key] = _ms(row[latency_column], p, n, latency_column)
        if row.get("p99"):
            p99[key] = _ms(row["p99"], p, n, "p99")
    if not latency:
        names = ", ".join(_shown(b) for b in sorted(benchmarks)[:8]) or "none"
        raise ProfileError(f"{p}: no row has a benchmark matching {benchmark!r} and topology {topology!r} "
                           f"(benchmarks: {names}); choose them with --benchmark and --topology")  # fmt: skip
    has_p99 = len(p99) == len(latency)
    return Profile(latency, p99 if has_p99 else None), Source(str(p))


def _read(p: Path) -> bytes:
    """The file's bytes, refused (before reading) past :data:`MAX_CSV_BYTES` or when it is not a regular file."""
    try:
        return store.read_regular(p, MAX_CSV_BYTES, "a profile")
    except FileNotFoundError:
        raise ProfileError(f"{p}: no such file; give a CSV with columns {', '.join(REQUIRED)}, latency(avg)") from None
    except store.StoreError as e:
        raise ProfileError(str(e)) from None
    except OSError as e:
        raise ProfileError(f"{p}: cannot read ({e.strerror})") from None


def _rows(reader: csv.DictReader, p: Path) -> Iterator[tuple[int, dict[str | None, Any]]]:
    """The reader's rows with their row numbers (the header is row 1); a malformed row (a field past the csv
    module's limit, a NUL) is one ProfileError naming its row."""
    n = 2
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise ProfileError(f"{p}:{n}: not a profile row ({e}); give the profile CSV itself") from None
        yield n, row
        n += 1


def _shown(text: str) -> str:
    """Text from the file as it may be printed in one line: as it is when short and printable, else quoted."""
    return text if len(text) <= 40 and text.isprintable() else repr(text[:40]) + ("..." if len(text) > 40 else "")


def _quoted(text: str) -> str:
    """A value from the file in quotes, cut to 40 characters: a field may be 100,000 characters of anything."""
    return repr(text[:40]) + ("..." if len(text) > 40 else "")


def _int(text: str, p: Path, n: int, col: str, maximum: int) -> int:
    try:
        v = float(text)
    except ValueError:
        raise ProfileError(f"{p}:{n}: {col}: expected a whole number, got {_quoted(text)}") from None
    if not 1 <= v <= maximum or v != int(v):
        raise ProfileError(f"{p}:{n}: {col}: expected a whole number from 1 to {maximum}, got {_quoted(text)}")
    return int(v)


def _ms(text: str, p: Path, n: int, col: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ProfileError(f"{p}:{n}: {col}: expected milliseconds, got {_quoted(text)}") from None
    if not MIN_LATENCY_MS <= v <= MAX_LATENCY_MS:
        raise ProfileError(f"{p}:{n}: {col}: expected milliseconds from {MIN_LATENCY_MS:g} to "
                           f"{MAX_LATENCY_MS:g} (a day), got {_quoted(text)}")  # fmt: skip
    return v


def from_store(
    host_dir: str | Path,
    model: str | None = None,
    framework: str | None = None,
    execution: str | None = None,
    placement: str | None = None,
) -> tuple[Profile, Source]:
    """A host's scaling study (ok inference runs at 1 or more intra-op threads, repeats reduced to their median)
    for one model, framework and execution mode; each left out is taken when the study has one only."""
    d = Path(host_dir)
    try:
        hr = store.load_host(d)
    except store.StoreError as e:
        raise ProfileError(str(e)) from None
    runs = [r for r in hr.runs if r.params.get("forward_only") and not is_tune(r)]
    study = build_study(runs, [hr.host_id])
    points = [p for p in study.points.values() if p.key.threads >= 1]
    model = _one(d, "model", model, {p.key.model for p in points}, "--model")
    points = [p for p in points if p.key.model == model]
    framework = _one(d, "framework", framework, {p.key.framework for p in points}, "--framework")
    points = [p for p in points if p.key.framework == framework]
    execution = _one(d, "execution", execution, {p.key.execution for p in points}, "--execution")
    points = [p for p in points if p.key.execution == execution]
    workload = _workload(points)
    points = [p for p in points if p.key.workload == workload]
    if placement is not None:
        points = [p for p in points if p.key.placement == placement]
        if not points:
            raise ProfileError(f"{d}: no {model} {framework} {execution} point with placement {placement}")
    points = base_points(points)  # one placement (sequential first), one memory binding, one inter-op count
    if not points:
        raise ProfileError(f"{d}: no ok inference run of {model} at 1 or more threads; run a scaling study first "
                           "(cpubench run --config scaling-quick)")  # fmt: skip
    for p in points:
        _check_point(d, p, runs)
    latency = {(p.key.threads, p.key.batch): p.lat_avg for p in points}
    p99 = {(p.key.threads, p.key.batch): p.p99 for p in points}
    return Profile(latency, p99), Source(str(d), model, framework, execution, points[0].key.placement, workload)


def _workload(points: Sequence[Point]) -> str:
    """The one workload a profile reads (points of two, fp32 and bf16 say, are two studies, never one): the default
    inference setting's where measured (what ``--verify`` runs), else the one with the most points."""
    count = Counter(p.key.workload for p in points)
    default = workload_of({"forward_only": True})
    return default if default in count or not count else min(count, key=lambda w: (-count[w], w))


def _check_point(d: Path, point: Point, runs: Sequence[RunRecord]) -> None:
    """Refuse a study point the tuner cannot use, naming a record it comes from and the bound it is past."""
    k = point.key
    if k.threads > MAX_CORES:
        why = f"{k.threads} intra-op threads, over the {MAX_CORES} the tuner takes"
    elif k.batch > MAX_BATCH:
        why = f"batch_size {k.batch}, over the {MAX_BATCH} the tuner takes"
    elif not all(MIN_LATENCY_MS <= v <= MAX_LATENCY_MS for v in (point.lat_avg, point.p99)):
        why = (f"latency {point.lat_avg:g} ms (p99 {point.p99:g} ms), outside {MIN_LATENCY_MS:g} to "
               f"{MAX_LATENCY_MS:g} ms")  # fmt: skip
    else:
        return
    rec = next((r for r in runs if r.model == k.model and (r.batch_size or 0) == k.batch
                and int(r.params.get("num_intra_threads") or 0) == k.threads), None)  # fmt: skip
    which = "" if rec is None else f" (run_hash {_quoted(str(rec.run_hash))}, log {_quoted(str(rec.log))})"
    raise ProfileError(f"{d}/runs.jsonl: a {_shown(k.model)} run{which} has {why}: a damaged record; remove its "
                       "line or rerun the study")  # fmt: skip


def _one(d: Path, what: str, given: str | None, have: Iterable[str], flag: str) -> str:
    have = sorted(have)
    if given is not None:
        if given not in have:
            raise ProfileError(f"{d}: no ok inference run with {what} {given!r} (it has: {', '.join(have) or 'none'})")
        return given
    if len(have) == 1:
        return have[0]
    if not have:
        raise ProfileError(f"{d}: no ok inference run at 1 or more threads; run a scaling study first "
                           "(cpubench run --config scaling-quick)")  # fmt: skip
    raise ProfileError(f"{d}: the study has several {what}s ({', '.join(have)}): choose one with {flag}")
