"""Execute a model declaration (:class:`~tf_cnn_benchmarks.models.graph.Graph`) in PyTorch.

Why a second executor of the same nodes rather than torchvision's models: the network PyTorch times is then the
one TensorFlow times, layer for layer (same paddings, batch norms without ``gamma`` where the declaration says so,
same parameter count), so a cross-framework comparison compares frameworks, not two slightly different models.

The semantics are TensorFlow's, which differ from PyTorch's defaults in a few places handled here:

* ``SAME`` padding can be asymmetric (one extra row/column at the bottom/right, e.g. 7x7/2 on 224). A convolution
  keeps its own symmetric ``padding=`` (oneDNN's fast path, no copy) wherever ``SAME`` is symmetric and gets an
  explicit ``F.pad`` only where it is not. Pools never need the copy: ``ceil_mode`` lets the last window run off
  the bottom/right edge, which is exactly padding with ``-inf`` (max) or padding left out of the average (avg).
* Average pooling excludes padding from the divisor (``count_include_pad=False``).
* ``flatten`` is in NHWC order (h, w, c), so a dense kernel copied from TensorFlow lines up unchanged.
* Batch norm: epsilon 1e-3 and running-stat decay 0.997, and no ``gamma`` where ``attrs["scale"]`` is false.

This module imports nothing from TensorFlow, so a PyTorch-only environment can use it;
:func:`copy_from_tensorflow` reads a TensorFlow network's variables through ``.numpy()`` alone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tf_cnn_benchmarks.models.graph import Graph, Node
from tf_cnn_benchmarks.models.init import initial_values

# Same values as tf_cnn_benchmarks.models.network (which cannot be imported here: it imports TensorFlow).
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.997

# Ops whose autograd backward does not read their output: a ReLU or an add may overwrite that output in place
# (as hand-written torchvision models do) when nothing else reads it, saving one activation's memory.
_INPLACE_SAFE = frozenset({"conv", "dwconv", "bn", "dense", "add"})


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding (before, after) of one axis; the odd extra goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _torch_pool_out(size: int, kernel: int, stride: int, pad: int, ceil_mode: bool) -> int:
    """Output length of a PyTorch pool (its formula, including the ceil_mode rule that the last window must start
    inside the input or the padding before it)."""
    span = size + 2 * pad - kernel
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


class _Conv2d(nn.Conv2d):
    """``nn.Conv2d`` plus the explicit asymmetric SAME padding, only on the nodes that need it."""

    def __init__(self, *args: Any, same_pad: tuple[int, int, int, int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.same_pad = same_pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same_pad is not None:
            x = F.pad(x, self.same_pad)
        return self._conv_forward(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        extra = f", same_pad={self.same_pad}" if self.same_pad is not None else ""
        return super().extra_repr() + extra


class _Linear(nn.Linear):
    """``nn.Linear`` that flattens a ``[n, c, 1, 1]`` input first (a dense layer straight after a 1x1 pool)."""

    def __init__(self, *args: Any, flatten_input: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.flatten_input = flatten_input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.flatten(1) if self.flatten_input else x, self.weight, self.bias)


# Parameter-free steps are plain functions (no nn.Module call overhead per step); module-level so the network
# pickles and torch.compile sees ordinary callables.
def _flatten_nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1).flatten(1)


def _gap(x: torch.Tensor) -> torch.Tensor:
    return x.mean((2, 3))


def _concat(*xs: torch.Tensor) -> torch.Tensor:
    return torch.cat(xs, 1)


def _add_inplace(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a.add_(b)


def _add_inplace_second(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return b.add_(a)


def _relu6_inplace(x: torch.Tensor) -> torch.Tensor:
    return F.relu6(x, inplace=True)


def _pool(
    x: torch.Tensor,
    *,
    fn: Callable[..., torch.Tensor],
    kernel: tuple[int, int],
    stride: int,
    padding: tuple[int, int],
    ceil_mode: bool,
    crop: tuple[int, int],
    **kwargs: Any,
) -> torch.Tensor:
    y = fn(x, kernel, stride, padding, ceil_mode=ceil_mode, **kwargs)
    if crop != (0, 0):
        y = y[:, :, crop[0] :, crop[1] :]
    return y


def _pool_step(node: Node, in_shape: tuple[int, int, int]) -> Callable[[torch.Tensor], torch.Tensor]:
    """A pool with TensorFlow's SAME/VALID semantics and no padding copy.

    Per axis: symmetric SAME is PyTorch's own ``padding``; asymmetric SAME with stride >= 2 is the pad before the
    input plus ``ceil_mode`` (the last window runs past the trailing edge, which max ignores and avg leaves out of
    the divisor: exactly TF's trailing pad). Asymmetric SAME with stride 1 (even kernel) pads the larger amount on
    both sides and drops the first output row/column, whose window is the one TF never computes.
    """
    kh, kw = node.attrs["kernel"]
    stride, padding = node.attrs["stride"], node.attrs["padding"]
    pads, crops, ceil_mode = [], [], False
    for size, k in ((in_shape[0], kh), (in_shape[1], kw)):
        before, after = _same_pads(size, k, stride) if padding == "SAME" else (0, 0)
        if before == after:
            pads.append(before)
            crops.append(0)
        elif stride >= 2:
            pads.append(before)
            crops.append(0)
            ceil_mode = True
        else:
            pads.append(after)
            crops.append(1)
    for axis, (size, k) in enumerate(((in_shape[0], kh), (in_shape[1], kw))):
        got = _torch_pool_out(size, k, stride, pads[axis], ceil_mode) - crops[axis]
        if got != node.shape[axis]:
            raise ValueError(f"{node.name}: cannot express {padding} pooling of {size} by {k}/{stride} in PyTorch")
    if node.op == "maxpool":
        fn, kwargs = F.max_pool2d, {}
    else:
        fn, kwargs = F.avg_pool2d, {"count_include_pad": False}
    return functools.partial(
        _pool,
        fn=fn,
        kernel=(kh, kw),
        stride=stride,
        padding=tuple(pads),
        ceil_mode=ceil_mode,
        crop=tuple(crops),
        **kwargs,
    )


class TorchNetwork(nn.Module):
    """Parameters and forward pass of one declared model, with the TensorFlow executor's semantics.

    ``forward`` takes NCHW images in any memory format (channels_last included) and returns float32 logits
    ``[batch, num_classes]``; it works under ``torch.autocast`` and traces with ``torch.jit.trace`` and
    ``torch.compile``. Layers are ``self.layers[node.name]`` (``conv0``, ``bn0``, ``dense0``...), so parameter names
    read like the TensorFlow variables' (``layers.conv0.weight`` for ``conv0/kernel``).

    The initial values are the TensorFlow executor's for the same ``seed``: the same NumPy generator drawn in the
    same node order, transposed to PyTorch layouts. ``device="meta"`` builds the structure only (shapes and counts,
    no values), which is how a model table can count every model without allocating it.
    """

    def __init__(self, graph: Graph, *, seed: int = 1234, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.graph = graph
        nodes = graph.nodes
        inputs = [i for i, n in enumerate(nodes) if n.op == "input"]
        if len(inputs) != 1:
            raise ValueError(f"graph {graph.name} has {len(inputs)} input nodes, expected 1")
        self._input = inputs[0]
        self._output = len(nodes) - 1
        readers = graph.readers()
        last_use: dict[int, int] = {}
        for i, n in enumerate(nodes):
            for j in n.inputs:
                last_use[j] = i
        frees: list[list[int]] = [[] for _ in nodes]
        for j, i in last_use.items():
            if j != self._output:
                frees[i].append(j)
        for i in range(len(nodes)):
            if readers[i] == 0 and i != self._output:
                frees[i].append(i)
        # 2-D after gap/flatten/dense (as in TensorFlow), 4-D otherwise: tells a dense layer whether to flatten.
        rank = [4] * len(nodes)

        self.layers = nn.ModuleDict()
        # (node, layer name or "", function when parameter-free, inputs, values to drop after it)
        plan: list[tuple[int, str, Callable[..., torch.Tensor] | None, tuple[int, ...], tuple[int, ...]]] = []
        meta = torch.device("meta")
        for i, node in enumerate(nodes):
            src = nodes[node.inputs[0]].shape if node.inputs else None
            first = node.inputs[0] if node.inputs else -1
            rank[i] = rank[first] if node.inputs else 4
            sole = bool(node.inputs) and readers[first] == 1 and nodes[first].op in _INPLACE_SAFE
            fn: Callable[..., torch.Tensor] | None = None
            op, a = node.op, node.attrs
            if op == "input":
                continue
            if op in ("conv", "dwconv"):
                self.layers[node.name] = self._conv(node, src, meta)
            elif op == "bn":
                bn = nn.BatchNorm2d(node.shape[2], eps=BN_EPSILON, momentum=1 - BN_MOMENTUM, device=meta)
                if not a["scale"]:
                    bn.register_parameter("weight", None)
                # The decay is fixed, so the batch counter nn.BatchNorm2d keeps for momentum=None is not needed
                # (and would add a buffer the graph's state does not count).
                bn.register_buffer("num_batches_tracked", None)
                self.layers[node.name] = bn
            elif op == "relu":
                fn = torch.relu_ if sole else torch.relu
            elif op == "relu6":
                fn = _relu6_inplace if sole else F.relu6
            elif op in ("maxpool", "avgpool"):
                fn = _pool_step(node, src)
            elif op == "gap":
                fn, rank[i] = _gap, 2
            elif op == "lrn":
                # TF divides by (bias + alpha * sum of squares)^beta over 2r+1 channels; PyTorch by
                # (k + alpha / size * sum)^beta, so its alpha is TF's times the window size.
                size = 2 * a["depth_radius"] + 1
                fn = functools.partial(
                    F.local_response_norm, size=size, alpha=a["alpha"] * size, beta=a["beta"], k=a["bias"]
                )
            elif op == "flatten":
                fn, rank[i] = _flatten_nhwc, 2
            elif op == "dense":
                fan_in = src[0] * src[1] * src[2]
                self.layers[node.name] = _Linear(fan_in, node.shape[2], flatten_input=rank[first] != 2, device=meta)
                rank[i] = 2
            elif op == "dropout":
                self.layers[node.name] = nn.Dropout(a["rate"])
            elif op == "concat":
                fn = _concat
            elif op == "add":
                fn = torch.add
                for k, fn_inplace in enumerate((_add_inplace, _add_inplace_second)):
                    j = node.inputs[k]
                    if readers[j] == 1 and nodes[j].op in _INPLACE_SAFE:
                        fn = fn_inplace
                        break
            else:
                raise NotImplementedError(f"op {op!r} of node {node.name} has no PyTorch implementation")
            name = node.name if node.name in self.layers else ""
            plan.append((i, name, fn, tuple(node.inputs), tuple(frees[i])))
        self._plan = plan
        self._input_frees = tuple(frees[self._input])

        target = torch.device(device) if device is not None else torch.get_default_device()
        self.to_empty(device=target)
        if target.type != "meta":
            self._initialise(seed)

    @staticmethod
    def _conv(node: Node, src: tuple[int, int, int], device: torch.device) -> _Conv2d:
        kh, kw = node.attrs["kernel"]
        stride = node.attrs["stride"]
        cin, cout = src[2], node.shape[2]
        if node.attrs["padding"] == "SAME":
            (top, bottom), (left, right) = _same_pads(src[0], kh, stride), _same_pads(src[1], kw, stride)
        else:
            top = bottom = left = right = 0
        if top == bottom and left == right:
            padding, same_pad = (top, left), None
        else:
            padding, same_pad = (0, 0), (left, right, top, bottom)
        groups = cin if node.op == "dwconv" else 1
        return _Conv2d(
            cin,
            cout,
            (kh, kw),
            stride,
            padding,
            groups=groups,
            bias=node.attrs["bias"],
            same_pad=same_pad,
            device=device,
        )

    @torch.no_grad()
    def _initialise(self, seed: int) -> None:
        """The TensorFlow executor's initial values for ``seed`` (one draw, :mod:`tf_cnn_benchmarks.models.init`),
        transposed to PyTorch layouts."""
        self.load(dict(initial_values(self.graph, seed)))

    @torch.no_grad()
    def load(self, values: dict[int, dict[str, np.ndarray]]) -> None:
        """Set every parameter and batch-norm buffer from TensorFlow-layout values (node index -> {kernel, bias,
        beta, gamma, mean, variance}); raises when a shape differs or a tensor is left without a value."""
        norms = [m for m in self.layers.values() if isinstance(m, nn.BatchNorm2d)]
        expected = {id(t) for t in self.parameters()} | {id(b) for m in norms for b in (m.running_mean, m.running_var)}
        copied: set[int] = set()
        for i, variables in values.items():
            node = self.graph.nodes[i]
            layer = self.layers[node.name]
            for key, value in variables.items():
                value = np.asarray(value, dtype=np.float32)
                if key == "kernel":
                    dst, src = layer.weight, _kernel_to_torch(node.op, value)
                elif key == "bias" and node.op == "bn":
                    raise ValueError(f"{node.name}: batch norm has no bias variable")
                else:
                    attr = {"bias": "bias", "beta": "bias", "gamma": "weight", "mean": "running_mean",
                            "variance": "running_var"}[key]  # fmt: skip
                    dst, src = getattr(layer, attr), torch.from_numpy(value)
                if dst is None or tuple(dst.shape) != tuple(src.shape):
                    got = None if dst is None else tuple(dst.shape)
                    raise ValueError(f"{node.name}/{key}: TensorFlow shape {tuple(src.shape)}, PyTorch {got}")
                dst.copy_(src)
                copied.add(id(dst))
        if copied != expected:
            raise ValueError(f"{len(expected - copied)} PyTorch tensors of {self.graph.name} got no value")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Float32 logits ``[batch, num_classes]`` of NCHW ``images``.

        Walks the precomputed plan and drops each intermediate after its last reader, so peak memory is that of a
        hand-written module rather than of every layer's output at once. Layers are looked up by name on each call
        rather than held in the plan, so swapping a submodule (quantisation, fusion, replicas) takes effect.
        """
        layers = self.layers
        values: list[torch.Tensor | None] = [None] * len(self.graph.nodes)
        values[self._input] = images
        for j in self._input_frees:
            values[j] = None
        for i, name, fn, ins, frees in self._plan:
            if name:
                fn = layers[name]
            if len(ins) == 1:
                values[i] = fn(values[ins[0]])
            else:
                values[i] = fn(*[values[j] for j in ins])
            for j in frees:
                values[j] = None
        return values[self._output].float()

    def decay_parameters(self) -> list[nn.Parameter]:
        """Convolution, depthwise and dense kernels: the variables the TensorFlow engine applies weight decay to."""
        return [self.layers[n.name].weight for n in self.graph.nodes if n.op in ("conv", "dwconv", "dense")]

    def other_parameters(self) -> list[nn.Parameter]:
        """Every trainable parameter that is not a kernel (biases, batch-norm beta and gamma): no weight decay."""
        decay = {id(p) for p in self.decay_parameters()}
        return [p for p in self.parameters() if id(p) not in decay]


def _kernel_to_torch(op: str, kernel: np.ndarray) -> torch.Tensor:
    """TensorFlow kernel layout to PyTorch's: conv HWIO -> OIHW, depthwise (kh, kw, c, 1) -> (c, 1, kh, kw),
    dense (in, out) -> (out, in)."""
    if op == "conv":
        return torch.from_numpy(kernel.transpose(3, 2, 0, 1))
    if op == "dwconv":
        return torch.from_numpy(kernel.transpose(2, 3, 0, 1))
    if op == "dense":
        return torch.from_numpy(kernel.T)
    raise ValueError(f"op {op!r} has no kernel")


def copy_from_tensorflow(net: TorchNetwork, tf_net: Any) -> None:
    """Copy every variable of a TensorFlow ``Network`` built from the same graph into ``net`` (kernels transposed to
    PyTorch layouts, batch-norm moving statistics into the running buffers), so both compute the same function.

    ``tf_net`` is duck-typed (its ``graph`` and ``weights``: node index -> {kernel, bias, beta, gamma, mean,
    variance} variables), read with ``.numpy()``, so this module needs no TensorFlow import.
    """
    mine = [(n.op, n.name, n.shape) for n in net.graph.nodes]
    theirs = [(n.op, n.name, n.shape) for n in tf_net.graph.nodes]
    if mine != theirs:
        raise ValueError(f"TensorFlow network {tf_net.graph.name} is not built from graph {net.graph.name}")
    net.load({i: {k: v.numpy() for k, v in variables.items()} for i, variables in tf_net.weights.items()})
