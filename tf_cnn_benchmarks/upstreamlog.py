"""Upstream tf_cnn_benchmarks' stdout, line for line: the header block, the warm-up lines, the progress lines and the
total, printed from what the timing loop measures.

Why its own class: the log is a view of the measurement, not part of it. Old scripts ``grep "total images/sec"`` and
``cpubench.results.logparse`` reads these lines back (years of upstream logs as well as ours), so the text must not
drift; keeping every line here, apart from the timing loop, is what lets a test check the format with fake steps and
no TensorFlow. :class:`UpstreamLog` is a :class:`~tf_cnn_benchmarks.timing.StepObserver`, so the progress stays live.
"""

from __future__ import annotations

import math
import statistics
import sys
from dataclasses import dataclass
from typing import TextIO

from tf_cnn_benchmarks.record import Samples
from tf_cnn_benchmarks.timing import is_display_step

DASHES = "-" * 64


def rate_stats(rates: list[float]) -> tuple[float, float, float]:
    """Mean, standard error and jitter (1.4826 x median absolute deviation) of per-step images/sec."""
    mean = statistics.fmean(rates)
    stderr = statistics.stdev(rates) / math.sqrt(len(rates)) if len(rates) > 1 else 0.0
    med = statistics.median(rates)
    jitter = 1.4826 * statistics.median(abs(r - med) for r in rates)
    return mean, stderr, jitter


@dataclass(frozen=True)
class Header:
    """What the header block says about the run."""

    tf_version: str  # the framework's full version; the header shows major.minor, as upstream did
    model: str
    dataset: str  # "imagenet" or "imagenet (synthetic)"
    mode: str  # "training", "forward-only" or "input-only"
    global_batch: int
    batch: int  # per device
    num_batches: int
    num_epochs: float
    devices: list[str]
    data_format: str
    optimizer: str
    variables: str
    all_reduce: str | None = None
    precision: str = "fp32"
    xla: bool = False
    eager: bool = False  # --execution=eager
    numa_bind: bool = False  # the process's memory is bound to NUMA nodes (it reads its own policy)
    bf16_emulated: bool = False  # bf16 asked on a CPU without native bfloat16: warn
    framework: str = "TensorFlow"  # the first line's name: "TensorFlow" as upstream, or "PyTorch"
    execution: str = ""  # shown for every PyTorch run (its modes have no upstream line); TensorFlow: see eager

    def lines(self) -> list[str]:
        out = [
            f"{self.framework + ':':<12} {'.'.join(self.tf_version.split('.')[:2])}",
            f"Model:       {self.model}",
            f"Dataset:     {self.dataset}",
            f"Mode:        {self.mode}",
            "SingleSess:  False",
            f"Batch size:  {self.global_batch} global",
            f"             {self.batch} per device",
            f"Num batches: {self.num_batches}",
            f"Num epochs:  {self.num_epochs:.2f}",
            f"Devices:     {self.devices}",
            f"NUMA bind:   {self.numa_bind}",
            f"Data format: {self.data_format}",
            f"Optimizer:   {self.optimizer}",
            f"Variables:   {self.variables}",
        ]
        if self.all_reduce:
            out.append(f"AllReduce:   {self.all_reduce}")
        if self.precision != "fp32":
            out.append(f"Precision:   {self.precision} compute, fp32 variables")
        if self.xla:
            out.append("XLA:         True")
        if self.execution and self.framework != "TensorFlow":
            out.append(f"Execution:   {self.execution}")
        elif self.eager:
            out.append("Execution:   eager")
        if self.bf16_emulated:
            out.append(
                "Warning:     this CPU has no native bfloat16 (AVX512_BF16 or AMX): bf16 is emulated and can be "
                "far slower than fp32, training above all"
            )
        out.append("==========")
        return out


class UpstreamLog:
    """Prints upstream's log to ``out`` (stdout by default), each line flushed as it is made."""

    def __init__(self, global_batch: int, display_every: int, out: TextIO | None = None) -> None:
        self.global_batch = global_batch
        self.display_every = display_every
        self.out = out
        self.rates: list[float] = []  # images/sec of each timed step so far

    def line(self, text: str = "") -> None:
        print(text, file=self.out or sys.stdout, flush=True)

    def header(self, header: Header) -> None:
        for text in header.lines():
            self.line(text)

    # -- StepObserver
    def on_warmup(self) -> None:
        self.line("Running warm up")

    def on_timed(self) -> None:
        self.line("Done warm up")
        self.line("Step\tImg/sec\ttotal_loss")

    def on_step(self, i: int, seconds: float, loss: float | None) -> None:
        self.rates.append(self.global_batch / seconds if seconds > 0 else math.inf)
        if is_display_step(i, self.display_every):
            mean, stderr, jitter = rate_stats(self.rates)
            loss_txt = f"{loss:.3f}" if loss is not None else "0.000"
            self.line(f"{i}\timages/sec: {mean:.1f} +/- {stderr:.1f} (jitter = {jitter:.1f})\t{loss_txt}")

    # -- the end
    def skipped(self, count: int) -> None:
        """Real data: images the pipeline could not decode (only printed when there were some)."""
        if count:
            self.line(f"skipped {count} undecodable images (counted, not trained on)")

    def total(self, samples: Samples) -> None:
        ips = samples.images_per_sec
        self.line(DASHES)
        self.line(f"total images/sec: {math.nan if ips is None else ips:.2f}")
        self.line(DASHES)
