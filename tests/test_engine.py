"""The engine end to end: every model steps in TensorFlow, and ``python -m tf_cnn_benchmarks`` runs as upstream's did.

Part 1 builds every registered model as a ``Network`` in this process (one TensorFlow import) and takes a training
step and a forward pass on a batch of 2. The rest runs the engine as real subprocesses with real result files; the
runs are started together on a small pool (each is mostly a TensorFlow import), and each test waits for its own.
Every engine stdout is read with ``cpubench.results.logparse.parse_log``, the parser of the upstream log format.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from enginerun import ERROR_PREFIX, REPO, Run, read_result
from enginerun import clean_env as _env

import tf_cnn_benchmarks
from cpubench.results.logparse import parse_log
from tf_cnn_benchmarks import models
from tf_cnn_benchmarks.benchmark import Optimizer
from tf_cnn_benchmarks.models.network import Network
from tf_cnn_benchmarks.record import RECORD_SCHEMA, RunRecord

DASHES = "-" * 64
TINY = ["--batch_size=2", "--num_batches=2", "--num_warmup_batches=1", "--display_every=1"]


# -- 1. every model, in process --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", models.names())
def test_every_model_trains_one_step_and_runs_forward(name):
    spec = models.get(name)
    graph = spec.graph()
    net = Network(graph, seed=7)
    assert sum(int(np.prod(v.shape)) for v in net.trainable) == graph.summary()["params"]
    assert all(v.dtype == tf.float32 for v in net.trainable)

    batch = 2
    images = tf.random.stateless_normal([batch, spec.image_size, spec.image_size, 3], seed=[1, 2])
    labels = tf.constant([3, 999])
    watched = [net.trainable[0], net.trainable[-1]]  # the first conv kernel and the logits' bias
    before = [v.numpy().copy() for v in watched]

    with tf.GradientTape() as tape:
        logits = net(images, training=True)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    grads = tape.gradient(loss, net.trainable)
    assert logits.shape == (batch, models.IMAGENET_CLASSES) == (batch, 1001)
    assert logits.dtype == tf.float32
    assert math.isfinite(float(loss)) and float(loss) > 0
    assert all(g is not None for g in grads)
    assert all(bool(tf.reduce_all(tf.math.is_finite(g))) for g in grads)

    opt = Optimizer("sgd", 0.01, 0.9, net.trainable)
    for v, g, slots in zip(net.trainable, grads, opt.slots, strict=True):
        opt.update(v, g, *slots)
    for v, old in zip(watched, before, strict=True):
        assert not np.array_equal(v.numpy(), old), f"{name}: {v.name} did not change after a training step"

    out = net(images, training=False)
    assert out.shape == (batch, 1001)
    assert bool(tf.reduce_all(tf.math.is_finite(out)))
    if not any(n.op == "dropout" for n in graph.nodes):
        again = net(images, training=False)
        np.testing.assert_array_equal(out.numpy(), again.numpy())  # inference is deterministic
        # Inference folds each conv's batch norm into the conv: the same function as the batch norm applied
        # after it, checked with statistics far from their initial 0 and 1 so the fold really does something.
        randomise_statistics(net, seed=3)
        folded = net(images, training=False).numpy()
        net.fold_batch_norm = False
        unfolded = net(images, training=False).numpy()
        net.fold_batch_norm = True
        np.testing.assert_allclose(folded, unfolded, rtol=1e-4, atol=1e-4 * float(np.abs(unfolded).max()))


def randomise_statistics(net: Network, seed: int) -> None:
    """Moving means and variances far from their initial 0 and 1, so folding them really changes the kernels."""
    rng = np.random.default_rng(seed)
    for v in net.moving_vars:
        lo, hi = (0.5, 2.0) if "variance" in v.name else (-0.2, 0.2)
        v.assign(rng.uniform(lo, hi, v.shape).astype(np.float32))


def test_inference_folds_batch_norm_into_convolutions():
    """resnet50 inference is one convolution op per conv (BN, add and ReLU fused), with no batch-norm op left."""
    net = Network(models.get("resnet50").graph())
    spec = tf.TensorSpec([1, 224, 224, 3], tf.float32)
    graph = tf.function(lambda x: net(x, training=False)).get_concrete_function(spec).graph
    ops = [op.type for op in graph.get_operations()]
    assert ops.count("Conv2D") == 53
    assert not [t for t in ops if "BatchNorm" in t]


def test_folded_inference_in_bfloat16():
    """The fold is computed in float32 and cast: bf16 inference still matches the unfolded bf16 network."""
    net = Network(models.get("resnet50").graph(), compute_dtype=tf.bfloat16)
    randomise_statistics(net, seed=5)
    images = tf.random.stateless_normal([1, 224, 224, 3], seed=[4, 5])
    folded = net(images, training=False).numpy()
    net.fold_batch_norm = False
    unfolded = net(images, training=False).numpy()
    assert folded.dtype == np.float32 and np.isfinite(folded).all()
    # bf16 rounding alone differs by about 0.6% here; dropping the fold's shift differs by about 1.9%. The exact
    # check of the fold is the float32 one in test_every_model_trains_one_step_and_runs_forward.
    assert np.linalg.norm(folded - unfolded) / np.linalg.norm(unfolded) < 0.015


# -- engine subprocesses ---------------------------------------------------------------------------------------------
def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (int(5e9), int(5e9)))


PINNED_CPU = min(os.sched_getaffinity(0))


def _pin_to_one_cpu() -> None:
    os.sched_setaffinity(0, {PINNED_CPU})


def run_engine(
    cmd: list[str],
    args: list[str],
    out_dir: Path,
    *,
    env: dict[str, str] | None = None,
    preexec_fn: Any = None,
    timeout: float = 240,
    result_json: bool = True,
) -> Run:
    out_dir.mkdir(parents=True, exist_ok=True)
    result_path = out_dir / "result.json"
    argv = [*cmd, *args, *([f"--result_json={result_path}"] if result_json else [])]
    t0 = time.monotonic()
    p = subprocess.run(
        argv, cwd=REPO, env=env or _env(), capture_output=True, text=True, timeout=timeout, preexec_fn=preexec_fn
    )
    wall = time.monotonic() - t0
    return Run(argv, p.returncode, p.stdout, p.stderr, wall, read_result(result_path))


ENGINE = [sys.executable, "-m", "tf_cnn_benchmarks"]
MAIN_ARGS = [
    "--model=trivial",
    "--batch_size=4",
    "--num_batches=12",
    "--display_every=5",
    "--num_warmup_batches=1",
]
LENET = ["--model=lenet", *TINY]
CONSOLE_SCRIPT = Path(sys.executable).parent / "tf_cnn_benchmarks"

# name -> (command, flags, extra keyword arguments of run_engine)
RUNS: dict[str, tuple[list[str], list[str], dict[str, Any]]] = {
    # The longest first, so the pool finishes early.
    "oom": (
        ENGINE,
        ["--model=vgg16", "--batch_size=256", "--num_batches=1", "--num_warmup_batches=0"],
        {"preexec_fn": _limit_memory},
    ),
    "main": (ENGINE, MAIN_ARGS, {}),
    "pinned": (
        ENGINE,
        ["--model=trivial", "--batch_size=2", "--num_batches=6", "--num_warmup_batches=1", "--display_every=3"],
        {"preexec_fn": _pin_to_one_cpu, "env": _env(OMP_NUM_THREADS="1")},
    ),
    "console_script": ([str(CONSOLE_SCRIPT)], ["--model=trivial", *TINY], {}),
    "as_file": ([sys.executable, "tf_cnn_benchmarks/tf_cnn_benchmarks.py"], ["--model=trivial", *TINY], {}),
    "bf16": (ENGINE, [*LENET, "--precision=bf16"], {}),
    "use_fp16": (ENGINE, [*LENET, "--use_fp16"], {}),
    "xla": (ENGINE, [*LENET, "--xla_compile"], {}),
    "forward_only": (ENGINE, [*LENET, "--forward_only"], {}),
    "momentum": (ENGINE, [*LENET, "--optimizer=momentum"], {}),
    "rmsprop": (ENGINE, [*LENET, "--optimizer=rmsprop"], {}),
    "mkl_false": (ENGINE, ["--model=trivial", *TINY, "--mkl=false"], {}),
    "onednn_env_0": (ENGINE, ["--model=trivial", *TINY], {"env": _env(TF_ENABLE_ONEDNN_OPTS="0")}),
    "nchw": (ENGINE, [*LENET, "--data_format=NCHW"], {}),
    "nchw_no_mkl": (ENGINE, [*LENET, "--data_format=NCHW", "--mkl=false"], {}),
    "unknown_model": (ENGINE, ["--model=resnet9000", *TINY], {}),
    "gpu": (ENGINE, ["--model=trivial", *TINY, "--num_gpus=2", "--device=gpu"], {}),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Future]:
    base = tmp_path_factory.mktemp("engine_runs")
    pool = ThreadPoolExecutor(max_workers=3)
    futures = {name: pool.submit(run_engine, cmd, args, base / name, **kw) for name, (cmd, args, kw) in RUNS.items()}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


def get(runs: dict[str, Future], name: str) -> Run:
    return runs[name].result()


def assert_ok(run: Run) -> None:
    assert run.rc == 0, run.show()
    assert "total images/sec" in run.stdout, run.show()
    assert run.result is not None and run.result.status == "ok", run.show()
    assert run.result.reason is None
    assert all(math.isfinite(loss) for _, loss in run.losses()), run.result.details["losses"]


def assert_fails(run: Run, *needles: str) -> str:
    """A non-zero exit (not a signal), exactly one error line on stderr holding every needle; returns the line."""
    assert run.rc > 0, f"expected a clean non-zero exit (a negative code is death by signal)\n{run.show()}"
    lines = run.error_lines()
    assert len(lines) == 1, run.show()
    for needle in needles:
        assert needle in lines[0], run.show()
    assert "total images/sec" not in run.stdout
    return lines[0]


def assert_failed_result(run: Run, *needles: str) -> None:
    assert run.result is not None, f"no result JSON written\n{run.show()}"
    assert run.result.status == "failed"
    reason = run.result.reason
    assert isinstance(reason, str) and "\n" not in reason
    for needle in needles:
        assert needle in reason
    assert run.result.images_per_sec is None
    # The same reason on stderr as in the file.
    assert run.error_lines() == [f"{ERROR_PREFIX} {reason}"]


# -- 2. the upstream log and the result JSON ------------------------------------------------------------------------
def test_main_run_log_matches_upstream_format(runs):
    run = get(runs, "main")
    assert_ok(run)
    log = parse_log(run.stdout)
    assert log.tf_version == ".".join(tf.__version__.split(".")[:2])
    assert log.model == "trivial"
    assert log.header["Dataset"] == "imagenet (synthetic)"
    assert log.dataset == "imagenet" and log.synthetic is True
    assert log.mode == "training" and log.forward_only is False
    assert log.single_sess is False
    assert (log.batch_size_global, log.batch_size_per_device) == (4, 4)
    assert log.num_batches == 12
    assert log.devices == ["/cpu:0"]
    assert log.data_format == "NHWC"
    assert log.optimizer == "sgd"
    assert log.variable_update == "parameter_server"
    assert log.all_reduce is None
    assert log.numa_bind is False
    assert [s.step for s in log.steps] == [1, 5, 10]
    for s in log.steps:
        assert s.images_per_sec > 0 and s.spread is not None and s.jitter is not None
        assert len(s.values) == 1 and math.isfinite(s.loss)
    assert log.complete and len(log.totals) == 1 and log.last_error is None

    lines = run.stdout.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("total images/sec:"))
    assert lines[i - 1] == DASHES and lines[i + 1] == DASHES
    assert i == len(lines) - 2  # the total is the last thing printed
    title = lines.index("Step\tImg/sec\ttotal_loss")
    assert lines.index("==========") < title and lines[title + 1].startswith("1\timages/sec: ")


def test_main_run_total_line_equals_result_json(runs):
    run = get(runs, "main")
    assert_ok(run)
    # What shell scripts do: grep "total images" | awk '{print $3}'
    totals = [line.split()[2] for line in run.stdout.splitlines() if "total images" in line]
    assert len(totals) == 1
    assert float(totals[0]) == round(run.result.images_per_sec, 2)
    assert float(totals[0]) == parse_log(run.stdout).total_images_per_sec


def test_main_run_result_json(runs):
    run = get(runs, "main")
    assert_ok(run)
    r = run.result
    assert r.schema == RECORD_SCHEMA == 2 and r.source == "engine"
    assert r.model == "trivial"
    assert (r.batch_size, r.samples.global_batch, r.num_devices, r.details["num_batches"]) == (4, 4, 1, 12)
    assert len(r.step_times) == 12 and all(t > 0 for t in r.step_times)
    assert len(r.samples.warmup_times) == 1
    assert r.images_per_sec == pytest.approx(4 * 12 / sum(r.step_times), rel=1e-9)
    phases = ("import", "setup", "build", "warmup", "measured", "total_in_engine")
    assert set(phases) <= set(r.timings)
    assert all(r.timings[k] >= 0 for k in phases)
    assert r.timings["measured"] >= sum(r.step_times) * 0.99
    assert r.timings["total_in_engine"] >= r.timings["setup"] + r.timings["build"] + r.timings["measured"]
    flags = r.details["flags"]
    assert flags["model"] == "trivial" and flags["batch_size"] == 4
    assert flags["num_batches"] == 12 and flags["display_every"] == 5
    assert flags["result_json"].endswith("result.json")
    assert {"intra", "inter", "intra_effective", "inter_effective", "schedulable_cores"} <= set(r.threads)
    assert r.threads["intra"] == 0 and r.threads["intra_effective"] >= 1
    assert r.framework == "tensorflow" and r.framework_version == tf.__version__
    assert r.engine == {"name": "tf_cnn_benchmarks", "version": tf_cnn_benchmarks.__version__}
    assert r.devices == ["/cpu:0"]
    assert r.details["variables"] == "parameter_server" and r.details["num_workers"] == 1
    # The losses of the display steps, as printed.
    log = parse_log(run.stdout)
    losses = run.losses()
    assert [step for step, _ in losses] == [1, 5, 10]
    for (_, loss), s in zip(losses, log.steps, strict=True):
        assert f"{loss:.3f}" == f"{s.loss:.3f}"


def test_result_json_says_what_the_engine_ran_under(runs):
    """The engine reads its CPUs, memory policy and thread environment itself, from inside the process: a child
    pinned to one CPU with OMP_NUM_THREADS=1 reports exactly that; its figures are derived from its samples."""
    run = get(runs, "pinned")
    assert_ok(run)
    r = run.result
    assert r.cpus == [PINNED_CPU]
    assert r.threads == {
        "intra": 0,
        "inter": 0,
        "intra_effective": 1,
        "inter_effective": 1,
        "schedulable_cores": 1,
    }
    assert r.thread_env["OMP_NUM_THREADS"] == "1"
    assert r.thread_env["TF_ENABLE_ONEDNN_OPTS"] == "1"
    assert "TF_CPP_MIN_LOG_LEVEL" not in r.thread_env  # logging only
    assert r.memory_policy is not None and "mode" in r.memory_policy and "mems_allowed" in r.memory_policy
    if sys.platform == "linux" and os.uname().machine in ("x86_64", "aarch64"):
        assert isinstance(r.memory_policy["mode"], str)
    assert r.samples.global_batch == 2 and len(r.step_times) == 6 and len(r.samples.warmup_times) == 1
    assert r.images_per_sec == r.samples.global_batch * len(r.step_times) / sum(r.step_times)
    raw = json.loads(Path(run.argv[-1].partition("=")[2]).read_text())
    assert raw["cpus"] == [PINNED_CPU] and raw["schema"] == 2
    lat = raw["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"]
    ms = sorted(1000 * t for t in r.step_times)
    assert lat["p50"] == pytest.approx((ms[2] + ms[3]) / 2, abs=1e-3)  # the median of six step times
    assert [step for step, _ in run.losses()] == [1, 3, 6]


# -- 3. the other ways in -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["console_script", "as_file"])
def test_other_entry_points(runs, name):
    assert CONSOLE_SCRIPT.exists()
    run = get(runs, name)
    assert_ok(run)
    log = parse_log(run.stdout)
    assert log.model == "trivial" and log.complete and [s.step for s in log.steps] == [1, 2]


# -- 4. bad input ---------------------------------------------------------------------------------------------------
def test_unknown_model(runs):
    run = get(runs, "unknown_model")
    assert run.rc == 2  # a usage error: refused before any framework is imported
    assert_fails(run, "--model=resnet9000: unknown model", *models.names())
    assert_failed_result(run, "resnet9000")


# Bad command lines and the message each must give, on stderr and as the failed result's reason.
BAD_FLAGS = pytest.mark.parametrize(
    "args, needle",
    [
        (["--frobnicate=1"], "unknown flag --frobnicate"),
        (["--batch_size=0"], "--batch_size=0: must be at least 1"),
        (["--batch_size=-1"], "--batch_size=-1: must be at least 1"),
    ],
    ids=["unknown-flag", "batch-0", "batch-minus-1"],
)


@BAD_FLAGS
def test_flag_errors_one_line(tmp_path, args, needle):
    run = run_engine(ENGINE, ["--model=trivial", *args], tmp_path, timeout=60)
    assert run.rc == 2, run.show()
    # Flags are checked before TensorFlow is imported: the error line is all there is.
    assert run.stderr.splitlines() == run.error_lines(), run.show()
    assert len(run.error_lines()) == 1 and needle in run.error_lines()[0], run.show()
    assert run.stdout == ""


@BAD_FLAGS
def test_flag_errors_write_failed_result(tmp_path, args, needle):
    # --result_json comes before the bad flag, so it is known when the error is found.
    result = tmp_path / "r.json"
    p = subprocess.run(
        [*ENGINE, f"--result_json={result}", "--model=trivial", *args],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode != 0
    assert result.exists(), f"no failed result JSON for a bad command line; stderr: {p.stderr.strip()}"
    data = json.loads(result.read_text())
    assert data["schema"] == 2 and data["images_per_sec"] is None
    r = RunRecord.from_dict(data)
    assert r.status == "failed" and needle in r.reason and r.source == "engine"
    assert p.stderr.strip() == f"{ERROR_PREFIX} {r.reason}"
    # TensorFlow was never imported; the record still says which engine refused which command line.
    assert r.framework_version is None and r.engine["name"] == "tf_cnn_benchmarks"
    assert r.details["argv"][0] == f"--result_json={result}"


def test_nchw_on_cpu_runs_or_says_use_nhwc(runs):
    run = get(runs, "nchw")
    if run.rc == 0:
        assert_ok(run)
        assert parse_log(run.stdout).data_format == "NCHW"
    else:
        assert_fails(run, "--data_format=NCHW", "use --data_format=NHWC")
        assert_failed_result(run, "--data_format=NHWC")


def test_nchw_without_onednn_says_use_nhwc(runs):
    run = get(runs, "nchw_no_mkl")
    assert_fails(run, "--data_format=NCHW", "use --data_format=NHWC")
    assert_failed_result(run, "use --data_format=NHWC")


def test_out_of_memory_says_lower_batch_size(runs):
    run = get(runs, "oom")
    assert_fails(run, "out of memory", "--batch_size")
    assert_failed_result(run, "out of memory", "--batch_size")


def test_gpus_on_host_without_gpu(runs):
    run = get(runs, "gpu")
    assert_fails(run, "--device=gpu", "--num_gpus=2", "GPU", "--device=cpu")
    assert_failed_result(run, "--device=gpu")


# -- 5. numerics, modes and optimizers ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bf16", "use_fp16"])
def test_bf16_runs(runs, name):
    run = get(runs, name)
    assert_ok(run)
    assert "Precision:   bf16 compute, fp32 variables" in run.stdout.splitlines()
    flags = run.result.details["flags"]
    assert flags["precision"] == "bf16" and flags["use_fp16"] is True
    assert parse_log(run.stdout).model == "lenet"


def test_xla_compile_runs(runs):
    run = get(runs, "xla")
    assert_ok(run)
    assert "XLA:         True" in run.stdout.splitlines()
    assert run.result.details["flags"]["xla_compile"] is True


def test_forward_only_run(runs):
    run = get(runs, "forward_only")
    assert_ok(run)
    log = parse_log(run.stdout)
    assert log.mode == "forward-only" and log.forward_only is True
    assert "Generating model" in run.stdout and "Generating training model" not in run.stdout
    # Nothing trains: every step sees the same weights and the same batch, so the loss does not move.
    losses = [loss for _, loss in run.losses()]
    assert losses[0] == pytest.approx(losses[-1], rel=1e-6)


@pytest.mark.parametrize("name", ["momentum", "rmsprop"])
def test_optimizers_run(runs, name):
    run = get(runs, name)
    assert_ok(run)
    assert parse_log(run.stdout).optimizer == name
    assert run.result.details["flags"]["optimizer"] == name


# -- 6. oneDNN ------------------------------------------------------------------------------------------------------
def test_onednn_on_by_default(runs):
    run = get(runs, "main")  # started with TF_ENABLE_ONEDNN_OPTS removed from the environment
    assert_ok(run)
    assert run.result.onednn is True
    assert run.result.details["flags"]["mkl"] is True
    assert run.result.thread_env["TF_ENABLE_ONEDNN_OPTS"] == "1"  # set by the engine, seen by the record


def test_mkl_false_turns_onednn_off(runs):
    run = get(runs, "mkl_false")
    assert_ok(run)
    assert run.result.onednn is False
    assert run.result.details["flags"]["mkl"] is False


def test_onednn_env_respected_without_mkl_flag(runs):
    run = get(runs, "onednn_env_0")
    assert_ok(run)
    assert run.result.onednn is False


def test_a_run_leaves_nothing_in_its_temporary_folder(tmp_path: Path) -> None:
    """TensorFlow's autograph writes generated sources to the temporary folder and removes them at interpreter exit,
    which the engine skips (os._exit): the engine's own private folder inside TMPDIR takes them and is removed."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    run = run_engine(ENGINE, ["--model=lenet", *TINY], tmp_path / "run", env=_env(TMPDIR=str(scratch)))
    assert_ok(run)
    assert not list(scratch.iterdir())


def test_a_frozen_network_folds_once_and_computes_the_same():
    """Frozen for inference, the step reads folded kernels: no batch-norm arithmetic over the weights per step (no
    Rsqrt, no statistics read), and the same outputs as the fold done in the step."""
    net = Network(models.get("resnet50").graph())
    randomise_statistics(net, seed=7)
    images = tf.random.stateless_normal([2, 224, 224, 3], seed=[7, 8])
    in_step = net(images, training=False).numpy()
    net.freeze_for_inference()
    frozen = net(images, training=False).numpy()
    np.testing.assert_allclose(frozen, in_step, rtol=1e-5, atol=1e-5 * float(np.abs(in_step).max()))
    spec = tf.TensorSpec([1, 224, 224, 3], tf.float32)
    ops = [op.type for op in tf.function(lambda x: net(x, training=False)).get_concrete_function(spec).graph
           .get_operations()]  # fmt: skip
    assert ops.count("Conv2D") == 53 and "Rsqrt" not in ops
    # Training still reads the batch norms' own variables.
    assert net(images, training=True).shape == (2, 1001)


def test_pointwise_weight_gradient_as_a_matmul_is_the_convolutions_gradient():
    """A 1x1 convolution's kernel gradient, computed as one matrix product over all pixels, equals the one
    TensorFlow's convolution gradient computes (beside a 1x1 with a bias and a 3x3 that keep the convolution's own
    gradient); a strided 1x1 is the product on the input's every s-th pixel, taken once for both 1x1s that read it,
    unless the size does not divide by the stride; fp32 training uses the product, inference, bf16 and NCHW do not."""
    from tf_cnn_benchmarks.models.graph import Graph

    g = Graph("pointwise", 6, 5)
    x = g.input()
    y = g.conv(x, 8, 1)  # 1x1, stride 1, batch norm: the product
    y = g.conv(y, 12, 1, bn=False)  # 1x1, stride 1, bias: the convolution, so Conv2D + BiasAdd still fuse
    y = g.conv(y, 16, 1)  # 1x1, stride 1, batch norm: the product
    y = g.add(g.conv(y, 8, 1, 2), g.conv(y, 8, 1, 2))  # 1x1, stride 2, 6x6: the product on one shared subsample
    y = g.conv(y, 8, 1, 2)  # 1x1, stride 2, 3x3: 3 is odd, so the convolution
    y = g.conv(y, 8, 3)  # 3x3: the convolution
    g.logits(y)
    net = Network(g, seed=3)
    assert net.pointwise_weight_grad_as_matmul
    assert not Network(g, compute_dtype=tf.bfloat16).pointwise_weight_grad_as_matmul
    assert not Network(g, data_format="NCHW").pointwise_weight_grad_as_matmul
    images = tf.random.stateless_normal([3, 6, 6, 3], seed=[3, 4])
    labels = tf.constant([0, 4, 2])

    def ops_of(training: bool) -> list[str]:
        fn = tf.function(lambda: net(images, training=training))
        return [op.type for op in fn.get_concrete_function().graph.get_operations()]

    def grads(matmul: bool) -> tuple[list[np.ndarray], list[str]]:
        net.pointwise_weight_grad_as_matmul = matmul
        ops = ops_of(training=True)
        with tf.GradientTape() as tape:
            logits = net(images, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
        return [g.numpy() for g in tape.gradient(loss, net.trainable)], ops

    want, plain_ops = grads(False)
    got, ops = grads(True)
    assert plain_ops.count("Conv2D") == 7 and ops.count("Conv2D") == 7
    # The custom gradient is really in the graph, once per batch-normed 1x1 it applies to, and never in inference.
    assert ops.count("IdentityN") == 4 and "IdentityN" not in plain_ops
    # The two strided 1x1s share one contiguous Slice; no per-element StridedSlice is left for the CPU.
    assert ops.count("Slice") == 1 and "Slice" not in plain_ops, (ops, plain_ops)
    assert ops.count("StridedSlice") == plain_ops.count("StridedSlice"), (ops, plain_ops)
    assert "IdentityN" not in ops_of(training=False)
    for w, v, var in zip(want, got, net.trainable, strict=True):
        np.testing.assert_allclose(v, w, rtol=1e-5, atol=1e-6 * float(np.abs(w).max()), err_msg=var.name)
