"""The model table's data: input size, parameters, memory and multiply-adds of every registered model.

The figures come from the symbolic graph each model declares (:meth:`Graph.summary`), the same DAG the engine
executes, so the table describes exactly what is timed. Building it needs no TensorFlow; the engine's registry is
imported when the rows are asked for, so importing this module (the report does) costs nothing.
:mod:`cpubench.render.models` renders the rows (markdown, CSV, JSON); ``cpubench models`` prints them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# the keys of a row, in column order
FIELDS = ("model", "input_size", "params", "param_mb", "feature_mb", "gmacs")

# a source of model rows: model_table_rows, or a stand-in (a test's, or one that fails)
ModelRows = Callable[[], list[dict[str, Any]]]


def model_table_rows() -> list[dict[str, Any]]:
    """One row per registered model, in registry order; ``params`` is a count, the other figures are floats."""
    from tf_cnn_benchmarks.models import registry  # lazy: the engine's declarations only when the table is made

    rows = []
    for name in registry.names():
        s = registry.get(name).graph().summary()
        rows.append({key: s[key] for key in FIELDS})
    return rows
