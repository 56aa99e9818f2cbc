"""The host's limits (cpubench.host.limits): measured once per machine by ``cpubench run`` into host.json, kept while
the machine's fingerprint is the same, measured again when it changes, skipped by the tests' switches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fakeengine import cpubench_run, write_config

from cpubench.host import limits
from cpubench.host.record import HostRecord


def fake_limits(fp: str, stamp: str = "then") -> dict[str, Any]:
    return {"version": limits.LIMITS_VERSION, "machine_fingerprint": fp, "measured": stamp, "wall_s": 1.0,
            "values": {limits.GEMM_FP32_ALL: {"value": 100.0, "unit": limits.GFLOPS}}}  # fmt: skip


def test_attach_keeps_this_machines_limits_and_measures_another_machines_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(limits.NO_LIMITS_ENV, "0")
    measured: list[str | None] = []

    def measure(fp: str | None, flags: Any = None) -> dict[str, Any]:
        measured.append(fp)
        return fake_limits(fp or "", "now")

    monkeypatch.setattr(limits, "measure", measure)
    host = HostRecord("h", machine_fingerprint="aaaa")
    kept = limits.attach(host, HostRecord("h", machine_fingerprint="aaaa", limits=fake_limits("aaaa")))
    assert kept.limits == fake_limits("aaaa") and measured == []
    fresh = limits.attach(host, HostRecord("h", machine_fingerprint="bbbb", limits=fake_limits("bbbb")))
    assert measured == ["aaaa"] and fresh.limits == fake_limits("aaaa", "now")
    old_version = {**fake_limits("aaaa"), "version": limits.LIMITS_VERSION - 1}
    limits.attach(host, HostRecord("h", machine_fingerprint="aaaa", limits=old_version))
    assert measured == ["aaaa", "aaaa"]


def test_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(limits.NO_LIMITS_ENV, raising=False)
    monkeypatch.setenv(limits.NO_TF_PROBE_ENV, "1")
    assert limits.skipped() == "CPUBENCH_NO_TF_PROBE is set"
    monkeypatch.setenv(limits.NO_LIMITS_ENV, "0")
    assert limits.skipped() is None
    monkeypatch.setenv(limits.NO_LIMITS_ENV, "1")
    assert limits.skipped() == "CPUBENCH_NO_LIMITS is set"
    host = HostRecord("h", machine_fingerprint="aaaa")
    assert limits.attach(host, None).limits is None  # skipped: nothing measured, nothing invented
    assert limits.attach(host, HostRecord("h", machine_fingerprint="aaaa", limits=fake_limits("aaaa"))).limits


def test_cpubench_run_records_the_limits_once_and_again_for_another_machine(
    tmp_path: Path, env: dict[str, str]
) -> None:
    env = {**env, limits.NO_LIMITS_ENV: "0", limits.QUICK_ENV: "1"}
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 2})
    host_json = tmp_path / "data" / "h1" / "host.json"

    def run() -> dict[str, Any]:
        p = cpubench_run(["--config", str(cfg), "--out", "data", "--host-id", "h1"], env, tmp_path, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        return json.loads(host_json.read_text())

    first = run()
    lim = first["limits"]
    assert lim["machine_fingerprint"] == first["machine_fingerprint"] and lim["version"] == limits.LIMITS_VERSION
    assert lim["quick"] is True and lim["wall_s"] > 0 and lim["measured"]
    assert lim["cpus"] == first["topology"]["cpus"]  # the CPUs they were measured on: this process's
    values = lim["values"]
    assert set(values) == set(limits.NAMES)
    for name in (limits.GEMM_FP32_ALL, limits.GEMM_FP32_ONE, limits.TRIAD_ALL):
        assert values[name]["value"] > 0 and values[name]["how"], values[name]
    assert values[limits.GEMM_FP32_ONE]["threads"] == 1
    trials = values[limits.TRIAD_ALL]["trials_gbs"]  # every trial kept; the best is the roof
    assert len(trials) == 2 and values[limits.TRIAD_ALL]["value"] == max(trials)
    for name in (limits.GEMM_BF16_ALL, limits.TRIAD_REMOTE):  # a value, or n/a with the reason
        assert values[name]["value"] > 0 if values[name]["value"] is not None else values[name]["na"]
    assert run()["limits"] == lim  # the same machine: kept, not measured again
    first["limits"]["machine_fingerprint"] = "0123456789ab"  # limits of another machine
    host_json.write_text(json.dumps(first))
    again = run()["limits"]
    assert again["machine_fingerprint"] == first["machine_fingerprint"]
    assert again["values"] != lim["values"] or again["wall_s"] != lim["wall_s"]  # measured anew


def test_a_triad_child_that_fails_is_na_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(limits.QUICK_ENV, "1")
    got = limits.triad([0], membind=[1000])  # no such NUMA node: the child's set_mempolicy is refused
    assert got["value"] is None and got["na"].startswith("the triad failed: ") and "set_mempolicy" in got["na"]


def test_the_triad_counts_its_best_trial_over_every_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(limits.QUICK_ENV, "1")
    got = limits.triad([0, 0])  # two processes, one CPU: each trial's window spans both
    assert got["processes"] == 2 and len(got["trials_gbs"]) == 2 and got["value"] == max(got["trials_gbs"]) > 0


def test_the_all_core_gemm_measured_again_is_the_probes_entry_or_na(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(limits.QUICK_ENV, "1")
    got = limits.gemm("fp32")
    assert got["value"] > 0 and got["unit"] == limits.GFLOPS and "default thread pools" in got["how"], got
    monkeypatch.setattr(limits, "_child", lambda args, **kw: {"error": "exited 1: no TensorFlow"})
    assert limits.gemm("fp32") == {"value": None, "unit": limits.GFLOPS,
                                   "na": "the GEMM child failed: exited 1: no TensorFlow"}  # fmt: skip


def _fake_probe(monkeypatch: pytest.MonkeyPatch, all_core: list[float], one_core: list[float]) -> list[list[str]]:
    """measure() on a fake 2-core host whose all-core and one-core GEMM children read ``all_core`` and ``one_core``
    in turn; the children it ran."""
    calls: list[list[str]] = []
    readings = {"all": iter(all_core), "one": iter(one_core)}

    def child(args: list[str], cpus: Any = None, timeout: float = 0) -> dict[str, Any]:
        calls.append(args)
        rate = next(readings["one" if "--threads" in args else "all"])
        return {"tf_version": "x", "onednn": "on", "cpus": 2, "fp32": {"n": 4096, "reps": 5, "gflops": rate}}

    monkeypatch.setattr(limits, "_child", child)
    monkeypatch.setattr(limits, "_topology", lambda: None)
    monkeypatch.setattr(limits, "core_cpus", lambda topo=None: [0, 1])
    monkeypatch.setattr(limits, "triad", lambda cpus, membind=None: {"value": 30.0, "unit": limits.GBS})
    monkeypatch.setattr(limits, "_remote", lambda topo: {"value": None, "unit": limits.GBS, "na": "one node"})
    return calls


def test_a_gemm_reading_a_burst_held_down_is_measured_again_and_the_better_reading_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def probe(all_core: list[float], one_core: list[float]) -> tuple[int, dict[str, Any], dict[str, Any]]:
        calls = _fake_probe(monkeypatch, all_core, one_core)
        values = limits.measure("fp", flags=[])["values"]
        return len(calls), values[limits.GEMM_FP32_ALL], values[limits.GEMM_FP32_ONE]

    n, all_core, one = probe([114.2, 220.1], [112.4])  # as read on a shared 2-core host
    assert n == 3 and all_core["value"] == 220.1 and all_core["readings"] == [114.2, 220.1] and "readings" not in one
    assert "measured twice: the first reading was under 0.6 x 2 cores x the one-core rate" in all_core["how"]
    n, all_core, _ = probe([114.2, 100.0], [112.4])  # still low: the better one, both kept
    assert all_core["value"] == 114.2 and all_core["readings"] == [114.2, 100.0]
    n, all_core, one = probe([220.0], [60.0, 112.0])  # the one-core reading held down
    assert n == 3 and one["value"] == 112.0 and one["readings"] == [60.0, 112.0] and "readings" not in all_core
    assert "under 0.6 x the all-core rate / 2 cores" in one["how"] and one["threads"] == 1
    n, all_core, one = probe([210.0], [112.4])  # plausible: one reading of each, as before
    assert n == 2 and all_core["value"] == 210.0 and "readings" not in all_core and "twice" not in all_core["how"]
    assert one["value"] == 112.4 and "readings" not in one


def test_the_all_core_gemm_taken_again_beside_a_run_is_read_twice_where_the_one_core_rate_says_it_is_held_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _fake_probe(monkeypatch, [213.4, 406.0, 210.0, 200.0], [])
    got = limits.gemm("fp32", one_core=209.0)  # a bf16-like host: one core's worth read on two
    assert len(calls) == 2 and got["value"] == 406.0 and got["readings"] == [213.4, 406.0], got
    assert "measured twice" in got["how"]
    calls.clear()
    plain = limits.gemm("fp32", one_core=112.4)  # 210.0 against 2 x 112.4: plausible, one child
    assert len(calls) == 1 and plain["value"] == 210.0 and "readings" not in plain
    calls.clear()
    unchecked = limits.gemm("fp32")  # no one-core rate to hold it against: one reading, as read
    assert len(calls) == 1 and unchecked["value"] == 200.0 and "readings" not in unchecked
