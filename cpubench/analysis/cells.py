"""The report's cells: every kept run as a tidy frame, and per setting one cell per row (model, batch) and host.

Why cells: the classic reports showed a failed run as 0 or a blank, or averaged a failed repeat in as half the
value; a cell instead says what happened (its status, the median of its ok repeats, their spread, how many failed,
whether a repeat was noisy or drifted) and why, in its note. :mod:`cpubench.render.summary` draws the marks
(``~ * ! ^``) from these fields; ``cpubench compare`` reads the same cells, so both commands agree.

A repeat is noisy when other processes used more than NOISE_LIMIT_PCT of the machine's CPU during its measured
window (``noise.foreign_cpu_pct`` above the limit plus the measurement's resolution); it drifted when its timed steps
got slower or faster from the first half to the second by more than their spread (``samples.drift``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from cpubench.analysis import stats
from cpubench.analysis.order import model_sort_key, setting_order
from cpubench.analysis.redact import public_env
from cpubench.analysis.tune import is_tune
from cpubench.results.merge import Merged

CV_LIMIT = 0.05
NOISE_LIMIT_PCT = 5.0  # foreign CPU share (percent of the machine) above which a repeat is noisy, plus resolution


@dataclass
class Cell:
    """One table cell: a host's result for one model (and batch size) in one setting."""

    setting: str
    row: str
    model: str
    batch_size: int | None
    host_id: str
    status: str  # "ok" (at least one ok repeat), "failed", "timeout", "skipped", "missing"
    value: float | None = None  # median images/sec of the ok repeats
    n_ok: int = 0
    n_runs: int = 0  # ok + failed + timeout
    cv: float | None = None
    low: float | None = None
    high: float | None = None
    values: list[float] = field(default_factory=list)  # images/sec of each ok repeat, in repeat order
    noisy: int = 0  # ok repeats whose measured window saw more foreign CPU than NOISE_LIMIT_PCT (+ resolution)
    foreign_cpu_pct: float | None = None  # the largest foreign CPU share among those repeats
    drift_pcts: list[float] = field(default_factory=list)  # change_pct of each ok repeat that drifted
    relative: stats.RatioCI | None = None  # this cell against the baseline's (add_relative)
    reason: str | None = None  # why a failed, timed-out or skipped cell has no value (the note without "where")
    note: str | None = None  # footnote text, when the cell needs one
    note_id: int | None = None

    @property
    def unstable(self) -> bool:
        return self.cv is not None and self.cv > CV_LIMIT

    @property
    def partial(self) -> bool:
        return self.status == "ok" and self.n_ok < self.n_runs

    @property
    def drifted(self) -> bool:
        return bool(self.drift_pcts)


# setting -> (its row labels in order, its cells keyed by (row, host)), in report order
Settings = dict[str, tuple[list[str], dict[tuple[str, str], Cell]]]


def runs_frame(merged: Merged) -> pd.DataFrame:
    """The tidy table of every kept run: one row per host x setting x model x batch x repeat, in report order.
    Instances of a tune verification are not settings of their own: the report shows them as tuned splits
    (:mod:`cpubench.analysis.tune`)."""
    brands = merged.cpu_brands()
    order = {hid: i for i, hid in enumerate(merged.host_ids)}
    settings = setting_order(merged)
    rows = []
    for m in merged.runs:
        r = m.rec
        if is_tune(r):
            continue
        lat = r.latency_ms
        drift = r.samples.drift
        noise = r.noise or {}
        threads = r.threads or {}
        rows.append(
            {
                "host_id": r.host_id,
                "cpu_brand": brands.get(r.host_id),
                "setting": r.setting,
                "model": r.model,
                "batch_size": r.batch_size,
                "num_devices": r.num_devices,
                "repeat": r.repeat,
                "status": r.status,
                "images_per_sec": r.images_per_sec if r.ok else None,
                "latency_ms_mean": lat.mean if lat else None,
                "latency_ms_min": lat.min if lat else None,
                "latency_ms_max": lat.max if lat else None,
                "latency_ms_p50": lat.p50 if lat else None,
                "latency_ms_p90": lat.p90 if lat else None,
                "latency_ms_p99": lat.p99 if lat else None,
                "step_cv": r.samples.cv,
                "steps": len(r.step_times),
                "windows": r.samples.num_windows,
                "drift_pct": drift.change_pct if drift else None,
                "drifted": drift.drifted if drift else None,
                "foreign_cpu_pct": _number(noise.get("foreign_cpu_pct")),
                "resolution_pct": _number(noise.get("resolution_pct")),
                "load_avg_before": (r.load_avg_before or [None])[0],
                "load_avg_after": (r.load_avg_after or [None])[0],
                "reason": r.reason,
                "started": r.started,
                "duration": r.duration,
                "framework": r.framework,
                "framework_version": r.framework_version,
                "engine_version": r.engine_version,
                "threads_intra": threads.get("intra_effective"),
                "threads_inter": threads.get("inter_effective"),
                "cpus": _cpu_list(r.cpus),
                "memory_policy": (r.memory_policy or {}).get("mode"),
                "thread_env": " ".join(f"{k}={v}" for k, v in (public_env(r.thread_env) or {}).items()) or None,
                "env_removed": " ".join(r.env_removed) or None,
                "config_name": r.config_name,
                "run_hash": r.run_hash,
                "schema": r.schema,
                "source": r.source,
                "log": r.log,
                "folder": m.folder,
                **{f"param_{k}": v for k, v in sorted(r.params.items()) if not isinstance(v, (dict, list))},
            }
        )
    rows.sort(
        key=lambda r: (
            settings.get(r["setting"], ((), r["setting"])),
            model_sort_key(r["model"]),
            r["batch_size"] if isinstance(r["batch_size"], int) else -1,
            order.get(r["host_id"], len(order)),
            r["repeat"] if isinstance(r["repeat"], int) else -1,
        )
    )
    return pd.DataFrame(rows)


def _number(value: Any) -> float | None:
    """A finite number from a free-form record field (``noise`` is the engine's dict), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _cpu_list(cpus: list[int] | None) -> str | None:
    """``0-3,8`` for [0, 1, 2, 3, 8]."""
    if not cpus:
        return None
    spans: list[list[int]] = []
    for c in sorted(cpus):
        if spans and c == spans[-1][1] + 1:
            spans[-1][1] = c
        else:
            spans.append([c, c])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def build_cells(df: pd.DataFrame, hosts: Sequence[str]) -> Settings:
    """Per setting (in the frame's order, which is report order): its row labels and cells keyed by (row, host)."""
    out: Settings = {}
    if df.empty:
        return out
    for setting in dict.fromkeys(df["setting"]):
        sdf = df[df["setting"] == setting]
        labels: list[tuple[str, int | None, str]] = []
        for model in sorted(sdf["model"].unique(), key=model_sort_key):
            sizes = sorted({int(b) for b in sdf.loc[sdf["model"] == model, "batch_size"].dropna()})
            if len(sizes) > 1:
                labels.extend((model, b, f"{model} (bs {b})") for b in sizes)
            else:
                labels.append((model, sizes[0] if sizes else None, model))
        cells: dict[tuple[str, str], Cell] = {}
        for model, bs, label in labels:
            mdf = sdf[sdf["model"] == model]
            if bs is not None and label != model:
                mdf = mdf[mdf["batch_size"] == bs]
            for host in hosts:
                cells[(label, host)] = _cell(setting, label, model, bs, host, mdf[mdf["host_id"] == host])
        out[setting] = ([lab for _, _, lab in labels], cells)
    return out


def _reasons(runs: pd.DataFrame) -> str:
    seen: list[str] = []
    for r in runs["reason"]:
        text = str(r) if isinstance(r, str) and r.strip() else "no reason recorded"
        if text not in seen:
            seen.append(text)
    return "; ".join(seen)


def _cell(setting: str, row: str, model: str, bs: int | None, host: str, runs: pd.DataFrame) -> Cell:
    cell = Cell(setting=setting, row=row, model=model, batch_size=bs, host_id=host, status="missing")
    where = f"{row} on {host}"
    made = runs[runs["status"].isin(["ok", "failed", "timeout"])]
    if made.empty:
        skipped = runs[runs["status"] == "skipped"]
        if not skipped.empty:
            cell.status = "skipped"
            cell.reason = f"skipped: {_reasons(skipped)}"
            cell.note = f"{where}: {cell.reason}"
        return cell
    ok = made[made["status"] == "ok"]
    bad = made[made["status"] != "ok"]
    cell.n_runs, cell.n_ok = len(made), len(ok)
    if ok.empty:
        n_timeout = int((bad["status"] == "timeout").sum())
        cell.status = "timeout" if n_timeout == len(bad) else "failed"
        verb = "timed out" if cell.status == "timeout" else "failed"
        what = f"{len(bad)} of {len(bad)} repeats {verb}" if len(bad) > 1 else verb
        if cell.status == "failed" and n_timeout:
            what = f"{len(bad) - n_timeout} repeats failed and {n_timeout} timed out"
        cell.reason = f"{what}: {_reasons(bad)}"
        cell.note = f"{where}: {cell.reason}"
        return cell
    values = ok["images_per_sec"].astype(float)
    cell.status = "ok"
    cell.values = [float(v) for v in values]
    cell.value = float(values.median())
    cell.low, cell.high = float(values.min()), float(values.max())
    if len(values) >= 2 and values.mean() > 0:
        cell.cv = float(values.std(ddof=1) / values.mean())
    parts = []
    if cell.unstable:
        parts.append(
            f"the {len(values)} ok repeats spread {cell.low:.2f}\u2013{cell.high:.2f} images/sec "
            f"(CV {100 * (cell.cv or 0):.1f}% > {100 * CV_LIMIT:.0f}%)"
        )
    if cell.partial:
        kinds = bad["status"].value_counts()
        what = " and ".join(f"{n} {'timed out' if s == 'timeout' else 'failed'}" for s, n in kinds.items())
        parts.append(f"{what} of {cell.n_runs} repeats ({_reasons(bad)}); the value is the median of the ok ones")
    foreign = [float(f) for f, res in zip(ok["foreign_cpu_pct"], ok["resolution_pct"], strict=True) if _noisy(f, res)]
    if foreign:
        cell.noisy, cell.foreign_cpu_pct = len(foreign), max(foreign)
        parts.append(noise_note(cell.noisy, cell.n_ok, cell.foreign_cpu_pct))
    cell.drift_pcts = [float(p) for p, d in zip(ok["drift_pct"], ok["drifted"], strict=True) if _true(d)]
    if cell.drift_pcts:
        parts.append(drift_note(cell.drift_pcts, cell.n_ok))
    if parts:
        cell.note = f"{where}: " + "; ".join(parts)
    return cell


def _noisy(foreign: Any, resolution: Any) -> bool:
    """Other processes used more of the machine than NOISE_LIMIT_PCT beyond what the measurement can resolve."""
    if foreign is None or pd.isna(foreign):
        return False
    res = 0.0 if resolution is None or pd.isna(resolution) else float(resolution)
    return float(foreign) > NOISE_LIMIT_PCT + res


def _true(value: Any) -> bool:
    """True for a frame's True (Python or numpy bool); False for False, None and NaN."""
    return value is not None and not pd.isna(value) and bool(value)


def noise_note(noisy: int, n_ok: int, foreign_pct: float) -> str:
    """``noisy: a repeat saw 23.4% foreign CPU during its measured window`` (or k of n repeats, the largest share)."""
    if noisy == 1:
        return f"noisy: a repeat saw {foreign_pct:.1f}% foreign CPU during its measured window"
    return f"noisy: {noisy} of {n_ok} repeats saw up to {foreign_pct:.1f}% foreign CPU during their measured windows"


def drift_note(drift_pcts: Sequence[float], n_ok: int) -> str:
    """``drift: the second half of the timed steps ran 8.1% slower than the first (beyond their spread)``.

    Positive change is slower (longer steps). With several drifted repeats: how many, and the largest change in
    each direction.
    """
    slower = [p for p in drift_pcts if p > 0]
    faster = [-p for p in drift_pcts if p < 0]
    upto = "up to " if len(drift_pcts) > 1 else ""
    how = []
    if slower:
        how.append(f"{upto}{max(slower):.1f}% slower")
    if faster:
        how.append(f"{upto}{max(faster):.1f}% faster")
    who = "" if n_ok == 1 else f"in {len(drift_pcts)} of {n_ok} repeats "
    speed = " or ".join(how) if how else "at another speed"
    return f"drift: {who}the second half of the timed steps ran {speed} than the first (beyond their spread)"


def number_notes(settings: Settings, hosts: Sequence[str]) -> None:
    """Give notes global numbers in page order: setting, then row, then host column."""
    n = 0
    for rows, cells in settings.values():
        for row in rows:
            for host in hosts:
                c = cells[(row, host)]
                if c.note:
                    n += 1
                    c.note_id = n


def add_relative(settings: Settings, hosts: Sequence[str], baseline: str) -> None:
    """Give each ok cell of a host other than the baseline its ratio to the baseline's cell, with the interval."""
    for rows, cells in settings.values():
        for row in rows:
            base = cells[(row, baseline)]
            for h in hosts:
                c = cells[(row, h)]
                c.relative = None
                if h != baseline and c.status == "ok" and base.status == "ok":
                    c.relative = stats.ratio_of_medians(c.values, base.values)


def relative_frame(settings: Settings, hosts: Sequence[str], baseline: str) -> pd.DataFrame:
    """``relative.csv``: one row per setting x row x host other than the baseline, the ratio and its interval."""
    rows = []
    for setting, (labels, cells) in settings.items():
        for label in labels:
            base = cells[(label, baseline)]
            for h in hosts:
                if h == baseline:
                    continue
                c = cells[(label, h)]
                ci = c.relative
                rows.append(
                    {
                        "setting": setting,
                        "row": label,
                        "model": c.model,
                        "batch_size": c.batch_size,
                        "host_id": h,
                        "baseline": baseline,
                        "status": c.status,
                        "baseline_status": base.status,
                        "ratio": ci.ratio if ci else None,
                        "low": ci.low if ci else None,
                        "high": ci.high if ci else None,
                        "verdict": ci.verdict if ci else None,
                        "n": c.n_ok,
                        "n_baseline": base.n_ok,
                        "noisy": c.noisy or base.noisy,
                        "drifted": c.drifted or base.drifted,
                    }
                )
    return pd.DataFrame(rows)
