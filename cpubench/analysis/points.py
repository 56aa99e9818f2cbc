"""The points of a thread-scaling study: per host, model and setting, each statistic reduced over its ok repeats.

Why: ``cpubench pages`` (the Packrat-style scaling pages) and the framework comparison
(:mod:`cpubench.analysis.frameworks`) read the same points, so a page's plot and the comparison's table cannot
disagree. Each statistic of a point (threads, batch, execution, placement, memory, framework) is the median over its
ok repeats of that statistic per run; the plots' bands are the min and max across repeats. A record that gave no
point keeps its reason, so a page can say why a section is empty (remote memory on one NUMA node, interleave on one
socket) instead of showing an empty or failed plot.

A point's key holds its framework, so a PyTorch eager point and a TensorFlow eager point stay apart, and its
workload: the setting its run had apart from the axes a study varies (training or inference, precision, data, ...),
so a training run and an inference run at the same threads and batch are two points, never one median of both. A
page shows one workload per host and model (:meth:`Study.workload`: inference first, as Packrat's study is) and says
which others were measured.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cpubench.analysis import engines
from cpubench.analysis.order import model_sort_key
from cpubench.analysis.tune import is_tune
from cpubench.spec import axes

# Order in which a section picks the setting it shows when several have data (the first with ok points wins).
BASE_PLACEMENTS = ("sequential", "none", "interleave")
BASE_MEMORY = ("local", "default", "remote")
EXECUTIONS = engines.EXECUTIONS[engines.TENSORFLOW]
# The axes a point's key varies (xla_compile is the older switch for the xla execution); every other setting axis
# makes the point's workload.
STUDY_AXES = frozenset({"num_intra_threads", "num_inter_threads", "framework", "execution", "xla_compile",
                        "placement", "memory", "allocator"})  # fmt: skip


@dataclass(frozen=True)
class Key:
    """What identifies one point of a scaling study on one host. The framework is last (with TensorFlow's default)
    so keys written before PyTorch runs existed read as they did."""

    host: str
    model: str
    execution: str
    placement: str
    memory: str
    inter: int
    threads: int
    batch: int
    framework: str = engines.TENSORFLOW
    allocator: str = "default"  # the allocator axis (after the framework, so older keys read as they did)
    workload: str = ""  # the setting name at the study axes' defaults ("syn-replicated-1cpus-inference")

    @property
    def mode(self) -> Mode:
        return (self.framework, self.execution)


# (framework, execution): what one line of a plot follows. Shown as the execution alone while a page holds one
# framework (so a TensorFlow study reads as it always did), with the framework's name when it holds both.
Mode = tuple[str, str]


@dataclass
class Point:
    """One point's ok repeats, reduced: medians of each per-run statistic, and ranges across repeats for bands."""

    key: Key
    repeats: int
    lat_min: float
    lat_avg: float
    lat_max: float
    p50: float
    p90: float
    p99: float
    p50_lo: float
    p50_hi: float
    thr_min: float
    thr_avg: float
    thr_max: float | None  # None where a repeat's fastest step read 0 s: its rate has no finite bound
    thr_lo: float
    thr_hi: float
    # the engine's intra-op thread count at the framework's default (threads 0), when its records say
    threads_effective: int | None = None
    # what the FLOPs of a point count (cpubench.analysis.efficiency): inference or training, and the precision
    forward_only: bool = False
    precision: str = "fp32"


def _median(xs: Iterable[float]) -> float:
    return float(statistics.median(list(xs)))


def _key(rec: Any) -> Key:
    p = rec.params
    return Key(
        host=str(rec.host_id),
        model=str(rec.model),
        execution=engines.execution_of(rec),
        placement=str(p.get("placement") or "none"),
        memory=str(p.get("memory") or "default"),
        inter=int(p.get("num_inter_threads") or 0),
        threads=int(p.get("num_intra_threads") or 0),
        batch=int(rec.batch_size or 0),
        framework=engines.framework_of(rec),
        allocator=str(p.get("allocator") or "default"),
        workload=workload_of(p),
    )


def _off_default(params: dict[str, Any] | None) -> int:
    """How many setting axes outside the study's a run's values set off their default (inference counts one)."""
    values = {**axes.defaults(), **(params or {})}
    outside = [a for a in axes.setting_axes() if a.name not in STUDY_AXES]
    return sum(1 for a in outside if values.get(a.name) != a.default_in(values))


def workload_of(params: dict[str, Any] | None) -> str:
    """What a run measured apart from the study's axes: its setting name with those axes at their defaults."""
    defaults = axes.defaults()
    return axes.setting_name({**defaults, **(params or {}), **{k: defaults.get(k) for k in STUDY_AXES}})


def _effective_threads(recs: Sequence[Any]) -> int | None:
    """The intra-op count the engine reported, most common across repeats (a default is the same in each)."""
    counts = [int(c) for c in ((r.threads or {}).get("intra_effective") for r in recs)
              if isinstance(c, int) and not isinstance(c, bool) and c > 0]  # fmt: skip
    return max(set(counts), key=lambda c: (counts.count(c), -c)) if counts else None


def reduce_point(key: Key, recs: Sequence[Any]) -> Point:
    """Medians over repeats; the per-run throughput range comes from its fastest and slowest step (images per
    batch / step time), so ``throughput(min)`` pairs with ``latency(max)`` as in Packrat's files. A fastest step
    that read 0 s (a step shorter than the timer resolves, kept as recorded) has no finite rate: ``thr_max`` is then
    None, never a figure made up from the other repeats. ``recs`` have a slowest step above 0 s
    (:func:`build_study` keeps the others out)."""
    lats = [r.latency_ms for r in recs]
    images = [r.samples.global_batch or (r.batch_size or 0) * (r.num_devices or 1) for r in recs]
    ips = [float(r.images_per_sec) for r in recs]
    return Point(
        key=key,
        repeats=len(recs),
        lat_min=_median(lat.min for lat in lats),
        lat_avg=_median(lat.mean for lat in lats),
        lat_max=_median(lat.max for lat in lats),
        p50=_median(lat.p50 for lat in lats),
        p90=_median(lat.p90 for lat in lats),
        p99=_median(lat.p99 for lat in lats),
        p50_lo=min(lat.p50 for lat in lats),
        p50_hi=max(lat.p50 for lat in lats),
        thr_min=_median(1000.0 * n / lat.max for n, lat in zip(images, lats, strict=True)),
        thr_avg=_median(ips),
        thr_max=_median(1000.0 * n / lat.min for n, lat in zip(images, lats, strict=True))
        if all(lat.min > 0 for lat in lats)
        else None,
        thr_lo=min(ips),
        thr_hi=max(ips),
        threads_effective=_effective_threads(recs),
        forward_only=bool(recs[0].params.get("forward_only", False)),
        precision=str(recs[0].params.get("precision") or "fp32"),
    )


@dataclass
class Study:
    """Every host's points, and why the runs that did not measure anything did not (per host, model and axis value)."""

    points: dict[Key, Point] = field(default_factory=dict)
    # (host, model, axis, value) -> the reasons of its records that are not ok (skipped: "n/a: one NUMA node")
    reasons: dict[tuple[str, str, str, str], list[str]] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    # every record that gave no point, with its reason: where the framework comparison finds why a side is missing
    failures: list[tuple[Key, str]] = field(default_factory=list)
    # workload -> how many of its axes are off their default (real data, another variable update, bf16, ...)
    off_default: dict[str, int] = field(default_factory=dict)

    def models(self, host: str) -> list[str]:
        found = {k.model for k in self.points if k.host == host} | {m for h, m, _, _ in self.reasons if h == host}
        return sorted(found, key=model_sort_key)

    def workloads(self, host: str, model: str) -> list[str]:
        """The workloads with ok points of a model on a host, the one a page shows first: inference (the scaling
        study Packrat makes), then the one nearest the axes' defaults (synthetic data before real, fp32 before
        bf16), then the one with the most points, then by name."""
        pts = [p for k, p in self.points.items() if k.host == host and k.model == model]
        count = Counter(p.key.workload for p in pts)
        inference = {p.key.workload for p in pts if p.forward_only}
        return sorted(count, key=lambda w: (w not in inference, self.off_default.get(w, 0), -count[w], w))

    def workload(self, host: str, model: str) -> str | None:
        """The workload a page of this host and model shows (None: no ok point)."""
        return next(iter(self.workloads(host, model)), None)

    def of(self, host: str, model: str, workload: str | None = None) -> list[Point]:
        """The points of one workload (by default the one :meth:`workload` picks), never two workloads mixed."""
        wl = self.workload(host, model) if workload is None else workload
        return [p for k, p in self.points.items() if k.host == host and k.model == model and k.workload == wl]

    def failures_of(self, host: str, model: str) -> list[tuple[Key, str]]:
        return [(k, why) for k, why in self.failures if k.host == host and k.model == model]

    def why_none(self, host: str, model: str, most: int = 3) -> str:
        """Why runs of a model on a host gave no point: their reasons, the most common first, each with how many
        runs gave it ("" when none failed). A page with nothing to draw says this, not only that nothing is there:
        a failed run is shown failed with its reason."""
        ranked = Counter(why for _key, why in self.failures_of(host, model)).most_common()
        parts = [f"{why} ({n} run{'s' if n != 1 else ''})" for why, n in ranked[:most]]
        left = len(ranked) - most
        return "; ".join(parts) + (f"; {left} other reason(s)" if left > 0 else "")


def _no_latency(lat: Any) -> str:
    """Why an ok record gives no point: no timed steps, or steps that all read 0 s (a schema-1 record's figure is
    taken as reported, its steps are not checked against it), which give neither a latency nor a rate."""
    if lat is None:
        return "ok, but no step times recorded"
    return "ok, but its timed steps all read 0 s (shorter than the timer resolves): no latency to show"


def build_study(runs: Iterable[Any], hosts: Sequence[str]) -> Study:
    study = Study(hosts=list(hosts))
    groups: dict[Key, list[Any]] = {}
    for rec in runs:
        if not rec.model or is_tune(rec):  # concurrent instances are not single-instance points
            continue
        key = _key(rec)
        study.off_default.setdefault(key.workload, _off_default(rec.params))
        lat = rec.latency_ms
        if rec.ok and lat is not None and lat.max > 0 and rec.images_per_sec:
            groups.setdefault(key, []).append(rec)
        else:
            study.failures.append((key, rec.reason or (_no_latency(lat) if rec.ok else rec.status)))
            for axis, value in (("placement", key.placement), ("memory", key.memory)):
                why = rec.reason or rec.status
                bucket = study.reasons.setdefault((key.host, key.model, axis, value), [])
                if why not in bucket:
                    bucket.append(why)
    for key, recs in groups.items():
        study.points[key] = reduce_point(key, recs)
    for h in {k.host for k in study.points} | {h for h, _, _, _ in study.reasons}:
        if h not in study.hosts:
            study.hosts.append(h)
    return study


def _order(values: Iterable[str], preferred: Sequence[str]) -> list[str]:
    vs = set(values)
    return [v for v in preferred if v in vs] + sorted(vs - set(preferred))


def base_points(points: Sequence[Point]) -> list[Point]:
    """The points the "Sequential" sections show: sequential placement (else unpinned) with local memory (else the
    default), at the most common inter-op thread count and the default allocator (else the first measured), so every
    line of a plot varies in one axis only. Chosen per framework: one framework's choice never hides the other's
    points."""
    fws = sorted({p.key.framework for p in points}, key=lambda fw: engines.mode_sort_key((fw, "")))
    if len(fws) > 1:
        return [q for fw in fws for q in base_points([p for p in points if p.key.framework == fw])]
    if not points:
        return []
    placement = _order((p.key.placement for p in points), BASE_PLACEMENTS)[0]
    pts = [p for p in points if p.key.placement == placement]
    memory = _order((p.key.memory for p in pts), BASE_MEMORY)[0]
    pts = [p for p in pts if p.key.memory == memory]
    inters = [p.key.inter for p in pts]
    inter = max(set(inters), key=lambda v: (inters.count(v), -v))
    pts = [p for p in pts if p.key.inter == inter]
    allocator = _order((p.key.allocator for p in pts), ("default",))[0]  # glibc's, where measured
    return [p for p in pts if p.key.allocator == allocator]


def executions(points: Iterable[Point]) -> list[str]:
    return _order((p.key.execution for p in points), EXECUTIONS)


def modes(points: Iterable[Point]) -> list[Mode]:
    """Every (framework, execution) of the points: TensorFlow's modes first, each framework's in declared order."""
    return sorted({p.key.mode for p in points}, key=engines.mode_sort_key)


def several_frameworks(points: Iterable[Point]) -> bool:
    return len({p.key.framework for p in points}) > 1


def series(points: Iterable[Point], execution: str | Mode, batch: int) -> list[Point]:
    """One line's points in thread order: an execution mode (of any framework) or a (framework, execution)."""
    if isinstance(execution, tuple):
        return sorted((p for p in points if p.key.mode == execution and p.key.batch == batch), key=_threads)
    return sorted((p for p in points if p.key.execution == execution and p.key.batch == batch), key=_threads)


def _threads(p: Point) -> int:
    return p.key.threads


def speedups(points: Sequence[Point]) -> dict[int, float] | None:
    """Throughput at t threads over throughput at one thread (one execution, one batch), or None without t=1."""
    one = next((p for p in points if p.key.threads == 1), None)
    if one is None or one.thr_avg <= 0:
        return None
    return {p.key.threads: p.thr_avg / one.thr_avg for p in points}


@dataclass
class Loss:
    """One heatmap: % loss of ``other`` against ``base`` per (threads, batch) of one execution mode."""

    execution: str
    threads: list[int]
    batches: list[int]
    values: dict[tuple[int, int], float]
    framework: str = engines.TENSORFLOW

    @property
    def mode(self) -> Mode:
        return (self.framework, self.execution)


def losses(points: Sequence[Point], axis: str, base: str, other: str, kind: str) -> list[Loss]:
    """Pair points that differ only in ``axis`` (placement or memory); the other NUMA axis is fixed at the first
    value in its preference order where both sides have data. Latency loss is (other - base) / base (slower is a
    loss); throughput loss is (base - other) / base."""
    fixed_axis = "memory" if axis == "placement" else "placement"
    prefs = BASE_MEMORY if fixed_axis == "memory" else BASE_PLACEMENTS
    by: dict[tuple[Any, ...], Point] = {}
    for p in points:
        by[(getattr(p.key, axis), getattr(p.key, fixed_axis), p.key.mode, p.key.inter, p.key.threads,
            p.key.batch)] = p  # fmt: skip
    for fixed in _order((getattr(p.key, fixed_axis) for p in points), prefs):
        out = []
        for mode in modes(points):
            values: dict[tuple[int, int], float] = {}
            for (a, f, e, inter, t, b), p in by.items():
                if a != base or f != fixed or e != mode:
                    continue
                q = by.get((other, fixed, mode, inter, t, b))
                if q is None:
                    continue
                if kind == "latency":
                    values[(t, b)] = (q.p50 - p.p50) / p.p50 * 100.0
                else:
                    values[(t, b)] = (p.thr_avg - q.thr_avg) / p.thr_avg * 100.0
            if values:
                ts = sorted({t for t, _ in values})
                bs = sorted({b for _, b in values})
                out.append(Loss(mode[1], ts, bs, values, mode[0]))
        if out:
            return out
    return []
