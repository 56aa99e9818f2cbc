"""Odd but valid results folders, opened as a user would: through the real CLI (subprocesses, real files).

Each test is a folder the store accepts that once broke a reader: a record whose timed steps read 0 s (a step
shorter than the timer resolves; a schema-1 record's figure is taken as reported, its steps all 0) crashed
``cpubench report`` and ``cpubench pages`` with a ZeroDivisionError; a host folder that lost its ``host.json`` was
passed over without a word, so a report of ``data/`` showed one host fewer and said nothing.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from cpubench.results import store
from tf_cnn_benchmarks.record import RunRecord

SETTING = "syn-parameter_server-1cpus-inference"


def cpubench(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cpubench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def ok_or_one_line(p: subprocess.CompletedProcess[str], verb: str) -> None:
    """Exit 0, or exit 2 with one line on stderr: never a traceback."""
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == 0, (p.returncode, p.stderr)
    assert not [line for line in p.stderr.splitlines() if line.startswith(f"cpubench {verb}: error")], p.stderr


def one_line_error(p: subprocess.CompletedProcess[str], verb: str) -> str:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"cpubench {verb}: error: "), p.stderr
    return lines[0]


def record(host: str, repeat: int, ips: float, steps: list[float], **kw: Any) -> RunRecord:
    d = {"schema": store.RUN_SCHEMA, "host_id": host, "setting": SETTING, "model": "resnet50", "batch_size": 32,
         "num_devices": 1, "repeat": repeat, "status": "ok", "images_per_sec": ips, "global_batch_size": 32,
         "step_times": steps, "run_hash": f"h{repeat}", "config_name": "t", "threads": {"intra_effective": 2},
         "params": {"data": "syn", "variable_update": "parameter_server", "num_devices": 1, "forward_only": True},
         "started": f"2026-01-02T00:00:0{repeat}+00:00", **kw}  # fmt: skip
    return RunRecord.from_dict(d)


def write_host(root: Path, host: str, runs: list[RunRecord]) -> Path:
    store.write_host(root, {"host_id": host, "machine_fingerprint": f"fp-{host}", "cpu_brand": "Test CPU"})
    for r in runs:
        store.append_run(root, r)
    return store.host_dir(root, host)


# --------------------------------------------------------------------------------------- steps that read 0 s


def test_steps_that_read_zero_seconds_are_no_division_by_zero(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # a: nine steps under the timer's resolution and one of 1.6 s (200 images/sec, as its steps say), and a plain run
    write_host(data, "a", [record("a", 0, 200.0, [0.0] * 9 + [1.6]), record("a", 1, 20.0, [1.6] * 10)])
    # b: a schema-1 record, its figure taken as reported, every step 0 s; and a plain run
    write_host(data, "b", [record("b", 0, 25.0, [0.0] * 10, schema=1), record("b", 1, 25.0, [1.28] * 10)])
    p = cpubench(["report", "data", "-o", "out", "--no-model-table", "--no-plots"], tmp_path)
    ok_or_one_line(p, "report")
    p = cpubench(["pages", "data", "-o", "pages", "--no-plots"], tmp_path)
    ok_or_one_line(p, "pages")
    rows = {r["host"]: r for r in csv.DictReader((tmp_path / "pages" / "a" / "resnet50_throughput.csv").open())}
    # a's fastest step has no finite rate: the cell is empty, never a number made up from the other repeat
    assert rows["a"]["throughput(max)"] == "" and rows["a"]["throughput(avg)"] == "110.0000"
    assert rows["a"]["repeats"] == "2"
    # b's all-zero record gives no latency and no point; its plain run does
    rows = {r["host"]: r for r in csv.DictReader((tmp_path / "pages" / "b" / "resnet50_latency.csv").open())}
    assert rows["b"]["repeats"] == "1" and rows["b"]["p50"] == "1280.0000"


# ------------------------------------------------------------------------------- runs without their host.json


def test_a_host_folder_without_host_json_is_named_not_passed_over(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_host(data, "a", [record("a", i, 20.0, [1.6] * 10) for i in range(2)])
    lost = write_host(data, "b", [record("b", i, 25.0, [1.28] * 10) for i in range(2)])
    (lost / store.HOST_FILE).unlink()
    for verb, extra in (("report", ["--no-model-table"]), ("pages", [])):
        p = cpubench([verb, "data", "-o", f"{verb}-out", "--no-plots", *extra], tmp_path)
        ok_or_one_line(p, verb)
        assert f"cpubench {verb}: warning: data/b: runs.jsonl but no host.json; its runs are left out" in p.stderr
        assert "copy host.json" in p.stderr
    assert "data/b: runs.jsonl but no host.json" in (tmp_path / "report-out" / "summary.md").read_text()
    # named on the command line (alone or beside a good one), it cannot be read: one line, exit 2, nothing written
    for verb, extra in (("report", ["--no-model-table"]), ("pages", [])):
        for args in (["data/b"], ["data/a", "data/b"]):
            p = cpubench([verb, *args, "-o", f"{verb}-named", "--no-plots", *extra], tmp_path)
            line = one_line_error(p, verb)
            assert "data/b: runs.jsonl but no host.json" in line and "copy host.json" in line
            assert not (tmp_path / f"{verb}-named").exists()


# ------------------------------------------------------------------------------------ a figure no host measures


def test_a_figure_no_host_measures_is_a_skipped_line_not_an_overflow(tmp_path: Path) -> None:
    """A schema-1 record (its figure taken as reported) saying 1e300 images/sec: the plots overflowed (a matplotlib
    traceback in report and pages) and compare printed inf%. The store now skips the line, naming it, and every
    reader shows the host's other runs."""
    data = tmp_path / "data"
    for host in ("a", "b"):
        write_host(data, host, [record(host, 1, 20.0, [1.6] * 10)])
    runs = data / "a" / store.RUNS_FILE  # after the record above: line 2
    huge = {**record("a", 0, 20.0, [1.6] * 10, schema=1).to_dict(), "images_per_sec": 1e300}
    with runs.open("a") as f:
        f.write(json.dumps(huge) + "\n")
    for verb, extra in (("report", ["-o", "out", "--no-model-table"]), ("pages", ["-o", "pages"])):
        p = cpubench([verb, "data", *extra], tmp_path)
        ok_or_one_line(p, verb)
        assert "runs.jsonl:2: images_per_sec: more than any host measures" in p.stderr, p.stderr
    p = cpubench(["compare", "data/a", "data/b"], tmp_path)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stdout + p.stderr
    assert not re.search(r"\binf\b", p.stdout) and "runs.jsonl:2: images_per_sec: more than" in p.stderr, p.stdout


def test_a_price_for_a_host_not_in_the_data_is_named_not_ignored(tmp_path: Path) -> None:
    """A prices file whose host id has a typo: the host it meant reads "no price", and the report now says which
    entry matched no host instead of ignoring it without a word."""
    data = tmp_path / "data"
    write_host(data, "a", [record("a", 0, 20.0, [1.6] * 10)])
    (tmp_path / "prices.yaml").write_text("a: 1.5\nepyc-typo: 2.0\n")
    p = cpubench(["report", "data", "-o", "out", "--no-model-table", "--no-plots", "--prices", "prices.yaml"], tmp_path)
    ok_or_one_line(p, "report")
    assert "cpubench report: warning: --prices names epyc-typo, not among the hosts reported" in p.stderr, p.stderr
    assert "--prices names epyc-typo" in (tmp_path / "out" / "summary.md").read_text()


# ------------------------------------------------------------------------------------ a folder named twice


def test_a_folder_named_twice_is_read_once(tmp_path: Path) -> None:
    """``report data data/a`` (or ``data data``) read host a twice: every run was "recorded 2 times with status ok"
    in a warning of its own, and the host listed its folder twice. A folder reached twice is now read once."""
    data = tmp_path / "data"
    write_host(data, "a", [record("a", i, 20.0, [1.6] * 10) for i in range(2)])
    lost = write_host(data, "b", [record("b", 0, 25.0, [1.28] * 10)])
    (lost / store.HOST_FILE).unlink()
    for k, args in enumerate((["data", "data/a"], ["data", "./data"], ["data/a", str(data / "a")])):
        for verb, extra in (("report", ["--no-model-table"]), ("pages", [])):
            out = f"{verb}-{k}"
            p = cpubench([verb, *args, "-o", out, "--no-plots", *extra], tmp_path)
            ok_or_one_line(p, verb)
            assert "recorded 2 times" not in p.stderr, p.stderr
            assert p.stderr.count("runs.jsonl but no host.json") <= 1, p.stderr
        results = json.loads((tmp_path / f"report-{k}" / "results.json").read_text())
        (host,) = results["hosts"]
        assert len(host["folders"]) == 1 and len(results["runs"]) == 2, results


# ------------------------------------------------------------------------------------ one model, two settings


def test_training_and_inference_runs_are_never_one_point(tmp_path: Path) -> None:
    """A model run for training and for inference at the same threads and batch (cpu-default's alexnet, the
    tf-vs-torch config at batch 32): the pages took one median over both as one point, so the scaling CSVs, plots
    and the framework comparison read a latency neither setting had; the tuner's profile mixed fp32 and bf16 runs
    alike. Each setting is now its own point; a page shows the inference one nearest the defaults (synthetic data,
    fp32) and names the others, and the tuner reads the default inference setting."""
    data = tmp_path / "data"
    one = {"data": "syn", "variable_update": "parameter_server", "num_devices": 1, "num_intra_threads": 1}
    infer = [record("a", i, 20.0, [1.6] * 10, params={**one, "forward_only": True}) for i in range(2)]
    train = [record("a", 10 + i, 5.0, [6.4] * 10, setting="syn-parameter_server-1cpus-intra1",
                    params={**one, "forward_only": False}, run_hash=f"t{i}") for i in range(3)]  # fmt: skip
    fast = {**one, "forward_only": True, "precision": "bf16"}
    bf16 = [record("a", 20 + i, 80.0, [0.4] * 10, setting="syn-parameter_server-1cpus-inference-bf16-intra1",
                   params=fast, run_hash=f"b{i}") for i in range(3)]  # fmt: skip
    shards = {**one, "forward_only": True, "data": "real"}
    real = [record("a", 30 + i, 10.0, [3.2] * 10, setting="real-parameter_server-1cpus-inference-intra1",
                   params=shards, run_hash=f"r{i}") for i in range(2)]  # fmt: skip
    write_host(data, "a", [*infer, *train, *bf16, *real])
    p = cpubench(["pages", "data", "-o", "pages", "--no-plots"], tmp_path)
    ok_or_one_line(p, "pages")
    (row,) = list(csv.DictReader((tmp_path / "pages" / "a" / "resnet50_latency.csv").open()))
    assert row["repeats"] == "2" and float(row["latency(avg)"]) == 1600.0, row  # the fp32 inference runs alone
    page = (tmp_path / "pages" / "a" / "resnet50.md").read_text()
    assert "# Runs Shown" in page and "setting syn-parameter_server-1cpus-inference. " in page, page
    assert "syn-parameter_server-1cpus-inference-bf16" in page and "syn-parameter_server-1cpus:" in page, page
    assert "real-parameter_server-1cpus-inference," in page, page
    p = cpubench(["tune", "data/a", "--cores", "1"], tmp_path)
    assert p.returncode == 0, p.stderr
    assert "setting syn-parameter_server-1cpus-inference)" in p.stdout and "1600" in p.stdout, p.stdout
