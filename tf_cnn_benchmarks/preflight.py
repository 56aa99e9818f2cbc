"""What every engine checks before it builds a network, whichever framework runs it.

Why a module of its own: the TensorFlow engine (:mod:`tf_cnn_benchmarks.benchmark`) and the PyTorch engine
(:mod:`tf_cnn_benchmarks.torchbench`) must refuse the same bad runs with the same one line, and neither may import
the other's framework to do so. Nothing here imports a framework.
"""

from __future__ import annotations

import math
import os
import time
from argparse import Namespace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tf_cnn_benchmarks import hostfacts
from tf_cnn_benchmarks.models.graph import Graph
from tf_cnn_benchmarks.upstreamlog import Header

if TYPE_CHECKING:
    from tf_cnn_benchmarks.result import RunFacts, Setup

IMAGENET_EXAMPLES = {"train": 1281167, "validation": 50000}


class BenchmarkError(Exception):
    """A run that cannot proceed: the message is the one line the user sees (what went wrong and the fix)."""


class EngineRun:
    """What both engines' runs share: the flags, the facts they fill in as they go (so a run that fails part-way
    still reports what was known by then), the log stream, and the state kept between the batch sizes of
    ``--batch_sizes`` in one process (the configured runtime, the network and its step)."""

    framework = ""

    def __init__(
        self, flags: Namespace, facts: RunFacts, out: TextIO | None = None, shared: dict[str, Any] | None = None
    ) -> None:
        self.flags = flags
        self.facts = facts
        self.out = out
        self.shared = shared if shared is not None else {}
        facts.framework = self.framework
        facts.framework_version = self.framework_version()

    @staticmethod
    def framework_version() -> str:
        raise NotImplementedError

    def log(self, line: str = "") -> None:
        print(line, file=self.out, flush=True)

    def header(self, model: str, setup: Setup, **differs: Any) -> Header:
        """The upstream log's header of this run: what both engines say alike, and what ``differs``."""
        f = self.flags
        fields: dict[str, Any] = {
            "tf_version": self.framework_version(),
            "model": model,
            "dataset": "imagenet" if f.data_dir else "imagenet (synthetic)",
            "mode": "forward-only" if f.forward_only else "training",
            "global_batch": setup.global_batch,
            "batch": setup.batch_size,
            "num_batches": setup.num_batches,
            "num_epochs": setup.num_batches * setup.global_batch / IMAGENET_EXAMPLES[f.data_subset],
            "devices": setup.devices,
            "data_format": f.data_format,
            "optimizer": f.optimizer,
            "variables": setup.variables,
            "all_reduce": setup.all_reduce,
            "precision": f.precision,
            "numa_bind": hostfacts.memory_policy()["mode"] == "bind",
            "bf16_emulated": f.precision == "bf16" and f.device == "cpu" and not hostfacts.native_bf16(),
        }
        return Header(**{**fields, **differs})


def timed_steps(flags: Namespace, global_batch: int) -> int:
    """The timed steps: ``--num_batches``, or enough for ``--num_epochs`` of the data subset at this global batch."""
    if flags.num_epochs > 0:
        return max(1, math.ceil(flags.num_epochs * IMAGENET_EXAMPLES[flags.data_subset] / global_batch))
    return int(flags.num_batches)


def timing_flags(flags: Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`tf_cnn_benchmarks.timing.measure` that come from the flags alone, so both
    engines time their steps the same way (warm-up, windows, display)."""
    return {
        "num_warmup": flags.num_warmup_batches,
        "display_every": flags.display_every,
        "max_warmup": flags.max_warmup_batches,
        "num_windows": flags.num_windows,
        "min_window_seconds": flags.min_window_seconds,
        "barrier": (lambda: barrier_wait(flags.barrier, flags.barrier_timeout)) if flags.barrier else None,
    }


BARRIER_GO = "go"  # written (renamed into place) by the starter: the wall-clock time (epoch s) the windows end
BARRIER_ABORT = "abort"  # written by the starter when an instance ended before all were ready: why


def barrier_wait(folder: str, timeout: float, poll: float = 0.001) -> float:
    """Say ready in ``folder`` (``ready.<pid>``) and wait for the starter's go; return the end time it sets.

    Why a barrier: concurrent instances that start timing one after another (Packrat's loop) measure windows that
    only partly overlap, so each is partly measured alone. Each instance loads and warms up, then waits here; the
    starter writes ``go`` once every instance is ready, and all time their steps from then until the end time it
    wrote. An ``abort`` file (an instance died first) or the timeout end the run with the reason."""
    d = Path(folder)
    try:
        (d / f"ready.{os.getpid()}").write_text("")
    except OSError as e:
        raise BenchmarkError(f"--barrier={folder}: cannot say ready there ({e.strerror})") from None
    deadline = time.monotonic() + timeout
    while True:
        try:
            return float((d / BARRIER_GO).read_text().strip())
        except (FileNotFoundError, ValueError):
            pass
        if (d / BARRIER_ABORT).exists():
            why = (d / BARRIER_ABORT).read_text().strip() or "the starter gave up"
            raise BenchmarkError(f"barrier: {why}")
        if time.monotonic() > deadline:
            raise BenchmarkError(f"barrier: the other instances were not ready within {timeout:g} s")
        time.sleep(poll)


def check_memory(g: Graph, batch: int, local_replicas: int, training: bool) -> None:
    """Refuse a run that cannot fit, before it starts.

    Why: with oneDNN's allocator an allocation failure can crash the process (SIGSEGV) instead of raising an
    out-of-memory error, so the clear "lower --batch_size" line would never be printed. The estimate is a lower
    bound from the model declaration: training keeps every layer's output for the backward pass; inference needs at
    least a layer's input and output at once; the variables (with gradients and a slot when training) come on top.
    """
    avail = hostfacts.available_memory()
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
