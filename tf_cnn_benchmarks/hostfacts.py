"""Facts about the process and the machine it runs on, read from ``/proc`` and ``/sys`` (no TensorFlow import).

Why here, in the engine package: the engine reports from inside the child what it ran under (the CPUs it could use,
its memory policy, the thread variables it saw), and the suite (``cpubench``) needs the same readings for the host's
metadata and the runner's checks. ``cpubench`` imports these; the engine never imports ``cpubench``.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import platform
import re
import resource
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# What of the environment is ever recorded: an allowlist, never a prefix (a prefix let Terraform's TF_TOKEN_<host> and
# TF_VAR_<secret> into results folders people share). Thread pools (OpenMP, oneDNN/MKL, OpenBLAS, TensorFlow's own),
# by closed patterns; each family's names are upper-case words, so a pattern cannot reach into another tool's.
_THREAD_ENV = re.compile(
    r"^(?:OMP_[A-Z_]+|KMP_[A-Z_]+|GOMP_[A-Z_]+|MKL_[A-Z_]+|OPENBLAS_[A-Z0-9_]+|ONEDNN_[A-Z_]+|DNNL_[A-Z_]+"
    r"|TF_(?:ENABLE|ONEDNN|MKL|NUM|XLA|CPU|GPU|CUDNN|FORCE|DETERMINISTIC|AUTO_MIXED|USE|DISABLE|INTRA|INTER)_[A-Z_]+"
    r"|TF_XLA_FLAGS)$"
)
# Beyond threads, what else changes a run's speed and is recorded per host: allocators, PyTorch's runtime, devices.
_SPEED_ENV = re.compile(
    r"^(?:MALLOC_[A-Z_]+|LD_PRELOAD|TCMALLOC_[A-Z_]+|MALLOC_CONF|JEMALLOC_[A-Z_]+|XLA_FLAGS|CUDA_VISIBLE_DEVICES"
    r"|NCCL_[A-Z_]+|TORCH_(?:NUM_THREADS|CPP_[A-Z_]+|COMPILE_[A-Z_]+)|BLIS_NUM_THREADS|VECLIB_MAXIMUM_THREADS"
    r"|NUMEXPR_[A-Z_]+)$"
)
# A name that says it holds a credential is never recorded, whatever pattern it matches.
_SECRET = re.compile(
    r"TOKEN|SECRET|PASSW|PWD|PASSPHRASE|CRED|KEY|AUTH|COOKIE|SESSION|PRIVATE|CERT|JWT|SAS|BEARER|SIGNATURE", re.I
)
# Of the thread variables, the ones that *limit or pin* threads: a sweep started from a shell with OMP_NUM_THREADS=1
# must not silently measure one thread. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are kernel choices some hosts need to
# avoid crashes in older OpenBLAS builds: those pass through.
_THREAD_LIMITING = re.compile(
    r"^(OMP_\w+|KMP_\w+|GOMP_\w+|MKL_NUM_THREADS|MKL_DYNAMIC|MKL_DOMAIN_NUM_THREADS|OPENBLAS_NUM_THREADS"
    r"|BLIS_NUM_THREADS|VECLIB_MAXIMUM_THREADS|NUMEXPR_NUM_THREADS|TF_NUM_INTRAOP_THREADS|TF_NUM_INTEROP_THREADS)$"
)


def is_secret(name: str) -> bool:
    """A variable whose name says it holds a credential (token, secret, password, key...): never recorded."""
    return bool(_SECRET.search(name))


def is_thread_setting(name: str) -> bool:
    """A variable that sizes or places a thread pool (``OMP_NUM_THREADS``, ``TF_ENABLE_ONEDNN_OPTS``...)."""
    return bool(_THREAD_ENV.match(name)) and not is_secret(name)


def is_speed_setting(name: str) -> bool:
    """A variable recorded in ``host.json``: a thread setting, an allocator's, PyTorch's runtime, the devices."""
    return (bool(_THREAD_ENV.match(name)) or bool(_SPEED_ENV.match(name))) and not is_secret(name)


def read_text(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def cpu_flags() -> list[str]:
    """The first CPU's feature flags from ``/proc/cpuinfo`` (``flags`` on x86, ``Features`` on Arm); [] off Linux."""
    for line in (read_text("/proc/cpuinfo") or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return value.split()
    return []


def native_bf16(flags: list[str] | None = None) -> bool:
    """Whether the CPU computes bfloat16 natively (AVX512_BF16 or AMX on x86, BF16 on Arm); unknown (no flags)
    counts as native."""
    flags = cpu_flags() if flags is None else flags
    return not flags or bool({"avx512_bf16", "amx_bf16", "bf16"} & set(flags))


def onednn_default(
    flags: list[str], environ: dict[str, str] | None = None, machine: str | None = None
) -> dict[str, Any]:
    """Whether TensorFlow's oneDNN ops are on, from ``TF_ENABLE_ONEDNN_OPTS`` or, unset, TensorFlow's default.

    TF 2.9+ on Linux x86 turns oneDNN on by default only on CPUs with AVX512_VNNI, AVX512_BF16 or AMX (Cascade
    Lake and newer); on Linux aarch64 it is on by default. ``TF_ENABLE_ONEDNN_OPTS=0|1`` overrides both.
    """
    env = os.environ if environ is None else environ
    raw = env.get("TF_ENABLE_ONEDNN_OPTS")
    machine = (machine or platform.machine()).lower()
    if raw is not None and raw.strip().lower() in ("0", "1", "true", "false"):
        return {"enabled": raw.strip().lower() in ("1", "true"), "source": "env", "env": raw}
    if machine in ("x86_64", "amd64"):
        trigger = sorted(f for f in flags if f in ("avx512_vnni", "avx512vnni", "avx512_bf16", "amx_bf16", "amx_tile"))
        why = f"x86 default: on with {', '.join(trigger)}" if trigger else "x86 default: off (no AVX512_VNNI/BF16/AMX)"
        return {"enabled": bool(trigger), "source": why, "env": raw}
    if machine in ("aarch64", "arm64"):
        return {"enabled": True, "source": "aarch64 default: on", "env": raw}
    return {"enabled": None, "source": f"unknown default on {machine}", "env": raw}


def available_memory() -> int | None:
    """Bytes this process can still allocate: MemAvailable, capped by an address-space limit (``ulimit -v``)."""
    avail = None
    m = re.search(r"^MemAvailable:\s+(\d+) kB", read_text("/proc/meminfo") or "", re.M)
    if m:
        avail = int(m.group(1)) * 1024
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        vm = re.search(r"^VmSize:\s+(\d+) kB", read_text("/proc/self/status") or "", re.M)
        if vm:
            left = max(0, soft - int(vm.group(1)) * 1024)
            avail = left if avail is None else min(avail, left)
    return avail


def schedulable_cpus() -> list[int]:
    """The logical CPUs this process may run on (its affinity mask), sorted."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


_MPOL_MODES = {0: "default", 1: "preferred", 2: "bind", 3: "interleave", 4: "local", 5: "preferred_many",
               6: "weighted_interleave"}  # fmt: skip
_SYS_GET_MEMPOLICY = {"x86_64": 239, "aarch64": 236}


def memory_policy() -> dict[str, Any]:
    """This process's NUMA memory policy: ``get_mempolicy(2)`` mode and nodes, and the nodes it may allocate on.

    Read through the raw system call (libc has no wrapper; libnuma may be absent) and ``/proc/self/status``, so a
    child bound with ``numactl --membind`` or ``set_mempolicy`` reports what it really got.
    """
    status = read_text("/proc/self/status") or ""
    m = re.search(r"^Mems_allowed_list:\s*(\S+)", status, re.M)
    out: dict[str, Any] = {"mode": None, "nodes": [], "mems_allowed": m.group(1) if m else None}
    number = _SYS_GET_MEMPOLICY.get(platform.machine())
    if number is None:
        return out
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        mode = ctypes.c_int(0)
        mask = (ctypes.c_ulong * 16)()
        maxnode = ctypes.sizeof(mask) * 8
        if libc.syscall(number, ctypes.byref(mode), mask, ctypes.c_ulong(maxnode), None, ctypes.c_ulong(0)) != 0:
            return out
    except (OSError, AttributeError):
        return out
    bits = ctypes.sizeof(ctypes.c_ulong) * 8
    out["mode"] = _MPOL_MODES.get(mode.value & 0xFF, str(mode.value))
    out["nodes"] = [w * bits + b for w, word in enumerate(mask) for b in range(bits) if word >> b & 1]
    return out


_SYS_SET_MEMPOLICY = {"x86_64": 238, "aarch64": 237}
_MPOL_BIND = 2


def bind_memory(nodes: list[int]) -> None:
    """Bind this process's future allocations to NUMA ``nodes`` (``set_mempolicy(MPOL_BIND)``; children inherit it).

    The raw system call, so no libnuma or ``numactl`` is needed; raises OSError when the kernel refuses.
    """
    number = _SYS_SET_MEMPOLICY.get(platform.machine())
    if number is None:
        raise OSError(f"set_mempolicy: unknown system call number on {platform.machine()}")
    bits = ctypes.sizeof(ctypes.c_ulong) * 8
    mask = (ctypes.c_ulong * 16)()
    for n in nodes:
        mask[n // bits] |= 1 << (n % bits)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(number, ctypes.c_int(_MPOL_BIND), mask, ctypes.c_ulong(ctypes.sizeof(mask) * 8 + 1)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"set_mempolicy(MPOL_BIND, nodes {nodes}): {os.strerror(err)}")


_PR_SET_PDEATHSIG = 1


def tie_to_parent(
    parent: int, cpus: Sequence[int] | None = None, membind: Sequence[int] | None = None
) -> Callable[[], None]:
    """A ``preexec_fn`` run in a child before exec: die with the process that started it (Linux), run only on
    ``cpus`` and allocate only on NUMA nodes ``membind`` when given.

    Why every measuring child has it: a child left running by a parent killed with ``kill -9`` (an engine, a GEMM or
    triad probe) keeps every core busy, and the next sweep's figures, limits included, would be read against it."""
    prctl = None
    if sys.platform.startswith("linux"):
        try:
            prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            prctl = None

    def setup() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)
        if cpus:
            os.sched_setaffinity(0, set(cpus))
        if membind:
            bind_memory(list(membind))

    return setup


def is_thread_limiting(name: str) -> bool:
    """A variable that limits or pins threads (``OMP_NUM_THREADS``, ``KMP_AFFINITY``...); never one whose name says
    it holds a credential (it is passed on untouched and never named in a record)."""
    return bool(_THREAD_LIMITING.match(name)) and not is_secret(name)


def thread_env(environ: dict[str, str] | os._Environ[str] | None = None) -> dict[str, str]:
    """The thread settings of an environment (:func:`is_thread_setting`), sorted; nothing else of it."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in sorted(env.items()) if is_thread_setting(k)}


def speed_env(environ: dict[str, str] | os._Environ[str] | None = None) -> dict[str, str]:
    """The variables that change a host's speed (:func:`is_speed_setting`), sorted; nothing else of it."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in sorted(env.items()) if is_speed_setting(k)}


def first_line(text: object, limit: int = 300) -> str:
    """The first non-empty line of an error (or any text), at most ``limit`` characters."""
    if isinstance(text, BaseException):
        lines = str(text).strip().splitlines()
        body = lines[0].strip() if lines else ""
        s = f"{type(text).__name__}: {body}" if body else type(text).__name__
    else:
        s = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    return s if len(s) <= limit else s[: limit - 3] + "..."


def file_mode() -> int:
    """The mode a new file gets under this process's umask (``0o644`` under the usual 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_text(target: str | os.PathLike[str], text: str) -> None:
    """Write a UTF-8 text file whole or not at all (:func:`atomic_write_bytes`)."""
    atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Write a file whole or not at all: a temporary file beside it, fsynced, renamed over it (so a link left at
    ``target`` is replaced, never written through).

    The file gets the mode a plain ``open()`` would give it (``mkstemp`` alone makes 0600, which hides result files
    from the other users of a shared results folder).
    """
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def finite(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null (a diverged loss must not make a record unwritable)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def atomic_write_json(target: str | os.PathLike[str], data: Any, indent: int | None = 1) -> None:
    """JSON written with :func:`atomic_write_text`; NaN and infinity become null."""
    text = json.dumps(finite(data), indent=indent, sort_keys=True, allow_nan=False, default=str)
    atomic_write_text(target, text + "\n")


# ------------------------------------------------------------------------------------------------------- noise

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_busy_seconds() -> float | None:
    """CPU seconds every process on the machine has used since boot (``/proc/stat``: user, nice, system, irq,
    softirq, steal), or None off Linux."""
    line = (read_text("/proc/stat") or "").split("\n", 1)[0].split()
    if len(line) < 9 or line[0] != "cpu":
        return None
    v = [int(x) for x in line[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / _CLK_TCK


def cpu_freq_mhz() -> float | None:
    """The mean current frequency of the logical CPUs (cpufreq in sysfs, else ``/proc/cpuinfo``), or None."""
    khz = []
    for i in range(os.cpu_count() or 1):
        t = read_text(f"/sys/devices/system/cpu/cpu{i}/cpufreq/scaling_cur_freq")
        if t and t.isdigit():
            khz.append(int(t))
    if khz:
        return round(sum(khz) / len(khz) / 1000.0, 1)
    mhz = [float(m) for m in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", read_text("/proc/cpuinfo") or "", re.M)]
    return round(sum(mhz) / len(mhz), 1) if mhz else None


@dataclass(frozen=True)
class CpuSnapshot:
    """The machine's and this process's CPU time at one moment, to tell later how much others used meanwhile."""

    wall: float
    busy: float | None  # machine-wide CPU seconds (every process)
    own: float  # this process's CPU seconds (all its threads)
    freq_mhz: float | None

    @classmethod
    def take(cls) -> CpuSnapshot:
        return cls(time.perf_counter(), cpu_busy_seconds(), time.process_time(), cpu_freq_mhz())


def noise_between(start: CpuSnapshot, end: CpuSnapshot) -> dict[str, Any]:
    """What other processes used between two snapshots: CPU seconds, and their share of the machine's capacity;
    this process's own CPU seconds and share (``own_cpu_*``), and the whole host's utilisation (``host_cpu_pct``).

    ``/proc/stat`` counts in clock ticks (10 ms), so a short window cannot tell a few percent: ``resolution_pct``
    is that uncertainty (one tick per CPU at each end), and only a share above it says something.
    """
    window = max(0.0, end.wall - start.wall)
    cpus = os.cpu_count() or 1
    out: dict[str, Any] = {"window_s": round(window, 4), "cpus": cpus, "freq_mhz": [start.freq_mhz, end.freq_mhz]}
    own = max(0.0, end.own - start.own)
    if window > 0:
        # This process's own share (its every thread: compute and input pipeline alike), readable without /proc.
        out.update(own_cpu_s=round(own, 4), own_cpu_pct=round(100.0 * own / (window * cpus), 2))
    if start.busy is None or end.busy is None or window <= 0:
        return {**out, "foreign_cpu_s": None, "foreign_cpu_pct": None, "resolution_pct": None, "host_cpu_pct": None}
    busy = max(0.0, end.busy - start.busy)
    foreign = max(0.0, busy - own)
    capacity = window * cpus
    return {
        **out,
        "foreign_cpu_s": round(foreign, 4),
        "foreign_cpu_pct": round(100.0 * foreign / capacity, 2),
        "resolution_pct": round(100.0 * 2 * cpus / _CLK_TCK / capacity, 2),
        # The host CPU's utilisation over the window (every process): with a GPU computing, how busy the CPU that
        # feeds it was, the other half of an input-bound verdict (cpubench.analysis.inputbound).
        "host_cpu_pct": round(min(100.0, 100.0 * busy / capacity), 2),
    }


# ------------------------------------------------------------------------------------------------------ energy

POWERCAP_ENV = "CPUBENCH_POWERCAP_ROOT"  # another powercap tree (tests point it at a fake one)
POWERCAP_ROOT = "/sys/class/powercap"


@dataclass(frozen=True)
class EnergyReading:
    """The RAPL energy counters of the CPU packages at one moment (microjoules, and each counter's wrap-around
    range), or why there are none (``na``)."""

    wall: float
    zones: dict[str, tuple[int, int]]  # zone name -> (energy_uj, max_energy_range_uj)
    na: str | None = None

    @classmethod
    def take(cls) -> EnergyReading:
        return read_energy()


# A counter file holds at most 20 digits (the kernel's u64) and a newline; a zone's name a few words. What is longer is
# not a powercap file (a tree someone pointed CPUBENCH_POWERCAP_ROOT at, a file replaced by hand).
_COUNTER_MAX_BYTES = 64
_COUNTER = re.compile(r"[0-9]{1,20}")
# A package drawing more than this over a window is a counter that went backwards (reset, or another reading), not one
# that wrapped round: the wrap's arithmetic would count it as most of the counter's range (hundreds of kilojoules).
MAX_PACKAGE_WATTS = 2000.0


class _NotACounter(ValueError):
    """A powercap file that is not what the kernel writes there: the message says what it is instead."""


def _read_small(path: Path) -> str:
    """A sysfs attribute's text, read without following it anywhere it could hang or grow: opened non-blocking (a
    FIFO put in its place would block the open), refused unless a regular file (``/dev/zero`` or a terminal linked
    there reads forever), and at most :data:`_COUNTER_MAX_BYTES` bytes. OSError (PermissionError: root only) as
    ``open`` raises it; :class:`_NotACounter` for anything else."""
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _NotACounter("is not a regular file (a powercap counter is)")
        data = os.read(fd, _COUNTER_MAX_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > _COUNTER_MAX_BYTES:
        raise _NotACounter(f"is longer than {_COUNTER_MAX_BYTES} bytes: not a counter")
    try:
        return data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise _NotACounter("is not ASCII text: not a counter") from None


def _read_counter(path: Path) -> int:
    """A counter in microjoules: the unsigned decimal the kernel writes, nothing else (no sign, no ``1_000``, no
    number past 64 bits, which no float sum could hold)."""
    text = _read_small(path)
    if not _COUNTER.fullmatch(text) or int(text) >= 2**64:
        raise _NotACounter(f"holds {text[:24]!r}, not a counter in microjoules")
    return int(text)


def read_energy(root: str | None = None) -> EnergyReading:
    """Read every top-level RAPL zone (``intel-rapl:N``: a package, whose sub-zones ``intel-rapl:N:M`` it already
    counts; AMD's kernels expose theirs under the same name) under ``root`` (``$CPUBENCH_POWERCAP_ROOT``, else
    ``/sys/class/powercap``). Why only packages: summing sub-zones would count their energy twice.

    Each counter must be what the kernel writes: an unsigned decimal within its wrap-around range, which must be
    above 0 (a counter whose range is 0 cannot be told wrapped from reset); anything else makes the reading n/a
    with the file and what it holds, so no figure comes from it."""
    base = Path(root or os.environ.get(POWERCAP_ENV) or POWERCAP_ROOT)
    now = time.perf_counter()
    try:
        entries = sorted(p for p in base.iterdir() if re.fullmatch(r"intel-rapl:\d+", p.name))
    except OSError:
        return EnergyReading(now, {}, f"no {base} (the kernel exposes no powercap counters here: a VM, or not Linux)")
    if not entries:
        return EnergyReading(now, {}, f"no RAPL zone (intel-rapl:N) under {base}")
    zones: dict[str, tuple[int, int]] = {}
    seen: set[str] = set()
    for p in entries:
        real = os.path.realpath(p)  # sysfs links each zone to its device; two names for one package count it once
        if real in seen:
            continue
        seen.add(real)
        try:
            uj = _read_counter(p / "energy_uj")
        except PermissionError:
            return EnergyReading(now, {}, f"{p / 'energy_uj'} is readable by root only (Linux 5.10 and later)")
        except _NotACounter as e:
            return EnergyReading(now, {}, f"{p / 'energy_uj'} {e}")
        except OSError as e:
            return EnergyReading(now, {}, f"{p / 'energy_uj'} could not be read: {first_line(e)}")
        try:
            top = _read_counter(p / "max_energy_range_uj")
        except _NotACounter as e:
            return EnergyReading(now, {}, f"{p / 'max_energy_range_uj'} {e}")
        except OSError as e:
            return EnergyReading(now, {}, f"{p / 'max_energy_range_uj'} could not be read: {first_line(e)}")
        if top == 0:
            return EnergyReading(now, {}, f"{p / 'max_energy_range_uj'} is 0: a wrap of the counter could not be "
                                 "told from a reset")  # fmt: skip
        if uj > top:
            return EnergyReading(now, {}, f"{p / 'energy_uj'} holds {uj}, above its range {top} "
                                 "(max_energy_range_uj): not a RAPL counter")  # fmt: skip
        try:
            name = _zone_name(_read_small(p / "name")) or p.name
        except (OSError, ValueError):
            name = p.name
        zones[name if name not in zones else f"{name}-{p.name}"] = (uj, top)
    return EnergyReading(now, zones)


def _zone_name(text: str) -> str:
    """A zone's name as a record keeps it: printable ASCII words on one line (the kernel's are ``package-0``,
    ``core``, ``dram``); anything else dropped, so a tree's file cannot put markup or control characters in a
    record."""
    return re.sub(r"[^A-Za-z0-9_.:-]+", "-", " ".join(text.split()))[:32].strip("-")


def energy_between(start: EnergyReading, end: EnergyReading) -> dict[str, Any]:
    """Joules the packages used between two readings (a counter that wrapped round adds its range), or ``joules:
    null`` and why not.

    Why the power bound: two readings cannot tell a counter that wrapped from one that went backwards (a reset, a
    counter replaced); counted as a wrap, a step back reads as most of the range, hundreds of kilojoules over a
    window of seconds. A package drawing more than :data:`MAX_PACKAGE_WATTS` (over the window, or over a second
    where the window is shorter: a real wrap moves the counter by what the package used, never by its range) is
    that, and the window's energy is n/a with the zone and its two readings."""
    window = round(max(0.0, end.wall - start.wall), 4)
    na = start.na or end.na
    if na is None and set(start.zones) != set(end.zones):
        na = "the RAPL zones changed during the window"
    if na is not None:
        return {"joules": None, "na": na, "window_s": window}
    zones = {}
    for name, (a, top) in start.zones.items():
        b, end_top = end.zones[name]
        if end_top != top:
            return {"joules": None, "na": f"{name}'s max_energy_range_uj changed during the window ({top} to "
                    f"{end_top})", "window_s": window}  # fmt: skip
        delta = b - a if b >= a else b + top - a  # wrapped round once (a window is far shorter than a wrap)
        joules = delta / 1e6
        if b < a and joules > MAX_PACKAGE_WATTS * max(end.wall - start.wall, 1.0):
            return {"joules": None, "na": f"{name}'s counter went backwards ({a} to {b} uJ) over a {window:g} s "
                    "window: read as a wrap it would be more than a package draws", "window_s": window}  # fmt: skip
        zones[name] = round(joules, 4)
    return {"joules": round(sum(zones.values()), 4), "zones": zones, "window_s": window,
            "source": "RAPL powercap package zones (the whole CPU package: every process on it)"}  # fmt: skip


# --------------------------------------------------------------------------------------------------- allocator

# A shared object's file name -> the allocator it is (what `cpubench run`'s allocator axis preloads).
ALLOCATORS = (("tcmalloc", re.compile(r"libtcmalloc(?:_minimal)?(?:_debug)?\.so")),
              ("jemalloc", re.compile(r"libjemalloc\.so")))  # fmt: skip


def allocator_loaded(maps: str | None = None) -> dict[str, Any]:
    """Which memory allocator this process has mapped, read from its own memory map (``/proc/self/maps``):
    ``{"name": "tcmalloc", "library": path}``, ``{"name": "default"}`` (glibc's), or ``name: null`` where the map
    cannot be read. Why from inside: a preload that silently failed (a wrong path, a library for another
    architecture) leaves glibc's malloc in place, and the run would be recorded as the allocator it did not use."""
    text = read_text("/proc/self/maps") if maps is None else maps
    if text is None:
        return {"name": None, "why": "/proc/self/maps could not be read"}
    for line in text.splitlines():
        path = line.split(None, 5)[5].strip() if len(line.split(None, 5)) == 6 else ""
        for name, pattern in ALLOCATORS:
            if pattern.search(Path(path).name):
                return {"name": name, "library": path}
    return {"name": "default"}
