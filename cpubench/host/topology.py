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

This host's topology (:meth:`Topology.read` of the real sysfs) is the host *as this process may use it*: a
container's cpuset or ``taskset -c 1`` allows fewer CPUs than sysfs lists online, and a run pinned to a CPU outside
that set either escapes it (taskset) or fails to start (a cpuset), while ``all`` would count cores the sweep may not
use. So the CPUs are those of the process's affinity, memory nodes those of its ``Mems_allowed_list``, and what was
left out is kept (``host_cpus``) and said (:meth:`Topology.notes`). A cgroup CPU quota (``cpu.max``) below those
CPUs changes nothing that is planned or measured (a study asks for its threads), but it throttles runs with more
threads than it allows, so it is read and said too.

Only files are read here; nothing is pinned or bound. The sysfs files are read and checked by
:mod:`cpubench.host.sysfs`; the cgroup files are ``Documentation/admin-guide/cgroup-v2.rst`` (``cpu.max``) and cgroup
v1's ``cpu.cfs_quota_us``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpubench.host import sysfs
from cpubench.host.sysfs import TopologyError, format_cpulist, parse_cpulist
from tf_cnn_benchmarks import hostfacts

SYSFS_ROOT = "/sys/devices/system"
CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP_ENV = "CPUBENCH_CGROUP_ROOT"  # another cgroup tree (tests point it at a fake one)
PLACEMENTS = ("none", "sequential", "interleave")
MEMORY_POLICIES = ("default", "local", "remote")


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
# What this process may use: its CPU affinity, its memory nodes, its cgroup's CPU quota


def _mems_allowed() -> list[int] | None:
    """The NUMA nodes this process may allocate on (``Mems_allowed_list``: a cpuset's ``cpuset.mems``), or None
    where ``/proc/self/status`` does not say."""
    m = re.search(r"^Mems_allowed_list:\s*(\S+)", hostfacts.read_text("/proc/self/status") or "", re.M)
    try:
        return parse_cpulist(m[1]) if m else None
    except ValueError:
        return None


def _quota_of(folder: Path) -> tuple[float, str] | None:
    """The quota one cgroup folder sets, in CPUs, with the file and text it came from; None for none (``max``,
    ``-1``) or a file that is absent or not the kernel's form (a quota is only ever said, never acted on)."""
    v2 = folder / "cpu.max"
    if (text := hostfacts.read_text(str(v2))) is not None:
        quota, _, period = text.partition(" ")
        if quota.isdecimal() and period.isdecimal() and int(period) > 0:
            return int(quota) / int(period), f"{v2}: {text}"
        return None
    quota_file, period_file = folder / "cpu.cfs_quota_us", folder / "cpu.cfs_period_us"
    quota, period = hostfacts.read_text(str(quota_file)), hostfacts.read_text(str(period_file))
    if quota and period and quota.isdecimal() and period.isdecimal() and int(period) > 0:
        return int(quota) / int(period), f"{quota_file}: {quota} per {period} us"
    return None


def cpu_quota(root: str | Path | None = None, proc_cgroup: str = "/proc/self/cgroup") -> tuple[float, str] | None:
    """The smallest CPU quota of this process's cgroup and its ancestors (``docker --cpus``, Kubernetes' CPU limit,
    systemd's ``CPUQuota``), in CPUs, with the file it came from; None when no quota is set or none can be read.

    ``root`` is the cgroup mount (``$CPUBENCH_CGROUP_ROOT``, else ``/sys/fs/cgroup``): cgroup v2's ``cpu.max``, or
    v1's ``cpu.cfs_quota_us`` under the ``cpu`` controller's folder. A folder the process's path names but this mount
    does not have (a container without a cgroup namespace sees the host's path) is skipped, its ancestors are not.
    """
    base = Path(root or os.environ.get(CGROUP_ENV) or CGROUP_ROOT)
    lines = (hostfacts.read_text(proc_cgroup) or "").splitlines() or ["0::/"]
    folders: list[Path] = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":
            mounts = [base]
        elif "cpu" in controllers.split(","):
            mounts = [base / controllers, base / "cpu", base / "cpu,cpuacct"]
        else:
            continue
        parts = [p for p in path.split("/") if p and p not in (".", "..")]
        for mount in mounts:
            folders += [mount.joinpath(*parts[:k]) for k in range(len(parts), -1, -1)]
    found = [q for f in dict.fromkeys(folders) if (q := _quota_of(f)) is not None]
    return min(found, key=lambda q: q[0]) if found else None


# ---------------------------------------------------------------------------------------------------------------
# Topology


@dataclass(frozen=True)
class Topology:
    """Logical CPUs, sockets with their physical cores, and NUMA nodes of one host, as sysfs showed them (this
    host's: only what this process may use, see :meth:`read`).

    Fields are tuples aligned by position (``socket_cores[i]`` belongs to ``sockets[i]``, ``node_cpus[i]`` and
    ``node_distances[i]`` to ``nodes[i]``, and a distance row's columns follow ``nodes``) so the value is immutable
    and can be built by hand in a test as well as read with :meth:`read`.
    """

    cpus: tuple[int, ...]  # online logical CPUs (that the process may use, where restricted), ascending
    sockets: tuple[int, ...]  # physical package ids, ascending
    socket_cores: tuple[tuple[tuple[int, ...], ...], ...]  # per socket: its cores, each its sorted SMT siblings
    nodes: tuple[int, ...]  # NUMA node numbers, ascending
    node_cpus: tuple[tuple[int, ...], ...]  # per node: its online CPUs
    node_distances: tuple[tuple[int, ...] | None, ...]  # per node: its node/nodeN/distance row, None when absent
    nodes_with_memory: tuple[int, ...]  # node/has_memory (all nodes when absent): where memory can be bound
    assumed: bool = False  # no topology files: one socket, one core per logical CPU was assumed, not read
    # What this process may use, where it is less than the host (see the module's docstring): every online CPU of
    # the host when ``cpus`` (and the cores, sockets and node lists) are only those of its affinity, else empty;
    # the nodes it may allocate on when they are fewer than those with memory, else None.
    host_cpus: tuple[int, ...] = ()
    mems_allowed: tuple[int, ...] | None = None
    # A cgroup CPU quota, in CPUs, and the file that set it (None: no quota): said, never acted on.
    cpu_quota: float | None = None
    quota_source: str | None = None

    def __post_init__(self) -> None:
        if len(self.socket_cores) != len(self.sockets):
            raise ValueError(f"{len(self.socket_cores)} core lists for {len(self.sockets)} sockets")
        if not len(self.node_cpus) == len(self.node_distances) == len(self.nodes):
            raise ValueError(f"node CPU lists and distance rows do not match the {len(self.nodes)} nodes")

    @classmethod
    def read(cls, root: str | Path = SYSFS_ROOT, *, this_process: bool | None = None) -> Topology:
        """Read ``root/cpu`` and ``root/node`` (by default this host's ``/sys/devices/system``).

        ``this_process`` (default: whether ``root`` is this host's sysfs) keeps only what this process may use: the
        CPUs of its affinity and the memory nodes of its ``Mems_allowed_list``, with its cgroup's CPU quota (see
        :meth:`restricted_to`); a tree read from elsewhere (a test's) is a whole host of its own.

        Raises TopologyError naming the file that is missing, unreadable or inconsistent. Without any
        ``cpuN/topology`` files (some VMs and containers) the host is taken as one socket with one core per logical
        CPU, and ``assumed`` says so.
        """
        if this_process is None:
            this_process = Path(root) == Path(SYSFS_ROOT)
        root = Path(root)
        cpus = sysfs.online_cpus(root / "cpu")
        sockets, assumed = sysfs.read_cores(root / "cpu", cpus)
        nodes, node_cpus, distances, with_memory = sysfs.read_nodes(root / "node", cpus)
        topo = cls(
            cpus=tuple(cpus),
            sockets=tuple(sockets),
            socket_cores=tuple(tuple(cores) for cores in sockets.values()),
            nodes=tuple(nodes),
            node_cpus=tuple(node_cpus),
            node_distances=tuple(distances),
            nodes_with_memory=tuple(with_memory),
            assumed=assumed,
        )
        if not this_process:
            return topo
        quota = cpu_quota()
        return topo.restricted_to(hostfacts.schedulable_cpus(), _mems_allowed(), quota=quota)

    def restricted_to(
        self, cpus: Iterable[int], mems: Iterable[int] | None = None, quota: tuple[float, str] | None = None
    ) -> Topology:
        """This host as a process allowed only ``cpus`` (its affinity) and memory nodes ``mems`` sees it, under a
        CPU ``quota`` (CPUs, the file that set it) when given.

        Every core keeps its siblings among ``cpus``, a core or socket with none is dropped, and a node keeps its
        CPUs among them (a node with none stays: its memory can still be bound); the host's own CPU list is kept in
        ``host_cpus`` so the record and the notes can say what was left out. Raises TopologyError when no CPU of
        ``cpus`` is online here, since a plan could place nothing.
        """
        cpus = list(cpus)
        allowed = set(cpus) & set(self.cpus)
        if not allowed:
            raise TopologyError(
                f"this process may run on CPUs {format_cpulist(cpus) or 'none'}, none of them online on this host "
                f"(online: {format_cpulist(self.cpus)})"
            )
        sockets: list[int] = []
        socket_cores: list[tuple[tuple[int, ...], ...]] = []
        for socket, cores in zip(self.sockets, self.socket_cores, strict=True):
            kept = tuple(k for core in cores if (k := tuple(c for c in core if c in allowed)))
            if kept:
                sockets.append(socket)
                socket_cores.append(kept)
        mems_allowed = self.mems_allowed
        if mems is not None:
            mems_set = set(mems) & set(self.mems_allowed if self.mems_allowed is not None else self.nodes)
            if not set(self.nodes_with_memory) <= mems_set:
                mems_allowed = tuple(sorted(mems_set))
        restricted = allowed != set(self.cpus)
        return Topology(
            cpus=tuple(sorted(allowed)),
            sockets=tuple(sockets),
            socket_cores=tuple(socket_cores),
            nodes=self.nodes,
            node_cpus=tuple(tuple(c for c in members if c in allowed) for members in self.node_cpus),
            node_distances=self.node_distances,
            nodes_with_memory=self.nodes_with_memory,
            assumed=self.assumed,
            host_cpus=(self.host_cpus or self.cpus) if restricted else self.host_cpus,
            mems_allowed=mems_allowed,
            cpu_quota=quota[0] if quota is not None else self.cpu_quota,
            quota_source=quota[1] if quota is not None else self.quota_source,
        )

    @property
    def restricted(self) -> bool:
        """Whether this process may use fewer CPUs than the host has online (``host_cpus`` says which it has)."""
        return bool(self.host_cpus)

    def notes(self) -> list[str]:
        """What a sweep says at its start about how this process is restricted (one line each, no prefix): fewer
        CPUs or memory nodes than the host has, and a CPU quota below the CPUs it may use."""
        lines: list[str] = []
        if self.host_cpus:
            lines.append(
                f"this process may use {len(self.cpus)} of the host's {len(self.host_cpus)} online CPUs "
                f"({format_cpulist(self.cpus)} of {format_cpulist(self.host_cpus)}: its CPU affinity, from taskset or "
                f"a cpuset): `all`, placements and the host's core counts are of those"
            )
        if self.mems_allowed is not None:
            lines.append(
                f"this process may allocate memory on NUMA nodes {format_cpulist(self.mems_allowed) or 'none'} only "
                f"(of {format_cpulist(self.nodes_with_memory)} with memory): memory bindings are to those"
            )
        if self.cpu_quota is not None and self.cpu_quota < len(self.cpus):
            lines.append(
                f"a CPU quota of {self.cpu_quota:g} CPUs ({self.quota_source}) is below the {len(self.cpus)} CPUs this "
                f"process may use: runs of more threads than that are throttled by the kernel, and measured so"
            )
        return lines

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
        """Host metadata (JSON-ready): counts for tables, CPU lists for anyone re-creating a placement by hand; where
        the process was restricted, also the host's own CPUs, the memory nodes allowed, the quota and the notes."""
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
            # Only where this process was restricted, so the record of an unrestricted host stays as it was.
            **({"host_cpus": format_cpulist(self.host_cpus)} if self.host_cpus else {}),
            **({"mems_allowed": format_cpulist(self.mems_allowed)} if self.mems_allowed is not None else {}),
            **(
                {"cpu_quota": {"cpus": self.cpu_quota, "source": self.quota_source}}
                if self.cpu_quota is not None
                else {}
            ),
            **({"restrictions": notes} if (notes := self.notes()) else {}),
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
    # A restricted process is told what it may use and why, or "40 threads on a 64-core host" reads as a bug.
    why = f" of the host's CPUs {format_cpulist(topo.host_cpus)} (its CPU affinity)" if topo.restricted else ""
    if placement == "sequential":
        has = "this process may use" if topo.restricted else "this host has"
        raise PlacementError(
            f"threads {threads}: {has} {topo.physical_cores} physical cores ({_sockets_phrase(topo)}){why}"
        )
    first, second = topo.sockets[:2]
    n_first, n_second = (len(cores) for cores in topo.socket_cores[:2])
    raise PlacementError(
        f"threads {threads}: interleave can place at most {limit} on this host "
        f"({n_first} physical cores on socket {first}, {n_second} on socket {second}{why})"
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
    # The kernel binds only to nodes that have memory and that this process's cpuset allows, and refuses the child's
    # set_mempolicy when none is left (the run would fail to start with no word of why): the nodes planned are the
    # ones it binds, and none left is n/a with the reason.
    allowed = topo.nodes_with_memory if topo.mems_allowed is None else topo.mems_allowed
    if memory == "local":
        bound = [n for n in local if n in topo.nodes_with_memory and n in allowed]
        if bound:
            return bound
        if not any(n in topo.nodes_with_memory for n in local):
            raise NotApplicable(f"node {format_cpulist(local)} of these cores has no memory of its own")
        raise NotApplicable(
            f"this process may not allocate on node {format_cpulist(local)} of these cores "
            f"(its memory nodes: {format_cpulist(allowed) or 'none'})"
        )
    if len(topo.nodes) == 1:
        raise NotApplicable("one NUMA node")
    others = [n for n in topo.nodes if n not in local]
    if not others:
        raise NotApplicable("the cores span every NUMA node")
    candidates = [n for n in others if n in topo.nodes_with_memory]
    if not candidates:
        raise NotApplicable("no other NUMA node has memory")
    candidates = [n for n in candidates if n in allowed]
    if not candidates:
        raise NotApplicable(f"this process may allocate on NUMA node {format_cpulist(allowed) or 'none'} only")
    anchor = local[0]

    def rank(node: int) -> tuple[int, int, int, int]:
        distances = [topo.distance(n, node) for n in local]
        known = all(d is not None for d in distances)
        total = sum(d for d in distances if d is not None) if known else 0
        return (0 if known else 1, total, 0 if node > anchor else 1, node)

    return [min(candidates, key=rank)]
