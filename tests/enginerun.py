"""What the engine tests share: a finished engine subprocess and the environment to start one in."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from tf_cnn_benchmarks.record import RunRecord

REPO = Path(__file__).resolve().parents[1]
ERROR_PREFIX = "tf_cnn_benchmarks: error:"


@dataclass
class Run:
    """One engine process that has exited: its command, exit code, output and result JSON (None if not written)."""

    argv: list[str]
    rc: int
    stdout: str
    stderr: str
    wall: float
    result: RunRecord | None

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith(ERROR_PREFIX)]

    def losses(self) -> list[tuple[int, float]]:
        assert self.result is not None, self.show()
        return [(int(step), float(loss)) for step, loss in self.result.details["losses"]]

    def show(self) -> str:
        return f"argv={self.argv}\nrc={self.rc}\nstdout:\n{self.stdout[-3000:]}\nstderr:\n{self.stderr[-3000:]}"


def read_result(path: Path) -> RunRecord | None:
    """The result JSON the engine wrote, read as the suite reads it (None when there is none)."""
    return RunRecord.from_dict(json.loads(path.read_text())) if path.exists() else None


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without the variables the engine's own defaults must decide (oneDNN, a cluster)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_ENABLE_ONEDNN_OPTS", "TF_CONFIG")}
    env.update(extra)
    return env
