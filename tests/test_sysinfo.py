"""Host ids (readable, never colliding) and host metadata (every agreed field, slow parts collected once)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from cpubench.host import facts
from cpubench.results import hosts, store

HOST_KEYS = (
    "schema", "host_id", "cpu_brand", "cpu_vendor", "cpu_family", "cpu_model", "cpu_flags_of_interest", "sockets",
    "cores_physical", "cores_logical", "threads_per_core", "smt", "numa_nodes", "caches", "memory_bytes", "kernel",
    "os", "governor", "tf_version", "tf_build", "python", "gpus", "env", "machine_fingerprint", "collected",
    "cpubench_version",
)  # fmt: skip


@pytest.mark.parametrize(
    ("brand", "short"),
    [
        ("Intel(R) Core(TM) i7-7820X CPU @ 3.60GHz", "i7-7820X"),
        ("AMD EPYC 9654 96-Core Processor", "EPYC-9654"),
        ("Intel(R) Xeon(R) Platinum 8480+", "Xeon-8480"),
        ("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", "Xeon-6248"),
        ("Intel(R) Xeon(R) CPU E5-2690 v4 @ 2.60GHz", "Xeon-E5-2690v4"),
        ("AMD Ryzen 9 7950X 16-Core Processor", "Ryzen-7950X"),
        ("AMD Ryzen Threadripper PRO 5995WX 64-Cores", "Threadripper-5995WX"),
        ("AMD EPYC 7B13", "EPYC-7B13"),
        ("AMD EPYC", "EPYC"),
        ("Neoverse-N1", "Neoverse-N1"),
    ],
)
def test_short_cpu_names_match_the_classic_columns(brand: str, short: str) -> None:
    assert facts.short_cpu_name(brand) == short


def _claim(root: Path, host_id: str, fingerprint: str) -> None:
    store.write_host(root, {"host_id": host_id, "machine_fingerprint": fingerprint})


def test_host_id_gets_a_stable_suffix_only_when_needed(tmp_path: Path) -> None:
    fp = facts.machine_fingerprint()
    assert fp == facts.machine_fingerprint() and len(fp) == 12
    base = facts.short_cpu_name(facts.cheap_brand())
    assert hosts.resolve_host_id(tmp_path) == base
    assert hosts.resolve_host_id(tmp_path, unique=True) == f"{base}-{fp[:4]}"
    _claim(tmp_path, base, fp)  # our own folder: resume in it
    assert hosts.resolve_host_id(tmp_path) == base
    _claim(tmp_path, base, "0000another0")  # another machine's folder with our name: suffix
    assert hosts.resolve_host_id(tmp_path) == f"{base}-{fp[:4]}"


def test_explicit_host_id_is_checked(tmp_path: Path) -> None:
    assert hosts.resolve_host_id(tmp_path, "lab-box_1.a") == "lab-box_1.a"
    for bad in ("../x", "a b", ".hidden", "x" * 65):
        with pytest.raises(hosts.HostIdError):
            hosts.resolve_host_id(tmp_path, bad)
    _claim(tmp_path, "taken", "0000another0")
    with pytest.raises(hosts.HostIdError, match="holds results of another machine"):
        hosts.resolve_host_id(tmp_path, "taken")


def test_onednn_state_from_env_and_cpu_flags() -> None:
    assert facts.onednn_state([], {"TF_ENABLE_ONEDNN_OPTS": "1"}, "x86_64")["enabled"] is True
    assert facts.onednn_state(["amx_tile"], {"TF_ENABLE_ONEDNN_OPTS": "0"}, "x86_64")["enabled"] is False
    on = facts.onednn_state(["avx2", "avx512_vnni"], {}, "x86_64")
    assert on["enabled"] is True and "avx512_vnni" in on["source"]
    assert facts.onednn_state(["avx2", "avx512f"], {}, "x86_64")["enabled"] is False
    assert facts.onednn_state([], {}, "aarch64")["enabled"] is True


def test_speed_env_keeps_only_variables_that_change_speed() -> None:
    env = {"OMP_NUM_THREADS": "4", "KMP_BLOCKTIME": "0", "TF_ENABLE_ONEDNN_OPTS": "1", "HOME": "/root", "PATH": "x",
           "ONEDNN_VERBOSE": "0", "MKL_NUM_THREADS": "2"}  # fmt: skip
    assert set(facts.speed_env(env)) == {"OMP_NUM_THREADS", "KMP_BLOCKTIME", "TF_ENABLE_ONEDNN_OPTS",
                                           "ONEDNN_VERBOSE", "MKL_NUM_THREADS"}  # fmt: skip


def test_collect_host_has_every_field_and_reuses_the_slow_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(facts.NO_TF_PROBE_ENV, "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    host = facts.collect_host("h")
    written = host.to_dict()
    assert all(k in written for k in HOST_KEYS), [k for k in HOST_KEYS if k not in written]
    assert not host.extra  # everything collect_host writes is a declared field
    assert host.host_id == "h" and host.machine_fingerprint == facts.machine_fingerprint()
    assert host.cores_logical >= host.cores_physical >= 1 and host.sockets >= 1
    assert isinstance(host.smt, bool) and host.threads_per_core >= 1 and host.numa_nodes >= 1
    assert host.memory_bytes > 2**28 and host.cpu_brand and host.env["OMP_NUM_THREADS"] == "3"
    assert host.tf_version == facts.tf_version_installed()
    assert isinstance(host.tf_build["onednn"]["enabled"], bool)
    assert host.collected.endswith("+00:00") and isinstance(host.gpus, list)
    json.dumps(written, allow_nan=False)

    def slow() -> dict:
        raise AssertionError("py-cpuinfo called again for the same machine")

    monkeypatch.setattr(facts, "_cpuinfo_facts", slow)
    again = facts.collect_host("h", previous=host)
    assert again.cpu_brand == host.cpu_brand and again.caches == host.caches
    with pytest.raises(AssertionError, match="py-cpuinfo called again"):
        facts.collect_host("h", previous=replace(host, machine_fingerprint="0000another0"))


def test_collect_host_reuses_what_the_folder_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner's round trip: collect, write, read back as the previous record, collect again without py-cpuinfo."""
    monkeypatch.setenv(facts.NO_TF_PROBE_ENV, "1")
    said: list[str] = []
    assert hosts.read_previous(tmp_path, "h", said.append) is None
    first = facts.collect_host("h")
    store.write_host(tmp_path, first)
    previous = hosts.read_previous(tmp_path, "h", said.append)
    assert previous == first

    def slow() -> dict:
        raise AssertionError("py-cpuinfo called again for the same machine")

    monkeypatch.setattr(facts, "_cpuinfo_facts", slow)
    assert facts.collect_host("h", previous=previous).cpu_brand == first.cpu_brand
    (tmp_path / "h" / store.HOST_FILE).write_text("{not json")
    assert hosts.read_previous(tmp_path, "h", said.append) is None  # unreadable counts as none: it is written afresh
    (kept,) = (tmp_path / "h").glob(f"{store.HOST_FILE}.unreadable-*")  # ... once it is kept aside, and said
    assert kept.read_text() == "{not json" and len(said) == 1 and kept.name in said[0]


def test_tensorflow_probe_reports_version_and_onednn(monkeypatch: pytest.MonkeyPatch) -> None:
    """Imports TensorFlow once, in a child process (a few seconds)."""
    monkeypatch.delenv(facts.NO_TF_PROBE_ENV, raising=False)
    probe = facts.probe_tensorflow()
    assert "error" not in probe, probe
    assert probe["tf_version"] == facts.tf_version_installed()
    assert isinstance(probe["onednn_enabled_tf"], bool) and "is_cuda_build" in probe["build_info"]
