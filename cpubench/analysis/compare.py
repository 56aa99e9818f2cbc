"""Two host folders compared, per setting and model: the verdict (faster, slower, not significant), the ratio of
their median images/sec with its 95% bootstrap interval (:mod:`cpubench.analysis.stats`), and the notes of the cells
behind it.

Why: the report's relative table answers "how do all hosts compare to one", for publishing; before a change is kept
(a new host, a new TensorFlow, a BIOS setting) one asks about two folders only, and wants the answer per row.

The first folder is the baseline, as in ``cpubench report`` (whose baseline is its first host), so the two commands
give the same ratios: each row is B over A, and ``faster`` means B ran faster than A; ``baseline_last`` makes the
second folder the baseline (A over B). The folders are read with :func:`cpubench.results.merge.merge`, each on its
own, so two folders of one host (before and after a change) compare too; the cells are the report's own
(:mod:`cpubench.analysis.cells`). The text is :mod:`cpubench.render.compare`; ``cpubench compare`` is
:mod:`cpubench.commands.compare`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cpubench.analysis import cost, efficiency, stats
from cpubench.analysis.cells import Cell, build_cells, drift_note, noise_note, runs_frame
from cpubench.host import limits as lim
from cpubench.results import store
from cpubench.results.merge import Merged, MergeError, merge, relabel

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
    other: Cell
    base: Cell
    notes: list[str] = field(default_factory=list)
    # host label -> this row's efficiency there, where both hosts have limits (else empty)
    peak: dict[str, efficiency.Figure] = field(default_factory=dict)
    # host label -> this row's cost and energy there, where a host has a price or its runs read energy (else empty)
    cost: dict[str, cost.CellCost] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        ci = self.ci
        peak = {"pct_of_peak": {h: None if f.share is None else round(100 * f.share, 1) for h, f in self.peak.items()},
                "achieved_gflops": {h: None if f.achieved is None else round(f.achieved, 2)
                                    for h, f in self.peak.items()}} if self.peak else {}  # fmt: skip
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
            **peak,
            **({"images_per_dollar": {h: c.images_per_dollar for h, c in self.cost.items()},
                "joules_per_image": {h: c.joules_per_image for h, c in self.cost.items()}} if self.cost else {}),
        }  # fmt: skip


@dataclass
class Comparison:
    """Two hosts compared: ``other`` over ``baseline``, one Row per setting x model in report order."""

    other: str
    baseline: str
    folders: dict[str, str]
    rows: list[Row]
    warnings: list[str]
    store_warnings: list[str]
    # host label -> its measured limits, where both hosts have them (else empty: the comparison reads as before)
    limits: dict[str, dict[str, Any]] = field(default_factory=dict)

    def gemm_ratio(self, name: str = "gemm_fp32_all") -> float | None:
        """``other``'s limit over the baseline's (GFLOP/s or GB/s), or None where a side has none."""
        a, b = lim.value(self.limits.get(self.other), name), lim.value(self.limits.get(self.baseline), name)
        return a / b if a is not None and b is not None else None

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(VERDICTS, 0)
        for r in self.rows:
            out[r.verdict] += 1
        return out

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
            **({"limits": self.limits} if self.limits else {}),
        }


def load_host_folder(path: str | Path) -> Merged:
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
        merged = merge([p])
    except (MergeError, store.StoreError) as e:
        raise CompareError(str(e)) from e
    return merged


def compare(path_a: str | Path, path_b: str | Path, baseline_last: bool = False) -> Comparison:
    """Compare two host folders; the baseline is the first (``baseline_last``: the second). A folder compared with
    itself (however its path is spelled: a trailing slash, ``./``, a link to it) is refused: its own repeats against
    themselves would be read as two hosts' and invent a comparison."""
    try:
        same = Path(path_a).is_dir() and Path(path_b).is_dir() and Path(path_a).samefile(path_b)
    except OSError:
        same = False
    if same:
        raise CompareError(f"{path_a} and {path_b} are the same folder: compare two different host folders")
    a, b = load_host_folder(path_a), load_host_folder(path_b)
    ida, idb = a.host_ids[0], b.host_ids[0]
    la, lb = (ida, idb) if ida != idb else (str(path_a), str(path_b))  # one host twice: tell them by folder
    a, b = relabel(a, la), relabel(b, lb)
    both = Merged(a.hosts + b.hosts, a.runs + b.runs, a.warnings + b.warnings, a.store_warnings + b.store_warnings)
    base, other = (lb, la) if baseline_last else (la, lb)
    df = runs_frame(both)
    settings = build_cells(df, [la, lb])
    rows: list[Row] = []
    for setting, (labels, cells) in settings.items():
        for label in labels:
            o, bc = cells[(label, other)], cells[(label, base)]
            rows.append(_row(setting, label, o, bc))
    # Each host's own limits (another machine's, pieced into its host.json, give way to the reason: lim.of_host).
    limits = {h.host_id: mine for h in both.hosts if (mine := lim.of_host(h.record))}
    if len(limits) == 2:  # both hosts measured: each row's share of each host's own limit
        figures = efficiency.cell_figures(settings, both)
        for r in rows:
            r.peak = {h: f for h in (other, base) if (f := figures.get((r.setting, r.row, h))) is not None}
    if cost.shown(both):
        costs = {(c.setting, c.row, c.host): c for c in cost.cell_costs(settings, both)}
        for r in rows:
            r.cost = {h: c for h in (other, base) if (c := costs.get((r.setting, r.row, h))) is not None}
    return Comparison(
        other=other,
        baseline=base,
        folders={la: str(path_a), lb: str(path_b)},
        rows=rows,
        warnings=both.warnings,
        store_warnings=both.store_warnings,
        limits=limits if len(limits) == 2 else {},
    )


def _state(c: Cell) -> str:
    """Why a cell has no images/sec: ``HOST: 3 of 3 repeats failed: reason``, ``HOST: not run``."""
    return f"{c.host_id}: {c.reason or 'not run'}"


def _row(setting: str, label: str, other: Cell, base: Cell) -> Row:
    notes: list[str] = []
    for c in (other, base):
        if c.noisy and c.foreign_cpu_pct is not None:
            notes.append(f"{c.host_id}: {noise_note(c.noisy, c.n_ok, c.foreign_cpu_pct)}")
        if c.drifted:
            notes.append(f"{c.host_id}: {drift_note(c.drift_pcts, c.n_ok)}")
    ci = None
    if other.status == "ok" and base.status == "ok":
        ci = stats.ratio_of_medians(other.values, base.values)
    if ci is None:
        notes = [_state(c) for c in (other, base) if c.status != "ok"] + notes
    verdict = ci.verdict if ci else NOT_COMPARED
    return Row(setting, label, other.model, other.batch_size, verdict, ci, other, base, notes)
