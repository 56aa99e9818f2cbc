"""Host identity and metadata: a readable, collision-free host id and the facts that explain a CPU's speed.

Why this matters: the classic scripts named a host by the 4th word of ``lscpu`` (so every EPYC was "EPYC", two
identical boxes overwrote each other) and kept no metadata, so a slow result could not be told apart from a power
governor, SMT, or oneDNN being off. Here:

- the host id is short like the classic table columns (``i7-7820X``, ``EPYC-9654``, ``Xeon-8480``) and made unique
  with a short stable suffix from :func:`machine_fingerprint` (the choice, which reads the results folder, is
  :func:`cpubench.results.hosts.resolve_host_id`);
- :func:`collect_host` gives the :class:`~cpubench.host.record.HostRecord` of ``host.json``: the CPU (py-cpuinfo,
  called once per host and then reused from the previous record, since it takes seconds), topology from sysfs,
  memory, kernel, governor, TensorFlow build and oneDNN state, GPUs and the environment variables that change speed.

Everything here reads the machine (files, small programs), never the results folder (:mod:`cpubench.results` reads
that, and gives the previous record back); nothing imports TensorFlow into the runner's process (the probe runs in a
child so the runner stays small while engines run).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from typing import Any

from cpubench import __version__
from cpubench.host.gpus import (  # noqa: F401 - the GPU facts' names stay importable from here
    NVIDIA_SMI_QUERY,
    PROC_NVIDIA_ENV,
    TF_CHOSEN_ENV,
    gpu_facts,
    gpus,
    nvidia_smi,
    parse_nvidia_smi,
    tf_install,
)
from cpubench.host.record import HOST_SCHEMA, HostRecord
from tf_cnn_benchmarks import hostfacts

# Skip the TensorFlow probe (machines without TensorFlow, and tests that run the runner many times).
NO_TF_PROBE_ENV = "CPUBENCH_NO_TF_PROBE"

_FLAG_PATTERNS = (
    r"avx",
    r"avx2",
    r"fma",
    r"f16c",
    r"avx512.*",
    r"amx.*",
    r"avx_vnni.*",
    r"avx_ne_convert",
    r"sse4_2",
    # Arm
    r"asimd.*",
    r"sve.*",
    r"bf16",
    r"i8mm",
    r"sme\d?",
)
_CPUINFO_KEYS = ("cpu_brand", "cpu_vendor", "cpu_family", "cpu_model", "cpu_stepping", "cpu_hz_advertised", "caches")


# ---------------------------------------------------------------------------------------------------------------
# Cheap facts (files only)


_read = hostfacts.read_text


def _proc_cpuinfo() -> list[dict[str, str]]:
    """``/proc/cpuinfo`` as one dict per logical CPU (empty off Linux)."""
    text = _read("/proc/cpuinfo") or ""
    cpus: list[dict[str, str]] = []
    for block in text.split("\n\n"):
        d = {}
        for line in block.splitlines():
            k, sep, v = line.partition(":")
            if sep:
                d[k.strip()] = v.strip()
        if d:
            cpus.append(d)
    return cpus


def cheap_brand() -> str:
    """The CPU brand without py-cpuinfo: ``/proc/cpuinfo`` model name, else ``lscpu``, else the platform."""
    for cpu in _proc_cpuinfo():
        for key in ("model name", "Model Name", "cpu model", "Hardware"):
            if cpu.get(key):
                return cpu[key]
    if shutil.which("lscpu"):
        try:
            out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
            m = re.search(r"^Model name:\s*(.+)$", out, re.M)
            if m:
                return m.group(1).strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "cpu"


def memory_bytes() -> int | None:
    m = re.search(r"^MemTotal:\s+(\d+) kB", _read("/proc/meminfo") or "", re.M)
    if m:
        return int(m.group(1)) * 1024
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def machine_fingerprint() -> str:
    """Stable per machine, different across identical machines: machine-id + CPU brand + memory size, hashed.

    Used to tell two results folders claiming the same host id apart. Memory is rounded to GiB so a kernel update
    that reserves a few more pages does not make a machine a stranger to its own folder.
    """
    mid = _read("/etc/machine-id") or _read("/var/lib/dbus/machine-id") or platform.node()
    mem = memory_bytes() or 0
    blob = f"{mid}|{cheap_brand()}|{round(mem / 2**30)}"
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


_VENDOR_WORDS = {"intel", "amd", "genuineintel", "authenticamd", "arm", "apple"}
_DROP_WORDS = {"cpu", "processor", "core", "tm", "r", "platinum", "gold", "silver", "bronze", "w", "with", "radeon"}


def short_cpu_name(brand: str) -> str:
    """``Intel(R) Core(TM) i7-7820X CPU @ 3.60GHz`` -> ``i7-7820X``; ``AMD EPYC 9654 96-Core Processor`` ->
    ``EPYC-9654``; ``Intel(R) Xeon(R) Platinum 8480+`` -> ``Xeon-8480``: the names the classic tables use."""
    s = re.sub(r"\((R|TM|r|tm)\)", " ", brand)
    s = re.sub(r"@.*$", " ", s)  # clock
    s = re.sub(r"\b\d+-Cores?\b|\bw/.*$|\bwith\b.*$", " ", s, flags=re.I)
    words = [w.strip("+,") for w in s.split()]
    words = [w for w in words if w and w.lower() not in _VENDOR_WORDS and w.lower() not in _DROP_WORDS]
    # "E5-2690 v4" -> "E5-2690v4"
    joined: list[str] = []
    for w in words:
        if re.fullmatch(r"v\d+", w, re.I) and joined:
            joined[-1] += w.lower()
        else:
            joined.append(w)
    # Core i7-7820X: the model token alone says it all.
    for w in joined:
        if re.fullmatch(r"i[3579]-\w+", w, re.I):
            return _sanitize(w)
    if not joined:
        return _sanitize(platform.machine() or "cpu")
    # Family word + model number: "EPYC 9654", "Ryzen 9 7950X" -> Ryzen-7950X, "Threadripper PRO 5995WX".
    family = next((w for w in joined if w.lower() == "threadripper"), joined[0])
    numbers = [w for w in joined[1:] if re.search(r"\d", w) and len(w) >= 3]
    name = f"{family}-{numbers[-1]}" if numbers else "-".join(joined[:3])
    return _sanitize(name)


def _sanitize(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    return name[:32] or "cpu"


# ---------------------------------------------------------------------------------------------------------------
# Full metadata


def _topology() -> dict[str, Any]:
    """Sockets, cores, SMT and NUMA nodes: from sysfs (:mod:`cpubench.host.topology`), else ``/proc/cpuinfo``."""
    from cpubench.host import topology

    try:
        t = topology.Topology.read()
    except (topology.TopologyError, OSError, ValueError):
        return _topology_from_cpuinfo()
    return {
        "sockets": len(t.sockets),
        "cores_physical": t.physical_cores,
        # The CPUs this process may use, as the physical count is (taskset, a cpuset): the host's own list is in
        # topology.host_cpus where they differ.
        "cores_logical": len(t.cpus),
        "threads_per_core": t.threads_per_core,
        "smt": t.smt,
        "numa_nodes": len(t.nodes),
        "topology": t.to_dict(),
    }


def _topology_from_cpuinfo() -> dict[str, Any]:
    cpus = _proc_cpuinfo()
    logical = os.cpu_count() or len(cpus) or 1
    sockets = {c.get("physical id") for c in cpus if "physical id" in c}
    cores = {(c.get("physical id"), c.get("core id")) for c in cpus if "core id" in c}
    if not cores:  # Arm and some VMs: sysfs topology
        pairs = set()
        for d in glob.glob("/sys/devices/system/cpu/cpu[0-9]*/topology"):
            pairs.add((_read(f"{d}/physical_package_id"), _read(f"{d}/core_id")))
            sockets.add(_read(f"{d}/physical_package_id"))
        cores = pairs
    physical = len(cores) or logical
    smt_active = _read("/sys/devices/system/cpu/smt/active")
    tpc = max(1, round(logical / physical)) if physical else 1
    nodes = glob.glob("/sys/devices/system/node/node[0-9]*")
    return {
        "sockets": len(sockets) or 1,
        "cores_physical": physical,
        "cores_logical": logical,
        "threads_per_core": tpc,
        "smt": (smt_active == "1") if smt_active in ("0", "1") else tpc > 1,
        "numa_nodes": len(nodes) or 1,
    }


def _flags_of_interest(cpuinfo_flags: list[str]) -> list[str]:
    flags = set(cpuinfo_flags) | set(hostfacts.cpu_flags())
    pats = [re.compile(p) for p in _FLAG_PATTERNS]
    return sorted(f for f in flags if any(p.fullmatch(f) for p in pats))


def _sysfs_caches() -> dict[str, Any]:
    """Per-core caches of cpu0 from sysfs (``L1d: 48K``...), with how many logical CPUs share each."""
    out: dict[str, Any] = {}
    for d in sorted(glob.glob("/sys/devices/system/cpu/cpu0/cache/index[0-9]*")):
        level, kind, size = _read(f"{d}/level"), _read(f"{d}/type"), _read(f"{d}/size")
        if not (level and size):
            continue
        suffix = {"Data": "d", "Instruction": "i"}.get(kind or "", "")
        shared = _read(f"{d}/shared_cpu_list")
        out[f"L{level}{suffix}"] = {"size": size, "shared_cpu_list": shared}
    return out


def _cpuinfo_facts() -> dict[str, Any]:
    """The slow part (py-cpuinfo runs CPUID in a child process): brand, vendor, family/model, flags, caches."""
    try:
        import cpuinfo

        info = cpuinfo.get_cpu_info()
    except Exception as e:  # noqa: BLE001 - metadata must never stop a benchmark
        info = {"error": f"py-cpuinfo failed: {e}"}
    caches = _sysfs_caches()
    if not caches:
        caches = {k: info[k] for k in ("l1_data_cache_size", "l2_cache_size", "l3_cache_size") if k in info}
    return {
        "cpu_brand": info.get("brand_raw") or cheap_brand(),
        "cpu_vendor": info.get("vendor_id_raw") or next((c.get("vendor_id") for c in _proc_cpuinfo()), None),
        "cpu_family": info.get("family"),
        "cpu_model": info.get("model"),
        "cpu_stepping": info.get("stepping"),
        "cpu_hz_advertised": (info.get("hz_advertised") or [None])[0],
        "caches": caches,
        "_cpuinfo_flags": info.get("flags") or [],
    }


def _os_name() -> str:
    text = _read("/etc/os-release") or ""
    m = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', text, re.M)
    return m.group(1) if m else f"{platform.system()} {platform.release()}"


def governor() -> str | None:
    """The cpufreq governor of cpu0 (``performance``, ``powersave``, ...); None in VMs without cpufreq."""
    return _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


def speed_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment variables that change this host's speed, by allowlist (:func:`hostfacts.speed_env`)."""
    return hostfacts.speed_env(environ)


# nvidia-smi's query for host.json's GPUs; the fixture tests/fixtures/nvidia-smi/*.csv is this query's output.
def onednn_state(flags: list[str], environ: dict[str, str] | None = None, machine: str | None = None) -> dict[str, Any]:
    """Whether TensorFlow's oneDNN ops are on (see :func:`tf_cnn_benchmarks.hostfacts.onednn_default`)."""
    return hostfacts.onednn_default(flags, environ, machine)


# Bumped when the probe learns something new, so a host.json written before is probed again once.
_TF_PROBE_VERSION = 2
_TF_PROBE = r"""
import json, sys
out = {}
try:
    import tensorflow as tf
    out["tf_version"] = tf.__version__
    try:
        out["build_info"] = {k: (v if isinstance(v, (bool, int, float, str)) else str(v))
                             for k, v in dict(tf.sysconfig.get_build_info()).items()}
    except Exception as e:
        out["build_info"] = {"error": str(e)}
    try:
        from tensorflow.python.util import _pywrap_util_port as port
        out["onednn_enabled_tf"] = bool(port.IsMklEnabled())
    except Exception:
        out["onednn_enabled_tf"] = None
    try:
        out["gpus_visible"] = [
            {"name": g.name, **{k: (list(v) if isinstance(v, tuple) else v)
                                for k, v in tf.config.experimental.get_device_details(g).items()}}
            for g in tf.config.list_physical_devices("GPU")]
    except Exception as e:
        out["gpus_visible"] = {"error": f"{type(e).__name__}: {e}"}
    out["compiler"] = getattr(tf.version, "COMPILER_VERSION", None)
    out["git_version"] = getattr(tf.version, "GIT_VERSION", None)
except Exception as e:
    out["error"] = f"{type(e).__name__}: {e}"
print("CPUBENCH_TF_PROBE " + json.dumps(out))
"""


def tf_version_installed() -> str | None:
    """The installed TensorFlow version from package metadata (no import, milliseconds)."""
    from importlib import metadata

    for dist in ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tf-nightly", "tensorflow-macos"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def torch_version_installed() -> str | None:
    """The installed torch version from package metadata (no import), or None without the torch extra."""
    from importlib import metadata

    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


_TORCH_PROBE = r"""
import json
out = {}
try:
    import torch
    out["torch_version"] = torch.__version__
    out["intra_threads"] = torch.get_num_threads()
    out["interop_threads"] = torch.get_num_interop_threads()
    out["mkldnn_available"] = bool(torch.backends.mkldnn.is_available())
    out["mkl_available"] = bool(torch.backends.mkl.is_available())
    out["openmp_available"] = bool(torch.backends.openmp.is_available())
    out["parallel_info"] = torch.__config__.parallel_info()
    out["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    for line in out["parallel_info"].splitlines():
        if "MKL-DNN" in line or "oneDNN" in line:
            out["onednn"] = line.strip()
        if line.strip().startswith("ATen parallel backend:"):
            out["parallel_backend"] = line.split(":", 1)[1].strip()
    try:
        import threadpoolctl
        out["threadpools"] = [{k: v for k, v in p.items() if k in ("user_api", "internal_api", "prefix", "version",
                                                                   "num_threads", "threading_layer")}
                              for p in threadpoolctl.threadpool_info()]
    except Exception as e:
        out["threadpools"] = {"error": f"{type(e).__name__}: {e}"}
except Exception as e:
    out["error"] = f"{type(e).__name__}: {e}"
print("CPUBENCH_TORCH_PROBE " + json.dumps(out))
"""


def probe_torch(python: str | None = None, timeout: float = 300) -> dict[str, Any]:
    """Import torch in a child process (as the engine sees it): its version, pool sizes, oneDNN and OpenMP build
    facts, and the OpenMP/BLAS pools threadpoolctl finds loaded beside it."""
    info, _stderr = _probe(_TORCH_PROBE, "CPUBENCH_TORCH_PROBE", "torch", python, timeout)
    return info


def _probe(code: str, marker: str, what: str, python: str | None, timeout: float) -> tuple[dict[str, Any], str]:
    """Run a probe script in a child Python; its JSON line (after ``marker``) and its stderr, or an error."""
    try:
        proc = subprocess.run([python or sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as e:
        return {"error": f"{what} probe failed: {e}"}, ""
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(marker + " ")), None)
    if line is None:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"{what} probe exited {proc.returncode}: {tail[:300]}"}, proc.stderr
    return json.loads(line.split(" ", 1)[1]), proc.stderr


def probe_tensorflow(python: str | None = None, timeout: float = 300) -> dict[str, Any]:
    """Import TensorFlow in a child process and report its build; its startup log says whether oneDNN is on."""
    if os.environ.get(NO_TF_PROBE_ENV):
        return {"skipped": f"{NO_TF_PROBE_ENV} is set"}
    info, stderr = _probe(_TF_PROBE, "CPUBENCH_TF_PROBE", "TensorFlow", python, timeout)
    if "error" in info:
        return info
    if "oneDNN custom operations are on" in stderr:
        info["onednn_log"] = "on"
    elif info.get("tf_version"):
        info["onednn_log"] = "no oneDNN message"
    return info


def collect_host(
    host_id: str, previous: HostRecord | None = None, python: str | None = None, probe_tf: bool = True
) -> HostRecord:
    """This machine's host record; the slow parts (py-cpuinfo, TensorFlow probe) come from ``previous`` when it was
    written by this same machine (and, for TensorFlow, the same version, Python and oneDNN env)."""
    fp = machine_fingerprint()
    same_machine = previous is not None and previous.machine_fingerprint == fp
    if previous is not None and same_machine and all(previous.has(k) for k in _CPUINFO_KEYS):
        cpu = {k: getattr(previous, k) for k in _CPUINFO_KEYS}
        cpu_flags = list(previous.cpu_flags_of_interest or [])
    else:
        facts = _cpuinfo_facts()
        cpu_flags = _flags_of_interest(facts.pop("_cpuinfo_flags"))
        cpu = facts
    env = speed_env()
    tf_installed = tf_version_installed()
    tf_key = {
        "probe": _TF_PROBE_VERSION,
        "tf_version": tf_installed,
        "python": python or sys.executable,
        "onednn_env": env.get("TF_ENABLE_ONEDNN_OPTS"),
    }
    prev_build = (previous.tf_build if previous else None) or {}
    if same_machine and prev_build.get("probe_key") == tf_key and "error" not in prev_build.get("probe", {}):
        probe = prev_build["probe"]
    elif probe_tf:
        probe = probe_tensorflow(python)
    else:
        probe = {"skipped": "not requested"}
    torch_installed = torch_version_installed()
    torch_key = {"torch_version": torch_installed, "python": python or sys.executable}
    prev_torch = (previous.torch_build if previous else None) or {}
    if torch_installed is None:
        torch_probe: dict[str, Any] | None = None
    elif same_machine and prev_torch.get("probe_key") == torch_key and "error" not in prev_torch.get("probe", {}):
        torch_probe = prev_torch["probe"]
    elif probe_tf and not os.environ.get(NO_TF_PROBE_ENV):
        torch_probe = probe_torch(python)
    else:
        torch_probe = {"skipped": "not requested"}
    gpu_rows, gpu_why = nvidia_smi()
    onednn = onednn_state(cpu_flags)
    # What TensorFlow itself says beats the deduction from flags and env.
    if isinstance(probe.get("onednn_enabled_tf"), bool):
        onednn = {
            **onednn,
            "deduced": onednn["enabled"],
            "enabled": probe["onednn_enabled_tf"],
            "confirmed_by": "TensorFlow IsMklEnabled() in a child process",
        }
    elif probe.get("onednn_log") == "on":
        onednn = {**onednn, "deduced": onednn["enabled"], "enabled": True, "confirmed_by": "TensorFlow startup log"}
    host = {
        "schema": HOST_SCHEMA,
        "host_id": host_id,
        **cpu,
        "cpu_flags_of_interest": cpu_flags,
        **_topology(),
        "memory_bytes": memory_bytes(),
        "kernel": platform.release(),
        "os": _os_name(),
        "arch": platform.machine(),
        "hostname": platform.node(),
        "governor": governor(),
        "tf_version": probe.get("tf_version") or tf_installed,
        "tf_build": {"onednn": onednn, "probe": probe, "probe_key": tf_key},
        "torch_version": torch_installed,
        "torch_build": None if torch_probe is None else {"probe": torch_probe, "probe_key": torch_key},
        "python": platform.python_version(),
        "python_executable": python or sys.executable,
        "gpus": gpu_rows,
        "gpu": gpu_facts(gpu_rows, gpu_why, probe),
        "tf_install": tf_install(),
        "env": env,
        "machine_fingerprint": fp,
        "collected": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpubench_version": __version__,
    }
    # Through the one reader: what is written is what it accepts, and every field collected as None is known
    # empty (written as null), as host.json always said it.
    return HostRecord.from_dict(host)


def main() -> int:
    """``python -m cpubench.host.facts``: print this host's record under its plain short name (no folder read, no
    file written; ``cpubench run`` picks the id against the results folder)."""
    t0 = time.monotonic()
    host = collect_host(short_cpu_name(cheap_brand()))
    print(json.dumps(host.to_dict(), indent=2, sort_keys=True))
    print(f"collected in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
