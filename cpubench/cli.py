"""``cpubench run|report|pages|compare|tune|fleet|models|make-data|import-logs``: a dispatcher; each command lives in
its module.

Each command module exposes ``add_arguments(parser)`` and ``main(args) -> int``. Modules are imported lazily so that
``cpubench report`` does not pay for importing TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

# What `cpubench --help` opens with: what the tool answers, for its user (the module's docstring is for its reader).
DESCRIPTION = (
    "CNN benchmarks on CPUs: which host, set-up, framework and thread layout runs these networks fastest, and why. "
    "`cpubench COMMAND --help` says more of each command."
)

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("cpubench.commands.run", "run the benchmark matrix of a config on this host"),
    "report": ("cpubench.commands.report", "merge host result folders into summary/summary.md, CSV, JSON and plots"),
    "pages": ("cpubench.commands.pages", "a scaling study as a Jekyll site: per host and model a page, CSVs and plots"),
    "compare": (
        "cpubench.commands.compare",
        "two host folders: faster, slower or not significant per setting and model",
    ),
    "models": ("cpubench.commands.models", "print the model table (input size, parameters, memory, multiply-adds)"),
    "make-data": ("cpubench.commands.make_data", "build ImageNet-format TFRecord shards from a folder of JPEGs"),
    "tune": ("cpubench.commands.tune", "the best instances x threads x batch split of a host, and --verify to run it"),
    "fleet": ("cpubench.commands.fleet", "run a config on many hosts at once through Dask; results stream home"),
    "import-logs": ("cpubench.commands.import_logs", "turn legacy tf_cnn_benchmarks logs into cpubench run records"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="cpubench", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    name = next((a for a in argv if not a.startswith("-")), None)
    for cmd, (_module, help_) in COMMANDS.items():
        p = sub.add_parser(cmd, help=help_, description=help_)
        if cmd == name:
            importlib.import_module(COMMANDS[cmd][0]).add_arguments(p)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.main(args) or 0)
    except KeyboardInterrupt:
        print("cpubench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout left (``cpubench compare ... --json | head``): nothing more can be said there, and
        # Python would say so again as it flushes on exit. Stop as a tool killed by SIGPIPE does, without a trace.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
