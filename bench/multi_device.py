"""Training images/sec on 1 device against 2 logical CPU devices under each ``--variable_update`` mode.

The same global batch everywhere (``--batch`` on 1 device, half of it per device on 2), so the figures differ only by
how gradients and variables move between devices; the overhead of a mode is its rate relative to 1 device. Each run
is a fresh engine process, one at a time, interleaved across repeats; medians with min-max and the load average.

    .venv/bin/python bench/multi_device.py [--model resnet50] [--batch 32] [--steps 5] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the engine's package, also from a checkout that is not installed

import _engine  # noqa: E402

from tf_cnn_benchmarks.record import Spread  # noqa: E402


def run_engine(flags: list[str]) -> float:
    return _engine.run_engine(flags).images_per_sec or 0.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet50")
    p.add_argument("--batch", type=int, default=32, help="global batch")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="lenet, 2 steps, 1 repeat: checks the script runs")
    a = p.parse_args()
    if a.quick:
        a.model, a.steps, a.warmup, a.repeats = "lenet", 2, 1, 1
    common = [f"--model={a.model}", f"--num_batches={a.steps}", f"--num_warmup_batches={a.warmup}"]
    half = [f"--batch_size={a.batch // 2}", "--num_gpus=2"]
    cases = {"1 device": [f"--batch_size={a.batch}", "--num_gpus=1"]}
    for mode in ("parameter_server", "replicated", "independent"):
        cases[f"2 cpus {mode}"] = [*half, f"--variable_update={mode}"]
    rates: dict[str, list[float]] = {k: [] for k in cases}
    loads: list[float] = []
    for r in range(a.repeats):
        for name, flags in cases.items():
            loads.append(os.getloadavg()[0])
            rates[name].append(run_engine(common + flags))
            print(
                f"  repeat {r + 1}/{a.repeats} {name:26s} {rates[name][-1]:8.2f} (load {loads[-1]:.2f})",
                file=sys.stderr,
                flush=True,
            )
    spreads = {name: Spread.of(xs) for name, xs in rates.items()}
    base = spreads["1 device"].median
    print(
        f"{a.model} training, global batch {a.batch}, {a.steps} steps x {a.repeats} repeats; median [min-max]; "
        f"1-min load average {min(loads):.2f}-{max(loads):.2f}"
    )
    print("| setting | images/sec | relative to 1 device | overhead |\n|---|---|---|---|")
    for name, s in spreads.items():
        print(f"| {name} | {s.text()} | {s.median / base:.2f}x | {100 * (1 - s.median / base):+.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
