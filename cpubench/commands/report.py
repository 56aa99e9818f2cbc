"""``cpubench report DATA_DIR... [-o summary/] [--baseline HOST] [--docs DIR]``: many hosts into one comparison.

Writes ``summary.md`` (:mod:`cpubench.render.summary` says what each cell means), ``results.csv``,
``relative.csv``, ``results.json`` and the plots under ``-o`` (:func:`cpubench.render.report.build_report`).
Inputs that cannot be merged (a host id claimed by two machines, :class:`cpubench.results.merge.MergeError`), a
bad baseline and an ``-o`` or ``--docs`` that names a file are one line on stderr and exit 2; merge warnings go to
stderr (those the store printed while reading are not repeated) and to the Warnings section of ``summary.md``. The
model table reads the engine's model declarations, lazily; ``--no-model-table`` skips it.
"""

from __future__ import annotations

import argparse
import sys

from cpubench.analysis.cost import PricesError, parse_prices
from cpubench.analysis.models import model_table_rows
from cpubench.render.escape import plain
from cpubench.render.report import build_report, copy_to_docs
from cpubench.results import store
from cpubench.results.merge import MergeError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", nargs="+", help="host folders (with host.json and runs.jsonl) or folders of them")
    parser.add_argument("-o", "--out", default="summary", help="output folder (default: summary)")
    parser.add_argument("--baseline", default=None, help="host id the relative table divides by (default: the first)")
    parser.add_argument("--docs", default=None, help="also copy summary.md and its plots into this folder")
    parser.add_argument("--no-model-table", action="store_true", help="skip the model table (no TensorFlow import)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--prices", metavar="FILE", help="host id -> dollars per hour (YAML mapping, or CSV with "
                        "host_id,price_per_hour): images per dollar in the report")  # fmt: skip


def read_prices(path: str) -> dict[str, float]:
    """The prices file (at most 1 MiB, UTF-8); PricesError (a ValueError) in one line for anything else."""
    try:
        with open(path, "rb") as f:
            data = f.read(2**20 + 1)
    except OSError as e:
        raise PricesError(f"--prices {path}: {e.strerror}") from None
    if len(data) > 2**20:
        raise PricesError(f"--prices {path}: over 1 MiB; a prices file names one price per host")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PricesError(f"--prices {path}: not UTF-8 text") from None
    return parse_prices(text, path)


def main(args: argparse.Namespace) -> int:
    try:
        if args.docs:
            store.check_writable(args.docs)  # a file named as --docs: one line, before anything is written
        prices = read_prices(args.prices) if args.prices else None
        files, merged = build_report(
            args.data,
            args.out,
            baseline=args.baseline,
            model_rows=None if args.no_model_table else model_table_rows,
            plots=not args.no_plots,
            prices=prices,
        )
    except (MergeError, store.StoreError, ValueError) as e:
        print(f"cpubench report: error: {plain(e)}", file=sys.stderr)
        return 2
    for w in merged.warnings:
        if w in merged.store_warnings:
            continue  # cpubench.results.store printed it already while reading
        print(f"cpubench report: warning: {plain(w)}", file=sys.stderr)
    if args.docs:
        copied = copy_to_docs(files, args.docs)
        print(f"copied summary.md and {len(files.plots)} plot(s) to {copied.parent}")
    print(
        f"wrote {files.summary} ({len(merged.hosts)} host(s), {len(merged.runs)} runs), {files.csv.name}, "
        + (f"{files.relative_csv.name}, " if files.relative_csv else "")
        + f"{files.json.name}, {len(files.plots)} plot(s)"
        + (f"; {len(merged.warnings)} warning(s), see the Warnings section" if merged.warnings else "")
    )
    return 0
