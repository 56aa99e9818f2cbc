"""The layer vocabulary models are written in, and the two things a declaration turns into.

A model is declared once, as a function that calls ``conv``, ``bn``, ``pool``, ``dense``, ``concat``... on a
:class:`Graph`. Calling it records a small DAG of :class:`Node` s whose shapes are known statically, so:

* :func:`Graph.summary` gives parameters, activation memory and multiply-adds (the model table, FLOPs for rooflines);
* :class:`tf_cnn_benchmarks.models.network.Network` turns the same DAG into variables and a forward pass.

Both read the same nodes, so the model table and the network that is timed can never disagree.

Shapes are logical ``(height, width, channels)`` without the batch; the executor handles NHWC/NCHW.
Multiply-adds count convolutions and dense layers (the convention of the papers' FLOPs columns); pooling, batch norm
and activations are left out and named as such in the table's notes.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

Shape = tuple[int, int, int]


@dataclass(frozen=True)
class T:
    """A symbolic tensor: the id of the node that produced it and its logical (H, W, C) shape."""

    node: int
    shape: Shape


@dataclass
class Node:
    op: str
    inputs: list[int]
    shape: Shape
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    params: int = 0  # trainable
    state: int = 0  # non-trainable (batch-norm moving statistics)
    macs: int = 0


def _out_size(size: int, k: int, stride: int, padding: str) -> int:
    if padding == "SAME":
        return math.ceil(size / stride)
    if padding == "VALID":
        out = (size - k) // stride + 1
        if out < 1:
            raise ValueError(f"window {k} does not fit input {size} with VALID padding")
        return out
    raise ValueError(f"padding {padding!r}: use SAME or VALID")


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class Graph:
    """Records a model declaration as nodes with static shapes, parameter and multiply-add counts."""

    def __init__(self, name: str, image_size: int, num_classes: int) -> None:
        self.name = name
        self.image_size = image_size
        self.num_classes = num_classes
        self.nodes: list[Node] = []
        self._names: dict[str, int] = {}

    # -- recording ---------------------------------------------------------------------------------------------
    def _add(self, op: str, inputs: list[T], shape: Shape, prefix: str, **attrs: Any) -> T:
        count = self._names.get(prefix, 0)
        self._names[prefix] = count + 1
        node = Node(op=op, inputs=[t.node for t in inputs], shape=shape, attrs=attrs, name=f"{prefix}{count}")
        self.nodes.append(node)
        return T(len(self.nodes) - 1, shape)

    def input(self) -> T:
        return self._add("input", [], (self.image_size, self.image_size, 3), "input")

    # -- layers ------------------------------------------------------------------------------------------------
    def conv(
        self,
        x: T,
        filters: int,
        kernel: int | tuple[int, int],
        stride: int = 1,
        padding: str = "SAME",
        *,
        bn: bool = True,
        act: str | None = "relu",
        bias: bool | None = None,
    ) -> T:
        """Convolution, then batch norm (default) or a bias, then an activation."""
        kh, kw = _pair(kernel)
        h, w, c = x.shape
        shape = (_out_size(h, kh, stride, padding), _out_size(w, kw, stride, padding), filters)
        use_bias = (not bn) if bias is None else bias
        t = self._add("conv", [x], shape, "conv", kernel=(kh, kw), stride=stride, padding=padding, bias=use_bias)
        node = self.nodes[t.node]
        node.params = kh * kw * c * filters + (filters if use_bias else 0)
        node.macs = shape[0] * shape[1] * filters * kh * kw * c
        if bn:
            t = self.bn(t)
        return self.act(t, act)

    def dwconv(
        self,
        x: T,
        kernel: int = 3,
        stride: int = 1,
        padding: str = "SAME",
        *,
        bn: bool = True,
        act: str | None = "relu",
    ) -> T:
        """Depthwise convolution (multiplier 1), as in MobileNet."""
        kh, kw = _pair(kernel)
        h, w, c = x.shape
        shape = (_out_size(h, kh, stride, padding), _out_size(w, kw, stride, padding), c)
        t = self._add("dwconv", [x], shape, "dwconv", kernel=(kh, kw), stride=stride, padding=padding, bias=not bn)
        node = self.nodes[t.node]
        node.params = kh * kw * c + (0 if bn else c)
        node.macs = shape[0] * shape[1] * c * kh * kw
        if bn:
            t = self.bn(t)
        return self.act(t, act)

    def bn(self, x: T, *, scale: bool = True) -> T:
        t = self._add("bn", [x], x.shape, "bn", scale=scale)
        c = x.shape[2]
        self.nodes[t.node].params = (2 if scale else 1) * c
        self.nodes[t.node].state = 2 * c
        return t

    def act(self, x: T, kind: str | None) -> T:
        if kind is None:
            return x
        if kind not in ("relu", "relu6"):
            raise ValueError(f"activation {kind!r}: use relu or relu6")
        return self._add(kind, [x], x.shape, kind)

    def relu(self, x: T) -> T:
        return self.act(x, "relu")

    def maxpool(self, x: T, kernel: int, stride: int, padding: str = "VALID") -> T:
        return self._pool("maxpool", x, kernel, stride, padding)

    def avgpool(self, x: T, kernel: int, stride: int, padding: str = "VALID") -> T:
        return self._pool("avgpool", x, kernel, stride, padding)

    def _pool(self, op: str, x: T, kernel: int, stride: int, padding: str) -> T:
        kh, kw = _pair(kernel)
        h, w, c = x.shape
        shape = (_out_size(h, kh, stride, padding), _out_size(w, kw, stride, padding), c)
        return self._add(op, [x], shape, op, kernel=(kh, kw), stride=stride, padding=padding)

    def global_avgpool(self, x: T) -> T:
        return self._add("gap", [x], (1, 1, x.shape[2]), "gap")

    def lrn(self, x: T, depth_radius: int = 2, bias: float = 1.0, alpha: float = 2e-5, beta: float = 0.75) -> T:
        return self._add("lrn", [x], x.shape, "lrn", depth_radius=depth_radius, bias=bias, alpha=alpha, beta=beta)

    def flatten(self, x: T) -> T:
        h, w, c = x.shape
        return self._add("flatten", [x], (1, 1, h * w * c), "flatten")

    def dense(self, x: T, units: int, act: str | None = "relu") -> T:
        h, w, c = x.shape
        if (h, w) != (1, 1):
            x = self.flatten(x)
        fan_in = x.shape[2]
        t = self._add("dense", [x], (1, 1, units), "dense")
        self.nodes[t.node].params = fan_in * units + units
        self.nodes[t.node].macs = fan_in * units
        return self.act(t, act)

    def dropout(self, x: T, rate: float = 0.5) -> T:
        return self._add("dropout", [x], x.shape, "dropout", rate=rate)

    def concat(self, xs: list[T]) -> T:
        h, w = xs[0].shape[:2]
        if any(t.shape[:2] != (h, w) for t in xs):
            raise ValueError(f"concat of mismatched shapes {[t.shape for t in xs]}")
        return self._add("concat", xs, (h, w, sum(t.shape[2] for t in xs)), "concat")

    def add(self, a: T, b: T) -> T:
        if a.shape != b.shape:
            raise ValueError(f"add of mismatched shapes {a.shape} and {b.shape}")
        return self._add("add", [a, b], a.shape, "add")

    def logits(self, x: T) -> T:
        """The classifier: global features to ``num_classes`` logits, no activation."""
        return self.dense(x, self.num_classes, act=None)

    # -- derived figures ---------------------------------------------------------------------------------------
    def readers(self) -> Counter[int]:
        """Node index -> how many inputs of later nodes read its output (a node that reads it twice counts twice):
        what a network asks before running a node inside its reader or reusing its memory."""
        return Counter(j for node in self.nodes for j in node.inputs)

    def summary(self) -> dict[str, Any]:
        """Parameters, parameter memory, activation memory at batch 1 and multiply-adds, from the nodes alone.

        Feature memory is the sum of every recorded layer output at batch 1 in fp32 (what a forward pass keeps
        for the backward pass), excluding in-place views (flatten) and the input image.
        """
        params = sum(n.params for n in self.nodes)
        state = sum(n.state for n in self.nodes)
        features = sum(math.prod(n.shape) for n in self.nodes if n.op not in ("input", "flatten"))
        return {
            "model": self.name,
            "input_size": self.image_size,
            "params": params,
            "state": state,
            "param_mb": params * 4 / 2**20,
            "feature_mb": features * 4 / 2**20,
            "macs": sum(n.macs for n in self.nodes),
            "gmacs": sum(n.macs for n in self.nodes) / 1e9,
            "layers": sum(1 for n in self.nodes if n.op in ("conv", "dwconv", "dense")),
        }
