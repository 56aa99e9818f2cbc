"""``cpubench run``: run a config's matrix on this host, one engine process per group, and never lose a measurement.

The arguments and the one-line errors live here; the sweep itself is :class:`cpubench.sweep.session.Runner`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cpubench.host import price
from cpubench.host.topology import Topology
from cpubench.results import hosts, store
from cpubench.spec import config as cfg
from cpubench.sweep.progress import Progress
from cpubench.sweep.session import Runner, engine_command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        metavar="FILE",
        help=f"YAML config, or a shipped name ({', '.join(cfg.packaged_configs())}); "
        f"default: the embedded {cfg.DEFAULT_CONFIG}",
    )
    p.add_argument(
        "--out", metavar="DIR", default="data", help="results root; runs go to DIR/<host-id>/ (default data/)"
    )
    p.add_argument("--host-id", metavar="ID", help="host folder name (default: short CPU name like EPYC-9654)")
    p.add_argument(
        "--unique-host-id",
        action="store_true",
        help="add this machine's short stable suffix to the default host id (identical machines)",
    )
    p.add_argument(
        "--only",
        metavar="GLOB",
        action="append",
        default=[],
        help="run only settings/models matching GLOB (setting, model, or setting/model-bs<k>); repeatable",
    )
    p.add_argument("--repeats", type=int, metavar="N", help="repeats per run (overrides the config)")
    p.add_argument("--dry-run", action="store_true", help="list the runs (setting, model, batch, repeat, command)")
    p.add_argument("--retry-failed", action="store_true", help="rerun failed and timed-out runs too")
    p.add_argument(
        "--progress",
        choices=("auto", "live", "plain", "always", "never"),
        default="auto",
        help="live: one line rewritten in place; plain: a line per run and a heartbeat while one runs; "
        "auto (default): live on a terminal, else plain; always = live; never: closing lines only",
    )
    p.add_argument(
        "--heartbeat",
        type=float,
        metavar="SECONDS",
        default=60.0,
        help="without a terminal, print a line at least this often while a run is in flight (default 60)",
    )
    p.add_argument(
        "--wait-quiet",
        nargs="?",
        type=float,
        const=300.0,
        default=None,
        metavar="SECONDS",
        help="before each run, wait until other processes use at most 5%% of the CPUs (up to SECONDS, default 300; "
        "then run anyway and say so)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="run even while another benchmark holds this machine (the records say so)",
    )
    p.add_argument("--price-per-hour", type=float, metavar="X", help="this host's $/hour, kept in its host.json")
    p.add_argument(
        "--print-host-dir",
        action="store_true",
        help="print the results folder DIR/<host-id> this command would use, and exit",
    )


def main(args: argparse.Namespace) -> int:
    try:
        # The plan is resolved against this host's topology before anything is locked or written, so a placement
        # this host cannot give (more threads than its cores) is one line, exit 2.
        config = cfg.resolve(cfg.load_config(args.config), Topology.read)
        if args.repeats is not None and args.repeats < 1:
            raise cfg.ConfigError(f"--repeats={args.repeats}: must be at least 1")
        cfg.check_plan_size(config, args.repeats)  # --repeats 10**9 is refused before the plan is expanded
        if args.only:  # a typo in a glob would otherwise be "0 runs to do" and exit 0
            planned = cfg.plan(config, args.repeats)
            for pattern in args.only:
                if not any(cfg.matches(r, [pattern]) for r in planned):
                    raise cfg.ConfigError(f"--only {pattern}: matches no setting, model or setting/model-bs<k> of "
                                          f"{config.name}; `cpubench run --dry-run` lists them")  # fmt: skip
        if not args.heartbeat > 0:
            raise cfg.ConfigError(f"--heartbeat={args.heartbeat}: must be more than 0 seconds")
        if args.price_per_hour is not None and not price.plausible(args.price_per_hour):
            raise cfg.ConfigError(f"--price-per-hour={args.price_per_hour:g}: must be dollars per hour, from "
                                  f"{price.MIN_PER_HOUR:g} to {price.MAX_PER_HOUR:g}")  # fmt: skip
        if args.wait_quiet is not None and not 0 < args.wait_quiet < float("inf"):
            raise cfg.ConfigError(f"--wait-quiet={args.wait_quiet:g}: must be a number of seconds above 0")
        host_id = hosts.resolve_host_id(args.out, args.host_id, args.unique_host_id)
        if not args.print_host_dir and not args.dry_run:
            store.check_writable(args.out)
    except (cfg.ConfigError, store.StoreError) as e:
        print(f"cpubench run: error: {e}", file=sys.stderr)
        return 2
    if args.print_host_dir:
        print(store.host_dir(args.out, host_id))
        return 0
    engine, default = engine_command(config)
    runner = Runner(config, Path(args.out), host_id, engine, default_engine=default)
    try:
        if args.dry_run:
            return runner.dry_run(args.only, args.repeats, args.retry_failed, sys.stdout)
        mode = {"always": "live", "auto": "live" if sys.stdout.isatty() else "plain"}.get(args.progress, args.progress)
        progress = Progress(sys.stdout, mode, args.heartbeat)
        runner.wait_quiet = args.wait_quiet
        runner.price_per_hour = args.price_per_hour
        return runner.sweep(args.only, args.repeats, args.retry_failed, progress, force=args.force)
    except store.StoreError as e:  # a results folder the store will not read or write (a link, a pipe, ...)
        print(f"cpubench run: error: {e}", file=sys.stderr)
        return 2
