"""``cpubench tune (DATA_DIR/HOST | --profile CSV) --cores T [--batch B] [--objective latency|throughput]
[--latency-bound MS] [--json] [--verify]``: the best split of T cores and a batch into concurrent instances.

For each batch B (every power of two up to the profile's largest without ``--batch``) the exact optimum over uneven
splits (:mod:`cpubench.tune.optimizer`), beside the fat instance (one instance of T threads) and the thin baseline
(one-thread instances); ``--verify`` then runs the three as concurrent pinned instances behind a barrier and prints
expected against measured (:mod:`cpubench.tune.verify`). Profiles: a scaling study in the store, or a CSV in
Packrat's layout (:mod:`cpubench.tune.profile`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cpubench.analysis.tune import Verification, verifications
from cpubench.render import tune as render_tune
from cpubench.results import store
from cpubench.tune import optimizer
from cpubench.tune.profile import ProfileError, Source, from_csv, from_store
from cpubench.tune.verify import Candidate, Request, VerifyError, thin_instances, verify
from tf_cnn_benchmarks import hostfacts


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("host", nargs="?", metavar="DATA_DIR/HOST", help="a host folder holding a scaling study")
    p.add_argument("--profile", metavar="CSV", help="a profile in Packrat's layout instead of a host folder")
    p.add_argument("--cores", type=int, required=True, metavar="T",
                   help=f"the core budget to split (1 to {optimizer.MAX_CORES})")  # fmt: skip
    p.add_argument("--batch", type=int, metavar="B", help="one batch (default: 1, 2, 4, ... up to the profile's; at "
                   f"most {optimizer.MAX_BATCH}, and at most {optimizer.MAX_CELLS:,} / (T + 1) - 1 with T cores, "
                   "which bounds the tuner's tables)")  # fmt: skip
    p.add_argument("--objective", choices=("latency", "throughput"), default="latency",
                   help="latency: the slowest instance as fast as it goes (Packrat's); throughput: the most images/sec "
                   "(within --latency-bound)")  # fmt: skip
    p.add_argument("--latency-bound", type=float, metavar="MS", help="throughput: each instance's latency bound "
                   "(its p99 where the profile has it)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the results as one JSON document")
    p.add_argument("--model", help="the study's model (when it has several)")
    p.add_argument("--framework", help="the study's framework (when it has several)")
    p.add_argument("--execution", help="the study's execution mode (when it has several)")
    p.add_argument("--placement", help="the study's placement (default: sequential where measured)")
    p.add_argument("--benchmark", default="*script*", metavar="GLOB", help="CSV rows whose benchmark matches "
                   "(default *script*, as Packrat's optimizer)")  # fmt: skip
    p.add_argument("--topology", default="sequential", help="CSV rows of this topology (default sequential)")
    p.add_argument("--latency-column", default="latency(avg)", help="the CSV's latency column (default latency(avg))")
    p.add_argument("--allocator", help="CSV rows of this allocator (when the file has several)")
    p.add_argument("--verify", action="store_true", help="run the split, fat and thin as concurrent pinned instances "
                   "and record them in DATA_DIR/HOST")  # fmt: skip
    p.add_argument("--repeats", type=int, default=3, help="--verify: repeats of each configuration (default 3)")
    p.add_argument("--window", type=float, default=5.0, metavar="S", help="--verify: seconds every instance times "
                   "together (default 5)")  # fmt: skip
    p.add_argument("--force", action="store_true", help="--verify: measure even while another benchmark runs")


def _check(args: argparse.Namespace) -> None:
    if bool(args.host) == bool(args.profile):
        raise ProfileError("give one profile: a host folder DATA_DIR/HOST or --profile CSV")
    if not 1 <= args.cores <= optimizer.MAX_CORES:
        raise ProfileError(f"--cores={args.cores}: expected 1 to {optimizer.MAX_CORES}")
    if args.batch is not None and not 1 <= args.batch <= optimizer.MAX_BATCH:
        raise ProfileError(f"--batch={args.batch}: expected 1 to {optimizer.MAX_BATCH}")
    if args.batch is not None:
        _check_size(args.cores, args.batch, "batch")
    if args.latency_bound is not None and not (args.latency_bound > 0 and args.latency_bound < float("inf")):
        raise ProfileError(f"--latency-bound={args.latency_bound}: expected milliseconds above 0")
    if args.latency_bound is not None and args.objective != "throughput":
        raise ProfileError("--latency-bound goes with --objective throughput")
    if args.verify and not args.host:
        raise ProfileError("--verify records into a host folder: give DATA_DIR/HOST (its study is the profile)")
    if not 1 <= args.repeats <= 100 or not 0 < args.window <= 3600:
        raise ProfileError("--repeats takes 1 to 100 and --window 0 to 3600 seconds")


def _check_size(cores: int, batch: int, what: str) -> None:
    """Refuse a budget whose tables would pass :data:`~cpubench.tune.optimizer.MAX_CELLS`, before any is made."""
    most = optimizer.largest_batch(cores)
    if batch > most:
        raise ProfileError(f"{what} {batch} with --cores={cores}: the tuner's tables stop at batch {most} for "
                           f"{cores} cores ({optimizer.MAX_CELLS:,} cells); give --batch {most} or less, "
                           "or fewer --cores")  # fmt: skip


def _batches(profile: optimizer.Profile, batch: int | None, cores: int) -> list[int]:
    if batch is not None:
        return [batch]
    largest = max(b for _, b in profile.latency)
    out, b = [], 1
    while b <= largest:
        out.append(b)
        b *= 2
    _check_size(cores, out[-1], "the profile's batches reach")
    return out


def solve(profile: optimizer.Profile, cores: int, batch: int, objective: str, bound: float | None
          ) -> dict[str, optimizer.Split | None]:  # fmt: skip
    """The split and its two baselines, as the profile predicts them (None: not possible with these points)."""
    if objective == "latency":
        best = optimizer.min_latency(profile, cores, batch)
    else:
        best = optimizer.max_throughput(profile, cores, batch, bound)
    fat = optimizer.make_split(profile, [(cores, batch)]) if (cores, batch) in profile.latency else None
    thin_points = thin_instances(cores, batch)
    thin = optimizer.make_split(profile, thin_points) if all(tb in profile.latency for tb in thin_points) else None
    why = None if best is not None else _why_none(profile, batch, bound)
    return {"split": best, "fat": fat, "thin": thin, "why": why}


def _why_none(profile: optimizer.Profile, batch: int, bound: float | None) -> str:
    """Why no split was found for ``batch``: the batches the profile has cannot make it, or none meets the bound."""
    have = sorted({b for _, b in profile.latency})
    within = f" within the latency bound of {bound:g} ms" if bound is not None else ""
    return f"no split of the profile's batch sizes ({', '.join(map(str, have))}) makes batch {batch}{within}"


def _source_text(source: Source) -> str:
    setting = f", setting {source.workload}" if source.workload else ""
    return source.where + (f" ({source.model}, {source.framework} {source.execution}{setting})" if source.model else "")


def _split_json(s: optimizer.Split | None) -> list[dict[str, int]] | None:
    return None if s is None else [{"threads": i.threads, "batch": i.batch, "count": i.count} for i in s.instances]


def main(args: argparse.Namespace) -> int:
    try:
        _check(args)
        if args.profile:
            profile, source = from_csv(args.profile, args.benchmark, args.topology, args.latency_column,
                                       args.allocator)  # fmt: skip
        else:
            profile, source = from_store(args.host, args.model, args.framework, args.execution, args.placement)
        batches = _batches(profile, args.batch, args.cores)
    except ProfileError as e:
        print(f"cpubench tune: error: {e}", file=sys.stderr)
        return 2
    results = []
    for b in batches:
        sol = solve(profile, args.cores, b, args.objective, args.latency_bound)
        results.append((b, sol))
    if args.json and not args.verify:
        print(json.dumps(hostfacts.finite(_json(args.cores, results)), indent=1))
    elif not args.verify:
        print(render_tune.recommendations(args.cores, _source_text(source), args.objective, results))
    if not args.verify:
        return 0 if any(sol["split"] for _, sol in results) else 1
    return _verify(args, profile, source, results)


def _json(cores: int, results: list[tuple[int, dict[str, Any]]], measured: dict[int, Verification] | None = None
          ) -> dict[str, Any]:  # fmt: skip
    rows = []
    for b, sol in results:
        best, fat = sol["split"], sol["fat"]
        row = {"batch": b, "instances": _split_json(best), "latency_ms": best.latency_ms if best else None,
               "throughput": best.throughput if best else None, "fat_latency_ms": fat.latency_ms if fat else None,
               "speedup_vs_fat": fat.latency_ms / best.latency_ms if best and fat else None,
               "thin_latency_ms": sol["thin"].latency_ms if sol["thin"] else None, "why": sol.get("why")}  # fmt: skip
        v = (measured or {}).get(b)
        if v is not None:
            row["measured"] = {lab: None if x is None else {"p50_ms": x.p50_ms, "p99_ms": x.p99_ms,
                                                           "throughput": x.throughput, "overlap": x.overlap,
                                                           "repeats": x.repeats, "failed": x.failed}
                               for lab, x in (("split", v.split), ("fat", v.fat), ("thin", v.thin))}  # fmt: skip
            row["measured_speedup_vs_fat"] = v.measured_speedup
        rows.append(row)
    return {"cores": cores, "results": rows}


def _verify(args: argparse.Namespace, profile: optimizer.Profile, source: Source,
            results: list[tuple[int, dict[str, Any]]]) -> int:  # fmt: skip
    candidates = []
    for b, sol in results:
        for label in ("split", "fat", "thin"):
            fallback = thin_instances(args.cores, b) if label == "thin" else [(args.cores, b)] if label == "fat" else []
            c = Candidate.of(label, b, sol[label], fallback)
            if c.instances and c not in candidates:
                candidates.append(c)
    req = Request(Path(args.host), str(source.model), str(source.framework), str(source.execution), args.cores,
                  candidates, repeats=args.repeats, window_s=args.window, force=args.force)  # fmt: skip
    quiet = args.json
    try:
        verify(req, (lambda _line: None) if quiet else (lambda line: print(line, flush=True)))
    except (VerifyError, store.StoreError) as e:
        print(f"cpubench tune: error: {e}", file=sys.stderr)
        return 2
    runs = store.read_runs(req.host_dir).records
    found = verifications(runs).get((req.host_dir.name, req.model, req.framework, req.execution, args.cores), {})
    if args.json:
        print(json.dumps(hostfacts.finite(_json(args.cores, results, found)), indent=1))
    else:
        print(render_tune.recommendations(args.cores, _source_text(source), args.objective, results))
        print()
        print(render_tune.verified_table(found))
    bad = any(x is not None and (x.failed or x.p50_ms is None) for v in found.values()
              for x in (v.split, v.fat, v.thin))  # fmt: skip
    return 1 if bad else 0
