"""The GPUs of this host and the TensorFlow distribution installed for them: what ``host.json`` says of both.

Why apart from the CPU facts: a GPU host's table is trusted only with its GPUs, their links, the driver and the
CUDA/cuDNN TensorFlow sees (``nvidia-smi`` and the TensorFlow probe), and the install choice (one TensorFlow
distribution per host, made by scripts/tfchoice.py) is recorded beside them. On a host without GPUs each says so,
``n/a`` with the reason, never a blank.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

from tf_cnn_benchmarks import hostfacts

NVIDIA_SMI_QUERY = "index,name,memory.total,driver_version,pcie.link.gen.current,pcie.link.width.current,uuid"
# Where the NVIDIA driver's /proc folder is (tests point it at a fake one), as scripts/tfchoice.py reads it.
PROC_NVIDIA_ENV = "CPUBENCH_PROC_NVIDIA"


def _smi_number(text: str) -> int | None:
    """An integer field of nvidia-smi's CSV, or None for ``[N/A]``, ``[Not Supported]`` and the like."""
    return int(text) if text.isdigit() else None


def parse_nvidia_smi(text: str) -> list[dict[str, Any]]:
    """The GPUs in the output of ``nvidia-smi --query-gpu=<NVIDIA_SMI_QUERY> --format=csv,noheader,nounits``.

    Why each field: the model and memory say what the GPU is, the driver which CUDA it can run, and the PCIe link
    (generation and lanes, as the link runs now: an idle GPU may drop to a lower generation) how fast the host CPU
    can feed it, which is the question of a multi-GPU table; the UUID names the physical card a run used (the
    engine records CUDA_VISIBLE_DEVICES, which may name cards by it). A field nvidia-smi cannot give is None."""
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 7 or not parts[0].isdigit():
            continue
        # A model name holding a comma would split in two: everything between the index and the last five fields.
        idx, name, (mem, driver, gen, width, uuid) = parts[0], ", ".join(parts[1:-5]), parts[-5:]
        out.append(
            {
                "index": int(idx),
                "name": name,
                "memory_mib": _smi_number(mem),
                "driver": driver,
                "pcie_gen": _smi_number(gen),
                "pcie_width": _smi_number(width),
                "uuid": uuid if uuid.startswith("GPU-") else None,
            }
        )
    return out


def nvidia_smi(environ: dict[str, str] | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """This host's GPUs from ``nvidia-smi`` (:func:`parse_nvidia_smi`), and why there are none where there are none."""
    env = dict(os.environ if environ is None else environ)
    exe = shutil.which("nvidia-smi", path=env.get("PATH", os.defpath))
    proc = env.get(PROC_NVIDIA_ENV) or "/proc/driver/nvidia"
    if not exe:
        driver = "the NVIDIA driver is loaded" if os.path.isdir(proc) else f"no NVIDIA driver ({proc} is absent)"
        return [], f"no NVIDIA GPU: nvidia-smi is not on PATH and {driver}"
    try:
        out = subprocess.run(
            [exe, f"--query-gpu={NVIDIA_SMI_QUERY}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
        )
    except (OSError, subprocess.SubprocessError) as e:
        return [], f"nvidia-smi failed: {e}"
    rows = parse_nvidia_smi(out.stdout)
    if rows:
        return rows, None
    said = hostfacts.first_line(out.stderr or out.stdout or f"exit {out.returncode}", 200)
    return [], f"nvidia-smi lists no GPU ({said})"


def gpus() -> list[dict[str, Any]]:
    """GPUs from ``nvidia-smi`` (index, name, memory, driver, PCIe link, UUID); [] when there is none."""
    return nvidia_smi()[0]


def gpu_facts(rows: list[dict[str, Any]], why_none: str | None, probe: dict[str, Any]) -> dict[str, Any]:
    """host.json's ``gpu``: what a reader of a GPU table needs to trust it, in one object.

    ``count``, ``models``, ``memory_mib``, ``driver`` and each GPU's PCIe link come from nvidia-smi (``rows``);
    ``tf_built_with`` is the CUDA and cuDNN TensorFlow was built with (``tf.sysconfig.get_build_info()``, in the
    probe child), ``tf_sees`` the GPUs TensorFlow finds at run time (none with tensorflow-cpu, whatever the host
    has). A host without GPUs says ``n/a`` with the reason instead of the nvidia-smi part."""
    build = probe.get("build_info") if isinstance(probe.get("build_info"), dict) else {}
    built = {
        "is_cuda_build": build.get("is_cuda_build"),
        "cuda": build.get("cuda_version"),
        "cudnn": build.get("cudnn_version"),
    }
    seen = probe.get("gpus_visible")
    if isinstance(seen, list):
        sees: Any = {"count": len(seen), "devices": seen}
    elif "skipped" in probe or "error" in probe:
        sees = f"n/a: the TensorFlow probe did not run ({probe.get('skipped') or probe.get('error')})"
    else:
        sees = "n/a: recorded by an older cpubench"
    out: dict[str, Any] = {"count": len(rows)}
    if not rows:
        out["n/a"] = why_none or "no NVIDIA GPU"
    else:
        models: dict[str, int] = {}
        for g in rows:
            models[str(g["name"])] = models.get(str(g["name"]), 0) + 1
        out.update(
            models=models,
            memory_mib=sorted({g["memory_mib"] for g in rows if g.get("memory_mib") is not None}),
            driver=sorted({str(g["driver"]) for g in rows if g.get("driver")}),
            pcie=[{"index": g["index"], "gen": g.get("pcie_gen"), "width": g.get("pcie_width")} for g in rows],
        )
    out.update(tf_built_with=built, tf_sees=sees)
    return out


# TensorFlow's distributions: which one is installed says which build runs (scripts/tfchoice.py picks one).
_TF_DISTRIBUTIONS = {"tensorflow-cpu": "cpu", "tensorflow": "cuda", "tensorflow-intel": "cpu", "tf-nightly": "cuda",
                     "tensorflow-macos": "cpu"}  # fmt: skip
TF_CHOSEN_ENV = "CPUBENCH_TF_CHOSEN"  # set by scripts/_venv.sh: "cpu|cuda why"


def tf_install(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """host.json's ``tf_install``: the TensorFlow distribution(s) installed, which build that is, and the scripts'
    choice and its reason (scripts/tfchoice.py), so a table says which TensorFlow measured it and why that one."""
    from importlib import metadata

    env = os.environ if environ is None else environ
    found = {}
    for dist, build in _TF_DISTRIBUTIONS.items():
        try:
            found[dist] = {"version": metadata.version(dist), "build": build}
        except metadata.PackageNotFoundError:
            continue
    out: dict[str, Any] = {"distributions": found}
    if len(found) > 1:
        out["warning"] = (
            f"more than one TensorFlow distribution installed ({', '.join(found)}): which one imports "
            "is an accident of install order; keep one (scripts/tfchoice.py)"
        )
    chosen = env.get(TF_CHOSEN_ENV, "").strip()
    if chosen:
        choice, _, why = chosen.partition(" ")
        out.update(chosen=choice, chosen_because=why)
    return out
