"""``summary.md``, the report's page: the hosts, the models, one Images/sec table per setting, the relative tables.

Why every cell says what happened: the product a user publishes is this comparison, one table per setting (models
as rows, hosts as columns), copied into their docs. Classic reports showed a failed run as 0 or a blank, or averaged
a failed repeat in as half the value; here a cell (:class:`cpubench.analysis.cells.Cell`) reads:

- ``12.34``        median images/sec of the ok repeats (two decimals)
- ``12.34 ~[n]``   the ok repeats spread more than 5% (coefficient of variation, sample std / mean): see note n
- ``12.34 *[n]``   some repeats failed or timed out; the value is the median of the ok ones only: see note n
- ``12.34 ![n]``   noisy: other processes used more than 5% of the machine's CPU during a repeat's measured window
                   (``noise.foreign_cpu_pct`` above 5 plus the measurement's resolution): see note n
- ``12.34 ^[n]``   drift: a repeat's timed steps got slower or faster from the first half to the second by more than
                   their spread (``samples.drift``): see note n
- ``failed [n]`` / ``timeout [n]``  no repeat succeeded; note n gives the reason
- ``—``            never run (``— [n]`` when the runner skipped it, with its reason)
- ``n/a [n]``      not applicable on this host (remote memory on one NUMA node, interleave on one socket)

The relative table gives each ratio to the baseline with its 95% bootstrap interval (:mod:`cpubench.analysis.stats`):
``1.32 [1.25–1.40]`` when the interval excludes 1.00, ``≈1.02 [0.97–1.08]`` when it contains 1.00 (not
significant), ``1.02 (n=2)`` when a side has fewer than 3 ok repeats (no interval).

Text from data (models, settings, CPU brands, reasons, warnings) is escaped where it lands by
:mod:`cpubench.render.escape` (table cells by :func:`cpubench.render.tables.markdown_table`, the rest by
:func:`~cpubench.render.escape.md_text`): ``summary.md`` is published as it is, often by a Jekyll docs site that runs
Liquid over it, so nothing a folder holds may become HTML, a link, Liquid or a new block.

The report shows a host record's fields in :func:`hosts_table` only (and its helpers ``_topology``, ``_gpus``,
``_dates``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from cpubench.analysis import stats
from cpubench.analysis.cells import NOISE_LIMIT_PCT, Cell, Settings
from cpubench.analysis.frameworks import Comparison
from cpubench.analysis.inputbound import INPUT_BOUND_BELOW, InputBound, input_bound
from cpubench.analysis.models import ModelRows, model_table_rows
from cpubench.analysis.order import model_sort_key
from cpubench.host.record import HostRecord
from cpubench.render import frameworks, tables
from cpubench.render.escape import md_text
from cpubench.render.models import NOTE
from cpubench.render.tune import tuned_section
from cpubench.results.merge import Merged


def cell_text(c: Cell) -> str:
    """The cell as the Images/sec table shows it: the value and its marks, or the status; then its note's number."""
    ref = f"[{c.note_id}]" if c.note_id is not None else ""
    if c.status == "ok":
        marks = (
            ("~" if c.unstable else "")
            + ("*" if c.partial else "")
            + ("!" if c.noisy else "")
            + ("^" if c.drifted else "")
        )
        return f"{tables.fmt_ips(c.value)} {marks}{ref}".rstrip()
    if c.status in ("failed", "timeout"):
        return f"{c.status} {ref}".rstrip()
    if c.status == "skipped" and (c.reason or "").startswith("skipped: n/a"):
        return f"n/a {ref}".rstrip()  # not applicable on this host (one NUMA node...): the note says why
    return f"{tables.MISSING} {ref}".rstrip()


def _gpus(value: Any) -> str:
    if not value:
        return "none" if isinstance(value, list) else tables.MISSING
    items = value if isinstance(value, list) else [value]
    names = [str(g.get("name") or g.get("model") or g) if isinstance(g, dict) else str(g) for g in items]
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    return ", ".join(f"{c}\u00d7 {n}" if c > 1 else n for n, c in counts.items())


def _topology(h: HostRecord) -> str:
    parts = [h.sockets, h.cores_physical, h.cores_logical]
    return (
        tables.MISSING
        if all(p is None for p in parts)
        else "/".join(tables.MISSING if p is None else str(p) for p in parts)
    )


def _dates(host: HostRecord, df: pd.DataFrame) -> str:
    started = sorted(str(s)[:10] for s in df.loc[df["host_id"] == host.host_id, "started"].dropna()) if len(df) else []
    if started:
        return started[0] if started[0] == started[-1] else f"{started[0]} to {started[-1]}"
    collected = host.collected
    return str(collected)[:10] if collected else tables.MISSING


def hosts_table(merged: Merged, df: pd.DataFrame) -> str:
    rows = [
        [
            h.host_id,
            h.cpu_brand,
            _topology(h),
            tables.fmt_bytes_gib(h.memory_bytes),
            h.tf_version,
            _gpus(h.gpus),
            _dates(h, df),
        ]
        for h in (m.record for m in merged.hosts)
    ]
    headers = ["host", "CPU", "sockets/cores/threads", "memory", "TensorFlow", "GPUs", "runs dated"]
    if "framework" in df and (df["framework"] == "pytorch").any():  # the column only where PyTorch ran
        headers.insert(5, "PyTorch")
        for row, h in zip(rows, merged.hosts, strict=True):
            row.insert(5, h.record.torch_version or "not installed")
    return tables.markdown_table(headers, rows)


def models_section(models: Sequence[str], model_rows: ModelRows | None) -> list[str]:
    """The model table for the models in the results, or one line saying why it is not there."""
    if model_rows is None:
        return ["Model table left out (--no-model-table)."]
    try:
        table = {str(r["model"]): r for r in model_rows()}
    except Exception as e:  # noqa: BLE001 - any failure of the engine's table must not cost the rest of the report
        return [f"Model table not available ({type(e).__name__}: {md_text(' '.join(str(e).split())[:200])})."]
    rows = []
    for m in sorted(models, key=model_sort_key):
        r = table.get(m)
        if r is None:
            continue
        size = r.get("input_size")
        size_text = f"{size}\u00d7{size}" if isinstance(size, int) else (tables.MISSING if size is None else str(size))
        rows.append(
            [
                m,
                size_text,
                tables.fmt_count_millions(r.get("params")),
                tables.fmt_float(r.get("param_mb"), 1),
                tables.fmt_float(r.get("feature_mb"), 1),
                tables.fmt_float(r.get("gmacs"), 2),
            ]
        )
    headers = ["model", "input", "parameters", "parameter memory (MB)", "feature memory, batch 1 (MB)", "G mult-adds"]
    out = [tables.markdown_table(headers, rows, ["left", "right", "right", "right", "right", "right"])] if rows else []
    unknown = sorted((m for m in models if m not in table), key=model_sort_key)
    if unknown:
        out.append(f"Not in the model declarations: {', '.join(md_text(m) for m in unknown)}.")
    note = NOTE if model_rows is model_table_rows else None
    out.append(
        (note + " " if note else "")
        + "Published top-1/top-5 errors are left out: we show no figure whose source we cannot name."
    )
    return out


def setting_table(rows: list[str], cells: dict[tuple[str, str], Cell], hosts: Sequence[str]) -> str:
    body = [[row, *(cell_text(cells[(row, h)]) for h in hosts)] for row in rows]
    return tables.markdown_table(["model", *hosts], body, ["left", *["right"] * len(hosts)])


def relative_text(c: Cell, base: Cell, is_baseline: bool) -> str:
    """One relative-table cell: the ratio and interval, ``1.00`` for the baseline, or why there is no ratio."""
    if c.status in ("failed", "timeout"):
        return c.status
    if c.value is None or base.value is None or base.value <= 0:
        return tables.MISSING
    if is_baseline:
        return tables.fmt_ratio(1.0)
    ci = c.relative or stats.ratio_of_medians(c.values, base.values)
    return tables.MISSING if ci is None else tables.ratio_ci_text(ci)


def relative_table(rows: list[str], cells: dict[tuple[str, str], Cell], hosts: Sequence[str], baseline: str) -> str:
    body = [
        [row, *(relative_text(cells[(row, h)], cells[(row, baseline)], h == baseline) for h in hosts)] for row in rows
    ]
    return tables.markdown_table(["model", *hosts], body, ["left", *["right"] * len(hosts)])


def repeat_counts(rows: list[str], cells: dict[tuple[str, str], Cell], hosts: Sequence[str]) -> str:
    """``Repeats: 3 per cell, except alexnet on epyc-7742: 2.``: the ok repeats the ratios of a table rest on."""
    counts = {(row, h): cells[(row, h)].n_ok for row in rows for h in hosts if cells[(row, h)].status == "ok"}
    if not counts:
        return "Repeats: none ok."
    tally: dict[int, int] = {}
    for n in counts.values():
        tally[n] = tally.get(n, 0) + 1
    usual = max(tally, key=lambda n: (tally[n], n))
    others = [f"{md_text(row)} on {md_text(h)}: {n}" for (row, h), n in counts.items() if n != usual]
    return f"Repeats (ok engine processes): {usual} per cell" + (f", except {'; '.join(others)}." if others else ".")


# A comparison and the links of the plots drawn for it: (kind, batch) -> path relative to summary.md
FrameworkPlots = list[tuple[Comparison, dict[tuple[str, int], str]]]


def framework_lines(comparisons: FrameworkPlots) -> list[str]:
    """The "TensorFlow vs PyTorch" section: per host, model and setting where both frameworks have ok runs, the
    ratio table and its latency and throughput plots per batch size."""
    if not comparisons:
        return []
    out = [f"## {frameworks.TITLE}", ""]
    for comp, links in comparisons:
        where = f"{md_text(comp.host)}: {md_text(comp.model)}"
        out += [f"### {where}, {md_text(comp.label)}" if comp.label else f"### {where}", ""]
        out += frameworks.markdown(comp)
        for kind, (title, _) in frameworks.KINDS.items():
            for b in comp.plot_batches:
                if (kind, b) in links:
                    out += [f"![{title} {frameworks.TITLE}, {md_text(comp.model)}, batch {b}]({links[(kind, b)]})", ""]
    return out


def _pct(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}%"


def input_bound_lines(items: Sequence[InputBound]) -> list[str]:
    """The "Input-bound" section: per real-data setting, each model and host's real images/sec against the synthetic
    figure of the same model, mode and device count, the fraction, the host CPU's utilisation and the mark; nothing
    where no real-data setting has an ok run (so reports without one are as they were)."""
    if not items:
        return []
    out = [
        "## Input-bound: real data against synthetic",
        "",
        "Each real-data setting's images/sec (median of the ok repeats) as a fraction of the synthetic figure of the "
        "same model, mode and device count on the same host, and the host CPU's utilisation during the real runs' "
        "measured windows (median; every process on the machine). A setting under "
        f"{INPUT_BOUND_BELOW:.0%} of synthetic is marked **input-bound**: the CPU's input pipeline, not the devices, "
        "sets its pace. Logical-GPU settings are compared with logical ones only. `n/a` host CPU: the records do "
        "not say (written before the engine measured it).",
        "",
    ]
    by_setting: dict[str, list[InputBound]] = {}
    for b in items:
        by_setting.setdefault(b.setting, []).append(b)
    for setting, rows in by_setting.items():
        out += [f"### {md_text(setting)} against {md_text(rows[0].synthetic_setting)}", ""]
        body = [
            [
                b.model if b.batch_size is None else f"{b.model} (bs {b.batch_size})",
                b.host_id,
                tables.fmt_ips(b.real_ips),
                tables.fmt_ips(b.synthetic_ips),
                _pct(None if b.fraction is None else 100.0 * b.fraction, 1),
                _pct(b.host_cpu_pct),
                "input-bound" if b.input_bound else (f"n/a: {b.why}" if b.why else ""),
            ]
            for b in rows
        ]
        headers = ["model", "host", "real", "synthetic", "real/synthetic", "host CPU", ""]
        out += [tables.markdown_table(headers, body, ["left", "left", "right", "right", "right", "right", "left"]), ""]
    return out


def render_markdown(
    merged: Merged,
    df: pd.DataFrame,
    settings: Settings,
    baseline: str,
    model_lines: list[str],
    plots: dict[str, str],
    comparisons: FrameworkPlots | None = None,
    efficiency: list[str] | None = None,
) -> str:
    """The page; ``efficiency`` is the "% of peak" section (:mod:`cpubench.render.efficiency`), placed after the
    Images/sec tables (nothing where no host has limits, so older folders render as they did)."""
    hosts = merged.host_ids
    out = [
        "# CPU benchmark summary",
        "",
        "Images/sec: median of the ok repeats, two decimals. `~` marks repeats that spread more than 5% "
        "(coefficient of variation), `*` a value from fewer repeats than were run, `!` a repeat during whose "
        f"measured window other processes used more than {NOISE_LIMIT_PCT:.0f}% of the machine's CPU (noisy), `^` a "
        "repeat whose timed steps drifted (the second half ran slower or faster than the first, beyond their "
        f"spread); `failed` and `timeout` mean no repeat succeeded; `{tables.MISSING}` means never run. Numbers in "
        "brackets point to the notes under each table.",
        "",
        "## Hosts",
        "",
        hosts_table(merged, df),
        "",
        "## Models",
        "",
    ]
    for line in model_lines:
        out += [line, ""]
    out += ["## Images/sec", ""]
    for setting, (rows, cells) in settings.items():
        out += [f"**{md_text(setting)}**", ""]
        generated = sorted(
            {str(r.rec.host_id) for r in merged.runs if r.rec.setting == setting and r.rec.data_generated}
        )
        if generated:
            out += [
                f"_Real data here is a small generated set (`cpubench make-data --generate`), not ImageNet, on: "
                f"{', '.join(md_text(h) for h in generated)}._",
                "",
            ]
        out += [setting_table(rows, cells, hosts), ""]
        notes = [cells[(r, h)] for r in rows for h in hosts if cells[(r, h)].note]
        if notes:
            out += [f"- [{c.note_id}] {md_text(c.note)}" for c in notes] + [""]
        if setting in plots:
            out += [f"![{md_text(setting)}]({plots[setting]})", ""]
    out += efficiency or []
    if len(hosts) > 1:
        out += [
            "## Relative to " + md_text(baseline),
            "",
            f"Median images/sec divided by {md_text(baseline)}'s (= 1.00), with the 95% confidence interval of the "
            "ratio in brackets. `1.32 [1.25\u20131.40]`: the interval excludes 1.00, the repeats tell the hosts apart. "
            f"`{tables.NOT_SIGNIFICANT_MARK}1.02 [0.97\u20131.08]`: the interval contains 1.00, not significant (the "
            f"repeats do not tell the hosts apart). `0.50 (n=2)`: a side has fewer than {stats.MIN_REPEATS} ok "
            "repeats, so there is no interval. `failed`, `timeout` and `\u2014` as above.",
            "",
        ]
        for setting, (rows, cells) in settings.items():
            out += [f"**{md_text(setting)}**", "", relative_table(rows, cells, hosts, baseline), ""]
            out += [repeat_counts(rows, cells, hosts), ""]
        out += [
            f"Intervals: {stats.METHOD}; each repeat is one engine process's images/sec, and the fixed seed gives "
            "the same intervals for the same data. With 3 repeats a side or fewer the bootstrap has little to resample "
            "and its interval is a rough guide; more repeats (`cpubench run --repeats N`) make it firmer.",
            "",
        ]
    out += framework_lines(comparisons or [])
    out += tuned_section(r.rec for r in merged.runs)
    out += input_bound_lines(input_bound(merged))
    if merged.warnings:
        out += ["## Warnings", ""] + [f"- {md_text(w)}" for w in merged.warnings] + [""]
    tidy = "`results.csv`, `relative.csv` and `results.json`" if len(hosts) > 1 else "`results.csv` and `results.json`"
    out += [f"Made with `cpubench report`; tidy data in {tidy}.", ""]
    return "\n".join(out)
