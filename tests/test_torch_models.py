"""The PyTorch executor of the model declarations computes what the TensorFlow executor computes.

Counts are checked for every registered model (built on the meta device, so no memory and well under a second);
the forward pass is checked against TensorFlow, weights copied across, on six full-size models and on a tiny graph
that exercises every asymmetric-SAME case, in inference and in training (batch statistics, moving-statistic updates
and gradients). Everything runs in fp32 on the CPU; the whole file takes well under a minute on 2 cores.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import torch

from tf_cnn_benchmarks.models import get, names, network
from tf_cnn_benchmarks.models.graph import Graph, T
from tf_cnn_benchmarks.models.network import Network
from tf_cnn_benchmarks.models.torchnet import BN_EPSILON, BN_MOMENTUM, TorchNetwork, copy_from_tensorflow

# max |tf - torch| / max |tf| allowed in fp32 (accumulation order and TF's folded batch norm differ)
REL_TOL = 1e-4


def _rel(ref: np.ndarray, got: np.ndarray) -> float:
    return float(np.abs(ref - got).max() / np.abs(ref).max())


def _randomise(tf_net: Network, seed: int) -> None:
    """Non-trivial biases and batch-norm values: with the initial zeros and ones a swapped beta/mean or
    gamma/variance would go unnoticed."""
    rng = np.random.default_rng(seed)
    for variables in tf_net.weights.values():
        for key, v in variables.items():
            if key == "kernel":
                continue
            if key in ("gamma", "variance"):
                value = rng.uniform(0.5, 1.5, v.shape)
            else:
                value = rng.normal(0.0, 0.1, v.shape)
            v.assign(value.astype(np.float32))


def _pair(graph: Graph, seed: int = 3) -> tuple[Network, TorchNetwork]:
    tf_net = Network(graph, seed=seed)
    _randomise(tf_net, seed)
    # Built without values (to_empty) since every one is copied: copy_from_tensorflow fails if any is missed.
    net = TorchNetwork(graph, device="meta").to_empty(device="cpu")
    copy_from_tensorflow(net, tf_net)
    return tf_net, net


def _images(graph: Graph, batch: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, graph.image_size, graph.image_size, 3)).astype(np.float32)


def _nchw(images: np.ndarray, channels_last: bool) -> torch.Tensor:
    """NHWC array as an NCHW tensor; the permuted view already has channels_last strides."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2)
    return x if channels_last else x.contiguous()


def test_constants_are_the_tensorflow_executors() -> None:
    assert (BN_EPSILON, BN_MOMENTUM) == (network.BN_EPSILON, network.BN_MOMENTUM)


@pytest.mark.parametrize("name", names())
def test_parameter_and_state_counts_match_the_graph(name: str) -> None:
    graph = get(name).graph()
    summary = graph.summary()
    net = TorchNetwork(graph, device="meta")
    assert sum(p.numel() for p in net.parameters()) == summary["params"]
    bn = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert sum(m.running_mean.numel() + m.running_var.numel() for m in bn) == summary["state"]
    assert sum(b.numel() for b in net.buffers()) == summary["state"]
    decay, other = net.decay_parameters(), net.other_parameters()
    assert len(decay) == summary["layers"] and all(p.dim() >= 2 for p in decay)
    assert all(p.dim() == 1 for p in other)
    assert sum(p.numel() for p in decay) + sum(p.numel() for p in other) == summary["params"]


@pytest.mark.parametrize(
    ("name", "channels_last"),
    [
        ("resnet50", False),
        ("inception3", True),
        ("vgg16", False),
        ("alexnet", True),
        ("googlenet", True),
        ("mobilenet", False),
    ],
)
def test_inference_matches_tensorflow(name: str, channels_last: bool) -> None:
    graph = get(name).graph()
    tf_net, net = _pair(graph)
    images = _images(graph, 2)
    ref = tf_net(tf.constant(images), training=False).numpy()  # with its batch-norm folding, as the engine runs
    net.eval()
    with torch.inference_mode():
        got = net(_nchw(images, channels_last))
    assert got.dtype == torch.float32 and tuple(got.shape) == ref.shape
    rel = _rel(ref, got.numpy())
    assert rel <= REL_TOL, f"{name}: max|tf - torch| / max|tf| = {rel:.2e} > {REL_TOL:.0e}"


def _tiny(g: Graph, x: T, dropout: float) -> T:
    """Every op, and every SAME case: symmetric, asymmetric with stride 2 (odd/even sizes), even kernels at stride
    1 (asymmetric at any size), pools of both kinds in each case, batch norm with and without gamma."""
    stem = [
        g.conv(x, 8, 3, 2),  # bn + relu
        g.maxpool(x, 3, 2, "SAME"),
        g.avgpool(x, 3, 2, "SAME"),
        g.dwconv(x, 3, 2, act="relu6"),
        g.conv(x, 4, 7, 2, bn=False),  # bias
    ]
    y = g.lrn(g.concat(stem), depth_radius=2, bias=1.0, alpha=0.1, beta=0.75)
    z = g.conv(y, 16, (1, 7))
    z2 = g.conv(y, 16, (2, 3), act=None)  # 2x3/1 SAME: one extra row at the bottom, columns symmetric
    w = g.relu(g.add(z, z2))  # may overwrite z2 (only reader) but not z (its ReLU's backward reads it)
    z3 = g.conv(w, 16, 1, bn=False, act=None)
    w = g.add(g.add(z3, g.relu(z3)), w)  # z3 has two readers: its ReLU must not overwrite it
    y = g.concat([g.avgpool(w, 2, 1, "SAME"), g.maxpool(w, 2, 1, "SAME"), g.avgpool(w, 3, 1, "SAME")])
    y = g.relu(g.bn(y, scale=False))
    y = g.conv(y, 8, 3, 2, "VALID")
    y = g.dropout(g.dense(y, 12), dropout)
    return g.logits(y)


def _tiny_graph(size: int, dropout: float = 0.0) -> Graph:
    g = Graph(f"tiny{size}", size, 10)
    _tiny(g, g.input(), dropout)
    return g


@pytest.mark.parametrize("size", [9, 10])
def test_same_padding_and_pools_match_tensorflow_in_inference_and_training(size: int) -> None:
    graph = _tiny_graph(size)
    tf_net, net = _pair(graph)
    images = _images(graph, 4, seed=size)
    x = _nchw(images, channels_last=False)

    net.eval()
    with torch.inference_mode():
        got = net(x).numpy()
    ref = tf_net(tf.constant(images), training=False).numpy()
    rel = _rel(ref, got)
    assert rel <= REL_TOL, f"inference, size {size}: max|tf - torch| / max|tf| = {rel:.2e}"

    # One training step: batch statistics, the moving-statistic update and the gradients.
    cotangent = np.random.default_rng(1).standard_normal(ref.shape).astype(np.float32)
    with tf.GradientTape() as tape:
        ref_train = tf_net(tf.constant(images), training=True)
        loss = tf.reduce_sum(ref_train * cotangent)
    tf_grads = dict(zip([id(v) for v in tf_net.trainable], tape.gradient(loss, tf_net.trainable), strict=True))
    net.train()
    got_train = net(x)
    (got_train * torch.from_numpy(cotangent)).sum().backward()
    rel = _rel(ref_train.numpy(), got_train.detach().numpy())
    assert rel <= REL_TOL, f"training, size {size}: max|tf - torch| / max|tf| = {rel:.2e}"

    checked = 0
    for i, variables in tf_net.weights.items():
        node = graph.nodes[i]
        layer = net.layers[node.name]
        for key, v in variables.items():
            attr = {"kernel": "weight", "bias": "bias", "beta": "bias", "gamma": "weight"}.get(key)
            if key in ("mean", "variance"):
                buf = layer.running_mean if key == "mean" else layer.running_var
                rel = _rel(v.numpy(), buf.numpy())
                assert rel <= REL_TOL, f"{node.name}/{key} after one step: relative difference {rel:.2e}"
                continue
            grad = tf_grads[id(v)].numpy()
            if key == "kernel":
                grad = {
                    "conv": lambda k: k.transpose(3, 2, 0, 1),
                    "dwconv": lambda k: k.transpose(2, 3, 0, 1),
                    "dense": lambda k: k.T,
                }[node.op](grad)
            rel = _rel(grad, getattr(layer, attr).grad.numpy())
            assert rel <= 1e-3, f"gradient of {node.name}/{key}: relative difference {rel:.2e}"
            checked += 1
    assert checked == len(list(net.parameters()))


def test_initial_values_are_the_tensorflow_executors_for_the_same_seed() -> None:
    graph = _tiny_graph(10)
    net = TorchNetwork(graph, seed=7)
    copied = TorchNetwork(graph, seed=8)
    copy_from_tensorflow(copied, Network(graph, seed=7))
    mine, theirs = net.state_dict(), copied.state_dict()
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert not torch.equal(mine["layers.conv0.weight"], TorchNetwork(graph, seed=8).state_dict()["layers.conv0.weight"])


def test_lrn_matches_tensorflow() -> None:
    g = Graph("lrn", 5, 3)
    g.logits(g.lrn(g.input(), depth_radius=3, bias=2.0, alpha=0.3, beta=0.6))
    tf_net, net = _pair(g)
    images = _images(g, 2) * 3
    ref = tf_net(tf.constant(images), training=False).numpy()
    with torch.inference_mode():
        got = net.eval()(_nchw(images, channels_last=False)).numpy()
    assert _rel(ref, got) <= 1e-5


def test_dropout_only_in_training() -> None:
    net = TorchNetwork(_tiny_graph(9, dropout=0.5))
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        net.eval()
        assert torch.equal(net(x), net(x))
        net.train()
        assert not torch.equal(net(x), net(x))


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
@pytest.mark.parametrize("name", ["lenet", "trivial"])
def test_traced_frozen_optimised_module_matches_eager(name: str) -> None:
    graph = get(name).graph()
    _, net = _pair(graph)
    net.eval()
    images = _images(graph, 2)
    with torch.no_grad():
        eager = net(_nchw(images, channels_last=False))
        traced = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net, _nchw(images, False))))
        for channels_last in (False, True):
            out = traced(_nchw(images, channels_last))
            rel = float((out - eager).abs().max() / eager.abs().max())
            assert rel <= 1e-5, f"{name}, channels_last={channels_last}: traced vs eager {rel:.2e}"


def test_autocast_bfloat16_channels_last_gives_float32_logits() -> None:
    graph = _tiny_graph(10)
    net = TorchNetwork(graph).eval().to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 10, 10).to(memory_format=torch.channels_last)
    with torch.inference_mode():
        ref = net(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = net(x)
    assert out.dtype == torch.float32 and out.shape == (2, 10)
    assert float((out - ref).abs().max() / ref.abs().max()) < 0.1


def test_compiles_without_graph_breaks() -> None:
    net = TorchNetwork(_tiny_graph(10)).eval()
    x = torch.randn(2, 3, 10, 10)
    compiled = torch.compile(net, backend="eager", fullgraph=True)
    with torch.no_grad():
        assert torch.allclose(compiled(x), net(x))


def test_a_swapped_layer_takes_effect() -> None:
    net = TorchNetwork(get("lenet").graph()).eval()
    logits = net.graph.nodes[-1].name
    net.layers[logits] = torch.nn.Linear(512, 1001)
    torch.nn.init.zeros_(net.layers[logits].weight)
    torch.nn.init.constant_(net.layers[logits].bias, 2.0)
    with torch.no_grad():
        assert torch.equal(net(torch.randn(2, 3, 28, 28)), torch.full((2, 1001), 2.0))
