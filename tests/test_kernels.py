"""The engine's compiled batch-norm kernel (tf_cnn_benchmarks.kernels): its arithmetic against a float64 reference
and against TensorFlow's own batch norm, where the network uses it and where not, what a run records of it, and a
host where it cannot be built.

The kernel is built with g++ on first use (scripts/_system.sh installs g++ for the tests); the suite's first test
that needs it pays the build, about 10-20 s on 2 cores, and the rest load the cached library.
"""

from __future__ import annotations

import shutil
from argparse import Namespace
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from enginerun import clean_env
from test_engine import ENGINE, TINY, assert_ok, run_engine

from tf_cnn_benchmarks import kernels
from tf_cnn_benchmarks.benchmark import batch_norm_kernel
from tf_cnn_benchmarks.models.graph import Graph
from tf_cnn_benchmarks.models.network import BN_EPSILON, Network

needs_compiler = pytest.mark.skipif(
    shutil.which("g++") is None, reason="g++ is missing: install it with 'sudo apt-get install g++'"
)


@pytest.fixture(scope="module")
def ops():
    loaded = kernels.batch_norm()
    assert loaded.ops is not None, loaded.reason
    return loaded.ops


def reference(
    x: np.ndarray, up: np.ndarray, gamma: np.ndarray, beta: np.ndarray, relu: bool, eps: float,
    side: np.ndarray | None = None,
) -> dict:  # fmt: skip
    """Training batch norm (+ ``side``) (+ ReLU) and its gradients in float64, written from the definition."""
    c = x.shape[-1]
    xd = x.astype(np.float64).reshape(-1, c)
    m = xd.shape[0]
    mean, var = xd.mean(0), xd.var(0)
    inv = 1 / np.sqrt(var + eps)
    xhat = (xd - mean) * inv
    z = xhat * gamma + beta + (0.0 if side is None else side.reshape(-1, c).astype(np.float64))
    g = up.reshape(-1, c).astype(np.float64) * ((z > 0) if relu else 1.0)
    dbeta, dgamma = g.sum(0), (g * xhat).sum(0)
    dx = gamma * inv / m * (m * g - dbeta - xhat * dgamma)
    return {"y": np.maximum(z, 0) if relu else z, "mean": mean, "variance": var * m / (m - 1), "dx": dx,
            "dgamma": dgamma, "dbeta": dbeta, "dside": g, "z": z}  # fmt: skip


@needs_compiler
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("shape", [(2, 3, 3, 16), (4, 5, 5, 40), (3, 7, 1, 5)])
def test_batch_norm_kernel_matches_the_definition(ops, shape, relu):
    """Forward outputs (the Bessel-corrected variance for the moving average, as TensorFlow returns it) and the
    three gradients equal a float64 reference; a mean far from zero against the spread is where a naive
    sum-of-squares variance would lose its digits."""
    rng = np.random.default_rng(sum(shape) + relu)
    c = shape[-1]
    x = rng.normal(40.0, 0.5, shape).astype(np.float32)
    up = rng.normal(0, 1, shape).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, c).astype(np.float32)
    beta = rng.normal(0, 0.5, c).astype(np.float32)
    # A value within rounding of the ReLU's edge may fall either side of it: no gradient flows into those.
    edge = np.abs(reference(x, up, gamma, beta, relu, BN_EPSILON)["z"]).reshape(shape) < 1e-3
    up[edge] = 0.0
    want = reference(x, up, gamma, beta, relu, BN_EPSILON)
    y, mean, variance, inv = ops.engine_batch_norm_train(x, gamma, beta, epsilon=BN_EPSILON, relu=relu)
    dx, dgamma, dbeta = ops.engine_batch_norm_train_grad(up, x, gamma, beta, mean, inv, relu=relu)
    got = {"y": y.numpy().reshape(-1, c), "mean": mean.numpy(), "variance": variance.numpy(),
           "dx": dx.numpy().reshape(-1, c), "dgamma": dgamma.numpy(), "dbeta": dbeta.numpy()}  # fmt: skip
    for name, value in got.items():
        scale = float(np.abs(want[name]).max())
        np.testing.assert_allclose(value, want[name], rtol=0, atol=2e-5 * scale + 1e-6, err_msg=name)


@needs_compiler
@pytest.mark.parametrize(("shape", "copies"), [((2, 3, 3, 16), 0), ((4, 5, 5, 40), 1), ((3, 7, 1, 5), 2)])
def test_batch_norm_add_relu_kernel_matches_the_definition(ops, shape, copies):
    """relu(bn(x) + side), a residual block's close, and its four gradients through the registered gradient equal
    a float64 reference; with copies of y, each read by its own reader, the gradients are those of y read by all
    of them (the readers' gradients added)."""
    rng = np.random.default_rng(sum(shape))
    c = shape[-1]
    x = rng.normal(40.0, 0.5, shape).astype(np.float32)
    side = rng.normal(0, 1, shape).astype(np.float32)
    ups = [rng.normal(0, 1, shape).astype(np.float32) for _ in range(copies + 1)]
    gamma = rng.uniform(0.5, 1.5, c).astype(np.float32)
    beta = rng.normal(0, 0.5, c).astype(np.float32)
    edge = np.abs(reference(x, ups[0], gamma, beta, True, BN_EPSILON, side)["z"]).reshape(shape) < 1e-3
    for up in ups:
        up[edge] = 0.0
    want = reference(x, np.sum(ups, axis=0), gamma, beta, True, BN_EPSILON, side)
    tx, tside, tgamma, tbeta = (tf.constant(v) for v in (x, side, gamma, beta))
    with tf.GradientTape() as tape:
        tape.watch([tx, tside, tgamma, tbeta])
        y, mean, variance, _, more = ops.engine_batch_norm_add_relu_train(
            tx, tside, tgamma, tbeta, epsilon=BN_EPSILON, copies=copies
        )
        assert len(more) == copies
        dot = tf.add_n([tf.reduce_sum(out * up) for out, up in zip([y, *more], ups, strict=True)])
    dx, dside, dgamma, dbeta = tape.gradient(dot, [tx, tside, tgamma, tbeta])
    for out in more:
        np.testing.assert_array_equal(out.numpy(), y.numpy())
    got = {"y": y.numpy().reshape(-1, c), "mean": mean.numpy(), "variance": variance.numpy(),
           "dx": dx.numpy().reshape(-1, c), "dside": dside.numpy().reshape(-1, c), "dgamma": dgamma.numpy(),
           "dbeta": dbeta.numpy()}  # fmt: skip
    for name, value in got.items():
        scale = float(np.abs(want[name]).max())
        np.testing.assert_allclose(value, want[name], rtol=0, atol=2e-5 * scale + 1e-6, err_msg=name)


@needs_compiler
def test_batch_norm_kernel_refuses_mismatched_shapes(ops):
    x = tf.ones([2, 3, 3, 4])
    with pytest.raises(tf.errors.InvalidArgumentError, match="one value per channel"):
        ops.engine_batch_norm_train(x, tf.ones([3]), tf.zeros([4]), epsilon=1e-3, relu=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match="non-empty"):
        ops.engine_batch_norm_train(tf.ones([0, 4]), tf.ones([4]), tf.zeros([4]), epsilon=1e-3, relu=False)
    c = tf.ones([4])
    with pytest.raises(tf.errors.InvalidArgumentError, match="dy and x must have one"):
        ops.engine_batch_norm_train_grad(tf.ones([2, 3, 3, 4]), tf.ones([2, 3, 4]), c, c, c, c, relu=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match="side must have x's shape"):
        ops.engine_batch_norm_add_relu_train(tf.ones([2, 3, 3, 4]), tf.ones([2, 3, 4]), c, c, epsilon=1e-3)


@needs_compiler
def test_batch_norm_kernel_is_tensorflows_batch_norm_in_a_network(ops):
    """A small residual network trained through the kernel computes the loss and every gradient TensorFlow's own
    batch norm and ReLU compute; the training graph holds one fused op per batch norm (the block's last one with
    its add and ReLU) and no ReLU where one was fused; a block's output read by two layers reaches them as two
    outputs of its op, whose gradient adds theirs (no AddN), but two strided 1x1s reading one subsample of it take
    one (no gradient of zeros for an unread copy); and inference, bf16 and NCHW never use it."""
    g = Graph("bn", 8, 5)
    x = g.input()
    y = g.conv(x, 16, 3)  # conv, batch norm, ReLU: fused
    s = g.conv(y, 32, 1, act=None)  # batch norm read by the add: fused without a ReLU
    y = g.conv(y, 8, 1)
    y = g.conv(y, 32, 3, act=None)  # the block's last batch norm: fused with the add and the ReLU
    y = g.relu(g.add(y, s))  # read by the next block's convolution and by its shortcut
    z = g.conv(g.conv(y, 8, 1), 32, 3, act=None)
    y = g.relu(g.add(y, z))  # the shortcut first: the batch norm is the add's second input
    p = g.conv(y, 32, 1, stride=2, act=None)  # a projection shortcut
    z = g.conv(g.conv(y, 8, 1, stride=2), 32, 3, act=None)  # ... sharing its subsample of y with this 1x1
    y = g.relu(g.add(z, p))
    g.logits(g.global_avgpool(y))
    images = tf.random.stateless_normal([3, 8, 8, 3], seed=[1, 2])
    labels = tf.constant([0, 4, 2])

    def train(net: Network) -> tuple[float, list[np.ndarray], list[tf.Operation]]:
        """The loss and gradients of one step, and that step's graph's ops."""

        def step() -> tuple[tf.Tensor, list[tf.Tensor]]:
            with tf.GradientTape() as tape:
                logits = net(images, training=True)
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
            return loss, tape.gradient(loss, net.trainable)

        graph_ops = tf.function(step).get_concrete_function().graph.get_operations()
        loss, grads = step()
        return float(loss), [t.numpy() for t in grads], graph_ops

    plain = Network(g, seed=7)
    fused = Network(g, seed=7, batch_norm_ops=ops)
    want_loss, want, plain_graph = train(plain)
    got_loss, got, fused_graph = train(fused)
    plain_ops, fused_ops = [op.type for op in plain_graph], [op.type for op in fused_graph]
    bns = sum(1 for node in g.nodes if node.op == "bn")
    assert bns == 9
    assert fused_ops.count("EngineBatchNormTrain") == bns - 3 and fused_ops.count("EngineBatchNormAddReluTrain") == 3
    assert not [t for t in fused_ops if "FusedBatchNorm" in t]
    assert plain_ops.count("Relu") == 7 and fused_ops.count("Relu") == 0
    assert fused_ops.count("ReluGrad") == 0
    assert plain_ops.count("AddV2") - fused_ops.count("AddV2") == 3  # the blocks' adds
    assert plain_ops.count("AddN") - fused_ops.count("AddN") == 1  # the first block's output's two gradients
    closes = [op for op in fused_graph if op.type == "EngineBatchNormAddReluTrain"]
    assert [op.get_attr("copies") for op in closes] == [1, 0, 0]
    grads = [op for op in fused_graph if op.type == "EngineBatchNormAddReluTrainGrad"]
    assert len(grads) == 3 and not [t for op in grads for t in op.inputs if t.op.type == "ZerosLike"]
    assert got_loss == pytest.approx(want_loss, rel=1e-5)
    for w, v, var in zip(want, got, fused.trainable, strict=True):
        np.testing.assert_allclose(v, w, rtol=1e-4, atol=1e-5 * float(np.abs(w).max()) + 1e-7, err_msg=var.name)
    # The moving statistics move as TensorFlow's do.
    for a, b in zip(plain.moving_vars, fused.moving_vars, strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.name)
    inference = tf.function(lambda: fused(images, training=False)).get_concrete_function().graph
    assert "EngineBatchNormTrain" not in [op.type for op in inference.get_operations()]
    with pytest.raises(ValueError, match="NHWC float32 only"):
        Network(g, compute_dtype=tf.bfloat16, batch_norm_ops=ops)
    with pytest.raises(ValueError, match="NHWC float32 only"):
        Network(g, data_format="NCHW", batch_norm_ops=ops)


def _flags(**over: object) -> Namespace:
    base = {"batch_norm_kernel": "auto", "forward_only": False, "device": "cpu", "data_format": "NHWC",
            "xla_compile": False}  # fmt: skip
    return Namespace(**{**base, **over})


@needs_compiler
@pytest.mark.parametrize(
    ("over", "dtype", "needle"),
    [
        ({"batch_norm_kernel": "tensorflow"}, tf.float32, "--batch_norm_kernel=tensorflow"),
        ({"forward_only": True}, tf.float32, "inference folds batch norm"),
        ({"device": "gpu"}, tf.float32, "CPU only"),
        ({"data_format": "NCHW"}, tf.float32, "NHWC only"),
        ({}, tf.bfloat16, "float32 only"),
        ({"xla_compile": True}, tf.float32, "XLA"),
    ],
)
def test_where_the_kernel_does_not_apply_tensorflows_runs_and_says_why(over, dtype, needle):
    graph = Graph("one", 4, 2)
    graph.logits(graph.global_avgpool(graph.conv(graph.input(), 4, 3)))
    ops, said = batch_norm_kernel(_flags(**over), graph, dtype)
    assert ops is None and said["kernel"] == "tensorflow" and needle in said["why"]
    ops, said = batch_norm_kernel(_flags(), graph, tf.float32)
    assert ops is not None and said["kernel"] == "engine"
    bare = Graph("nobn", 4, 2)
    bare.logits(bare.flatten(bare.input()))
    assert batch_norm_kernel(_flags(), bare, tf.float32) == (
        None,
        {"kernel": None, "why": "the model has no batch norm"},
    )


def test_a_host_that_cannot_build_the_kernel_gets_one_line(tmp_path, monkeypatch):
    """No compiler, or a compiler that fails: a one-line reason, nothing left behind but the lock file."""
    monkeypatch.setenv("TF_CNN_BENCHMARKS_KERNEL_DIR", str(tmp_path / "k"))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-g++"))
    why = kernels._build("batch_norm")
    assert isinstance(why, str) and why.startswith("no C++ compiler") and "\n" not in why
    monkeypatch.setenv("CXX", shutil.which("false") or "/bin/false")
    why = kernels._build("batch_norm")
    assert isinstance(why, str) and "did not build" in why and "\n" not in why
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["batch_norm.lock"]


@needs_compiler
def test_the_kernel_is_built_once_and_kept(ops):
    """The build the ``ops`` fixture caused (or found) is the one every later call gets, untouched, in the cache
    folder, with no half-written file beside it."""
    first = kernels._build("batch_norm")
    assert isinstance(first, Path) and first.parent == kernels.cache_dir(), first
    stamp = first.stat().st_mtime_ns
    assert kernels._build("batch_norm") == first and first.stat().st_mtime_ns == stamp
    assert not [p for p in first.parent.iterdir() if p.is_dir() or not p.name.startswith("batch_norm")]


@needs_compiler
def test_engine_runs_record_which_batch_norm_ran(tmp_path):
    """A resnet50 training run uses the kernel and says so in its log and record; the same run on a host with no
    compiler runs TensorFlow's batch norm and records why; a model without batch norm records null."""
    args = ["--model=resnet50", *TINY]
    nocompiler = clean_env(CXX=str(tmp_path / "no-such-g++"), TF_CNN_BENCHMARKS_KERNEL_DIR=str(tmp_path / "empty"))
    with ThreadPoolExecutor(max_workers=3) as pool:  # mostly TensorFlow imports: started together
        engine = pool.submit(run_engine, ENGINE, args, tmp_path / "engine")
        fallback = pool.submit(run_engine, ENGINE, args, tmp_path / "nocompiler", env=nocompiler)
        lenet = pool.submit(run_engine, ENGINE, ["--model=lenet", *TINY], tmp_path / "lenet")
    run = engine.result()
    assert_ok(run)
    said = "Batch norm: the engine's fused batch norm + ReLU (+ a residual block's add), forward and backward"
    assert said in run.stdout.splitlines()
    assert run.result.details["batch_norm"]["kernel"] == "engine"
    run = fallback.result()
    assert_ok(run)
    said = run.result.details["batch_norm"]
    assert said["kernel"] == "tensorflow" and "no C++ compiler" in said["why"], said
    run = lenet.result()
    assert_ok(run)
    assert run.result.details["batch_norm"] == {"kernel": None, "why": "the model has no batch norm"}
