"""Run identity: the engine flags of one planned run, and the hash that says whether two runs measure the same thing.

Why a per-run hash (:func:`run_hash`) rather than one hash of the whole file: resume must skip exactly the runs whose
measurement would be the same. Adding a model to a config must not rerun the others; changing ``num_batches`` or a
flag must rerun everything it touches. The hash covers what identifies the measurement (:func:`run_identity`: every
axis value, the counts and extra flags, the real data's source, the engine and its framework version, the config's
``env:`` and the thread environment the engine starts with), and nothing else (not the config name, not where the
results or our engine are installed, not the timeout, not the host the plan was resolved against: a run's cores are
in its record, its thread count in its axes).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cpubench.spec import axes
from cpubench.spec.schema import Config, Planned


def engine_flags(config: Config, run: Planned, data_dir: str) -> list[str]:
    """The engine flags of one run (without ``--result_json``): every axis's, the counts, then the config's
    ``flags:`` sorted by name."""
    argv = axes.argv(run.values, axes.Context(data_dir=data_dir))
    argv += [f"--num_batches={config.num_batches}", f"--num_warmup_batches={config.num_warmup_batches}"]
    argv += [f"--{k}={axes.flag_value(v)}" for k, v in sorted(config.flags.items())]
    return argv


def run_identity(
    config: Config, run: Planned, data_source: dict[str, Any], engine: dict[str, Any], thread_env: dict[str, str]
) -> dict[str, Any]:
    """Everything that identifies one measurement: the axis values, the counts and extra flags, the real data's
    source, the engine (name and version, or its command) with its framework, and the thread environment the child
    sees. Not paths, not names, not the timeout: moving a results folder or renaming a config reruns nothing."""
    return {
        "axes": axes.identity(run.values),
        "counts": [config.num_batches, config.num_warmup_batches],
        "flags": sorted((k, axes.flag_value(v)) for k, v in config.flags.items()),
        "data": data_source if run.setting.params.get("data") == "real" else None,
        "engine": engine_for(engine, run.values.get("framework") or "tensorflow"),
        "env": sorted(config.env.items()),
        "thread_env": sorted(thread_env.items()),
        # One process for every batch size of a point is another way of measuring (a warm process, a retrace).
        **({"batches_per_process": True} if config.batches_per_process else {}),
    }


def engine_for(engine: dict[str, Any], framework: str) -> dict[str, Any]:
    """The engine identity of one run: its own framework and that framework's version only, so installing torch
    reruns no TensorFlow run and a new TensorFlow reruns no PyTorch run."""
    versions = engine.get("versions") or {}
    out = {k: v for k, v in engine.items() if k != "versions"}
    if "name" in engine and framework != "tensorflow":
        out.update(framework=framework, framework_version=versions.get(framework))
    return out


def run_hash(
    config: Config,
    run: Planned,
    data_source: dict[str, Any],
    engine: dict[str, Any] | None = None,
    thread_env: dict[str, str] | None = None,
) -> str:
    """The hash of :func:`run_identity`: runs resume only from records of the same measurement.

    ``data_source`` describes the real data (``{"dir": "~/data/x"}`` or ``{"generated": {...}}``) so that moving
    from generated images to a real data set reruns the real-data settings.
    """
    content = run_identity(config, run, data_source, engine or {}, thread_env or {})
    blob = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# The axes schema-1 records knew, and the order cpubench 0.1 passed their flags in: kept frozen so folders written
# by it resume (their runs are matched by the hash they were recorded with).
_V1_AXES = ("device", "num_devices", "variable_update", "nccl", "forward_only", "distortions", "precision",
            "xla_compile", "num_intra_threads", "num_inter_threads")  # fmt: skip


def run_hash_v1(config: Config, run: Planned, data_source: dict[str, Any]) -> str | None:
    """The hash cpubench 0.1 gave this run (schema-1 records), or None when the run uses an axis it did not know."""
    values = run.values
    known = {*_V1_AXES, "data", "model", "batch_size"}
    if any(v != axes.get(k).default for k, v in values.items() if k not in known):
        return None
    ctx = axes.Context()
    flags = [f"--num_batches={config.num_batches}", f"--num_warmup_batches={config.num_warmup_batches}"]
    for name in _V1_AXES:
        flags += axes.get(name).to_argv(values[name], ctx)
    if values["data"] == "real":
        flags.append("--data_name=imagenet")
    flags += [f"--{k}={axes.flag_value(v)}" for k, v in sorted(config.flags.items())]
    content = {
        "flags": flags,
        "data": data_source if values["data"] == "real" else None,
        "env": sorted(config.env.items()),
    }
    blob = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
