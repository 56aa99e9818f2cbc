"""The order a reader sees things in: models (the classic order first) and settings (by their axis values).

Why one place: the report's rows, the pages' index and the framework comparisons list models and settings; sorted
here once, they list them alike. A setting is ordered by the axis values stored with its records, never by its name.
"""

from __future__ import annotations

from typing import Any

from cpubench.results.merge import Merged
from cpubench.spec import axes

# Classic order first (as in the classic summary.md), then other known models; unknown models after, alphabetically.
MODEL_ORDER = (
    "resnet50",
    "resnet152",
    "inception3",
    "inception4",
    "vgg16",
    "alexnet",
    "ssd300",
    "resnet50_v1.5",
    "resnet101",
    "vgg11",
    "vgg19",
    "googlenet",
    "overfeat",
    "mobilenet",
    "nasnet",
    "densenet121",
    "lenet",
    "trivial",
)


def model_sort_key(model: str) -> tuple[int, int, str]:
    return (0, MODEL_ORDER.index(model), model) if model in MODEL_ORDER else (1, 0, model)


def setting_order(merged: Merged) -> dict[str, tuple[Any, ...]]:
    """Each setting's place in the report, from the axis values stored with its records (never from its name)."""
    params = axes.settings_params((r.rec.setting or "", r.rec.params) for r in merged.runs)
    return {name: (axes.sort_key(p), name) for name, p in params.items()}
