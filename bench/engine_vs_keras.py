"""Our resnet50 against Keras 3's ``keras.applications.ResNet50(weights=None)``, side by side, same threads and batch.

Prints images/sec for inference and training of both, their ratio, the achieved GFLOP/s next to a 4096x4096 fp32
matmul rate measured in the same run, and (``--precision``) bf16 against fp32 for our engine. Every measurement is a
fresh process, run one at a time, interleaved across repeats so drift in the machine's load hits all alike; the
figures are medians with their min-max spread, and the load average is printed with each.

    .venv/bin/python bench/engine_vs_keras.py [--batch 32] [--repeats 3] [--steps 10] [--threads 0] [--quick]

Both sides run with oneDNN on (the engine's default); ``BENCH_ONEDNN=0`` runs both with it off.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the engine's package, also from a checkout that is not installed

import _engine  # noqa: E402

from tf_cnn_benchmarks.record import Spread  # noqa: E402


def _worker(kind: str, batch: int, steps: int, warmup: int, threads: int) -> None:
    """Run one Keras or matmul measurement in this (fresh) process and print its figure as JSON."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # The same kernels as our engine, which turns oneDNN on by default: compare models, not kernel libraries.
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = os.environ.get("BENCH_ONEDNN", "1")
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    if kind == "matmul":
        n = 4096
        a = tf.random.normal([n, n])
        b = tf.random.normal([n, n])
        mm = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
        mm().numpy()
        times = []
        for _ in range(max(3, steps // 2)):
            t = time.perf_counter()
            mm().numpy()
            times.append(time.perf_counter() - t)
        print(json.dumps({"gflops": 2 * n**3 / statistics.median(times) / 1e9}))
        return
    import keras

    model = keras.applications.ResNet50(weights=None)
    x = tf.random.normal([batch, 224, 224, 3])
    y = tf.random.uniform([batch], 0, 1000, dtype=tf.int32)
    if kind == "keras-infer":
        fn = tf.function(lambda: model(x, training=False))
    else:
        opt = keras.optimizers.SGD(0.005)
        loss_fn = keras.losses.SparseCategoricalCrossentropy()

        @tf.function
        def fn() -> tf.Tensor:
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return loss

    for _ in range(warmup):
        tf.nest.map_structure(lambda t: t.numpy(), fn())
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), fn())
        times.append(time.perf_counter() - t)
    print(json.dumps({"images_per_sec": batch * steps / sum(times)}))


def _run(cmd: list[str]) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _ours(forward_only: bool, batch: int, steps: int, warmup: int, threads: int, precision: str = "fp32") -> float:
    flags = [
        "--model=resnet50",
        f"--batch_size={batch}",
        f"--num_batches={steps}",
        f"--num_warmup_batches={warmup}",
        f"--forward_only={forward_only}",
        f"--num_intra_threads={threads}",
        f"--precision={precision}",
        f"--mkl={os.environ.get('BENCH_ONEDNN', '1') == '1'}",
    ]
    return _engine.run_engine(flags).images_per_sec or 0.0


def _keras(kind: str, batch: int, steps: int, warmup: int, threads: int) -> float:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        kind,
        f"--batch={batch}",
        f"--steps={steps}",
        f"--warmup={warmup}",
        f"--threads={threads}",
    ]
    return float(_run(cmd)["images_per_sec"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--precision", action="store_true", help="also run our engine in bf16 against fp32")
    p.add_argument("--quick", action="store_true", help="batch 4, 2 steps, 1 repeat: checks the script runs")
    p.add_argument("--worker", default="", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        _worker(a.worker, a.batch, a.steps, a.warmup, a.threads)
        return 0
    if a.quick:
        a.batch, a.steps, a.warmup, a.repeats = 4, 2, 1, 1
    from tf_cnn_benchmarks import models

    macs = models.get("resnet50").graph().summary()["macs"]
    figures: dict[str, list[float]] = {}
    loads: list[float] = []
    plan = [
        (
            "matmul GFLOP/s",
            lambda: _run(
                [sys.executable, __file__, "--worker", "matmul", f"--steps={a.steps}", f"--threads={a.threads}"]
            )["gflops"],
        ),
        ("ours inference", lambda: _ours(True, a.batch, a.steps, a.warmup, a.threads)),
        ("keras inference", lambda: _keras("keras-infer", a.batch, a.steps, a.warmup, a.threads)),
        ("ours training", lambda: _ours(False, a.batch, a.steps, a.warmup, a.threads)),
        ("keras training", lambda: _keras("keras-train", a.batch, a.steps, a.warmup, a.threads)),
    ]
    if a.precision:
        plan += [
            ("ours inference bf16", lambda: _ours(True, a.batch, a.steps, a.warmup, a.threads, "bf16")),
            ("ours training bf16", lambda: _ours(False, a.batch, a.steps, a.warmup, a.threads, "bf16")),
        ]
    for r in range(a.repeats):
        for name, fn in plan:
            loads.append(os.getloadavg()[0])
            figures.setdefault(name, []).append(fn())
            print(
                f"  repeat {r + 1}/{a.repeats} {name:22s} {figures[name][-1]:8.2f}  (load {loads[-1]:.2f})",
                file=sys.stderr,
                flush=True,
            )
    spreads = {k: Spread.of(v) for k, v in figures.items()}
    med = {k: s.median for k, s in spreads.items()}
    print(
        f"resnet50, batch {a.batch}, threads {a.threads or 'default'}, {a.steps} steps x {a.repeats} repeats; "
        f"median [min-max]; load average 1-min during the run: {min(loads):.2f}-{max(loads):.2f}"
    )
    for k, s in spreads.items():
        unit = "GFLOP/s" if "GFLOP" in k else "images/sec"
        print(f"  {k:22s} {s.text()} {unit}")
    for mode in ("inference", "training"):
        # Each repeat's pair ran back to back, so its ratio cancels most of the machine's drift between repeats.
        pairs = [o / k for o, k in zip(figures[f"ours {mode}"], figures[f"keras {mode}"], strict=True)]
        print(
            f"  ratio ours/keras {mode + ':':10s} {med[f'ours {mode}'] / med[f'keras {mode}']:.2f}x of the medians; "
            f"per repeat {Spread.of(pairs).text(unit='x')}"
        )
    print(
        f"  achieved inference: {2 * macs * med['ours inference'] / 1e9:.1f} GFLOP/s "
        f"(matmul in this run: {med['matmul GFLOP/s']:.1f} GFLOP/s)"
    )
    print(f"  achieved training:  {6 * macs * med['ours training'] / 1e9:.1f} GFLOP/s (3x forward)")
    if a.precision:
        print(
            f"  bf16/fp32 inference: {med['ours inference bf16'] / med['ours inference']:.2f}x, "
            f"training: {med['ours training bf16'] / med['ours training']:.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
