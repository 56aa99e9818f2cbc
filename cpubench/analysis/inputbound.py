"""Input-bound, said in numbers: each real-data setting's images/sec as a fraction of the synthetic figure of the
same model, mode and device count, with the host CPU's utilisation during the measured window.

Why: the classic study asks how much the host CPU holds back the GPUs. Synthetic data measures the devices alone;
real data adds the CPU's input pipeline (decode, distortions, batching). Where real data reaches less than
:data:`INPUT_BOUND_BELOW` of the synthetic figure, the input pipeline is the limit, and the CPU's utilisation over
the same window says whether the CPU was saturated doing it. The synthetic counterpart is the setting with every
axis value the same but ``data: syn`` (synthetic data has no distortions): same model, batch, variable update, NCCL,
device type and count, logical or real GPUs (a logical-GPU run is only ever compared with a logical one), threads.

Data in, data out: :func:`input_bound` reads the merged records; :mod:`cpubench.render.summary` writes the table.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from cpubench.analysis.order import model_sort_key, setting_order
from cpubench.analysis.tune import is_tune
from cpubench.results.merge import Merged
from cpubench.spec import axes

INPUT_BOUND_BELOW = 0.90  # real data under 90% of synthetic: the input pipeline is the limit
# Axes that differ between a real-data setting and its synthetic counterpart by design.
_DATA_AXES = ("data", "distortions")


@dataclass(frozen=True)
class InputBound:
    """One real-data cell (host, setting, model, batch) beside its synthetic counterpart.

    ``fraction`` is the median real images/sec over the median synthetic one (None where either has no ok run);
    ``host_cpu_pct`` the median over the real runs' measured windows of the host CPU's utilisation (every process;
    None where the records do not say: written before the engine recorded it); ``why`` says why there is no
    fraction."""

    host_id: str
    setting: str
    synthetic_setting: str
    model: str
    batch_size: int | None
    real_ips: float | None
    synthetic_ips: float | None
    n_real: int
    n_synthetic: int
    host_cpu_pct: float | None
    why: str | None = None

    @property
    def fraction(self) -> float | None:
        if self.real_ips is None or not self.synthetic_ips:
            return None
        return self.real_ips / self.synthetic_ips

    @property
    def input_bound(self) -> bool | None:
        """Under :data:`INPUT_BOUND_BELOW` of synthetic; None where there is no fraction."""
        f = self.fraction
        return None if f is None else f < INPUT_BOUND_BELOW


def is_real(params: dict[str, Any], setting: str | None) -> bool:
    """A real-data run: its stored ``data`` axis says so (records that do not say: the setting name's first part)."""
    data = params.get("data")
    if data is not None:
        return data == "real"
    return bool(setting) and str(setting).split("-", 1)[0] == "real"


def _key(params: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """What identifies the counterpart: every setting axis value except the data's, each at its default if unset."""
    out = []
    for a in axes.setting_axes():
        if a.name in _DATA_AXES:
            continue
        v = params.get(a.name, a.default_in(params))
        out.append((a.name, repr(v)))
    return tuple(out)


def host_cpu_pct(noise: dict[str, Any] | None) -> float | None:
    """The host CPU's utilisation over a run's measured window, from its ``noise`` (the engine's
    ``host_cpu_pct``; else its own share plus the foreign one); None where the record does not say."""
    if not noise:
        return None

    def num(k: str) -> float | None:
        v = noise.get(k)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None

    total = num("host_cpu_pct")
    if total is not None:
        return total
    own, foreign = num("own_cpu_pct"), num("foreign_cpu_pct")
    return None if own is None or foreign is None else min(100.0, own + foreign)


def input_bound(merged: Merged) -> list[InputBound]:
    """Every real-data (host, setting, model, batch) that has an ok run, beside its synthetic counterpart, in report
    order (settings, models, batch sizes, hosts). Empty where no real-data setting has an ok run: a report without
    one shows no input-bound section."""
    real: dict[tuple[Any, ...], list[Any]] = {}
    syn: dict[tuple[Any, ...], list[float]] = {}
    syn_names: dict[tuple[Any, ...], str] = {}
    for m in merged.runs:
        r = m.rec
        if is_tune(r) or not r.setting or not r.model:
            continue
        params = r.params or {}
        group = (str(r.host_id), _key(params), r.model, r.batch_size)
        if is_real(params, r.setting):
            real.setdefault((*group, r.setting), []).append(r)
        elif r.ok and r.images_per_sec:
            syn.setdefault(group, []).append(float(r.images_per_sec))
            syn_names.setdefault(group, r.setting)
    order = setting_order(merged)
    hosts = {h: i for i, h in enumerate(merged.host_ids)}
    out: list[InputBound] = []
    for (host, key, model, batch, setting), recs in real.items():
        ok = [r for r in recs if r.ok and r.images_per_sec]
        if not ok:
            continue
        group = (host, key, model, batch)
        syn_ips = syn.get(group, [])
        cpu = [c for c in (host_cpu_pct(r.noise) for r in ok) if c is not None]
        syn_name = syn_names.get(group) or _synthetic_name(setting, recs[0].params or {})
        out.append(
            InputBound(
                host_id=host,
                setting=setting,
                synthetic_setting=syn_name,
                model=model,
                batch_size=batch,
                real_ips=statistics.median(float(r.images_per_sec) for r in ok),
                synthetic_ips=statistics.median(syn_ips) if syn_ips else None,
                n_real=len(ok),
                n_synthetic=len(syn_ips),
                host_cpu_pct=statistics.median(cpu) if cpu else None,
                why=None if syn_ips else f"no ok run of {syn_name} on this host",
            )
        )
    out.sort(
        key=lambda b: (
            order.get(b.setting, ((), b.setting)),
            model_sort_key(b.model),
            b.batch_size if isinstance(b.batch_size, int) else -1,
            hosts.get(b.host_id, len(hosts)),
        )
    )
    return out


def _synthetic_name(setting: str, params: dict[str, Any]) -> str:
    """The name the synthetic counterpart has (or would have): the same values with synthetic, undistorted data."""
    if not params:
        return setting
    return axes.setting_name({**params, "data": "syn", "distortions": False})
