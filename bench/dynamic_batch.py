"""Does one traced inference function with a dynamic batch dimension run as fast as one trace per batch size?

Why it matters: a scaling study measures many batch sizes per (threads, execution, placement) point. TensorFlow
fixes its thread pools per process, so all batch sizes of a point could share one process, and then either one
``tf.function`` traced with ``input_signature=[None, H, W, 3]`` serves every batch size (one trace, shapes unknown
to the graph optimiser) or each batch size gets its own trace (static shapes, one trace each). This benchmark times
both in one process, interleaved batch by batch and repeat by repeat, and prints the median step time of each with
its spread and their ratio.

    .venv/bin/python bench/dynamic_batch.py [--model resnet50] [--batches 1,2,4,8] [--steps 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as the engine runs by default
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from tf_cnn_benchmarks import models  # noqa: E402
from tf_cnn_benchmarks.models.network import Network  # noqa: E402
from tf_cnn_benchmarks.record import Spread  # noqa: E402


def step_ms(fn: tf.types.experimental.GenericFunction, x: tf.Tensor, steps: int) -> float:
    """Median milliseconds of ``steps`` calls (after two untimed ones), the output fetched each time."""
    for _ in range(2):
        fn(x).numpy()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn(x).numpy()
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet50")
    p.add_argument("--batches", default="1,2,4,8")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    batches = [int(b) for b in a.batches.split(",")]
    spec = models.get(a.model)
    size = spec.image_size
    net = Network(spec.graph(), data_format="NHWC", compute_dtype=tf.float32, seed=1)

    def forward(x: tf.Tensor) -> tf.Tensor:
        return net(x, training=False)

    per_batch = {b: tf.function(forward) for b in batches}  # each traced at its own static shape
    dynamic = tf.function(forward, input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
    inputs = {b: tf.random.stateless_normal([b, size, size, 3], seed=[1, b]) for b in batches}
    fixed: dict[int, list[float]] = {b: [] for b in batches}
    dyn: dict[int, list[float]] = {b: [] for b in batches}
    ratios: dict[int, list[float]] = {b: [] for b in batches}
    load = [os.getloadavg()[0]]
    for r in range(a.repeats):
        for b in batches:
            order = [("fixed", per_batch[b]), ("dynamic", dynamic)]
            if r % 2:
                order.reverse()  # alternate which goes first, so drift does not favour one
            got = {name: step_ms(fn, inputs[b], a.steps) for name, fn in order}
            fixed[b].append(got["fixed"])
            dyn[b].append(got["dynamic"])
            ratios[b].append(got["dynamic"] / got["fixed"])
        load.append(os.getloadavg()[0])
    print(f"{a.model} inference, {a.steps} steps x {a.repeats} repeats per batch, median [min-max] ms per step; "
          f"threads: TensorFlow's default; 1-min load {min(load):.2f}-{max(load):.2f}")  # fmt: skip
    print("| batch | one trace per batch (ms) | one dynamic trace (ms) | dynamic / per-batch |")
    print("|---:|---:|---:|---:|")
    for b in batches:
        f, d, q = Spread.of(fixed[b]), Spread.of(dyn[b]), Spread.of(ratios[b])
        assert f is not None and d is not None and q is not None
        print(f"| {b} | {f.text()} | {d.text()} | {q.text(fmt='.3f')} |")
    every = Spread.of(x for b in batches for x in ratios[b])
    assert every is not None
    print(f"\nall batches: dynamic / per-batch step time {every.text(fmt='.3f')} (median of per-repeat paired ratios)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
