"""Real data for a sweep: where its real-data runs read from, and the small ImageNet-format set generated once.

Why apart from the runner: deciding where the data comes from has no side effects (:func:`plan_data`, also used by
a dry run), and generating it is one tied child like an engine (:func:`generate_data`), whose failure marks the data
unavailable so the real-data runs fail with that reason instead of the sweep stopping.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpubench.execution.executor import Executor, Job, last_error_line, log_tail
from cpubench.spec import config as cfg
from cpubench.sweep.progress import Progress
from tf_cnn_benchmarks import hostfacts

GENERATED_DIR = "_generated"  # under --out: generated real-data sets, shared by the hosts' folders


@dataclass
class DataPlan:
    """Where real-data runs read from; ``source`` goes into the run hash, ``unavailable`` into failed records."""

    source: dict[str, Any]
    path: str = ""
    generated: bool = False
    unavailable: str | None = None
    needs_generation: bool = False


def has_records(path: str) -> bool:
    """A folder of ImageNet-format TFRecord shards (``train-*`` or ``validation-*``)."""
    return bool(path) and os.path.isdir(path) and any(n.startswith(("train-", "validation-")) for n in os.listdir(path))


def plan_data(config: cfg.Config, root: Path) -> DataPlan:
    """Decide, without side effects, where real data comes from: the config's data_dir, else a generated set."""
    data_dir = cfg.expand_data_dir(config.data_dir)
    if has_records(data_dir):
        return DataPlan(source={"dir": config.data_dir}, path=data_dir)
    g = config.generate_data
    if g is not None:
        target = root / GENERATED_DIR / f"imagenet-{g.label}"
        ready = (target / ".complete").exists() and has_records(str(target))
        return DataPlan(
            source={"generated": {"count": g.count, "size": g.size}},
            path=str(target),
            generated=True,
            needs_generation=not ready,
        )
    where = f"data_dir {config.data_dir!r}" if config.data_dir else "no data_dir"
    return DataPlan(
        source={"dir": config.data_dir},
        path=data_dir,
        unavailable=f"real data unavailable: {where} holds no train-* TFRecords and the config has no generate_data",
    )


def make_data_command(src: Path, target: Path, gen: cfg.GenerateData) -> list[str]:
    """``cpubench make-data SRC OUT --generate COUNT [--size S]`` in its own process (it imports TensorFlow)."""
    cmd = [sys.executable, "-m", "cpubench", "make-data", str(src), str(target), "--generate", str(gen.count)]
    return cmd + (["--size", gen.size] if gen.size else [])


def generate_data(data: DataPlan, config: cfg.Config, executor: Executor, out: Progress) -> None:
    """Generate the small real-data set once (into a temporary folder renamed into place); on failure mark it
    unavailable with the reason, so the real-data runs fail with that reason instead of the sweep stopping."""
    g = config.generate_data
    assert g is not None
    target = Path(data.path)
    tmp = target.with_name(target.name + ".partial")
    src = target.with_name(target.name + ".jpeg")
    for d in (tmp, src):
        shutil.rmtree(d, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    cmd = make_data_command(src, tmp, g)
    out.say(f"cpubench: generating {g.count} JPEGs for the real-data settings: {target}")
    log = tmp.parent / f"{target.name}.log"
    # The generator is a child like the engines: tied to the runner, killed with its process group on a signal.
    job = Job(command=cmd, log=log, result_json=tmp / ".none", env={**os.environ, "PYTHONUNBUFFERED": "1"},
              timeout=max(600.0, config.timeout))  # fmt: skip
    outcome = executor.run(job)
    ok = outcome.exit_code == 0 and has_records(str(tmp))
    why = last_error_line(log_tail(log)) or outcome.reason or f"exit code {outcome.exit_code}"
    shutil.rmtree(src, ignore_errors=True)
    if not ok:
        shutil.rmtree(tmp, ignore_errors=True)
        data.unavailable = f"real data unavailable: make-data failed: {why}"
        return
    hostfacts.atomic_write_json(tmp / ".complete", {"count": g.count, "size": g.size, "command": cmd})
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    data.needs_generation = False
