"""The initial values of a declared network, framework-free, so both executors start from the same weights.

Why one place: a TensorFlow run and a PyTorch run of the same model and seed should train the same function from the
same start; with the draws written once, :class:`~tf_cnn_benchmarks.models.network.Network` and
:class:`~tf_cnn_benchmarks.models.torchnet.TorchNetwork` hold bit-for-bit equal weights for a seed. Values are in
TensorFlow's layouts (conv kernels HWIO, depthwise ``(kh, kw, c, 1)``, dense ``(in, out)``); the PyTorch executor
transposes them.

Kernels are He-normal (conv ``sqrt(2 / (kh * kw * cin))``, depthwise ``sqrt(2 / (kh * kw))``, dense
``sqrt(1 / fan_in)``), drawn from one NumPy generator in node order; biases and beta are 0, gamma 1, the moving mean 0
and the moving variance 1.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from tf_cnn_benchmarks.models.graph import Graph


def normal(rng: np.random.Generator, shape: tuple[int, ...], std: float) -> np.ndarray:
    """``(rng.standard_normal(shape, float32) * std).astype(float32)`` bit for bit, without its float64 temporary:
    the multiply runs in float64 through NumPy's small casting buffers and rounds into the float32 array in place
    (for alexnet's 38 M-weight dense kernel, a tenth of the time, and no 300 MB temporary)."""
    out = rng.standard_normal(shape, np.float32)
    np.multiply(out, std, out=out, dtype=np.float64, casting="same_kind")
    return out


def initial_values(graph: Graph, seed: int) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """(node index, {variable name: value}) for every node that has variables, in node order.

    Names are the TensorFlow executor's: ``kernel`` and ``bias`` (conv, dwconv, dense), ``beta``, ``gamma`` (when the
    batch norm scales), ``mean`` and ``variance`` (its moving statistics).
    """
    rng = np.random.default_rng(seed)
    for i, node in enumerate(graph.nodes):
        src = graph.nodes[node.inputs[0]].shape if node.inputs else None
        out: dict[str, np.ndarray] = {}
        if node.op in ("conv", "dwconv"):
            kh, kw = node.attrs["kernel"]
            cin, cout = src[2], node.shape[2]
            if node.op == "conv":
                out["kernel"] = normal(rng, (kh, kw, cin, cout), np.sqrt(2.0 / (kh * kw * cin)))
            else:
                out["kernel"] = normal(rng, (kh, kw, cin, 1), np.sqrt(2.0 / (kh * kw)))
            if node.attrs["bias"]:
                out["bias"] = np.zeros(node.shape[2], np.float32)
        elif node.op == "bn":
            c = node.shape[2]
            out["beta"] = np.zeros(c, np.float32)
            if node.attrs["scale"]:
                out["gamma"] = np.ones(c, np.float32)
            out["mean"] = np.zeros(c, np.float32)
            out["variance"] = np.ones(c, np.float32)
        elif node.op == "dense":
            fan_in, units = src[0] * src[1] * src[2], node.shape[2]
            out["kernel"] = normal(rng, (fan_in, units), np.sqrt(1.0 / fan_in))
            out["bias"] = np.zeros(units, np.float32)
        if out:
            yield i, out
