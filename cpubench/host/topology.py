"""The CPU topology of a Linux host, read from sysfs, and the CPUs and NUMA nodes that a placement uses.

Why this exists: a scaling study pins a benchmark process to exactly t physical cores and binds its memory to a NUMA
node. Which logical CPU numbers those are depends on how the kernel numbered the host (on most x86 Linux hosts CPUs
0..n-1 are one thread of each core, socket by socket, and n..2n-1 their SMT siblings, but nothing promises that), so
the core lists come from sysfs and never from arithmetic on ``os.cpu_count()``.

Placements (the definitions of Packrat's CPU scaling pages):

- ``sequential``: the first t physical cores in socket order (socket 0 fills first, then socket 1, ...);
- ``interleave``: ceil(t/2) cores on socket 0 and the rest on socket 1;
- ``none``: no pinning, every online CPU.

Each physical core gives one logical CPU, its first (lowest numbered) SMT sibling, so two threads of a run never
share a core. "Socket 0" and "socket 1" are the lowest two package ids.

Memory: ``default`` (no binding), ``local`` (the nodes holding the placement's CPUs), ``remote`` (one node holding
none of them: the nearest by the kernel's distance table; when distances tie or are unknown, the next node number
after the placement's lowest node, wrapping round).

Only files are read here; nothing is pinned or bound. The sysfs layout is the kernel's
``Documentation/admin-guide/cputopology.rst`` and ``Documentation/ABI/stable/sysfs-devices-node``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SYSFS_ROOT = "/sys/devices/system"
PLACEMENTS = ("none", "sequential", "interleave")
MEMORY_POLICIES = ("default", "local", "remote")

# Newer kernels name the SMT sibling list core_cpus_list; thread_siblings_list is the older name of the same list.
_SIBLING_FILES = ("core_cpus_list", "thread_siblings_list")
_CPU_DIR = re.compile(r"cpu([0-9]+)")
_NODE_DIR = re.compile(r"node([0-9]+)")
_RANGE = re.compile(r"([0-9]+)(?:-([0-9]+))?")


class TopologyError(Exception):
    """sysfs is missing, unreadable or contradicts itself; the message names the file so the host can be fixed,
    because guessing would pin a run to the wrong cores without anyone noticing."""


class PlacementError(ValueError):
    """A placement cannot be made as asked (more threads than it can give, an unknown name): a mistake in the
    config, told in one line so a config loader can show it as is."""


class NotApplicable(Exception):
    """The placement or memory binding means nothing on this host (``one socket``, ``one NUMA node``).

    Not an error: the report shows such a cell as ``n/a: <reason>``, so the message is the bare reason.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as e:
        raise TopologyError(f"cannot read {path}: {e.strerror or e}") from e


def _read_list(path: Path) -> list[int]:
    try:
        return parse_cpulist(_read(path))
    except ValueError as e:
        raise TopologyError(f"{path}: {e}") from e


def _read_int(path: Path) -> int:
    text = _read(path).strip()
    try:
        return int(text)
    except ValueError as e:
        raise TopologyError(f"{path}: {text!r} is not a number") from e


def _online_cpus(cpu_dir: Path) -> list[int]:
    """``cpu/online``, or else the ``cpuN`` folders whose own ``online`` file is not ``0`` (cpu0 often has none)."""
    online = cpu_dir / "online"
    if online.exists():
        cpus = _read_list(online)
        if not cpus:
            raise TopologyError(f"{online}: lists no CPU")
        return cpus
    folders: list[int] = []
    if cpu_dir.is_dir():
        folders = sorted(int(m[1]) for d in cpu_dir.iterdir() if (m := _CPU_DIR.fullmatch(d.name)) and d.is_dir())
    if not folders:
        raise TopologyError(f"cannot read {online}: it is missing and {cpu_dir} has no cpuN folders")
    cpus = [
        n for n in folders if not (cpu_dir / f"cpu{n}" / "online").exists() or _read_int(cpu_dir / f"cpu{n}" / "online")
    ]
    if not cpus:
        raise TopologyError(f"{cpu_dir}: every cpuN/online says 0")
    return cpus


def _read_cores(cpu_dir: Path, cpus: list[int]) -> tuple[dict[int, list[tuple[int, ...]]], bool]:
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
        package[c] = _read_int(tdir / "physical_package_id")
        path = next((tdir / name for name in _SIBLING_FILES if (tdir / name).exists()), None)
        if path is None:
            source[c] = tdir / "core_id"
            by_core_id.setdefault((package[c], _read_int(source[c])), []).append(c)
            continue
        siblings = tuple(s for s in _read_list(path) if s in online)
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


def _read_nodes(
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
    node_cpus = [tuple(c for c in _read_list(node_dir / f"node{n}" / "cpulist") if c in online) for n in folders]
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
        text = _read(path)
        try:
            row = tuple(int(v) for v in text.split())
        except ValueError as e:
            raise TopologyError(f"{path}: {text.strip()!r} is not a row of numbers") from e
        if len(row) != len(folders):
            raise TopologyError(f"{path}: {len(row)} distances for {len(folders)} nodes ({format_cpulist(folders)})")
        distances.append(row)
    has_memory = node_dir / "has_memory"
    with_memory = [n for n in _read_list(has_memory) if n in folders] if has_memory.exists() else folders
    return folders, node_cpus, distances, with_memory


# ---------------------------------------------------------------------------------------------------------------
# Topology


@dataclass(frozen=True)
class Topology:
    """Logical CPUs, sockets with their physical cores, and NUMA nodes of one host, as sysfs showed them.

    Fields are tuples aligned by position (``socket_cores[i]`` belongs to ``sockets[i]``, ``node_cpus[i]`` and
    ``node_distances[i]`` to ``nodes[i]``, and a distance row's columns follow ``nodes``) so the value is immutable
    and can be built by hand in a test as well as read with :meth:`read`.
    """

    cpus: tuple[int, ...]  # online logical CPUs, ascending
    sockets: tuple[int, ...]  # physical package ids, ascending
    socket_cores: tuple[tuple[tuple[int, ...], ...], ...]  # per socket: its cores, each its sorted SMT siblings
    nodes: tuple[int, ...]  # NUMA node numbers, ascending
    node_cpus: tuple[tuple[int, ...], ...]  # per node: its online CPUs
    node_distances: tuple[tuple[int, ...] | None, ...]  # per node: its node/nodeN/distance row, None when absent
    nodes_with_memory: tuple[int, ...]  # node/has_memory (all nodes when absent): where memory can be bound
    assumed: bool = False  # no topology files: one socket, one core per logical CPU was assumed, not read

    def __post_init__(self) -> None:
        if len(self.socket_cores) != len(self.sockets):
            raise ValueError(f"{len(self.socket_cores)} core lists for {len(self.sockets)} sockets")
        if not len(self.node_cpus) == len(self.node_distances) == len(self.nodes):
            raise ValueError(f"node CPU lists and distance rows do not match the {len(self.nodes)} nodes")

    @classmethod
    def read(cls, root: str | Path = SYSFS_ROOT) -> Topology:
        """Read ``root/cpu`` and ``root/node`` (by default this host's ``/sys/devices/system``).

        Raises TopologyError naming the file that is missing, unreadable or inconsistent. Without any
        ``cpuN/topology`` files (some VMs and containers) the host is taken as one socket with one core per logical
        CPU, and ``assumed`` says so.
        """
        root = Path(root)
        cpus = _online_cpus(root / "cpu")
        sockets, assumed = _read_cores(root / "cpu", cpus)
        nodes, node_cpus, distances, with_memory = _read_nodes(root / "node", cpus)
        return cls(
            cpus=tuple(cpus),
            sockets=tuple(sockets),
            socket_cores=tuple(tuple(cores) for cores in sockets.values()),
            nodes=tuple(nodes),
            node_cpus=tuple(node_cpus),
            node_distances=tuple(distances),
            nodes_with_memory=tuple(with_memory),
            assumed=assumed,
        )

    def cores(self, socket: int) -> list[list[int]]:
        """The physical cores of ``socket`` in order (by their first logical CPU), each its sorted SMT siblings."""
        try:
            i = self.sockets.index(socket)
        except ValueError:
            raise ValueError(f"no socket {socket} on this host (sockets {format_cpulist(self.sockets)})") from None
        return [list(core) for core in self.socket_cores[i]]

    @property
    def physical_cores(self) -> int:
        """Physical cores of all sockets together: the most threads a one-thread-per-core placement can use."""
        return sum(len(cores) for cores in self.socket_cores)

    @property
    def cores_per_socket(self) -> int:
        """Physical cores of a socket; when sockets differ (CPUs taken offline) the smallest, which is what every
        socket can give. Compare with :attr:`physical_cores` to tell."""
        return min(len(cores) for cores in self.socket_cores)

    @property
    def threads_per_core(self) -> int:
        """SMT siblings of the largest core (hybrid CPUs mix cores with and without SMT)."""
        return max(len(core) for cores in self.socket_cores for core in cores)

    @property
    def smt(self) -> bool:
        """Whether any core has more than one online logical CPU."""
        return self.threads_per_core > 1

    def node_of(self, cpu: int) -> int:
        """The NUMA node holding logical CPU ``cpu``."""
        for node, members in zip(self.nodes, self.node_cpus, strict=True):
            if cpu in members:
                return node
        raise ValueError(f"CPU {cpu} is not online on this host (online: {format_cpulist(self.cpus)})")

    def cpus_of_node(self, node: int) -> list[int]:
        """The online logical CPUs of ``node`` (empty for a node with memory only)."""
        return list(self.node_cpus[self._node_index(node)])

    def distance(self, a: int, b: int) -> int | None:
        """The kernel's distance from node ``a`` to node ``b`` (10 is local), or None when sysfs gave none."""
        row = self.node_distances[self._node_index(a)]
        return None if row is None else row[self._node_index(b)]

    def _node_index(self, node: int) -> int:
        try:
            return self.nodes.index(node)
        except ValueError:
            raise ValueError(f"no NUMA node {node} on this host (nodes {format_cpulist(self.nodes)})") from None

    def to_dict(self) -> dict[str, Any]:
        """Host metadata (JSON-ready): counts for tables, CPU lists for anyone re-creating a placement by hand."""
        return {
            "sockets": len(self.sockets),
            "cores_per_socket": self.cores_per_socket,
            "physical_cores": self.physical_cores,
            "threads_per_core": self.threads_per_core,
            "smt": self.smt,
            "logical_cpus": len(self.cpus),
            "cpus": format_cpulist(self.cpus),
            "nodes": [
                {
                    "node": node,
                    "cpus": format_cpulist(members),
                    "memory": node in self.nodes_with_memory,
                    "distances": None if row is None else list(row),
                }
                for node, members, row in zip(self.nodes, self.node_cpus, self.node_distances, strict=True)
            ],
            "topology_assumed": self.assumed,
        }


# ---------------------------------------------------------------------------------------------------------------
# Placements


def _sockets_phrase(topo: Topology) -> str:
    counts = [len(cores) for cores in topo.socket_cores]
    noun = "socket" if len(counts) == 1 else "sockets"
    if len(set(counts)) == 1:
        return f"{len(counts)} {noun} x {counts[0]}"
    return f"{len(counts)} {noun}: " + "+".join(str(n) for n in counts)


def max_threads(topo: Topology, placement: str) -> int | None:
    """The most threads ``placement`` can give on ``topo`` (one per physical core); None for ``none``, which pins
    nothing and so limits nothing.

    Raises NotApplicable for ``interleave`` on a one-socket host and PlacementError for an unknown placement.
    """
    if placement == "none":
        return None
    if placement == "sequential":
        return topo.physical_cores
    if placement == "interleave":
        if len(topo.sockets) < 2:
            raise NotApplicable("one socket")
        first, second = (len(cores) for cores in topo.socket_cores[:2])
        # ceil(t/2) must fit the first socket and floor(t/2) the second.
        return min(2 * first, 2 * second + 1)
    raise PlacementError(f"unknown placement {placement!r}: expected one of {', '.join(PLACEMENTS)}")


def check_threads(topo: Topology, placement: str, threads: int) -> None:
    """Raise PlacementError (one line) when ``placement`` cannot give ``threads`` threads on ``topo``, and
    NotApplicable when the placement means nothing here; for a config loader to reject a study before it runs."""
    if threads < 1:
        raise PlacementError(f"threads {threads}: must be at least 1")
    limit = max_threads(topo, placement)
    if limit is None or threads <= limit:
        return
    if placement == "sequential":
        raise PlacementError(
            f"threads {threads}: this host has {topo.physical_cores} physical cores ({_sockets_phrase(topo)})"
        )
    first, second = topo.sockets[:2]
    n_first, n_second = (len(cores) for cores in topo.socket_cores[:2])
    raise PlacementError(
        f"threads {threads}: interleave can place at most {limit} on this host "
        f"({n_first} physical cores on socket {first}, {n_second} on socket {second})"
    )


def placement_cpus(topo: Topology, placement: str, threads: int) -> list[int]:
    """The logical CPUs (ascending) to pin a run of ``threads`` threads to, one per physical core.

    ``sequential`` takes the first ``threads`` cores in socket order, ``interleave`` ceil(threads/2) cores of the
    first socket and the rest of the second, ``none`` every online CPU whatever ``threads`` is. Each core gives its
    first SMT sibling. Raises PlacementError when the placement cannot give that many threads and NotApplicable
    for ``interleave`` on one socket.
    """
    check_threads(topo, placement, threads)
    if placement == "none":
        return list(topo.cpus)
    if placement == "sequential":
        in_order = [core[0] for cores in topo.socket_cores for core in cores]
        return sorted(in_order[:threads])
    first, second = topo.socket_cores[:2]
    return sorted([core[0] for core in first[: math.ceil(threads / 2)]] + [core[0] for core in second[: threads // 2]])


def memory_nodes(topo: Topology, cpus: list[int], memory: str) -> list[int] | None:
    """The NUMA nodes to bind the memory of a run on ``cpus`` to, or None for no binding (``default``).

    ``local`` gives the nodes of ``cpus``; ``remote`` one node holding none of them and having memory, the nearest
    (least total distance from the local nodes), ties and unknown distances going to the next node number after the
    lowest local node, wrapping round. Raises NotApplicable (``one NUMA node``, or when ``cpus`` cover every node)
    where no remote node exists.
    """
    if memory not in MEMORY_POLICIES:
        raise PlacementError(f"unknown memory binding {memory!r}: expected one of {', '.join(MEMORY_POLICIES)}")
    if memory == "default":
        return None
    if not cpus:
        raise ValueError("no CPUs to bind memory for")
    local = sorted({topo.node_of(c) for c in cpus})
    if memory == "local":
        return local
    if len(topo.nodes) == 1:
        raise NotApplicable("one NUMA node")
    others = [n for n in topo.nodes if n not in local]
    if not others:
        raise NotApplicable("the cores span every NUMA node")
    candidates = [n for n in others if n in topo.nodes_with_memory]
    if not candidates:
        raise NotApplicable("no other NUMA node has memory")
    anchor = local[0]

    def rank(node: int) -> tuple[int, int, int, int]:
        distances = [topo.distance(n, node) for n in local]
        known = all(d is not None for d in distances)
        total = sum(d for d in distances if d is not None) if known else 0
        return (0 if known else 1, total, 0 if node > anchor else 1, node)

    return [min(candidates, key=rank)]
