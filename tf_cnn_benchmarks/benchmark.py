"""One benchmark run: build the step, warm up, time, log in upstream's format, return the result record.

Flow: threads and devices are configured before TensorFlow starts its runtime; the model declaration becomes a
:class:`~tf_cnn_benchmarks.models.network.Network` inside the strategy's scope; the step is one ``tf.function``
(forward, backward, gradient aggregation, update) called once per batch; each step's wall time is taken around the
call and a fetch of its loss, so the clock stops only when the work is done.
"""

from __future__ import annotations

import math
import os
import re
import statistics
import sys
import time
from argparse import Namespace
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TextIO

import tensorflow as tf

import tf_cnn_benchmarks
from tf_cnn_benchmarks import flags as flagdefs
from tf_cnn_benchmarks import models
from tf_cnn_benchmarks.models.graph import Graph
from tf_cnn_benchmarks.models.network import Network
from tf_cnn_benchmarks.strategies import Plan, StrategyError, build_plan, cluster_ready, configure_devices

IMAGENET_EXAMPLES = {"train": 1281167, "validation": 50000}
DASHES = "-" * 64


class BenchmarkError(Exception):
    """A run that cannot proceed: the message is the one line the user sees (what went wrong and the fix)."""


# -- statistics of the progress lines -----------------------------------------------------------------------------
def rate_stats(rates: list[float]) -> tuple[float, float, float]:
    """Mean, standard error and jitter (1.4826 x median absolute deviation) of per-step images/sec."""
    mean = statistics.fmean(rates)
    stderr = statistics.stdev(rates) / math.sqrt(len(rates)) if len(rates) > 1 else 0.0
    med = statistics.median(rates)
    jitter = 1.4826 * statistics.median(abs(r - med) for r in rates)
    return mean, stderr, jitter


# -- set-up ---------------------------------------------------------------------------------------------------------
def configure_threads(flags: Namespace) -> dict[str, int]:
    """Thread pools must be sized before the runtime starts; record what the run will actually use."""
    if flags.num_intra_threads:
        tf.config.threading.set_intra_op_parallelism_threads(flags.num_intra_threads)
    if flags.num_inter_threads:
        tf.config.threading.set_inter_op_parallelism_threads(flags.num_inter_threads)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return {
        "intra": flags.num_intra_threads,
        "inter": flags.num_inter_threads,
        "intra_effective": flags.num_intra_threads or cores,
        "schedulable_cores": cores,
    }


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


def available_memory() -> int | None:
    """Bytes this process can still allocate: MemAvailable, capped by an address-space limit (``ulimit -v``)."""
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            with open("/proc/self/status") as fh:
                vm = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
            left = max(0, soft - vm)
            avail = left if avail is None else min(avail, left)
    except (OSError, ValueError, StopIteration):
        return avail
    return avail


def check_memory(g: Graph, batch: int, local_replicas: int, training: bool) -> None:
    """Refuse a run that cannot fit, before it starts.

    Why: with oneDNN's allocator an allocation failure can crash the process (SIGSEGV) instead of raising
    ResourceExhaustedError, so the clear "lower --batch_size" line would never be printed. The estimate is a lower
    bound from the model declaration: training keeps every layer's output for the backward pass; inference needs at
    least a layer's input and output at once; the variables (with gradients and a slot when training) come on top.
    """
    avail = available_memory()
    if avail is None:
        return
    outputs = [math.prod(n.shape) for n in g.nodes if n.op not in ("input", "flatten")]
    act = (sum(outputs) if training else 2 * max(outputs)) * batch * 4
    params = g.summary()["params"] * 4 * (3 if training else 1)
    need = (act + params) * local_replicas
    if need > avail:
        raise BenchmarkError(
            f"out of memory: {g.name} at batch {batch} per device needs at least {need / 2**30:.1f} GiB, "
            f"{avail / 2**30:.1f} GiB is available; lower --batch_size"
        )


def compute_dtype(flags: Namespace) -> tf.DType:
    return {"fp32": tf.float32, "bf16": tf.bfloat16, "fp16": tf.float16}[flags.precision]


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
class Benchmark:
    def __init__(self, flags: Namespace, out: TextIO = sys.stdout) -> None:
        self.flags = flags
        self.out = out
        self.result: dict[str, Any] = {
            "engine_version": tf_cnn_benchmarks.__version__,
            "status": "failed",
            "reason": None,
            "flags": flagdefs.as_dict(flags),
            "model": flags.model,
            "images_per_sec": None,
            "step_times": [],
            "warmup_times": [],
            "losses": [],
            "timings": {},
            "tf_version": tf.__version__,
            "python_version": sys.version.split()[0],
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def log(self, line: str = "") -> None:
        print(line, file=self.out, flush=True)

    def run(self) -> dict[str, Any]:
        f = self.flags
        t0 = time.perf_counter()
        self.result["threads"] = configure_threads(f)
        try:
            devices = configure_devices(f)
            plan = build_plan(f, devices)
        except StrategyError as e:
            raise BenchmarkError(str(e)) from None
        except (RuntimeError, ValueError) as e:
            raise BenchmarkError(f"could not set up the devices: {e}") from None
        self.result["onednn"] = _onednn_enabled()
        check_data_format(f, "/device:CPU:0" if f.device == "cpu" else "/device:GPU:0")
        try:
            spec = models.get(f.model)
        except models.UnknownModelError as e:
            raise BenchmarkError(str(e)) from None
        batch = f.batch_size or spec.default_batch_size
        replicas = plan.num_replicas
        global_batch = batch * replicas
        num_batches = f.num_batches
        if f.num_epochs > 0:
            num_batches = max(1, math.ceil(f.num_epochs * IMAGENET_EXAMPLES[f.data_subset] / global_batch))
        self.result.update(
            batch_size=batch,
            num_devices=len(plan.devices) if plan.num_workers == 1 else replicas,
            num_workers=plan.num_workers,
            global_batch_size=global_batch,
            devices=plan.devices,
            variables=plan.variables,
            all_reduce=plan.all_reduce,
        )
        self._header(f, spec, batch, global_batch, num_batches, plan)
        graph = spec.graph()  # declared once: the memory check and the network read the same nodes
        check_memory(graph, batch, replicas // plan.num_workers, training=not (f.forward_only or f.input_only))

        t_build = time.perf_counter()
        self.result["timings"]["setup"] = t_build - t0  # devices, strategy, memory check, header
        step, inputs = self._build(spec, graph, plan, batch)
        self._keep = (step, inputs)  # outlives run(): an iterator's destructor waits for in-flight input work
        self.result["timings"]["build"] = time.perf_counter() - t_build

        self.log("Running warm up")
        t_warm = time.perf_counter()
        for k in range(f.num_warmup_batches):
            s = time.perf_counter()
            self._run_step(step, inputs)
            self.result["warmup_times"].append(time.perf_counter() - s)
            if k == 0:
                # The first step traces, optimises and compiles the graph: that is build, not warm-up.
                self.result["timings"]["build"] = time.perf_counter() - t_build
                t_warm = time.perf_counter()
                cluster_ready()
        self.result["timings"]["warmup"] = time.perf_counter() - t_warm
        self.log("Done warm up")
        self.log("Step\tImg/sec\ttotal_loss")

        t_meas = time.perf_counter()
        rates: list[float] = []
        for i in range(1, num_batches + 1):
            s = time.perf_counter()
            loss = self._run_step(step, inputs)
            dt = time.perf_counter() - s
            self.result["step_times"].append(dt)
            rates.append(global_batch / dt)
            if i == 1 or i % f.display_every == 0:
                mean, stderr, jitter = rate_stats(rates)
                loss_txt = f"{loss:.3f}" if loss is not None else "0.000"
                self.log(f"{i}\timages/sec: {mean:.1f} +/- {stderr:.1f} (jitter = {jitter:.1f})\t{loss_txt}")
                self.result["losses"].append([i, loss])
        measured = time.perf_counter() - t_meas
        self.result["timings"]["measured"] = measured
        self.result["timings"]["total_in_engine"] = time.perf_counter() - t0
        ips = global_batch * num_batches / sum(self.result["step_times"])
        if f.data_dir:
            from tf_cnn_benchmarks import data as realdata

            skipped = realdata.skipped_count()
            self.result["skipped_images"] = skipped
            if skipped:
                self.log(f"skipped {skipped} undecodable images (counted, not trained on)")
        self.log(DASHES)
        self.log(f"total images/sec: {ips:.2f}")
        self.log(DASHES)
        self.result.update(status="ok", images_per_sec=ips, num_batches=num_batches)
        return self.result

    def _header(self, f: Namespace, spec: models.ModelSpec, batch: int, global_batch: int, num_batches: int,
                plan: Plan) -> None:
        examples = IMAGENET_EXAMPLES[f.data_subset]
        dataset = "imagenet" if f.data_dir else "imagenet (synthetic)"
        mode = "forward-only" if f.forward_only else "training"
        if f.input_only:
            mode = "input-only"
        self.log(f"TensorFlow:  {'.'.join(tf.__version__.split('.')[:2])}")
        self.log(f"Model:       {spec.name}")
        self.log(f"Dataset:     {dataset}")
        self.log(f"Mode:        {mode}")
        self.log("SingleSess:  False")
        self.log(f"Batch size:  {global_batch} global")
        self.log(f"             {batch} per device")
        self.log(f"Num batches: {num_batches}")
        self.log(f"Num epochs:  {num_batches * global_batch / examples:.2f}")
        self.log(f"Devices:     {plan.devices}")
        self.log("NUMA bind:   False")
        self.log(f"Data format: {f.data_format}")
        self.log(f"Optimizer:   {f.optimizer}")
        self.log(f"Variables:   {plan.variables}")
        if plan.all_reduce:
            self.log(f"AllReduce:   {plan.all_reduce}")
        if f.precision != "fp32":
            self.log(f"Precision:   {f.precision} compute, fp32 variables")
        if f.xla_compile:
            self.log("XLA:         True")
        if f.precision == "bf16" and f.device == "cpu" and not _native_bf16():
            self.log("Warning:     this CPU has no native bfloat16 (AVX512_BF16 or AMX): bf16 is emulated and can be "
                     "far slower than fp32, training above all")
        self.log("==========")

    # -- graph construction -------------------------------------------------------------------------------------
    def _build(
        self, spec: models.ModelSpec, graph: Graph, plan: Plan, batch: int
    ) -> tuple[Callable[..., Any], tuple]:
        f = self.flags
        strategy = plan.strategy
        dtype = compute_dtype(f)
        size = spec.image_size
        if f.input_only:
            self.log("Generating input pipeline")
            return self._build_input_only(spec, plan, batch)
        self.log("Generating training model" if not f.forward_only else "Generating model")
        with strategy.scope():
            net = Network(graph, data_format=f.data_format, compute_dtype=dtype, seed=f.seed)
            opt = None if f.forward_only else Optimizer(f.optimizer, f.learning_rate, f.momentum, net.trainable)
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

            @tf.function
            def step(it: Any) -> tf.Tensor:
                images, labels = next(it)
                losses = strategy.run(replica_step, args=(images, labels))
                return strategy.reduce(tf.distribute.ReduceOp.MEAN, losses, axis=None)

            return step, (iterator,)

        # Synthetic data: one random batch per device, made once and kept on the device (as upstream did), so
        # the step measures the model and the variable updates, not an input pipeline. The global batch is drawn
        # from the seed and each replica takes its slice, so N devices see exactly what 1 device sees at N x batch.
        shape = [batch, 3, size, size] if nchw else [batch, size, size, 3]
        global_shape = [batch * plan.num_replicas, *shape[1:]]

        def make_inputs(ctx: tf.distribute.experimental.ValueContext) -> tuple[tf.Tensor, tf.Tensor]:
            i = ctx.replica_id_in_sync_group
            images = tf.random.stateless_truncated_normal(global_shape, seed=[f.seed, 1], dtype=tf.float32)
            labels = tf.random.stateless_uniform(
                [global_shape[0]], seed=[f.seed, 2], minval=1, maxval=1001, dtype=tf.int32
            )
            return tf.cast(images[i * batch : (i + 1) * batch], dtype), labels[i * batch : (i + 1) * batch]

        inputs = strategy.experimental_distribute_values_from_function(make_inputs)

        @tf.function
        def synthetic_step(data: Any) -> tf.Tensor:
            losses = strategy.run(replica_step, args=data)
            return strategy.reduce(tf.distribute.ReduceOp.MEAN, losses, axis=None)

        return synthetic_step, (inputs,)

    def _real_dataset(self, spec: models.ModelSpec, plan: Plan, batch: int, dtype: tf.DType) -> tf.data.Dataset:
        from tf_cnn_benchmarks import data as realdata

        f = self.flags
        try:
            return realdata.make_dataset(
                f.data_dir, f.data_subset, spec.image_size, batch * plan.num_replicas // plan.num_workers,
                distortions=f.distortions, num_private_threads=f.datasets_num_private_threads,
                prefetch=f.datasets_prefetch_buffer_size, label_offset=f.label_offset, seed=f.seed, dtype=dtype,
                num_shards=plan.num_workers, shard_index=f.task_index if plan.num_workers > 1 else 0,
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
            raise BenchmarkError(
                f"out of memory: {self.flags.model} at batch {self.result['batch_size']} per device does not fit; "
                "lower --batch_size"
            ) from None
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError, tf.errors.OutOfRangeError) as e:
            if not self.flags.data_dir:
                raise
            from tf_cnn_benchmarks import data as realdata

            diagnose = getattr(realdata, "diagnose_error", None)
            if diagnose is not None:
                raise BenchmarkError(str(diagnose(self.flags.data_dir, self.flags.data_subset, e))) from None
            first = str(e).strip().splitlines()[0][:200]
            raise BenchmarkError(f"reading {self.flags.data_dir} failed: {first}") from None


def _onednn_enabled() -> bool | None:
    """Whether oneDNN's CPU kernels are on: TF_ENABLE_ONEDNN_OPTS wins; else TensorFlow decides by CPU features."""
    env = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    if env is not None:
        return env.strip().lower() in ("1", "true")
    try:
        from tensorflow.python.util import _pywrap_util_port as port

        return bool(port.IsMklEnabled())
    except Exception:  # noqa: BLE001 - private module; absent in some builds
        return None


def _native_bf16() -> bool:
    """Whether the CPU computes bfloat16 natively (Linux /proc/cpuinfo flags); unknown counts as native."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), None)
    except OSError:
        return True
    return flags is None or bool({"avx512_bf16", "amx_bf16"} & set(flags))
