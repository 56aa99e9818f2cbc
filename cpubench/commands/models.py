"""``cpubench models``: the model table (input size, parameters, memory, multiply-adds) of every registered model.

The rows come from :mod:`cpubench.analysis.models` (the graphs the models declare, no TensorFlow needed, so the
command is instant) and are printed by :mod:`cpubench.render.models`.
"""

from __future__ import annotations

import argparse

from cpubench.analysis.models import model_table_rows
from cpubench.render.models import FORMATS, render


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="markdown", help="output format (default: markdown)")


def main(args: argparse.Namespace) -> int:
    print(render(model_table_rows(), args.format))
    return 0
