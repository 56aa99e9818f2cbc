"""The report's "% of peak" section: each host's measured limits, and per setting each cell's achieved GFLOP/s as a
share of its host's GEMM limit (:mod:`cpubench.analysis.efficiency` computes; this module only writes Markdown).

Why a section of its own, shown only where a host has limits: folders written before limits existed must render as
they always did (their summary.md is compared byte for byte with the old version's), and a table of ``n/a`` would say
nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cpubench.analysis import efficiency
from cpubench.analysis.cells import Settings
from cpubench.host import limits as lim
from cpubench.render import tables
from cpubench.render.escape import md_text

TITLE = "% of peak"


def limit_text(limits: dict[str, Any] | None, name: str) -> str:
    """``219.0 GFLOP/s`` (the unit is the limit's own, never the file's text), or ``n/a``."""
    v = lim.value(limits, name)
    return f"{v:.1f} {lim.UNITS[name]}" if v is not None else "n/a"


def limits_table(hosts: Sequence[Any]) -> list[str]:
    """One row per host: its limits and when they were measured; then why each n/a is n/a."""
    rows, why = [], []
    for h in hosts:
        limits = lim.of_host(h)  # another machine's limits: n/a with that reason, never its values
        measured = limits.get("measured") if isinstance(limits, dict) else None
        rows.append([h.host_id, *(limit_text(limits, n) for n in lim.NAMES),
                     str(measured)[:10] if isinstance(measured, str) and measured else tables.MISSING])  # fmt: skip
        if limits and limits.get("na"):
            why.append(f"- {md_text(h.host_id)}: n/a, {md_text(lim.why_not(limits, lim.GEMM_FP32_ALL))}")
            continue
        for n in lim.NAMES:
            if lim.value(limits, n) is None and limits:
                why.append(f"- {md_text(h.host_id)}: {lim.LABELS[n]}: n/a, {md_text(lim.why_not(limits, n))}")
        if not limits:
            why.append(f"- {md_text(h.host_id)}: no limits measured (a folder written before them, or skipped)")
    headers = ["host", *(lim.LABELS[n] for n in lim.NAMES), "measured"]
    return [tables.markdown_table(headers, rows), "", *why, *([""] if why else [])]


def cell_text(f: efficiency.Figure | None) -> str:
    """``96% (210 GFLOP/s)``; ``n/a (210 GFLOP/s)`` without a limit; a dash without a figure."""
    if f is None or f.achieved is None:
        return tables.MISSING
    share = f.share
    return f"{100 * share:.0f}% ({f.achieved:.0f} GFLOP/s)" if share is not None else f"n/a ({f.achieved:.0f} GFLOP/s)"


def efficiency_lines(merged: Any, settings: Settings, roofline: str | None = None) -> list[str]:
    """The section, or nothing when no host of the report has limits."""
    if not efficiency.any_limits(merged):
        return []
    hosts = merged.host_ids
    figures = efficiency.cell_figures(settings, merged)
    out = [
        f"## {TITLE}",
        "",
        "Achieved GFLOP/s (the model declaration's multiply-adds x 2 per image, times images/sec; "
        f"{efficiency.TRAINING_NOTE}) as a share of the host's measured GEMM limit for the run's precision: the "
        "all-core limit, or the one-core limit times the threads for runs on fewer threads than the host has "
        "physical cores (the line under each table says which). Limits are measured once per machine "
        "(`cpubench.host.limits`): TensorFlow's oneDNN matmul and a STREAM-style triad; "
        f"{efficiency.LIMIT_NOTE}.",
        "",
        *limits_table([h.record for h in merged.hosts]),
    ]
    if roofline:
        out += [f"![roofline]({roofline})", ""]
    for setting, (rows, _cells) in settings.items():
        body = [[row, *(cell_text(figures.get((setting, row, h))) for h in hosts)] for row in rows]
        out += [f"**{md_text(setting)}**", "", tables.markdown_table(["model", *hosts], body), ""]
        bases = {h: sorted({f.basis for (s, _r, hh), f in figures.items() if s == setting and hh == h}) for h in hosts}
        said = [f"{md_text(h)}: {md_text('; '.join(b))}" for h, b in bases.items() if b]
        if said:
            out += ["Against: " + "; ".join(said) + ".", ""]
    return out
