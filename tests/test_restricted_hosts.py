"""Hosts that give this process less than sysfs shows: a CPU affinity (``taskset``, a container's cpuset), a cgroup
CPU quota, CPUs offline or numbered with gaps, NUMA nodes with memory and no CPUs (CXL) or CPUs and no memory, a
cpuset's memory nodes.

What broke before: under ``taskset -c 1`` a sweep planned ``all`` as every core of the machine and pinned its runs
to CPU 0 and to 0-1, so the engine left the CPUs the user had allowed (taskset) or could not start (a cpuset), and
``host.json`` counted cores the process could not use; a quota below the CPUs (``docker --cpus``) throttled every
many-thread run without a word; ``local`` memory on a node without memory and ``remote`` memory on a node the
cpuset does not allow were planned, and the kernel refused the child's binding when it started.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fakeengine import cpubench_run, records, write_config

from cpubench.host import topology
from cpubench.host.topology import NotApplicable, PlacementError, Topology, TopologyError
from cpubench.spec import config as cfg

FIXTURES = Path(__file__).parent / "fixtures" / "sysfs"
ALLOWED = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
TASKSET = shutil.which("taskset")
CGROUP_ENV = "CPUBENCH_CGROUP_ROOT"  # spelled out: an older cpubench ignores it, and the tests still run there


def tree(root: Path, files: dict[str, str]) -> Path:
    """A sysfs tree (path under ``/sys/devices/system`` -> text) written under ``root``."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def one_socket(siblings: dict[int, str], online: str, nodes: dict[int, str], has_memory: str, distances: str) -> dict:
    """Files of a one-socket host: CPU -> its sibling list, the online list, node -> cpulist, and each node's
    distance row (``distances``: rows joined by ``;``)."""
    files = {"cpu/online": online + "\n", "node/has_memory": has_memory + "\n"}
    for cpu, sib in siblings.items():
        files[f"cpu/cpu{cpu}/topology/physical_package_id"] = "0\n"
        files[f"cpu/cpu{cpu}/topology/core_cpus_list"] = sib + "\n"
    for (node, cpulist), row in zip(nodes.items(), distances.split(";"), strict=True):
        files[f"node/node{node}/cpulist"] = cpulist + "\n"
        files[f"node/node{node}/distance"] = row + "\n"
    return files


# ---------------------------------------------------------------------------------------------------------------
# The real CLI under taskset and a fake quota


def restricted_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The fake engine's environment with no cgroup quota (an empty cgroup tree), whatever this machine has."""
    (tmp_path / "cgroup").mkdir(exist_ok=True)
    return {**env, CGROUP_ENV: str(tmp_path / "cgroup")}


def taskset_run(cpu: int, args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """``taskset -c CPU cpubench run ARGS``, as a user would type it."""
    return subprocess.run(["taskset", "-c", str(cpu), sys.executable, "-m", "cpubench", "run", *args], env=env,
                          cwd=cwd, capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.mark.skipif(not (TASKSET and len(ALLOWED) >= 2), reason="needs taskset and two CPUs to leave one out")
def test_taskset_one_cpu_plans_and_pins_only_that_cpu(tmp_path: Path, env: dict[str, str]) -> None:
    """Before: `all` was 1..every core and sequential pinned to CPU 0 (and 0-1), outside `taskset -c <last>`."""
    cpu = ALLOWED[-1]
    c = write_config(tmp_path / "c.yaml", {"trivial": 8}, matrix={"num_intra_threads": "all",
                     "placement": ["sequential"], "memory": ["local"]})  # fmt: skip
    out = tmp_path / "data"
    p = taskset_run(cpu, ["--config", str(c), "--out", str(out), "--host-id", "h1", "--progress", "plain"],
                    restricted_env(env, tmp_path), tmp_path)  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    online = topology.parse_cpulist(Path("/sys/devices/system/cpu/online").read_text())
    (r,) = records(out)
    assert r["params"]["num_intra_threads"] == 1 and r["launch"]["cpus"] == [cpu], r
    assert f"this process may use 1 of the host's {len(online)} online CPUs ({cpu} of " in p.stdout + p.stderr
    host = json.loads((out / "h1" / "host.json").read_text())
    assert host["cores_physical"] == host["cores_logical"] == 1 and host["topology"]["cpus"] == str(cpu)
    assert host["topology"]["host_cpus"] == topology.format_cpulist(online)


@pytest.mark.skipif(not (TASKSET and len(ALLOWED) >= 2), reason="needs taskset and two CPUs to leave one out")
def test_a_config_that_pins_nothing_still_says_the_restriction(tmp_path: Path, env: dict[str, str]) -> None:
    """Before: the restriction was said only for configs resolved against the host (pinning, `all`); under
    `taskset -c <last>` the default sweep's runs had one CPU and its output said nothing of it."""
    c = write_config(tmp_path / "c.yaml", {"trivial": 8})
    for extra in (["--dry-run"], ["--progress", "plain"]):
        p = taskset_run(ALLOWED[-1], ["--config", str(c), "--out", str(tmp_path / "d"), "--host-id", "h1", *extra],
                        restricted_env(env, tmp_path), tmp_path)  # fmt: skip
        assert p.returncode == 0, p.stdout + p.stderr
        assert "cpubench: this process may use 1 of the host's" in p.stdout + p.stderr, p.stdout + p.stderr


@pytest.mark.skipif(not (TASKSET and len(ALLOWED) >= 2), reason="needs taskset and two CPUs to leave one out")
def test_taskset_one_cpu_refuses_two_pinned_threads_in_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    """Before: two threads pinned `sequential` under `taskset -c <last>` ran on CPUs the process was not given."""
    c = write_config(tmp_path / "c.yaml", {"trivial": 8}, matrix={"num_intra_threads": [2],
                     "placement": ["sequential"]})  # fmt: skip
    p = taskset_run(ALLOWED[-1], ["--config", str(c), "--out", str(tmp_path / "d"), "--host-id", "h1", "--dry-run"],
                    restricted_env(env, tmp_path), tmp_path)  # fmt: skip
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert "threads 2: this process may use 1 physical cores" in lines[0], lines
    assert "(its CPU affinity)" in lines[0], lines
    assert not (tmp_path / "d" / "h1" / "runs.jsonl").exists()


def test_a_quota_below_the_cpus_is_said_and_recorded_and_changes_nothing_measured(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """Before: a cgroup quota of half a CPU was read nowhere: the sweep ran 2 threads on it and said nothing."""
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    (cgroup / "cpu.max").write_text("50000 100000\n")
    c = write_config(tmp_path / "c.yaml", {"trivial": 8}, matrix={"num_intra_threads": [1, 2],
                     "placement": ["none"], "memory": ["local"]})  # fmt: skip
    out = tmp_path / "data"
    p = cpubench_run(["--config", str(c), "--out", str(out), "--host-id", "h1", "--progress", "plain"],
                     {**env, CGROUP_ENV: str(cgroup)}, tmp_path)  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    said = [ln for ln in (p.stdout + p.stderr).splitlines() if "CPU quota" in ln]
    assert len(said) == 1 and f"a CPU quota of 0.5 CPUs ({cgroup / 'cpu.max'}: 50000 100000)" in said[0], said
    assert sorted(r["params"]["num_intra_threads"] for r in records(out)) == [1, 2]  # measured as asked
    host = json.loads((out / "h1" / "host.json").read_text())
    assert host["topology"]["cpu_quota"] == {"cpus": 0.5, "source": f"{cgroup / 'cpu.max'}: 50000 100000"}
    assert any("CPU quota" in line for line in host["topology"]["restrictions"])


# ---------------------------------------------------------------------------------------------------------------
# Restricted topologies, on fixture trees


def test_an_affinity_keeps_its_own_siblings_and_drops_empty_cores_and_sockets() -> None:
    """Before: there was no view of the host as a restricted process sees it; placements took CPUs 0.. regardless."""
    host = Topology.read(FIXTURES / "2s-18c-smt")
    # Second SMT siblings of socket 0's first four cores, and one CPU of socket 1.
    topo = host.restricted_to([36, 37, 38, 39, 18])
    assert topo.cpus == (18, 36, 37, 38, 39) and topo.host_cpus == host.cpus and topo.restricted
    assert topo.cores(0) == [[36], [37], [38], [39]] and topo.cores(1) == [[18]]
    assert topo.physical_cores == 5 and topo.cores_per_socket == 1 and not topo.smt
    assert topology.placement_cpus(topo, "sequential", 5) == [18, 36, 37, 38, 39]
    assert topology.placement_cpus(topo, "interleave", 2) == [18, 36]
    assert topo.node_cpus == ((36, 37, 38, 39), (18,))
    only_socket_1 = host.restricted_to([18, 19])
    assert only_socket_1.sockets == (1,) and only_socket_1.node_cpus == ((), (18, 19))
    with pytest.raises(NotApplicable, match="one socket"):
        topology.placement_cpus(only_socket_1, "interleave", 2)
    with pytest.raises(PlacementError, match=r"^threads 3: this process may use 2 physical cores \(1 socket x 2\) "
                       r"of the host's CPUs 0-71 \(its CPU affinity\)$"):  # fmt: skip
        topology.check_threads(only_socket_1, "sequential", 3)
    with pytest.raises(TopologyError, match=r"may run on CPUs 100-101, none of them online"):
        host.restricted_to([100, 101])
    assert host.restricted_to(host.cpus) == host  # everything allowed: the host as read
    d = topo.to_dict()
    assert d["host_cpus"] == "0-71" and d["cpus"] == "18,36-39" and d["logical_cpus"] == 5
    assert d["restrictions"] == [
        "this process may use 5 of the host's 72 online CPUs (18,36-39 of 0-71: its CPU affinity, from taskset or a "
        "cpuset): `all`, placements and the host's core counts are of those"
    ]
    assert "host_cpus" not in host.to_dict() and "restrictions" not in host.to_dict()


def test_all_and_the_plan_notes_of_a_restricted_host() -> None:
    """Before: `all` was the machine's cores of a socket, and nothing said the process had fewer."""
    topo = Topology.read(FIXTURES / "2s-18c-nosmt").restricted_to(range(4), quota=(2.5, "cpu.max: 250000 100000"))
    text = "name: t\nmodels: {trivial: 8}\nmatrix:\n  num_intra_threads: all\n  placement: [sequential]\n"
    c = cfg.resolve(cfg.parse_config(text, "c.yaml"), topo)
    assert c.matrix["num_intra_threads"] == [1, 2, 3, 4]
    notes = cfg.plan_notes(c)
    assert notes[0].startswith("this process may use 4 of the host's 36 online CPUs (0-3 of 0-35")
    assert notes[1] == (
        "a CPU quota of 2.5 CPUs (cpu.max: 250000 100000) is below the 4 CPUs this process may use: runs of more "
        "threads than that are throttled by the kernel, and measured so"
    )
    unpinned = "name: t\nmodels: {trivial: 8}\nmatrix:\n  num_intra_threads: [2, 8]\n  memory: [local]\n"
    c = cfg.resolve(cfg.parse_config(unpinned, "c.yaml"), topo)
    assert cfg.plan_notes(c)[-1] == (
        "num_intra_threads 8: more threads than the 4 CPUs this process may use: those runs share CPUs"
    )


def test_cpus_offline_and_numbered_with_gaps(tmp_path: Path) -> None:
    """CPUs 0,2,4,6 online of a 4-core SMT host (siblings 1,3,5,7 offline): one CPU per core, no SMT."""
    sib = {c: f"{c - c % 2}-{c - c % 2 + 1}" for c in (0, 2, 4, 6)}
    root = tree(tmp_path / "sys", one_socket(sib, "0,2,4,6", {0: "0-7"}, "0", "10"))
    topo = Topology.read(root)
    assert topo.cpus == (0, 2, 4, 6) and topo.cores(0) == [[0], [2], [4], [6]] and not topo.smt
    assert topology.placement_cpus(topo, "sequential", 3) == [0, 2, 4]
    assert topo.restricted_to([4, 6, 5]).cpus == (4, 6)  # an offline CPU in the affinity is none of its CPUs


def test_a_memory_only_node_is_remote_memory_and_a_memoryless_node_is_no_local_memory(tmp_path: Path) -> None:
    """A CXL node (memory, no CPUs) reads and binds as remote memory; a node with CPUs and no memory is n/a as local
    memory. Before: `local` there was planned as node 1 and the kernel refused the child's set_mempolicy."""
    sib = {c: str(c) for c in range(4)}
    cxl = Topology.read(tree(tmp_path / "cxl", one_socket(sib, "0-3", {0: "0-3", 1: ""}, "0-1", "10 14;14 10")))
    assert cxl.node_cpus == ((0, 1, 2, 3), ()) and cxl.nodes_with_memory == (0, 1)
    assert topology.memory_nodes(cxl, [0, 1], "local") == [0]
    assert topology.memory_nodes(cxl, [0, 1], "remote") == [1]
    assert cxl.to_dict()["nodes"][1] == {"node": 1, "cpus": "", "memory": True, "distances": [14, 10]}
    memless = Topology.read(tree(tmp_path / "ml", one_socket(sib, "0-3", {0: "0-1", 1: "2-3"}, "0", "10 21;21 10")))
    assert topology.memory_nodes(memless, [0], "local") == [0]
    with pytest.raises(NotApplicable, match=r"^node 1 of these cores has no memory of its own$"):
        topology.memory_nodes(memless, [2], "local")
    assert topology.memory_nodes(memless, [0, 2], "local") == [0]  # what the kernel binds, and so what is recorded
    assert topology.memory_nodes(memless, [2], "remote") == [0]


def test_a_cpuset_memory_restriction_makes_other_nodes_na(tmp_path: Path) -> None:
    """Before: `remote` memory was planned on a node the process's cpuset.mems leaves out: the child failed to start
    with `Exception occurred in preexec_fn`."""
    host = Topology.read(FIXTURES / "2s-4n-snc")
    topo = host.restricted_to(host.cpus, mems=[0])
    assert topo.mems_allowed == (0,) and not topo.restricted
    assert topology.memory_nodes(topo, [0], "local") == [0]
    with pytest.raises(NotApplicable, match=r"^this process may allocate on NUMA node 0 only$"):
        topology.memory_nodes(topo, [0], "remote")
    with pytest.raises(NotApplicable, match=r"^this process may not allocate on node 1 of these cores"):
        topology.memory_nodes(topo, [8], "local")
    assert topology.memory_nodes(topo, [0, 8], "local") == [0]
    assert host.restricted_to(host.cpus, mems=[0, 1, 2, 3]).mems_allowed is None  # all allowed: nothing to say
    assert topo.to_dict()["mems_allowed"] == "0"


# ---------------------------------------------------------------------------------------------------------------
# The cgroup quota


def test_cpu_quota_of_cgroup_v2_v1_nested_and_odd_files(tmp_path: Path) -> None:
    """The smallest quota on the process's cgroup path, v2 or v1; none, or an odd file, is no quota and no crash."""
    proc = tmp_path / "cgroup.txt"
    v2 = tmp_path / "v2"
    tree(v2, {"cpu.max": "max 100000\n", "a/cpu.max": "200000 100000\n", "a/b/cpu.max": "max 100000\n"})
    proc.write_text("0::/a/b\n")
    assert topology.cpu_quota(v2, str(proc)) == (2.0, f"{v2 / 'a' / 'cpu.max'}: 200000 100000")
    proc.write_text("0::/elsewhere/c\n")  # a host path this mount does not have: its ancestors still count
    assert topology.cpu_quota(v2, str(proc)) is None
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert topology.cpu_quota(v2, str(proc)) == (1.5, f"{v2 / 'cpu.max'}: 150000 100000")
    (v2 / "cpu.max").write_text("lots\n")
    assert topology.cpu_quota(v2, str(proc)) is None
    v1 = tmp_path / "v1"
    tree(v1, {"cpu,cpuacct/x/cpu.cfs_quota_us": "50000\n", "cpu,cpuacct/x/cpu.cfs_period_us": "100000\n",
              "cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"})  # fmt: skip
    proc.write_text("5:memory:/x\n4:cpu,cpuacct:/x\n0::/\n")
    assert topology.cpu_quota(v1, str(proc)) == (0.5, f"{v1 / 'cpu,cpuacct' / 'x' / 'cpu.cfs_quota_us'}: 50000 per "
                                                       "100000 us")  # fmt: skip
    proc.write_text("4:cpu,cpuacct:/\n")
    assert topology.cpu_quota(v1, str(proc)) is None
    assert topology.cpu_quota(tmp_path / "nothing", str(tmp_path / "no-proc-file")) is None


def test_limits_measured_on_other_cpus_are_measured_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: limits measured on the whole host were kept for a sweep under `taskset -c 1`, so its one-thread runs
    were set against the all-core GEMM of cores they did not have (half their share, on two cores). Limits now name
    the CPUs they were measured on, and are measured again where those are not the CPUs this process may use."""
    from cpubench.host import limits as lim
    from cpubench.host.record import HostRecord

    monkeypatch.setenv(lim.NO_LIMITS_ENV, "0")
    measured: list[str] = []

    def measure(fp: str | None, flags: object = None) -> dict[str, object]:
        measured.append(str(fp))
        return {"version": lim.LIMITS_VERSION, "machine_fingerprint": fp, "values": {}, "wall_s": 1.0, "cpus": "1"}

    monkeypatch.setattr(lim, "measure", measure)
    whole = {"version": lim.LIMITS_VERSION, "machine_fingerprint": "f", "values": {}, "cpus": "0-1"}
    older = {k: v for k, v in whole.items() if k != "cpus"}  # recorded before limits named their CPUs
    free = HostRecord("h", machine_fingerprint="f", topology={"cpus": "0-1"})
    tied = HostRecord("h", machine_fingerprint="f", topology={"cpus": "1", "host_cpus": "0-1"})
    assert lim.attach(free, HostRecord("h", machine_fingerprint="f", limits=whole)).limits == whole
    assert lim.attach(free, HostRecord("h", machine_fingerprint="f", limits=older)).limits == older
    assert measured == []
    for prev in (whole, older):
        assert lim.attach(tied, HostRecord("h", machine_fingerprint="f", limits=prev)).limits["cpus"] == "1"
    assert measured == ["f", "f"]
