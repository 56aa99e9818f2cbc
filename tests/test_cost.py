"""Cost and energy per image: --price-per-hour kept in host.json, a prices file for the report, RAPL joules read by
the engine around its timed steps (a fake powercap tree via CPUBENCH_POWERCAP_ROOT, wrap-around included), and n/a
with the reason where there are no counters; through the real engine and CLI."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from cpubench.analysis import cost
from cpubench.results import store
from cpubench.sweep import session
from tf_cnn_benchmarks import hostfacts, timing
from tf_cnn_benchmarks.record import RunRecord

ROOT = Path(__file__).resolve().parent.parent


def powercap(root: Path, zones: dict[str, tuple[str, int, int]]) -> Path:
    """A fake /sys/class/powercap: dir -> (name, energy_uj, max_energy_range_uj)."""
    for d, (name, uj, top) in zones.items():
        (root / d).mkdir(parents=True)
        (root / d / "name").write_text(name + "\n")
        (root / d / "energy_uj").write_text(f"{uj}\n")
        (root / d / "max_energy_range_uj").write_text(f"{top}\n")
    return root


def test_the_engine_reads_the_packages_around_its_timed_steps_and_survives_a_wrap(tmp_path: Path) -> None:
    tree = powercap(tmp_path / "powercap", {"intel-rapl:0": ("package-0", 999_000_000, 1_000_000_000),
                                            "intel-rapl:0:0": ("core", 5, 1_000_000_000),  # a sub-zone: not counted
                                            "intel-rapl:1": ("package-1", 10, 1_000_000_000)})  # fmt: skip
    counter = tree / "intel-rapl:0" / "energy_uj"

    def step() -> float:  # each timed step, package 0 uses 1.5 J and wraps round on the second
        value = (int(counter.read_text()) + 1_500_000) % 1_000_000_000
        counter.write_text(f"{value}\n")
        return 0.0

    m = timing.measure(step, global_batch=4, num_warmup=0, num_batches=2, display_every=1, started=0.0,
                       build_started=0.0, energy=lambda: hostfacts.read_energy(str(tree)))  # fmt: skip
    assert m.energy is not None and m.energy["joules"] == 3.0
    assert m.energy["zones"] == {"package-0": 3.0, "package-1": 0.0}
    gone = hostfacts.read_energy(str(tmp_path / "nowhere"))
    assert gone.na and "no " in gone.na and hostfacts.energy_between(gone, gone)["joules"] is None
    (tmp_path / "empty").mkdir()
    assert "no RAPL zone" in (hostfacts.read_energy(str(tmp_path / "empty")).na or "")


def test_prices_files() -> None:
    assert cost.parse_prices("a: 1.5\nb: {per_hour: 3}\n", "p.yaml") == {"a": 1.5, "b": 3.0}
    assert cost.parse_prices("host_id,price_per_hour\na,2\n", "p.csv") == {"a": 2.0}
    bad = [("a: -1\n", "p.yaml", ""), ("a: x\n", "p.yaml", ""), ("- a\n", "p.yaml", ""), ("host,x\na,1\n", "p.csv", ""),
           ("a: 1\nb: 2\na: 3\n", "p.yaml", "a has two prices"),
           ("host_id,price_per_hour\na,1\na,2\n", "p.csv", "p.csv:3: a has a price already"),
           ("host_id,price_per_hour\na,1,9\n", "p.csv", "p.csv:2: more fields"),
           ("host_id,price_per_hour\n" + "x" * 200_000 + ",1\n", "p.csv", "not a prices CSV")]  # fmt: skip
    for text, name, said in bad:
        try:
            cost.parse_prices(text, name)
        except cost.PricesError as e:
            assert name in str(e) and said in str(e), e
        else:
            raise AssertionError(text)


def cli(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "cpubench", *args], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=400)  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def real_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != session.ENGINE_ENV}
    env.update({"CPUBENCH_NO_TF_PROBE": "1", "PYTHONPATH": str(ROOT), "CPUBENCH_LOCK": str(tmp_path / "lock"), **extra})
    return env


TINY = """\
    name: tiny
    device: cpu
    num_gpus: [1]
    repeats: 1
    num_batches: 3
    num_warmup_batches: 1
    timeout: 240
    models: {trivial: 4}
    """


def hand_made_host(root: Path, host_id: str, energy: dict[str, Any] | None) -> Path:
    store.write_host(root, {"host_id": host_id, "cpu_brand": "Test CPU", "cores_physical": 2})
    rec = {"schema": store.RUN_SCHEMA, "host_id": host_id, "setting": "syn-parameter_server-1cpus", "model": "trivial",
           "batch_size": 4, "num_devices": 1, "repeat": 0, "status": "ok", "images_per_sec": 400.0,
           "global_batch_size": 4, "step_times": [0.01] * 3, "run_hash": "x", "energy": energy,
           "params": {"data": "syn", "variable_update": "parameter_server", "num_devices": 1}}  # fmt: skip
    store.append_run(root, RunRecord.from_dict(rec))
    return store.host_dir(root, host_id)


def test_price_and_energy_through_cpubench_run_report_and_compare(tmp_path: Path) -> None:
    tree = powercap(tmp_path / "powercap", {"intel-rapl:0": ("package-0", 1000, 2**32)})
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(textwrap.dedent(TINY))
    env = real_env(tmp_path, CPUBENCH_POWERCAP_ROOT=str(tree))
    cli(["run", "--config", str(cfg), "--out", "data", "--host-id", "priced", "--price-per-hour", "2.5"], tmp_path, env)
    host = json.loads((tmp_path / "data" / "priced" / "host.json").read_text())
    assert host["price"]["per_hour"] == 2.5 and host["price"]["currency"] == "USD"
    (rec,) = store.read_runs(tmp_path / "data" / "priced").records
    assert rec.ok and rec.energy is not None and rec.energy["zones"] == {"package-0": 0.0}  # a fake counter is still
    assert rec.energy["joules"] == 0.0 and rec.energy["window_s"] > 0
    # A rerun without the option keeps the price; no counters at all: n/a with the reason, recorded by the engine.
    env = real_env(tmp_path, CPUBENCH_POWERCAP_ROOT=str(tmp_path / "no-powercap"))
    cli(["run", "--config", str(cfg), "--out", "data", "--host-id", "priced", "--repeats", "2"], tmp_path, env)
    assert json.loads((tmp_path / "data" / "priced" / "host.json").read_text())["price"]["per_hour"] == 2.5
    second = store.read_runs(tmp_path / "data" / "priced").records[1]
    assert second.energy is not None and second.energy["joules"] is None and "no-powercap" in second.energy["na"]

    hand_made_host(tmp_path / "data", "measured", {"joules": 6.0, "zones": {"package-0": 6.0}, "window_s": 0.03})
    cli(["report", "data", "-o", "out", "--no-plots", "--no-model-table"], tmp_path)
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "## Cost and energy" in md and "- measured: no price: give" in md
    flat = " ".join(md.split())
    assert "| measured | 400.00 | n/a | n/a | n/a | 0.5 J |" in flat  # 6 J over 3 steps of 4 images
    rows = list(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    priced = [r for r in rows if r["host_id"] == "priced"]
    ips = float(priced[0]["images_per_sec"])
    assert float(priced[0]["images_per_dollar"]) == round(ips * 3600 / 2.5, 1)
    assert abs(float(priced[0]["dollars_per_million_images"]) - 2.5 / (ips * 3600) * 1e6) < 1e-4
    assert priced[0]["joules_per_image"] == "0.0" and "no-powercap" in priced[1]["energy_na"]
    measured = next(r for r in rows if r["host_id"] == "measured")
    assert measured["joules_per_image"] == "0.5" and measured["price_per_hour"] == ""

    (tmp_path / "prices.yaml").write_text("measured: 1.0\npriced: 5\n")
    cli(["report", "data", "-o", "out2", "--no-plots", "--no-model-table", "--prices", "prices.yaml"], tmp_path)
    flat = " ".join((tmp_path / "out2" / "summary.md").read_text().split())
    assert "| measured | 400.00 | \\$1.00 | 1,440,000 | \\$0.69 | 0.5 J |" in flat and "\\$5.00" in flat  # $ escaped

    text = cli(["compare", "data/priced", "data/measured"], tmp_path).stdout
    assert "cost: measured n/a (no price), 0.5 J/image; priced " in text and "images/$" in text


def test_folders_without_price_or_energy_read_as_before(tmp_path: Path) -> None:
    hand_made_host(tmp_path / "data", "old", None)
    cli(["report", "data", "-o", "out", "--no-plots", "--no-model-table"], tmp_path)
    assert "Cost and energy" not in (tmp_path / "out" / "summary.md").read_text()
