"""TensorFlow against PyTorch on one host and model: per batch size, each framework's best (execution mode,
intra-op thread count), the ratios of their throughput and latency, and the lines of the plots that show them.

Why one module: ``cpubench pages`` (a scaling study, one page per host and model) and ``cpubench report`` (the
classic matrices, ``summary.md``) both show this comparison; computed here once, they cannot disagree on which point
is a framework's best or on which way a ratio goes. What the frameworks are (names, execution modes, default mode)
is :mod:`cpubench.analysis.engines`; the comparison's table, text and plots are :mod:`cpubench.render.frameworks`.

How points are chosen: the two frameworks are compared at one setting of the axes the comparison does not vary
(placement, memory, inter-op threads) that both measured, the first in the pages' preference order. A framework's
best point at a batch size is the one with the highest median throughput over all its execution modes and thread
counts there; its latency is that point's p50 (ms per batch). The ratios are PyTorch over TensorFlow for throughput
and TensorFlow over PyTorch for latency, so above 1.00x means PyTorch is faster either way. A batch size where a
framework has no ok point gets n/a with the reasons its records give, never a ratio against 0 or a neighbour's value.

Threads: a point at the framework's default (``num_intra_threads`` 0) is placed at the count the engine reported
(``threads["intra_effective"]``), so the classic matrices, which run at the default, still plot (one point a line).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cpubench.analysis.engines import FRAMEWORKS, PYTORCH, TENSORFLOW, display, mode_sort_key
from cpubench.analysis.order import model_sort_key
from cpubench.analysis.points import BASE_MEMORY, BASE_PLACEMENTS, Key, Point, Study, build_study
from cpubench.spec import axes

# Axes the comparison varies (or that name the side): every other axis must be equal for two runs to be compared.
# xla_compile is TensorFlow's older spelling of execution xla (execution_of reads it as that mode).
VARIED = frozenset({"framework", "execution", "xla_compile", "num_intra_threads", "model", "batch_size"})


# ---------------------------------------------------------------------------------------------- a point's threads


def threads_of(p: Point) -> int:
    """The intra-op thread count a point ran with: the one asked for, else the engine's count at the default (0 when
    the record did not say)."""
    return p.key.threads or p.threads_effective or 0


# ------------------------------------------------------------------------------------------------ the comparison


@dataclass(frozen=True)
class Setting:
    """The values of the axes the pages' key holds besides the varied ones: both sides are compared at one."""

    placement: str
    memory: str
    inter: int

    def text(self) -> str:
        return f"placement {self.placement}, memory {self.memory}, inter-op threads {self.inter or 'default'}"


def _setting(key: Key) -> Setting:
    return Setting(key.placement, key.memory, key.inter)


@dataclass
class Row:
    """One batch size: each framework's best point, or why it has none."""

    batch: int
    best: dict[str, Point] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)  # framework -> reasons of its runs that are not ok

    def _both(self) -> tuple[Point, Point] | None:
        tf, pt = self.best.get(TENSORFLOW), self.best.get(PYTORCH)
        return (tf, pt) if tf is not None and pt is not None else None

    @property
    def throughput_ratio(self) -> float | None:
        """PyTorch images/sec over TensorFlow's, at each one's best point."""
        both = self._both()
        return both[1].thr_avg / both[0].thr_avg if both and both[0].thr_avg > 0 else None

    @property
    def latency_ratio(self) -> float | None:
        """TensorFlow p50 over PyTorch's, at each one's best point (above 1: PyTorch is faster)."""
        both = self._both()
        return both[0].p50 / both[1].p50 if both and both[1].p50 > 0 else None

    @property
    def reason(self) -> str | None:
        """``n/a: no ok pytorch run at batch 8 (exit code 1: ...)`` when a side has no best point, else None."""
        gone = [fw for fw in FRAMEWORKS if fw not in self.best]
        if not gone:
            return None
        why = [r for fw in gone for r in self.missing.get(fw, [])]
        return f"n/a: no ok {' or '.join(gone)} run at batch {self.batch} ({'; '.join(why) or 'not measured'})"


@dataclass
class Line:
    """One (framework, execution mode) at one batch size: its points in thread order."""

    framework: str
    execution: str
    points: list[Point]

    @property
    def label(self) -> str:
        return f"{display(self.framework)} {self.execution}"

    @property
    def threads(self) -> list[int]:
        return [threads_of(p) for p in self.points]


@dataclass
class Comparison:
    """TensorFlow against PyTorch on one host and model (and, in the report, one setting of the other axes)."""

    host: str
    model: str
    label: str = ""  # the setting compared in, when there may be several (the report); empty on a page
    setting: Setting | None = None
    rows: list[Row] = field(default_factory=list)
    lines: dict[int, list[Line]] = field(default_factory=dict)  # batch -> lines, for the plots
    note: str | None = None  # why nothing is compared, when both frameworks ran but never at one setting

    @property
    def plot_batches(self) -> list[int]:
        return sorted(b for b, ls in self.lines.items() if ls)


def common_setting(points: Sequence[Point]) -> Setting | None:
    """The setting both frameworks measured, first in the pages' preference (sequential placement, local memory),
    then the one with the most points; None when they share none."""
    sides = [{_setting(p.key) for p in points if p.key.framework == fw} for fw in FRAMEWORKS]
    common = set.intersection(*sides)
    if not common:
        return None
    counts = {s: sum(1 for p in points if _setting(p.key) == s) for s in common}

    def rank(s: Setting) -> tuple[Any, ...]:
        pl, mem = BASE_PLACEMENTS, BASE_MEMORY
        return (pl.index(s.placement) if s.placement in pl else len(pl), s.placement,
                mem.index(s.memory) if s.memory in mem else len(mem), s.memory, -counts[s], s.inter)  # fmt: skip

    return min(common, key=rank)


def _best(points: Iterable[Point]) -> Point | None:
    """Highest median throughput; a tie goes to fewer threads, then to the earlier mode (the simpler setup): ``max``
    keeps the first of equals, and the candidates come in that order."""
    ordered = sorted(points, key=lambda p: (threads_of(p), mode_sort_key((p.key.framework, p.key.execution))))
    return max(ordered, default=None, key=lambda p: p.thr_avg)


def _line(points: Iterable[Point]) -> list[Point]:
    """Points in thread order, one a thread count: a point asked for its count wins over a default that landed there."""
    by: dict[int, Point] = {}
    for p in sorted(points, key=lambda p: (threads_of(p), p.key.threads == 0)):
        by.setdefault(threads_of(p), p)
    return list(by.values())


def compare(points: Sequence[Point], failures: Sequence[tuple[Key, str]], host: str, model: str,
            label: str = "") -> Comparison | None:  # fmt: skip
    """The comparison of one host and model's points (the pages' Points), with the reasons of its runs that are not
    ok; None unless both frameworks have ok points."""
    pts = [p for p in points if p.key.framework in FRAMEWORKS]
    if any(not any(p.key.framework == fw for p in pts) for fw in FRAMEWORKS):
        return None
    comp = Comparison(host, model, label)
    comp.setting = setting = common_setting(pts)
    if setting is None:
        ran = {fw: sorted({_setting(p.key).text() for p in pts if p.key.framework == fw}) for fw in FRAMEWORKS}
        seen = "; ".join(f"{display(fw)} at {' and '.join(texts)}" for fw, texts in ran.items())
        comp.note = f"n/a: the two frameworks never ran at one setting of the other axes ({seen})"
        return comp
    pts = [p for p in pts if _setting(p.key) == setting]
    fails = [(k, why) for k, why in failures if k.framework in FRAMEWORKS and _setting(k) == setting]
    for b in sorted({p.key.batch for p in pts} | {k.batch for k, _ in fails}):
        row = Row(b)
        for fw in FRAMEWORKS:
            best = _best(p for p in pts if p.key.framework == fw and p.key.batch == b)
            if best is not None:
                row.best[fw] = best
            else:
                row.missing[fw] = list(dict.fromkeys(why for k, why in fails if k.framework == fw and k.batch == b))
        comp.rows.append(row)
        modes = sorted({(p.key.framework, p.key.execution) for p in pts if p.key.batch == b}, key=mode_sort_key)
        comp.lines[b] = [Line(fw, ex, _line(p for p in pts if (p.key.framework, p.key.execution, p.key.batch) ==
                                            (fw, ex, b))) for fw, ex in modes]  # fmt: skip
    return comp


# ---------------------------------------------------------------------------------------------- from the records


def context(params: dict[str, Any]) -> dict[str, Any]:
    """A run's values of every setting axis the comparison does not vary (defaults filled in): two runs are compared
    only when these are equal, so a training run is never set against an inference run of the other framework."""
    values = {**axes.defaults(), **(params or {})}
    return {a.name: values.get(a.name) for a in axes.setting_axes() if a.name not in VARIED}


def context_label(values: dict[str, Any]) -> str:
    """The setting name the context has at the varied axes' defaults (the classic column name)."""
    return axes.setting_name({**axes.defaults(), **values, **{k: axes.defaults().get(k) for k in VARIED}})


def from_records(runs: Iterable[Any], hosts: Sequence[str] = ()) -> list[Comparison]:
    """Every comparison the records hold: per host, model and context where both frameworks have ok points, in
    host order (``hosts``, then the rest by name), model order and setting order."""
    groups: dict[tuple[str, str, str], list[Any]] = {}
    contexts: dict[str, dict[str, Any]] = {}
    for rec in runs:
        if not rec.model:
            continue
        ctx = context(rec.params)
        ck = json.dumps(ctx, sort_keys=True, default=str)
        contexts.setdefault(ck, ctx)
        groups.setdefault((str(rec.host_id), str(rec.model), ck), []).append(rec)
    host_rank = {h: i for i, h in enumerate(hosts)}
    out: list[tuple[tuple[Any, ...], Comparison]] = []
    for (host, model, ck), recs in groups.items():
        study = build_study(recs, [host])
        comp = compare(study.of(host, model), study.failures_of(host, model), host, model,
                       context_label(contexts[ck]))  # fmt: skip
        if comp is not None:
            order = (host_rank.get(host, len(host_rank)), host, model_sort_key(model),
                     axes.sort_key(contexts[ck]), comp.label)  # fmt: skip
            out.append((order, comp))
    return [c for _, c in sorted(out, key=lambda oc: oc[0])]


def study_comparison(study: Study, host: str, model: str) -> Comparison | None:
    """TensorFlow against PyTorch for one host and model of a study, or None unless both have ok points."""
    wl = study.workload(host, model)
    failures = [(k, why) for k, why in study.failures_of(host, model) if wl is None or k.workload == wl]
    return compare(study.of(host, model), failures, host, model)
