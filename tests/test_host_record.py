"""host.json as one typed record: read and written only through the store, nothing lost between versions."""

from __future__ import annotations

import json
import shutil
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest

from cpubench.host import facts
from cpubench.host.record import _CHECKS, HOST_SCHEMA, HostRecord, HostRecordError
from cpubench.results import hosts, store

SCHEMA1 = Path(__file__).parent / "fixtures" / "schema1" / "data"

# What the previous version's collect_host wrote (before the record type): every key, nulls included.
PREVIOUS_VERSION: dict[str, Any] = {
    "arch": "x86_64", "caches": {"L1d": {"shared_cpu_list": "0-1", "size": "48K"}},
    "collected": "2026-12-02T10:00:00+00:00", "cores_logical": 4, "cores_physical": 2,
    "cpu_brand": "Intel(R) Xeon(R) Platinum 8480+", "cpu_family": 6, "cpu_flags_of_interest": ["amx_tile", "avx2"],
    "cpu_hz_advertised": 2000000000, "cpu_model": 143, "cpu_stepping": 8, "cpu_vendor": "GenuineIntel",
    "cpubench_version": "0.2.0", "env": {"OMP_NUM_THREADS": "2"}, "governor": None,
    "gpus": [{"index": 0, "name": "NVIDIA H100", "memory_mib": 81559, "driver": "550.54", "pci_bus_id": "0:1"}],
    "host_id": "Xeon-8480", "hostname": "box", "kernel": "6.8.0", "machine_fingerprint": "0123456789ab",
    "memory_bytes": 17179869184, "numa_nodes": 1, "os": "Ubuntu 24.04 LTS", "python": "3.12.3",
    "python_executable": "/usr/bin/python3", "schema": 1, "smt": True, "sockets": 1, "threads_per_core": 2,
    "tf_build": {"onednn": {"enabled": True}, "probe": {"skipped": "not requested"}, "probe_key": {}},
    "tf_version": "2.21.0", "topology": {"cpus": [0, 1, 2, 3]}, "torch_build": None, "torch_version": None,
}  # fmt: skip


def _written(host: dict[str, Any]) -> str:
    """A host.json as every version wrote it: sorted keys, indented by two, a final newline."""
    return json.dumps(host, indent=2, sort_keys=True) + "\n"


def test_every_declared_field_has_a_check() -> None:
    declared = {f.name for f in fields(HostRecord)} - {"schema", "extra", "nulls"}
    assert declared == set(_CHECKS)


def test_round_trip_keeps_values_nulls_and_absences() -> None:
    rec = HostRecord.from_dict(PREVIOUS_VERSION)
    assert rec.to_dict() == PREVIOUS_VERSION and HostRecord.from_dict(rec.to_dict()) == rec
    assert (
        rec.cpu_brand == "Intel(R) Xeon(R) Platinum 8480+" and rec.smt is True and rec.gpus[0]["name"] == "NVIDIA H100"
    )
    assert rec.governor is None and rec.has("governor") and "governor" in rec.to_dict()  # known empty: kept as null
    lean = HostRecord(host_id="box", machine_fingerprint="fp")
    assert lean.to_dict() == {"schema": HOST_SCHEMA, "host_id": "box", "machine_fingerprint": "fp"}
    assert not lean.has("governor")  # unknown: left out, not written as null
    # to_dict hands out copies: changing them changes nothing in the record
    rec.to_dict()["env"]["OMP_NUM_THREADS"] = "64"
    assert rec.env == {"OMP_NUM_THREADS": "2"}


def test_unknown_keys_are_kept_and_written_back(tmp_path: Path) -> None:
    newer_fields = {**PREVIOUS_VERSION, "bios": {"vendor": "AMI"}, "power_cap_w": 350}
    rec = HostRecord.from_dict(newer_fields)
    assert rec.extra == {"bios": {"vendor": "AMI"}, "power_cap_w": 350}
    store.write_host(tmp_path, rec)
    assert store.read_host(tmp_path / "Xeon-8480").to_dict() == newer_fields
    # and they survive a change of a declared field
    changed = replace(rec, cpu_brand="other")
    assert changed.to_dict()["power_cap_w"] == 350 and changed.to_dict()["cpu_brand"] == "other"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("host_id", 7),
        ("host_id", ""),
        ("cpu_brand", ["Xeon"]),
        ("sockets", "2"),
        ("sockets", True),
        ("cores_logical", -1),
        ("memory_bytes", 1.5),
        ("smt", "yes"),
        ("cpu_hz_advertised", float("nan")),
        ("caches", ["L1d"]),
        ("cpu_flags_of_interest", ["avx", 2]),
        ("gpus", [3]),
        ("env", {"OMP_NUM_THREADS": 4}),
        ("schema", "1"),
    ],
)
def test_wrong_types_are_refused_with_the_field_named(key: str, value: Any) -> None:
    with pytest.raises(HostRecordError, match=f"^{key}: "):
        HostRecord.from_dict({**PREVIOUS_VERSION, key: value})


@pytest.mark.parametrize(
    ("limits", "said"),
    [
        (
            {"values": {"gemm_fp32_all": {"value": "200"}}},
            "limits.values.gemm_fp32_all.value: expected a finite number or null, got '200'",
        ),
        ({"values": {"triad_all": 31.6}}, "limits.values.triad_all: expected an object with a `value`, got 31.6"),
        ({"values": [1]}, "limits.values: expected an object of entries, got [1]"),
        ("fast", "limits: expected an object with `values`"),
    ],
)
def test_a_damaged_limit_is_named_by_its_entry(limits: Any, said: str) -> None:
    """Before: the error repeated the whole limits object, cut off at 120 characters before the bad entry."""
    big = {n: {"value": 1.0, "unit": "GFLOP/s", "how": "x" * 80} for n in ("a", "b", "c")}
    if isinstance(limits, dict) and isinstance(limits["values"], dict):
        limits = {**limits, "values": {**big, **limits["values"]}}
    with pytest.raises(HostRecordError) as e:
        HostRecord.from_dict({**PREVIOUS_VERSION, "limits": limits})
    assert str(e.value).startswith(said), str(e.value)


def test_the_store_names_the_file_and_the_field(tmp_path: Path) -> None:
    folder = tmp_path / "box"
    folder.mkdir()
    (folder / store.HOST_FILE).write_text(_written({**PREVIOUS_VERSION, "sockets": "two"}))
    with pytest.raises(store.StoreError, match=r"host.json: sockets: expected an integer >= 0, got 'two'; restore"):
        store.read_host(folder)
    (folder / store.HOST_FILE).write_text("[1, 2]\n")
    with pytest.raises(store.StoreError, match="not a host record"):
        store.read_host(folder)
    with pytest.raises(store.StoreError, match="cores_logical"):
        store.write_host(tmp_path, {"host_id": "box", "cores_logical": "many"})  # never written
    assert (folder / store.HOST_FILE).read_text() == "[1, 2]\n"


def test_newer_schema_says_upgrade_and_is_never_overwritten(tmp_path: Path) -> None:
    with pytest.raises(HostRecordError, match="host schema 2, this one reads 1\\): upgrade$"):
        HostRecord.from_dict({**PREVIOUS_VERSION, "schema": HOST_SCHEMA + 1})
    with pytest.raises(HostRecordError, match="schema: unknown host schema 0"):
        HostRecord.from_dict({**PREVIOUS_VERSION, "schema": 0})
    folder = tmp_path / "box"
    folder.mkdir()
    newer = _written({"schema": 2, "host_id": "box", "machine_fingerprint": facts.machine_fingerprint()})
    (folder / store.HOST_FILE).write_text(newer)
    with pytest.raises(store.NewerHostError, match="upgrade"):
        store.read_host(folder)
    # The runner would write an older host.json over it: choosing that folder is refused, with the same fix.
    with pytest.raises(store.NewerHostError, match="upgrade"):
        hosts.resolve_host_id(tmp_path, "box")
    assert (folder / store.HOST_FILE).read_text() == newer


def test_schema1_fixture_folders_read_and_write_back_byte_identical(tmp_path: Path) -> None:
    shutil.copytree(SCHEMA1, tmp_path / "data")
    f = tmp_path / "data" / "schema1-host" / store.HOST_FILE
    before = f.read_bytes()
    rec = store.read_host(f.parent)
    assert rec.host_id == "schema1-host" and rec.schema == 1 and not rec.extra
    assert rec.cpu_brand == "AMD EPYC" and rec.cores_logical == 2 and rec.smt is False and rec.governor is None
    assert rec.tf_build is not None and rec.tf_build["onednn"]["enabled"] is True
    assert rec.topology is None and not rec.has("torch_version")  # written before those fields existed
    store.write_host(tmp_path / "data", rec)
    assert f.read_bytes() == before
    assert store.load_host(f.parent).host == rec  # the folder reads whole, its host as the record


def test_previous_version_folders_write_back_byte_identical(tmp_path: Path) -> None:
    folder = tmp_path / "Xeon-8480"
    folder.mkdir()
    (folder / store.HOST_FILE).write_text(_written(PREVIOUS_VERSION))
    before = (folder / store.HOST_FILE).read_bytes()
    store.write_host(tmp_path, store.read_host(folder))
    assert (folder / store.HOST_FILE).read_bytes() == before
    # A hand-made (test) folder from a mapping is the same as from the record it reads as.
    store.write_host(tmp_path, dict(PREVIOUS_VERSION))
    assert (folder / store.HOST_FILE).read_bytes() == before
