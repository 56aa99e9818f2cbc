"""``cpubench import-logs DIR --host-id ID [--out data/]``: legacy tf_cnn_benchmarks logs into run records.

The verb only: its arguments, and the store's errors turned into one line and an exit code. What a log becomes
(the rules, the records, the host made from logs) is :mod:`cpubench.results.import_logs`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cpubench.results import store
from cpubench.results.import_logs import import_logs
from tf_cnn_benchmarks.hostfacts import first_line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="folder of legacy logs (searched recursively for *.log, *.txt, *.out)")
    parser.add_argument("--host-id", required=True, help="host id the records are filed under (a new folder name)")
    parser.add_argument("--out", default="data", help="results root holding host folders (default: data)")
    parser.add_argument("--cpu-brand", default=None, help="full CPU brand string of that host, for the report legend")


def main(args: argparse.Namespace) -> int:
    """0 when logs were imported (or all were already), 1 when there were none, 2 on an error."""
    src = Path(args.dir)
    if not src.exists():
        print(f"cpubench import-logs: {src}: no such file or folder", file=sys.stderr)
        return 2
    try:
        target = store.host_dir(args.out, args.host_id)
        store.check_writable(args.out)
        n, skipped, warnings = import_logs(src, Path(args.out), args.host_id, args.cpu_brand)
    except (store.StoreError, OSError) as e:
        print(f"cpubench import-logs: error: {e if isinstance(e, store.StoreError) else first_line(e)}",
              file=sys.stderr)  # fmt: skip
        return 2
    for w in warnings:
        print(f"cpubench import-logs: warning: {w}", file=sys.stderr)
    if n == 0 and skipped == 0:
        print(f"cpubench import-logs: no tf_cnn_benchmarks logs found under {src}; nothing written", file=sys.stderr)
        return 1
    print(f"imported {n} log(s) into {target}" + (f"; {skipped} already imported" if skipped else ""))
    return 0
