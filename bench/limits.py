"""The host's limits and how close ResNet-50 gets to them, side by side in one run.

Prints the host probe's limits (:func:`cpubench.host.limits.measure`: GEMM fp32/bf16 on all cores and one, the memory
triad) and its wall time, beside one direct 3x3 convolution's rate at ResNet-50's last-stage shape (the GEMM limit is
a large product's rate, and such a convolution can pass it); then ResNet-50 inference and training at batch 32, fp32
and bf16 (where the host has native bf16), through the engine the way a sweep runs it (a fresh ``python -m
tf_cnn_benchmarks`` process per case), each as achieved GFLOP/s and its share of the limit for its precision
(:mod:`cpubench.analysis.efficiency`, training counted as 3x forward), and bf16 over fp32.

Targets (issue 24, on a 2-core Zen 4): fp32 inference >= 90% of the GEMM limit, training >= 85%, bf16 inference
>= 1.8x fp32 where bf16 is native, the probe under 30 s.

    .venv/bin/python bench/limits.py [--batch 32] [--steps 10] [--warmup 3] [--repeats 3] [--quick]
                                     [--batch_norm_kernel auto|tensorflow]

Each case runs ``--repeats`` times, the cases interleaved so drift in the machine's load hits all alike; the table
gives the median with its min-max spread (and the share of the limit for each), with the load average seen, and the
probe's memory triad and all-core GEMM of the run's precision taken again just before each run beside that run's
images/sec: on a shared host the bandwidth and compute its neighbours leave move from run to run, and training's
memory-bound passes move with the first. Each run's share of the GEMM taken beside it is printed too; the table's
share is against the probe's limit, as the report's is.

``--quick`` is a smoke check (the probe's smallest sizes, ``trivial`` at batch 2, a few steps): it proves the script
runs, its figures mean nothing. Measure on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the engine's package, also from a checkout that is not installed

import _engine  # noqa: E402

from cpubench.analysis import efficiency  # noqa: E402
from cpubench.host import facts  # noqa: E402
from cpubench.host import limits as lim  # noqa: E402
from cpubench.host.record import HostRecord  # noqa: E402
from tf_cnn_benchmarks.record import Spread  # noqa: E402


def _name(case: tuple[bool, str]) -> str:
    return f"{'training' if case[0] else 'inference'} {case[1]}"


CONV_SHAPE = (32, 7, 512)  # batch, height=width, channels in=out: ResNet-50's last stage, a 3x3 convolution


def _gbs(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} GB/s"


def _gflops(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} GFLOP/s"


def _share_beside(model: str, rate: float, case: tuple[bool, str], threads: int | None, host: HostRecord,
                  gemm: float | None) -> float | None:  # fmt: skip
    """``rate``'s share of the limit with the all-core GEMM of its precision replaced by ``gemm`` (taken just before
    the run); None where that GEMM failed."""
    if gemm is None or not host.limits:
        return None
    name = lim.GEMM_BF16_ALL if case[1] == "bf16" else lim.GEMM_FP32_ALL
    values = {**host.limits["values"], name: {**host.limits["values"][name], "value": gemm}}
    beside = replace(host, limits={**host.limits, "values": values})
    return efficiency.figure(model, rate, case[0], case[1], threads, beside).share


def _conv_child(precision: str) -> None:
    """Print the best rate of one 3x3 convolution over a few timed calls (run in its own process, like the probe)."""
    import tensorflow as tf

    n, hw, c = CONV_SHAPE
    dtype = tf.bfloat16 if precision == "bf16" else tf.float32
    x = tf.cast(tf.random.normal((n, hw, hw, c)), dtype)
    w = tf.cast(tf.random.normal((3, 3, c, c)), dtype)
    conv = tf.function(lambda: tf.nn.conv2d(x, w, 1, "SAME"))
    conv().numpy()
    best = float("inf")
    for _ in range(10):
        t = time.perf_counter()
        conv().numpy()
        best = min(best, time.perf_counter() - t)
    print(2 * n * hw * hw * c * c * 9 / best / 1e9)


def _conv_rate(precision: str) -> float | None:
    """A direct convolution's rate, which can pass the GEMM limit (it reuses each loaded input across its taps)."""
    p = subprocess.run([sys.executable, __file__, "--conv-child", precision], capture_output=True, text=True,
                       timeout=300, check=False)  # fmt: skip
    try:
        return float(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conv-child", choices=("fp32", "bf16"), help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3, help="runs of each case, interleaved; medians are shown")
    ap.add_argument("--quick", action="store_true", help="smoke check: tiny sizes and model; figures mean nothing")
    ap.add_argument(
        "--batch_norm_kernel",
        choices=("auto", "tensorflow"),
        default="auto",
        help="the engine's flag of that name, for every run (which batch norm training runs)",
    )
    args = ap.parse_args()
    if args.conv_child:
        _conv_child(args.conv_child)
        return 0
    model, batch, steps, warmup, repeats = "resnet50", args.batch, args.steps, args.warmup, max(1, args.repeats)
    if args.quick:
        os.environ[lim.QUICK_ENV] = "1"
        model, batch, steps, warmup, repeats = "trivial", 2, 2, 1, 1

    t0 = time.monotonic()
    flags = facts.hostfacts.cpu_flags()
    limits = lim.measure(facts.machine_fingerprint(), flags=flags)
    probe_s = time.monotonic() - t0
    print(f"host limits (probe wall time {probe_s:.1f} s{', quick' if args.quick else ''}):")
    for name in lim.NAMES:
        v = lim.value(limits, name)
        entry = limits["values"][name]
        shown = f"{v:10.1f} {entry['unit']}" if v is not None else f"       n/a  ({lim.why_not(limits, name)})"
        print(f"  {lim.LABELS[name]:<28} {shown}")
    if not args.quick:
        n, hw, c = CONV_SHAPE
        for precision, name in (("fp32", lim.GEMM_FP32_ALL), ("bf16", lim.GEMM_BF16_ALL)):
            roof, rate = lim.value(limits, name), None
            if roof is not None:
                rate = _conv_rate(precision)
            if rate is not None:
                print(f"  {precision} 3x3 convolution, {hw}x{hw}x{c} at batch {n}: {rate:.1f} GFLOP/s, "
                      f"{100 * rate / roof:.0f}% of the GEMM limit (a direct convolution can pass it)")  # fmt: skip
    topo = facts._topology()
    host = HostRecord("this", cores_physical=topo.get("cores_physical"), limits=limits)

    bf16 = lim.value(limits, lim.GEMM_BF16_ALL) is not None
    cases = [(training, precision) for training in (False, True) for precision in ("fp32", "bf16")
             if precision == "fp32" or bf16]  # fmt: skip
    print(f"\n{model} at batch {batch}, {steps} timed steps after {warmup} warm-up, all cores (engine default), "
          f"{repeats} repeat(s) interleaved:")  # fmt: skip
    rates: dict[tuple[bool, str], list[float]] = {}
    threads: dict[tuple[bool, str], int | None] = {}
    batch_norm: dict[tuple[bool, str], str] = {}  # which batch-norm kernel each case ran, as its record says
    failed: dict[tuple[bool, str], str] = {}
    loads: list[float] = []
    # The memory bandwidth and the compute a shared host leaves move with its neighbours, and training's
    # memory-bound passes (batch norm, ReLU gradients, adds) with the first: the probe's triad and the all-core GEMM
    # of the run's precision are taken again just before each run.
    triads: dict[tuple[bool, str], list[float | None]] = {}
    gemms: dict[tuple[bool, str], list[float | None]] = {}
    cpus = lim.core_cpus()
    for r in range(repeats):
        for case in cases:
            training, precision = case
            if case in failed:
                continue
            run = [f"--model={model}", f"--batch_size={batch}", f"--num_batches={steps}",
                   f"--num_warmup_batches={warmup}", f"--precision={precision}", "--device=cpu",
                   f"--batch_norm_kernel={args.batch_norm_kernel}"]  # fmt: skip
            if not training:
                run.append("--forward_only=true")
            triads.setdefault(case, []).append(lim.triad(cpus).get("value"))
            # read twice where it falls under what the probe's one-core rate says the cores give, as the probe does
            g = lim.gemm(precision, lim.value(limits, f"gemm_{precision}_one"))
            gemms.setdefault(case, []).append(g.get("value"))
            twice = f" (read twice: {', '.join(map(_gflops, g['readings']))})" if g.get("readings") else ""
            loads.append(os.getloadavg()[0])
            try:
                rec = _engine.run_engine(run)
            except RuntimeError as e:
                failed[case] = str(e)
                continue
            rates.setdefault(case, []).append(float(rec.images_per_sec or 0.0))
            t = (rec.threads or {}).get("intra_effective")  # a bare engine record has no params: say them here
            threads[case] = int(t) if t else None
            said = (rec.details or {}).get("batch_norm") or {}
            batch_norm[case] = str(said.get("why") or "not said")
            print(f"  repeat {r + 1}/{repeats} {_name(case):<16} {rates[case][-1]:8.2f} images/sec "
                  f"(load {loads[-1]:.2f}, triad {_gbs(triads[case][-1])}, GEMM {_gflops(gemms[case][-1])}{twice})",
                  file=sys.stderr, flush=True)  # fmt: skip
    print(f"  {'case':<16} {'images/sec median [min-max]':>28} {'GFLOP/s':>9} {'% of peak':>10}  against")
    for case in cases:
        if case in failed:
            print(f"  {_name(case):<16} failed: {failed[case]}")
            continue
        spread = Spread.of(rates[case])
        f = efficiency.figure(model, spread.median, case[0], case[1], threads.get(case), host)
        share = "n/a" if f.share is None else f"{100 * f.share:.1f}%"
        if f.share is not None and spread.n > 1:
            lo = efficiency.figure(model, spread.min, case[0], case[1], threads.get(case), host).share
            hi = efficiency.figure(model, spread.max, case[0], case[1], threads.get(case), host).share
            share += f" [{100 * lo:.1f}-{100 * hi:.1f}]"
        gflops = "n/a" if f.achieved is None else f"{f.achieved:.1f}"
        print(f"  {_name(case):<16} {spread.text():>28} {gflops:>9} {share:>10}  {f.basis}")
    for training in (False, True):
        a, b = rates.get((training, "fp32")), rates.get((training, "bf16"))
        if a and b:
            # each repeat's pair ran back to back, so its ratio cancels most drift between repeats
            pairs = Spread.of(y / x for x, y in zip(a, b, strict=False))
            print(f"  bf16 / fp32 {'training' if training else 'inference'}: "
                  f"{Spread.of(b).median / Spread.of(a).median:.2f}x of the medians; per repeat "
                  f"{pairs.text(unit='x')}")  # fmt: skip
    if loads:
        print(f"  1-min load average before each run: {min(loads):.2f}-{max(loads):.2f}")
    print("  memory triad just before each repeat, beside its images/sec (the probe's triad, measured again):")
    for case in cases:
        if case in rates:
            pairs = ", ".join(f"{_gbs(t)} -> {x:.2f} img/s" for t, x in zip(triads[case], rates[case], strict=False))
            print(f"    {_name(case):<16} {pairs}")
    print("  share of the all-core GEMM taken just before each repeat (the probe's GEMM, measured again), each run "
          "against the compute the host left it:")  # fmt: skip
    for case in cases:
        if case in rates:
            shares = [_share_beside(model, x, case, threads.get(case), host, g)
                      for x, g in zip(rates[case], gemms[case], strict=False)]  # fmt: skip
            known = [v for v in shares if v is not None]
            each = ", ".join(f"{_gflops(g)} -> {'n/a' if v is None else f'{100 * v:.1f}%'}"
                             for g, v in zip(gemms[case], shares, strict=False))  # fmt: skip
            median = f"median {100 * Spread.of(known).median:.1f}%; " if known else ""
            print(f"    {_name(case):<16} {median}{each}")
    if not bf16:
        print(f"  bf16: n/a ({lim.why_not(limits, lim.GEMM_BF16_ALL)})")
    for case in cases:
        if case in batch_norm:
            print(f"  batch norm, {_name(case)}: {batch_norm[case]}")
    print(f"\n({efficiency.TRAINING_NOTE}; the probe took {probe_s:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
