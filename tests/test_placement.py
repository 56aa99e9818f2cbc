"""Placement for real: a child pinned to its cores and bound to its memory node, checked from inside the engine;
what this host cannot give is n/a with the reason, never a failure and never a copy of another figure."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from fakeengine import ROOT, cpubench_run, records, write_config

from cpubench import cli
from cpubench.host import locks, topology
from cpubench.render import report
from cpubench.spec import config as cfg
from cpubench.sweep import session as runner

TOPO = topology.Topology.read()
ONE_NODE = len(TOPO.nodes) == 1
TWO_CORES = TOPO.physical_cores >= 2


def real_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != runner.ENGINE_ENV}
    env.update({"CPUBENCH_NO_TF_PROBE": "1", "PYTHONPATH": str(ROOT), locks.LOCK_ENV: str(tmp_path / "lock")})
    return env


@pytest.mark.timeout(600)
@pytest.mark.skipif(not (ONE_NODE and TWO_CORES), reason="written for a one-node host with 2 or more cores")
def test_a_tiny_study_pins_binds_says_na_for_remote_memory_and_renders_pages(tmp_path: Path) -> None:
    c = write_config(tmp_path / "study.yaml", {"lenet": [1, 2, 4]}, repeats=1, num_batches=3,
                     num_warmup_batches=1, timeout=240,
                     matrix={"num_intra_threads": "1..2", "num_inter_threads": [1], "execution": ["graph", "eager"],
                             "placement": ["sequential"], "memory": ["local", "remote"]})  # fmt: skip
    out = tmp_path / "data"
    p = cpubench_run(["--config", str(c), "--out", str(out), "--host-id", "h"], real_env(tmp_path), tmp_path,
                     timeout=580)  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    recs = {(r["model"], r["batch_size"], r["params"]["num_intra_threads"], r["params"]["execution"],
             r["params"]["memory"]): r for r in records(out, "h")}  # fmt: skip
    assert len(recs) == 3 * 2 * 2 * 2
    for (_model, _bs, t, execution, memory), r in recs.items():
        if memory == "remote":
            assert r["status"] == "skipped" and r["reason"] == "n/a: one NUMA node" and r["images_per_sec"] is None
            continue
        assert r["status"] == "ok", r["reason"]
        want = topology.placement_cpus(TOPO, "sequential", t)
        assert r["cpus"] == want and r["launch"] == {"cpus": want, "membind": [0]}  # seen from inside
        assert r["memory_policy"]["mode"] == "bind" and r["memory_policy"]["nodes"] == [0]
        assert r["threads"]["intra_effective"] == t and r["threads"]["inter_effective"] == 1
        log = (out / "h" / r["log"]).read_text()
        assert "NUMA bind:   True" in log and ("Execution:   eager" in log) == (execution == "eager")
        assert r["setting"].endswith(("-sequential-memlocal", "-eager-sequential-memlocal"))
    files, _ = report.build_report([out], tmp_path / "summary", model_rows=None, plots=False)
    md = files.summary.read_text()
    remote = [ln for ln in md.splitlines() if ln.startswith("**") and "memremote" in ln]
    assert len(remote) == 4  # a setting per threads x execution
    assert re.search(r"\| lenet \(bs 1\) \| n/a \[\d+\] \|", md) and "skipped: n/a: one NUMA node" in md
    # The pages of the study: every image a page names exists; remote memory reads n/a with the reason.
    pages = tmp_path / "pages"
    assert cli.main(["pages", str(out), "-o", str(pages)]) == 0
    page = (pages / "h" / "lenet.md").read_text()
    images = re.findall(r'<img src="\./([^"]+)"', page)
    assert images and all((pages / "h" / name).is_file() for name in images)
    assert re.search(r"# Latency \(Remote vs Local\)\s+## % Latency Loss Per Batch\s+n/a: one NUMA node", page)


def test_a_run_that_did_not_run_where_it_was_pinned_fails_with_the_reason(tmp_path: Path, env: dict[str, str]) -> None:
    c = write_config(tmp_path / "c.yaml", {"resnet101": 8}, matrix={"num_intra_threads": [1],
                     "placement": ["sequential"]})  # fmt: skip
    p = cpubench_run(["--config", str(c), "--out", str(tmp_path / "data"), "--host-id", "h1"], env, tmp_path)
    assert p.returncode == 1
    (r,) = records(tmp_path / "data")
    first = topology.placement_cpus(TOPO, "sequential", 1)
    assert r["status"] == "failed" and r["reason"] == f"pinned to CPUs {first[0]} but the engine could run on 99"


def test_placements_are_checked_when_the_config_meets_a_host_at_its_line() -> None:
    too_many = TOPO.physical_cores + 1
    text = f"name: t\nmodels: {{trivial: 8}}\nmatrix: {{placement: [sequential], num_intra_threads: [1, {too_many}]}}\n"
    loaded = cfg.parse_config(text, "c.yaml")  # loading reads no host: any thread count may suit the host it meets
    with pytest.raises(cfg.ConfigError, match=rf"c.yaml:3: matrix.num_intra_threads: placement sequential: threads "
                       rf"{too_many}: this host has {TOPO.physical_cores} physical cores"):  # fmt: skip
        cfg.resolve(loaded, TOPO)
    with pytest.raises(cfg.ConfigError, match=r"a pinned placement needs matrix.num_intra_threads of 1 or more"):
        cfg.parse_config("name: t\nmodels: {trivial: 8}\nmatrix: {placement: [interleave]}\n", "c.yaml")
    with pytest.raises(cfg.ConfigError, match=r"matrix.placement\[0\]: 'spread' is not one of none, sequential"):
        cfg.parse_config("name: t\nmodels: {trivial: 8}\nmatrix: {placement: [spread]}\n", "c.yaml")
    c = cfg.parse_config("name: t\nmodels: {trivial: 8}\nmatrix: {num_intra_threads: all}\n")
    assert cfg.needs_host(c) and [v.text for v in c.on_host()] == ["all"]
    assert cfg.resolve(c, topology.Topology.read).matrix["num_intra_threads"] == list(
        range(1, TOPO.cores_per_socket + 1)
    )
    with pytest.raises(cfg.ConfigError, match=r"expected a number, a list, `all` or a range like 1..8"):
        cfg.parse_config("name: t\nmodels: {trivial: 8}\nmatrix: {num_intra_threads: lots}\n", "c.yaml")


@pytest.mark.timeout(300)
def test_one_process_measures_every_batch_size_of_a_point(tmp_path: Path) -> None:
    c = write_config(tmp_path / "c.yaml", {"trivial": [1, 2, 4], "lenet": [2, 4]}, repeats=1, num_batches=3,
                     num_warmup_batches=1, timeout=120, batches_per_process=True,
                     matrix={"forward_only": [True], "num_intra_threads": [1],
                             "execution": ["graph", "eager"]})  # fmt: skip
    out = tmp_path / "data"
    args = ["--config", str(c), "--out", str(out), "--host-id", "h"]
    p = cpubench_run(args, real_env(tmp_path), tmp_path, timeout=280)
    assert p.returncode == 0, p.stdout + p.stderr
    recs = records(out, "h")
    assert len(recs) == 10 and all(r["status"] == "ok" for r in recs)
    logs = {r["log"] for r in recs}
    assert len(logs) == 4  # one engine process (and log) per point: setting x model
    for r in recs:
        sizes = r["group"]["batch_sizes"]
        assert r["batch_size"] in sizes and r["log"].endswith(f"{r['model']}-bs{'-'.join(map(str, sizes))}-r0.log")
        assert r["global_batch_size"] == r["batch_size"]
        assert r["command"][-2] == f"--batch_sizes={','.join(map(str, sizes))}"
    log = (out / "h" / recs[0]["log"]).read_text()
    assert log.count("total images/sec:") == len(recs[0]["group"]["batch_sizes"])
    again = cpubench_run(args, real_env(tmp_path), tmp_path, timeout=120)
    assert "0 ok" in again.stdout and "10 already done" in again.stdout
    # Measured one process per batch size instead, the same points are other measurements: not resumed.
    c2 = cfg.parse_config(c.read_text().replace('"batches_per_process": true', '"batches_per_process": false'))
    c1 = cfg.parse_config(c.read_text())
    assert [cfg.run_hash(c1, r, {}) for r in cfg.plan(c1)] != [cfg.run_hash(c2, r, {}) for r in cfg.plan(c2)]
    with pytest.raises(cfg.ConfigError, match=r"batches_per_process: measures inference on synthetic data"):
        cfg.parse_config('{"name": "t", "models": {"trivial": 8}, "batches_per_process": true}', "c.yaml")
