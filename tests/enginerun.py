"""What the engine tests share: a finished engine subprocess and the environment to start one in."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    result: dict[str, Any] | None

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith(ERROR_PREFIX)]

    def losses(self) -> list[tuple[int, float]]:
        assert self.result is not None, self.show()
        return [(int(step), float(loss)) for step, loss in self.result["losses"]]

    def show(self) -> str:
        return f"argv={self.argv}\nrc={self.rc}\nstdout:\n{self.stdout[-3000:]}\nstderr:\n{self.stderr[-3000:]}"


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without the variables the engine's own defaults must decide (oneDNN, a cluster)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_ENABLE_ONEDNN_OPTS", "TF_CONFIG")}
    env.update(extra)
    return env
