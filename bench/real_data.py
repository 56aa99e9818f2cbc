"""Real-data input against synthetic data on this host.

Makes a set of ImageNet-like JPEGs (~500x375, ~110 KB) with ``cpubench make-data --generate`` in a temporary
folder (or uses ``--data-dir``), then runs the engine as subprocesses, one at a time so they do not compete for the
cores:

* input-only: ``--input_only`` with and without ``--distortions`` (what the pipeline alone delivers);
* training: synthetic, real without distortions, real with distortions.

Prints a table of medians over ``--repeats`` with the spread, the load average around each run, and the targets:
real without distortions >= 0.95x synthetic, input-only >= 5x the training rate. Run it on an idle machine:

    .venv/bin/python bench/real_data.py                 # resnet50, the measurement
    .venv/bin/python bench/real_data.py --quick         # smoke run: tiny images, trivial model, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # the engine's package, also from a checkout that is not installed

from tf_cnn_benchmarks.hostfacts import first_line  # noqa: E402
from tf_cnn_benchmarks.record import RecordError, RunRecord, Spread  # noqa: E402


@dataclass
class Case:
    name: str
    flags: list[str]
    input_only: bool = False


@dataclass
class Outcome:
    case: Case
    rates: list[float]
    loads: list[float]
    error: str = ""

    @property
    def spread(self) -> Spread | None:
        return Spread.of(self.rates)

    @property
    def median(self) -> float:
        s = self.spread
        return s.median if s else float("nan")


def make_set(src: str, out: str, count: int, size: str, shards: int) -> None:
    """Generate JPEGs and shards with the real tool, as a user would."""
    cmd = [
        sys.executable,
        "-m",
        "cpubench",
        "make-data",
        "--generate",
        str(count),
        "--size",
        size,
        "--classes",
        "10",
        "--shards",
        str(shards),
        src,
        out,
    ]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    sizes = [os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(src) for f in fs if f.endswith(".JPEG")]
    mean_kb = sum(sizes) / max(1, len(sizes)) / 1024
    print(f"made {len(sizes)} JPEGs, mean {mean_kb:.0f} KB, in {time.perf_counter() - t:.0f} s -> {out}")


def run_once(flags: list[str], timeout: float) -> tuple[float | None, float, str]:
    """One engine run: (images/sec or None, 1-minute load average just before it, error line)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="cpubench-run-") as d:
        out = os.path.join(d, "result.json")
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "tf_cnn_benchmarks", *flags, f"--result_json={out}"],
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=ROOT,
                env=env,
            )
        except subprocess.TimeoutExpired:
            return None, load, f"timed out after {timeout:.0f} s"
        try:
            with open(out) as f:
                rec = RunRecord.from_dict(json.load(f))
        except (OSError, ValueError, RecordError) as e:
            tail = first_line(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no output", 200)
            return None, load, f"exit {proc.returncode}, no result ({first_line(e, 100)}): {tail}"
    if not rec.ok or rec.images_per_sec is None:
        return None, load, f"exit {proc.returncode}: {first_line(rec.reason or 'failed', 200)}"
    return rec.images_per_sec, load, ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: tiny images, trivial model, 1 repeat")
    p.add_argument("--data-dir", help="use these shards instead of generating a set")
    p.add_argument("--model", default="resnet50")
    p.add_argument("--images", type=int, default=320, help="images to generate (default 320)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-batches", type=int, default=10, help="timed training steps per run")
    p.add_argument("--input-batches", type=int, default=40, help="timed steps per input-only run")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per engine run")
    p.add_argument("--extra", default="", help="more engine flags for every run, space-separated")
    args = p.parse_args(argv)
    size, images, shards = "500x375", args.images, 4
    if args.quick:
        args.model, args.batch_size, args.num_batches, args.input_batches = "trivial", 4, 3, 5
        args.warmup, args.repeats, size, images, shards = 1, 1, "64x48", 24, 2

    with tempfile.TemporaryDirectory(prefix="cpubench-real-") as tmp:
        data_dir = args.data_dir
        if not data_dir:
            data_dir = os.path.join(tmp, "shards")
            make_set(os.path.join(tmp, "jpegs"), data_dir, images, size, shards)
        common = [
            f"--model={args.model}",
            f"--batch_size={args.batch_size}",
            f"--num_warmup_batches={args.warmup}",
            *args.extra.split(),
        ]
        train = [*common, f"--num_batches={args.num_batches}"]
        inp = [*common, f"--num_batches={args.input_batches}", "--input_only", f"--data_dir={data_dir}"]
        cases = [
            Case("input-only", inp, True),
            Case("input-only + distortions", [*inp, "--distortions"], True),
            Case("train synthetic", train),
            Case("train real", [*train, f"--data_dir={data_dir}"]),
            Case("train real + distortions", [*train, f"--data_dir={data_dir}", "--distortions"]),
        ]
        outcomes = [Outcome(c, [], []) for c in cases]
        # Interleave the repeats (case A, B, C, A, B, C, ...) so a drift in machine load hits every case alike.
        for r in range(args.repeats):
            for o in outcomes:
                rate, load, err = run_once(o.case.flags, args.timeout)
                status = f"{rate:.2f} images/sec" if rate is not None else err
                print(f"[{r + 1}/{args.repeats}] {o.case.name}: {status} (load {load:.2f})", flush=True)
                if rate is None:
                    o.error = err
                else:
                    o.rates.append(rate)
                o.loads.append(load)

    syn = outcomes[2].median
    rows = []
    for o in outcomes:
        spread = o.spread.text() if o.spread else o.error
        ratio = o.median / syn if syn == syn and syn > 0 else float("nan")
        rows.append([o.case.name, spread, f"{ratio:.2f}x", f"{statistics.mean(o.loads):.2f}"])
    headers = ["case", "images/sec median [min-max]", "vs train synthetic", "load avg (1 min)"]
    try:
        from tabulate import tabulate

        print(tabulate(rows, headers=headers, tablefmt="github"))
    except ImportError:
        print("\n".join(" | ".join(r) for r in [headers, *rows]))

    real_ratio = outcomes[3].median / syn if syn > 0 else float("nan")
    input_ratio = outcomes[0].median / syn if syn > 0 else float("nan")
    print(f"\nmodel {args.model}, batch {args.batch_size}, {args.repeats} repeats, {os.cpu_count()} CPUs")
    print(f"target real/synthetic >= 0.95: {real_ratio:.2f} {'PASS' if real_ratio >= 0.95 else 'FAIL'}")
    print(f"target input-only >= 5x training: {input_ratio:.1f}x {'PASS' if input_ratio >= 5 else 'FAIL'}")
    if args.quick:
        print("(--quick: a smoke run on tiny images with the trivial model; the targets mean nothing here)")
    return 1 if any(o.error for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
