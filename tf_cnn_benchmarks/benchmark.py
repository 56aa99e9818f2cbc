"""One benchmark run: set up the devices, build the step, and time it; the log and the result are made elsewhere.

Flow: threads and devices are configured before TensorFlow starts its runtime; the model declaration becomes a
:class:`~tf_cnn_benchmarks.models.network.Network` inside the strategy's scope; the step is one ``tf.function``
(forward, backward, gradient aggregation, update) called once per batch by the timing loop
(:func:`~tf_cnn_benchmarks.timing.measure`), which times each call together with the fetch of its loss, so the clock
stops only when the work is done. Upstream's log is printed live by
:class:`~tf_cnn_benchmarks.upstreamlog.UpstreamLog`; what the run learns goes into a
:class:`~tf_cnn_benchmarks.result.RunFacts`, from which the result JSON is made.
"""

from __future__ import annotations

import re
import time
from argparse import Namespace
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from tf_cnn_benchmarks import hostfacts, models
from tf_cnn_benchmarks.models.graph import Graph
from tf_cnn_benchmarks.models.network import Network
from tf_cnn_benchmarks.preflight import (
    BenchmarkError,
    EngineRun,
    check_memory,
    timed_steps,
    timing_flags,
)
from tf_cnn_benchmarks.result import Setup
from tf_cnn_benchmarks.strategies import (
    Plan,
    StrategyError,
    build_plan,
    cluster_ready,
    configure_devices,
    gpu_devices,
)
from tf_cnn_benchmarks.timing import Measurement, measure
from tf_cnn_benchmarks.upstreamlog import Header, UpstreamLog


# -- set-up ---------------------------------------------------------------------------------------------------------
def configure_threads(flags: Namespace) -> None:
    """Thread pools must be sized before the runtime starts (``result.threads`` reports the sizes these flags give)."""
    if flags.num_intra_threads:
        tf.config.threading.set_intra_op_parallelism_threads(flags.num_intra_threads)
    if flags.num_inter_threads:
        tf.config.threading.set_inter_op_parallelism_threads(flags.num_inter_threads)


def check_data_format(flags: Namespace, device: str) -> None:
    """NCHW convolutions and pools are not built into every CPU kernel set: try them once, fail with the fix."""
    if flags.data_format != "NCHW" or flags.device != "cpu":
        return
    try:
        with tf.device(device):
            x = tf.zeros([1, 3, 8, 8])
            y = tf.nn.conv2d(x, tf.zeros([3, 3, 3, 4]), 1, "SAME", data_format="NCHW")
            y = tf.nn.max_pool2d(y, 2, 2, "VALID", data_format="NCHW")
            tf.compat.v1.nn.fused_batch_norm(y, tf.ones([4]), tf.zeros([4]), data_format="NCHW")[0].numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError, tf.errors.NotFoundError) as e:
        first = re.sub(r"\{\{[^}]*\}\}\s*", "", str(e).strip().splitlines()[0])[:160]
        raise BenchmarkError(
            f"--data_format=NCHW: this TensorFlow build cannot run NCHW convolutions on CPU ({first}); "
            "use --data_format=NHWC"
        ) from None


def compute_dtype(flags: Namespace) -> tf.DType:
    return {"fp32": tf.float32, "bf16": tf.bfloat16, "fp16": tf.float16}[flags.precision]


def batch_norm_kernel(flags: Namespace, graph: Graph, dtype: tf.DType) -> tuple[Any | None, dict[str, str | None]]:
    """The engine's fused batch-norm ops where they apply and build (else None), and what the record says of it.

    Where it applies: training (inference folds batch norm into the convolutions), on the CPU, NHWC, float32, and
    not under XLA (a custom op has no XLA lowering). Anything else, or a host where the kernel cannot be built, runs
    TensorFlow's own batch norm, and ``why`` says which reason held."""
    if not any(node.op == "bn" for node in graph.nodes):
        return None, {"kernel": None, "why": "the model has no batch norm"}
    reasons = [
        (flags.batch_norm_kernel == "tensorflow", "--batch_norm_kernel=tensorflow"),
        (flags.forward_only, "inference folds batch norm into the convolutions"),
        (flags.device != "cpu", "the engine's kernel runs on the CPU only"),
        (flags.data_format != "NHWC", "the engine's kernel runs NHWC only"),
        (dtype != tf.float32, "the engine's kernel runs float32 only"),
        (flags.xla_compile, "XLA compiles the step, and the engine's kernel has no XLA lowering"),
    ]
    why = next((text for held, text in reasons if held), None)
    if why is None:
        from tf_cnn_benchmarks import kernels

        loaded = kernels.batch_norm()
        if loaded.ops is not None:
            why = "the engine's fused batch norm + ReLU (+ a residual block's add), forward and backward"
            return loaded.ops, {"kernel": "engine", "why": why}
        why = loaded.reason
    return None, {"kernel": "tensorflow", "why": f"TensorFlow's ({why})"}


class Optimizer:
    """SGD, momentum and RMSProp written as per-variable update functions, applied by ``strategy.extended.update``.

    Our own few lines rather than Keras optimizers: they run unchanged under every strategy (central storage,
    mirrored, multi-worker) with fp32 variables and no loss-scale or policy machinery in the timed step.
    """

    def __init__(self, name: str, learning_rate: float, momentum: float, variables: list[tf.Variable]) -> None:
        self.name, self.lr, self.momentum = name, learning_rate, momentum
        self.slots: list[tuple[tf.Variable, ...]] = []
        for v in variables:
            if name == "sgd":
                self.slots.append(())
            elif name == "momentum":
                self.slots.append((tf.Variable(tf.zeros_like(v), trainable=False),))
            else:  # rmsprop, upstream's settings: decay 0.9, momentum, epsilon 1.0
                self.slots.append(
                    (tf.Variable(tf.ones_like(v), trainable=False), tf.Variable(tf.zeros_like(v), trainable=False))
                )

    def update(self, var: tf.Variable, grad: tf.Tensor, *slots: tf.Variable) -> Any:
        if self.name == "sgd":
            return var.assign_sub(self.lr * grad)
        if self.name == "momentum":
            (acc,) = slots
            new = acc.assign(self.momentum * acc + grad)
            return var.assign_sub(self.lr * new)
        ms, mom = slots
        new_ms = ms.assign(0.9 * ms + 0.1 * tf.square(grad))
        new_mom = mom.assign(self.momentum * mom + self.lr * grad / tf.sqrt(new_ms + 1.0))
        return var.assign_sub(new_mom)


# -- the run --------------------------------------------------------------------------------------------------------
class Benchmark(EngineRun):
    """One run of the engine. What it learns goes into ``facts`` as it goes, so a run that fails part-way still
    reports what was known by then (oneDNN, devices, batch) in its result. Kept between the batch sizes of
    --batch_sizes: the configured runtime (threads and devices are fixed once TensorFlow starts), and the inference
    network with its traced step."""

    framework = "tensorflow"
    upstream: UpstreamLog | None = None

    @staticmethod
    def framework_version() -> str:
        return tf.__version__

    def run(self) -> Measurement:
        """Set up, build, warm up and time the steps, printing upstream's log as it goes; raise BenchmarkError."""
        f = self.flags
        t0 = time.perf_counter()
        if "plan" in self.shared:
            plan = self.shared["plan"]
        else:
            configure_threads(f)
            try:
                devices = configure_devices(f)
                plan = build_plan(f, devices)
            except StrategyError as e:
                raise BenchmarkError(str(e)) from None
            except (RuntimeError, ValueError) as e:
                raise BenchmarkError(f"could not set up the devices: {e}") from None
            self.shared["plan"] = plan
        if f.device == "gpu":  # which physical cards the devices are (several logical ones may share one)
            self.facts.gpus = gpu_devices(f, list(plan.devices))
        self.facts.onednn = _onednn_enabled()
        check_data_format(f, "/device:CPU:0" if f.device == "cpu" else "/device:GPU:0")
        try:
            spec = models.get(f.model)
        except models.UnknownModelError as e:
            raise BenchmarkError(str(e)) from None
        batch = f.batch_size or spec.default_batch_size
        replicas = plan.num_replicas
        global_batch = batch * replicas
        num_batches = timed_steps(f, global_batch)
        setup = Setup(
            batch_size=batch,
            global_batch=global_batch,
            num_devices=len(plan.devices) if plan.num_workers == 1 else replicas,
            num_workers=plan.num_workers,
            num_batches=num_batches,
            devices=list(plan.devices),
            variables=plan.variables,
            all_reduce=plan.all_reduce,
        )
        self.facts.setup = setup
        upstream = self.upstream = UpstreamLog(global_batch, f.display_every, self.out)
        upstream.header(self._header(spec, setup))
        graph = spec.graph()  # declared once: the memory check and the network read the same nodes
        check_memory(graph, batch, replicas // plan.num_workers, training=not (f.forward_only or f.input_only))

        t_build = time.perf_counter()  # setup ends: devices, strategy, memory check, header
        step, inputs = self._build(spec, graph, plan, batch)
        self._keep = (step, inputs)  # outlives run(): an iterator's destructor waits for in-flight input work
        m = measure(
            lambda: self._run_step(step, inputs),
            global_batch=global_batch,
            num_batches=num_batches,
            started=t0,
            build_started=t_build,
            observer=upstream,
            after_first_step=cluster_ready,
            **timing_flags(f),
        )
        if f.data_dir:
            from tf_cnn_benchmarks import data as realdata

            self.facts.skipped_images = realdata.skipped_count()
            upstream.skipped(self.facts.skipped_images)
        upstream.total(m.samples)
        self.facts.measurement = m
        return m

    def _header(self, spec: models.ModelSpec, setup: Setup) -> Header:
        f = self.flags
        differs = {"mode": "input-only"} if f.input_only else {}
        return self.header(spec.name, setup, xla=f.xla_compile, eager=f.execution == "eager", **differs)

    # -- graph construction -------------------------------------------------------------------------------------
    def _build(self, spec: models.ModelSpec, graph: Graph, plan: Plan, batch: int) -> tuple[Callable[..., Any], tuple]:
        f = self.flags
        strategy = plan.strategy
        dtype = compute_dtype(f)
        if f.input_only:
            self.log("Generating input pipeline")
            return self._build_input_only(spec, plan, batch)
        self.log("Generating training model" if not f.forward_only else "Generating model")
        bn_ops, self.facts.batch_norm = batch_norm_kernel(f, graph, dtype)
        self.log(f"Batch norm: {self.facts.batch_norm['why']}")
        if "synthetic_step" in self.shared:  # a later batch size of --batch_sizes: the same network and step
            return self.shared["synthetic_step"], (self._synthetic_inputs(spec, plan, batch, dtype),)
        with strategy.scope():
            net = Network(graph, data_format=f.data_format, compute_dtype=dtype, seed=f.seed, batch_norm_ops=bn_ops)
            opt = None if f.forward_only else Optimizer(f.optimizer, f.learning_rate, f.momentum, net.trainable)
            if f.forward_only:
                net.freeze_for_inference()  # batch norms folded once, not in every timed step
        nchw = f.data_format == "NCHW"

        def loss_of(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
            ce = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
            return ce

        def forward_backward(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, list[tf.Tensor]]:
            with tf.GradientTape() as tape:
                loss = loss_of(net(images, training=True), labels)
                if f.weight_decay:
                    loss += f.weight_decay * tf.add_n([tf.nn.l2_loss(v) for v in net.decay_vars])
            return loss, tape.gradient(loss, net.trainable)

        def forward(images: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
            return loss_of(net(images, training=False), labels)

        if f.xla_compile:
            forward_backward = tf.function(forward_backward, jit_compile=True)
            forward = tf.function(forward, jit_compile=True)

        def traced(fn: Callable[..., Any]) -> Callable[..., Any]:
            """The step as one tf.function, or as it is with --execution=eager (TensorFlow ops one by one).

            Without autograph: the step has no data-dependent Python control flow to convert (its ``if`` and loops
            run on Python values while tracing), and converting it cost about a second of every run's build.
            """
            return fn if f.execution == "eager" else tf.function(fn, autograph=False)

        def apply(strat: tf.distribute.Strategy, grads: list) -> None:
            pairs = list(zip(grads, net.trainable, strict=True))
            if plan.aggregate:
                grads = strat.extended.batch_reduce_to(tf.distribute.ReduceOp.MEAN, pairs)
            for v, g, slots in zip(net.trainable, grads, opt.slots, strict=True):
                strat.extended.update(v, opt.update, args=(g, *slots), group=True)

        def replica_step(images: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
            if nchw and images.shape[-1] == 3:
                images = tf.transpose(images, [0, 3, 1, 2])
            if f.forward_only:
                return forward(images, labels)
            loss, grads = forward_backward(images, labels)
            tf.distribute.get_replica_context().merge_call(apply, args=(grads,))
            return loss

        if f.data_dir:
            iterator = iter(strategy.experimental_distribute_dataset(self._real_dataset(spec, plan, batch, dtype)))

            @traced
            def step(it: Any) -> tf.Tensor:
                images, labels = next(it)
                losses = strategy.run(replica_step, args=(images, labels))
                return strategy.reduce(tf.distribute.ReduceOp.MEAN, losses, axis=None)

            return step, (iterator,)

        inputs = self._synthetic_inputs(spec, plan, batch, dtype)

        @traced
        def synthetic_step(data: Any) -> tf.Tensor:
            losses = strategy.run(replica_step, args=data)
            return strategy.reduce(tf.distribute.ReduceOp.MEAN, losses, axis=None)

        if f.batch_sizes:
            self.shared["synthetic_step"] = synthetic_step
        return synthetic_step, (inputs,)

    def _synthetic_inputs(self, spec: models.ModelSpec, plan: Plan, batch: int, dtype: tf.DType) -> Any:
        """One random batch per device, made once and kept on the device (as upstream did), so the step measures
        the model and the variable updates, not an input pipeline. The global batch is drawn from the seed and each
        replica takes its slice, so N devices see exactly what 1 device sees at N x batch."""
        f, size = self.flags, spec.image_size
        shape = [batch, 3, size, size] if f.data_format == "NCHW" else [batch, size, size, 3]
        global_shape = [batch * plan.num_replicas, *shape[1:]]

        def make_inputs(ctx: tf.distribute.experimental.ValueContext) -> tuple[tf.Tensor, tf.Tensor]:
            i = ctx.replica_id_in_sync_group
            images = tf.random.stateless_truncated_normal(global_shape, seed=[f.seed, 1], dtype=tf.float32)
            labels = tf.random.stateless_uniform(
                [global_shape[0]], seed=[f.seed, 2], minval=1, maxval=1001, dtype=tf.int32
            )
            return tf.cast(images[i * batch : (i + 1) * batch], dtype), labels[i * batch : (i + 1) * batch]

        return plan.strategy.experimental_distribute_values_from_function(make_inputs)

    def _real_dataset(self, spec: models.ModelSpec, plan: Plan, batch: int, dtype: tf.DType) -> tf.data.Dataset:
        from tf_cnn_benchmarks import data as realdata

        f = self.flags
        try:
            return realdata.make_dataset(
                f.data_dir,
                f.data_subset,
                spec.image_size,
                batch * plan.num_replicas // plan.num_workers,
                distortions=f.distortions,
                num_private_threads=f.datasets_num_private_threads,
                prefetch=f.datasets_prefetch_buffer_size,
                label_offset=f.label_offset,
                seed=f.seed,
                dtype=dtype,
                num_shards=plan.num_workers,
                shard_index=f.task_index if plan.num_workers > 1 else 0,
            )
        except realdata.DataError as e:
            raise BenchmarkError(str(e)) from None

    def _build_input_only(self, spec: models.ModelSpec, plan: Plan, batch: int) -> tuple[Callable[..., Any], tuple]:
        if not self.flags.data_dir:
            raise BenchmarkError("--input_only times the real-data pipeline: give --data_dir=<folder of TFRecords>")
        ds = self._real_dataset(spec, plan, batch, compute_dtype(self.flags))
        iterator = iter(ds)

        def step(it: Any) -> None:
            images, _labels = next(it)
            images.numpy()  # the batch is materialised: decoded, cropped, resized
            return None

        return step, (iterator,)

    def _run_step(self, step: Callable[..., Any], inputs: tuple) -> float | None:
        try:
            loss = step(*inputs)
            return None if loss is None else float(loss)
        except tf.errors.ResourceExhaustedError:
            batch = self.facts.setup.batch_size if self.facts.setup else self.flags.batch_size
            raise BenchmarkError(
                f"out of memory: {self.flags.model} at batch {batch} per device does not fit; lower --batch_size"
            ) from None
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError, tf.errors.OutOfRangeError) as e:
            if not self.flags.data_dir:
                raise
            from tf_cnn_benchmarks import data as realdata

            raise BenchmarkError(str(realdata.diagnose_error(self.flags.data_dir, self.flags.data_subset, e))) from None


def _onednn_enabled() -> bool | None:
    """Whether oneDNN's CPU kernels are on.

    A TF_ENABLE_ONEDNN_OPTS that TensorFlow reads as a boolean decides (hostfacts.onednn_default reads it the same
    way); otherwise TensorFlow decides by CPU features, so it is asked. Builds without that private hook get the
    CPU-feature default TensorFlow documents, or None where that is unknown.
    """
    default = hostfacts.onednn_default(hostfacts.cpu_flags())
    if default["source"] == "env":
        return default["enabled"]
    try:
        from tensorflow.python.util import _pywrap_util_port as port

        return bool(port.IsMklEnabled())
    except Exception:  # noqa: BLE001 - private module; absent in some builds
        return default["enabled"]
