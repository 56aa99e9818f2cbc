"""One benchmark run in PyTorch: the same flags, log and result record as the TensorFlow engine.

Why in this package: a comparison of frameworks is only about the framework when everything else is the same, so
this engine runs the same model declarations (:class:`~tf_cnn_benchmarks.models.torchnet.TorchNetwork` walks the
nodes :class:`~tf_cnn_benchmarks.models.network.Network` walks), is timed by the same loop
(:func:`~tf_cnn_benchmarks.timing.measure`), prints the same upstream log and fills the same
:class:`~tf_cnn_benchmarks.result.RunFacts`. It never imports TensorFlow.

How the step runs on CPU: channels_last memory format for ``--data_format=NHWC`` (contiguous NCHW for NCHW),
oneDNN on unless ``--mkl=false``, the intra-op and inter-op pools from the thread flags, ``torch.inference_mode``
for inference and CPU autocast for bf16/fp16. ``--execution``: ``eager`` calls the module; ``script`` traces it with
``torch.jit.trace`` (for inference also frozen and passed through ``optimize_for_inference``, which folds batch
norms into convolutions as the TensorFlow engine's inference does); ``compile`` wraps it in ``torch.compile``
(inductor), whose compilation happens in the first warm-up step; its caches go to the run's private temporary folder.
"""

from __future__ import annotations

import os
import shutil
import time
from argparse import Namespace
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F

from tf_cnn_benchmarks import flags as flagdefs
from tf_cnn_benchmarks import hostfacts, models
from tf_cnn_benchmarks.hostfacts import first_line
from tf_cnn_benchmarks.models.graph import Graph
from tf_cnn_benchmarks.models.torchnet import TorchNetwork
from tf_cnn_benchmarks.preflight import (
    BenchmarkError,
    EngineRun,
    check_memory,
    timed_steps,
    timing_flags,
)
from tf_cnn_benchmarks.result import Setup
from tf_cnn_benchmarks.timing import Measurement, measure
from tf_cnn_benchmarks.upstreamlog import UpstreamLog

FRAMEWORK = "pytorch"
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def unsupported(flags: Namespace) -> str | None:
    """Why this engine cannot run these flags (one line with the fix), or None. Checked before anything is built;
    the flags' own check (:func:`tf_cnn_benchmarks.flags.pytorch_problem`, run before torch is imported) is the one
    list of what it cannot run."""
    return flagdefs.pytorch_problem(flags)


class Optimizer:
    """The TensorFlow engine's three optimizers with the same update rules, so a learning rate means the same.

    SGD and momentum are ``torch.optim.SGD`` (its momentum rule, ``acc = m * acc + g; w -= lr * acc``, is the
    TensorFlow engine's). RMSProp is written out: torch's adds epsilon outside the square root and starts the mean
    square at 0, where the TensorFlow engine (as upstream) uses ``sqrt(ms + 1.0)`` and starts it at 1. Weight decay
    is the TensorFlow engine's ``weight_decay * sum(l2_loss(kernel))`` on the kernels only, whose gradient is
    ``weight_decay * w``.
    """

    def __init__(self, flags: Namespace, decay: list[torch.nn.Parameter], other: list[torch.nn.Parameter]) -> None:
        self.name, self.lr, self.momentum, self.wd = flags.optimizer, flags.learning_rate, flags.momentum, 0.0
        self.params = decay + other
        self._decay = {id(p) for p in decay}
        groups = [{"params": decay, "weight_decay": flags.weight_decay}, {"params": other, "weight_decay": 0.0}]
        if self.name in ("sgd", "momentum"):
            m = flags.momentum if self.name == "momentum" else 0.0
            self.torch_opt: torch.optim.Optimizer | None = torch.optim.SGD(groups, lr=flags.learning_rate, momentum=m)
        else:
            self.torch_opt = None
            self.wd = flags.weight_decay
            self.ms = [torch.ones_like(p) for p in self.params]
            self.mom = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        if self.torch_opt is not None:
            self.torch_opt.step()
            return
        for p, ms, mom in zip(self.params, self.ms, self.mom, strict=True):
            g = p.grad
            if g is None:
                continue
            if self.wd and id(p) in self._decay:
                g = g + self.wd * p
            ms.mul_(0.9).addcmul_(g, g, value=0.1)
            mom.mul_(self.momentum).add_(self.lr * g / torch.sqrt(ms + 1.0))
            p.sub_(mom)


class TorchBenchmark(EngineRun):
    """One run of the PyTorch engine; the same life cycle as :class:`tf_cnn_benchmarks.benchmark.Benchmark`. Kept
    between the batch sizes of --batch_sizes: the pools (sized once per process) and the network (built once; each
    batch size gets its own trace in script mode)."""

    framework = FRAMEWORK

    @staticmethod
    def framework_version() -> str:
        return torch.__version__

    def run(self) -> Measurement:
        f = self.flags
        t0 = time.perf_counter()
        why = unsupported(f)
        if why:
            raise BenchmarkError(why)
        if "configured" not in self.shared:
            self._configure()
            self.shared["configured"] = True
        self.facts.onednn = bool(torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled)
        self.facts.threads_effective = {
            "intra_effective": torch.get_num_threads(),
            "inter_effective": torch.get_num_interop_threads(),
        }
        try:
            spec = models.get(f.model)
        except models.UnknownModelError as e:
            raise BenchmarkError(str(e)) from None
        batch = f.batch_size or spec.default_batch_size
        num_batches = timed_steps(f, batch)
        setup = Setup(
            batch_size=batch,
            global_batch=batch,
            num_devices=1,
            num_workers=1,
            num_batches=num_batches,
            devices=["/cpu:0"],
            variables=f.variable_update,
            all_reduce=None,
        )
        self.facts.setup = setup
        upstream = UpstreamLog(batch, f.display_every, self.out)
        upstream.header(self.header(spec.name, setup, framework="PyTorch", execution=f.execution))
        graph = self.shared.get("graph") or spec.graph()
        training = not f.forward_only
        check_memory(graph, batch, 1, training=training)
        t_build = time.perf_counter()
        step = self._build(spec, graph, batch, training)
        m = measure(
            step, global_batch=batch, num_batches=num_batches, started=t0, build_started=t_build, observer=upstream,
            **timing_flags(f),
        )  # fmt: skip
        upstream.total(m.samples)
        self.facts.measurement = m
        return m

    def _configure(self) -> None:
        """Pool sizes and kernels, before any parallel work (torch fixes the inter-op pool at its first use)."""
        f = self.flags
        cores = len(hostfacts.schedulable_cpus())
        torch.set_num_threads(f.num_intra_threads or cores)
        try:
            torch.set_num_interop_threads(f.num_inter_threads or cores)
        except RuntimeError as e:  # only when something already started the pool: say so rather than run unsized
            raise BenchmarkError(f"--num_inter_threads: {first_line(e)}") from None
        torch.backends.mkldnn.enabled = bool(f.mkl)
        torch.manual_seed(f.seed)

    # -- the step -----------------------------------------------------------------------------------------------
    def _inputs(self, spec: models.ModelSpec, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One random batch made once (as the TensorFlow engine's synthetic data), in the run's memory format."""
        f, size = self.flags, spec.image_size
        gen = torch.Generator().manual_seed(f.seed)
        images = torch.empty(batch, 3, size, size)
        torch.nn.init.trunc_normal_(images, std=1.0, a=-2.0, b=2.0, generator=gen)
        labels = torch.randint(1, 1001, (batch,), generator=gen)
        return images.contiguous(memory_format=self._memory_format()), labels

    def _memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.flags.data_format == "NHWC" else torch.contiguous_format

    def _network(self, graph: Graph) -> TorchNetwork:
        if "net" not in self.shared:
            self.log("Generating model" if self.flags.forward_only else "Generating training model")
            net = TorchNetwork(graph, seed=self.flags.seed).to(memory_format=self._memory_format())
            self.shared["net"], self.shared["graph"] = net, graph
        return self.shared["net"]

    def _autocast(self) -> Any:
        dtype = _DTYPES.get(self.flags.precision)
        if dtype is None:
            return torch.autocast("cpu", enabled=False)
        return torch.autocast("cpu", dtype=dtype)

    def _build(self, spec: models.ModelSpec, graph: Graph, batch: int, training: bool) -> Callable[[], float]:
        f = self.flags
        net = self._network(graph)
        images, labels = self._inputs(spec, batch)
        net.train(training)
        model = self._executable(net, images, training)
        if not training:

            def infer() -> float:
                with torch.inference_mode(), self._autocast():
                    logits = model(images)
                return float(F.cross_entropy(logits.float(), labels))

            return self._guarded(infer)
        if "optimizer" not in self.shared:
            self.shared["optimizer"] = Optimizer(f, list(net.decay_parameters()), list(net.other_parameters()))
        opt: Optimizer = self.shared["optimizer"]

        def train() -> float:
            opt.zero_grad()
            with self._autocast():
                logits = model(images)
            loss = F.cross_entropy(logits.float(), labels)
            loss.backward()
            opt.step()
            return float(loss.detach())

        return self._guarded(train)

    def _executable(self, net: TorchNetwork, example: torch.Tensor, training: bool) -> Callable[..., torch.Tensor]:
        mode = self.flags.execution
        if mode == "eager":
            return net
        if mode == "script":
            try:
                if training:
                    with self._autocast():
                        return torch.jit.trace(net, example, check_trace=False)
                with torch.no_grad(), self._autocast():
                    traced = torch.jit.trace(net.eval(), example, check_trace=False)
                    return torch.jit.optimize_for_inference(torch.jit.freeze(traced))
            except Exception as e:  # noqa: BLE001 - a model TorchScript cannot take is a failed run with its reason
                raise BenchmarkError(f"--execution=script: torch.jit could not trace {net.graph.name}: "
                                     f"{first_line(e)}; use --execution=eager") from None  # fmt: skip
        compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
        if not compiler:
            raise BenchmarkError(
                "--execution=compile: torch.compile (inductor) needs a C++ compiler and none was found (c++ or g++ "
                "on PATH, or $CXX); install one, or use --execution=script"
            )
        # Inductor's caches and precompiled headers go to TORCHINDUCTOR_CACHE_DIR and the temporary folder, which the
        # engine's entry point makes per process and removes at the end of the run.
        return torch.compile(net)

    def _guarded(self, step: Callable[[], float]) -> Callable[[], float]:
        """The step, with the errors a run can meet turned into its one line."""
        f = self.flags

        def run() -> float:
            try:
                return step()
            except torch.OutOfMemoryError:
                raise BenchmarkError(
                    f"out of memory: {f.model} at batch {self.facts.setup.batch_size} does not fit; lower --batch_size"
                ) from None
            except Exception as e:
                if f.execution == "compile" and _from_compiler(e):
                    raise BenchmarkError(
                        f"--execution=compile: torch.compile failed: {first_line(e)}; use --execution=script"
                    ) from None
                raise

        return run


def _from_compiler(e: BaseException) -> bool:
    """Whether an error came out of torch.compile (dynamo, inductor or the C++ build it runs)."""
    names: Iterable[str] = (type(x).__module__ for x in _chain(e))
    return any(n.startswith(("torch._dynamo", "torch._inductor")) for n in names)


def _chain(e: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = e
    while cur is not None and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out
