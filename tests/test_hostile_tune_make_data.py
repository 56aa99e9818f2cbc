"""Hostile input to ``cpubench tune`` and ``cpubench make-data``: every refusal is one line and exit code 2, made
before the optimizer sizes a table or TensorFlow is imported, and what a run would write is bounded (a profile's
numbers, the tuner's tables, the generated set, the disk it goes to)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from cpubench import cli
from cpubench.tune import optimizer
from cpubench.tune.profile import MAX_CSV_BYTES
from tf_cnn_benchmarks.data import make

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "schema2" / "data" / "s2-a"
HEADER = "benchmark,topology,intraop_threads,batch_size,latency(avg)"


def one_line_error(rc: int, err: str) -> str:
    """The single stderr line of a refusal (exit code 2, no traceback)."""
    assert rc == 2, err
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("cpubench "), err
    return err


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    rc = cli.main(args)
    return one_line_error(rc, capsys.readouterr().err)


def profile(tmp_path: Path, *rows: str) -> str:
    path = tmp_path / "p.csv"
    path.write_text("\n".join((HEADER, "x_script,sequential,1,1,5.0", *rows)) + "\n")
    return str(path)


# --- tune: a profile CSV --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ("x_script,sequential,inf,2,5", "intraop_threads"),
        ("x_script,sequential,1e400,2,5", "intraop_threads"),
        ("x_script,sequential,1,1e400,5", "batch_size"),
        ("x_script,sequential,1,-inf,5", "batch_size"),
        ("x_script,sequential,1,nan,5", "batch_size"),
        ("x_script,sequential,5000,2,5", "intraop_threads"),
        ("x_script,sequential,1,100000,5", "batch_size"),
        ("x_script,sequential,1,2,1e400", "latency(avg)"),
        ("x_script,sequential,1,2,1e-320", "latency(avg)"),
        ("x_script,sequential,1,2,1e12", "latency(avg)"),
    ],
)
def test_non_finite_or_absurd_numbers_name_file_row_and_column(tmp_path, capsys, row: str, column: str) -> None:
    f = profile(tmp_path, row)
    err = run(["tune", "--profile", f, "--cores", "2", "--batch", "1"], capsys)
    assert f"{f}:3: {column}: expected" in err


def test_a_row_with_more_fields_than_the_header_is_named(tmp_path, capsys) -> None:
    f = profile(tmp_path, "x_script,sequential,1,2,5,EXTRA,MORE")
    err = run(["tune", "--profile", f, "--cores", "2"], capsys)
    assert f"{f}:3: 7 fields, but the header names 5" in err


def test_a_field_past_the_csv_limit_is_one_line(tmp_path, capsys) -> None:
    f = profile(tmp_path, '"' + "a" * 200_000)
    err = run(["tune", "--profile", f, "--cores", "2"], capsys)
    assert f"{f}:3: not a profile row" in err and "a" * 100 not in err


def test_a_profile_past_the_size_cap_is_refused_before_it_is_read(tmp_path, capsys) -> None:
    f = tmp_path / "huge.csv"
    with open(f, "wb") as out:
        out.write((HEADER + "\n").encode())
        out.truncate(MAX_CSV_BYTES + 1)  # sparse: no time spent writing it
    err = run(["tune", "--profile", str(f), "--cores", "2"], capsys)
    assert f"{MAX_CSV_BYTES + 1:,} bytes, more than a profile holds" in err


# --- tune: the tables' bounds ---------------------------------------------------------------------------------------


def test_cores_and_batch_are_bounded_by_the_tables_size(tmp_path, capsys) -> None:
    f = profile(tmp_path)
    most = optimizer.largest_batch(optimizer.MAX_CORES)
    err = run(["tune", "--profile", f, "--cores", str(optimizer.MAX_CORES), "--batch", str(optimizer.MAX_BATCH)],
              capsys)  # fmt: skip
    assert f"tables stop at batch {most} for {optimizer.MAX_CORES} cores" in err
    err = run(["tune", "--profile", f, "--cores", str(10**30)], capsys)
    assert f"--cores={10**30}: expected 1 to {optimizer.MAX_CORES}" in err


def test_a_profile_whose_batches_pass_the_tables_size_asks_for_batch(tmp_path, capsys) -> None:
    f = profile(tmp_path, f"x_script,sequential,1,{optimizer.MAX_BATCH},5")
    err = run(["tune", "--profile", f, "--cores", "2000"], capsys)
    assert "the profile's batches reach 65536 with --cores=2000" in err and "give --batch" in err


def test_a_store_record_with_a_huge_batch_is_refused_before_any_table(tmp_path, capsys) -> None:
    host = tmp_path / "data" / "s2-a"
    shutil.copytree(FIXTURE, host)
    lines = []
    for line in (host / "runs.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["params"].get("forward_only") and rec["params"].get("num_intra_threads") == 1 and rec["batch_size"] == 4:
            rec["batch_size"] = 10**18
        lines.append(json.dumps(rec))
    (host / "runs.jsonl").write_text("\n".join(lines) + "\n")
    err = run(["tune", str(host), "--cores", "2"], capsys)
    assert f"{host}/runs.jsonl: a trivial run (run_hash" in err and "batch_size 1000000000000000000, over" in err


def test_max_plus_keeps_its_temporary_bounded(monkeypatch) -> None:
    latency = {(1, b): 1.0 + b for b in range(1, 65)} | {(2, b): 0.5 + b for b in range(1, 65, 3)}
    want = optimizer.max_throughput(optimizer.Profile(latency), cores=4, batch=64)
    monkeypatch.setattr(optimizer, "_CHUNK", 7)  # many row blocks, dense and sparse: the same answer
    assert optimizer.max_throughput(optimizer.Profile(latency), cores=4, batch=64) == want


# --- make-data ------------------------------------------------------------------------------------------------------


def make_data_cli(tmp_path: Path, *args: str) -> str:
    """The real command as a subprocess: its stderr must be the one line, with no TensorFlow start-up logging."""
    p = subprocess.run([sys.executable, "-m", "cpubench", "make-data", *args], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="0"))  # fmt: skip
    return one_line_error(p.returncode, p.stderr)


@pytest.mark.parametrize(
    ("option", "words"),
    [
        (["--quality", "1000"], "--quality=1000: expected 1 to 100"),
        (["--quality", "0"], "--quality=0: expected 1 to 100"),
        (["--workers", "-1"], "--workers=-1: expected 0 to 256"),
        (["--workers", "100000"], "--workers=100000: expected 0 to 256"),
        (["--seed", "-1"], "--seed=-1: expected 0 to"),
        (["--classes", "0"], "--classes=0: expected 1 to 1,000"),
        (["--shards", "1000000"], "--shards=1000000: expected 0 to 99,999"),
    ],
)
def test_make_data_options_are_checked_first(tmp_path, option: list[str], words: str) -> None:
    err = make_data_cli(tmp_path, "src", "out", "--generate", "3", *option)
    assert words in err
    assert not (tmp_path / "src").exists() and not (tmp_path / "out").exists()


def test_generate_is_bounded(tmp_path) -> None:
    err = make_data_cli(tmp_path, "x", "outD", "--generate", "99999999999999")
    assert f"--generate=99999999999999: expected 1 to {make.MAX_GENERATE:,}" in err
    assert not (tmp_path / "x").exists() and not (tmp_path / "outD").exists()


def test_a_bad_source_is_found_before_tensorflow(tmp_path) -> None:
    assert "missing: no such folder" in make_data_cli(tmp_path, "missing", "out")


def fake_free(monkeypatch, free: int) -> None:
    monkeypatch.setattr(make.shutil, "disk_usage", lambda _path: SimpleNamespace(total=2 * free, used=free, free=free))


def test_generate_checks_free_space_for_the_set_and_its_shards(tmp_path, monkeypatch, capsys) -> None:
    fake_free(monkeypatch, 50_000_000)
    src, out = tmp_path / "src", tmp_path / "out"
    err = run(["make-data", str(src), str(out), "--generate", "1000"], capsys)
    assert "1,000 generated JPEGs and their shards need about 309.5 MB" in err and "50.0 MB free" in err
    assert not src.exists() and not out.exists()


def test_build_checks_free_space_for_the_shards(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "src" / "cat").mkdir(parents=True)
    for i in range(3):
        (tmp_path / "src" / "cat" / f"{i}.jpg").write_bytes(b"\xff\xd8" + bytes(100_000))
    fake_free(monkeypatch, 100_000)
    out = tmp_path / "out"
    err = run(["make-data", str(tmp_path / "src"), str(out)], capsys)
    assert f"{out}: the shards of 3 images need about 303.1 KB, and its disk has 100.0 KB free" in err
    assert not out.exists()
