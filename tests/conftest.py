"""Shared fixtures: ``env`` is the environment of a ``cpubench run`` subprocess driving the fake engine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fakeengine import fake_env


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Environment for a runner subprocess using the fake engine; calls are logged to ``tmp_path/calls.jsonl``."""
    return fake_env(tmp_path)


# The host's limits take tens of seconds to measure: no test pays for them but test_limits.py, which asks (=0).
os.environ.setdefault("CPUBENCH_NO_LIMITS", "1")
