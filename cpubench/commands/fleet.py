"""``cpubench fleet worker|run|status``: the sweep on many hosts at once through Dask distributed.

The arguments and the one-line errors live here; the fleet itself is :mod:`cpubench.fleet`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cpubench.fleet import connect, dispatch, job
from cpubench.fleet.connect import FleetError
from cpubench.fleet.status import META, HostState, table, unheld
from cpubench.render.escape import plain
from cpubench.results import hosts, store
from cpubench.spec import config as cfg


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="fleet_command", metavar="{worker,run,status}")
    w = sub.add_parser("worker", help="serve this host to a fleet: a Dask worker named by the host id")
    r = sub.add_parser("run", help="run a config on every fleet host, one run at a time per host; results come home")
    s = sub.add_parser("status", help="the fleet's hosts: what each runs, how far it is, the ETA")
    for q in (w, r, s):
        q.add_argument("--scheduler", metavar="ADDRESS", required=True, help="tcp://HOST:PORT or tls://HOST:PORT")
        q.add_argument(
            "--connect-timeout", type=float, default=10.0, metavar="S", help="give up reaching the scheduler after S"
        )
        connect.add_security_arguments(q)
    w.add_argument("--host-id", metavar="ID", help="this host's name (default: the short CPU name, as cpubench run)")
    w.add_argument(
        "--staging",
        metavar="DIR",
        default="data",
        help="this host's results root, kept between fleet runs (default data/, as cpubench run)",
    )
    w.add_argument("--listen", metavar="HOST", help="the address this worker listens on (default: Dask's choice)")
    r.add_argument("--config", metavar="FILE", help=f"YAML config or a shipped name (default {cfg.DEFAULT_CONFIG})")
    r.add_argument("--hosts", metavar="GLOB", action="append", default=[], help="only these host ids; repeatable")
    r.add_argument("--out", metavar="DIR", default="data", help="results root at home: DIR/<host-id>/ (default data/)")
    r.add_argument("--only", metavar="GLOB", action="append", default=[], help="as cpubench run --only; repeatable")
    r.add_argument("--repeats", type=int, metavar="N", help="repeats per run (overrides the config)")
    r.add_argument("--retry-failed", action="store_true", help="rerun failed and timed-out runs too")
    r.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="multi-worker training: every run is one collective_all_reduce job over N hosts at once",
    )
    r.add_argument(
        "--cluster-port",
        type=int,
        default=29400,
        metavar="P",
        help="with --workers: task i of the job listens on port P+i of its host (default 29400)",
    )
    r.add_argument("--report", metavar="DIR", default="summary", help="cpubench report's folder (default summary/)")
    r.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    r.add_argument("--no-plots", action="store_true", help="a report without the PNG plots")
    r.add_argument("--no-model-table", action="store_true", help="a report without the model table")


def _fail(args: argparse.Namespace, e: object) -> int:
    print(f"cpubench fleet {args.fleet_command}: error: {plain(e)}", file=sys.stderr)
    return 2


def main(args: argparse.Namespace) -> int:
    if not args.fleet_command:
        print("cpubench fleet: error: say worker, run or status (cpubench fleet --help)", file=sys.stderr)
        return 2
    try:
        connect.parse_address(args.scheduler)
        if not args.connect_timeout > 0:
            raise FleetError(f"--connect-timeout={args.connect_timeout:g}: must be more than 0 seconds")
        return {"worker": _worker, "run": _run, "status": _status}[args.fleet_command](args)
    except (FleetError, cfg.ConfigError, store.StoreError) as e:
        return _fail(args, e)


def _warn_plain_tcp(address: str, what: str = "scheduler") -> None:
    line = connect.risk_line(address, what)
    if line:
        print(line, file=sys.stderr)


def _worker(args: argparse.Namespace) -> int:
    staging = Path(args.staging)
    store.check_writable(staging)
    host_id = hosts.resolve_host_id(staging, args.host_id)
    sec = connect.security(args, args.scheduler)
    _warn_plain_tcp(args.scheduler)
    if args.listen and sec is None:
        _warn_plain_tcp(f"tcp://{args.listen}:0", "worker")
    print(f"cpubench fleet worker: {host_id} -> {args.scheduler} (results in {store.host_dir(staging, host_id)})")
    sys.stdout.flush()
    from cpubench.fleet import worker

    return worker.serve(args.scheduler, host_id, staging, sec, args.listen, args.connect_timeout)


def _run(args: argparse.Namespace) -> int:
    source = job.read_config(args.config)  # validated here, resolved on each host
    if args.repeats is not None and args.repeats < 1:
        raise cfg.ConfigError(f"--repeats={args.repeats}: must be at least 1")
    cfg.check_plan_size(source.config, args.repeats)
    if args.workers is not None:
        if args.workers < 2:
            raise FleetError(f"--workers={args.workers}: a multi-worker job needs at least 2 hosts")
        job.check_multi_worker(source.config, args.workers)
        if not 0 < args.cluster_port < 65536 - args.workers:
            raise FleetError(f"--cluster-port={args.cluster_port}: not a port")
    out = Path(args.out)
    dispatch.ensure_out(out)
    sec = connect.security(args, args.scheduler)
    _warn_plain_tcp(args.scheduler)
    client = connect.client(args.scheduler, sec, args.connect_timeout)
    try:
        chosen = dispatch.pick_hosts(dispatch.workers_by_host(client), args.hosts)
        if args.workers is not None:
            if len(chosen) < args.workers:
                raise FleetError(f"--workers {args.workers}: only {len(chosen)} fleet host(s): {', '.join(chosen)}")
            chosen = dict(list(chosen.items())[: args.workers])
        texts = dispatch.texts_for(source, chosen, args.workers, args.cluster_port)
        run = dispatch.FleetRun(client, out, chosen, texts, job.run_args(args.only, args.repeats, args.retry_failed),
                                say=lambda line: print(line, flush=True))  # fmt: skip
        run.lock()
        print(f"cpubench fleet: {source.config.name} on {', '.join(chosen)} (run {run.token}) -> {out}", flush=True)
        outcome = run.run()
    finally:
        client.close()
    dispatch.format_outcome(outcome, out)
    rc = 130 if outcome.interrupted else (0 if outcome.ok else 1)
    if not args.no_report and not outcome.interrupted:
        rc = max(rc, _report(args, out))
    return rc


def _report(args: argparse.Namespace, out: Path) -> int:
    """``cpubench report`` over every host folder under ``--out``: the same code, not a subprocess."""
    from cpubench.analysis.models import model_table_rows
    from cpubench.render.report import build_report
    from cpubench.results.merge import MergeError

    try:
        if not store.find_host_dirs([out]):
            print(f"cpubench fleet: no host folder under {out}: no report", file=sys.stderr)
            return 1
        files, merged = build_report([str(out)], args.report, model_rows=None if args.no_model_table else
                                     model_table_rows, plots=not args.no_plots)  # fmt: skip
    except (MergeError, store.StoreError, ValueError) as e:
        print(f"cpubench fleet: report: error: {plain(e)}", file=sys.stderr)
        return 1
    print(f"wrote {files.summary} ({len(merged.hosts)} host(s), {len(merged.runs)} runs)")
    return 0


def _status(args: argparse.Namespace) -> int:
    sec = connect.security(args, args.scheduler)
    _warn_plain_tcp(args.scheduler)
    client = connect.client(args.scheduler, sec, args.connect_timeout)
    try:
        workers = dispatch.workers_by_host(client)
        meta = client.get_metadata([META, "hosts"], default=None)
        # Anything that reaches the scheduler can write this entry: only host names with entries are read.
        entries = meta.items() if isinstance(meta, dict) else ()
        states = {h: HostState.from_dict(d) for h, d in entries if isinstance(h, str) and isinstance(d, dict)}
        states = unheld(states, dispatch.held)
    finally:
        client.close()
    for line in table(states, workers):
        print(line)
    return 0
