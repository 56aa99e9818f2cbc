"""cpubench.analysis.stats (the bootstrap interval of a ratio of medians) and ``cpubench compare`` on real host folders.

The host folders are written through cpubench.results.store, as the runner writes them; the command runs in a real
subprocess (``python -m cpubench compare``), as a user runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cpubench import cli
from cpubench.analysis import compare, stats
from cpubench.render import tables
from cpubench.results import store
from tf_cnn_benchmarks.record import RunRecord, Samples

REPO = Path(__file__).resolve().parent.parent

# Images/sec of ten engine processes of one host: the measurements both "same" hosts are drawn from.
MEASURED = [50.2, 49.6, 50.9, 50.4, 49.9, 50.7, 50.1, 49.4, 50.6, 50.3]
SETTINGS = ("syn-replicated-1cpus", "syn-replicated-2cpus")
MODELS = ("resnet50", "alexnet")
REPEATS = 5


# ----------------------------------------------------------------------------------------------------------- stats


def test_identical_inputs_are_not_significant() -> None:
    ci = stats.ratio_of_medians(MEASURED[:5], MEASURED[:5])
    assert ci is not None and ci.known and not ci.significant
    assert ci.verdict == stats.NOT_SIGNIFICANT
    assert ci.ratio == 1.0 and ci.low is not None and ci.high is not None and ci.low <= 1.0 <= ci.high
    assert tables.ratio_ci_text(ci).startswith("\u22481.00 [")


@pytest.mark.parametrize("seed", range(5))
def test_two_draws_from_one_set_of_measurements_are_not_significant(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.choice(MEASURED, REPEATS), rng.choice(MEASURED, REPEATS)
    ci = stats.ratio_of_medians(a, b)
    assert ci is not None and ci.verdict == stats.NOT_SIGNIFICANT, ci


def test_scaled_by_1_3_is_faster_with_the_interval_above_1() -> None:
    base = MEASURED[:REPEATS]
    ci = stats.ratio_of_medians([1.3 * v for v in base], base)
    assert ci is not None and ci.significant and ci.verdict == stats.FASTER
    assert ci.low is not None and ci.high is not None and 1.0 < ci.low <= ci.ratio <= ci.high
    assert abs(ci.ratio - 1.3) < 1e-9
    assert tables.ratio_ci_text(ci) == f"1.30 [{ci.low:.2f}\u2013{ci.high:.2f}]"
    slower = stats.ratio_of_medians(base, [1.3 * v for v in base])
    assert slower is not None and slower.verdict == stats.SLOWER and slower.high is not None and slower.high < 1.0


def test_one_repeat_has_no_interval() -> None:
    ci = stats.ratio_of_medians([60.0], MEASURED[:3])
    assert ci is not None and not ci.known and not ci.significant
    assert ci.low is None and ci.high is None and ci.verdict == stats.NO_INTERVAL
    assert (ci.n_a, ci.n_b) == (1, 3)
    assert tables.ratio_ci_text(ci) == f"{60.0 / 50.2:.2f} (n=1)"
    assert stats.ratio_of_medians([], MEASURED) is None


def test_the_interval_is_reproducible_and_says_how_it_was_made() -> None:
    a, b = MEASURED[:4], MEASURED[4:9]
    assert stats.ratio_of_medians(a, b) == stats.ratio_of_medians(a, b)
    d = stats.ratio_of_medians(a, b).to_dict()  # type: ignore[union-attr]
    assert d["resamples"] == 2000 and d["confidence"] == 0.95 and (d["n_a"], d["n_b"]) == (4, 5)
    assert (
        d["method"] == "bootstrap of the ratio of medians over process repeats, 2000 resamples, 95% percentile interval"
    )


# --------------------------------------------------------------------------------------------------------- compare


def record(host: str, setting: str, model: str, repeat: int, ips: float, **kw: Any) -> RunRecord:
    """An ok run as the runner stores it (images/sec given, no step times unless ``samples`` is passed)."""
    n = int(setting.rsplit("-", 1)[1][:-4])
    rec = RunRecord(
        status="ok",
        images_per_sec=float(ips),
        model=model,
        batch_size=32,
        num_devices=n,
        params={"data": "syn", "variable_update": "replicated", "device": "cpu", "num_devices": n},
        engine={"name": "tf_cnn_benchmarks", "version": "0.1.0"},
        host_id=host,
        setting=setting,
        config_name="test",
        run_hash="cfg1",
        repeat=repeat,
        started=f"2025-03-01T{repeat:02d}:00:00+00:00",
        duration=60.0,
    )
    samples = kw.pop("samples", None)
    if samples is not None:
        rec = rec.with_samples(samples)
    for k, v in kw.items():
        setattr(rec, k, v)
    return rec


def write_host(root: Path, host: str, figures: dict[tuple[str, str], list[float]], **extra: Any) -> Path:
    """A host folder with one ok record per repeat of each (setting, model); ``extra`` goes into repeat 0's."""
    folder = store.write_host(root, {"host_id": host, "machine_fingerprint": f"fp-{host}"}).parent
    for (setting, model), values in figures.items():
        for r, ips in enumerate(values):
            store.append_run(root, record(host, setting, model, r, ips, **(extra if r == 0 else {})))
    return folder


def draws(seed: int, scale: float = 1.0) -> dict[tuple[str, str], list[float]]:
    """REPEATS values per setting x model, resampled (seeded) from MEASURED and scaled."""
    rng = np.random.default_rng(seed)
    return {
        (s, m): [round(scale * float(v), 4) for v in rng.choice(MEASURED, REPEATS)] for s in SETTINGS for m in MODELS
    }


def ramp(ips: float, steps: int = 10, slope: float = 0.02) -> Samples:
    """Timed steps that get slower step by step, adding up to about ``ips`` images/sec at batch 32: drift."""
    c = 32 * steps / ips / sum(1 + slope * i for i in range(steps))
    return Samples(global_batch=32, step_times=tuple(c * (1 + slope * i) for i in range(steps)))


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    return {
        "a": write_host(root, "box-a", draws(1)),
        "b": write_host(root, "box-b", draws(2)),  # the same measurements, drawn again
        "fast": write_host(root, "box-fast", draws(2, scale=1.3)),
        "root": root,
    }


def run_compare(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "cpubench", "compare", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def verdict_lines(stdout: str) -> list[list[str]]:
    """The per-model lines: [model, verdict words...] up to the ratio."""
    out = []
    for line in stdout.splitlines():
        words = line.split()
        if line.startswith("  ") and words and words[0] in MODELS:
            out.append(words)
    return out


def test_same_measurements_compare_as_not_significant(hosts: dict[str, Path]) -> None:
    p = run_compare(str(hosts["a"]), str(hosts["b"]))
    assert p.returncode == 0, p.stderr
    lines = verdict_lines(p.stdout)
    assert len(lines) == len(SETTINGS) * len(MODELS)
    for words in lines:
        assert words[1:3] == ["not", "significant"], p.stdout
        assert words[3].startswith("\u2248") and words[-4:] == ["repeats", "5", "/", "5"]
    assert p.stdout.splitlines()[0].startswith(f"box-b ({hosts['b']}) against box-a ({hosts['a']}), the baseline")
    assert p.stdout.strip().splitlines()[-1] == "summary: box-b against box-a: 0 faster, 0 slower, 4 not significant"
    assert [line.split()[0] for line in p.stdout.splitlines() if line and not line.startswith(" ")][3:] == [
        *SETTINGS,
        "summary:",
    ]  # settings in report order, after the three header lines


def test_scaled_host_compares_as_faster_both_ways_round(hosts: dict[str, Path]) -> None:
    p = run_compare(str(hosts["a"]), str(hosts["fast"]))
    assert p.returncode == 0, p.stderr
    for words in verdict_lines(p.stdout):
        assert words[1] == "faster", p.stdout
        low = float(words[3].strip("[").split("\u2013")[0])
        assert 1.2 < float(words[2]) < 1.45 and low > 1.0
    assert p.stdout.strip().endswith("4 faster, 0 slower, 0 not significant")
    # The last folder as the baseline: A over B, the fast host is now the baseline and box-a is slower.
    p = run_compare(str(hosts["a"]), str(hosts["fast"]), "--baseline-last", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["other"] == "box-a" and doc["baseline"] == "box-fast"
    assert doc["summary"]["slower"] == 4 and doc["method"] == stats.METHOD
    row = doc["rows"][0]
    assert row["setting"] == SETTINGS[0] and row["model"] == "resnet50" and row["verdict"] == "slower"
    assert row["high"] < 1.0 and (row["n"], row["n_baseline"]) == (5, 5)


def test_a_folder_that_is_not_a_host_folder_is_one_line_exit_2(hosts: dict[str, Path], tmp_path: Path) -> None:
    p = run_compare(str(hosts["root"]), str(hosts["a"]))  # the data folder, not one host of it
    assert p.returncode == 2 and p.stdout == ""
    err = p.stderr.strip().splitlines()
    assert err == [
        f"cpubench compare: error: {hosts['root']}: not a host folder (no host.json); give DATA_DIR/HOST_ID, a "
        "folder `cpubench run` or `cpubench import-logs` wrote"
    ]
    assert cli.main(["compare", str(hosts["a"]), str(tmp_path / "nope")]) == 2


def test_noisy_and_drifting_cells_are_noted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "data"
    base = {(SETTINGS[0], "resnet50"): MEASURED[:REPEATS]}
    a = write_host(root, "quiet", base)
    b = write_host(root, "busy", base, noise={"foreign_cpu_pct": 30.0, "resolution_pct": 1.0})
    c = write_host(root, "warming", base, samples=ramp(MEASURED[0]))
    assert cli.main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "busy: noisy: a repeat saw 30.0% foreign CPU during its measured window" in out
    assert cli.main(["compare", str(a), str(c), "--json"]) == 0
    notes = json.loads(capsys.readouterr().out)["rows"][0]["notes"]
    assert len(notes) == 1 and notes[0].startswith("warming: drift: in 1 of 5 repeats the second half of the timed")
    assert "% slower than the first (beyond their spread)" in notes[0]


def test_one_host_before_and_after_compares_by_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = write_host(tmp_path / "before", "box", {(SETTINGS[0], "alexnet"): MEASURED[:3]})
    after = write_host(tmp_path / "after", "box", {(SETTINGS[0], "alexnet"): [60.0]})
    assert cli.main(["compare", str(before), str(after)]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.strip().startswith("alexnet"))
    assert line.split()[1:5] == ["no", "interval", f"{60.0 / 50.2:.2f}", "(n=1)"]
    assert out.splitlines()[0] == f"{after} against {before}, the baseline"  # one host id: told apart by folder
    assert "1 without an interval" in out.splitlines()[-1]
    assert compare.compare(before, after).rows[0].verdict == stats.NO_INTERVAL
