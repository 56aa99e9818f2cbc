"""The allocator axis: tcmalloc and jemalloc preloaded from the system's libraries into the engine child, the engine's
own memory map saying which it got (a mismatch fails the run), n/a with the reason where a library is absent, left
out of run identity at its default, and carried into the pages' CSV allocator column; through the real engine."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cpubench.execution.executor import Outcome
from cpubench.execution.group import launch_mismatch
from cpubench.host import allocators, topology
from cpubench.results import store
from cpubench.spec import axes
from cpubench.sweep import session
from tf_cnn_benchmarks import hostfacts
from tf_cnn_benchmarks.record import RunRecord

ROOT = Path(__file__).resolve().parent.parent
INSTALLED = {a: allocators.find(a) for a in ("tcmalloc", "jemalloc")}
MAPS = "7f00-7f10 r-xp 00000000 08:01 42 /usr/lib/x86_64-linux-gnu/{}\n7f20-7f30 r--p 0 08:01 7 /usr/lib/libc.so.6\n"


def test_the_memory_map_names_the_allocator() -> None:
    got = hostfacts.allocator_loaded(MAPS.format("libtcmalloc_minimal.so.4.5.10"))
    assert got == {"name": "tcmalloc", "library": "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4.5.10"}
    assert hostfacts.allocator_loaded(MAPS.format("libjemalloc.so.2"))["name"] == "jemalloc"
    assert hostfacts.allocator_loaded(MAPS.format("libm.so.6")) == {"name": "default"}
    assert hostfacts.allocator_loaded()["name"] == "default"  # this test process: glibc's


def test_the_axis_preloads_or_says_why_not(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    topo = topology.Topology.read()
    assert "allocator" not in axes.identity({**axes.defaults(), "model": "trivial", "batch_size": 1})
    assert axes.identity({**axes.defaults(), "allocator": "jemalloc"})["allocator"] == "jemalloc"
    assert axes.setting_name({**axes.defaults(), "allocator": "tcmalloc"}).endswith("-tcmalloc")
    (tmp_path / "libjemalloc.so.2").write_bytes(b"")
    monkeypatch.setenv(allocators.LIB_DIRS_ENV, str(tmp_path))
    launch = axes.launch({"allocator": "jemalloc"}, topo)
    assert launch.allocator == "jemalloc" and launch.preload == str(tmp_path / "libjemalloc.so.2")
    with pytest.raises(topology.NotApplicable, match="libtcmalloc_minimal.so.4 or libtcmalloc.so.4 not found in"):
        axes.launch({"allocator": "tcmalloc"}, topo)
    ran_default = RunRecord(status="ok", images_per_sec=1.0, allocator={"name": "default"})
    why = launch_mismatch(launch, Outcome("ok", None, 1.0, record=ran_default))
    assert why is not None and "allocator jemalloc preloaded" in why and "shows default" in why
    ran_it = RunRecord(status="ok", images_per_sec=1.0, allocator={"name": "jemalloc", "library": "x"})
    assert launch_mismatch(launch, Outcome("ok", None, 1.0, record=ran_it)) is None


TINY = """\
    name: alloc
    device: cpu
    num_gpus: [1]
    repeats: 1
    num_batches: 3
    num_warmup_batches: 1
    timeout: 240
    models: {trivial: 4}
    matrix:
      allocator: [default, tcmalloc, jemalloc]
    """


def run(tmp_path: Path, host: str, **extra: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "alloc.yaml"
    cfg.write_text(textwrap.dedent(TINY))
    env = {k: v for k, v in os.environ.items() if k != session.ENGINE_ENV}
    env.update({"CPUBENCH_NO_TF_PROBE": "1", "PYTHONPATH": str(ROOT), "CPUBENCH_LOCK": str(tmp_path / "lock"), **extra})
    return subprocess.run([sys.executable, "-m", "cpubench", "run", "--config", str(cfg), "--out", "data",
                           "--host-id", host], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip


@pytest.mark.skipif(not all(INSTALLED.values()), reason=f"needs libtcmalloc-minimal4 and libjemalloc2 ({INSTALLED})")
def test_cpubench_run_measures_trivial_with_each_allocator_loaded_as_asked(tmp_path: Path) -> None:
    p = run(tmp_path, "h")
    assert p.returncode == 0, p.stdout + p.stderr
    recs = {r.params.get("allocator", "default"): r for r in store.read_runs(tmp_path / "data" / "h").records}
    assert set(recs) == {"default", "tcmalloc", "jemalloc"}
    for name, rec in recs.items():
        assert rec.ok and rec.allocator is not None and rec.allocator["name"] == name, (name, rec.reason)
    assert recs["tcmalloc"].allocator["library"].startswith(str(Path(INSTALLED["tcmalloc"]).parent))
    assert recs["jemalloc"].launch == {"cpus": None, "membind": None, "preload": INSTALLED["jemalloc"]}
    assert "allocator" not in recs["default"].params or recs["default"].params["allocator"] == "default"
    assert recs["default"].launch is None
    subprocess.run([sys.executable, "-m", "cpubench", "pages", "data", "-o", "site", "--no-plots"], cwd=tmp_path,
                   check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    rows = list(csv.DictReader((tmp_path / "site" / "h" / "trivial_throughput.csv").open()))
    assert sorted(r["allocator"] for r in rows) == ["default", "jemalloc", "tcmalloc"]


def test_an_absent_library_is_na_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    p = run(tmp_path, "h", **{allocators.LIB_DIRS_ENV: str(tmp_path / "empty")})
    assert p.returncode == 0, p.stdout + p.stderr
    recs = {r.params.get("allocator", "default"): r for r in store.read_runs(tmp_path / "data" / "h").records}
    assert recs["default"].ok and recs["default"].allocator == {"name": "default"}
    for name in ("tcmalloc", "jemalloc"):
        assert recs[name].status == "skipped" and recs[name].reason is not None
        assert recs[name].reason.startswith("n/a: ") and "not found in" in recs[name].reason
        assert allocators.PACKAGES[name] in recs[name].reason
