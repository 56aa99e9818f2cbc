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
    out += ["", summary(cmp)]
    return "\n".join(out)
