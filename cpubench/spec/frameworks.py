"""What each framework's engine can run, declared once, so a plan leaves out what one cannot do before any process
starts, and runs what means the same thing once.

Why a table: the PyTorch engine runs one CPU device with local variables on synthetic data; it refuses a GPU, more
than one device, any variable update but parameter_server, NCCL, real data and XLA
(``tf_cnn_benchmarks/torchbench.py``: ``unsupported``), and TensorFlow's graph execution (``flags.EXECUTIONS``).
Found by the engine, each refusal costs a process start and a failed record per run and repeat; declared here, the
axes' ``applies`` and ``runs_as`` rules (:mod:`cpubench.spec.axes`) read it, and a sweep says at its start what it
left out and why. TensorFlow declares every capability, so none of its settings (nor their run hashes) change.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class Capabilities:
    """What one framework's engine can run.

    ``one_device_update``: on one device every variable update of this framework is the same thing (its variables
    are local), and runs as this mode; None where the mode asked is the mode run (TensorFlow builds a replicated
    graph even for one device, and its records have always said so).
    """

    name: str
    executions: tuple[str, ...]  # its execution modes, the default first
    device_types: tuple[str, ...] = ("cpu", "gpu")
    max_devices: int | None = None  # None: as many as asked
    one_device_update: str | None = None
    nccl: bool = True
    real_data: bool = True
    no_xla: str | None = None  # why it has no XLA, or None when it has


@functools.cache
def table() -> dict[str, Capabilities]:
    """Framework name -> its capabilities; execution modes from the engine's own flag table (no framework import)."""
    from tf_cnn_benchmarks import flags as engine_flags

    modes = engine_flags.EXECUTIONS
    declared = (
        Capabilities("tensorflow", modes["tensorflow"]),
        Capabilities(
            "pytorch",
            modes["pytorch"],
            device_types=("cpu",),
            max_devices=1,
            one_device_update="parameter_server",
            nccl=False,
            real_data=False,
            no_xla="its compiler is execution: compile",
        ),
    )
    return {c.name: c for c in declared}


def of(framework: str | None) -> Capabilities:
    """The capabilities of a run's framework (TensorFlow where the run does not name one)."""
    return table()[framework or "tensorflow"]
