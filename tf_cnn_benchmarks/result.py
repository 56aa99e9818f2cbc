"""The engine's result JSON (``--result_json PATH``): one :class:`~tf_cnn_benchmarks.record.RunRecord`, assembled
here and nowhere else, from what the run learned by the time it ended.

Why one place: a run can end at any stage (a bad command line, TensorFlow failing to import, a device the host does
not have, out of memory, a watchdog about to end it, or done), and each stage knows more than the one before. The
stages add what they learned to a :class:`RunFacts`; :meth:`RunFacts.record` turns it into the record, so a failed
run reports everything known when it failed and an ok run cannot miss a field that a failure would have filled.

The keys are :class:`RunRecord`'s (``record.py`` documents them; ``source`` is ``"engine"``, and the fields only the
runner knows stay null). Written whole or not at all (a temporary file renamed into place), once at the end, and
also before a call a watchdog may have to end (``strategies.on_fatal``). A run that fails writes it too, with
``status: "failed"`` and a one-line ``reason``. The engine's own extras are in ``details``:

  flags             every flag with its effective value (flags.as_dict); ``argv`` instead for a bad command line
  losses            [step, loss] at each display step (training), for checks across modes and strategies
  variables         the --variable_update mode run; all_reduce: the all-reduce used, or null
  num_workers       processes of a multi-worker run (1 otherwise); num_batches: the timed steps
  skipped_images    real data only: undecodable images skipped by the input pipeline
  warmup_settled    with --max_warmup_batches: whether the step time was steady before the limit
  python_version    the interpreter's version
  batch_norm        TensorFlow runs: ``kernel`` (``engine``: tf_cnn_benchmarks.kernels' fused batch norm + ReLU and
                    residual add; ``tensorflow``: TensorFlow's own; null: the model has none) and ``why``, one line
  gpus              GPU runs only: per device, the physical GPU it ran on (CUDA_VISIBLE_DEVICES's entry, an index or
                    a UUID, else the CUDA ordinal), whether it is a logical GPU (--logical_gpus: all on one card), and
                    the model and compute capability TensorFlow reports; cuda_visible_devices: the variable as seen
"""

from __future__ import annotations

import os
import platform
from argparse import Namespace
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import tf_cnn_benchmarks
from tf_cnn_benchmarks import flags as flagdefs
from tf_cnn_benchmarks import hostfacts
from tf_cnn_benchmarks.record import RunRecord, Samples
from tf_cnn_benchmarks.timing import Measurement

ENGINE_NAME = "tf_cnn_benchmarks"


@dataclass(frozen=True)
class Setup:
    """How the run is laid out, known once the devices, the strategy and the model are."""

    batch_size: int  # per device
    global_batch: int
    num_devices: int
    num_workers: int
    num_batches: int  # timed steps
    devices: list[str]
    variables: str
    all_reduce: str | None


@dataclass
class RunFacts:
    """What the engine knows about its run so far; each stage adds its part, in order."""

    argv: list[str]
    started: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    flags: Namespace | None = None  # parsed command line
    import_s: float | None = None  # seconds to import the framework and the engine
    framework: str = "tensorflow"  # which engine runs: tensorflow or pytorch (--framework)
    framework_version: str | None = None  # once the framework is imported
    # The pool sizes the framework reports it runs with, where it can say (PyTorch); None: derived from the flags.
    threads_effective: dict[str, int] | None = None
    onednn: bool | None = None  # once the devices are set up
    setup: Setup | None = None
    measurement: Measurement | None = None  # the run finished its timed steps
    skipped_images: int | None = None  # real data
    wall_s: float | None = None  # this batch size's own wall time in the process (its share, measured, not divided)
    gpus: list[dict[str, Any]] | None = None  # GPU runs: the physical GPU of each device (strategies.gpu_devices)
    batch_norm: dict[str, str | None] | None = None  # TensorFlow runs: which batch-norm kernel ran, and why

    def record(self, reason: str | None = None) -> RunRecord:
        """The run as a record: ok with its samples when it was measured and no ``reason`` is given, else failed."""
        ns, setup, m = self.flags, self.setup, self.measurement
        cpus = hostfacts.schedulable_cpus()
        details: dict[str, Any] = {"python_version": platform.python_version()}
        if ns is None:
            details["argv"] = list(self.argv)
        else:
            details["flags"] = flagdefs.as_dict(ns)
        details["losses"] = [[i, loss] for i, loss in m.losses] if m else []
        if setup is not None:
            details.update(
                variables=setup.variables,
                all_reduce=setup.all_reduce,
                num_workers=setup.num_workers,
                num_batches=setup.num_batches,
            )
        if self.skipped_images is not None:
            details["skipped_images"] = self.skipped_images
        if self.batch_norm is not None:
            details["batch_norm"] = self.batch_norm
        if self.gpus is not None:
            details["gpus"] = self.gpus
            details["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES")
        if m is not None and m.warmup_settled is not None:
            details["warmup_settled"] = m.warmup_settled
        timings = {} if self.import_s is None else {"import": self.import_s}
        if m is not None:
            timings.update(m.timings)
        if self.wall_s is not None:
            timings["wall"] = round(self.wall_s, 6)
        batch = setup.batch_size if setup else (ns.batch_size or None) if ns else None
        rec = RunRecord(
            status="failed",
            reason=reason,
            model=ns.model if ns else None,
            batch_size=batch,
            num_devices=setup.num_devices if setup else None,
            framework=self.framework,
            framework_version=self.framework_version,
            engine={"name": ENGINE_NAME, "version": tf_cnn_benchmarks.__version__},
            threads={**threads(ns, len(cpus)), **(self.threads_effective or {})} if ns else {},
            cpus=cpus,
            memory_policy=hostfacts.memory_policy(),
            # Read now, so it holds what the engine set itself (TF_ENABLE_ONEDNN_OPTS, KMP_*) on top of what it got.
            thread_env=hostfacts.thread_env(os.environ),
            onednn=self.onednn,
            devices=list(setup.devices) if setup else [],
            samples=Samples(global_batch=setup.global_batch) if setup else Samples(),
            timings=timings or None,
            noise=m.noise if m is not None else None,
            window=None if m is None or m.window is None else {"start": m.window[0], "end": m.window[1]},
            energy=m.energy if m is not None else None,
            allocator=hostfacts.allocator_loaded(),
            started=self.started,
            source="engine",
            details=details,
        )
        if m is not None and reason is None:
            return rec.with_samples(m.samples)
        if rec.reason is None:
            rec.reason = "the run ended before its timed steps"
        return rec


def physical_gpu_ids(count: int, logical: bool, visible: str | None) -> list[str]:
    """The physical GPU each of ``count`` devices runs on, as the driver names it: CUDA_VISIBLE_DEVICES's entries
    (indexes or UUIDs, in the order TensorFlow numbers them), or the CUDA ordinal where the variable is unset.
    Logical GPUs (``--logical_gpus``) all run on the first one.

    Why: a GPU table is trusted only when each run says which cards it used; TensorFlow's ``/gpu:1`` is only the
    second card the process could see, which CUDA_VISIBLE_DEVICES may map to any physical one."""
    entries = None if visible is None else [e.strip() for e in visible.split(",") if e.strip()]
    ids = [entries[i] if entries is not None and i < len(entries) else str(i) for i in range(count)]
    return [ids[0]] * count if logical and ids else ids


def threads(ns: Namespace, cores: int) -> dict[str, int]:
    """The thread flags and the pool sizes they give: 0 leaves TensorFlow's default, one thread per schedulable CPU
    for both the intra-op and the inter-op pool."""
    return {
        "intra": ns.num_intra_threads,
        "inter": ns.num_inter_threads,
        "intra_effective": ns.num_intra_threads or cores,
        "inter_effective": ns.num_inter_threads or cores,
        "schedulable_cores": cores,
    }


def write(path: str, record: RunRecord) -> None:
    """Write the result JSON whole or not at all."""
    hostfacts.atomic_write_json(path, record.to_dict())
