"""The roofline PNG: each host's compute roofs (its GEMM limits) and bandwidth roof (its triad), log-log, with every
measured figure placed at its model's arithmetic intensity (:mod:`cpubench.analysis.roofline`).

Why one picture: the "% of peak" table says how far each figure is from the GEMM roof; the roofline says which roof
a figure is under (memory-bound small batches sit left of the ridge) and, with several hosts overlaid in one plot, how
their roofs differ. Text from data goes through :func:`cpubench.render.escape.plot_text` (never mathtext).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

from cpubench.analysis.roofline import Placed, Roofs
from cpubench.render import series
from cpubench.render.escape import plot_text

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.text import Annotation, Text  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

ROOFLINE_PNG = "roofline.png"
_MARKERS = {"fp32": "o", "bf16": "s", "fp16": "^"}


def place_labels(ax: Axes, points: Sequence[Placed], steps: int = 60) -> list[Annotation]:
    """Each point's label beside it, where it overlaps no label placed before it.

    Why: figures of one model at nearby batch sizes, or of several hosts, sit within a few pixels of each other, and
    labels printed at one fixed offset from each lie over one another unreadably. From the top point down, a label
    that would overlap one already placed moves down (then up) in steps of its own height until it is clear, and
    gets a thin line back to its point; past ``steps`` tries it stays at the last place tried. A label that would
    run past the plot's right edge goes to its point's left. Call it once the axes' scales, limits and layout are
    final: the tests are in display space."""
    renderer = ax.figure.canvas.get_renderer()
    right_edge = ax.get_window_extent(renderer).x1
    placed: list[Bbox] = []
    made: list[Annotation] = []

    def label(p: Placed, shift: int, left: bool) -> tuple[Annotation, Bbox]:
        line = {"arrowprops": {"arrowstyle": "-", "lw": 0.3, "color": "0.45"}} if shift else {}
        note = ax.annotate(plot_text(p.label), (p.intensity, p.gflops), fontsize=6, ha="right" if left else "left",
                           xytext=(-3 if left else 3, 3 + 7.5 * shift), textcoords="offset points", **line)  # fmt: skip
        note.update_positions(renderer)
        return note, Text.get_window_extent(note, renderer)  # the text alone, not its line

    for p in sorted(points, key=lambda q: (-q.gflops, q.intensity, q.label)):
        for k in range(steps):
            shift = -(k + 1) // 2 if k % 2 else k // 2  # 0, -1, +1, -2, +2, ... label heights
            note, box = label(p, shift, left=False)
            if box.x1 > right_edge:  # it would run off the plot: to the point's left instead
                note.remove()
                note, box = label(p, shift, left=True)
            if k == steps - 1 or not any(box.overlaps(b) for b in placed):
                break
            note.remove()
        placed.append(box)
        made.append(note)
    return made


def draw(roofs: Sequence[Roofs], points: Sequence[Placed], path: Path, title: str = "Roofline") -> Path:
    """Draw the roofs of ``roofs`` (one colour per host) and ``points`` on them; write ``path`` (PNG)."""
    xs = [p.intensity for p in points] + [r.ridge(k) or 1.0 for r in roofs for k in r.peaks]
    lo = min([*xs, 1.0]) / 4
    hi = max([*xs, 100.0]) * 4
    fig, ax = plt.subplots(figsize=(8.0, 5.2), dpi=100)
    hosts = list(dict.fromkeys([r.host for r in roofs] + [p.host for p in points]))
    colour = dict(zip(hosts, series.colours(len(hosts)), strict=True))
    grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    for r in roofs:
        c = colour[r.host]
        for precision, peak in r.peaks.items():
            ys = [min(peak, r.bandwidth * x) if r.bandwidth else peak for x in grid]
            style = "-" if precision == "fp32" else "--"
            ax.plot(grid, ys, style, color=c, label=plot_text(f"{r.host}: {precision} {peak:.0f} GFLOP/s"))
        if r.bandwidth and not r.peaks:
            ax.plot(grid, [r.bandwidth * x for x in grid], ":", color=c, label=plot_text(f"{r.host}: memory"))
        if r.bandwidth:
            ax.plot([], [], " ", label=plot_text(f"{r.host}: triad {r.bandwidth:.1f} GB/s"))
    for h in colour:
        if h not in {r.host for r in roofs}:
            ax.scatter([], [], color=colour[h], label=plot_text(f"{h}: no limits measured"))
    for p in points:
        ax.scatter([p.intensity], [p.gflops], color=colour[p.host], marker=_MARKERS.get(p.precision, "o"), s=28,
                   edgecolors="black", linewidths=0.4, zorder=3)  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("arithmetic intensity (FLOP/byte, estimated from the model declaration)")
    ax.set_ylabel("GFLOP/s (training counted as 3x forward)")
    ax.set_title(plot_text(title))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    if len(points) <= 24:  # beyond that, labels would cover the roofs
        place_labels(ax, points)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
