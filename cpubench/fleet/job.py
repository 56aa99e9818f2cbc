"""What one host is asked to run: the config's text (validated here, resolved there) and the run's arguments.

Why the text and not the loaded config: a plan is made where it runs. The dispatcher validates the config (a typo
fails on the laptop, at once, with its line), but each host loads the same text again and resolves it against its
own topology (``all`` threads, placements, NUMA n/a) and resumes against its own records, exactly as ``cpubench run``
does there; a loaded config would carry the laptop's view.

Multi-worker training (``variable_update: collective_all_reduce`` over N hosts) needs each host's engine to get the
cluster (``--worker_hosts``) and its place in it (``--task_index``). They are the config's ``flags:`` on that host,
added here to the document (and validated again), so they are part of every record's identity: a measurement over
another cluster is another measurement. The number of workers is the fleet's ``--workers N``, not a config key: the
config says what to measure, the fleet how many hosts measure it together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cpubench.spec import axes, bounded
from cpubench.spec import config as cfg

MULTI_WORKER = "collective_all_reduce"


@dataclass(frozen=True)
class Source:
    """A config as the dispatcher read and validated it."""

    text: str
    path: str
    config: cfg.Config


def read_config(name_or_path: str | None) -> Source:
    """Read and validate a config (a path or a shipped name), reading nothing of this host; ConfigError in one
    line ``file:line: what``."""
    path = cfg.resolve_config(name_or_path)
    try:
        with path.open("rb") as f:
            data = f.read(bounded.MAX_BYTES + 1)
    except OSError as e:
        raise cfg.ConfigError(f"{path}: cannot read ({e.strerror})") from e
    text = bounded.decode(data, str(path))
    return Source(text, str(path), cfg.parse_config(text, str(path)))


def check_multi_worker(config: cfg.Config, workers: int) -> None:
    """``--workers N`` trains one model over N hosts: every run of the config must be a collective all-reduce."""
    modes = config.values_of(axes.get("variable_update"))
    if any(m != MULTI_WORKER for m in modes):
        raise cfg.ConfigError(
            f"--workers {workers}: every run must train with variable_update: {MULTI_WORKER} (the config has "
            f"{', '.join(map(str, modes))})"
        )
    if any(v for v in config.values_of(axes.get("forward_only"))):
        raise cfg.ConfigError(f"--workers {workers}: multi-worker runs train; drop forward_only: true")


def with_flags(source: Source, flags: dict[str, Any]) -> str:
    """The config's text with ``flags`` added to its ``flags:`` (as JSON, which is YAML), validated again."""
    node, loader = bounded.compose(source.text, source.path)
    data = bounded.construct(node, loader, source.path)
    data["flags"] = {**(data.get("flags") or {}), **flags}
    text = json.dumps(data, indent=1, sort_keys=False, default=str)
    cfg.parse_config(text, f"{source.path} (with {', '.join(sorted(flags))})")
    return text


def run_args(only: list[str], repeats: int | None, retry_failed: bool) -> list[str]:
    """The ``cpubench run`` options a fleet run passes on to every host."""
    out: list[str] = []
    for g in only:
        out += ["--only", g]
    if repeats is not None:
        out += ["--repeats", str(repeats)]
    if retry_failed:
        out.append("--retry-failed")
    return out
