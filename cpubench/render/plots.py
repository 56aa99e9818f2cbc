"""Grouped bar charts for the report: one PNG per setting, models x hosts.

Why matplotlib with the Agg backend: the report runs on headless machines (CI, servers over ssh) and must never try
to open a window. Failed, timed-out and missing cells get no bar but a short label, so a gap is never read as 0. Text
from data (settings, models, hosts) goes through :func:`cpubench.render.escape.plot_text`: never read as mathtext.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

from cpubench.render import series
from cpubench.render.escape import plot_text

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

# value: median images/sec or None; label: what to print instead of a bar ("failed", "timeout", "not run")
Cell = tuple[float | None, str]


def grouped_bars(
    title: str, rows: Sequence[str], hosts: Sequence[str], cells: dict[tuple[str, str], Cell], path: Path
) -> Path:
    """Draw ``rows`` (models) as groups with one bar per host; write ``path`` (PNG) and return it."""
    n_rows, n_hosts = max(len(rows), 1), max(len(hosts), 1)
    width = 0.8 / n_hosts
    fig, ax = plt.subplots(figsize=(min(14.0, max(6.0, 1.2 + n_rows * (0.5 + 0.3 * n_hosts))), 4.2), dpi=100)
    values = [v for v, _ in cells.values() if v]
    top = max(values, default=1.0)
    low = min(values, default=1.0)
    log = top / low > 50  # trivial next to resnet50: a linear axis would hide the slow models
    floor = low / 2 if log else 0.0
    palette = series.colours(len(hosts))
    for j, host in enumerate(hosts):
        xs, ys = [], []
        for i, row in enumerate(rows):
            value, label = cells.get((row, host), (None, "not run"))
            x = i - 0.4 + width * (j + 0.5)
            if value is None:
                ax.text(
                    x,
                    max(floor * 1.1, top * 0.01),
                    plot_text(label),
                    rotation=90,
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    color="0.35",
                )
            else:
                xs.append(x)
                ys.append(value)
        ax.bar(xs, ys, width=width * 0.95, label=plot_text(host), color=palette[j])
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(
        [plot_text(r) for r in rows],
        rotation=30 if n_rows > 4 else 0,
        ha="right" if n_rows > 4 else "center",
        fontsize=8,
    )
    ax.set_ylabel("images/sec (median of repeats)" + (", log scale" if log else ""))
    ax.set_title(plot_text(title), fontsize=10)
    if log:
        ax.set_yscale("log")
        ax.set_ylim(floor, top * 2)
    else:
        ax.set_ylim(0, top * 1.1)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=min(n_hosts, 5), loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)
    return path
