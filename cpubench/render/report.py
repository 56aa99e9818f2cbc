"""The report's files: merge host folders, build the cells, and write ``summary.md``, CSVs, JSON and the plots.

Why the report merges many hosts into one comparison: the product a user publishes is the merged comparison, one
table per setting, copied into their docs (:mod:`cpubench.render.summary` writes the page;
``cpubench report`` is :mod:`cpubench.commands.report`). Merging checks its inputs (:mod:`cpubench.results.merge`):
unknown schemas, a host id claimed by two machines (an error), the same run recorded twice (a warning); every
warning shows up in the Warnings section of ``summary.md``.

Outputs (under ``out_dir``): ``summary.md``, ``results.csv`` (tidy: one row per host x setting x model x batch x
repeat), ``relative.csv`` (one row per host x setting x model against the baseline, with the interval),
``results.json`` and ``plots/<setting>.png``. Where a host ran a model in both TensorFlow and PyTorch (at one
setting of the other axes), a "TensorFlow vs PyTorch" section gives the ratio table of
:mod:`cpubench.analysis.frameworks` and its plots,
``plots/frameworks-<host>-<model>-<setting>-<latency|throughput>-bs<N>.png``. The model table reads the engine's
model declarations (:mod:`cpubench.analysis.models`), lazily; ``model_rows=None`` leaves it out.

``out_dir`` is written only when it is new, empty, or a report this command wrote (it holds :data:`MARKER`, or,
from a version before the marker, a ``results.json`` of ours): a folder of the user's own is refused in one line,
so its ``summary.md`` is never overwritten. The marker lists the plots the report drew; the next report into the
folder removes those it does not draw again, and never any other file.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from cpubench.analysis import cost
from cpubench.analysis.cells import Cell, add_relative, build_cells, number_notes, relative_frame, runs_frame
from cpubench.analysis.efficiency import add_columns, any_limits, hosts_of
from cpubench.analysis.frameworks import Comparison, from_records
from cpubench.analysis.models import ModelRows, model_table_rows
from cpubench.analysis.redact import public
from cpubench.analysis.roofline import placed, roofs
from cpubench.render import escape, frameworks
from cpubench.render.cost import cost_lines
from cpubench.render.efficiency import efficiency_lines
from cpubench.render.summary import FrameworkPlots, cell_text, models_section, render_markdown
from cpubench.results import store
from cpubench.results.merge import Merged, MergeError, merge
from tf_cnn_benchmarks import hostfacts

PLOTS_DIR = "plots"
MARKER = ".cpubench-report"
MARKER_HEAD = "Written by `cpubench report`, which may write this folder again. The plots it drew, under plots/:\n"
MARKER_LIMIT = 2**20
_PLOT_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*\.png")


@dataclass
class ReportFiles:
    summary: Path
    csv: Path
    json: Path
    plots: list[Path]
    relative_csv: Path | None = None  # written when there are two hosts or more


def plot_name(setting: str) -> str:
    """``<setting>.png``: the setting with every run of other characters than ``A-Za-z0-9._-`` one ``_`` (and no
    ``..``, no leading dot or dash, at most 120 characters), through the one gate for text from data that becomes a
    file name (:func:`cpubench.results.store.file_part`), so a setting from a record is never a path."""
    name = re.sub(r"\.\.+", "_", re.sub(r"[^A-Za-z0-9._-]+", "_", setting)).lstrip("._-")[:120] or "setting"
    return store.file_part(name + ".png", "plot name")


def framework_plot_name(comp: Comparison, kind: str, batch: int) -> str:
    """``frameworks-<host>-<model>-<setting>-<kind>-bs<N>.png``: apart from the settings' ``<setting>.png``."""
    return plot_name(f"frameworks-{comp.host}-{comp.model}-{comp.label}-{kind}-bs{batch}")


def earlier_plots(out: Path) -> list[str]:
    """The plots an earlier report drew in ``out``, once ``out`` is known to be one the report may write: new,
    empty, or a report this command wrote (:func:`cpubench.results.store.check_output`; a report from before the
    marker is known by its ``results.json``, and its plots are left as they are). StoreError otherwise."""
    if not store.check_output(out, MARKER, "report", older=lambda d: _report_json(d / "results.json")):
        return []
    text = store.read_regular(out / MARKER, MARKER_LIMIT).decode("utf-8", "replace")
    return [n for n in text.splitlines()[1:] if _PLOT_FILE.fullmatch(n) and ".." not in n]


def _report_json(path: Path) -> bool:
    """Whether ``path`` is the ``results.json`` of a report: a JSON object with the keys it always writes."""
    try:
        doc = json.loads(store.read_regular(path, 256 * 2**20))
    except (OSError, ValueError, store.StoreError):
        return False
    return isinstance(doc, dict) and {"generated", "settings", "cells", "runs"} <= doc.keys()


def _mark(out: Path, plot_dir: Path, earlier: Sequence[str], written: Sequence[Path], drawn: bool) -> None:
    """Remove the plots the earlier report drew that this one did not, then record this report's plots. A report
    that draws none (``--no-plots``) removes nothing and keeps the earlier list, so a later report still knows them."""
    now = {p.name for p in written if p.parent == plot_dir}
    if not drawn:
        now |= {n for n in earlier if (plot_dir / n).is_file()}
    for name in earlier:
        old = plot_dir / name
        if name not in now and old.is_file() and not old.is_symlink():
            old.unlink()  # a setting no longer in the data
    (out / MARKER).write_text(MARKER_HEAD + "".join(f"{n}\n" for n in sorted(now)), encoding="utf-8")


def cell_json(c: Cell) -> dict[str, Any]:
    """A cell in ``results.json``: its fields, its text, and its ratio to the baseline with the interval."""
    return {**vars(c), "relative": c.relative.to_dict() if c.relative else None, "text": cell_text(c)}


def build_report(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    baseline: str | None = None,
    model_rows: ModelRows | None = model_table_rows,
    plots: bool = True,
    prices: Mapping[str, float] | None = None,
) -> tuple[ReportFiles, Merged]:
    """Merge ``paths`` and write summary.md, results.csv, results.json and the plots under ``out_dir``.

    Raises MergeError / store.StoreError for inputs that cannot be merged and ValueError for a bad baseline.
    ``prices`` (host id -> dollars per hour, from ``--prices FILE``) overrides the hosts' recorded prices.
    """
    out = Path(out_dir)
    earlier = earlier_plots(out)
    merged = merge(paths)
    if not merged.hosts:
        raise MergeError(merged.left_out[0] if merged.left_out else
                         f"no host folders (with host.json) in {', '.join(map(str, paths))}")  # fmt: skip
    hosts = merged.host_ids
    baseline = baseline or hosts[0]
    if baseline not in hosts:
        raise ValueError(f"--baseline {baseline!r} is not one of the hosts: {', '.join(hosts)}")
    unpriced = sorted(set(prices or {}) - set(hosts))
    if unpriced:  # a typo in a host id would otherwise leave that host "no price" without a word on why
        more = f" and {len(unpriced) - 5} more" if len(unpriced) > 5 else ""
        merged.warnings.append(f"--prices names {', '.join(unpriced[:5])}{more}, not among the hosts reported; "
                               "its price is not used: check the host ids (the host folders' names)")  # fmt: skip
    df = runs_frame(merged)
    settings = build_cells(df, hosts)
    number_notes(settings, hosts)
    add_relative(settings, hosts, baseline)
    out.mkdir(parents=True, exist_ok=True)
    plot_dir = out / PLOTS_DIR
    written: list[Path] = []
    plot_links: dict[str, str] = {}
    if plots and settings:
        from cpubench.render.plots import grouped_bars  # lazy: matplotlib only when plots are drawn

        for setting, (rows, cells) in settings.items():
            name = plot_name(setting)
            bars = {
                k: (c.value, c.status if c.status in ("failed", "timeout") else "not run") for k, c in cells.items()
            }
            written.append(grouped_bars(setting, rows, hosts, bars, plot_dir / name))
            plot_links[setting] = f"{PLOTS_DIR}/{name}"
    comparisons: FrameworkPlots = []
    for comp in from_records((r.rec for r in merged.runs), hosts):
        links: dict[tuple[str, int], str] = {}
        if plots:
            for kind, b, name in frameworks.plot_files(comp, lambda k, b, c=comp: framework_plot_name(c, k, b)):
                written.append(frameworks.draw(comp, kind, b, plot_dir / name))
                links[(kind, b)] = f"{PLOTS_DIR}/{name}"
        comparisons.append((comp, links))
    models = sorted(df["model"].unique()) if len(df) else []
    roofline_link = None
    if plots and any_limits(merged):
        from cpubench.render.roofline import ROOFLINE_PNG, draw  # lazy: matplotlib only when plots are drawn

        own = hosts_of(merged)  # each host with its own limits only (another machine's give way to the reason)
        host_roofs = [r for h in merged.hosts if (r := roofs(h.host_id, own[h.host_id].limits)) is not None]
        written.append(draw(host_roofs, placed(merged, settings), plot_dir / ROOFLINE_PNG,
                            "Roofline: " + ", ".join(h.host_id for h in merged.hosts)))  # fmt: skip
        roofline_link = f"{PLOTS_DIR}/{ROOFLINE_PNG}"
    peak = efficiency_lines(merged, settings, roofline_link) + cost_lines(merged, settings, prices)
    md = render_markdown(merged, df, settings, baseline, models_section(models, model_rows), plot_links, comparisons,
                         peak)  # fmt: skip
    files = ReportFiles(out / "summary.md", out / "results.csv", out / "results.json", written)
    files.summary.write_text(md, encoding="utf-8")
    tidy = cost.add_columns(add_columns(df, hosts_of(merged)), merged, prices)
    csv_safe(tidy).to_csv(files.csv, index=False)  # efficiency, cost and energy columns after the older ones
    rel_csv = out / "relative.csv"
    if len(hosts) > 1:
        csv_safe(relative_frame(settings, hosts, baseline)).to_csv(rel_csv, index=False)
        files.relative_csv = rel_csv
    elif rel_csv.exists():
        rel_csv.unlink()  # from an earlier report of more hosts: there is no baseline to compare with now
    doc = {
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "baseline": baseline,
        "hosts": [public(h.to_dict()) for h in merged.hosts],  # never a credential an old folder holds
        "settings": list(settings),
        "cells": [cell_json(c) for _, cells in settings.values() for c in cells.values()],
        "runs": [{**public(r.rec.to_dict()), "folder": r.folder} for r in merged.runs],
        "warnings": merged.warnings,
    }
    files.json.write_text(
        json.dumps(hostfacts.finite(doc), indent=1, sort_keys=False, default=str) + "\n", encoding="utf-8"
    )
    _mark(out, plot_dir, earlier, written, drawn=plots)
    return files, merged


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell through :func:`escape.csv_cell` (numbers untouched), for a CSV people open in
    a spreadsheet: a setting, reason or CPU brand from a folder someone sent must not run as a formula there."""
    out = frame.copy()
    for col in out.columns:
        if not pd.api.types.is_numeric_dtype(out[col]):  # object, string and categorical columns hold text
            out[col] = out[col].astype(object).map(escape.csv_cell)
    return out


def copy_to_docs(files: ReportFiles, docs: str | Path) -> Path:
    """Copy summary.md and its plots into ``docs`` keeping the relative image paths working."""
    target = Path(docs)
    (target / PLOTS_DIR).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(files.summary, target / "summary.md")
    for p in files.plots:
        shutil.copyfile(p, target / PLOTS_DIR / p.name)
    return target / "summary.md"
