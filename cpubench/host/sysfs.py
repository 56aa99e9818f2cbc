"""The kernel's own descriptions of a Linux host's CPUs, read as they are: CPU lists (``0-3,8-11``) and the sysfs files
under ``/sys/devices/system/{cpu,node}`` that :class:`cpubench.host.topology.Topology` is built from.

Why apart from the topology: these readers only read and check files (every inconsistency is a
:class:`TopologyError` naming the file, so the host can be fixed), while the topology decides what a process may use
and where a placement puts a run. The layout is the kernel's ``Documentation/admin-guide/cputopology.rst`` and
``Documentation/ABI/stable/sysfs-devices-node``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

# Newer kernels name the SMT sibling list core_cpus_list; thread_siblings_list is the older name of the same list.
_SIBLING_FILES = ("core_cpus_list", "thread_siblings_list")
_CPU_DIR = re.compile(r"cpu([0-9]+)")
_NODE_DIR = re.compile(r"node([0-9]+)")
_RANGE = re.compile(r"([0-9]+)(?:-([0-9]+))?")


class TopologyError(Exception):
    """sysfs is missing, unreadable or contradicts itself; the message names the file so the host can be fixed,
    because guessing would pin a run to the wrong cores without anyone noticing."""


# ---------------------------------------------------------------------------------------------------------------
# Kernel CPU lists


def parse_cpulist(text: str) -> list[int]:
    """The sorted, distinct numbers of a kernel list such as ``0-3,8-11,16`` (the format of ``cpu/online``,
    ``cpulist`` and ``*_list`` files); an empty or blank text is the empty list.

    Raises ValueError on anything else, so a mangled file is never read as fewer CPUs.
    """
    text = text.strip()
    if not text:
        return []
    numbers: set[int] = set()
    for part in text.split(","):
        m = _RANGE.fullmatch(part.strip())
        if m is None:
            raise ValueError(f"bad CPU list {text!r}: {part!r} is not N or N-M")
        low = int(m[1])
        high = int(m[2]) if m[2] is not None else low
        if high < low:
            raise ValueError(f"bad CPU list {text!r}: the range {part!r} runs backwards")
        numbers.update(range(low, high + 1))
    return sorted(numbers)


def format_cpulist(cpus: Iterable[int]) -> str:
    """The kernel's list form of ``cpus`` (``0-3,8-11,16``), the inverse of :func:`parse_cpulist`; runs of two or
    more consecutive numbers become ranges as the kernel writes them, so the text can go to taskset or numactl."""
    ordered = sorted(set(cpus))
    if ordered and ordered[0] < 0:
        raise ValueError(f"negative CPU number {ordered[0]}")
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


# ---------------------------------------------------------------------------------------------------------------
# Reading sysfs


def read_file(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as e:
        raise TopologyError(f"cannot read {path}: {e.strerror or e}") from e


def read_list(path: Path) -> list[int]:
    try:
        return parse_cpulist(read_file(path))
    except ValueError as e:
        raise TopologyError(f"{path}: {e}") from e


def read_int(path: Path) -> int:
    text = read_file(path).strip()
    try:
        return int(text)
    except ValueError as e:
        raise TopologyError(f"{path}: {text!r} is not a number") from e


def online_cpus(cpu_dir: Path) -> list[int]:
    """``cpu/online``, or else the ``cpuN`` folders whose own ``online`` file is not ``0`` (cpu0 often has none)."""
    online = cpu_dir / "online"
    if online.exists():
        cpus = read_list(online)
        if not cpus:
            raise TopologyError(f"{online}: lists no CPU")
        return cpus
    folders: list[int] = []
    if cpu_dir.is_dir():
        folders = sorted(int(m[1]) for d in cpu_dir.iterdir() if (m := _CPU_DIR.fullmatch(d.name)) and d.is_dir())
    if not folders:
        raise TopologyError(f"cannot read {online}: it is missing and {cpu_dir} has no cpuN folders")
    cpus = [
        n for n in folders if not (cpu_dir / f"cpu{n}" / "online").exists() or read_int(cpu_dir / f"cpu{n}" / "online")
    ]
    if not cpus:
        raise TopologyError(f"{cpu_dir}: every cpuN/online says 0")
    return cpus


def read_cores(cpu_dir: Path, cpus: list[int]) -> tuple[dict[int, list[tuple[int, ...]]], bool]:
    """Socket id -> its physical cores (each the sorted tuple of its online SMT siblings, cores ordered by their
    first sibling), and whether that was assumed because no CPU has topology files.

    A core is its sibling list rather than its ``core_id``: core ids repeat across clusters on some Arm hosts, while
    the sibling list names exactly the CPUs that share a core. ``core_id`` groups CPUs only on kernels old enough to
    have no sibling list.
    """
    if not any((cpu_dir / f"cpu{c}" / "topology" / "physical_package_id").exists() for c in cpus):
        return {0: [(c,) for c in cpus]}, True
    online = set(cpus)
    package: dict[int, int] = {}
    core: dict[int, tuple[int, ...]] = {}
    source: dict[int, Path] = {}
    by_core_id: dict[tuple[int, int], list[int]] = {}
    for c in cpus:
        tdir = cpu_dir / f"cpu{c}" / "topology"
        package[c] = read_int(tdir / "physical_package_id")
        path = next((tdir / name for name in _SIBLING_FILES if (tdir / name).exists()), None)
        if path is None:
            source[c] = tdir / "core_id"
            by_core_id.setdefault((package[c], read_int(source[c])), []).append(c)
            continue
        siblings = tuple(s for s in read_list(path) if s in online)
        if c not in siblings:
            raise TopologyError(f"{path}: lists {format_cpulist(siblings) or 'nothing'}, not CPU {c} itself")
        core[c], source[c] = siblings, path
    for group in by_core_id.values():
        for c in group:
            core[c] = tuple(group)
    # Each CPU's list must be the same as that of every CPU it names, or the cores would overlap.
    for c, siblings in core.items():
        for other in siblings:
            if core[other] != siblings:
                raise TopologyError(
                    f"{source[c]} says CPU {other} shares a core with CPUs {format_cpulist(siblings)}, "
                    f"{source[other]} says {format_cpulist(core[other])}"
                )
            if package[other] != package[c]:
                raise TopologyError(
                    f"CPUs {c} and {other} share a core but not a physical_package_id "
                    f"({package[c]} and {package[other]}, under {cpu_dir})"
                )
    sockets: dict[int, list[tuple[int, ...]]] = {}
    for siblings in sorted(set(core.values())):
        sockets.setdefault(package[siblings[0]], []).append(siblings)
    return dict(sorted(sockets.items())), False


def read_nodes(
    node_dir: Path, cpus: list[int]
) -> tuple[list[int], list[tuple[int, ...]], list[tuple[int, ...] | None], list[int]]:
    """Nodes, their online CPUs, their distance rows (None where the file is missing) and the nodes with memory.

    A host without ``node/`` (kernels built without NUMA, some VMs) is one node 0 holding every CPU.
    """
    folders: list[int] = []
    if node_dir.is_dir():
        folders = sorted(int(m[1]) for d in node_dir.iterdir() if (m := _NODE_DIR.fullmatch(d.name)) and d.is_dir())
    if not folders:
        return [0], [tuple(cpus)], [None], [0]
    online = set(cpus)
    node_cpus = [tuple(c for c in read_list(node_dir / f"node{n}" / "cpulist") if c in online) for n in folders]
    seen: dict[int, int] = {}
    for n, members in zip(folders, node_cpus, strict=True):
        for c in members:
            if c in seen:
                raise TopologyError(f"{node_dir}: CPU {c} is in both node{seen[c]}/cpulist and node{n}/cpulist")
            seen[c] = n
    if missing := sorted(online - set(seen)):
        raise TopologyError(f"{node_dir}: CPUs {format_cpulist(missing)} are in no nodeN/cpulist")
    distances: list[tuple[int, ...] | None] = []
    for n in folders:
        path = node_dir / f"node{n}" / "distance"
        if not path.exists():
            distances.append(None)
            continue
        text = read_file(path)
        try:
            row = tuple(int(v) for v in text.split())
        except ValueError as e:
            raise TopologyError(f"{path}: {text.strip()!r} is not a row of numbers") from e
        if len(row) != len(folders):
            raise TopologyError(f"{path}: {len(row)} distances for {len(folders)} nodes ({format_cpulist(folders)})")
        distances.append(row)
    has_memory = node_dir / "has_memory"
    with_memory = [n for n in read_list(has_memory) if n in folders] if has_memory.exists() else folders
    return folders, node_cpus, distances, with_memory
