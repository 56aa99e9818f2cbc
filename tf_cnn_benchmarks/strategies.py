"""Devices and ``--variable_update`` modes, mapped onto TensorFlow's own ``tf.distribute`` strategies.

=====================  =======================================================================================
mode                   what it does here
=====================  =======================================================================================
parameter_server       ``CentralStorageStrategy``: one copy of the variables on ``--local_parameter_device``;
                       every device computes its gradients, they are gathered (mean) there and applied once.
replicated             ``MirroredStrategy``: a copy of the variables per device; gradients are all-reduced
                       (``--all_reduce_spec=nccl`` -> NCCL, default -> reduce to one device and broadcast, or
                       hierarchical copy on GPUs) and every copy applies the same update.
independent            ``MirroredStrategy`` without aggregation: each device applies its own gradients to its
                       own copy; nothing crosses devices (the copies drift apart, as upstream's did).
collective_all_reduce  ``MultiWorkerMirroredStrategy`` over ``--worker_hosts`` (TF_CONFIG is built from the
distributed_replicated flags): replicas on every worker, gradients all-reduced across all of them with
                       TensorFlow's collective ops. ``distributed_replicated`` is the upstream name and runs
                       the same way (its parameter-server hop is replaced by a collective all-reduce).
=====================  =======================================================================================

With ``--device=cpu --num_gpus=N`` the host CPU is split into N logical CPU devices, so every multi-device path runs
and can be benchmarked without GPUs; ``--device=gpu --num_gpus=N --logical_gpus`` splits one GPU the same way (every
path on one card; NCCL cannot reduce between logical devices of one GPU, so it is refused with them). TensorFlow's CPU
devices share one intra-op thread pool, so the threads are shared rather than partitioned: ``--num_intra_threads``
sets the pool for all of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from argparse import Namespace
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tensorflow as tf


class StrategyError(Exception):
    """A device or mode the host cannot run: the message is the one line the user sees."""


@dataclass
class Plan:
    strategy: tf.distribute.Strategy
    devices: list[str]  # upstream-style names: /cpu:0, /gpu:1 ...
    variables: str  # header "Variables:" line
    all_reduce: str | None  # header "AllReduce:" line, when it applies
    aggregate: bool  # False for independent: no gradient reduction
    num_workers: int = 1

    @property
    def num_replicas(self) -> int:
        return self.strategy.num_replicas_in_sync


def configure_devices(flags: Namespace) -> list[str]:
    """Set up the physical/logical devices before TensorFlow initialises; return the device names to compute on.

    GPUs: ``--num_gpus`` real GPUs, or with ``--logical_gpus`` that many logical GPUs carved out of the first one
    (each gets an equal share of its memory: TensorFlow needs a limit for a logical GPU). Real and logical are never
    mixed up: asking for more real GPUs than the host has fails here, in one line, before anything is built."""
    n = flags.num_gpus
    if flags.device == "gpu":
        gpus = tf.config.list_physical_devices("GPU")
        if flags.logical_gpus:
            if not gpus:
                raise StrategyError(
                    f"--device=gpu --num_gpus={n} --logical_gpus: this host has no GPU visible to TensorFlow to split "
                    "into logical GPUs; use --device=cpu (--num_gpus splits the CPU), or run on a GPU host with "
                    "TensorFlow's CUDA build (CPUBENCH_TF=cuda)"
                )
            per_device = logical_gpu_memory_mb(n)
            tf.config.set_logical_device_configuration(
                gpus[0], [tf.config.LogicalDeviceConfiguration(memory_limit=per_device)] * n
            )
            return [f"/gpu:{i}" for i in range(n)]
        if len(gpus) < n:
            found = f"{len(gpus)} GPU(s)" if gpus else "no GPU"
            raise StrategyError(
                f"--device=gpu --num_gpus={n}: this host has {found} visible to TensorFlow; lower --num_gpus, add "
                "--logical_gpus to split one GPU (a logical run, not comparable with real GPUs), or use --device=cpu"
                + ("" if gpus else "; a GPU host needs TensorFlow's CUDA build (CPUBENCH_TF=cuda)")
            )
        for g in gpus[:n]:
            tf.config.experimental.set_memory_growth(g, True)
        return [f"/gpu:{i}" for i in range(n)]
    cpus = tf.config.list_physical_devices("CPU")
    if n > 1:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * n)
    return [f"/cpu:{i}" for i in range(n)]


# The share of the first GPU's memory the logical GPUs may take together (the rest: CUDA context, cuDNN workspaces).
LOGICAL_GPU_MEMORY_SHARE = 0.9


def logical_gpu_memory_mb(n: int) -> int:
    """Each logical GPU's memory limit (MiB): an equal share of the first visible GPU's memory, which nvidia-smi
    gives (TensorFlow cannot say before its runtime starts, and the limit must be set before)."""
    from tf_cnn_benchmarks import result

    first = result.physical_gpu_ids(1, True, os.environ.get("CUDA_VISIBLE_DEVICES"))[0]
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--id={first}", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.split()
        total = int(out[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        raise StrategyError(
            f"--logical_gpus: cannot read GPU {first}'s memory with nvidia-smi to split it into {n} logical GPUs; "
            "put nvidia-smi on PATH"
        ) from None
    return max(1, int(total * LOGICAL_GPU_MEMORY_SHARE / n))


def gpu_devices(flags: Namespace, devices: list[str]) -> list[dict[str, Any]]:
    """Each GPU device of the run with the physical GPU it runs on (:func:`result.physical_gpu_ids`) and what
    TensorFlow reports of that GPU (model, compute capability), for the record's ``details.gpus``."""
    from tf_cnn_benchmarks import result

    physical = tf.config.list_physical_devices("GPU")
    ids = result.physical_gpu_ids(len(devices), flags.logical_gpus, os.environ.get("CUDA_VISIBLE_DEVICES"))
    out: list[dict[str, Any]] = []
    for i, (name, pid) in enumerate(zip(devices, ids, strict=True)):
        info: dict[str, Any] = {"device": name, "physical": pid, "logical": bool(flags.logical_gpus)}
        k = 0 if flags.logical_gpus else i
        try:
            details = tf.config.experimental.get_device_details(physical[k])
        except (IndexError, ValueError, RuntimeError):
            details = {}
        cc = details.get("compute_capability")
        info.update(name=details.get("device_name"), compute_capability=".".join(map(str, cc)) if cc else None)
        out.append(info)
    return out


def _tf_device(name: str) -> str:
    kind, idx = name.strip("/").split(":")
    return f"/device:{kind.upper()}:{idx}"


def build_plan(flags: Namespace, devices: list[str]) -> Plan:
    """Choose the strategy for ``--variable_update`` on ``devices``."""
    mode = flags.variable_update
    tf_devices = [_tf_device(d) for d in devices]
    nccl = flags.all_reduce_spec == "nccl"
    if nccl and flags.device == "cpu":
        raise StrategyError(
            "--all_reduce_spec=nccl (or --use_nccl=true) needs GPUs: NCCL cannot reduce between CPU devices; "
            "drop it (the default copy reduction runs on CPU) or use --device=gpu"
        )
    if mode in ("distributed_replicated", "collective_all_reduce"):
        return _multi_worker_plan(flags)
    if flags.job_name:
        raise StrategyError(
            f"--job_name={flags.job_name} is for multi-worker runs; add --variable_update=collective_all_reduce "
            "(or distributed_replicated)"
        )
    if mode == "parameter_server":
        ps_device = "/device:CPU:0" if flags.local_parameter_device == "cpu" else tf_devices[0]
        if flags.local_parameter_device == "gpu" and flags.device != "gpu":
            raise StrategyError("--local_parameter_device=gpu needs --device=gpu; use --local_parameter_device=cpu")
        if len(devices) == 1:
            strategy = tf.distribute.OneDeviceStrategy(tf_devices[0])
        else:
            strategy = tf.distribute.experimental.CentralStorageStrategy(
                compute_devices=tf_devices, parameter_device=ps_device
            )
        return Plan(strategy, devices, "parameter_server", None, aggregate=True)
    if mode in ("replicated", "independent"):
        if nccl:
            cross = tf.distribute.NcclAllReduce()
            reduce_name = "nccl"
        elif flags.device == "gpu" and len(devices) > 1:
            cross = tf.distribute.HierarchicalCopyAllReduce()
            reduce_name = "hierarchical_copy"
        else:
            cross = tf.distribute.ReductionToOneDevice(reduce_to_device="/device:CPU:0")
            reduce_name = "reduce_to_one_device"
        strategy = tf.distribute.MirroredStrategy(devices=tf_devices, cross_device_ops=cross)
        if mode == "independent":
            return Plan(strategy, devices, "independent", None, aggregate=False)
        return Plan(strategy, devices, "replicated", reduce_name if len(devices) > 1 or nccl else None, True)
    raise StrategyError(f"--variable_update={mode}: unknown mode")


def _multi_worker_plan(flags: Namespace) -> Plan:
    workers = [h.strip() for h in flags.worker_hosts.split(",") if h.strip()]
    if not workers:
        raise StrategyError(
            f"--variable_update={flags.variable_update} needs --worker_hosts=host:port,... and --task_index"
        )
    if flags.job_name == "ps" or flags.ps_hosts:
        raise StrategyError(
            "parameter-server tasks are not used: this engine runs multi-worker training as a collective "
            "all-reduce between workers; drop --ps_hosts and start only the --job_name=worker tasks"
        )
    if not 0 <= flags.task_index < len(workers):
        raise StrategyError(f"--task_index={flags.task_index}: must be below the {len(workers)} worker(s) given")
    os.environ["TF_CONFIG"] = json.dumps(
        {"cluster": {"worker": workers}, "task": {"type": "worker", "index": flags.task_index}}
    )
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING,
        timeout_seconds=flags.cluster_timeout,
    )
    # Creating the strategy starts this task's server and blocks until every worker has joined; the first step
    # blocks on the first collective. A peer that never comes would hang both inside TensorFlow's C++ runtime,
    # where no exception reaches us, so a watchdog ends the process with a clear line instead.
    _start_watchdog(
        flags.cluster_timeout,
        f"the cluster {','.join(workers)} did not come together within {flags.cluster_timeout:.0f} s; start every "
        "--worker_hosts task, check the addresses, or raise --cluster_timeout",
    )
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    devices = [f"/job:worker/task:{i}/cpu:0" for i in range(len(workers))]
    return Plan(strategy, devices, flags.variable_update, "collective_ring", aggregate=True, num_workers=len(workers))


_watchdog: subprocess.Popen | None = None
on_fatal: Callable[[str], None] | None = None  # set by the engine: record the reason before a blocking call

# A separate process, because TensorFlow blocks inside C++ holding the GIL (no Python thread or signal handler
# runs) and catches SIGTERM; the watchdog prints the reason and ends us with SIGKILL unless cancelled first.
_WATCHDOG = """
import os, signal, sys, time
pid, timeout, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    time.sleep(0.2)
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(0)
sys.stderr.write("tf_cnn_benchmarks: error: " + message + "\\n")
sys.stderr.flush()
os.kill(pid, signal.SIGKILL)
"""


def _start_watchdog(timeout: float, message: str) -> None:
    global _watchdog
    if on_fatal is not None:
        on_fatal(message)  # the result JSON says why, should the watchdog have to fire
    _watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(timeout), message])


def cluster_ready() -> None:
    """The first step has run across every worker: the cluster is up, stop the watchdog."""
    global _watchdog
    if _watchdog is not None:
        _watchdog.kill()
        _watchdog.wait()
        _watchdog = None
