"""``cpubench tune`` through the real CLI: a Packrat-layout CSV and our own pages' CSV are profiles, the store's
study is one, bad input is one line, and ``--verify`` runs the split, the fat and the thin baselines as real pinned
concurrent engine processes behind a barrier on this host, records them, and the report and pages show them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cpubench.results import store

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "schema2" / "data"
PACKRAT_HEADER = ("benchmark,topology,pinning,source,allocator,instance_id,interop_threads,intraop_threads,batch_size,"
                  "latency(min),latency(avg),latency(max),flops")  # fmt: skip


def cpubench(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300):
    return subprocess.run([sys.executable, "-m", "cpubench", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def packrat_csv(path: Path) -> Path:
    """A profile in Packrat's layout: thin instances win (latency grows with the batch faster than threads help)."""
    rows = [PACKRAT_HEADER]
    for bench in ("resnet50_none", "resnet50_script"):
        for topo in ("sequential", "interleave"):
            for t in (1, 2, 4):
                for b in (1, 2, 4):
                    avg = (10.0 + 8.0 * b / t**0.5) * (1.5 if bench.endswith("none") else 1.0)
                    avg *= 1.2 if topo == "interleave" else 1.0
                    rows.append(f"{bench},{topo},affinity,syn,default,0,1,{t},{b},{avg * 0.9:.3f},{avg:.3f},"
                                f"{avg * 1.5:.3f},0")  # fmt: skip
    path.write_text("\n".join(rows) + "\n")
    return path


def tune_json(args: list[str], cwd: Path) -> dict:
    p = cpubench(["tune", *args, "--json"], cwd)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_a_packrat_layout_csv_is_a_profile(tmp_path: Path) -> None:
    f = packrat_csv(tmp_path / "resnet50_latency.csv")
    out = tune_json(["--profile", str(f), "--cores", "4", "--batch", "4"], tmp_path)
    (r,) = out["results"]
    assert out["cores"] == 4 and r["batch"] == 4
    assert r["instances"] == [{"threads": 1, "batch": 1, "count": 4}]  # four thin instances win on this profile
    assert r["latency_ms"] == pytest.approx(18.0) and r["fat_latency_ms"] == pytest.approx(26.0)
    assert r["speedup_vs_fat"] == pytest.approx(26.0 / 18.0)
    # The rows read are the script ones at sequential topology: --benchmark and --topology choose others.
    none = tune_json(["--profile", str(f), "--cores", "4", "--batch", "4", "--benchmark", "*none*"], tmp_path)
    assert none["results"][0]["latency_ms"] == pytest.approx(27.0)
    inter = tune_json(["--profile", str(f), "--cores", "4", "--batch", "4", "--topology", "interleave"], tmp_path)
    assert inter["results"][0]["latency_ms"] == pytest.approx(21.6)
    maxed = tune_json(["--profile", str(f), "--cores", "4", "--batch", "4", "--latency-column", "latency(max)"],
                      tmp_path)  # fmt: skip
    assert maxed["results"][0]["latency_ms"] == pytest.approx(27.0)
    every = tune_json(["--profile", str(f), "--cores", "4"], tmp_path)
    assert [r["batch"] for r in every["results"]] == [1, 2, 4]  # every power of two up to the profile's largest
    text = cpubench(["tune", "--profile", str(f), "--cores", "4"], tmp_path)
    assert "| 4       | 4x(1 thr, bs 1)" in text.stdout and "thin 4x1 ms" in text.stdout


def test_a_batch_no_split_can_make_says_why(tmp_path: Path) -> None:
    """A profile without batch 1 (a study of batches 2 and 4): batch 1's row read a bare n/a."""
    f = packrat_csv(tmp_path / "resnet50_latency.csv")
    f.write_text("".join(ln for ln in f.read_text().splitlines(keepends=True) if not ln.split(",")[8:9] == ["1"]))
    text = cpubench(["tune", "--profile", str(f), "--cores", "4"], tmp_path)
    assert text.returncode == 0, text.stderr
    assert "n/a: no split of the profile's batch sizes (2, 4) makes batch 1" in text.stdout, text.stdout
    (first, *_) = tune_json(["--profile", str(f), "--cores", "4"], tmp_path)["results"]
    assert first["batch"] == 1 and first["instances"] is None and "makes batch 1" in first["why"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--cores", "4"], "give one profile"),
        (["--profile", "missing.csv", "--cores", "4"], "no such file"),
        (["--profile", "{csv}", "--cores", "4", "--benchmark", "*"], "a second row for 1 threads, batch 1"),
        (["--profile", "{csv}", "--cores", "4", "--latency-column", "p42"], "no column p42"),
        (["--profile", "{csv}", "--cores", "4", "--benchmark", "vgg*"], "no row has a benchmark matching"),
        (["--profile", "{csv}", "--cores", "0"], "--cores=0"),
        (["--profile", "{csv}", "--cores", "4", "--verify"], "--verify records into a host folder"),
        (["--profile", "{csv}", "--cores", "4", "--latency-bound", "5"], "--latency-bound goes with"),
        (["{fixture}", "--cores", "2", "--model", "vgg16"], "no ok inference run with model 'vgg16'"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], words: str) -> None:
    f = packrat_csv(tmp_path / "p.csv")
    args = [a.replace("{csv}", str(f)).replace("{fixture}", str(FIXTURE / "s2-a")) for a in args]
    p = cpubench(["tune", *args], tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr and p.stderr.count("\n") == 1, p.stderr
    assert words in p.stderr, p.stderr


def test_our_pages_csv_is_the_same_profile_as_the_study(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE, tmp_path / "data")
    p = cpubench(["pages", "data", "-o", "site", "--no-plots"], tmp_path)
    assert p.returncode == 0, p.stderr
    from_csv = tune_json(["--profile", "site/s2-a/trivial_latency.csv", "--benchmark", "*tensorflow_graph",
                          "--cores", "2"], tmp_path)  # fmt: skip
    from_study = tune_json(["data/s2-a", "--placement", "sequential", "--cores", "2"], tmp_path)
    assert from_csv == from_study and from_csv["results"]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2, reason="2 CPUs")
def test_verify_runs_the_split_fat_and_thin_as_pinned_concurrent_engines(tmp_path: Path) -> None:
    env = {**os.environ, "CPUBENCH_NO_TF_PROBE": "1", "CPUBENCH_LOCK": str(tmp_path / "lock")}
    env.pop("CPUBENCH_ENGINE", None)
    (tmp_path / "study.yaml").write_text(json.dumps({
        "name": "tiny-study", "repeats": 1, "num_batches": 5, "num_warmup_batches": 2, "batches_per_process": True,
        "models": {"trivial": [1, 2]},
        "matrix": {"forward_only": [True], "num_intra_threads": [1, 2], "placement": ["sequential"]}}))  # fmt: skip
    p = cpubench(["run", "--config", "study.yaml", "--out", "data", "--host-id", "h"], tmp_path, env)
    assert p.returncode == 0, p.stdout + p.stderr
    args = ["tune", "data/h", "--cores", "2", "--batch", "2", "--verify", "--repeats", "1", "--window", "1"]
    p = cpubench(args, tmp_path, env)
    assert p.returncode == 0, p.stdout + p.stderr
    recs = [r for r in store.read_runs(tmp_path / "data" / "h").records if r.ensemble]
    by = {}
    for r in recs:
        by.setdefault(r.ensemble["label"], []).append(r)
    assert set(by) <= {"split", "fat", "thin"} and {"fat", "thin"} <= set(by)
    cpus = sorted(os.sched_getaffinity(0))[:2]
    thin = sorted(by["thin"], key=lambda r: r.instance)
    assert [r.instance for r in thin] == [0, 1] and [r.batch_size for r in thin] == [1, 1]
    assert sorted(map(tuple, (r.cpus for r in thin))) == [(cpus[0],), (cpus[1],)]  # each on its own core
    assert by["fat"][0].cpus == cpus and by["fat"][0].threads["intra_effective"] == 2
    for r in recs:
        assert r.ok and r.ensemble["kind"] == "tune" and r.ensemble["cores"] == 2 and r.ensemble["batch"] == 2
        assert r.ensemble["overlap"] > 0.9, r.ensemble  # the timed windows overlapped
        assert "--barrier=" in " ".join(r.command or [])
    assert thin[0].ensemble["id"] == thin[1].ensemble["id"]
    assert "| 2       | thin            | 2x(1 thr, bs 1)" in p.stdout and "speedup vs fat" in p.stdout
    again = cpubench(args, tmp_path, env)
    assert again.returncode == 0 and "repeat 1" not in again.stdout, again.stdout  # recorded: not run again
    assert len([r for r in store.read_runs(tmp_path / "data" / "h").records if r.ensemble]) == len(recs)
    # The profile ignores the instances; the report and the pages show them as tuned splits.
    assert tune_json(["data/h", "--cores", "2", "--batch", "2"], tmp_path)["results"][0]["latency_ms"] > 0
    rep = cpubench(["report", "data", "-o", "rep", "--no-model-table", "--no-plots"], tmp_path)
    assert rep.returncode == 0, rep.stderr
    summary = (tmp_path / "rep" / "summary.md").read_text()
    assert "## Tuned splits" in summary and "| 2       | fat             | 1x(2 thr, bs 2)" in summary
    assert "tune-c2" not in summary  # instances are not settings of their own
    pages = cpubench(["pages", "data", "-o", "site", "--no-plots"], tmp_path)
    assert pages.returncode == 0 and "## Tuned splits" in (tmp_path / "site" / "summary.md").read_text()
