"""Which engine a record ran on: its framework and execution mode, what they are called, and their order.

Why a module of its own: it is the one place that knows what the frameworks are (their names, execution modes and
default mode), so the pages' points (:mod:`cpubench.analysis.points`), the framework comparison
(:mod:`cpubench.analysis.frameworks`) and every page and table read a record alike. Both of those import it; it
imports neither, so they need no import deferred to break a cycle.
"""

from __future__ import annotations

from typing import Any

from tf_cnn_benchmarks import flags as engine_flags

# The comparison's two sides, in table and plot order: the ratios divide the second by the first.
TENSORFLOW, PYTORCH = "tensorflow", "pytorch"
FRAMEWORKS = (TENSORFLOW, PYTORCH)
NAMES = {TENSORFLOW: "TensorFlow", PYTORCH: "PyTorch"}
# Each framework's execution modes, as the engine declares them; the first is the mode of a record that names none.
EXECUTIONS: dict[str, tuple[str, ...]] = engine_flags.EXECUTIONS


def framework_of(rec: Any) -> str:
    """The record's framework (its own field; ``params["framework"]`` may lag behind it). Old records: TensorFlow."""
    return str(getattr(rec, "framework", None) or TENSORFLOW)


def default_execution(framework: str) -> str:
    """The mode a framework runs in when a record names none: graph for TensorFlow, eager for PyTorch."""
    return EXECUTIONS.get(framework, EXECUTIONS[TENSORFLOW])[0]


def execution_of(rec: Any) -> str:
    """The record's execution mode; a TensorFlow graph run with ``xla_compile`` (the older switch) ran as xla, as the
    engine runs it."""
    params = rec.params or {}
    fw = framework_of(rec)
    ex = str(params.get("execution") or default_execution(fw))
    return "xla" if fw == TENSORFLOW and ex == "graph" and params.get("xla_compile") is True else ex


def display(framework: str) -> str:
    return NAMES.get(framework, framework)


def mode_sort_key(mode: tuple[str, str]) -> tuple[int, str, int, str]:
    """Known frameworks first (TensorFlow, PyTorch), then each framework's modes in declared order; others by name."""
    fw, ex = mode
    rank = FRAMEWORKS.index(fw) if fw in FRAMEWORKS else len(FRAMEWORKS)
    known = EXECUTIONS.get(fw, ())
    return (rank, fw, known.index(ex) if ex in known else len(known), ex)
