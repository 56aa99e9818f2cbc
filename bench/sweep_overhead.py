"""Print the sweep overhead breakdown of a ``runs.jsonl``: where the wall time of a sweep went.

    python bench/sweep_overhead.py data/EPYC                 # every record of the host folder
    python bench/sweep_overhead.py data/EPYC --config cpu-default --since 2026-01-01T00:00

Why: a sweep should spend its wall time in the engines' measured windows, not in process start, import and graph
build. ``cpubench run`` prints this for the runs it just made; this script recomputes it afterwards from the records
alone (wall = first start to last end of the selected records), with a per-model table that shows which phase
costs the most.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta

from cpubench.results import store
from cpubench.sweep.session import format_overhead, overhead_breakdown
from tf_cnn_benchmarks.record import RunRecord


def _select(records: list[RunRecord], config: str | None, since: str | None) -> list[RunRecord]:
    out = [r for r in records if r.started and (not config or r.config_name == config)]
    if since:
        t = datetime.fromisoformat(since).replace(tzinfo=None)
        out = [r for r in out if datetime.fromisoformat(str(r.started)).replace(tzinfo=None) >= t]
    return out


def wall_of(records: list[RunRecord]) -> float:
    """First start to last end: the sweep's wall time as the records saw it (runner bookkeeping included)."""
    starts = [datetime.fromisoformat(str(r.started)) for r in records]
    ends = [s + timedelta(seconds=float(r.duration or 0.0)) for s, r in zip(starts, records, strict=True)]
    return (max(ends) - min(starts)).total_seconds()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("host_dir", help="a host folder (with runs.jsonl) or a runs.jsonl")
    p.add_argument("--config", help="only records of this config name")
    p.add_argument("--since", help="only records started at or after this ISO time")
    args = p.parse_args(argv)
    records = _select(list(store.iter_runs(args.host_dir)), args.config, args.since)
    if not records:
        print("no records selected", file=sys.stderr)
        return 1
    print(format_overhead(overhead_breakdown(records, wall_of(records))))
    print(
        f"\n{'model':<16}{'runs':>5}{'process':>9}{'import':>8}{'setup':>8}{'build':>8}{'warmup':>8}{'measured':>9}"
        f"{'total':>8}"
    )
    models = sorted({str(r.model) for r in records})
    for m in models:
        rs = [r for r in records if r.model == m]
        b = overhead_breakdown(rs, sum(float(r.duration or 0.0) for r in rs))
        cols = [b[k] for k in ("process", "import", "setup", "build", "warmup", "measured", "wall")]
        widths = (9, 8, 8, 8, 8, 9, 8)
        print(f"{m:<16}{len(rs):>5}" + "".join(f"{c:>{w}.1f}" for c, w in zip(cols, widths, strict=True)))
    statuses = {s: sum(r.status == s for r in records) for s in store.STATUSES}
    print("\n" + ", ".join(f"{n} {s}" for s, n in statuses.items() if n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
