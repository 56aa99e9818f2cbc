"""``cpubench compare DATA_DIR/HOST_A DATA_DIR/HOST_B [--baseline-last] [--json]``: which of two hosts is faster,
per setting and model, and whether their repeats support saying so.

Why a command of its own, and which way the ratio goes: :mod:`cpubench.analysis.compare`. The text is
:mod:`cpubench.render.compare`; ``--json`` prints the comparison as one JSON document. Folders that cannot be
compared are one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from cpubench.analysis.compare import CompareError, compare
from cpubench.render.compare import render_text
from tf_cnn_benchmarks import hostfacts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("host_a", help="a host folder, DATA_DIR/HOST_ID: the baseline (unless --baseline-last)")
    parser.add_argument("host_b", help="another host folder, compared with the first")
    parser.add_argument(
        "--baseline-last", action="store_true", help="make the second folder the baseline (ratios A over B)"
    )
    parser.add_argument("--json", action="store_true", help="print the comparison as one JSON document")


def main(args: argparse.Namespace) -> int:
    try:
        cmp = compare(args.host_a, args.host_b, baseline_last=args.baseline_last)
    except CompareError as e:
        print(f"cpubench compare: error: {e}", file=sys.stderr)
        return 2
    for w in cmp.warnings:
        if w not in cmp.store_warnings:  # cpubench.results.store printed those while reading
            print(f"cpubench compare: warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps(hostfacts.finite(cmp.to_dict()), indent=1))
    else:
        print(render_text(cmp))
    return 0
