"""Waiting for a quiet machine before a child starts (``cpubench run --wait-quiet``).

Why here: it decides when a child may start, like the rest of :mod:`cpubench.execution`, and what it found goes into
the record (``quiet_wait``) so a reader can tell a run measured on a quiet machine from one that gave up waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tf_cnn_benchmarks import hostfacts

QUIET_PCT = 5.0  # other processes' share of the CPUs under which the machine counts as quiet


def wait_for_quiet(limit: float, say: Callable[[str], None], what: str, sample: float = 1.0) -> dict[str, Any]:
    """Wait until other processes use at most 5% of the machine's CPUs (sampled over ``sample`` seconds), up to
    ``limit`` seconds; returns what happened (``waited_s``, ``busy_pct``, ``gave_up``) for the record."""
    t0 = time.monotonic()
    while True:
        start = hostfacts.CpuSnapshot.take()
        time.sleep(sample)
        n = hostfacts.noise_between(start, hostfacts.CpuSnapshot.take())
        busy = n["foreign_cpu_pct"]
        waited = time.monotonic() - t0
        if busy is None or busy <= QUIET_PCT + (n["resolution_pct"] or 0.0):
            return {"waited_s": round(waited, 1), "busy_pct": busy, "gave_up": False}
        if waited >= limit:
            say(
                f"cpubench: {what}: gave up waiting for a quiet machine after {waited:.0f} s (other processes used "
                f"{busy:.1f}% of the CPUs); running anyway"
            )
            return {"waited_s": round(waited, 1), "busy_pct": busy, "gave_up": True}
