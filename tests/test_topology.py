"""CPU topology from sysfs and the core lists of placements, against small sysfs trees of known hosts.

The trees under ``tests/fixtures/sysfs/`` are committed so they can be read by eye (and by other tests); they are
written by :func:`write_fixtures` below, and ``test_fixtures_match_their_description`` keeps the two in step. To
change a host, edit ``HOSTS`` and run ``python tests/test_topology.py``.

Hosts, numbered as Linux numbers x86 hosts (one thread of every core first, socket by socket, then the SMT siblings):

- ``2s-18c-smt``: 2 sockets x 18 cores x 2 threads, CPUs 0-17 socket 0, 18-35 socket 1, 36-71 their siblings; node0 =
  socket 0, node1 = socket 1; core ids with gaps as on an 18-core Xeon; an older kernel (``thread_siblings_list``);
- ``2s-18c-nosmt``: the same host with SMT off (CPUs 0-35) on a newer kernel (``core_cpus_list``);
- ``2s-4n-snc``: 2 sockets x 16 cores, each socket split into 2 nodes of 8 cores (sub-NUMA clustering), distances
  10/11 within a socket and 21 across;
- ``vm-2cpu``: a 2-core VM, ``cpu/online`` = ``0-1`` and no ``node/`` folder;
- ``vm-notopo``: a partial sysfs with ``cpu/online`` only (no topology files), as some VMs and sandboxes show.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cpubench.host.topology import (
    NotApplicable,
    PlacementError,
    Topology,
    TopologyError,
    check_threads,
    format_cpulist,
    max_threads,
    memory_nodes,
    parse_cpulist,
    placement_cpus,
)

FIXTURES = Path(__file__).parent / "fixtures" / "sysfs"

# Core ids of an 18-core Skylake-SP die: not 0..17, so nothing may take a core id for a position.
XEON_18C_CORE_IDS = (0, 1, 2, 3, 4, 8, 9, 10, 11, 16, 17, 18, 19, 20, 24, 25, 26, 27)


# ---------------------------------------------------------------------------------------------------------------
# Fixture trees


def _kernel_list(numbers: list[int]) -> str:
    """The kernel's list text, written here without the module under test so the fixtures do not lean on it."""
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def linux_host(
    sockets: int,
    cores: int,
    threads: int,
    nodes_per_socket: int,
    *,
    core_ids: tuple[int, ...] | None = None,
    siblings_file: str = "thread_siblings_list",
) -> dict[str, str]:
    """The sysfs files (path under ``/sys/devices/system`` -> text) of a host numbered the Linux x86 way.

    ``nodes_per_socket`` 0 leaves ``node/`` out (a kernel without NUMA); otherwise each socket's cores are split
    evenly into that many nodes, with distances 10 (same node), 11 (same socket), 21 (other socket).
    """
    files: dict[str, str] = {}
    all_cores = sockets * cores
    per_node = cores // max(nodes_per_socket, 1)
    node_cpus: dict[int, list[int]] = {}
    for thread in range(threads):
        for socket in range(sockets):
            for k in range(cores):
                cpu = thread * all_cores + socket * cores + k
                siblings = [t * all_cores + socket * cores + k for t in range(threads)]
                top = f"cpu/cpu{cpu}/topology"
                files[f"{top}/physical_package_id"] = f"{socket}\n"
                files[f"{top}/core_id"] = f"{core_ids[k] if core_ids else k}\n"
                files[f"{top}/{siblings_file}"] = _kernel_list(siblings) + "\n"
                node_cpus.setdefault(socket * nodes_per_socket + k // per_node, []).append(cpu)
    files["cpu/online"] = f"0-{threads * all_cores - 1}\n"
    if nodes_per_socket:
        nodes = sorted(node_cpus)
        for n in nodes:
            row = [10 if m == n else 11 if m // nodes_per_socket == n // nodes_per_socket else 21 for m in nodes]
            files[f"node/node{n}/cpulist"] = _kernel_list(node_cpus[n]) + "\n"
            files[f"node/node{n}/distance"] = " ".join(str(d) for d in row) + "\n"
        files["node/online"] = _kernel_list(nodes) + "\n"
        files["node/has_memory"] = _kernel_list(nodes) + "\n"
    return files


HOSTS: dict[str, Callable[[], dict[str, str]]] = {
    "2s-18c-smt": lambda: linux_host(2, 18, 2, 1, core_ids=XEON_18C_CORE_IDS),
    "2s-18c-nosmt": lambda: linux_host(2, 18, 1, 1, core_ids=XEON_18C_CORE_IDS, siblings_file="core_cpus_list"),
    "2s-4n-snc": lambda: linux_host(2, 16, 1, 2, siblings_file="core_cpus_list"),
    "vm-2cpu": lambda: linux_host(1, 2, 1, 0),
    "vm-notopo": lambda: {"cpu/online": "0-3\n"},
}


def write_fixtures(dest: Path) -> None:
    """(Re)write every host of ``HOSTS`` under ``dest``, removing the files of an earlier version first."""
    for name, make in HOSTS.items():
        shutil.rmtree(dest / name, ignore_errors=True)
        for rel, text in make().items():
            path = dest / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def host(name: str) -> Topology:
    return Topology.read(FIXTURES / name)


def copy_host(name: str, tmp_path: Path) -> Path:
    """A writable copy of a fixture host, for breaking one file at a time."""
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def _core_of(topo: Topology) -> dict[int, int]:
    """Logical CPU -> a number for its physical core."""
    out: dict[int, int] = {}
    for socket in topo.sockets:
        for core in topo.cores(socket):
            for cpu in core:
                out[cpu] = min(core)
    return out


def test_fixtures_match_their_description() -> None:
    for name, make in HOSTS.items():
        assert _tree(FIXTURES / name) == make(), f"{FIXTURES / name} is out of date: run python {__file__}"


# ---------------------------------------------------------------------------------------------------------------
# CPU lists


@pytest.mark.parametrize(
    ("text", "cpus"),
    [
        ("0-3,8-11,16", [0, 1, 2, 3, 8, 9, 10, 11, 16]),
        ("", []),
        ("5", [5]),
        ("0-1", [0, 1]),
        ("0,36", [0, 36]),
        ("0-17,36-53", list(range(18)) + list(range(36, 54))),
    ],
)
def test_cpulist_round_trip(text: str, cpus: list[int]) -> None:
    assert parse_cpulist(text) == cpus
    assert parse_cpulist(text + "\n") == cpus
    assert format_cpulist(cpus) == text
    assert parse_cpulist(format_cpulist(cpus)) == cpus


def test_cpulist_sorts_and_merges() -> None:
    assert parse_cpulist("3,1-2,2") == [1, 2, 3]
    assert format_cpulist([3, 1, 2, 2]) == "1-3"
    assert parse_cpulist("  \n") == []
    assert format_cpulist(range(4)) == "0-3"


@pytest.mark.parametrize("text", ["a", "3-1", "-1", "1-", "1,,2", "1 2", "0x1", "1-2-3", "1:2"])
def test_cpulist_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="bad CPU list"):
        parse_cpulist(text)


def test_format_cpulist_rejects_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_cpulist([-1, 0])


# ---------------------------------------------------------------------------------------------------------------
# Reading hosts


def test_two_sockets_with_smt() -> None:
    topo = host("2s-18c-smt")
    assert topo.cpus == tuple(range(72))
    assert topo.sockets == (0, 1)
    assert topo.cores(0) == [[k, k + 36] for k in range(18)]
    assert topo.cores(1) == [[18 + k, 54 + k] for k in range(18)]
    assert (topo.cores_per_socket, topo.physical_cores, topo.threads_per_core, topo.smt) == (18, 36, 2, True)
    assert topo.nodes == (0, 1)
    assert topo.cpus_of_node(0) == list(range(18)) + list(range(36, 54))
    assert [topo.node_of(c) for c in (0, 17, 18, 35, 36, 53, 54, 71)] == [0, 0, 1, 1, 0, 0, 1, 1]
    assert [topo.distance(a, b) for a in (0, 1) for b in (0, 1)] == [10, 21, 21, 10]
    assert not topo.assumed


def test_two_sockets_without_smt() -> None:
    topo = host("2s-18c-nosmt")
    assert topo.cpus == tuple(range(36))
    assert topo.cores(0) == [[k] for k in range(18)]
    assert topo.cores(1) == [[18 + k] for k in range(18)]
    assert (topo.cores_per_socket, topo.physical_cores, topo.threads_per_core, topo.smt) == (18, 36, 1, False)
    assert topo.cpus_of_node(1) == list(range(18, 36))
    assert topo.node_of(20) == 1


def test_four_nodes() -> None:
    topo = host("2s-4n-snc")
    assert topo.cpus == tuple(range(32))
    assert (len(topo.sockets), topo.cores_per_socket, topo.smt) == (2, 16, False)
    assert topo.nodes == (0, 1, 2, 3)
    assert [topo.cpus_of_node(n) for n in topo.nodes] == [list(range(8 * n, 8 * n + 8)) for n in range(4)]
    assert [topo.distance(0, n) for n in topo.nodes] == [10, 11, 21, 21]
    assert [topo.distance(3, n) for n in topo.nodes] == [21, 21, 11, 10]


def test_one_core_vm() -> None:
    topo = host("vm-2cpu")
    assert topo.cpus == (0, 1)
    assert topo.sockets == (0,)
    assert topo.cores(0) == [[0], [1]]
    assert topo.nodes == (0,)
    assert topo.node_of(1) == 0
    assert topo.distance(0, 0) is None


def test_no_topology_files_is_one_socket_one_core_per_cpu() -> None:
    topo = host("vm-notopo")
    assert topo.cpus == (0, 1, 2, 3)
    assert topo.sockets == (0,)
    assert topo.cores(0) == [[0], [1], [2], [3]]
    assert topo.assumed and not topo.smt
    assert placement_cpus(topo, "sequential", 4) == [0, 1, 2, 3]
    assert topo.to_dict()["topology_assumed"] is True


def test_cpu_folders_when_online_is_missing(tmp_path: Path) -> None:
    root = copy_host("vm-2cpu", tmp_path)
    (root / "cpu" / "online").unlink()
    assert Topology.read(root).cpus == (0, 1)
    (root / "cpu" / "cpu1" / "online").write_text("0\n")
    assert Topology.read(root).cpus == (0,)


def test_core_id_groups_cpus_when_no_sibling_list(tmp_path: Path) -> None:
    root = copy_host("2s-18c-smt", tmp_path)
    for path in root.glob("cpu/cpu*/topology/thread_siblings_list"):
        path.unlink()
    topo = Topology.read(root)
    assert topo.cores(0) == [[k, k + 36] for k in range(18)]
    assert topo.cores(1) == [[18 + k, 54 + k] for k in range(18)]
    (root / "cpu" / "cpu40" / "topology" / "core_id").unlink()
    with pytest.raises(TopologyError, match=r"cpu40/topology/core_id"):
        Topology.read(root)


def test_unknown_socket_node_and_cpu() -> None:
    topo = host("2s-18c-nosmt")
    with pytest.raises(ValueError, match="no socket 2"):
        topo.cores(2)
    with pytest.raises(ValueError, match="no NUMA node 5"):
        topo.distance(0, 5)
    with pytest.raises(ValueError, match="CPU 36 is not online"):
        topo.node_of(36)


def test_topology_is_frozen() -> None:
    topo = host("vm-2cpu")
    with pytest.raises(dataclasses.FrozenInstanceError):
        topo.cpus = ()  # type: ignore[misc]


def test_to_dict() -> None:
    d = host("2s-18c-smt").to_dict()
    assert d == {
        "sockets": 2,
        "cores_per_socket": 18,
        "physical_cores": 36,
        "threads_per_core": 2,
        "smt": True,
        "logical_cpus": 72,
        "cpus": "0-71",
        "nodes": [
            {"node": 0, "cpus": "0-17,36-53", "memory": True, "distances": [10, 21]},
            {"node": 1, "cpus": "18-35,54-71", "memory": True, "distances": [21, 10]},
        ],
        "topology_assumed": False,
    }
    assert json.loads(json.dumps(d)) == d
    vm = host("vm-2cpu").to_dict()
    assert (vm["sockets"], vm["cores_per_socket"], vm["threads_per_core"]) == (1, 2, 1)
    assert vm["nodes"] == [{"node": 0, "cpus": "0-1", "memory": True, "distances": None}]


# ---------------------------------------------------------------------------------------------------------------
# Broken sysfs: every error names its file


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match=r"cannot read .*cpu/online"):
        Topology.read(tmp_path / "nothing")


def test_missing_package_id_on_one_cpu(tmp_path: Path) -> None:
    root = copy_host("2s-18c-smt", tmp_path)
    path = root / "cpu" / "cpu5" / "topology" / "physical_package_id"
    path.unlink()
    with pytest.raises(TopologyError, match=f"cannot read {re.escape(str(path))}"):
        Topology.read(root)


def test_unreadable_file(tmp_path: Path) -> None:
    root = copy_host("2s-18c-smt", tmp_path)
    path = root / "node" / "node1" / "cpulist"
    path.unlink()
    path.mkdir()  # reading a folder fails even as root, where file modes would not
    with pytest.raises(TopologyError, match=f"cannot read {re.escape(str(path))}"):
        Topology.read(root)


@pytest.mark.parametrize(
    ("rel", "text", "message"),
    [
        ("cpu/online", "0-x\n", r"cpu/online: bad CPU list"),
        ("cpu/online", "\n", r"cpu/online: lists no CPU"),
        ("cpu/cpu3/topology/physical_package_id", "one\n", r"cpu3/topology/physical_package_id: 'one' is not"),
        ("cpu/cpu0/topology/thread_siblings_list", "1,37\n", r"cpu0/topology/thread_siblings_list: .*not CPU 0"),
        ("cpu/cpu36/topology/thread_siblings_list", "36\n", r"cpu0/topology/thread_siblings_list says .*cpu36"),
        ("cpu/cpu36/topology/physical_package_id", "1\n", r"CPUs 0 and 36 share a core but not a physical_pack"),
        ("node/node1/cpulist", "18-a\n", r"node1/cpulist: bad CPU list"),
        ("node/node1/cpulist", "18-35\n", r"CPUs 54-71 are in no nodeN/cpulist"),
        ("node/node1/cpulist", "0-71\n", r"CPU 0 is in both node0/cpulist and node1/cpulist"),
        ("node/node0/distance", "10\n", r"node0/distance: 1 distances for 2 nodes"),
        ("node/node0/distance", "10 far\n", r"node0/distance: '10 far' is not a row of numbers"),
    ],
)
def test_bad_files(tmp_path: Path, rel: str, text: str, message: str) -> None:
    root = copy_host("2s-18c-smt", tmp_path)
    (root / rel).write_text(text)
    with pytest.raises(TopologyError, match=message):
        Topology.read(root)


def test_missing_node_cpulist(tmp_path: Path) -> None:
    root = copy_host("2s-18c-smt", tmp_path)
    (root / "node" / "node0" / "cpulist").unlink()
    with pytest.raises(TopologyError, match=r"node0/cpulist"):
        Topology.read(root)


# ---------------------------------------------------------------------------------------------------------------
# Placements


TWO_SOCKET_HOSTS = ["2s-18c-smt", "2s-18c-nosmt"]


@pytest.mark.parametrize("name", TWO_SOCKET_HOSTS)
@pytest.mark.parametrize(
    ("threads", "cpus"),
    [
        (1, [0]),
        (2, [0, 1]),
        (18, list(range(18))),
        (19, list(range(18)) + [18]),  # all of socket 0, then the first core of socket 1
        (36, list(range(36))),
    ],
)
def test_sequential(name: str, threads: int, cpus: list[int]) -> None:
    assert placement_cpus(host(name), "sequential", threads) == cpus


@pytest.mark.parametrize("name", TWO_SOCKET_HOSTS)
@pytest.mark.parametrize(
    ("threads", "cpus"),
    [
        (1, [0]),
        (2, [0, 18]),
        (3, [0, 1, 18]),  # ceil(3/2) = 2 on socket 0
        (5, [0, 1, 2, 18, 19]),
        (36, list(range(36))),
    ],
)
def test_interleave(name: str, threads: int, cpus: list[int]) -> None:
    assert placement_cpus(host(name), "interleave", threads) == cpus


@pytest.mark.parametrize("name", ["2s-18c-smt", "2s-18c-nosmt", "2s-4n-snc", "vm-2cpu", "vm-notopo"])
def test_one_cpu_per_physical_core(name: str) -> None:
    topo = host(name)
    core_of = _core_of(topo)
    placements = ["sequential", "interleave"] if len(topo.sockets) > 1 else ["sequential"]
    for placement in placements:
        limit = max_threads(topo, placement)
        assert limit is not None
        for threads in range(1, limit + 1):
            cpus = placement_cpus(topo, placement, threads)
            assert len(cpus) == threads
            assert len({core_of[c] for c in cpus}) == threads, (placement, threads)
            assert all(core_of[c] == c for c in cpus)  # the first sibling of each core


def test_none_is_every_cpu() -> None:
    topo = host("2s-18c-smt")
    assert placement_cpus(topo, "none", 1) == list(range(72))
    assert placement_cpus(topo, "none", 500) == list(range(72))
    assert max_threads(topo, "none") is None


@pytest.mark.parametrize("name", TWO_SOCKET_HOSTS)
def test_too_many_threads(name: str) -> None:
    topo = host(name)
    assert max_threads(topo, "sequential") == 36
    assert max_threads(topo, "interleave") == 36
    with pytest.raises(PlacementError) as e:
        placement_cpus(topo, "sequential", 40)
    assert str(e.value) == "threads 40: this host has 36 physical cores (2 sockets x 18)"
    with pytest.raises(PlacementError) as e:
        check_threads(topo, "interleave", 37)
    assert str(e.value) == (
        "threads 37: interleave can place at most 36 on this host (18 physical cores on socket 0, 18 on socket 1)"
    )
    with pytest.raises(PlacementError, match="threads 0: must be at least 1"):
        placement_cpus(topo, "sequential", 0)
    with pytest.raises(PlacementError, match="unknown placement 'spread'"):
        placement_cpus(topo, "spread", 2)


def test_uneven_sockets() -> None:
    """A socket with cores taken offline: interleave is limited by whichever socket runs out first."""
    topo = host("2s-18c-nosmt")
    uneven = dataclasses.replace(topo, socket_cores=(topo.socket_cores[0], topo.socket_cores[1][:10]))
    assert uneven.cores_per_socket == 10 and uneven.physical_cores == 28
    assert max_threads(uneven, "interleave") == 21  # 11 on socket 0, 10 on socket 1
    assert placement_cpus(uneven, "interleave", 21)[-1] == 27
    with pytest.raises(PlacementError, match=r"^threads 29: this host has 28 physical cores \(2 sockets: 18\+10\)$"):
        check_threads(uneven, "sequential", 29)
    few_first = dataclasses.replace(topo, socket_cores=(topo.socket_cores[0][:10], topo.socket_cores[1]))
    assert max_threads(few_first, "interleave") == 20


def test_one_socket_vm() -> None:
    topo = host("vm-2cpu")
    assert placement_cpus(topo, "sequential", 2) == [0, 1]
    with pytest.raises(PlacementError) as e:
        placement_cpus(topo, "sequential", 3)
    assert str(e.value) == "threads 3: this host has 2 physical cores (1 socket x 2)"
    for call in (lambda: placement_cpus(topo, "interleave", 1), lambda: max_threads(topo, "interleave")):
        with pytest.raises(NotApplicable) as na:
            call()
        assert str(na.value) == "one socket" and na.value.reason == "one socket"


# ---------------------------------------------------------------------------------------------------------------
# Memory binding


def test_memory_on_two_sockets() -> None:
    topo = host("2s-18c-smt")
    seq18 = placement_cpus(topo, "sequential", 18)
    seq19 = placement_cpus(topo, "sequential", 19)
    assert memory_nodes(topo, seq18, "default") is None
    assert memory_nodes(topo, seq18, "local") == [0]
    assert memory_nodes(topo, seq18, "remote") == [1]
    assert memory_nodes(topo, seq19, "local") == [0, 1]
    assert memory_nodes(topo, [18, 54], "remote") == [0]
    assert memory_nodes(topo, placement_cpus(topo, "interleave", 2), "local") == [0, 1]
    with pytest.raises(NotApplicable, match="^the cores span every NUMA node$"):
        memory_nodes(topo, seq19, "remote")
    with pytest.raises(PlacementError, match="unknown memory binding 'far'"):
        memory_nodes(topo, seq18, "far")
    with pytest.raises(ValueError, match="no CPUs"):
        memory_nodes(topo, [], "local")


def test_memory_on_four_nodes() -> None:
    topo = host("2s-4n-snc")

    def remote(cpus: list[int]) -> list[int] | None:
        return memory_nodes(topo, cpus, "remote")

    seq = {t: placement_cpus(topo, "sequential", t) for t in (8, 9, 16, 24, 32)}
    assert memory_nodes(topo, seq[8], "local") == [0]
    assert remote(seq[8]) == [1]  # the other node of the same socket (11) before the other socket (21)
    assert memory_nodes(topo, seq[9], "local") == [0, 1]
    assert remote(seq[9]) == [2]  # nodes 2 and 3 are both 21 + 21 away: the next number wins
    assert remote(seq[16]) == [2]
    assert remote(seq[24]) == [3]
    with pytest.raises(NotApplicable):
        remote(seq[32])
    inter = placement_cpus(topo, "interleave", 8)
    assert inter == [0, 1, 2, 3, 16, 17, 18, 19]
    assert memory_nodes(topo, inter, "local") == [0, 2]
    assert remote(inter) == [1]  # 1 and 3 are both 11 + 21 away
    assert [remote(topo.cpus_of_node(n)) for n in topo.nodes] == [[1], [0], [3], [2]]


def test_remote_without_distances_is_the_next_node(tmp_path: Path) -> None:
    root = copy_host("2s-4n-snc", tmp_path)
    for path in root.glob("node/node*/distance"):
        path.unlink()
    topo = Topology.read(root)
    assert topo.distance(0, 1) is None
    assert [memory_nodes(topo, topo.cpus_of_node(n), "remote") for n in topo.nodes] == [[1], [2], [3], [0]]


def test_remote_skips_nodes_without_memory(tmp_path: Path) -> None:
    root = copy_host("2s-18c-smt", tmp_path)
    (root / "node" / "has_memory").write_text("0\n")
    topo = Topology.read(root)
    assert [n["memory"] for n in topo.to_dict()["nodes"]] == [True, False]
    assert memory_nodes(topo, [18], "remote") == [0]
    with pytest.raises(NotApplicable, match="^no other NUMA node has memory$"):
        memory_nodes(topo, [0], "remote")


def test_one_node_vm() -> None:
    topo = host("vm-2cpu")
    cpus = placement_cpus(topo, "sequential", 2)
    assert memory_nodes(topo, cpus, "local") == [0]
    assert memory_nodes(topo, cpus, "default") is None
    with pytest.raises(NotApplicable) as na:
        memory_nodes(topo, cpus, "remote")
    assert str(na.value) == "one NUMA node"


# ---------------------------------------------------------------------------------------------------------------
# This machine


@pytest.mark.skipif(not Path("/sys/devices/system/cpu").is_dir(), reason="no sysfs here")
def test_this_host() -> None:
    topo = Topology.read()
    allowed = os.sched_getaffinity(0)  # this host as this process may use it (taskset, a cpuset)
    assert set(topo.cpus) == allowed and len(topo.host_cpus or topo.cpus) == os.cpu_count()
    assert sum(len(core) for s in topo.sockets for core in topo.cores(s)) == len(topo.cpus)
    assert sorted(c for s in topo.sockets for core in topo.cores(s) for c in core) == list(topo.cpus)
    assert {topo.node_of(c) for c in allowed} <= set(topo.nodes)
    assert placement_cpus(topo, "none", 1) == list(topo.cpus)
    seq = placement_cpus(topo, "sequential", topo.physical_cores)
    assert len(seq) == topo.physical_cores and set(seq) <= set(topo.cpus)
    d = topo.to_dict()
    assert d["logical_cpus"] == len(topo.cpus)
    assert json.loads(json.dumps(d)) == d


if __name__ == "__main__":
    write_fixtures(FIXTURES)
    sys.exit(0)
