"""TensorFlow against PyTorch on one host and model: per batch size, each framework's best (execution mode,
intra-op thread count), the ratios of their throughput and latency, and the lines of the plots that show them.

Why one module: ``cpubench pages`` (a scaling study, one page per host and model) and ``cpubench report`` (the
classic matrices, ``summary.md``) both show this comparison; computed here once, they cannot disagree on which point
is a framework's best or on which way a ratio goes. It is also the one place that knows what the frameworks are
(their names, execution modes and default mode), so the pages' keys and this comparison read a record alike.

How points are chosen: the two frameworks are compared at one setting of the axes the comparison does not vary
(placement, memory, inter-op threads) that both measured, the first in the pages' preference order. A framework's
best point at a batch size is the one with the highest median throughput over all its execution modes and thread
counts there; its latency is that point's p50 (ms per batch). The ratios are PyTorch over TensorFlow for throughput
and TensorFlow over PyTorch for latency, so above 1.00x means PyTorch is faster either way. A batch size where a
framework has no ok point gets n/a with the reasons its records give, never a ratio against 0 or a neighbour's value.

Threads: a point at the framework's default (``num_intra_threads`` 0) is placed at the count the engine reported
(``threads["intra_effective"]``), so the classic matrices, which run at the default, still plot (one point a line).

Imports: :mod:`cpubench.render.site` imports this module for the framework facts; this module reads the pages' points
and
imports :mod:`cpubench.render.site` where it uses them, so neither waits on the other at import time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cpubench.render import tables
from cpubench.spec import axes
from tf_cnn_benchmarks import flags as engine_flags

if TYPE_CHECKING:
    from cpubench.render.site import Key, Point

# The comparison's two sides, in table and plot order: the ratios divide the second by the first.
TENSORFLOW, PYTORCH = "tensorflow", "pytorch"
FRAMEWORKS = (TENSORFLOW, PYTORCH)
NAMES = {TENSORFLOW: "TensorFlow", PYTORCH: "PyTorch"}
# Each framework's execution modes, as the engine declares them; the first is the mode of a record that names none.
EXECUTIONS: dict[str, tuple[str, ...]] = engine_flags.EXECUTIONS
# Axes the comparison varies (or that name the side): every other axis must be equal for two runs to be compared.
# xla_compile is TensorFlow's older spelling of execution xla (execution_of reads it as that mode).
VARIED = frozenset({"framework", "execution", "xla_compile", "num_intra_threads", "model", "batch_size"})
# kind -> (title, y axis), for both plots and both commands
KINDS: dict[str, tuple[str, str]] = {"latency": ("Latency", "ms per batch, p50"),
                                     "throughput": ("Throughput", "images/sec")}  # fmt: skip
TITLE = f"{NAMES[TENSORFLOW]} vs {NAMES[PYTORCH]}"
LONE_MARKER = 7.0  # marker size of a line of one point (a classic matrix at the default threads), to be seen


# ------------------------------------------------------------------------------------------ what the records say


def framework_of(rec: Any) -> str:
    """The record's framework (its own field; ``params["framework"]`` may lag behind it). Old records: TensorFlow."""
    return str(getattr(rec, "framework", None) or TENSORFLOW)


def default_execution(framework: str) -> str:
    """The mode a framework runs in when a record names none: graph for TensorFlow, eager for PyTorch."""
    return EXECUTIONS.get(framework, EXECUTIONS[TENSORFLOW])[0]


def execution_of(rec: Any) -> str:
    """The record's execution mode; a TensorFlow graph run with ``xla_compile`` (the older switch) ran as xla, as the
    engine runs it."""
    params = rec.params or {}
    fw = framework_of(rec)
    ex = str(params.get("execution") or default_execution(fw))
    return "xla" if fw == TENSORFLOW and ex == "graph" and params.get("xla_compile") is True else ex


def display(framework: str) -> str:
    return NAMES.get(framework, framework)


def mode_sort_key(mode: tuple[str, str]) -> tuple[int, str, int, str]:
    """Known frameworks first (TensorFlow, PyTorch), then each framework's modes in declared order; others by name."""
    fw, ex = mode
    rank = FRAMEWORKS.index(fw) if fw in FRAMEWORKS else len(FRAMEWORKS)
    known = EXECUTIONS.get(fw, ())
    return (rank, fw, known.index(ex) if ex in known else len(known), ex)


def threads_of(p: Point) -> int:
    """The intra-op thread count a point ran with: the one asked for, else the engine's count at the default (0 when
    the record did not say)."""
    return p.key.threads or p.threads_effective or 0


def threads_text(p: Point) -> str:
    if p.key.threads:
        return f"{p.key.threads} threads"
    if p.threads_effective:
        return f"default threads ({p.threads_effective})"
    return "default threads (count not recorded)"


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

    def intro(self) -> str:
        where = f" Compared at {self.setting.text()}, measured by both." if self.setting else ""
        return (f"Per batch size, each framework's best execution mode and intra-op thread count by median images/sec "
                f"over its ok repeats; latency is that point's p50 (ms per batch). Above 1.00x PyTorch is faster: "
                f"throughput PyTorch/TensorFlow, latency TensorFlow/PyTorch.{where}")  # fmt: skip

    def table(self) -> str:
        """The ratio table (markdown): one row per batch size."""
        tf, pt = display(TENSORFLOW), display(PYTORCH)
        headers = ["batch", f"{tf} best", f"{tf} images/sec", f"{tf} p50 (ms)", f"{pt} best", f"{pt} images/sec",
                   f"{pt} p50 (ms)", f"throughput {pt}/{tf}", f"latency {tf}/{pt}"]  # fmt: skip
        body = []
        for r in self.rows:
            cells: list[str] = [str(r.batch)]
            for fw in FRAMEWORKS:
                p = r.best.get(fw)
                cells += ([f"{p.key.execution}, {threads_text(p)}", f"{p.thr_avg:.2f}", f"{p.p50:.2f}"] if p else
                          ["n/a", "n/a", "n/a"])  # fmt: skip
            thr, lat = r.throughput_ratio, r.latency_ratio
            cells.append(f"{thr:.2f}x" if thr is not None else r.reason or "n/a")
            cells.append(f"{lat:.2f}x" if lat is not None else "n/a")
            body.append(cells)
        return tables.markdown_table(headers, body, ["right", *["left", "right", "right"] * 2, "right", "right"])

    def markdown(self) -> list[str]:
        """The intro and the table, or the note: the lines a page or ``summary.md`` puts under its heading."""
        if self.note:
            return [self.note, ""]
        return [self.intro(), "", self.table(), ""]

    def draw(self, kind: str, batch: int, path: Path) -> Path:
        """The PNG of ``kind`` (latency or throughput) against threads at ``batch``: a line per framework and mode,
        PyTorch's dashed, with the min-max band across repeats; a line of one point is its marker."""
        from cpubench.render import siteplots as pagesplots  # lazy: matplotlib only when plots are drawn

        title, unit = KINDS[kind]
        data = []
        for ln in self.lines.get(batch, []):
            pts = ln.points
            ys = [p.p50 for p in pts] if kind == "latency" else [p.thr_avg for p in pts]
            lo = [p.p50_lo for p in pts] if kind == "latency" else [p.thr_lo for p in pts]
            hi = [p.p50_hi for p in pts] if kind == "latency" else [p.thr_hi for p in pts]
            size = LONE_MARKER if len(pts) == 1 else pagesplots.Line.markersize
            data.append(pagesplots.Line(ln.label, ln.threads, ys, lo, hi, ln.framework == PYTORCH, markersize=size))
        where = f" ({self.label})" if self.label else ""
        return pagesplots.lines(path, f"{self.model} {title.lower()}, {TITLE}, batch {batch}{where}",
                                "intra-op threads", unit, data)  # fmt: skip


def common_setting(points: Sequence[Point]) -> Setting | None:
    """The setting both frameworks measured, first in the pages' preference (sequential placement, local memory),
    then the one with the most points; None when they share none."""
    from cpubench.render import site as pages

    sides = [{_setting(p.key) for p in points if p.key.framework == fw} for fw in FRAMEWORKS]
    common = set.intersection(*sides)
    if not common:
        return None
    counts = {s: sum(1 for p in points if _setting(p.key) == s) for s in common}

    def rank(s: Setting) -> tuple[Any, ...]:
        pl, mem = pages.BASE_PLACEMENTS, pages.BASE_MEMORY
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
    from cpubench.render import report
    from cpubench.render import site as pages

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
        study = pages.build_study(recs, [host])
        comp = compare(study.of(host, model), study.failures_of(host, model), host, model,
                       context_label(contexts[ck]))  # fmt: skip
        if comp is not None:
            order = (host_rank.get(host, len(host_rank)), host, report.model_sort_key(model),
                     axes.sort_key(contexts[ck]), comp.label)  # fmt: skip
            out.append((order, comp))
    return [c for _, c in sorted(out, key=lambda oc: oc[0])]


def plot_files(comp: Comparison, name: Callable[[str, int], str]) -> list[tuple[str, int, str]]:
    """(kind, batch, file name) of every plot the comparison has, latency first, in batch order."""
    return [(kind, b, name(kind, b)) for kind in KINDS for b in comp.plot_batches]
