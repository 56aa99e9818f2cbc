"""Tune verifications read back: per host, model and batch, each configuration run as concurrent instances (the
recommended split, the fat and the thin baselines), expected against measured.

Why apart from the tuner: ``cpubench report`` and ``cpubench pages`` show these results from the store alone, as
they show every other figure; the tuner prints the same table right after it measured. A configuration's latency is
its slowest instance's (p50 and p99), its throughput the sum of its instances' images/sec; each statistic is the
median over the configuration's repeats. A repeat with an instance that failed counts as failed, with its reason.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

KIND = "tune"  # the ensemble kind of a tune verification's records
LABELS = ("split", "fat", "thin")  # the recommendation and its two baselines, in the order they are shown


def is_tune(rec: Any) -> bool:
    """A run measured as one instance of a tune verification (not a point of a single-instance study)."""
    return bool(rec.ensemble) and rec.ensemble.get("kind") == KIND


@dataclass
class Verified:
    """One configuration of one verification (a host, model, framework, mode, core budget and batch)."""

    host: str
    model: str
    framework: str
    execution: str
    cores: int
    batch: int
    label: str
    split: list[list[int]]  # [threads, batch, count] per instance kind
    expected_ms: float | None
    p50_ms: float | None = None  # the slowest instance's, median over ok repeats
    p99_ms: float | None = None
    throughput: float | None = None  # images/sec, all instances together
    overlap: float | None = None  # the smallest share of an instance's window that every other one covered
    repeats: int = 0
    failed: list[str] = field(default_factory=list)  # the reasons of repeats that were not ok

    @property
    def split_text(self) -> str:
        return " + ".join(f"{n}x({t} thr, bs {b})" for t, b, n in self.split)


@dataclass(frozen=True)
class Verification:
    """The three configurations of one batch size, and the speedups of the split over the fat instance."""

    split: Verified | None
    fat: Verified | None
    thin: Verified | None

    @property
    def expected_speedup(self) -> float | None:
        if self.split and self.fat and self.split.expected_ms and self.fat.expected_ms:
            return self.fat.expected_ms / self.split.expected_ms
        return None

    @property
    def measured_speedup(self) -> float | None:
        if self.split and self.fat and self.split.p50_ms and self.fat.p50_ms:
            return self.fat.p50_ms / self.split.p50_ms
        return None


def verifications(runs: Iterable[Any]) -> dict[tuple[str, str, str, str, int], dict[int, Verification]]:
    """(host, model, framework, execution, cores) -> batch -> its verification, from the store's records."""
    ensembles: dict[str, list[Any]] = {}
    for rec in runs:
        if is_tune(rec):
            ensembles.setdefault(str(rec.ensemble.get("id")), []).append(rec)
    found: dict[tuple[Any, ...], Verified] = {}
    per_repeat: dict[tuple[Any, ...], list[tuple[float, float, float, float]]] = {}
    for recs in ensembles.values():
        e = recs[0].ensemble
        fw = str(recs[0].framework or "tensorflow")
        ex = str(recs[0].params.get("execution") or "")
        key = (str(recs[0].host_id), str(recs[0].model), fw, ex, int(e.get("cores") or 0), int(e.get("batch") or 0),
               str(e.get("label") or ""))  # fmt: skip
        v = found.setdefault(key, Verified(*key, split=list(e.get("split") or []), expected_ms=e.get("expected_ms")))
        complete = len(recs) == int(e.get("instances") or 0)
        bad = [r for r in recs if not r.ok or r.latency_ms is None]
        if bad or not complete:
            v.failed.append(bad[0].reason or bad[0].status if bad else "an instance was not recorded")
            continue
        lats = [r.latency_ms for r in recs]
        overlap = min(float(r.ensemble.get("overlap") or 0.0) for r in recs)
        per_repeat.setdefault(key, []).append(
            (
                max(lat.p50 for lat in lats),
                max(lat.p99 for lat in lats),
                sum(float(r.images_per_sec) for r in recs),
                overlap,
            )  # fmt: skip
        )
    for key, rows in per_repeat.items():
        v = found[key]
        v.repeats = len(rows)
        p50s, p99s, throughputs, overlaps = zip(*rows, strict=True)
        v.p50_ms, v.p99_ms = float(statistics.median(p50s)), float(statistics.median(p99s))
        v.throughput, v.overlap = float(statistics.median(throughputs)), min(overlaps)
    out: dict[tuple[str, str, str, str, int], dict[int, Verification]] = {}
    for (host, model, fw, ex, cores, batch, _label), _v in sorted(found.items()):
        by = {lab: found.get((host, model, fw, ex, cores, batch, lab)) for lab in LABELS}
        out.setdefault((host, model, fw, ex, cores), {})[batch] = Verification(by["split"], by["fat"], by["thin"])
    return out
