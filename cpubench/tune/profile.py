"""The tuner's profile: one instance's batch latency for each (threads, batch) point, from a scaling study in the
store or from a CSV in Packrat's layout.

Why two sources: the profile a user has is either their own study (``cpubench run --config scaling``, read from
``DATA_DIR/HOST``) or a published one (Packrat's ``<model>_latency.csv``, and ``cpubench pages``' CSVs, which keep
that layout). Both become the same :class:`~cpubench.tune.optimizer.Profile`; every way a source can be unusable
(no such column, nothing left after the filters, two rows for one point) is one :class:`ProfileError` line naming
the source and the fix.

Packrat's optimizer reads the column its CSV calls ``latency(avg)``; its profile writer puts the *max* under that
header (it writes min, max, avg under ``latency(min), latency(avg), latency(max)``). ``--latency-column`` picks
another column for such files; ours hold what their headers say.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cpubench.analysis.points import base_points, build_study
from cpubench.analysis.tune import is_tune
from cpubench.results import store
from cpubench.tune.optimizer import Profile

MAX_CSV_BYTES = 64 * 2**20
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
    try:
        raw = store.read_regular(p, MAX_CSV_BYTES)
    except FileNotFoundError:
        raise ProfileError(f"{p}: no such file; give a CSV with columns {', '.join(REQUIRED)}, latency(avg)") from None
    except store.StoreError as e:
        raise ProfileError(str(e)) from None
    except OSError as e:
        raise ProfileError(f"{p}: cannot read ({e.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ProfileError(f"{p}: not UTF-8 text; give the CSV itself") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in (*REQUIRED, latency_column) if c not in columns]
    if missing:
        raise ProfileError(
            f"{p}: no column {', '.join(missing)} (it has: {', '.join(columns) or 'none'}); "
            "a Packrat-layout CSV has benchmark,topology,intraop_threads,batch_size,latency(avg)"
        )
    latency: dict[tuple[int, int], float] = {}
    p99: dict[tuple[int, int], float] = {}
    seen: dict[tuple[int, int], int] = {}
    benchmarks: set[str] = set()
    for n, row in enumerate(reader, 2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        benchmarks.add(row["benchmark"])
        if not fnmatch.fnmatchcase(row["benchmark"], benchmark) or row["topology"] != topology:
            continue
        if allocator is not None and "allocator" in row and row["allocator"] != allocator:
            continue
        t, b = _int(row["intraop_threads"], p, n, "intraop_threads"), _int(row["batch_size"], p, n, "batch_size")
        key = (t, b)
        if key in seen:
            raise ProfileError(f"{p}:{n}: a second row for {t} threads, batch {b} (first at line {seen[key]}); "
                               "narrow it with --benchmark, --topology or --allocator")  # fmt: skip
        seen[key] = n
        latency[key] = _ms(row[latency_column], p, n, latency_column)
        if row.get("p99"):
            p99[key] = _ms(row["p99"], p, n, "p99")
    if not latency:
        names = ", ".join(sorted(benchmarks)[:8]) or "none"
        raise ProfileError(f"{p}: no row has a benchmark matching {benchmark!r} and topology {topology!r} "
                           f"(benchmarks: {names}); choose them with --benchmark and --topology")  # fmt: skip
    has_p99 = len(p99) == len(latency)
    return Profile(latency, p99 if has_p99 else None), Source(str(p))


def _int(text: str, p: Path, n: int, col: str) -> int:
    try:
        v = int(float(text))
    except ValueError:
        raise ProfileError(f"{p}:{n}: {col}: expected a whole number, got {text!r}") from None
    if v < 1 or v != float(text) or v > 1 << 20:
        raise ProfileError(f"{p}:{n}: {col}: expected a whole number from 1, got {text!r}")
    return v


def _ms(text: str, p: Path, n: int, col: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ProfileError(f"{p}:{n}: {col}: expected milliseconds, got {text!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ProfileError(f"{p}:{n}: {col}: expected milliseconds above 0, got {text!r}")
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
    if placement is not None:
        points = [p for p in points if p.key.placement == placement]
        if not points:
            raise ProfileError(f"{d}: no {model} {framework} {execution} point with placement {placement}")
    points = base_points(points)  # one placement (sequential first), one memory binding, one inter-op count
    if not points:
        raise ProfileError(f"{d}: no ok inference run of {model} at 1 or more threads; run a scaling study first "
                           "(cpubench run --config scaling-quick)")  # fmt: skip
    latency = {(p.key.threads, p.key.batch): p.lat_avg for p in points}
    p99 = {(p.key.threads, p.key.batch): p.p99 for p in points}
    return Profile(latency, p99), Source(str(d), model, framework, execution, points[0].key.placement)


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
