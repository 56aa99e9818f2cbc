"""What runs inside the measuring children of :mod:`cpubench.host.limits`: the GEMM rates through TensorFlow's oneDNN
matmul, and one process's share of the STREAM-style triad.

Why a module of its own: these import TensorFlow or hold the triad's arrays, and only ever run in a child process the
parent starts (pinned, with its thread-limiting variables removed); the parent, which decides what to measure and
records it, never imports them. Each child prints one :data:`~cpubench.host.limits.CHILD_MARK` line with its JSON
result (or ``{"error": ...}``), which the parent parses.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from cpubench.host.limits import (
    CHILD,
    CHILD_MARK,
    GEMM_BUDGET_S,
    GEMM_REPS,
    GEMM_SIZES,
    GEMM_TARGET_S,
    TRIAD_CHUNK,
    TRIAD_REPS,
    TRIAD_TRIALS,
    quick,
)
from tf_cnn_benchmarks import hostfacts


def gemm_child(dtypes: list[str], threads: int) -> dict[str, Any]:
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    try:
        from tensorflow.python.util import _pywrap_util_port as port

        onednn: Any = "on" if port.IsMklEnabled() else "off"
    except Exception:  # noqa: BLE001 - a fact for the record only
        onednn = "unknown"
    out: dict[str, Any] = {"tf_version": tf.__version__, "onednn": onednn, "cpus": len(hostfacts.schedulable_cpus())}
    avail = hostfacts.available_memory() or 2**31

    @tf.function(jit_compile=False)
    def product(a: Any, b: Any) -> Any:
        return tf.linalg.matmul(a, b)[0, 0]

    for name in dtypes:
        dtype = {"fp32": tf.float32, "bf16": tf.bfloat16}[name]
        try:
            out[name] = _gemm_rate(tf, product, dtype, 2 if name == "bf16" else 4, avail)
        except Exception as e:  # noqa: BLE001 - one precision's failure is its n/a, not the probe's end
            out[name] = {"error": hostfacts.first_line(e)}
    return out


def _gemm_rate(tf: Any, product: Any, dtype: Any, itemsize: int, avail: int) -> dict[str, Any]:
    """Grow the size until a product takes GEMM_TARGET_S, then the best rate of a few products at that size."""
    chosen, last = None, 0.0
    for n in GEMM_SIZES[:1] if quick() else GEMM_SIZES:
        if 3 * n * n * itemsize > avail // 8:
            break
        a = tf.cast(tf.random.uniform((n, n), -1.0, 1.0), dtype)
        b = tf.cast(tf.random.uniform((n, n), -1.0, 1.0), dtype)
        float(product(a, b))  # traces (once per shape) and warms the kernel
        t = time.perf_counter()
        float(product(a, b))
        last = time.perf_counter() - t
        chosen = (n, a, b)
        if last >= GEMM_TARGET_S:
            break
    if chosen is None:
        raise RuntimeError("not even the smallest product fits in memory")
    n, a, b = chosen
    times, t_end = [last], time.perf_counter() + GEMM_BUDGET_S
    while len(times) < (2 if quick() else GEMM_REPS) and time.perf_counter() < t_end:
        t = time.perf_counter()
        float(product(a, b))
        times.append(time.perf_counter() - t)
    return {"n": n, "reps": len(times), "gflops": 2.0 * n**3 / min(times) / 1e9, "best_s": min(times)}


def triad_child(elements: int, reps: int, trials: int, membind: list[int] | None) -> dict[str, Any]:
    """Every array touched and one untimed pass made before ``ready`` (so no first-touch page fault is timed), then
    for each trial: wait for the parent's go line, time ``reps`` passes, say ``done``."""
    if membind:
        hostfacts.bind_memory(membind)  # before the arrays are touched: their pages land where bound
    import numpy as np

    a = np.full(elements, 0.0)
    b = np.full(elements, 1.0)
    c = np.full(elements, 2.0)
    s = 3.0
    pieces = [(a[i : i + TRIAD_CHUNK], b[i : i + TRIAD_CHUNK], c[i : i + TRIAD_CHUNK])
              for i in range(0, elements, TRIAD_CHUNK)]  # fmt: skip

    def passes(n: int) -> None:
        for _ in range(n):
            for pa, pb, pc in pieces:
                np.multiply(pc, s, out=pa)
                np.add(pa, pb, out=pa)

    passes(1)
    print("ready", flush=True)
    windows = []
    for _ in range(trials):
        sys.stdin.readline()
        start = time.time()
        passes(reps)
        windows.append((start, time.time()))
        print("done", flush=True)
    if not a[0] == a[-1] == 7.0:
        raise RuntimeError(f"the triad computed {a[0]!r}, not 7.0")
    return {"windows": windows, "bytes": 24 * elements * reps}


def main(argv: list[str] | None = None) -> int:
    """``python -m cpubench.host.limits_child gemm|triad ...``: one child's measurement, printed on its mark line."""
    import argparse

    p = argparse.ArgumentParser(prog=f"python -m {CHILD}")
    p.add_argument("kind", choices=("gemm", "triad"))
    p.add_argument("--dtypes", default="fp32")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--elements", type=int, default=TRIAD_CHUNK)
    p.add_argument("--reps", type=int, default=TRIAD_REPS)
    p.add_argument("--trials", type=int, default=TRIAD_TRIALS)
    p.add_argument("--membind", default="")
    args = p.parse_args(argv)
    try:
        if args.kind == "gemm":
            out = gemm_child(args.dtypes.split(","), args.threads)
        else:
            nodes = [int(x) for x in args.membind.split(",") if x]
            out = triad_child(args.elements, args.reps, args.trials, nodes or None)
    except Exception as e:  # noqa: BLE001 - the parent records the reason as the limit's n/a
        out = {"error": hostfacts.first_line(e)}
    print(CHILD_MARK + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
