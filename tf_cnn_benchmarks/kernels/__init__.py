"""The engine's own compiled CPU kernels, built for this host on first use and loaded into TensorFlow.

Why compiled here and not shipped: a kernel built with ``-march=native`` uses every vector unit the host has, and a
TensorFlow custom op must be built against the TensorFlow it loads into. So the source ships with the engine and is
compiled once per host, TensorFlow, compiler and source (that is the cache key), into the virtual environment
(``<sys.prefix>/var/tf_cnn_benchmarks/kernels``), or ``$XDG_CACHE_HOME/tf_cnn_benchmarks/kernels`` where that is not
writable; ``TF_CNN_BENCHMARKS_KERNEL_DIR`` overrides both. ``CXX`` names the compiler (default ``g++``).

A host without a compiler, or a build that fails, is not an error: :func:`batch_norm` returns the reason, the engine
runs TensorFlow's own kernel instead, and the run's record and log say which kernel ran and why.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).with_name("batch_norm.cc")
BUILD_TIMEOUT_S = 600


@dataclass(frozen=True)
class Loaded:
    """A kernel library loaded into TensorFlow (``ops``), or why it is not (``reason``)."""

    ops: Any | None
    reason: str | None = None


_lock = threading.Lock()
_loaded: dict[str, Loaded] = {}


def cache_dir() -> Path:
    """Where built kernels are kept: the override, else the virtual environment, else the user's cache."""
    override = os.environ.get("TF_CNN_BENCHMARKS_KERNEL_DIR")
    if override:
        return Path(override)
    in_env = Path(sys.prefix) / "var" / "tf_cnn_benchmarks" / "kernels"
    probe = in_env if in_env.exists() else Path(sys.prefix)
    if sys.prefix != sys.base_prefix and os.access(probe, os.W_OK):
        return in_env
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tf_cnn_benchmarks" / "kernels"


def _cpu_flags() -> str:
    """The CPU's feature flags: part of the cache key, since ``-march=native`` builds for exactly these."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith(("flags", "Features")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _command(cxx: list[str], out: Path) -> list[str]:
    import tensorflow as tf

    return [*cxx, "-shared", "-fPIC", "-O3", "-march=native", "-w", str(SOURCE), "-o", str(out),
            *tf.sysconfig.get_compile_flags(), *tf.sysconfig.get_link_flags()]  # fmt: skip


def _build(name: str) -> Path | str:
    """The built library's path, or one line saying why it could not be built."""
    import tensorflow as tf

    cxx = shlex.split(os.environ.get("CXX") or "g++")
    if not cxx or shutil.which(cxx[0]) is None:
        return f"no C++ compiler ({cxx[0] if cxx else 'CXX is empty'} not found; install g++ or set CXX)"
    try:
        version = subprocess.run([*cxx, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as e:
        return f"the C++ compiler {cxx[0]} did not run: {e}"
    key = hashlib.sha256()
    for part in (SOURCE.read_bytes(), tf.__version__.encode(), version.encode(), _cpu_flags().encode(),
                 " ".join(_command(cxx, Path("x"))).encode()):  # fmt: skip
        key.update(part + b"\0")
    folder = cache_dir()
    target = folder / f"{name}-{key.hexdigest()[:16]}.so"
    if target.is_file():
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # One build at a time per folder: concurrent engine children (cpubench tune --verify) wait for the first.
        with open(folder / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if target.is_file():
                return target
            with tempfile.TemporaryDirectory(dir=folder) as tmp:
                part = Path(tmp) / target.name
                run = subprocess.run(_command(cxx, part), capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
                if run.returncode != 0 or not part.is_file():
                    last = (run.stderr.strip().splitlines() or ["no output"])[-1]
                    return f"the kernel did not build with {cxx[0]} (exit {run.returncode}): {last[:300]}"
                os.replace(part, target)
    except subprocess.TimeoutExpired:
        return f"the kernel's build took over {BUILD_TIMEOUT_S} s and was stopped"
    except OSError as e:
        return f"the kernel could not be built in {folder}: {e.strerror or e}"
    return target


def batch_norm() -> Loaded:
    """The fused training batch norm (+ ReLU, or + a residual add + ReLU) ops, built and loaded once per process,
    with their gradients."""
    with _lock:
        if "batch_norm" not in _loaded:
            _loaded["batch_norm"] = _load_batch_norm()
        return _loaded["batch_norm"]


def _load_batch_norm() -> Loaded:
    import tensorflow as tf

    built = _build("batch_norm")
    if isinstance(built, str):
        return Loaded(None, built)
    try:
        ops = tf.load_op_library(str(built))
    except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError, OSError) as e:
        return Loaded(None, f"the built kernel did not load: {str(e).splitlines()[0][:300]}")

    @tf.RegisterGradient("EngineBatchNormTrain")
    def _grad(op: tf.Operation, dy: tf.Tensor, *_unused: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        # The mean, variance and inv_std outputs feed only the moving averages, which take no gradient.
        x, gamma, beta = op.inputs
        return tuple(ops.engine_batch_norm_train_grad(dy, x, gamma, beta, op.outputs[1], op.outputs[3],
                                                      relu=op.get_attr("relu")))  # fmt: skip

    @tf.RegisterGradient("EngineBatchNormAddReluTrain")
    def _add_grad(op: tf.Operation, dy: tf.Tensor, *rest: tf.Tensor | None) -> tuple[tf.Tensor, ...]:
        # y = relu(bn(x) + side), y's copies being y again: each reader's gradient goes in as it is, and the op adds
        # them, masks them by the ReLU, hands that to side (the add's gradient) and to the batch norm's.
        x, _side, gamma, _beta = op.inputs
        dys = [d for d in (dy, *rest[3:]) if d is not None]
        dx, dside, dgamma, dbeta = ops.engine_batch_norm_add_relu_train_grad(dys, op.outputs[0], x, gamma,
                                                                            op.outputs[1], op.outputs[3])  # fmt: skip
        return dx, dside, dgamma, dbeta

    return Loaded(ops)
