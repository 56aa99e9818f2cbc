"""Efficiency of every figure (cpubench.analysis.efficiency): achieved GFLOP/s from the model declaration and its
share of the host's measured limit, from hand-made records and a fake host, through the real CLI: results.csv's new
columns, the report's "% of peak" section (absent for hosts without limits), compare's limits and % of peak lines,
and the pages' summary."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cpubench.analysis import cost, efficiency
from cpubench.host import limits as lim
from cpubench.host.record import HostRecord
from cpubench.results import store
from tf_cnn_benchmarks.record import RunRecord

F = efficiency.flops_per_image("resnet50")
NO_BF16 = "no native bf16 (no avx512_bf16 or amx_bf16 among the CPU flags): TensorFlow would emulate it"


def fake_limits(fp32_all: float, fp32_one: float) -> dict[str, Any]:
    g = lim.GFLOPS
    return {"version": lim.LIMITS_VERSION, "machine_fingerprint": "f", "measured": "2026-01-02T00:00:00+00:00",
            "wall_s": 20.0, "values": {
                lim.GEMM_FP32_ALL: {"value": fp32_all, "unit": g, "how": "test"},
                lim.GEMM_FP32_ONE: {"value": fp32_one, "unit": g, "how": "test"},
                lim.GEMM_BF16_ALL: {"value": None, "unit": g, "na": NO_BF16},
                lim.GEMM_BF16_ONE: {"value": None, "unit": g, "na": NO_BF16},
                lim.TRIAD_ALL: {"value": 20.0, "unit": lim.GBS, "how": "test"},
                lim.TRIAD_REMOTE: {"value": None, "unit": lim.GBS, "na": "one NUMA node"}}}  # fmt: skip


def host(host_id: str, limits: dict[str, Any] | None) -> HostRecord:
    return HostRecord(host_id, cpu_brand="Test CPU", sockets=1, cores_physical=2, cores_logical=2,
                      machine_fingerprint="f", limits=limits)  # fmt: skip


# setting -> (params, threads used, images/sec on host a)
RUNS = {
    "syn-parameter_server-1cpus-inference": ({"forward_only": True}, 2, 20.0),
    "syn-parameter_server-1cpus-intra1": ({"num_intra_threads": 1}, 1, 4.0),
    "syn-parameter_server-1cpus-inference-bf16": ({"forward_only": True, "precision": "bf16"}, 2, 35.0),
}


def write_host(root: Path, host_id: str, limits: dict[str, Any] | None, speed: float) -> Path:
    store.write_host(root, host(host_id, limits))
    for setting, (params, threads, ips) in RUNS.items():
        for repeat in range(2):
            rate = ips * speed * (1 + 0.01 * repeat)
            rec = {"schema": store.RUN_SCHEMA, "host_id": host_id, "setting": setting, "model": "resnet50",
                   "batch_size": 32, "num_devices": 1, "repeat": repeat, "status": "ok", "images_per_sec": rate,
                   "global_batch_size": 32, "step_times": [32 / rate] * 10, "run_hash": f"{setting}{repeat}",
                   "params": {"data": "syn", "variable_update": "parameter_server", "num_devices": 1, **params},
                   "threads": {"intra_effective": threads}, "cpus": [0, 1], "config_name": "t",
                   "started": "2026-01-02T00:00:00+00:00"}  # fmt: skip
            store.append_run(root, RunRecord.from_dict(rec))
    return store.host_dir(root, host_id)


def test_figures_from_the_declaration_and_the_limits() -> None:
    assert F is not None and 7e9 < F < 9e9  # ResNet-50: about 4.1 G multiply-adds per image
    h = host("a", fake_limits(200.0, 110.0))
    inf = efficiency.figure("resnet50", 20.0, False, "fp32", 2, h)
    assert inf.achieved == pytest.approx(F * 20 / 1e9) and inf.peak == 200.0 and inf.basis == "fp32, all cores"
    train = efficiency.figure("resnet50", 4.0, True, "fp32", 1, h)
    assert train.achieved == pytest.approx(3 * F * 4 / 1e9) and train.peak == 110.0
    assert train.basis == "fp32, one core x 1 thread" and train.share == pytest.approx(3 * F * 4 / 1e9 / 110)
    bf16 = efficiency.figure("resnet50", 35.0, False, "bf16", 2, h)
    assert bf16.share is None and bf16.basis == f"n/a: {NO_BF16}" and bf16.achieved == pytest.approx(F * 35 / 1e9)
    assert efficiency.figure("resnet50", 20.0, False, "fp16", 2, h).basis.startswith("n/a: no fp16 limit")
    bare = efficiency.figure("resnet50", 20.0, False, "fp32", 2, host("b", None))
    assert bare.share is None and bare.basis == "n/a: no limits measured on this host"
    assert efficiency.figure("nosuchnet", 20.0, False, "fp32", 2, h).basis.startswith("n/a: nosuchnet is not")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "cpubench", *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return p


def test_report_compare_and_pages_show_efficiency_where_hosts_have_limits(tmp_path: Path) -> None:
    a = write_host(tmp_path / "data", "a", fake_limits(200.0, 110.0), 1.0)
    b = write_host(tmp_path / "data", "b", fake_limits(100.0, 60.0), 0.5)
    cli("report", "data", "-o", "out", "--no-plots", "--no-model-table", cwd=tmp_path)
    rows = list(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    header = next(csv.reader((tmp_path / "out" / "results.csv").open()))
    new = [*efficiency.COLUMNS, *cost.COLUMNS]
    assert header[-len(new) :] == new  # at the end, after every older column
    r = next(r for r in rows if r["host_id"] == "a" and r["setting"].endswith("inference") and r["repeat"] == "0")
    assert float(r["achieved_gflops"]) == pytest.approx(F * 20 / 1e9, abs=0.01)
    assert float(r["pct_of_peak"]) == pytest.approx(100 * F * 20 / 1e9 / 200, abs=0.05)
    assert r["peak_basis"] == "fp32, all cores" and float(r["gflop_per_image"]) == pytest.approx(F / 1e9, abs=1e-3)
    t = next(r for r in rows if r["host_id"] == "b" and r["setting"].endswith("intra1") and r["repeat"] == "0")
    assert float(t["achieved_gflops"]) == pytest.approx(3 * F * 2 / 1e9, abs=0.01) and t["peak_gflops"] == "60.0"
    bf = next(r for r in rows if r["setting"].endswith("bf16"))
    assert bf["pct_of_peak"] == "" and bf["peak_basis"] == f"n/a: {NO_BF16}"
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "## % of peak" in md and "training counted as 3x" in md
    median = (20.0 + 20.2) / 2
    assert f"{100 * F * median / 1e9 / 200:.0f}% ({F * median / 1e9:.0f} GFLOP/s)" in md
    flat = " ".join(md.split())  # the tables are padded to their columns' widths
    assert "| a | 200.0 GFLOP/s | 110.0 GFLOP/s | n/a | n/a | 20.0 GB/s | n/a | 2026-01-02 |" in flat
    assert "- a: memory triad, remote node: n/a, one NUMA node" in md

    text = cli("compare", str(a), str(b), cwd=tmp_path).stdout
    assert "limits, b over a: GEMM fp32, all cores 0.50 (100.0 / 200.0 GFLOP/s)" in text
    assert "% of peak: b " in text and "GFLOP/s ratio 0.50" in text
    doc = json.loads(cli("compare", str(a), str(b), "--json", cwd=tmp_path).stdout)
    assert set(doc["limits"]) == {"a", "b"} and all("pct_of_peak" in row for row in doc["rows"])

    cli("pages", "data", "-o", "site", "--no-plots", cwd=tmp_path)
    pages = (tmp_path / "site" / "summary.md").read_text()
    assert "% of peak |" in pages and "of 200 GFLOP/s (fp32, all cores)" in pages


def test_hosts_without_limits_read_as_before(tmp_path: Path) -> None:
    a = write_host(tmp_path / "data", "a", None, 1.0)
    b = write_host(tmp_path / "data", "b", fake_limits(100.0, 60.0), 0.5)
    cli("report", str(a), "-o", "out", "--no-plots", "--no-model-table", cwd=tmp_path)
    assert "% of peak" not in (tmp_path / "out" / "summary.md").read_text()
    rows = list(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    assert all(r["pct_of_peak"] == "" and r["peak_basis"] == "n/a: no limits measured on this host" for r in rows)
    assert all(float(r["achieved_gflops"]) > 0 for r in rows)  # the declaration alone gives the achieved rate
    text = cli("compare", str(a), str(b), cwd=tmp_path).stdout
    assert "limits," not in text and "% of peak" not in text
    cli("pages", str(a), "-o", "site", "--no-plots", cwd=tmp_path)
    assert "% of peak" not in (tmp_path / "site" / "summary.md").read_text()


def test_intensity_from_the_declaration() -> None:
    from cpubench.analysis.roofline import intensity

    one, many = intensity("resnet50", 1), intensity("resnet50", 64)
    assert one is not None and many is not None and 0 < one < many  # weights shared by more images per batch
    assert intensity("resnet50", 32, precision="bf16") == pytest.approx(2 * intensity("resnet50", 32))  # type: ignore
    assert intensity("nosuchnet", 1) is None
    # Inference counts only the outputs a fused step writes (batch norm folded, ReLU and residual adds applied as the
    # convolution's post-ops): counting every node's output put ResNet-50 at batch 32 at 26.5 FLOP/B, a third of
    # this; training writes every output and keeps the old count.
    assert intensity("resnet50", 32) == pytest.approx(86.2, abs=0.1)
    assert intensity("resnet50", 32, training=True) == pytest.approx(39.6, abs=0.1)
    assert intensity("mobilenet", 32) == pytest.approx(27.8, abs=0.1)


def test_roofline_labels_name_the_setting_only_where_two_points_would_share_one(tmp_path: Path) -> None:
    """Real and synthetic data of one model, batch and mode land on one host's roofline with one label otherwise:
    those two name their setting, the others stay short."""
    from cpubench.analysis.cells import build_cells, runs_frame
    from cpubench.analysis.roofline import placed
    from cpubench.results.merge import merge

    folder = write_host(tmp_path / "data", "a", fake_limits(200.0, 110.0), 1.0)
    rec = {"schema": store.RUN_SCHEMA, "host_id": "a", "setting": "real-parameter_server-1cpus-inference",
           "model": "resnet50", "batch_size": 32, "num_devices": 1, "repeat": 0, "status": "ok",
           "images_per_sec": 15.0, "global_batch_size": 32, "step_times": [32 / 15.0] * 10, "run_hash": "real0",
           "params": {"data": "real", "variable_update": "parameter_server", "num_devices": 1, "forward_only": True},
           "threads": {"intra_effective": 2}, "cpus": [0, 1], "config_name": "t",
           "started": "2026-01-02T00:00:00+00:00"}  # fmt: skip
    store.append_run(tmp_path / "data", RunRecord.from_dict(rec))
    merged = merge([folder])
    labels = sorted(p.label for p in placed(merged, build_cells(runs_frame(merged), merged.host_ids)))
    assert labels == [
        "resnet50 bs32 inference bf16",
        "resnet50 bs32 inference fp32 (real-parameter_server-1cpus-inference)",
        "resnet50 bs32 inference fp32 (syn-parameter_server-1cpus-inference)",
        "resnet50 bs32 training fp32",
    ]


def test_roofline_drawn_and_named_on_the_report_and_the_pages_index(tmp_path: Path) -> None:
    write_host(tmp_path / "data", "a", fake_limits(200.0, 110.0), 1.0)
    write_host(tmp_path / "data", "b", fake_limits(100.0, 60.0), 0.5)
    write_host(tmp_path / "data", "c", None, 0.7)  # no limits: its points, no roofs
    cli("report", "data", "-o", "out", "--no-model-table", cwd=tmp_path)
    png = tmp_path / "out" / "plots" / "roofline.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert "![roofline](plots/roofline.png)" in (tmp_path / "out" / "summary.md").read_text()
    cli("pages", "data", "-o", "site", cwd=tmp_path)
    index = (tmp_path / "site" / "index.md").read_text()
    for h in ("a", "b"):
        assert (tmp_path / "site" / h / "roofline.png").read_bytes()[:4] == b"\x89PNG"
        assert f"![roofline of {h}](./{h}/roofline.png)" in index
    assert not (tmp_path / "site" / "c" / "roofline.png").exists() and "roofline of c" not in index
