"""``cpubench pages DATA_DIR... -o DIR``: a thread-scaling study as a Jekyll site, one page per host and model.

Why a second output beside ``cpubench report``: the report compares settings across hosts in one table; a scaling
study (threads x batch x execution x placement x memory) reads better as the Packrat project's CPU scaling pages:
per-model CSVs with Packrat's column names (so their plotting scripts and ours read the same files), latency and
throughput against threads per batch size, speedup, and the NUMA losses as heatmaps. The output folder builds with
``jekyll build`` as it is (``_config.yml`` and the layouts are written beside the pages), and ``summary.md`` says the
same in words for a reader without the plots.

How repeats are quoted: each statistic of a point (threads, batch, execution, placement, memory) is the median over
its ok repeats of that statistic per run; the plots' bands are the min and max across repeats. Only what the store
holds is shown: a section whose runs could not happen on this host (remote memory on one NUMA node, interleave on one
socket) says the records' reason instead of showing a plot, so an empty or failed plot is never mistaken for data.

Two frameworks: a point's key holds its framework, so a PyTorch eager point and a TensorFlow eager point stay apart.
A page that holds one framework reads (and names its files) as it always did; one that holds both names the framework
in every line, image and CSV (``<model>_pytorch_latency.csv``) and ends with a "TensorFlow vs PyTorch" part: the
ratio table and the latency and throughput comparisons of :mod:`cpubench.analysis.frameworks`
(``<model>-frameworks-<latency|throughput>-<batch>.png``), which the index links and the summary repeats.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cpubench.analysis import frameworks
from cpubench.render import report
from cpubench.results import store

# model -> (page title, file-name short name, short display name): Packrat's names for the models they published.
MODEL_NAMES: dict[str, tuple[str, str, str]] = {
    "resnet50": ("ResNet50", "resnet", "ResNet"),
    "inception3": ("InceptionV3", "inception", "Inception"),
}

CSV_KEYS = ["benchmark", "topology", "pinning", "allocator", "instance_id", "interop_threads", "intraop_threads",
            "batch_size"]  # fmt: skip
EXTRA_COLUMNS = ["p50", "p90", "p99", "repeats", "host", "execution"]
LATENCY_COLUMNS = [*CSV_KEYS, "latency(min)", "latency(avg)", "latency(max)", *EXTRA_COLUMNS]
THROUGHPUT_COLUMNS = [*CSV_KEYS, "throughput(min)", "throughput(avg)", "throughput(max)", *EXTRA_COLUMNS]

# Order in which a section picks the setting it shows when several have data (the first with ok points wins).
BASE_PLACEMENTS = ("sequential", "none", "interleave")
BASE_MEMORY = ("local", "default", "remote")
EXECUTIONS = frameworks.EXECUTIONS[frameworks.TENSORFLOW]


def model_title(model: str) -> str:
    return MODEL_NAMES.get(model, (model, model, model))[0]


def model_short(model: str) -> str:
    return MODEL_NAMES.get(model, (model, model, model))[1]


def model_display(model: str) -> str:
    return MODEL_NAMES.get(model, (model, model, model))[2]


# ------------------------------------------------------------------------------------------------------ the points


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
    framework: str = frameworks.TENSORFLOW

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
    thr_max: float
    thr_lo: float
    thr_hi: float
    # the engine's intra-op thread count at the framework's default (threads 0), when its records say
    threads_effective: int | None = None


def _median(xs: Iterable[float]) -> float:
    return float(statistics.median(list(xs)))


def _key(rec: Any) -> Key:
    p = rec.params
    return Key(
        host=str(rec.host_id),
        model=str(rec.model),
        execution=frameworks.execution_of(rec),
        placement=str(p.get("placement") or "none"),
        memory=str(p.get("memory") or "default"),
        inter=int(p.get("num_inter_threads") or 0),
        threads=int(p.get("num_intra_threads") or 0),
        batch=int(rec.batch_size or 0),
        framework=frameworks.framework_of(rec),
    )


def _effective_threads(recs: Sequence[Any]) -> int | None:
    """The intra-op count the engine reported, most common across repeats (a default is the same in each)."""
    counts = [int(c) for c in ((r.threads or {}).get("intra_effective") for r in recs)
              if isinstance(c, int) and not isinstance(c, bool) and c > 0]  # fmt: skip
    return max(set(counts), key=lambda c: (counts.count(c), -c)) if counts else None


def reduce_point(key: Key, recs: Sequence[Any]) -> Point:
    """Medians over repeats; the per-run throughput range comes from its fastest and slowest step (images per
    batch / step time), so ``throughput(min)`` pairs with ``latency(max)`` as in Packrat's files."""
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
        thr_max=_median(1000.0 * n / lat.min for n, lat in zip(images, lats, strict=True)),
        thr_lo=min(ips),
        thr_hi=max(ips),
        threads_effective=_effective_threads(recs),
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

    def models(self, host: str) -> list[str]:
        found = {k.model for k in self.points if k.host == host} | {m for h, m, _, _ in self.reasons if h == host}
        return sorted(found, key=report.model_sort_key)

    def of(self, host: str, model: str) -> list[Point]:
        return [p for k, p in self.points.items() if k.host == host and k.model == model]

    def failures_of(self, host: str, model: str) -> list[tuple[Key, str]]:
        return [(k, why) for k, why in self.failures if k.host == host and k.model == model]


def build_study(runs: Iterable[Any], hosts: Sequence[str]) -> Study:
    study = Study(hosts=list(hosts))
    groups: dict[Key, list[Any]] = {}
    for rec in runs:
        if not rec.model:
            continue
        key = _key(rec)
        if rec.ok and rec.latency_ms is not None and rec.images_per_sec:
            groups.setdefault(key, []).append(rec)
        else:
            study.failures.append((key, rec.reason or (f"{rec.status}, but no step times recorded" if rec.ok else
                                                       rec.status)))  # fmt: skip
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
    default), at the most common inter-op thread count, so every line of a plot varies in one axis only. Chosen per
    framework: one framework's choice never hides the other's points."""
    fws = sorted({p.key.framework for p in points}, key=lambda fw: frameworks.mode_sort_key((fw, "")))
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
    return [p for p in pts if p.key.inter == inter]


def executions(points: Iterable[Point]) -> list[str]:
    return _order((p.key.execution for p in points), EXECUTIONS)


def modes(points: Iterable[Point]) -> list[Mode]:
    """Every (framework, execution) of the points: TensorFlow's modes first, each framework's in declared order."""
    return sorted({p.key.mode for p in points}, key=frameworks.mode_sort_key)


def several_frameworks(points: Iterable[Point]) -> bool:
    return len({p.key.framework for p in points}) > 1


def mode_tag(mode: Mode, multi: bool) -> str:
    """A mode in file names: ``graph``, or ``pytorch-eager`` where the page holds both frameworks."""
    return f"{mode[0]}-{mode[1]}" if multi else mode[1]


def mode_label(mode: Mode, multi: bool) -> str:
    """A mode in titles and legends: ``graph``, or ``PyTorch eager`` where the page holds both frameworks."""
    return f"{frameworks.display(mode[0])} {mode[1]}" if multi else mode[1]


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
    framework: str = frameworks.TENSORFLOW

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


# ---------------------------------------------------------------------------------------------------------- CSVs


def _fmt(x: float) -> str:
    return f"{x:.4f}"


def csv_names(model: str, points: Sequence[Point]) -> list[str]:
    """``<model>_latency.csv`` and ``<model>_throughput.csv``; where both frameworks ran, a pair per framework
    (``<model>_pytorch_latency.csv``), so each file keeps Packrat's columns and no row is ambiguous."""
    if not several_frameworks(points):
        return [f"{model}_{kind}.csv" for kind in ("latency", "throughput")]
    fws = dict.fromkeys(fw for fw, _ in modes(points))
    return [f"{model}_{fw}_{kind}.csv" for fw in fws for kind in ("latency", "throughput")]


def write_csvs(folder: Path, model: str, points: Sequence[Point]) -> list[Path]:
    """The files of :func:`csv_names`: Packrat's columns first, then ours."""
    if several_frameworks(points):
        return [path for fw in dict.fromkeys(fw for fw, _ in modes(points))
                for path in _write_csvs(folder, f"{model}_{fw}", model, [p for p in points
                                                                          if p.key.framework == fw])]  # fmt: skip
    return _write_csvs(folder, model, model, points)


def _write_csvs(folder: Path, stem: str, model: str, points: Sequence[Point]) -> list[Path]:
    rows = sorted(points, key=lambda p: (frameworks.mode_sort_key(p.key.mode), p.key.placement, p.key.memory,
                                         p.key.inter, p.key.threads, p.key.batch))  # fmt: skip
    paths = []
    for kind, columns in (("latency", LATENCY_COLUMNS), ("throughput", THROUGHPUT_COLUMNS)):
        path = folder / f"{stem}_{kind}.csv"
        with path.open("w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(columns)
            for p in rows:
                k = p.key
                keys = [model, k.placement, "affinity" if k.placement != "none" else "none", k.memory, 0, k.inter,
                        k.threads, k.batch]  # fmt: skip
                stats = (p.lat_min, p.lat_avg, p.lat_max) if kind == "latency" else (p.thr_min, p.thr_avg, p.thr_max)
                w.writerow([*keys, *map(_fmt, stats), _fmt(p.p50), _fmt(p.p90), _fmt(p.p99), p.repeats, k.host,
                            k.execution])  # fmt: skip
        paths.append(path)
    return paths


# --------------------------------------------------------------------------------------------------------- pages


@dataclass
class Image:
    file: str
    alt: str


@dataclass
class Section:
    """A heading and what goes under it: images, or a line saying why there are none."""

    heading: str
    images: list[Image] = field(default_factory=list)
    note: str | None = None
    body: list[str] = field(default_factory=list)  # markdown lines before the images (a table)

    def markdown(self) -> list[str]:
        out = [self.heading, "", *self.body]
        if self.images:
            out.append('<p float="left">')
            out += [f'  <img src="./{i.file}" alt="{i.alt}" width="100%"/>' for i in self.images]
            out += ["</p>", ""]
        elif self.note:
            out += [self.note, ""]
        return out


def _why_not(study: Study, host: str, model: str, axis: str, value: str, base: str) -> str:
    """The records' own reason when the compared value (interleave, remote) has only records that are not ok
    (skipped "n/a: one NUMA node"); else that the comparison was not measured. The base value's reasons are not
    looked at: its records that did not run are the remote ones of a sequential placement, whose reason is about
    memory, not placement."""
    reasons = study.reasons.get((host, model, axis, value))
    if reasons:
        return "; ".join(reasons)
    return f"not measured: no ok runs of both {axis} {base} and {value} for this model on this host"


def render_page(model: str, sections: Sequence[Section]) -> str:
    lines = ["---", "layout: scalebench", f'title: "{model_title(model)}"', "---", ""]
    for s in sections:
        lines += s.markdown()
    return "\n".join(lines).rstrip() + "\n"


def host_page(study: Study, host: str, model: str, folder: Path, plots: bool) -> list[Section]:
    """Draw the plots of one host and model into ``folder`` and return the page's sections."""
    from cpubench.render import siteplots as pagesplots

    short, disp = model_short(model), model_display(model)
    points = study.of(host, model)
    base = base_points(points)
    page_modes = modes(base)
    batches = sorted({p.key.batch for p in base})
    # Other hosts' base points of this model, drawn beside this host's (dashed) when several hosts are given.
    others = {h: base_points(study.of(h, model)) for h in study.hosts if h != host}
    others = {h: pts for h, pts in others.items() if pts}
    label_host = bool(others)
    # File names name the framework where this page holds both; legends also where another host's lines bring one.
    multi = several_frameworks(points)
    multi_label = several_frameworks([*base, *(p for pts in others.values() for p in pts)])

    def tag(mode: Mode) -> str:
        return mode_tag(mode, multi)

    def label(mode: Mode) -> str:
        return mode_label(mode, multi)

    def lines_for(batch: int, kind: str) -> list[pagesplots.Line]:
        out = []
        for h, pts in [(host, base), *others.items()]:
            for mode in modes(pts):
                s = series(pts, mode, batch)
                if not s:
                    continue
                ys = [p.p50 for p in s] if kind == "latency" else [p.thr_avg for p in s]
                lo = [p.p50_lo for p in s] if kind == "latency" else [p.thr_lo for p in s]
                hi = [p.p50_hi for p in s] if kind == "latency" else [p.thr_hi for p in s]
                ex = mode_label(mode, multi_label)
                out.append(pagesplots.Line(f"{h} {ex}" if label_host else ex, [p.key.threads for p in s], ys, lo, hi,
                                           dashed=h != host))  # fmt: skip
        return out

    sections: list[Section] = []
    empty = "no ok runs of this model on this host"
    for kind, title, unit in (("latency", "Latency", "ms per batch, p50"), ("throughput", "Throughput", "images/sec")):
        per_batch = Section(f"# {title} (Sequential)")
        sections.append(per_batch)
        pb = Section(f"## {title} Per Batch", note=empty)
        for b in batches:
            name = f"{short}-{kind}-{b}.png"
            if plots:
                pagesplots.lines(folder / name, f"{model_title(model)} {title.lower()}, batch {b}", "threads", unit,
                                 lines_for(b, kind))  # fmt: skip
            pb.images.append(Image(name, f"{disp} {title} BS={b}"))
        po = Section(f"## {title} Per Optimization", note=empty)
        for mode in page_modes:
            name = f"{short}-{kind}-opt-{tag(mode)}.png"
            ls = []
            for b in batches:
                s = series(base, mode, b)
                if s:
                    ys = [p.p50 for p in s] if kind == "latency" else [p.thr_avg for p in s]
                    ls.append(pagesplots.Line(f"batch {b}", [p.key.threads for p in s], ys))
            if plots:
                pagesplots.lines(folder / name, f"{model_title(model)} {title.lower()}, {label(mode)}", "threads",
                                 unit, ls)  # fmt: skip
            po.images.append(Image(name, f"{disp} {title} {label(mode)}"))
        if kind == "throughput":
            for mode in page_modes:
                name = f"{short}-throughput-batch-{tag(mode)}.png"
                ls = []
                for t in sorted({p.key.threads for p in base if p.key.mode == mode}):
                    s = sorted((p for p in base if p.key.mode == mode and p.key.threads == t),
                               key=lambda p: p.key.batch)  # fmt: skip
                    ls.append(pagesplots.Line(f"{t} threads", [p.key.batch for p in s], [p.thr_avg for p in s]))
                if plots:
                    pagesplots.lines(folder / name, f"{model_title(model)} throughput by batch size, {label(mode)}",
                                     "batch size", unit, ls, log2x=True)  # fmt: skip
                po.images.append(Image(name, f"{disp} Throughput by batch size {label(mode)}"))
        sections += [pb, po]
        if kind == "throughput":
            sp = Section("## Speedup", note="n/a: no one-thread runs to divide by")
            for mode in page_modes:
                ls, top = [], 1
                for b in batches:
                    s = series(base, mode, b)
                    su = speedups(s)
                    if su:
                        ts = sorted(su)
                        ls.append(pagesplots.Line(f"batch {b}", ts, [su[t] for t in ts]))
                        top = max(top, *ts)
                if not ls:
                    continue
                ls.append(pagesplots.Line("ideal", [1, top], [1.0, float(top)], dashed=True, color="0.5"))
                name = f"{short}-speedup-{tag(mode)}.png"
                if plots:
                    pagesplots.lines(folder / name, f"{model_title(model)} speedup over one thread, {label(mode)}",
                                     "threads", "speedup", ls)  # fmt: skip
                sp.images.append(Image(name, f"{disp} Speedup {label(mode)}"))
            sections.append(sp)

    # The NUMA sections: interleave vs sequential under one heading, remote vs local under two.
    numa = Section("# NUMA Effects")
    sections.append(numa)
    for kind in ("latency", "throughput"):
        for m in losses(points, "placement", "sequential", "interleave", kind):
            name = f"{short}-numa-{kind}-{tag(m.mode)}.png"
            if plots:
                pagesplots.heatmap(folder / name, f"{model_title(model)} % {kind} loss, interleave vs sequential, "
                                   f"{label(m.mode)}", m)  # fmt: skip
            numa.images.append(Image(name, f"{disp} % {kind.title()} Loss Interleave vs Sequential {label(m.mode)}"))
    if not numa.images:
        numa.note = _why_not(study, host, model, "placement", "interleave", "sequential")
    for kind, title in (("latency", "Latency"), ("throughput", "Throughput")):
        sections.append(Section(f"# {title} (Remote vs Local)"))
        sec = Section(f"## % {title} Loss Per Batch")
        sections.append(sec)
        for m in losses(points, "memory", "local", "remote", kind):
            name = f"{short}-remote-{kind}-{tag(m.mode)}.png"
            if plots:
                pagesplots.heatmap(folder / name, f"{model_title(model)} % {kind} loss, remote vs local, "
                                   f"{label(m.mode)}", m)  # fmt: skip
            sec.images.append(Image(name, f"{disp} % {title} Loss Remote vs Local {label(m.mode)}"))
        if not sec.images:
            sec.note = _why_not(study, host, model, "memory", "remote", "local")
    sections += framework_sections(study, host, model, folder, plots)
    return sections


def comparison(study: Study, host: str, model: str) -> frameworks.Comparison | None:
    """TensorFlow against PyTorch for one host and model of the study, or None unless both have ok points."""
    return frameworks.compare(study.of(host, model), study.failures_of(host, model), host, model)


def framework_plot_name(model: str, kind: str, batch: int) -> str:
    return f"{model_short(model)}-frameworks-{kind}-{batch}.png"


def framework_sections(study: Study, host: str, model: str, folder: Path, plots: bool) -> list[Section]:
    """The page's "TensorFlow vs PyTorch" part (as Packrat's "Comparison"): the ratio table with each framework's
    best mode and thread count, then latency and throughput against threads per batch size, a line per framework and
    mode. Nothing where the page holds one framework."""
    comp = comparison(study, host, model)
    if comp is None:
        return []
    head = Section(f"# {frameworks.TITLE}", body=comp.markdown())
    if comp.note:  # both ran, never at one setting: the note says so once, with no plots under it
        return [head]
    out = [head]
    files = frameworks.plot_files(comp, lambda kind, b: framework_plot_name(model, kind, b))
    for kind, (title, _) in frameworks.KINDS.items():
        sec = Section(f"## {title} comparison", note="n/a: no batch size with ok points of a framework")
        for k, b, name in files:
            if k != kind:
                continue
            if plots:
                comp.draw(kind, b, folder / name)
            sec.images.append(Image(name, f"{model_display(model)} {title} {frameworks.TITLE} BS={b}"))
        out.append(sec)
    return out


# ------------------------------------------------------------------------------------------------------ the site

CONFIG_YML = """\
# Written by `cpubench pages`: this folder builds with `jekyll build` as it is.
title: cpubench scaling pages
markdown: kramdown
"""

DEFAULT_HTML = """\
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{{ page.title | default: site.title }}</title>
</head>
<body>
{{ content }}
</body>
</html>
"""

# The script records how many images loaded, so a headless browser's DOM dump tells a broken image from a good one.
SCALEBENCH_HTML = """\
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{{ page.title }}</title>
  <style>body { max-width: 60em; margin: auto; font-family: sans-serif; }</style>
</head>
<body>
<h1 class="page-title">{{ page.title }}</h1>
{{ content }}
<script>
  window.addEventListener("load", function () {
    var images = Array.prototype.slice.call(document.images);
    var loaded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
    document.body.dataset.imagesLoaded = loaded + "/" + images.length;
  });
</script>
</body>
</html>
"""


# The anchor kramdown gives the "# TensorFlow vs PyTorch" heading, so the index can link the part of a page.
FRAMEWORKS_ANCHOR = "tensorflow-vs-pytorch"


def index_page(study: Study, pages: dict[tuple[str, str], str]) -> str:
    models = sorted({m for _, m in pages}, key=report.model_sort_key)
    hosts = [h for h in study.hosts if any(h == ph for ph, _ in pages)]
    lines = ["---", "layout: default", 'title: "CPU scaling"', "---", "", "# CPU scaling", ""]
    lines.append("| host | " + " | ".join(model_title(m) for m in models) + " |")
    lines.append("| --- |" + " --- |" * len(models))
    compared = False
    for h in hosts:
        cells = []
        for m in models:
            if (h, m) not in pages:
                cells.append("—")
                continue
            cell = f"[{model_title(m)}](./{pages[(h, m)]})"
            if comparison(study, h, m) is not None:
                compared = True
                cell += f" ([{frameworks.TITLE}](./{pages[(h, m)]}#{FRAMEWORKS_ANCHOR}))"
            cells.append(cell)
        lines.append(f"| {h} | " + " | ".join(cells) + " |")
    lines += ["", "Per-model CSVs sit beside each page (`<model>_latency.csv`, `<model>_throughput.csv`"
              + ("; where both frameworks ran, one pair per framework: `<model>_pytorch_latency.csv`..." if compared
                 else "") + ").", ""]  # fmt: skip
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------- summary


def _x(v: float | None) -> str:
    return "n/a" if v is None else f"x{v:.2f}"


def summary_rows(points: Sequence[Point]) -> list[list[str]]:
    """Per execution and batch size of the base points: the best thread count by throughput and its figures, the
    efficiency at the most threads measured, and the gains of doubling threads 2->4 and 8->16."""
    base = base_points(points)
    multi = several_frameworks(points)
    rows = []
    for mode in modes(base):
        ex = mode_label(mode, multi)
        for b in sorted({p.key.batch for p in base if p.key.mode == mode}):
            s = series(base, mode, b)
            best = max(s, key=lambda p: p.thr_avg)
            su = speedups(s)
            tmax = s[-1].key.threads
            eff = f"{su[tmax] / tmax * 100:.0f}% at {tmax}" if su and tmax > 0 else "n/a"
            g24 = su[4] / su[2] if su and 2 in su and 4 in su else None
            g816 = su[16] / su[8] if su and 8 in su and 16 in su else None
            rows.append([ex, str(b), str(best.key.threads), f"{best.p50:.2f}", f"{best.p99:.2f}",
                         f"{best.thr_avg:.2f}", eff, f"{_x(g24)} / {_x(g816)}"])  # fmt: skip
    return rows


def summary_markdown(study: Study, hosts: Sequence[str]) -> str:
    lines = ["# CPU scaling summary", "",
             "Medians over repeats, at the sequential placement with local memory where measured. Best threads: the "
             "thread count with the highest throughput. Efficiency: speedup over one thread divided by the threads, "
             "at the most threads measured. Doubling gains: speedup(4)/speedup(2) against speedup(16)/speedup(8); "
             "a second figure well under the first is where returns diminish.", ""]  # fmt: skip
    head = ["execution", "batch", "best threads", "latency p50 (ms)", "latency p99 (ms)", "images/sec",
            "efficiency", "doubling 2→4 / 8→16"]  # fmt: skip
    for h in hosts:
        for m in study.models(h):
            lines += [f"## {h}: {model_title(m)}", ""]
            rows = summary_rows(study.of(h, m))
            if not rows:
                lines += ["no ok runs", ""]
                continue
            lines.append("| " + " | ".join(head) + " |")
            lines.append("|" + " --- |" * len(head))
            lines += ["| " + " | ".join(r) + " |" for r in rows]
            lines.append("")
            comp = comparison(study, h, m)
            if comp is not None:
                lines += [f"### {frameworks.TITLE}", "", *comp.markdown()]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------- build


@dataclass
class PagesFiles:
    pages: list[Path] = field(default_factory=list)
    csvs: list[Path] = field(default_factory=list)
    index: Path | None = None
    summary: Path | None = None


def build_pages(data: Iterable[str | Path], out: str | Path, plots: bool = True) -> tuple[PagesFiles, Any]:
    """Read the host folders and write the site into ``out``; return what was written and the merged runs."""
    merged = report.merge(data)
    hosts = merged.host_ids
    study = build_study((r.rec for r in merged.runs), hosts)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    files = PagesFiles()
    pages: dict[tuple[str, str], str] = {}
    for h in study.hosts:
        for m in study.models(h):
            folder = store.host_dir(root, h)  # host ids are checked folder names
            folder.mkdir(parents=True, exist_ok=True)
            files.csvs += write_csvs(folder, m, study.of(h, m))
            page = folder / f"{m}.md"
            sections = host_page(study, h, m, folder, plots)
            if not plots:  # a page never names an image that was not drawn
                names = csv_names(m, study.of(h, m))
                for sec in sections:
                    if sec.images:
                        sec.images, sec.note = (
                            [],
                            f"plots not drawn (--no-plots): see {', '.join(names[:-1])} and {names[-1]}",
                        )
            page.write_text(render_page(m, sections))
            files.pages.append(page)
            pages[(h, m)] = f"{h}/{m}.html"
    (root / "_layouts").mkdir(exist_ok=True)
    (root / "_layouts" / "default.html").write_text(DEFAULT_HTML)
    (root / "_layouts" / "scalebench.html").write_text(SCALEBENCH_HTML)
    (root / "_config.yml").write_text(CONFIG_YML)
    files.index = root / "index.md"
    files.index.write_text(index_page(study, pages))
    files.summary = root / "summary.md"
    files.summary.write_text(summary_markdown(study, study.hosts))
    return files, merged


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", nargs="+", help="host folders (with host.json and runs.jsonl) or folders of them")
    parser.add_argument("-o", "--out", default="pages", help="output folder, a Jekyll site (default: pages)")
    parser.add_argument("--no-plots", action="store_true", help="write CSVs, pages and summary without drawing")


def main(args: argparse.Namespace) -> int:
    try:
        files, merged = build_pages(args.data, args.out, plots=not args.no_plots)
    except (report.MergeError, store.StoreError, ValueError) as e:
        print(f"cpubench pages: error: {e}", file=sys.stderr)
        return 2
    for w in merged.warnings:
        if w not in merged.store_warnings:
            print(f"cpubench pages: warning: {w}", file=sys.stderr)
    print(f"wrote {len(files.pages)} page(s), {len(files.csvs)} CSV(s), {files.index} and {files.summary}")
    return 0
