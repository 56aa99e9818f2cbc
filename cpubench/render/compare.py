"""``cpubench compare``'s text: a header saying which way the ratio goes, one block per setting, a summary line.

The comparison itself (rows, verdicts, ratios and notes) is :mod:`cpubench.analysis.compare`; its ``--json`` form is
:meth:`cpubench.analysis.compare.Comparison.to_dict`. Ratios read as in the report's relative table
(:func:`cpubench.render.tables.ratio_ci_text`), so the two commands print them alike. Text from data (models,
settings, reasons, folders) goes through :func:`cpubench.render.escape.plain`: a terminal never receives an escape
sequence or a direction override a folder holds.
"""

from __future__ import annotations

from cpubench.analysis import stats
from cpubench.analysis.compare import NOT_COMPARED, VERDICTS, Comparison, Row
from cpubench.render import tables
from cpubench.render.escape import plain


def ratio_text(row: Row) -> str:
    """The ratio with its interval (``1.32 [1.25–1.40]``), or a dash when the row was not compared."""
    return tables.ratio_ci_text(row.ci) if row.ci else tables.MISSING


def limits_lines(cmp: Comparison) -> list[str]:
    """Where both hosts have measured limits: the ratio of their GEMM and memory limits (what the hardware gives),
    beside which each row's images/sec ratio (what the runs got) reads; nothing otherwise."""
    if not cmp.limits:
        return []
    from cpubench.host import limits as lim

    parts = []
    for name in (lim.GEMM_FP32_ALL, lim.GEMM_BF16_ALL, lim.TRIAD_ALL):
        ratio = cmp.gemm_ratio(name)
        a, b = lim.value(cmp.limits[cmp.other], name), lim.value(cmp.limits[cmp.baseline], name)
        unit = "GB/s" if name == lim.TRIAD_ALL else "GFLOP/s"
        parts.append(f"{lim.LABELS[name]} {ratio:.2f} ({a:.1f} / {b:.1f} {unit})" if ratio is not None else
                     f"{lim.LABELS[name]} n/a")  # fmt: skip
    return [f"limits, {plain(cmp.other)} over {plain(cmp.baseline)}: " + "; ".join(parts),
            "% of peak under each row: achieved GFLOP/s over each host's own GEMM limit (training counted as 3x "
            "forward)"]  # fmt: skip


def peak_text(row: Row) -> str:
    """``% of peak: b 84% (183 GFLOP/s), a 91% (210 GFLOP/s); GFLOP/s ratio 0.87``."""
    shown = []
    for h, f in row.peak.items():
        pct = "n/a" if f.share is None else f"{100 * f.share:.0f}%"
        shown.append(f"{plain(h)} {pct} ({f.achieved:.0f} GFLOP/s)" if f.achieved is not None else f"{plain(h)} n/a")
    got = [f.achieved for f in row.peak.values()]
    ratio = f"; GFLOP/s ratio {got[0] / got[1]:.2f}" if len(got) == 2 and all(got) else ""
    return "% of peak: " + ", ".join(shown) + ratio


def cost_text(row: Row) -> str:
    """``cost: b 12,345 images/$ ($81.00 per M images), 0.52 J/image; a n/a (no price), n/a J/image``."""
    parts = []
    for h, c in row.cost.items():
        money = (
            f"{c.images_per_dollar:,.0f} images/$ (${c.dollars_per_million:,.2f} per M images)"
            if c.images_per_dollar is not None and c.dollars_per_million is not None
            else f"n/a ({plain(c.price_na) if c.price_na else 'no price'})"
        )
        energy = f"{c.joules_per_image:.3g} J/image" if c.joules_per_image is not None else "n/a J/image"
        parts.append(f"{plain(h)} {money}, {energy}")  # fmt: skip
    return "cost: " + "; ".join(parts)


def summary(cmp: Comparison) -> str:
    """The last line: how many rows came out each way."""
    c = cmp.counts()
    parts = [
        f"{c[stats.FASTER]} faster",
        f"{c[stats.SLOWER]} slower",
        f"{c[stats.NOT_SIGNIFICANT]} not significant",
    ]
    if c[stats.NO_INTERVAL]:
        parts.append(f"{c[stats.NO_INTERVAL]} without an interval (fewer than {stats.MIN_REPEATS} ok repeats)")
    if c[NOT_COMPARED]:
        parts.append(f"{c[NOT_COMPARED]} not compared (no ok repeat on a side)")
    return f"summary: {plain(cmp.other)} against {plain(cmp.baseline)}: " + ", ".join(parts)


def render_text(cmp: Comparison) -> str:
    """The terminal form: a header saying which way the ratio goes, one block per setting, the summary line."""

    def named(label: str) -> str:
        folder = cmp.folders[label]
        return plain(label) if folder == label else f"{plain(label)} ({plain(folder)})"

    other, baseline = plain(cmp.other), plain(cmp.baseline)

    out = [
        f"{named(cmp.other)} against {named(cmp.baseline)}, the baseline",
        f"ratio: {other}'s median images/sec over {baseline}'s; [95% interval]: {stats.METHOD}",
        f"faster / slower: the interval excludes 1.00; not significant ({tables.NOT_SIGNIFICANT_MARK}): it contains "
        f"1.00; repeats: ok engine processes of {other} / {baseline}",
    ]
    out += limits_lines(cmp)
    wl = max((len(plain(r.row)) for r in cmp.rows), default=5)
    wv = max(len(v) for v in VERDICTS)
    wr = max((len(ratio_text(r)) for r in cmp.rows), default=1)
    setting = None
    for r in cmp.rows:
        if r.setting != setting:
            setting = r.setting
            out += ["", plain(setting)]
        line = f"  {plain(r.row):<{wl}}  {r.verdict:<{wv}}  {ratio_text(r):>{wr}}"
        line += f"  repeats {r.other.n_ok} / {r.base.n_ok}"
        out.append(line.rstrip())
        out += [f"  {'':<{wl}}  {plain(n)}" for n in r.notes]
        if r.peak:
            out.append(f"  {'':<{wl}}  {peak_text(r)}")
        if r.cost:
            out.append(f"  {'':<{wl}}  {cost_text(r)}")
    out += ["", summary(cmp)]
    return "\n".join(out)
