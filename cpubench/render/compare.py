"""``cpubench compare DATA_DIR/HOST_A DATA_DIR/HOST_B [--baseline-last] [--json]``: which of two hosts is faster,
per setting and model, and whether their repeats support saying so.

Why a command of its own: the report's relative table answers "how do all hosts compare to one", for publishing;
before a change is kept (a new host, a new TensorFlow, a BIOS setting) one asks about two folders only, and wants
the answer per row in a terminal or a script: ``faster``, ``slower`` or ``not significant``, with the ratio, its 95%
bootstrap interval (:mod:`cpubench.analysis.stats`), the repeat counts, and the noisy / drift notes of the cells
behind it.

The first folder is the baseline, as in ``cpubench report`` (whose baseline is its first host), so the two commands
print the same ratios: each row is B over A, and ``faster`` means B ran faster than A. ``--baseline-last`` makes
the second folder the baseline (A over B). The folders are read with :func:`cpubench.render.report.merge`, each on its
own, so two folders of one host (before and after a change) compare too; the cells are the report's own.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cpubench.analysis import stats
from cpubench.render import report, tables
from cpubench.results import store
from tf_cnn_benchmarks import hostfacts

NOT_COMPARED = "not compared"
VERDICTS = (stats.FASTER, stats.SLOWER, stats.NOT_SIGNIFICANT, stats.NO_INTERVAL, NOT_COMPARED)


class CompareError(Exception):
    """Inputs that cannot be compared (one line: what, where, and the fix)."""


@dataclass
class Row:
    """One setting x model (x batch size) of the two hosts: the verdict, the ratio and what the cells say."""

    setting: str
    row: str
    model: str
    batch_size: int | None
    verdict: str  # one of VERDICTS
    ci: stats.RatioCI | None
    other: report.Cell
    base: report.Cell
    notes: list[str] = field(default_factory=list)

    def ratio_text(self) -> str:
        return self.ci.text() if self.ci else tables.MISSING

    def to_dict(self) -> dict[str, Any]:
        ci = self.ci
        return {
            "setting": self.setting,
            "row": self.row,
            "model": self.model,
            "batch_size": self.batch_size,
            "verdict": self.verdict,
            "ratio": ci.ratio if ci else None,
            "low": ci.low if ci else None,
            "high": ci.high if ci else None,
            "n": self.other.n_ok,
            "n_baseline": self.base.n_ok,
            "status": self.other.status,
            "baseline_status": self.base.status,
            "notes": self.notes,
        }


@dataclass
class Comparison:
    """Two hosts compared: ``other`` over ``baseline``, one Row per setting x model in report order."""

    other: str
    baseline: str
    folders: dict[str, str]
    rows: list[Row]
    warnings: list[str]
    store_warnings: list[str]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(VERDICTS, 0)
        for r in self.rows:
            out[r.verdict] += 1
        return out

    def summary(self) -> str:
        c = self.counts()
        parts = [
            f"{c[stats.FASTER]} faster",
            f"{c[stats.SLOWER]} slower",
            f"{c[stats.NOT_SIGNIFICANT]} not significant",
        ]
        if c[stats.NO_INTERVAL]:
            parts.append(f"{c[stats.NO_INTERVAL]} without an interval (fewer than {stats.MIN_REPEATS} ok repeats)")
        if c[NOT_COMPARED]:
            parts.append(f"{c[NOT_COMPARED]} not compared (no ok repeat on a side)")
        return f"summary: {self.other} against {self.baseline}: " + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "other": self.other,
            "baseline": self.baseline,
            "folders": self.folders,
            "ratio": f"median images/sec of {self.other} over {self.baseline}'s",
            "method": stats.METHOD,
            "seed": stats.SEED,
            "rows": [r.to_dict() for r in self.rows],
            "summary": self.counts(),
            "warnings": self.warnings,
        }


def load_host_folder(path: str | Path) -> report.Merged:
    """One host folder, merged as the report merges it; CompareError for anything else (a data/ folder included)."""
    p = Path(path)
    if not p.is_dir():
        raise CompareError(f"{p}: no such folder; give a host folder, DATA_DIR/HOST_ID (with {store.HOST_FILE})")
    if not (p / store.HOST_FILE).is_file():
        raise CompareError(
            f"{p}: not a host folder (no {store.HOST_FILE}); give DATA_DIR/HOST_ID, a folder `cpubench run` or "
            "`cpubench import-logs` wrote"
        )
    try:
        merged = report.merge([p])
    except (report.MergeError, store.StoreError) as e:
        raise CompareError(str(e)) from e
    return merged


def _relabel(merged: report.Merged, label: str) -> report.Merged:
    host = {**merged.hosts[0], "host_id": label}
    runs = [report.MergedRun(replace(r.rec, host_id=label), r.folder) for r in merged.runs]
    return report.Merged([host], runs, merged.warnings, merged.store_warnings)


def compare(path_a: str | Path, path_b: str | Path, baseline_last: bool = False) -> Comparison:
    """Compare two host folders; the baseline is the first (``baseline_last``: the second)."""
    a, b = load_host_folder(path_a), load_host_folder(path_b)
    ida, idb = a.host_ids[0], b.host_ids[0]
    la, lb = (ida, idb) if ida != idb else (str(path_a), str(path_b))  # one host twice: tell them by folder
    a, b = _relabel(a, la), _relabel(b, lb)
    both = report.Merged(
        a.hosts + b.hosts, a.runs + b.runs, a.warnings + b.warnings, a.store_warnings + b.store_warnings
    )
    base, other = (lb, la) if baseline_last else (la, lb)
    df = report.runs_frame(both)
    settings = report.build_cells(df, [la, lb])
    rows: list[Row] = []
    for setting, (labels, cells) in settings.items():
        for label in labels:
            o, bc = cells[(label, other)], cells[(label, base)]
            rows.append(_row(setting, label, o, bc))
    return Comparison(
        other=other,
        baseline=base,
        folders={la: str(path_a), lb: str(path_b)},
        rows=rows,
        warnings=both.warnings,
        store_warnings=both.store_warnings,
    )


def _state(c: report.Cell) -> str:
    """Why a cell has no images/sec: ``HOST: 3 of 3 repeats failed: reason``, ``HOST: not run``."""
    return f"{c.host_id}: {c.reason or 'not run'}"


def _row(setting: str, label: str, other: report.Cell, base: report.Cell) -> Row:
    notes: list[str] = []
    for c in (other, base):
        if c.noisy and c.foreign_cpu_pct is not None:
            notes.append(f"{c.host_id}: {report.noise_note(c.noisy, c.n_ok, c.foreign_cpu_pct)}")
        if c.drifted:
            notes.append(f"{c.host_id}: {report.drift_note(c.drift_pcts, c.n_ok)}")
    ci = None
    if other.status == "ok" and base.status == "ok":
        ci = stats.ratio_of_medians(other.values, base.values)
    if ci is None:
        notes = [_state(c) for c in (other, base) if c.status != "ok"] + notes
    verdict = ci.verdict if ci else NOT_COMPARED
    return Row(setting, label, other.model, other.batch_size, verdict, ci, other, base, notes)


def render_text(cmp: Comparison) -> str:
    """The terminal form: a header saying which way the ratio goes, one block per setting, the summary line."""

    def named(label: str) -> str:
        folder = cmp.folders[label]
        return label if folder == label else f"{label} ({folder})"

    out = [
        f"{named(cmp.other)} against {named(cmp.baseline)}, the baseline",
        f"ratio: {cmp.other}'s median images/sec over {cmp.baseline}'s; [95% interval]: {stats.METHOD}",
        f"faster / slower: the interval excludes 1.00; not significant ({tables.NOT_SIGNIFICANT_MARK}): it contains "
        f"1.00; repeats: ok engine processes of {cmp.other} / {cmp.baseline}",
    ]
    wl = max((len(r.row) for r in cmp.rows), default=5)
    wv = max(len(v) for v in VERDICTS)
    wr = max((len(r.ratio_text()) for r in cmp.rows), default=1)
    setting = None
    for r in cmp.rows:
        if r.setting != setting:
            setting = r.setting
            out += ["", setting]
        line = f"  {r.row:<{wl}}  {r.verdict:<{wv}}  {r.ratio_text():>{wr}}"
        line += f"  repeats {r.other.n_ok} / {r.base.n_ok}"
        out.append(line.rstrip())
        out += [f"  {'':<{wl}}  {n}" for n in r.notes]
    out += ["", cmp.summary()]
    return "\n".join(out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("host_a", help="a host folder, DATA_DIR/HOST_ID: the baseline (unless --baseline-last)")
    parser.add_argument("host_b", help="another host folder, compared with the first")
    parser.add_argument(
        "--baseline-last", action="store_true", help="make the second folder the baseline (ratios A over B)"
    )
    parser.add_argument("--json", action="store_true", help="print the comparison as one JSON document")


def main(args: argparse.Namespace) -> int:
    try:
        cmp = compare(args.host_a, args.host_b, baseline_last=args.baseline_last)
    except CompareError as e:
        print(f"cpubench compare: error: {e}", file=sys.stderr)
        return 2
    for w in cmp.warnings:
        if w not in cmp.store_warnings:  # cpubench.results.store printed those while reading
            print(f"cpubench compare: warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps(hostfacts.finite(cmp.to_dict()), indent=1))
    else:
        print(render_text(cmp))
    return 0
