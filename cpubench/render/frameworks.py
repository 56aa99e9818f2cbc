"""TensorFlow against PyTorch, rendered: the ratio table and its intro, and the latency and throughput plots.

The comparison itself (each framework's best point per batch size, the ratios, the plots' lines) is
:mod:`cpubench.analysis.frameworks`; both ``cpubench report`` (:mod:`cpubench.render.summary`) and ``cpubench pages``
(:mod:`cpubench.render.site_pages`) put what this module renders under their own headings, so the two read alike.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cpubench.analysis.engines import FRAMEWORKS, NAMES, PYTORCH, TENSORFLOW, display
from cpubench.analysis.frameworks import Comparison
from cpubench.analysis.points import Point
from cpubench.render import tables
from cpubench.render.escape import md_text

# kind -> (title, y axis), for both plots and both commands
KINDS: dict[str, tuple[str, str]] = {"latency": ("Latency", "ms per batch, p50"),
                                     "throughput": ("Throughput", "images/sec")}  # fmt: skip
TITLE = f"{NAMES[TENSORFLOW]} vs {NAMES[PYTORCH]}"
LONE_MARKER = 7.0  # marker size of a line of one point (a classic matrix at the default threads), to be seen


def threads_text(p: Point) -> str:
    if p.key.threads:
        return f"{p.key.threads} threads"
    if p.threads_effective:
        return f"default threads ({p.threads_effective})"
    return "default threads (count not recorded)"


def intro(comp: Comparison) -> str:
    where = f" Compared at {md_text(comp.setting.text())}, measured by both." if comp.setting else ""
    return (f"Per batch size, each framework's best execution mode and intra-op thread count by median images/sec "
            f"over its ok repeats; latency is that point's p50 (ms per batch). Above 1.00x PyTorch is faster: "
            f"throughput PyTorch/TensorFlow, latency TensorFlow/PyTorch.{where}")  # fmt: skip


def table(comp: Comparison) -> str:
    """The ratio table (markdown): one row per batch size."""
    tf, pt = display(TENSORFLOW), display(PYTORCH)
    headers = ["batch", f"{tf} best", f"{tf} images/sec", f"{tf} p50 (ms)", f"{pt} best", f"{pt} images/sec",
               f"{pt} p50 (ms)", f"throughput {pt}/{tf}", f"latency {tf}/{pt}"]  # fmt: skip
    body = []
    for r in comp.rows:
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


def markdown(comp: Comparison) -> list[str]:
    """The intro and the table, or the note: the lines a page or ``summary.md`` puts under its heading."""
    if comp.note:
        return [md_text(comp.note), ""]
    return [intro(comp), "", table(comp), ""]


def draw(comp: Comparison, kind: str, batch: int, path: Path) -> Path:
    """The PNG of ``kind`` (latency or throughput) against threads at ``batch``: a line per framework and mode,
    PyTorch's dashed, with the min-max band across repeats; a line of one point is its marker."""
    from cpubench.render import siteplots as pagesplots  # lazy: matplotlib only when plots are drawn

    title, unit = KINDS[kind]
    data = []
    for ln in comp.lines.get(batch, []):
        pts = ln.points
        ys = [p.p50 for p in pts] if kind == "latency" else [p.thr_avg for p in pts]
        lo = [p.p50_lo for p in pts] if kind == "latency" else [p.thr_lo for p in pts]
        hi = [p.p50_hi for p in pts] if kind == "latency" else [p.thr_hi for p in pts]
        size = LONE_MARKER if len(pts) == 1 else pagesplots.Line.markersize
        data.append(pagesplots.Line(ln.label, ln.threads, ys, lo, hi, ln.framework == PYTORCH, markersize=size))
    where = f" ({comp.label})" if comp.label else ""
    return pagesplots.lines(path, f"{comp.model} {title.lower()}, {TITLE}, batch {batch}{where}",
                            "intra-op threads", unit, data)  # fmt: skip


def plot_files(comp: Comparison, name: Callable[[str, int], str]) -> list[tuple[str, int, str]]:
    """(kind, batch, file name) of every plot the comparison has, latency first, in batch order."""
    return [(kind, b, name(kind, b)) for kind in KINDS for b in comp.plot_batches]
