"""Plans made without a host and resolved against one; what a framework cannot run is settled when the plan is made.

Loading a config reads nothing of the machine (a fleet loads on one host and runs on others): the shipped configs
load with every read of /sys and /proc made to fail. ``num_intra_threads: all``, pinned placements and the core
lists of runs come from the topology a plan is resolved against, here the committed sysfs trees of two big hosts.
"""

from __future__ import annotations

import builtins
import io
import os
import pathlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fakeengine import ROOT, fake_env, write_config

from cpubench.host import topology
from cpubench.spec import axes, frameworks
from cpubench.spec import config as cfg
from cpubench.sweep.planner import engine_identity

FIXTURES = Path(__file__).parent / "fixtures" / "sysfs"


class HostRead(AssertionError):
    """Raised (and not an OSError, so no caller can take it for a missing file) when a path of the host is read."""


@pytest.fixture
def no_host_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every way of opening, listing or stat-ing a path raises for one under /sys or /proc; yields what was tried."""
    tried: list[str] = []

    def guard(fn: Callable[..., Any], arg: int = 0) -> Callable[..., Any]:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if len(args) > arg and isinstance(args[arg], (str, bytes, os.PathLike)):
                path = os.fsdecode(args[arg])
                if path == "/sys" or path == "/proc" or path.startswith(("/sys/", "/proc/")):
                    tried.append(path)
                    raise HostRead(f"read of the host: {path}")
            return fn(*args, **kwargs)

        return guarded

    for mod, name in ((builtins, "open"), (io, "open"), (os, "open"), (os, "stat"), (os, "lstat"),
                      (os, "listdir"), (os, "scandir")):  # fmt: skip
        monkeypatch.setattr(mod, name, guard(getattr(mod, name)))
    for name in ("read_text", "read_bytes", "open", "iterdir", "stat", "exists", "is_dir", "is_file"):
        monkeypatch.setattr(pathlib.Path, name, guard(getattr(pathlib.Path, name)))
    yield tried


def host(name: str) -> topology.Topology:
    return topology.Topology.read(FIXTURES / name)


def test_every_shipped_config_loads_and_validates_without_reading_the_host(no_host_reads: list[str]) -> None:
    with pytest.raises(HostRead):  # the guard bites
        topology.Topology.read()
    no_host_reads.clear()
    names = cfg.packaged_configs()
    assert {"cpu-default", "scaling", "scaling-quick", "tf-vs-torch"} <= set(names)
    for name in names:
        c = cfg.load_config(name)
        if not cfg.needs_host(c):
            assert cfg.plan(c), name  # a config that pins nothing plans on no host at all
    scaling = cfg.load_config("scaling")
    assert [v.text for v in scaling.on_host()] == ["all"] and cfg.needs_host(scaling)
    with pytest.raises(cfg.ConfigError, match=r"scaling.yaml:\d+: matrix.num_intra_threads: all depends on the host"):
        cfg.plan(scaling)
    # Static mistakes are still found at load, with no host.
    with pytest.raises(cfg.ConfigError, match=r"c.yaml:4: matrix.num_intra_threads: .some.: expected a number"):
        cfg.parse_config("name: t\nmodels: {trivial: 8}\nmatrix:\n  num_intra_threads: some\n", "c.yaml")
    with pytest.raises(cfg.ConfigError, match=r"a pinned placement needs matrix.num_intra_threads of 1 or more"):
        cfg.parse_config("name: t\nmodels: {trivial: 8}\nmatrix: {placement: [sequential]}\n", "c.yaml")
    assert cfg.parse_config("name: t\nmodels: {trivial: 8}\nmatrix: {num_intra_threads: 2..4}\n").matrix == {
        "num_intra_threads": [2, 3, 4]
    }
    # Resolved against a topology passed in, nothing of this host is read either.
    resolved = cfg.resolve(scaling, host("2s-18c-smt"))
    assert cfg.plan(resolved) and not no_host_reads


def launches(c: cfg.Config) -> dict[tuple[str, int, str], tuple[list[int] | None, list[int] | None] | str]:
    """(placement, threads, memory) -> (CPUs, memory nodes) of the resolved plan's runs, or n/a with the reason."""
    out: dict[tuple[str, int, str], tuple[list[int] | None, list[int] | None] | str] = {}
    for run in cfg.plan(c, repeats=1):
        p = run.setting.params
        key = (p["placement"], p["num_intra_threads"], p["memory"])
        try:
            launch = cfg.launch(c, run)
            out[key] = (launch.cpus, launch.membind)
        except topology.NotApplicable as e:
            out[key] = f"n/a: {e}"
    return out


def test_scaling_resolved_against_two_sockets_of_18_cores_with_smt() -> None:
    topo = host("2s-18c-smt")
    c = cfg.resolve(cfg.load_config("scaling"), topo)
    assert c.topology == topo and c.matrix["num_intra_threads"] == list(range(1, 19))
    runs = cfg.plan(c, repeats=1)
    assert sorted({r.setting.params["num_intra_threads"] for r in runs}) == list(range(1, 19))
    assert len(runs) == 18 * 2 * 2 * 2 * 2 * 11  # threads x execution x placement x memory x models x batches
    got = launches(c)
    assert got[("sequential", 1, "local")] == ([0], [0])
    assert got[("sequential", 3, "remote")] == ([0, 1, 2], [1])
    assert got[("sequential", 18, "local")] == (list(range(18)), [0])  # the first SMT sibling of each core
    assert got[("interleave", 3, "local")] == ([0, 1, 18], [0, 1])
    assert got[("interleave", 18, "local")] == ([*range(9), *range(18, 27)], [0, 1])
    assert got[("interleave", 1, "remote")] == ([0], [1])
    assert got[("interleave", 3, "remote")] == "n/a: the cores span every NUMA node"


def test_scaling_resolved_against_four_numa_nodes() -> None:
    topo = host("2s-4n-snc")
    c = cfg.resolve(cfg.load_config("scaling"), topo)
    assert c.matrix["num_intra_threads"] == list(range(1, 17))
    got = launches(c)
    assert got[("sequential", 3, "local")] == ([0, 1, 2], [0])
    assert got[("sequential", 3, "remote")] == ([0, 1, 2], [1])  # the same socket's other node: nearest
    assert got[("sequential", 16, "local")] == (list(range(16)), [0, 1])
    assert got[("sequential", 16, "remote")] == (list(range(16)), [2])
    assert got[("interleave", 3, "local")] == ([0, 1, 16], [0, 2])
    assert got[("interleave", 16, "remote")] == ([*range(8), *range(16, 24)], [1])
    # The same config resolved against a small host plans fewer threads, and interleave there is n/a.
    small = cfg.resolve(cfg.load_config("scaling-quick"), host("vm-2cpu"))
    assert small.matrix["num_intra_threads"] == [1, 2]
    assert launches(small)[("sequential", 2, "remote")] == "n/a: one NUMA node"


def test_resolve_errors_name_the_config_line() -> None:
    text = "name: t\nmodels: {trivial: 8}\nmatrix:\n  placement: [sequential]\n  num_intra_threads: [1, 40]\n"
    c = cfg.parse_config(text, "c.yaml")
    with pytest.raises(cfg.ConfigError, match=r"^c.yaml:5: matrix.num_intra_threads: placement sequential: threads "
                       r"40: this host has 36 physical cores \(2 sockets x 18\)$"):  # fmt: skip
        cfg.resolve(c, host("2s-18c-smt"))
    with pytest.raises(cfg.ConfigError, match=r"threads 40: this host has 32 physical cores"):
        cfg.resolve(c, host("2s-4n-snc"))
    twice = cfg.parse_config("name: t\nmodels: {trivial: 8}\nmatrix:\n  num_intra_threads: [2, all]\n", "c.yaml")
    with pytest.raises(cfg.ConfigError, match=r"^c.yaml:4: matrix.num_intra_threads: a value is listed twice$"):
        cfg.resolve(twice, host("vm-2cpu"))

    def unreadable() -> topology.Topology:
        raise topology.TopologyError("cannot read /sys/devices/system/cpu/online: No such file")

    with pytest.raises(cfg.ConfigError, match=r"^c.yaml:4: matrix.num_intra_threads\[1\]: cannot read this host's "):
        cfg.resolve(twice, unreadable)
    plain = cfg.parse_config("name: t\nmodels: {trivial: 8}\n")
    assert cfg.resolve(plain, unreadable) is plain  # a reader is called only when the config needs a host
    resolved = cfg.resolve(cfg.load_config("scaling"), host("2s-18c-smt"))
    assert cfg.resolve(resolved, unreadable) is resolved  # already bound: as it is
    with pytest.raises(ValueError, match="already resolved against another host"):
        cfg.resolve(resolved, host("vm-2cpu"))


# ---------------------------------------------------------------------------------------------------------------
# Frameworks


def cpu_default_with_both_frameworks() -> cfg.Config:
    """The shipped cpu-default as a new user would try both frameworks: the framework axis added to its matrix."""
    text = (cfg.PACKAGE_CONFIGS / "cpu-default.yaml").read_text()
    assert "matrix:\n  data: [syn, real]\n" in text
    text = text.replace("matrix:\n", "matrix:\n  framework: [tensorflow, pytorch]\n")
    return cfg.parse_config(text, "cpu-default+pytorch.yaml")


def test_cpu_default_with_pytorch_plans_what_pytorch_runs_and_says_what_it_left_out() -> None:
    both = cpu_default_with_both_frameworks()
    runs = cfg.plan(both, repeats=1)
    torch = [r for r in runs if r.setting.params["framework"] == "pytorch"]
    assert sorted({(r.setting.name, r.model) for r in torch}) == [
        ("syn-parameter_server-1cpus-inference-pytorch-eager", "alexnet"),
        ("syn-parameter_server-1cpus-inference-pytorch-eager", "resnet50"),
        ("syn-parameter_server-1cpus-pytorch-eager", "alexnet"),
        ("syn-parameter_server-1cpus-pytorch-eager", "lenet"),
        ("syn-parameter_server-1cpus-pytorch-eager", "trivial"),
    ]
    for r in torch:  # what runs, in the params and in the command line: one device, local variables, no NCCL
        p = r.setting.params
        assert p["num_devices"] == 1 and p["variable_update"] == "parameter_server" and p["nccl"] is False
        assert p["data"] == "syn" and p["execution"] == "eager"
        flags = cfg.engine_flags(both, r, "")
        assert "--variable_update=parameter_server" in flags and "--all_reduce_spec=" in flags
        assert "--num_gpus=1" in flags and "--framework=pytorch" in flags
    assert cfg.left_out(both) == {"pytorch has no real-data input (synthetic data only)": 2}
    assert cfg.runs_as(both) == {
        "pytorch on one device has local variables: variable_update replicated runs as parameter_server": 2
    }
    assert cfg.plan_notes(both) == [
        "2 settings left out of the plan: pytorch has no real-data input (synthetic data only)",
        "2 settings run as another: pytorch on one device has local variables: variable_update replicated runs as "
        "parameter_server",
    ]
    # TensorFlow's runs are the shipped config's, with the same names and run hashes: a folder resumes as it was.
    shipped = cfg.load_config("cpu-default")
    engine = engine_identity([], True, "2.21.0", "2.9.0")
    tf = [r for r in runs if r.setting.params["framework"] == "tensorflow"]
    old = cfg.plan(shipped, repeats=1)
    assert [r.key for r in tf] == [r.key for r in old]
    source = {"generated": {"count": 256}}
    assert [cfg.run_hash(both, r, source, engine) for r in tf] == [
        cfg.run_hash(shipped, r, source, engine) for r in old
    ]


def test_modes_that_run_the_same_are_planned_once_and_what_cannot_run_is_left_out() -> None:
    c = cfg.parse_config(
        "name: t\nmodels: {trivial: [2]}\nnum_gpus: [1, 2]\nmatrix:\n  framework: [tensorflow, pytorch]\n"
        "  variable_update: [parameter_server, replicated, independent]\n  nccl: [false, true]\n"
        "exclude:\n  - {variable_update: [parameter_server, independent], nccl: true}\n"
    )
    runs = cfg.plan(c, repeats=2)
    torch = [r for r in runs if r.setting.params["framework"] == "pytorch"]
    assert [r.setting.name for r in torch] == ["syn-parameter_server-1cpus-pytorch-eager"] * 2  # once per repeat
    assert len({r.key for r in runs}) == len(runs)
    tf = {r.setting.name for r in runs if r.setting.params["framework"] == "tensorflow"}
    assert len(tf) == 2 * 4 and "syn-replicated-nccl-2cpus" in tf and "syn-independent-1cpus" in tf
    assert cfg.left_out(c) == {"pytorch has no NCCL all-reduce": 4, "pytorch runs one device, not 2": 3}
    assert cfg.runs_as(c) == {
        "pytorch on one device has local variables: variable_update replicated runs as parameter_server": 1,
        "pytorch on one device has local variables: variable_update independent runs as parameter_server": 1,
    }
    gpu = cfg.parse_config("name: g\ndevice: gpu\nmodels: {trivial: [2]}\nmatrix: {framework: [tensorflow, pytorch]}\n")
    assert [r.setting.params["framework"] for r in cfg.plan(gpu, 1)] == ["tensorflow"]
    assert cfg.left_out(gpu) == {"pytorch runs on cpu only": 1}


def test_the_capability_table_covers_every_framework_the_engine_knows() -> None:
    from tf_cnn_benchmarks import flags

    assert tuple(frameworks.table()) == flags.FRAMEWORKS
    for name, caps in frameworks.table().items():
        assert caps.executions == flags.EXECUTIONS[name]
        assert caps.one_device_update is None or caps.one_device_update in axes.get("variable_update").allowed
    tf = frameworks.of(None)
    assert tf.name == "tensorflow" and tf.max_devices is None and tf.one_device_update is None and tf.nccl


def test_dry_run_says_what_the_plan_left_out_and_starts_no_engine(tmp_path: Path) -> None:
    c = write_config(tmp_path / "c.yaml", {"trivial": 8}, num_gpus=[1, 2],
                     matrix={"framework": ["tensorflow", "pytorch"], "variable_update": ["replicated"]})  # fmt: skip
    env = fake_env(tmp_path)
    p = subprocess.run([sys.executable, "-m", "cpubench", "run", "--config", str(c), "--out", str(tmp_path / "d"),
                        "--host-id", "h", "--dry-run"], env=env, cwd=ROOT, capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "cpubench: 3 runs to do" in p.stdout
    assert "cpubench: 1 settings left out of the plan: pytorch runs one device, not 2" in p.stdout
    assert "cpubench: 1 settings run as another: pytorch on one device has local variables" in p.stdout
    assert "syn-parameter_server-1cpus-pytorch-eager  trivial  bs8  r0" in p.stdout
    assert not (tmp_path / "calls.jsonl").exists()
