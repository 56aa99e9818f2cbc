"""``cpubench pages DATA_DIR... -o DIR``: a thread-scaling study as a Jekyll site, one page per host and model.

The site is :func:`cpubench.render.site.build_pages` (why it exists beside ``cpubench report``, and how repeats are
quoted, is said there). Inputs that cannot be merged are one line on stderr and exit 2; merge warnings the store did
not print already go to stderr. Refused the same way, before anything is written: ``-o`` naming a file, ``-o`` a
non-empty folder that holds no site ``cpubench pages`` wrote (its marker file), inputs with no host folder, and a
record whose model, framework or execution mode cannot be part of a file name.
"""

from __future__ import annotations

import argparse
import sys

from cpubench.render.escape import plain
from cpubench.render.site import PagesError, build_pages
from cpubench.results import store
from cpubench.results.merge import MergeError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", nargs="+", help="host folders (with host.json and runs.jsonl) or folders of them")
    parser.add_argument("-o", "--out", default="pages", help="output folder, a Jekyll site (default: pages)")
    parser.add_argument("--no-plots", action="store_true", help="write CSVs, pages and summary without drawing")


def main(args: argparse.Namespace) -> int:
    try:
        files, merged = build_pages(args.data, args.out, plots=not args.no_plots)
    except (PagesError, MergeError, store.StoreError, ValueError) as e:
        print(f"cpubench pages: error: {plain(e)}", file=sys.stderr)
        return 2
    for w in merged.warnings:
        if w not in merged.store_warnings:
            print(f"cpubench pages: warning: {plain(w)}", file=sys.stderr)
    print(f"wrote {len(files.pages)} page(s), {len(files.csvs)} CSV(s), {files.index} and {files.summary}")
    return 0
