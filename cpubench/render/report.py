"""``cpubench report DATA_DIR... [-o summary/] [--baseline HOST] [--docs DIR]``: many hosts into one comparison.

Why: the product a user publishes is the merged comparison, one table per setting (models as rows, hosts as
columns), copied into their docs. Classic reports showed a failed run as 0 or a blank, or averaged a failed repeat in
as half the value; here every cell says what happened:

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
significant), ``1.02 (n=1)`` when a side has fewer than 2 ok repeats (no interval).

Merging checks its inputs: records of an unknown schema (reported by ``cpubench.results.store``), two folders that
claim the
same host id with different machine fingerprints (an error: exit 2), and the same run recorded twice with status ok
(a warning; the earliest record is kept) all show up on stderr and in the Warnings section of ``summary.md``.

Outputs (under ``-o``, default ``summary/``): ``summary.md``, ``results.csv`` (tidy: one row per host x setting x
model x batch x repeat), ``relative.csv`` (one row per host x setting x model against the baseline, with the
interval), ``results.json`` and ``plots/<setting>.png``. Where a host ran a model in both TensorFlow and PyTorch
(at one setting of the other axes), a "TensorFlow vs PyTorch" section gives the ratio table
of
:mod:`cpubench.analysis.frameworks` and its plots,
``plots/frameworks-<host>-<model>-<setting>-<latency|throughput>-bs<N>.png``.
TensorFlow is imported only for the model table (``cpubench.commands.models``), lazily; ``--no-model-table`` skips it.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from cpubench.analysis import frameworks, stats
from cpubench.render import tables
from cpubench.results import store
from cpubench.spec import axes
from tf_cnn_benchmarks import hostfacts
from tf_cnn_benchmarks.record import RunRecord

CV_LIMIT = 0.05
NOISE_LIMIT_PCT = 5.0  # foreign CPU share (percent of the machine) above which a repeat is noisy, plus resolution
PLOTS_DIR = "plots"

# Classic order first (as in the classic summary.md), then other known models; unknown models after, alphabetically.
MODEL_ORDER = (
    "resnet50",
    "resnet152",
    "inception3",
    "inception4",
    "vgg16",
    "alexnet",
    "ssd300",
    "resnet50_v1.5",
    "resnet101",
    "vgg11",
    "vgg19",
    "googlenet",
    "overfeat",
    "mobilenet",
    "nasnet",
    "densenet121",
    "lenet",
    "trivial",
)
ModelRows = Callable[[], list[dict[str, Any]]]


class MergeError(Exception):
    """Inputs that cannot be merged without guessing (one clear line: what, where, and the fix)."""


@dataclass
class MergedRun:
    """A kept record and the folder it was read from."""

    rec: RunRecord
    folder: str


@dataclass
class Merged:
    """Host folders merged: hosts in column order, deduplicated run records, and every warning raised."""

    hosts: list[dict[str, Any]]  # host.json contents plus "folders": [paths]
    runs: list[MergedRun]
    warnings: list[str] = field(default_factory=list)
    store_warnings: list[str] = field(default_factory=list)  # the subset cpubench.results.store raised (and printed)

    @property
    def host_ids(self) -> list[str]:
        return [h["host_id"] for h in self.hosts]


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

    def text(self) -> str:
        ref = f"[{self.note_id}]" if self.note_id is not None else ""
        if self.status == "ok":
            marks = (
                ("~" if self.unstable else "")
                + ("*" if self.partial else "")
                + ("!" if self.noisy else "")
                + ("^" if self.drifted else "")
            )
            return f"{tables.fmt_ips(self.value)} {marks}{ref}".rstrip()
        if self.status in ("failed", "timeout"):
            return f"{self.status} {ref}".rstrip()
        if self.status == "skipped" and (self.reason or "").startswith("skipped: n/a"):
            return f"n/a {ref}".rstrip()  # not applicable on this host (one NUMA node...): the note says why
        return f"{tables.MISSING} {ref}".rstrip()


# ----------------------------------------------------------------------------------------------------------- merge


def merge(paths: Iterable[str | Path]) -> Merged:
    """Read host folders (or folders of them) and merge them; raise MergeError on a host id clash."""
    warnings: list[str] = []
    store_warnings: list[str] = []
    hosts: dict[str, dict[str, Any]] = {}
    runs: list[MergedRun] = []
    for d in store.find_host_dirs(paths):
        hr = store.load_host(d)
        warnings.extend(hr.warnings)
        store_warnings.extend(hr.warnings)
        hid = hr.host_id
        fp = hr.host.get("machine_fingerprint")
        if hid in hosts:
            first = hosts[hid]
            if first.get("machine_fingerprint") != fp:
                raise MergeError(
                    f"host id {hid!r} is claimed by {first['folders'][0]} and {d}, which are different machines "
                    f"(fingerprints {first.get('machine_fingerprint')!r} and {fp!r}); give one of them another id "
                    f"(rename the folder and its host_id, or re-run with --host-id) and report again"
                )
            first["folders"].append(str(d))
        else:
            hosts[hid] = {**hr.host, "host_id": hid, "folders": [str(d)]}
        for rec in hr.runs:
            if rec.host_id != hid:
                warnings.append(f"{d}: a record says host {rec.host_id!r}; filed under the folder's {hid!r}")
            missing = [k for k in ("setting", "model") if not getattr(rec, k)]
            if missing:
                warnings.append(f"{d}: a record lacks {', '.join(missing)}; skipped")
                continue
            runs.append(MergedRun(replace(rec, host_id=hid), str(d)))
    kept = dedupe(runs, warnings)
    return Merged(hosts=list(hosts.values()), runs=kept, warnings=warnings, store_warnings=store_warnings)


def _run_key(r: MergedRun) -> tuple[Any, ...]:
    rec = r.rec
    return (rec.host_id, rec.setting, rec.model, rec.batch_size, rec.repeat, rec.run_hash)


def dedupe(runs: list[MergedRun], warnings: list[str]) -> list[MergedRun]:
    """One record per host x setting x model x batch x repeat x run hash.

    Two ok records of the same run are the same run recorded twice (a folder copied twice, a log imported twice):
    warn and keep the earliest. One ok record beside failed ones is a retry that succeeded: keep the ok one.
    Only failures: keep the latest, it says why the run fails now.
    """
    groups: dict[tuple[Any, ...], list[MergedRun]] = {}
    for r in runs:
        groups.setdefault(_run_key(r), []).append(r)
    out: list[MergedRun] = []
    for key, recs in groups.items():
        if len(recs) == 1:
            out.append(recs[0])
            continue
        oks = sorted((r for r in recs if r.rec.ok), key=lambda r: str(r.rec.started or "~"))
        if len(oks) > 1:
            host, setting, model, bs, repeat, chash = key
            where = ", ".join(sorted({r.folder for r in oks}))
            warnings.append(
                f"{host} {setting} {model} bs {bs} repeat {repeat} (run {chash}) recorded {len(oks)} times "
                f"with status ok (in {where}); kept the one started {oks[0].rec.started or 'first'}, "
                f"dropped {len(oks) - 1}"
            )
        if oks:
            out.append(oks[0])
        else:
            out.append(max(recs, key=lambda r: str(r.rec.started or "")))
    return out


# ------------------------------------------------------------------------------------------------------- ordering


def setting_order(merged: Merged) -> dict[str, tuple[Any, ...]]:
    """Each setting's place in the report, from the axis values stored with its records (never from its name)."""
    params = axes.settings_params((r.rec.setting or "", r.rec.params) for r in merged.runs)
    return {name: (axes.sort_key(p), name) for name, p in params.items()}


def model_sort_key(model: str) -> tuple[int, int, str]:
    return (0, MODEL_ORDER.index(model), model) if model in MODEL_ORDER else (1, 0, model)


# ----------------------------------------------------------------------------------------------------------- cells


def runs_frame(merged: Merged) -> pd.DataFrame:
    """The tidy table of every kept run: one row per host x setting x model x batch x repeat, in report order."""
    brands = {h["host_id"]: h.get("cpu_brand") for h in merged.hosts}
    order = {hid: i for i, hid in enumerate(merged.host_ids)}
    settings = setting_order(merged)
    rows = []
    for m in merged.runs:
        r = m.rec
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
                "thread_env": " ".join(f"{k}={v}" for k, v in (r.thread_env or {}).items()) or None,
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


def build_cells(df: pd.DataFrame, hosts: Sequence[str]) -> dict[str, tuple[list[str], dict[tuple[str, str], Cell]]]:
    """Per setting (in the frame's order, which is report order): its row labels and cells keyed by (row, host)."""
    out: dict[str, tuple[list[str], dict[tuple[str, str], Cell]]] = {}
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


def number_notes(settings: dict[str, tuple[list[str], dict[tuple[str, str], Cell]]], hosts: Sequence[str]) -> None:
    """Give notes global numbers in page order: setting, then row, then host column."""
    n = 0
    for rows, cells in settings.values():
        for row in rows:
            for host in hosts:
                c = cells[(row, host)]
                if c.note:
                    n += 1
                    c.note_id = n


# ---------------------------------------------------------------------------------------------------------- render


def _gpus(value: Any) -> str:
    if not value:
        return "none" if isinstance(value, list) else tables.MISSING
    items = value if isinstance(value, list) else [value]
    names = [str(g.get("name") or g.get("model") or g) if isinstance(g, dict) else str(g) for g in items]
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    return ", ".join(f"{c}\u00d7 {n}" if c > 1 else n for n, c in counts.items())


def _topology(h: dict[str, Any]) -> str:
    parts = [h.get("sockets"), h.get("cores_physical"), h.get("cores_logical")]
    return tables.MISSING if all(p is None for p in parts) else "/".join(tables.escape(p) for p in parts)


def _dates(host: dict[str, Any], df: pd.DataFrame) -> str:
    started = (
        sorted(str(s)[:10] for s in df.loc[df["host_id"] == host["host_id"], "started"].dropna()) if len(df) else []
    )
    if started:
        return started[0] if started[0] == started[-1] else f"{started[0]} to {started[-1]}"
    collected = host.get("collected")
    return str(collected)[:10] if collected else tables.MISSING


def hosts_table(merged: Merged, df: pd.DataFrame) -> str:
    rows = [
        [
            h["host_id"],
            h.get("cpu_brand"),
            _topology(h),
            tables.fmt_bytes_gib(h.get("memory_bytes")),
            h.get("tf_version"),
            _gpus(h.get("gpus")),
            _dates(h, df),
        ]
        for h in merged.hosts
    ]
    headers = ["host", "CPU", "sockets/cores/threads", "memory", "TensorFlow", "GPUs", "runs dated"]
    if "framework" in df and (df["framework"] == "pytorch").any():  # the column only where PyTorch ran
        headers.insert(5, "PyTorch")
        for row, h in zip(rows, merged.hosts, strict=True):
            row.insert(5, h.get("torch_version") or "not installed")
    return tables.markdown_table(headers, rows)


def default_model_rows() -> list[dict[str, Any]]:
    """The engine's model declarations (imports TensorFlow: the only place the report does)."""
    from cpubench.commands.models import model_table_rows  # lazy: pulls in TensorFlow

    return model_table_rows()


def _model_note() -> str | None:
    """The engine's note on how the model figures are counted, when it has one."""
    try:
        from cpubench.commands.models import NOTE
    except Exception:  # noqa: BLE001 - the note is optional
        return None
    return str(NOTE)


def models_section(models: Sequence[str], model_rows: ModelRows | None) -> list[str]:
    """The model table for the models in the results, or one line saying why it is not there."""
    if model_rows is None:
        return ["Model table left out (--no-model-table)."]
    try:
        table = {str(r["model"]): r for r in model_rows()}
    except Exception as e:  # noqa: BLE001 - any failure of the engine's table must not cost the rest of the report
        return [f"Model table not available ({type(e).__name__}: {' '.join(str(e).split())[:200]})."]
    rows = []
    for m in sorted(models, key=model_sort_key):
        r = table.get(m)
        if r is None:
            continue
        size = r.get("input_size")
        size_text = f"{size}\u00d7{size}" if isinstance(size, int) else tables.escape(size)
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
        out.append(f"Not in the model declarations: {', '.join(unknown)}.")
    note = _model_note() if model_rows is default_model_rows else None
    out.append(
        (note + " " if note else "")
        + "Published top-1/top-5 errors are left out: we show no figure whose source we cannot name."
    )
    return out


def setting_table(rows: list[str], cells: dict[tuple[str, str], Cell], hosts: Sequence[str]) -> str:
    body = [[row, *(cells[(row, h)].text() for h in hosts)] for row in rows]
    return tables.markdown_table(["model", *hosts], body, ["left", *["right"] * len(hosts)])


def add_relative(
    settings: dict[str, tuple[list[str], dict[tuple[str, str], Cell]]], hosts: Sequence[str], baseline: str
) -> None:
    """Give each ok cell of a host other than the baseline its ratio to the baseline's cell, with the interval."""
    for rows, cells in settings.values():
        for row in rows:
            base = cells[(row, baseline)]
            for h in hosts:
                c = cells[(row, h)]
                c.relative = None
                if h != baseline and c.status == "ok" and base.status == "ok":
                    c.relative = stats.ratio_of_medians(c.values, base.values)


def relative_text(c: Cell, base: Cell, is_baseline: bool) -> str:
    """One relative-table cell: the ratio and interval, ``1.00`` for the baseline, or why there is no ratio."""
    if c.status in ("failed", "timeout"):
        return c.status
    if c.value is None or base.value is None or base.value <= 0:
        return tables.MISSING
    if is_baseline:
        return tables.fmt_ratio(1.0)
    ci = c.relative or stats.ratio_of_medians(c.values, base.values)
    return tables.MISSING if ci is None else ci.text()


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
    others = [f"{row} on {h}: {n}" for (row, h), n in counts.items() if n != usual]
    return f"Repeats (ok engine processes): {usual} per cell" + (f", except {'; '.join(others)}." if others else ".")


def plot_name(setting: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", setting) + ".png"


def framework_plot_name(comp: frameworks.Comparison, kind: str, batch: int) -> str:
    """``frameworks-<host>-<model>-<setting>-<kind>-bs<N>.png``: apart from the settings' ``<setting>.png``."""
    return plot_name(f"frameworks-{comp.host}-{comp.model}-{comp.label}-{kind}-bs{batch}")


# A comparison and the links of the plots drawn for it: (kind, batch) -> path relative to summary.md
FrameworkPlots = list[tuple[frameworks.Comparison, dict[tuple[str, int], str]]]


def framework_lines(comparisons: FrameworkPlots) -> list[str]:
    """The "TensorFlow vs PyTorch" section: per host, model and setting where both frameworks have ok runs, the
    ratio table and its latency and throughput plots per batch size."""
    if not comparisons:
        return []
    out = [f"## {frameworks.TITLE}", ""]
    for comp, links in comparisons:
        out += [f"### {comp.host}: {comp.model}, {comp.label}" if comp.label else f"### {comp.host}: {comp.model}", ""]
        out += comp.markdown()
        for kind, (title, _) in frameworks.KINDS.items():
            for b in comp.plot_batches:
                if (kind, b) in links:
                    out += [f"![{title} {frameworks.TITLE}, {comp.model}, batch {b}]({links[(kind, b)]})", ""]
    return out


def render_markdown(
    merged: Merged,
    df: pd.DataFrame,
    settings: dict[str, tuple[list[str], dict[tuple[str, str], Cell]]],
    baseline: str,
    model_lines: list[str],
    plots: dict[str, str],
    comparisons: FrameworkPlots | None = None,
) -> str:
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
        out += [f"**{setting}**", ""]
        generated = sorted(
            {str(r.rec.host_id) for r in merged.runs if r.rec.setting == setting and r.rec.data_generated}
        )
        if generated:
            out += [
                f"_Real data here is a small generated set (`cpubench make-data --generate`), not ImageNet, on: "
                f"{', '.join(generated)}._",
                "",
            ]
        out += [setting_table(rows, cells, hosts), ""]
        notes = [cells[(r, h)] for r in rows for h in hosts if cells[(r, h)].note]
        if notes:
            out += [f"- [{c.note_id}] {tables.escape(c.note)}" for c in notes] + [""]
        if setting in plots:
            out += [f"![{setting}]({plots[setting]})", ""]
    if len(hosts) > 1:
        out += [
            "## Relative to " + baseline,
            "",
            f"Median images/sec divided by {baseline}'s (= 1.00), with the 95% confidence interval of the ratio in "
            "brackets. `1.32 [1.25\u20131.40]`: the interval excludes 1.00, the repeats tell the hosts apart. "
            f"`{tables.NOT_SIGNIFICANT_MARK}1.02 [0.97\u20131.08]`: the interval contains 1.00, not significant (the "
            "repeats do not tell the hosts apart). `0.50 (n=1)`: a side has fewer than 2 ok repeats, so there is no "
            "interval. `failed`, `timeout` and `\u2014` as above.",
            "",
        ]
        for setting, (rows, cells) in settings.items():
            out += [f"**{setting}**", "", relative_table(rows, cells, hosts, baseline), ""]
            out += [repeat_counts(rows, cells, hosts), ""]
        out += [
            f"Intervals: {stats.METHOD}; each repeat is one engine process's images/sec, and the fixed seed gives "
            "the same intervals for the same data. With 3 repeats a side or fewer the bootstrap has little to resample "
            "and its interval is a rough guide; more repeats (`cpubench run --repeats N`) make it firmer.",
            "",
        ]
    out += framework_lines(comparisons or [])
    if merged.warnings:
        out += ["## Warnings", ""] + [f"- {tables.escape(w)}" for w in merged.warnings] + [""]
    tidy = "`results.csv`, `relative.csv` and `results.json`" if len(hosts) > 1 else "`results.csv` and `results.json`"
    out += [f"Made with `cpubench report`; tidy data in {tidy}.", ""]
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------------------ main


@dataclass
class ReportFiles:
    summary: Path
    csv: Path
    json: Path
    plots: list[Path]
    relative_csv: Path | None = None  # written when there are two hosts or more


def relative_frame(
    settings: dict[str, tuple[list[str], dict[tuple[str, str], Cell]]], hosts: Sequence[str], baseline: str
) -> pd.DataFrame:
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


def cell_json(c: Cell) -> dict[str, Any]:
    """A cell in ``results.json``: its fields, its text, and its ratio to the baseline with the interval."""
    return {**vars(c), "relative": c.relative.to_dict() if c.relative else None, "text": c.text()}


def build_report(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    baseline: str | None = None,
    model_rows: ModelRows | None = default_model_rows,
    plots: bool = True,
) -> tuple[ReportFiles, Merged]:
    """Merge ``paths`` and write summary.md, results.csv, results.json and the plots under ``out_dir``.

    Raises MergeError / store.StoreError for inputs that cannot be merged and ValueError for a bad baseline.
    """
    merged = merge(paths)
    if not merged.hosts:
        raise MergeError(f"no host folders (with host.json) in {', '.join(str(p) for p in paths)}")
    hosts = merged.host_ids
    baseline = baseline or hosts[0]
    if baseline not in hosts:
        raise ValueError(f"--baseline {baseline!r} is not one of the hosts: {', '.join(hosts)}")
    df = runs_frame(merged)
    settings = build_cells(df, hosts)
    number_notes(settings, hosts)
    add_relative(settings, hosts, baseline)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot_dir = out / PLOTS_DIR
    written: list[Path] = []
    plot_links: dict[str, str] = {}
    if plots and settings:
        from cpubench.render.plots import grouped_bars  # lazy: matplotlib only when plots are drawn

        for old in plot_dir.glob("*.png") if plot_dir.is_dir() else []:
            old.unlink()  # stale plots of settings no longer in the data
        for setting, (rows, cells) in settings.items():
            name = plot_name(setting)
            bars = {
                k: (c.value, c.status if c.status in ("failed", "timeout") else "not run") for k, c in cells.items()
            }
            written.append(grouped_bars(setting, rows, hosts, bars, plot_dir / name))
            plot_links[setting] = f"{PLOTS_DIR}/{name}"
    comparisons: FrameworkPlots = []
    for comp in frameworks.from_records((r.rec for r in merged.runs), hosts):
        links: dict[tuple[str, int], str] = {}
        if plots:
            for kind, b, name in frameworks.plot_files(comp, lambda k, b, c=comp: framework_plot_name(c, k, b)):
                written.append(comp.draw(kind, b, plot_dir / name))
                links[(kind, b)] = f"{PLOTS_DIR}/{name}"
        comparisons.append((comp, links))
    models = sorted(df["model"].unique()) if len(df) else []
    md = render_markdown(merged, df, settings, baseline, models_section(models, model_rows), plot_links, comparisons)
    files = ReportFiles(out / "summary.md", out / "results.csv", out / "results.json", written)
    files.summary.write_text(md, encoding="utf-8")
    df.to_csv(files.csv, index=False)
    rel_csv = out / "relative.csv"
    if len(hosts) > 1:
        relative_frame(settings, hosts, baseline).to_csv(rel_csv, index=False)
        files.relative_csv = rel_csv
    elif rel_csv.exists():
        rel_csv.unlink()  # from an earlier report of more hosts: there is no baseline to compare with now
    doc = {
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "baseline": baseline,
        "hosts": merged.hosts,
        "settings": list(settings),
        "cells": [cell_json(c) for _, cells in settings.values() for c in cells.values()],
        "runs": [{**r.rec.to_dict(), "folder": r.folder} for r in merged.runs],
        "warnings": merged.warnings,
    }
    files.json.write_text(
        json.dumps(hostfacts.finite(doc), indent=1, sort_keys=False, default=str) + "\n", encoding="utf-8"
    )
    return files, merged


def copy_to_docs(files: ReportFiles, docs: str | Path) -> Path:
    """Copy summary.md and its plots into ``docs`` keeping the relative image paths working."""
    target = Path(docs)
    (target / PLOTS_DIR).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(files.summary, target / "summary.md")
    for p in files.plots:
        shutil.copyfile(p, target / PLOTS_DIR / p.name)
    return target / "summary.md"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", nargs="+", help="host folders (with host.json and runs.jsonl) or folders of them")
    parser.add_argument("-o", "--out", default="summary", help="output folder (default: summary)")
    parser.add_argument("--baseline", default=None, help="host id the relative table divides by (default: the first)")
    parser.add_argument("--docs", default=None, help="also copy summary.md and its plots into this folder")
    parser.add_argument("--no-model-table", action="store_true", help="skip the model table (no TensorFlow import)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def main(args: argparse.Namespace) -> int:
    try:
        files, merged = build_report(
            args.data,
            args.out,
            baseline=args.baseline,
            model_rows=None if args.no_model_table else default_model_rows,
            plots=not args.no_plots,
        )
    except (MergeError, store.StoreError, ValueError) as e:
        print(f"cpubench report: error: {e}", file=sys.stderr)
        return 2
    for w in merged.warnings:
        if w in merged.store_warnings:
            continue  # cpubench.results.store printed it already while reading
        print(f"cpubench report: warning: {w}", file=sys.stderr)
    if args.docs:
        copied = copy_to_docs(files, args.docs)
        print(f"copied summary.md and {len(files.plots)} plot(s) to {copied.parent}")
    print(
        f"wrote {files.summary} ({len(merged.hosts)} host(s), {len(merged.runs)} runs), {files.csv.name}, "
        + (f"{files.relative_csv.name}, " if files.relative_csv else "")
        + f"{files.json.name}, {len(files.plots)} plot(s)"
        + (f"; {len(merged.warnings)} warning(s), see the Warnings section" if merged.warnings else "")
    )
    return 0
