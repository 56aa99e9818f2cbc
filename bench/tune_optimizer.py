"""How fast is ``cpubench tune``'s exact optimizer at T = 64 cores, B = 1024, and how does Packrat's compare?

Why it matters: issue 21 asks for the exact best split of T cores and a batch B into concurrent instances in well
under 10 seconds at T = 64, B = 1024. Packrat (msr-fiddle/packrat, ``utils/optimizer.py``) answers the same
question (every core used) with an O(T^2 B^2) Python loop and recovers its split by matching floats, which goes
wrong when latencies tie. This benchmark times ours on a synthetic Packrat-shaped profile, latency(t, b) =
(a + c * b / t^0.8) * (1 + noise), rounded to 0.1 ms so that ties occur, with every batch size 1..1024 (dense) and
with powers of two; times Packrat's own optimizer on the same profile at growing sizes and extrapolates it to
T = 64, B = 1024 (it would take minutes); counts how often Packrat's ``solution()`` returns an invalid split; and
checks that our exact-cores optimum equals Packrat's table and that ours with fewer cores allowed is never above it.

Packrat's code is not part of this project: pass a checkout with ``--packrat DIR`` (for example
``git --git-dir=MIRROR archive HEAD | tar -x -C DIR``). Its ``Optimizer`` is built with ``Optimizer.__new__`` and
given the profile directly, bypassing the network fetch of its constructor.

    .venv/bin/python bench/tune_optimizer.py [--packrat DIR] [--repeats 3] [--packrat-limit 60]

Run it alone on a quiet machine: it prints the load average before and after.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cpubench.tune.optimizer import Profile, Split, max_throughput, min_latency  # noqa: E402

WORKLOAD = "synthetic"
POW2 = [2**i for i in range(11)]


def synthetic(cores: int, batches: Iterable[int], seed: int) -> dict[tuple[int, int], float]:
    """Packrat-shaped latencies: a fixed cost plus work that scales sub-linearly in threads, 5% noise, 0.1 ms grid."""
    rng = np.random.default_rng(seed)
    table = {}
    for t in range(1, cores + 1):
        for b in batches:
            value = (4.0 + 1.2 * b / t**0.8) * (1.0 + 0.05 * rng.standard_normal())
            table[(t, b)] = max(0.1, round(value, 1))
    return table


def restrict(table: dict[tuple[int, int], float], cores: int, batch: int) -> dict[tuple[int, int], float]:
    return {(t, b): v for (t, b), v in table.items() if t <= cores and b <= batch}


def timed(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def spread(times: list[float]) -> str:
    return f"median {statistics.median(times):8.3f} s  [min {min(times):.3f}, max {max(times):.3f}, n={len(times)}]"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


def describe(split: Split | None) -> str:
    if split is None:
        return "infeasible"
    parts = " + ".join(f"{i.count}x(t={i.threads}, b={i.batch})" for i in split.instances)
    return f"{split.latency_ms:.1f} ms, {split.throughput:.0f} img/s, {split.threads} cores: {parts}"


# --- Packrat, from its own checkout ---------------------------------------------------------------------------------


def packrat_class(directory: Path) -> type:
    sys.path.insert(0, str(directory))
    from utils.optimizer import Optimizer  # Packrat's module, from the checkout given

    return Optimizer


def packrat(optimizer_class: type, table: dict[tuple[int, int], float]) -> Any:
    """Packrat's Optimizer over ``table``, without its constructor (which fetches a CSV over the network)."""
    optimizer = optimizer_class.__new__(optimizer_class)
    nested: dict[int, dict[int, float]] = {}
    for (t, b), value in sorted(table.items()):
        nested.setdefault(t, {})[b] = value
    optimizer.workloads = [WORKLOAD]
    optimizer.latencies = {WORKLOAD: nested}
    optimizer.opt = {}
    return optimizer


def iterations(cores: int, batch: int) -> int:
    """How many times Packrat's innermost statement runs: sum over thread <= T, batch <= B of thread * batch."""
    return cores * (cores + 1) // 2 * (batch * (batch + 1) // 2)


def packrat_growth(optimizer_class: type, table: dict, limit_s: float) -> list[tuple[int, int, float, float]]:
    """Time Packrat's min_latency at growing sizes, skipping any the fit so far says would exceed ``limit_s``.

    Returns (T, B, seconds, Packrat's optimum at (T, B)) per size measured.
    """
    sizes = [(16, 16), (16, 32), (16, 64), (16, 128), (16, 256), (32, 64), (32, 128), (64, 16), (64, 32), (64, 64)]
    sizes += [(64, 128), (64, 256)]
    measured: list[tuple[int, int, float, float]] = []
    top_cores, top_batch = max(t for t, _ in table), max(b for _, b in table)
    for cores, batch in sizes:
        if cores > top_cores or batch > top_batch:
            continue
        if measured:
            per_iteration = max(s / iterations(t, b) for t, b, s, _ in measured)
            predicted = per_iteration * iterations(cores, batch)
            if predicted > limit_s:
                print(f"  T={cores:3d} B={batch:5d}: skipped, predicted {predicted:7.1f} s > limit {limit_s:.0f} s")
                continue
        optimizer = packrat(optimizer_class, restrict(table, cores, batch))
        t0 = time.perf_counter()
        optimizer.opt[WORKLOAD] = optimizer.min_latency(WORKLOAD)
        seconds = time.perf_counter() - t0
        measured.append((cores, batch, seconds, optimizer.opt[WORKLOAD][cores][batch]))
        rate = seconds / iterations(cores, batch) * 1e9
        print(f"  T={cores:3d} B={batch:5d}: measured {seconds:8.3f} s  ({rate:.0f} ns per inner iteration)")
    return measured


def extrapolate(measured: list[tuple[int, int, float, float]], cores: int, batch: int) -> None:
    """Two fits, both labelled: cost per inner iteration (the loop's exact count), and a free power law in T, B."""
    per = [s / iterations(t, b) for t, b, s, _ in measured]
    cost = statistics.median(per)
    target = iterations(cores, batch)
    print(
        f"  EXTRAPOLATED T={cores} B={batch} (per-iteration fit, {target:.3g} iterations x "
        f"{cost * 1e9:.0f} ns [{min(per) * 1e9:.0f}-{max(per) * 1e9:.0f}]): "
        f"{cost * target:.0f} s [{min(per) * target:.0f}-{max(per) * target:.0f}]"
    )
    big = [(t, b, s) for t, b, s, _ in measured if s > 0.05]  # tiny runs are mostly overhead
    if len({t for t, _, _ in big}) >= 2 and len({b for _, b, _ in big}) >= 2:
        design = np.array([[1.0, math.log(t), math.log(b)] for t, b, _ in big])
        coef, *_ = np.linalg.lstsq(design, np.array([math.log(s) for _, _, s in big]), rcond=None)
        seconds = math.exp(coef[0] + coef[1] * math.log(cores) + coef[2] * math.log(batch))
        print(
            f"  EXTRAPOLATED T={cores} B={batch} (power-law fit time ~ T^{coef[1]:.2f} B^{coef[2]:.2f} "
            f"over {len(big)} sizes): {seconds:.0f} s"
        )


def split_problem(result: list[tuple[int, int]], table: dict, cores: int, batch: int) -> str | None:
    """Why a split Packrat returned is invalid (threads over the budget, batch not covered, a point not profiled)."""
    if sum(t for t, _ in result) > cores:
        return "threads over T"
    if sum(b for _, b in result) != batch:
        return "batches do not sum to B"
    if any(p not in table for p in result):
        return "a point not profiled"
    return None


def ours_problem(split: Split | None, table: dict, cores: int, batch: int, exact: bool) -> str | None:
    if split is None:
        return None
    points = [(i.threads, i.batch) for i in split.instances for _ in range(i.count)]
    problem = split_problem(points, table, cores, batch)
    if problem is None and exact and split.threads != cores:
        problem = "threads under T with exact cores"
    return problem


def validity(optimizer_class: type, name: str, table: dict, cores: int, batch: int) -> None:
    """Every (T', B') <= (cores, batch): Packrat's solution() against ours, and the optima against each other."""
    optimizer = packrat(optimizer_class, restrict(table, cores, batch))
    optimizer.opt[WORKLOAD] = optimizer.min_latency(WORKLOAD)
    opt = optimizer.opt[WORKLOAD]
    profiled = restrict(table, cores, batch)
    profile = Profile(profiled)
    counts: dict[str, int] = {}
    pairs = infeasible = ours_bad = exact_differs = free_above = free_below = 0
    under = wrong_latency = 0
    for t in range(1, cores + 1):
        for b in range(1, batch + 1):
            pairs += 1
            exact = min_latency(profile, t, b, exact_cores=True)
            free = min_latency(profile, t, b)
            ours_bad += ours_problem(exact, profiled, t, b, True) is not None
            ours_bad += ours_problem(free, profiled, t, b, False) is not None
            best = opt[t][b]
            if math.isinf(best):
                infeasible += 1
                exact_differs += exact is not None
                continue
            exact_differs += exact is None or exact.latency_ms != best
            free_above += free is None or free.latency_ms > best
            free_below += free is not None and free.latency_ms < best
            result: list[tuple[int, int]] = []
            try:
                optimizer.solution(t, b, WORKLOAD, result)
                problem = split_problem(result, profiled, t, b)
            except Exception as error:  # noqa: BLE001 - any failure of Packrat's recovery counts
                problem = f"exception ({type(error).__name__}: {str(error)[:40]})"
            if problem is not None:
                counts[problem] = counts.get(problem, 0) + 1
                continue
            under += sum(p[0] for p in result) < t
            wrong_latency += max(profiled[p] for p in result) != best
    feasible = pairs - infeasible
    invalid = sum(counts.values())
    print(f"  {name} profile, every T' <= {cores}, B' <= {batch}: {pairs} pairs, {feasible} feasible with all cores")
    print(f"    Packrat solution() invalid: {invalid} of {feasible} ({100.0 * invalid / max(1, feasible):.1f}%)")
    for problem, n in sorted(counts.items(), key=lambda item: -item[1]):
        print(f"      {problem}: {n}")
    print(f"    Packrat valid but not its own rule (threads under T'): {under}; valid but not optimal: {wrong_latency}")
    print(f"    ours invalid (both core rules, {2 * pairs} splits): {ours_bad}")
    print(f"    ours exact-cores optimum != Packrat's table: {exact_differs} (feasibility included)")
    print(f"    ours cores<=T optimum above Packrat's: {free_above}; strictly below (fewer cores help): {free_below}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packrat", type=Path, help="a checkout of github.com/msr-fiddle/packrat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--packrat-limit", type=float, default=60.0, help="skip a Packrat size predicted longer")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cores, batch = args.cores, args.batch
    print(f"tune optimizer benchmark: T={cores}, B={batch}; {load()}")
    dense = synthetic(cores, range(1, batch + 1), args.seed)
    pow2 = synthetic(cores, [b for b in POW2 if b <= batch], args.seed)
    print("ours (cpubench.tune.optimizer):")
    for name, table in (("dense (every batch 1..B)", dense), ("powers of two", pow2)):
        profile = Profile(table)
        runs: list[tuple[str, Callable[[], Split | None]]] = [
            ("min_latency cores<=T", lambda p=profile: min_latency(p, cores, batch)),
            ("min_latency cores==T", lambda p=profile: min_latency(p, cores, batch, exact_cores=True)),
            ("max_throughput", lambda p=profile: max_throughput(p, cores, batch)),
        ]
        print(f"  {name} profile, {len(table)} points:")
        for label, fn in runs:
            times, split = timed(fn, args.repeats)
            print(f"    {label:22s} {spread(times)}  -> {describe(split)}")
        bound = 2.0 * min_latency(profile, cores, batch).latency_ms
        times, split = timed(lambda p=profile, x=bound: max_throughput(p, cores, batch, latency_bound_ms=x), 1)
        print(f"    {'max_throughput <=' + f'{bound:.0f}ms':22s} {spread(times)}  -> {describe(split)}")
        fat = table.get((cores, batch))
        print(f"    fat (1x(t={cores}, b={batch})): {'not profiled' if fat is None else f'{fat:.1f} ms'}")
    if args.packrat is None:
        print("Packrat: not run (pass --packrat DIR, a checkout of github.com/msr-fiddle/packrat)")
    else:
        optimizer_class = packrat_class(args.packrat)
        print(f"Packrat's Optimizer.min_latency (from {args.packrat}; one run per size), dense profile:")
        measured = packrat_growth(optimizer_class, dense, args.packrat_limit)
        extrapolate(measured, cores, batch)
        print("  ours at the same sizes (min_latency cores==T, the same question; median of repeats):")
        for t, b, seconds, value in measured:
            profile = Profile(restrict(dense, t, b))
            times, exact = timed(lambda p=profile, t=t, b=b: min_latency(p, t, b, exact_cores=True), args.repeats)
            free = min_latency(profile, t, b)
            print(
                f"    T={t:3d} B={b:5d}: Packrat {seconds:8.3f} s, ours {statistics.median(times):.4f} s; optimum "
                f"Packrat {value:.1f} ms, ours cores==T {exact.latency_ms:.1f} ms, cores<=T {free.latency_ms:.1f} ms"
            )
        print("Packrat's solution() against ours, on the rounded profiles:")
        validity(optimizer_class, "dense", dense, 16, 64)
        validity(optimizer_class, "powers-of-two", pow2, 16, 64)
    print(f"done; {load()}")


if __name__ == "__main__":
    main()
