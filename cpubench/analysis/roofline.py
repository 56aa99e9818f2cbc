"""A roofline's data: each model's arithmetic intensity at a batch size, each host's compute and bandwidth roofs, and
each measured figure placed on them.

Why: the share of the GEMM limit (:mod:`cpubench.analysis.efficiency`) says how far a run is from the compute roof;
a roofline also says whether that roof can be reached at all: a model that moves many bytes per FLOP at a small
batch (its weights read once per batch, shared by fewer images) sits under the bandwidth roof, where more FLOPs would
not help and more bandwidth would.

The intensity is an estimate from the declaration (the engine's :meth:`Graph.summary`, no TensorFlow): FLOPs over
the bytes a step must move through memory at least once,

- inference: the weights read once per batch, and each layer's output written once and read once per image
  (``bytes = w * (params + 2 * batch * features)``), counting only the outputs an inference engine writes: batch
  norm is folded into the convolution before it, and ReLU, ReLU6 and a residual add are applied as the
  convolution's (or matrix product's) post-ops, as the TensorFlow engine's folded graph and oneDNN's fusions do,
  and dropout is the identity; counting those outputs too understated ResNet-50's intensity about 3x;
- training: the weights read in the forward and backward passes and their gradients written, and each output
  written and read in the forward pass, read again and its gradient written in the backward pass
  (``bytes = w * (3 * params + 4 * batch * features)``), against 3x the forward FLOPs;

with ``w`` 4 bytes in fp32 and 2 in bf16 (the variables' fp32 copies are not counted). Caches make real traffic
lower than this for small layers and higher for layers that do not fit, so the intensity is a guide to which roof
applies, not a measurement.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from cpubench.analysis import efficiency
from cpubench.host import limits as lim

# Ops whose output an inference step does not write (see the module's note): folded or applied as post-ops.
FUSED_IN_INFERENCE = ("bn", "relu", "relu6", "add", "dropout")


@functools.cache
def _summary(model: str) -> dict[str, Any] | None:
    from tf_cnn_benchmarks.models import registry  # lazy: the declarations only when asked

    try:
        g = registry.get(model).graph()
    except (registry.UnknownModelError, ValueError):
        return None
    s = g.summary()
    features = sum(math.prod(n.shape) for n in g.nodes if n.op not in ("input", "flatten"))
    written = sum(math.prod(n.shape) for n in g.nodes if n.op not in ("input", "flatten", *FUSED_IN_INFERENCE))
    return {"macs": s["macs"], "params": s["params"], "features": features, "written": written}


def intensity(model: str, batch: int, training: bool = False, precision: str = "fp32") -> float | None:
    """FLOPs per byte of one step of ``model`` at ``batch`` (see the module's note), or None for an unknown model."""
    s = _summary(model)
    if s is None or batch < 1:
        return None
    w = 2 if precision in ("bf16", "fp16") else 4
    flops = 2.0 * s["macs"] * batch * (efficiency.TRAINING_FACTOR if training else 1)
    if training:
        moved = w * (3 * s["params"] + 4 * batch * s["features"])
    else:
        moved = w * (s["params"] + 2 * batch * s["written"])
    return flops / moved if moved else None


@dataclass(frozen=True)
class Roofs:
    """One host's roofs: GEMM peaks (GFLOP/s) by precision and its all-core memory bandwidth (GB/s)."""

    host: str
    peaks: dict[str, float]  # "fp32" / "bf16" -> GFLOP/s, all cores
    bandwidth: float | None  # GB/s

    def ridge(self, precision: str = "fp32") -> float | None:
        """The intensity (FLOP/byte) where the bandwidth roof meets the compute roof."""
        peak = self.peaks.get(precision)
        return peak / self.bandwidth if peak and self.bandwidth else None


def roofs(host_id: str, limits: dict[str, Any] | None) -> Roofs | None:
    """A host's roofs from its limits, or None when it has neither a GEMM peak nor a bandwidth."""
    peaks = {p: v for p in ("fp32", "bf16") if (v := lim.value(limits, f"gemm_{p}_all")) is not None}
    bandwidth = lim.value(limits, lim.TRIAD_ALL)
    if not peaks and bandwidth is None:
        return None
    return Roofs(host_id, peaks, bandwidth)


@dataclass(frozen=True)
class Placed:
    """One measured figure on a roofline: its host, what it is, its intensity and achieved GFLOP/s."""

    host: str
    label: str  # "resnet50 bs32 training fp32"
    intensity: float
    gflops: float
    precision: str


def placed(merged: Any, settings: Any) -> list[Placed]:
    """Every ok cell of the report (its median images/sec) placed by its model, batch, mode and precision, labelled
    with those; where two of one host's points would share a label (real and synthetic data, two frameworks, two
    thread counts), each of those also names its setting."""
    figures = efficiency.cell_figures(settings, merged)
    first: dict[tuple[Any, ...], Any] = {}
    for m in merged.runs:
        if m.rec.ok:
            first.setdefault((m.rec.setting, m.rec.host_id, m.rec.model, m.rec.batch_size), m.rec)
    out: list[tuple[str, Placed]] = []
    for setting, (_rows, cells) in settings.items():
        for (row, host), c in cells.items():
            f = figures.get((setting, row, host))
            rec = first.get((setting, host, c.model, c.batch_size))
            if f is None or f.achieved is None or rec is None:
                continue
            params = rec.params or {}
            training = not params.get("forward_only", False)
            precision = str(params.get("precision") or "fp32")
            batch = int(rec.samples.global_batch or rec.batch_size or 1)
            x = intensity(c.model, batch, training, precision)
            if x is None:
                continue
            label = f"{c.model} bs{batch} {'training' if training else 'inference'} {precision}"
            out.append((setting, Placed(host, label, x, f.achieved, precision)))
    shared = Counter((p.host, p.label) for _, p in out)
    return [replace(p, label=f"{p.label} ({setting})") if shared[p.host, p.label] > 1 else p for setting, p in out]


def placed_points(points: Any, host: Any) -> list[Placed]:
    """The pages' points of one host (:class:`cpubench.analysis.points.Point`) placed on its roofline."""
    out = []
    for p in points:
        f = efficiency.figure(p.key.model, p.thr_avg, not p.forward_only, p.precision,
                              p.key.threads or p.threads_effective, host)  # fmt: skip
        x = intensity(p.key.model, p.key.batch, not p.forward_only, p.precision)
        if f.achieved is None or x is None:
            continue
        mode = "training" if not p.forward_only else "inference"
        out.append(Placed(p.key.host, f"{p.key.model} bs{p.key.batch} {mode} {p.precision}", x, f.achieved,
                          p.precision))  # fmt: skip
    return out
