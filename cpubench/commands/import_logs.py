"""``cpubench import-logs DIR --host-id ID [--out data/]``: legacy tf_cnn_benchmarks logs into run records.

The verb only: its arguments, and the store's errors turned into one line and an exit code. What a log becomes
(the rules, the records, the host made from logs) is :mod:`cpubench.results.import_logs`.

Every line printed goes through :func:`cpubench.render.escape.plain`: file names and header text come from the logs,
and an escape sequence in them (a window title, a cleared screen) must be shown, never obeyed by the terminal.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cpubench.render.escape import plain
from cpubench.results import store
from cpubench.results.import_logs import LOG_SUFFIXES, ImportPlan, plan_import, write_import
from tf_cnn_benchmarks.hostfacts import first_line

PROG = "cpubench import-logs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="folder of legacy logs (searched recursively for *.log, *.txt, *.out)")
    parser.add_argument("--host-id", required=True, help="host id the records are filed under (a new folder name)")
    parser.add_argument("--out", default="data", help="results root holding host folders (default: data)")
    parser.add_argument("--cpu-brand", default=None, help="full CPU brand string of that host, for the report legend")


def _error(message: object) -> int:
    print(f"{PROG}: error: {plain(message)}", file=sys.stderr)
    return 2


def _nothing_to_import(src: Path, plan: ImportPlan) -> str:
    """The one error line for an import that would write nothing; the warnings printed before it say the rest."""
    if plan.candidates == 1 and len(plan.skipped) == 1:
        path, why = plan.skipped[0]
        return f"{path}: {why}; nothing written"
    if plan.candidates == 0:
        suffixes = ", ".join(f"*{s}" for s in LOG_SUFFIXES)
        return (
            f"no tf_cnn_benchmarks logs found under {src} (no {suffixes} file); nothing written: "
            "give the folder that holds the logs"
        )
    return (
        f"none of the {plan.candidates} file(s) under {src} is an importable tf_cnn_benchmarks log (see the "
        "warnings above); nothing written"
    )


def main(args: argparse.Namespace) -> int:
    """0 when logs were imported (or all were already); 2, with one line, when none could be or on an error."""
    src = Path(args.dir)
    if not os.path.lexists(src):
        return _error(f"{src}: no such file or folder; give the folder that holds the logs")
    try:
        target = store.host_dir(args.out, args.host_id)
        store.check_writable(args.out)
        plan = plan_import(src, Path(args.out), args.host_id, args.cpu_brand)
    except (store.StoreError, OSError) as e:
        return _error(e if isinstance(e, store.StoreError) else first_line(e))
    if plan.empty:
        alone = plan.candidates == 1 and len(plan.skipped) == 1
        for w in plan.warnings:
            if not (alone and w == f"{plan.skipped[0][0]}: {plan.skipped[0][1]}; skipped"):
                print(f"{PROG}: warning: {plain(w)}", file=sys.stderr)
        return _error(_nothing_to_import(src, plan))
    for w in plan.warnings:
        print(f"{PROG}: warning: {plain(w)}", file=sys.stderr)
    try:
        write_import(plan)
    except (store.StoreError, OSError) as e:
        return _error(e if isinstance(e, store.StoreError) else first_line(e))
    n, skipped = len(plan.records), plan.already
    print(plain(f"imported {n} log(s) into {target}" + (f"; {skipped} already imported" if skipped else "")))
    return 0
