"""Execute a model declaration (:class:`~tf_cnn_benchmarks.models.graph.Graph`) in TensorFlow.

Why raw ``tf.nn`` ops and ``tf.Variable`` rather than Keras layers: the step is then exactly the ops we mean
(fused batch norm, conv, matmul), with no per-layer Python or dtype-policy machinery inside the timed graph, and the
variables are plain enough for every ``tf.distribute`` strategy. The DAG is walked once per trace, so Python costs
nothing per step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from tf_cnn_benchmarks.models.graph import Graph, Node
from tf_cnn_benchmarks.models.init import initial_values

BN_EPSILON = 1e-3
BN_MOMENTUM = 0.997


class Network(tf.Module):
    """Variables and forward pass of one declared model.

    ``compute_dtype`` is the activation dtype (float32 or bfloat16/float16 for mixed precision): variables stay
    float32 and are cast where used, so gradients and updates are float32 as in upstream's fp16 mode.

    ``batch_norm_ops`` (:func:`tf_cnn_benchmarks.kernels.batch_norm`'s ops, NHWC float32 only) runs each training
    batch norm, with the ReLU after it where that ReLU is its only reader, as one op of the engine's own instead of
    TensorFlow's batch norm and ReLU, and a residual block's last batch norm with the block's add and ReLU as one
    (see :func:`_residual_closers`); None keeps TensorFlow's. Inference never uses it (the batch norms are folded).
    """

    def __init__(
        self,
        graph: Graph,
        *,
        data_format: str = "NHWC",
        compute_dtype: tf.DType = tf.float32,
        seed: int = 1234,
        batch_norm_ops: Any | None = None,
    ) -> None:
        super().__init__(name=graph.name.replace(".", "_"))
        self.graph = graph
        self.data_format = data_format
        self.compute_dtype = compute_dtype
        self._channel_axis = 3 if data_format == "NHWC" else 1
        self.weights: dict[int, dict[str, tf.Variable]] = {}
        self.decay_vars: list[tf.Variable] = []
        self.moving_vars: list[tf.Variable] = []
        for i, values in initial_values(graph, seed):
            self.weights[i] = self._make_vars(graph.nodes[i], values)
        self.trainable = [v for d in self.weights.values() for v in d.values() if v.trainable]
        self.fold_batch_norm = True
        # See _pointwise_conv; bf16 keeps the convolution, whose bf16 kernel is the faster one there.
        self.pointwise_weight_grad_as_matmul = data_format == "NHWC" and compute_dtype == tf.float32
        self._folds = _foldable(graph)
        # The engine's fused training batch norm (tf_cnn_benchmarks.kernels.batch_norm): NHWC float32 only.
        if batch_norm_ops is not None and (data_format != "NHWC" or compute_dtype != tf.float32):
            raise ValueError("the engine's batch norm kernel runs NHWC float32 only")
        self.batch_norm_ops = batch_norm_ops
        self._bn_relu = _relu_only_reader(graph)
        self._closers = _residual_closers(graph)
        self._frozen: dict[int, tuple[tf.Variable, tf.Variable]] = {}

    def freeze_for_inference(self) -> None:
        """Fold each foldable batch norm into its convolution once, into variables of their own (in the compute
        dtype), for a network that will only run inference.

        Why: folded in the step, every step rescales every kernel from the batch-norm statistics, a pass over all the
        weights per step that a large batch hides and batch 1 pays in full (ResNet-50: 25 M weights read and written
        per image). A frozen network reads the folded kernel and bias as they are, as PyTorch's ``freeze`` does. The
        result is the same function (same arithmetic, done once); training keeps the unfolded variables."""
        for i, bn in self._folds.items():
            kernel, shift = self._fold(i, bn)
            name = self.graph.nodes[i].name
            self._frozen[i] = (tf.Variable(kernel, trainable=False, name=f"{name}/frozen_kernel"),
                               tf.Variable(shift, trainable=False, name=f"{name}/frozen_bias"))  # fmt: skip

    # -- variables ---------------------------------------------------------------------------------------------
    def _make_vars(self, node: Node, values: dict[str, np.ndarray]) -> dict[str, tf.Variable]:
        """Variables of one node from its initial values (:func:`~tf_cnn_benchmarks.models.init.initial_values`)."""
        out: dict[str, tf.Variable] = {}
        for name, value in values.items():
            if name in ("mean", "variance"):
                # ON_READ + MEAN: each replica keeps its own running statistics (as upstream's towers did); a read
                # outside the replicas averages them.
                label = f"{node.name}/moving_{name}"
                v = tf.Variable(value, name=label, trainable=False, synchronization=tf.VariableSynchronization.ON_READ,
                                aggregation=tf.VariableAggregation.MEAN)  # fmt: skip
                self.moving_vars.append(v)
            else:
                v = tf.Variable(value, name=f"{node.name}/{name}")
                if name == "kernel":
                    self.decay_vars.append(v)
            out[name] = v
        return out

    # -- forward -----------------------------------------------------------------------------------------------
    def __call__(self, images: tf.Tensor, training: bool) -> tf.Tensor:
        """Logits (float32, ``[batch, classes]``) for ``images`` already in this network's data format.

        In inference each batch norm that reads a convolution (and nothing else reads that convolution) is folded
        into it: the kernel is scaled by ``gamma / sqrt(variance + eps)`` and the rest becomes the conv's bias. The
        result is the same function, but the step is then ``Conv2D + BiasAdd [+ Add] [+ Relu]``, which TensorFlow's
        remapper fuses into one oneDNN convolution with the residual add and the ReLU as post-ops, where
        ``Conv2D + FusedBatchNorm`` leaves the add and the ReLU as separate passes over memory (about 5% of a
        resnet50 inference step on a 2-core AVX2 host).
        """
        folds = self._folds if (not training and self.fold_batch_norm) else {}
        folded = set(folds.values())
        fused = training and self.batch_norm_ops is not None
        values: list[tf.Tensor | None] = [None] * len(self.graph.nodes)
        subsampled: dict[tuple[int, int], tf.Tensor] = {}  # see _subsample
        own: dict[int, list[tf.Tensor]] = {}  # node -> one tensor per reader, taken in reading order
        for i, node in enumerate(self.graph.nodes):
            args = [own[j].pop(0) if own.get(j) else values[j] for j in node.inputs]
            closer = self._closers.get(i) if fused else None
            if closer is not None and i == closer.add:
                x = values[closer.bn]
                own[closer.relu] = self._residual_close(closer, x, side=args[1 - closer.bn_position])
                values[i] = own[closer.relu][0]
            elif closer is not None:
                values[i] = args[0]  # the batch norm's input, or the op's output: the op runs at the add
            elif fused and node.op == "bn":
                values[i] = self._batch_norm(i, args[0], training=True, relu=i in self._bn_relu)
            elif fused and node.op == "relu" and node.inputs[0] in self._bn_relu:
                values[i] = args[0]  # applied inside the batch norm before it
            elif i in folds and i in self._frozen:
                values[i] = self._conv(node, args[0], *self._frozen[i])
            elif i in folds:
                values[i] = self._conv_folded(i, folds[i], node, args[0])
            elif i in folded:
                values[i] = args[0]
            else:
                values[i] = self._apply(i, node, args, images, training, subsampled)
        return tf.cast(values[-1], tf.float32)

    def _fold(self, i: int, bn: int) -> tuple[tf.Tensor, tf.Tensor]:
        """Convolution ``i``'s kernel and bias with batch norm ``bn``'s inference transform folded in."""
        w, b = self.weights[i], self.weights[bn]
        gamma = b["gamma"] if "gamma" in b else 1.0
        scale = gamma * tf.math.rsqrt(b["variance"] + BN_EPSILON)
        shift = b["beta"] - b["mean"] * scale
        if "bias" in w:
            shift += w["bias"] * scale
        kernel = tf.cast(w["kernel"] * scale, self.compute_dtype)  # HWIO in both data formats: scale per output
        return kernel, tf.cast(shift, self.compute_dtype)

    def _conv_folded(self, i: int, bn: int, node: Node, x: tf.Tensor) -> tf.Tensor:
        """Convolution ``i`` with batch norm ``bn``'s inference transform folded into its kernel and bias."""
        return self._conv(node, x, *self._fold(i, bn))

    def _conv(self, node: Node, x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor) -> tf.Tensor:
        df = self.data_format
        y = tf.nn.conv2d(x, kernel, strides=node.attrs["stride"], padding=node.attrs["padding"], data_format=df)
        return tf.nn.bias_add(y, bias, data_format=df)

    @staticmethod
    def _subsample(taken: dict[tuple[int, int], tf.Tensor], j: int, x: tf.Tensor, s: int) -> tf.Tensor:
        """Every ``s``-th pixel of node ``j``'s NHWC output ``x`` (height and width divisible by ``s``), taken once
        per forward pass (``taken``) however many 1x1 convolutions read it.

        Written as a reshape that puts each row's ``s`` phases and each pixel's ``s`` phases in their own axes, and a
        contiguous slice of phase 0: a ``Slice``, whose gradient is a ``Pad``, both copying whole rows of channels.
        ``x[:, ::s, ::s, :]`` is the same values, but TensorFlow's CPU ``StridedSlice`` and its gradient index every
        element (about 40 ms each way at ``32x56x56x256`` on a 2-core Zen 4, against 2 and 6 ms for these).
        """
        if (j, s) not in taken:
            n, h, w, c = x.shape
            rows = tf.reshape(x, [-1, s, w // s, s * c])
            phase0 = tf.slice(rows, [0, 0, 0, 0], [-1, 1, -1, c])
            taken[(j, s)] = tf.reshape(phase0, [-1 if n is None else n, h // s, w // s, c])
        return taken[(j, s)]

    def _w(self, i: int, name: str) -> tf.Tensor:
        return tf.cast(self.weights[i][name], self.compute_dtype)

    def _apply(
        self,
        i: int,
        node: Node,
        args: list,
        images: tf.Tensor,
        training: bool,
        subsampled: dict[tuple[int, int], tf.Tensor],
    ) -> tf.Tensor:
        op, a, df = node.op, node.attrs, self.data_format
        x = args[0] if args else None
        if op == "input":
            return tf.cast(images, self.compute_dtype)
        if op == "conv":
            s = a["stride"]
            # Training only: the custom gradient's IdentityN would stand between Conv2D and BiasAdd (and the ReLU)
            # and keep the remapper from fusing them.
            pointwise = training and _pointwise_stride(a, x.shape[1:3]) is not None
            if pointwise and self.pointwise_weight_grad_as_matmul:
                if s != 1:
                    x = self._subsample(subsampled, node.inputs[0], x, s)
                y = _pointwise_conv(x, self._w(i, "kernel"))
            else:
                y = tf.nn.conv2d(x, self._w(i, "kernel"), strides=s, padding=a["padding"], data_format=df)
            return tf.nn.bias_add(y, self._w(i, "bias"), data_format=df) if a["bias"] else y
        if op == "dwconv":
            s = a["stride"]
            strides = [1, s, s, 1] if df == "NHWC" else [1, 1, s, s]
            y = tf.nn.depthwise_conv2d(x, self._w(i, "kernel"), strides, a["padding"], data_format=df)
            return tf.nn.bias_add(y, self._w(i, "bias"), data_format=df) if a["bias"] else y
        if op == "bn":
            return self._batch_norm(i, x, training)
        if op == "relu":
            return tf.nn.relu(x)
        if op == "relu6":
            return tf.nn.relu6(x)
        if op in ("maxpool", "avgpool"):
            pool = tf.nn.max_pool2d if op == "maxpool" else tf.nn.avg_pool2d
            return pool(x, a["kernel"], a["stride"], a["padding"], data_format=df)
        if op == "gap":
            axes = [1, 2] if df == "NHWC" else [2, 3]
            return tf.reduce_mean(x, axis=axes)
        if op == "lrn":
            params = {k: a[k] for k in ("depth_radius", "bias", "alpha", "beta")}
            if df == "NHWC":
                return tf.nn.local_response_normalization(x, **params)
            y = tf.nn.local_response_normalization(tf.transpose(x, [0, 2, 3, 1]), **params)
            return tf.transpose(y, [0, 3, 1, 2])
        if op == "flatten":
            return tf.reshape(x, [tf.shape(x)[0], -1])
        if op == "dense":
            x2 = tf.reshape(x, [tf.shape(x)[0], -1]) if x.shape.rank != 2 else x
            return tf.matmul(x2, self._w(i, "kernel")) + self._w(i, "bias")
        if op == "dropout":
            return tf.nn.dropout(x, rate=a["rate"]) if training else x
        if op == "concat":
            return tf.concat(args, axis=self._channel_axis)
        if op == "add":
            return args[0] + args[1]
        raise NotImplementedError(f"op {op!r} of node {node.name} has no TensorFlow implementation")

    def _track(self, i: int, mean: tf.Tensor, variance: tf.Tensor) -> None:
        """Batch norm ``i``'s moving statistics take one training step's."""
        w = self.weights[i]
        w["mean"].assign(w["mean"] * BN_MOMENTUM + mean * (1 - BN_MOMENTUM))
        w["variance"].assign(w["variance"] * BN_MOMENTUM + variance * (1 - BN_MOMENTUM))

    def _residual_close(self, closer: _Closer, x: tf.Tensor, side: tf.Tensor) -> list[tf.Tensor]:
        """``relu(bn(x) + side)`` in training, the engine's one op, as one tensor per reader of the ReLU (the same
        buffer each): each reader's gradient then reaches the op on its own, and the op adds them in its own pass
        (see the kernel) where TensorFlow would add them first in a pass of their own."""
        w = self.weights[closer.bn]
        gamma = w["gamma"] if "gamma" in w else tf.ones([w["beta"].shape[0]], tf.float32)
        y, mean, variance, _, copies = self.batch_norm_ops.engine_batch_norm_add_relu_train(
            x, side, gamma, w["beta"], epsilon=BN_EPSILON, copies=max(0, closer.readers - 1)
        )
        self._track(closer.bn, mean, variance)
        return [y, *copies]

    def _batch_norm(self, i: int, x: tf.Tensor, training: bool, relu: bool = False) -> tf.Tensor:
        """Batch norm ``i``. In training with ``batch_norm_ops`` it is the engine's one fused op, with the ReLU after
        it where ``relu``; else TensorFlow's (``relu`` is for the fused op only: the caller applies its own ReLU)."""
        w = self.weights[i]
        c = w["beta"].shape[0]
        gamma = w["gamma"] if "gamma" in w else tf.ones([c], tf.float32)
        fmt = self.data_format
        if training:
            if self.batch_norm_ops is not None:
                y, mean, variance, _ = self.batch_norm_ops.engine_batch_norm_train(
                    x, gamma, w["beta"], epsilon=BN_EPSILON, relu=relu
                )
            else:
                y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                    x, gamma, w["beta"], epsilon=BN_EPSILON, data_format=fmt, is_training=True
                )
            self._track(i, mean, variance)
            return y
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(
            x,
            gamma,
            w["beta"],
            mean=w["mean"],
            variance=w["variance"],
            epsilon=BN_EPSILON,
            data_format=fmt,
            is_training=False,
        )
        return y


@tf.custom_gradient
def _pointwise_conv(x: tf.Tensor, kernel: tf.Tensor) -> tuple[tf.Tensor, object]:
    """A 1x1 stride-1 NHWC convolution whose kernel gradient is one matrix product, ``x^T . dy`` over all pixels.

    Why: that gradient is exactly a ``[C_in, N*H*W] x [N*H*W, C_out]`` product, and oneDNN's fp32 1x1
    weight-gradient convolution on AVX-512 hosts without AMX is an older kernel that runs well below the library's
    own matmul at the same shape (measured one at a time on a 2-core Zen 4 at batch 32: 56x56, 64->256 channels,
    27.0 ms as a convolution against 18.5 ms as a matmul; 28x28, 128->512: 20.1 against 16.2; the other ResNet-50
    shapes within 5% either way; a whole ResNet-50 training step 1.3% faster). The forward pass and the input
    gradient stay convolutions, where the library's newer kernels are as fast as the product; in bf16 the
    convolution's weight gradient is the faster of the two (276 against 244 GFLOP/s at the first shape), so the
    network uses this only in fp32. Same arithmetic; only the order of the sums differs.
    """
    y = tf.nn.conv2d(x, kernel, strides=1, padding="VALID")

    def grad(dy: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        c_in, c_out = kernel.shape[2], kernel.shape[3]
        dx = tf.raw_ops.Conv2DBackpropInput(
            input_sizes=tf.shape(x), filter=kernel, out_backprop=dy, strides=[1, 1, 1, 1], padding="VALID"
        )
        dk = tf.matmul(tf.reshape(x, [-1, c_in]), tf.reshape(dy, [-1, c_out]), transpose_a=True)
        return dx, tf.reshape(dk, [1, 1, c_in, c_out])

    return y, grad


def _pointwise_stride(attrs: dict[str, Any], size: Sequence[int | None]) -> int | None:
    """A 1x1 convolution's stride where it runs as :func:`_pointwise_conv` in fp32 training: no bias, and its input's
    height and width (``size``) divide by the stride (a strided one reads every s-th pixel, see
    ``Network._subsample``); else None."""
    s = attrs["stride"]
    if attrs["bias"] or tuple(attrs["kernel"]) != (1, 1):
        return None
    return s if s == 1 or all(d is not None and d % s == 0 for d in size) else None


def _separate_reads(graph: Graph, j: int) -> int:
    """How many tensors node ``j``'s readers take from it in fp32 NHWC training: one per read, except that the
    strided 1x1 convolutions of one stride share one subsample of it (one read)."""
    strides: set[int] = set()
    reads = 0
    for node in graph.nodes:
        for k in node.inputs:
            if k != j:
                continue
            s = _pointwise_stride(node.attrs, graph.nodes[j].shape[:2]) if node.op == "conv" else None
            if s is None or s == 1:
                reads += 1
            elif s not in strides:
                strides.add(s)
                reads += 1
    return reads


def _relu_only_reader(graph: Graph) -> set[int]:
    """Batch norms whose only reader is a ReLU: the ReLU can run inside the batch norm, forward and backward."""
    readers = graph.readers()
    return {
        node.inputs[0]
        for node in graph.nodes
        if node.op == "relu" and graph.nodes[node.inputs[0]].op == "bn" and readers[node.inputs[0]] == 1
    }


class _Closer(NamedTuple):
    """A residual block's last batch norm, its add and the ReLU after it: one engine op in training, at the add."""

    bn: int
    add: int
    relu: int
    bn_position: int  # which of the add's two inputs is the batch norm
    readers: int  # tensors the ReLU's readers take from it (see _separate_reads)


def _residual_closers(graph: Graph) -> dict[int, _Closer]:
    """Each of those three nodes -> its :class:`_Closer`, where a ReLU is the only reader of an add of two values,
    one of them a batch norm that nothing else reads (the other, the shortcut, may have other readers)."""
    readers = graph.readers()
    found: dict[int, _Closer] = {}
    for relu, node in enumerate(graph.nodes):
        if node.op != "relu" or graph.nodes[node.inputs[0]].op != "add":
            continue
        add = node.inputs[0]
        pair = graph.nodes[add].inputs
        if readers[add] != 1 or len(pair) != 2 or pair[0] == pair[1]:
            continue
        for position, bn in enumerate(pair):
            if graph.nodes[bn].op == "bn" and readers[bn] == 1:
                closer = _Closer(bn, add, relu, position, _separate_reads(graph, relu))
                found.update({bn: closer, add: closer, relu: closer})
                break
    return found


def _foldable(graph: Graph) -> dict[int, int]:
    """Convolution index -> index of the batch norm that is its only reader (what inference can fold)."""
    readers = graph.readers()
    return {
        node.inputs[0]: i
        for i, node in enumerate(graph.nodes)
        if node.op == "bn" and graph.nodes[node.inputs[0]].op == "conv" and readers[node.inputs[0]] == 1
    }
