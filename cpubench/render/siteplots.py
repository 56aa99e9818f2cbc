"""The PNG plots of ``cpubench pages``: lines against threads or batch size (with a band across repeats) and % loss
heatmaps (threads x batch size).

Why apart from :mod:`cpubench.render.site_pages`: the pages, CSVs and summary are built without drawing
(``--no-plots``, and tests of the numbers), so matplotlib is imported only here. The Agg backend keeps headless hosts
from opening a window. PNG metadata carries no software version, so the same data draws the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

from cpubench.render import series
from cpubench.render.escape import plot_text

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

DPI = 80
SIZE = (7.5, 4.0)


@dataclass
class Line:
    """One line: its label, points and, when given, the band (min and max across repeats) around it."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    lo: Sequence[float] | None = None
    hi: Sequence[float] | None = None
    dashed: bool = False
    color: str | None = None
    markersize: float = 3.0  # larger where a line may be one point (a marker is all there is to see)


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)
    return path


def lines(path: Path, title: str, xlabel: str, ylabel: str, data: Sequence[Line], log2x: bool = False) -> Path:
    """Draw ``data`` as lines with markers; an x axis in powers of two when ``log2x`` (batch sizes)."""
    fig, ax = plt.subplots(figsize=SIZE, dpi=DPI)
    palette = series.colours(len(data))
    for i, ln in enumerate(data):
        color = ln.color or palette[i]
        ax.plot(ln.xs, ln.ys, marker="o", markersize=ln.markersize, label=plot_text(ln.label), color=color,
                linestyle="--" if ln.dashed else "-")  # fmt: skip
        if ln.lo is not None and ln.hi is not None:
            ax.fill_between(ln.xs, ln.lo, ln.hi, color=color, alpha=0.2, linewidth=0)
    if log2x:
        ax.set_xscale("log", base=2)
    xs = sorted({x for ln in data for x in ln.xs})
    if xs and len(xs) <= 16:
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{x:g}" for x in xs])
    ax.set_xlabel(plot_text(xlabel))
    ax.set_ylabel(plot_text(ylabel))
    ax.set_title(plot_text(title), fontsize=10)
    ax.grid(alpha=0.3)
    if data:
        ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def heatmap(path: Path, title: str, loss: Any) -> Path:
    """% loss per (threads, batch) as coloured cells with their value; a pair not measured stays blank.

    ``loss`` is a :class:`cpubench.analysis.points.Loss`. Red is a loss, blue a gain, on a scale symmetric around 0 so
    the colour of 0% never depends on the data.
    """
    ts, bs = loss.threads, loss.batches
    grid = [[loss.values.get((t, b), math.nan) for b in bs] for t in ts]
    top = max((abs(v) for v in loss.values.values()), default=1.0) or 1.0
    fig, ax = plt.subplots(figsize=(max(4.0, 1.0 + 0.8 * len(bs)), max(3.0, 1.0 + 0.35 * len(ts))), dpi=DPI)
    im = ax.imshow(grid, cmap="RdBu_r", vmin=-top, vmax=top, aspect="auto", origin="lower")
    for i in range(len(ts)):
        for j in range(len(bs)):
            v = grid[i][j]
            if not math.isnan(v):
                # white on the dark ends of the colour scale, black on the light middle, so every value reads
                colour = "white" if abs(v) > 0.6 * top else "black"
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7, color=colour)
    ax.set_xticks(range(len(bs)))
    ax.set_xticklabels([f"{b}" for b in bs])
    ax.set_yticks(range(len(ts)))
    ax.set_yticklabels([f"{t}" for t in ts])
    ax.set_xlabel("batch size")
    ax.set_ylabel("threads")
    ax.set_title(plot_text(title), fontsize=9)
    fig.colorbar(im, ax=ax, label="% loss")
    return _save(fig, path)
