"""One page of ``cpubench pages``: a host and model's CSVs, and its sections of plots (drawn here) or of reasons.

Why apart from :mod:`cpubench.render.site`: the site is the index, the layouts and the summary around the pages;
a page is the bulk of the work (Packrat's sections: latency and throughput per batch and per mode, speedup, the NUMA
losses, and the "TensorFlow vs PyTorch" part), and reads the study's points (:mod:`cpubench.analysis.points`)
only. A section whose runs could not happen on this host says the records' reason instead of showing a plot, so an
empty or failed plot is never mistaken for data.

Two frameworks: a page that holds one framework reads (and names its files) as it always did; one that holds both
names the framework in every line, image and CSV (``<model>_pytorch_latency.csv``) and ends with a "TensorFlow vs
PyTorch" part: the ratio table and the latency and throughput comparisons of :mod:`cpubench.render.frameworks`
(``<model>-frameworks-<latency|throughput>-<batch>.png``).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cpubench.analysis import engines
from cpubench.analysis.frameworks import study_comparison
from cpubench.analysis.points import (
    Mode,
    Point,
    Study,
    base_points,
    losses,
    modes,
    series,
    several_frameworks,
    speedups,
)
from cpubench.render import escape, frameworks
from cpubench.render.escape import front_matter_title, html_attr, md_text
from cpubench.results import store

# model -> (page title, file-name short name, short display name): Packrat's names for the models they published.
MODEL_NAMES: dict[str, tuple[str, str, str]] = {
    "resnet50": ("ResNet50", "resnet", "ResNet"),
    "inception3": ("InceptionV3", "inception", "Inception"),
}

# Packrat's layout first, so its tools (and ``cpubench tune --profile``) read these files: ``benchmark`` is
# ``<model>_<framework>_<execution>`` (Packrat's names end in their optimisation, ``_none`` / ``_script``),
# ``topology`` the placement, ``allocator`` the memory allocator (the allocator axis; ``default`` is glibc's),
# and the throughput file has Packrat's single ``throughput`` column (the average) beside the range. Ours follow;
# the memory binding, which once sat in ``allocator``, has a column of its own.
CSV_KEYS = ["benchmark", "topology", "pinning", "allocator", "instance_id", "interop_threads", "intraop_threads",
            "batch_size"]  # fmt: skip
EXTRA_COLUMNS = ["p50", "p90", "p99", "repeats", "host", "execution", "framework", "memory"]
LATENCY_COLUMNS = [*CSV_KEYS, "latency(min)", "latency(avg)", "latency(max)", *EXTRA_COLUMNS]
THROUGHPUT_COLUMNS = [*CSV_KEYS, "throughput(min)", "throughput(avg)", "throughput(max)", "throughput", *EXTRA_COLUMNS]
DEFAULT_ALLOCATOR = "default"


def model_title(model: str) -> str:
    return MODEL_NAMES.get(model, (model, model, model))[0]


def model_short(model: str) -> str:
    return MODEL_NAMES.get(model, (model, model, model))[1]


def model_display(model: str) -> str:
    return MODEL_NAMES.get(model, (model, model, model))[2]


def mode_tag(mode: Mode, multi: bool) -> str:
    """A mode in file names: ``graph``, or ``pytorch-eager`` where the page holds both frameworks. Both parts come
    from records, so both pass :func:`cpubench.results.store.file_part` (text from data is never a path)."""
    fw, ex = store.file_part(mode[0], "framework"), store.file_part(mode[1], "execution")
    return f"{fw}-{ex}" if multi else ex


def check_names(model: str, points: Sequence[Point]) -> None:
    """Refuse (:class:`cpubench.results.store.FileNameError`) a page whose file names would hold text from data
    that is not a plain name: the model, its short name, and every framework and execution mode of its points.
    Called for every page before anything is written, so a refused folder leaves no half-written site."""
    store.file_part(model, "model")
    store.file_part(model_short(model), "model")
    for fw, ex in modes(points):
        store.file_part(fw, "framework")
        store.file_part(ex, "execution")


def mode_label(mode: Mode, multi: bool) -> str:
    """A mode in titles and legends: ``graph``, or ``PyTorch eager`` where the page holds both frameworks."""
    return f"{engines.display(mode[0])} {mode[1]}" if multi else mode[1]


# ---------------------------------------------------------------------------------------------------------- CSVs


def _fmt(x: float | None) -> str:
    """A figure with four decimals; an empty cell where there is none (a rate with no finite bound), never a 0."""
    return "" if x is None else f"{x:.4f}"


def csv_names(model: str, points: Sequence[Point]) -> list[str]:
    """``<model>_latency.csv`` and ``<model>_throughput.csv``; where both frameworks ran, a pair per framework
    (``<model>_pytorch_latency.csv``), so each file keeps Packrat's columns and no row is ambiguous."""
    if not several_frameworks(points):
        return [f"{store.file_part(model, 'model')}_{kind}.csv" for kind in ("latency", "throughput")]
    fws = dict.fromkeys(store.file_part(fw, "framework") for fw, _ in modes(points))
    return [f"{store.file_part(model, 'model')}_{fw}_{kind}.csv" for fw in fws for kind in ("latency", "throughput")]


def write_csvs(folder: Path, model: str, points: Sequence[Point]) -> list[Path]:
    """The files of :func:`csv_names`: Packrat's columns first, then ours."""
    if several_frameworks(points):
        return [path for fw in dict.fromkeys(fw for fw, _ in modes(points))
                for path in _write_csvs(folder, f"{model}_{fw}", model, [p for p in points
                                                                          if p.key.framework == fw])]  # fmt: skip
    return _write_csvs(folder, model, model, points)


def _write_csvs(folder: Path, stem: str, model: str, points: Sequence[Point]) -> list[Path]:
    rows = sorted(points, key=lambda p: (engines.mode_sort_key(p.key.mode), p.key.placement, p.key.memory,
                                         p.key.inter, p.key.threads, p.key.batch))  # fmt: skip
    paths = []
    for kind, columns in (("latency", LATENCY_COLUMNS), ("throughput", THROUGHPUT_COLUMNS)):
        path = folder / f"{store.file_part(stem, 'CSV name')}_{kind}.csv"
        with path.open("w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(columns)
            for p in rows:
                k = p.key
                keys = [f"{model}_{k.framework}_{k.execution}", k.placement,
                        "affinity" if k.placement != "none" else "none", k.allocator or DEFAULT_ALLOCATOR, 0, k.inter,
                        k.threads, k.batch]  # fmt: skip
                data = [p.repeats, k.host, k.execution, k.framework, k.memory]
                stats = (p.lat_min, p.lat_avg, p.lat_max) if kind == "latency" else (p.thr_min, p.thr_avg, p.thr_max,
                                                                                     p.thr_avg)  # fmt: skip
                w.writerow([*map(escape.csv_cell, keys), *map(_fmt, stats), _fmt(p.p50), _fmt(p.p90), _fmt(p.p99),
                            *map(escape.csv_cell, data)])  # fmt: skip
        paths.append(path)
    return paths


# --------------------------------------------------------------------------------------------------------- pages


@dataclass
class Image:
    file: str
    alt: str


@dataclass
class Section:
    """A heading and what goes under it: images, or a line saying why there are none.

    ``note`` and the images' ``alt`` are raw text (from data, often: a record's reason, a mode's name) and are escaped
    where they land (:mod:`cpubench.render.escape`); ``body`` is Markdown already rendered safely (a table); the
    heading is ours."""

    heading: str
    images: list[Image] = field(default_factory=list)
    note: str | None = None
    body: list[str] = field(default_factory=list)  # markdown lines before the images (a table)

    def markdown(self) -> list[str]:
        out = [self.heading, "", *self.body]
        if self.images:
            out.append('<p float="left">')
            out += [
                f'  <img src="./{store.file_part(i.file, "image")}" alt="{html_attr(i.alt)}" width="100%"/>'
                for i in self.images
            ]
            out += ["</p>", ""]
        elif self.note:
            out += [md_text(self.note), ""]
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
    lines = ["---", "layout: scalebench", f"title: {front_matter_title(model_title(model))}", "---", ""]
    for s in sections:
        lines += s.markdown()
    return "\n".join(lines).rstrip() + "\n"


def host_page(study: Study, host: str, model: str, folder: Path, plots: bool) -> list[Section]:
    """Draw the plots of one host and model into ``folder`` and return the page's sections."""
    from cpubench.render import siteplots as pagesplots

    short, disp = store.file_part(model_short(model), "model"), model_display(model)
    points = study.of(host, model)
    base = base_points(points)
    page_modes = modes(base)
    batches = sorted({p.key.batch for p in base})
    # Other hosts' base points of this model in the same workload, drawn beside this host's (dashed) when several
    # hosts are given.
    workloads = study.workloads(host, model)
    wl = workloads[0] if workloads else None
    others = {h: base_points(study.of(h, model, wl)) for h in study.hosts if h != host}
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
    if len(workloads) > 1:
        also = ", ".join(workloads[1:])
        sections.append(Section("# Runs Shown", note=f"The runs of setting {wl}. This host also ran {model} as {also}: "
                                f"the report (cpubench report) shows those."))  # fmt: skip
    why = study.why_none(host, model)
    empty = "no ok runs of this model on this host" + (f": {why}" if why else "")
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


def framework_plot_name(model: str, kind: str, batch: int) -> str:
    return f"{store.file_part(model_short(model), 'model')}-frameworks-{kind}-{batch}.png"


def framework_sections(study: Study, host: str, model: str, folder: Path, plots: bool) -> list[Section]:
    """The page's "TensorFlow vs PyTorch" part (as Packrat's "Comparison"): the ratio table with each framework's
    best mode and thread count, then latency and throughput against threads per batch size, a line per framework and
    mode. Nothing where the page holds one framework."""
    comp = study_comparison(study, host, model)
    if comp is None:
        return []
    head = Section(f"# {frameworks.TITLE}", body=frameworks.markdown(comp))
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
                frameworks.draw(comp, kind, b, folder / name)
            sec.images.append(Image(name, f"{model_display(model)} {title} {frameworks.TITLE} BS={b}"))
        out.append(sec)
    return out
