"""The one place that renders tables (markdown via tabulate) and formats the numbers in them.

Why one place: the report's tables are copied into users' docs and compared across years, so a number must look the
same everywhere (two decimals for images/sec, the same dash for a run never made) and a cell must never break the
markdown (a ``|`` inside a failure reason would split the row): cells are escaped by :mod:`cpubench.render.escape`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tabulate import tabulate

from cpubench.render.escape import MISSING, md_cell

if TYPE_CHECKING:
    from cpubench.analysis.stats import RatioCI

__all__ = ["MISSING", "markdown_table"]


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: Sequence[str] | None = None) -> str:
    """A GitHub pipe table. Cells are pre-formatted strings: tabulate must not re-parse "12.30" into 12.3. Every cell
    and header goes through :func:`cpubench.render.escape.md_cell` here, so callers pass raw text (never escaped
    twice) and no cell from data can split its row, open HTML or a link, or reach Liquid."""
    return tabulate(
        [[md_cell(c) for c in row] for row in rows],
        headers=[md_cell(h) for h in headers],
        tablefmt="pipe",
        disable_numparse=True,
        colalign=tuple(align) if align else None,
    )


def fmt_ips(value: float | None) -> str:
    """Images/sec with exactly two decimals; None is a run never made (never 0)."""
    return MISSING if value is None else f"{value:.2f}"


def fmt_ratio(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2f}"


NOT_SIGNIFICANT_MARK = "\u2248"  # almost equal to: the interval contains 1.00


def fmt_ratio_ci(ratio: float, low: float | None, high: float | None, significant: bool, n_min: int) -> str:
    """A ratio with its interval, rendered so that a ratio the repeats do not support is seen at a glance.

    ``1.32 [1.25–1.40]`` the interval excludes 1.00; ``≈1.02 [0.97–1.08]`` it contains 1.00 (not significant);
    ``1.02 (n=2)`` a side had ``n_min`` < 3 repeats (``stats.MIN_REPEATS``), so there is no interval.
    ``1.04 [1.003–1.15]``: an end that would round to 1.00 shows its third decimal.
    """
    if low is None or high is None:
        return f"{ratio:.2f} (n={n_min})"
    mark = "" if significant else NOT_SIGNIFICANT_MARK

    def bound(x: float) -> str:
        # An end that rounds to 1.00 gets a third decimal, so the side of 1.00 it is on (the verdict) shows.
        return f"{x:.3f}" if f"{x:.2f}" == "1.00" and x != 1.0 else f"{x:.2f}"

    return f"{mark}{ratio:.2f} [{bound(low)}\u2013{bound(high)}]"


def ratio_ci_text(ci: RatioCI) -> str:
    """A ratio of medians with its bootstrap interval as the relative table and ``cpubench compare`` print it."""
    return fmt_ratio_ci(ci.ratio, ci.low, ci.high, ci.significant, min(ci.n_a, ci.n_b))


def fmt_bytes_gib(value: float | int | None) -> str:
    if value is None:
        return MISSING
    gib = float(value) / 2**30
    return f"{gib:.0f} GiB" if gib >= 10 else f"{gib:.1f} GiB"


def fmt_count_millions(value: float | int | None) -> str:
    return MISSING if value is None else f"{float(value) / 1e6:.2f} M"


def fmt_float(value: float | int | None, digits: int = 2) -> str:
    return MISSING if value is None else f"{float(value):.{digits}f}"
