"""Efficiency of every figure: a run's achieved GFLOP/s and its share of what its host can do at that precision and
core count (the host's measured limits, :mod:`cpubench.host.limits`).

Why: images/sec says which host is faster; the share of the GEMM limit says whether a slow host is slow because it
has fewer FLOPs or because the run left speed on the table (a thread layout, a batch too small to feed the cores).

How a figure is counted:

- FLOPs per image are the model declaration's multiply-adds times two (:meth:`Graph.summary`, the DAG the engine
  executes: convolutions and dense layers; pooling, batch norm and activations are not counted, as in the papers'
  columns). Training counts three forward passes per image (forward, and the backward pass's two products, for the
  input's and the weights' gradients): :data:`TRAINING_FACTOR`, said so wherever the figure shows.
- The limit is the host's GEMM rate for the run's precision (fp32, or bf16 where the host has it natively; fp16
  has no CPU limit): the all-core limit when the run used at least as many threads as the host has physical cores,
  else the one-core limit times the threads it used (never above the all-core limit), and the basis says which.
- A host without limits (folders written before them, or measured with ``CPUBENCH_NO_LIMITS``) gives the achieved
  GFLOP/s and no share, with the reason.

Data in, data out: nothing here reads a file; the declarations are read through the engine's registry (no
TensorFlow import).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from cpubench.host import limits as lim
from cpubench.host.record import HostRecord

TRAINING_FACTOR = 3
TRAINING_NOTE = "training counted as 3x the forward pass's FLOPs (forward, and the backward pass's two products)"
# The roof is a large matrix product's rate, which sits below the cores' FMA rate: a direct convolution reuses each
# loaded input across its kernel's taps, so it needs fewer loads per multiply-add than a GEMM and can pass the roof.
LIMIT_NOTE = ("the GEMM limit is a large matrix product's rate, not the cores' FMA peak: direct convolutions, which "
              "reuse each loaded input across their kernel's taps, can pass it, so a share above 100% is measured, "
              "not an error")  # fmt: skip
# results.csv's new columns, after every older one (readers of the old columns see them unchanged)
COLUMNS = ("gflop_per_image", "achieved_gflops", "peak_gflops", "pct_of_peak", "peak_basis")


@functools.cache
def flops_per_image(model: str) -> float | None:
    """Forward FLOPs of one image (2 x the declaration's multiply-adds), or None for a model not declared here."""
    from tf_cnn_benchmarks.models import registry  # lazy: the declarations only when a figure is asked for

    try:
        return 2.0 * float(registry.get(model).graph().summary()["macs"])
    except (registry.UnknownModelError, ValueError):
        return None


@dataclass(frozen=True)
class Figure:
    """One run's (or cell's) efficiency: FLOPs per image as counted, achieved GFLOP/s, the limit and its share."""

    gflop_per_image: float | None
    achieved: float | None  # GFLOP/s
    peak: float | None  # GFLOP/s of the limit it is set against
    basis: str  # "fp32, all cores" / "fp32, one core x 4 threads", or "n/a: why"

    @property
    def share(self) -> float | None:
        """Achieved over the limit (0..1, above 1 where a run beat the GEMM: a model counted low)."""
        return self.achieved / self.peak if self.achieved is not None and self.peak else None


def limit_for(
    host_limits: dict[str, Any] | None, precision: str, threads: int | None, cores: int | None
) -> tuple[float | None, str]:
    """The GEMM limit for ``precision`` at ``threads`` on a host with ``cores`` physical cores, and its basis."""
    if not host_limits:
        return None, f"n/a: {lim.why_not(host_limits, lim.GEMM_FP32_ALL)}"
    if precision not in ("fp32", "bf16"):
        return None, f"n/a: no {precision} limit (the CPU GEMMs measured are fp32 and bf16)"
    every, one = lim.value(host_limits, f"gemm_{precision}_all"), lim.value(host_limits, f"gemm_{precision}_one")
    if threads is None or cores is None or threads >= cores:
        if every is None:
            return None, f"n/a: {lim.why_not(host_limits, f'gemm_{precision}_all')}"
        return every, f"{precision}, all cores"
    if one is None:
        return None, f"n/a: {lim.why_not(host_limits, f'gemm_{precision}_one')}"
    scaled = one * threads
    if every is not None and scaled > every:
        return every, f"{precision}, all cores (one core x {threads} threads is more)"
    return scaled, f"{precision}, one core x {threads} thread{'s' if threads != 1 else ''}"


def figure(
    model: str | None,
    images_per_sec: float | None,
    training: bool,
    precision: str,
    threads: int | None,
    host: HostRecord | None,
    imported: bool = False,
) -> Figure:
    """The efficiency of one figure of ``model`` on ``host``; ``imported``: the figure comes from an upstream log
    (``cpubench import-logs``), whose network of a name may not be this declaration's (:func:`upstream_differs`)."""
    from tf_cnn_benchmarks.models import registry  # lazy, as flops_per_image

    other = registry.upstream_differs(model) if imported and model else ""
    per = flops_per_image(model) if model and not other else None
    per = per * (TRAINING_FACTOR if training else 1) if per is not None else None
    achieved = per * images_per_sec / 1e9 if per is not None and images_per_sec else None
    cores = host.cores_physical if host is not None else None
    peak, basis = limit_for(lim.of_host(host) if host is not None else None, precision, threads, cores)
    if other:
        basis = f"n/a: imported from an upstream log, and {other}"
    elif per is None:
        basis = f"n/a: {model} is not a model declared here" if model else "n/a: no model"
    return Figure(None if per is None else per / 1e9, achieved, peak, basis)


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def threads_used(row: Mapping[str, Any]) -> int | None:
    """The intra-op threads a run used (the engine's effective count, else the flag), at most the CPUs it had."""
    t = _number(row.get("threads_intra")) or _number(row.get("param_num_intra_threads"))
    cpus = row.get("cpus")
    if isinstance(cpus, str) and cpus:
        n = sum(int(b) - int(a) + 1 if sep else 1 for a, sep, b in (s.partition("-") for s in cpus.split(",")))
        t = min(t, n) if t else n
    return int(t) if t else None


def of_row(row: Mapping[str, Any], host: HostRecord | None) -> Figure:
    """A results.csv row's efficiency (its own images/sec)."""
    training = not bool(row.get("param_forward_only") is True)
    precision = row.get("param_precision") if isinstance(row.get("param_precision"), str) else "fp32"
    return figure(row.get("model"), _number(row.get("images_per_sec")), training, precision or "fp32",
                  threads_used(row), host, imported=row.get("source") == "import")  # fmt: skip


def add_columns(df: pd.DataFrame, hosts: Mapping[str, HostRecord]) -> pd.DataFrame:
    """``df`` (the report's runs frame) with :data:`COLUMNS` appended, for every ok row; a copy."""
    out = df.copy()
    cols: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    for row in df.to_dict("records"):
        f = of_row(row, hosts.get(str(row.get("host_id"))))
        ok = row.get("status") == "ok"
        cols["gflop_per_image"].append(None if f.gflop_per_image is None else round(f.gflop_per_image, 4))
        cols["achieved_gflops"].append(None if f.achieved is None or not ok else round(f.achieved, 2))
        cols["peak_gflops"].append(None if f.peak is None else round(f.peak, 2))
        cols["pct_of_peak"].append(None if f.share is None or not ok else round(100 * f.share, 1))
        cols["peak_basis"].append(f.basis)
    for c in COLUMNS:
        out[c] = cols[c] if len(df) else pd.Series(dtype=object)
    return out


def record_figure(rec: Any, host: HostRecord | None, images_per_sec: float | None = None) -> Figure:
    """A run record's efficiency (at ``images_per_sec``, e.g. a cell's median, else its own)."""
    params = rec.params or {}
    threads = (rec.threads or {}).get("intra_effective") or params.get("num_intra_threads") or None
    if rec.cpus and threads:
        threads = min(int(threads), len(rec.cpus))
    ips = images_per_sec if images_per_sec is not None else rec.images_per_sec
    return figure(rec.model, ips, not params.get("forward_only", False), str(params.get("precision") or "fp32"),
                  int(threads) if threads else None, host, imported=rec.source == "import")  # fmt: skip


def hosts_of(merged: Any) -> dict[str, HostRecord]:
    """host id -> its record, for a merge (``cpubench.results.merge.Merged``), each with the limits a figure may be
    set against (:func:`cpubench.host.limits.of_host`: another machine's limits give way to the reason they are not
    used), so every reader of these records (the pages' tables and rooflines too) sees the same."""
    out = {}
    for h in merged.hosts:
        limits = lim.of_host(h.record)
        out[h.host_id] = h.record if limits is h.record.limits else replace(h.record, limits=limits)
    return out


def any_limits(merged: Any) -> bool:
    """Whether any host of the merge has measured limits (the report shows efficiency only then)."""
    return any(h.record.limits for h in merged.hosts)


def cell_figures(settings: Mapping[str, Any], merged: Any) -> dict[tuple[str, str, str], Figure]:
    """(setting, row, host) -> the efficiency of each ok cell's median images/sec, its spec from the cell's first ok
    record (precision, training, threads are the setting's, so every repeat has the same)."""
    first: dict[tuple[Any, ...], Any] = {}
    for m in merged.runs:
        r = m.rec
        if r.ok:
            first.setdefault((r.setting, r.host_id, r.model, r.batch_size), r)
    hosts = hosts_of(merged)
    out: dict[tuple[str, str, str], Figure] = {}
    for setting, (_rows, cells) in settings.items():
        for (row, host), c in cells.items():
            rec = first.get((setting, host, c.model, c.batch_size))
            if c.status == "ok" and rec is not None:
                out[(setting, row, host)] = record_figure(rec, hosts.get(host), c.value)
    return out
