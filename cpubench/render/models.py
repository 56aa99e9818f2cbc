"""The model table rendered: a markdown table with a note on how the figures are counted, CSV or JSON.

The rows are :func:`cpubench.analysis.models.model_table_rows`; ``cpubench models`` prints them in one of
:data:`FORMATS`, and the report's Models section quotes :data:`NOTE` under its own table.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

FORMATS = ("markdown", "csv", "json")

# key in the rows (cpubench.analysis.models.FIELDS) -> column header of the rendered table
COLUMNS: dict[str, str] = {
    "model": "model",
    "input_size": "input size",
    "params": "parameters (M)",
    "param_mb": "parameter memory (MB, fp32)",
    "feature_mb": "feature memory (MB, batch 1, fp32)",
    "gmacs": "G multiply-adds",
}

NOTE = (
    "Parameters are trainable variables (batch-norm moving statistics excluded), for 1001 classes. "
    "Multiply-adds count convolution (depthwise included) and dense layers for one image "
    "(pooling, batch norm, activations excluded). "
    "Feature memory is the sum of every layer output at batch 1 in fp32, the input image excluded. MB = 2^20 bytes."
)


def render(rows: list[dict[str, Any]], fmt: str = "markdown") -> str:
    """The rows as a markdown table with a note under it, CSV or JSON (both raw: full counts, no note)."""
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue().rstrip("\n")
    if fmt != "markdown":
        raise ValueError(f"format {fmt!r}: use one of {', '.join(FORMATS)}")
    from tabulate import tabulate

    body = [[r["model"], r["input_size"], r["params"] / 1e6, r["param_mb"], r["feature_mb"], r["gmacs"]] for r in rows]
    table = tabulate(
        body, headers=list(COLUMNS.values()), tablefmt="github", floatfmt=("", "", ".2f", ".1f", ".1f", ".3f")
    )
    return f"{table}\n\n{NOTE}"
