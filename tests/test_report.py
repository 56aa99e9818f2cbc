"""cpubench report: 5 hosts x 9 settings x 7 models rendered into the classic table shape (golden file), and the
special cells and merge checks: failed, timeout, missing, unstable, partly failed, noisy, drifting, duplicates, host
id clashes; the relative table's intervals (cpubench.analysis.stats) on hosts drawn from one set of measurements.

The data set is generated here, deterministically, through cpubench.results.store (the same writer the runner uses),
so the
golden file depends on the report alone. Regenerate it with ``UPDATE_GOLDEN=1 pytest tests/test_report.py``.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from cpubench import cli
from cpubench.analysis import cells, order, stats
from cpubench.render import report
from cpubench.results import merge, store
from cpubench.spec import axes
from tf_cnn_benchmarks.record import RunRecord, Samples

GOLDEN = Path(__file__).parent / "golden" / "summary.md"

HOSTS: list[dict[str, Any]] = [
    {
        "host_id": "xeon-6248",
        "cpu_brand": "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz",
        "sockets": 2,
        "cores_physical": 40,
        "cores_logical": 80,
        "memory_bytes": 384 * 2**30,
        "tf_version": "2.21.0",
        "gpus": [],
        "factor": 1.0,
    },
    {
        "host_id": "epyc-7742",
        "cpu_brand": "AMD EPYC 7742 64-Core Processor",
        "sockets": 2,
        "cores_physical": 128,
        "cores_logical": 256,
        "memory_bytes": 512 * 2**30,
        "tf_version": "2.21.0",
        "gpus": [{"name": "NVIDIA A100-SXM4-40GB"}] * 4,
        "factor": 2.5,
    },
    {
        "host_id": "ryzen-5950x",
        "cpu_brand": "AMD Ryzen 9 5950X 16-Core Processor",
        "sockets": 1,
        "cores_physical": 16,
        "cores_logical": 32,
        "memory_bytes": 64 * 2**30,
        "tf_version": "2.21.0",
        "gpus": ["GeForce RTX 3090"],
        "factor": 0.75,
    },
    {
        "host_id": "i7-12700",
        "cpu_brand": "12th Gen Intel(R) Core(TM) i7-12700",
        "sockets": 1,
        "cores_physical": 12,
        "cores_logical": 20,
        "memory_bytes": 32 * 2**30,
        "tf_version": "2.21.0",
        "gpus": [],
        "factor": 0.5,
    },
    {"host_id": "lab-box", "cpu_brand": "Intel(R) Xeon(R) CPU E5-2690 v4", "source": "import", "factor": 0.3},
]

# Written in a shuffled order on purpose: the report must sort them (classic setting order, known model order).
SETTINGS = [
    "real-replicated-2cpus",
    "syn-parameter_server-1cpus-inference",
    "syn-replicated-nccl-4gpus",
    "syn-parameter_server-1cpus",
    "real-parameter_server-distortions-1cpus",
    "syn-replicated-2cpus",
    "real-parameter_server-1cpus",
    "syn-parameter_server-2cpus",
    "real-replicated-nccl-distortions-4gpus",
]
MODELS = {"vgg16": 20.0, "alexnet": 300.0, "resnet152": 12.0, "inception3": 25.0, "ssd300": 8.0, "resnet50": 30.0}
MODELS["inception4"] = 11.0
REPEATS = 3

FAKE_MODEL_ROWS = [  # fixed figures so the golden file does not move when the engine's declarations change
    {
        "model": "resnet50",
        "input_size": 224,
        "params": 25_557_032,
        "param_mb": 97.49,
        "feature_mb": 103.5,
        "gmacs": 4.1,
    },
    {"model": "alexnet", "input_size": 227, "params": 61_100_840, "param_mb": 233.08, "feature_mb": 4.1, "gmacs": 0.71},
    {"model": "vgg16", "input_size": 224, "params": 138_357_544, "param_mb": 527.8, "feature_mb": 58.6, "gmacs": 15.5},
]


def _params(setting: str) -> dict[str, Any]:
    tokens = setting.split("-")
    n = int(next(t for t in tokens if t.endswith(("cpus", "gpus")))[:-4])
    return {
        "data": tokens[0],
        "variable_update": tokens[1],
        "nccl": "nccl" in tokens,
        "distortions": "distortions" in tokens,
        "forward_only": "inference" in tokens,
        "device": "gpu" if "gpus" in setting else "cpu",
        "num_devices": n,
    }


def append(root: Path, rec: dict[str, Any]) -> None:
    store.append_run(root, RunRecord.from_dict(rec))


def _record(host: str, setting: str, model: str, repeat: int, status: str, ips: float | None, **kw: Any) -> dict:
    day = 1 + SETTINGS.index(setting)
    rec = {
        "schema": store.RUN_SCHEMA,
        "host_id": host,
        "setting": setting,
        "model": model,
        "batch_size": 32,
        "num_devices": _params(setting)["num_devices"],
        "repeat": repeat,
        "status": status,
        "images_per_sec": ips,
        "step_times": [],
        "reason": None if status == "ok" else "exit code 1: ResourceExhaustedError: OOM when allocating tensor",
        "started": f"2025-03-{day:02d}T{repeat:02d}:00:00+00:00",
        "duration": 60.0,
        "load_avg_before": [0.1, 0.1, 0.1],
        "run_hash": "cfg1",
        "engine": {"name": "tf_cnn_benchmarks", "version": "0.1.0"},
        "params": _params(setting),
        "config_name": "test",
        "log": f"logs/{setting}/{model}-bs32-r{repeat}.log",
    }
    rec.update(kw)
    return rec


def drifting_steps(ips: float, steps: int = 10, batch: int = 32, slope: float = 0.02) -> list[float]:
    """Timed steps that get slower step by step (a linear ramp) and add up to ``ips`` images/sec."""
    c = batch * steps / ips / sum(1 + slope * i for i in range(steps))
    return [round(c * (1 + slope * i), 9) for i in range(steps)]


# Extra fields of single ok repeats: (host, setting, model, repeat) -> record fields given the repeat's images/sec.
EXTRAS: dict[tuple[str, str, str, int], Any] = {
    # another process took 23.4% of the machine during the measured window: noisy
    ("lab-box", "syn-parameter_server-1cpus-inference", "resnet152", 2): lambda ips: {
        "noise": {"foreign_cpu_pct": 23.4, "resolution_pct": 0.5, "window_s": 30.0},
        "load_avg_after": [1.9, 0.6, 0.3],
    },
    # 5.3% foreign CPU is within 5% plus the 0.5% resolution: not noisy
    ("lab-box", "syn-parameter_server-1cpus-inference", "resnet50", 1): lambda ips: {
        "noise": {"foreign_cpu_pct": 5.3, "resolution_pct": 0.5, "window_s": 30.0},
    },
    # timed steps slowing down through the run: drift
    ("i7-12700", "syn-parameter_server-1cpus-inference", "vgg16", 0): lambda ips: {
        "global_batch_size": 32,
        "step_times": drifting_steps(ips),
    },
}


def write_dataset(root: Path) -> list[Path]:
    """The 5-host x 9-setting x 7-model set with one of every special cell; returns the host folders."""
    special: dict[tuple[str, str, str], list[tuple[str, float | None, str | None]]] = {
        # unstable: CV well above 5%
        ("xeon-6248", "syn-parameter_server-1cpus", "resnet50"): [
            ("ok", 30.0, None),
            ("ok", 36.0, None),
            ("ok", 27.0, None),
        ],
        # all failed
        ("epyc-7742", "syn-replicated-nccl-4gpus", "vgg16"): [("failed", None, None)] * 3,
        # all timed out
        ("ryzen-5950x", "syn-parameter_server-1cpus", "inception4"): [("timeout", None, "timed out after 1800 s")] * 3,
        # one of three failed: the median of the two ok ones, never an average with a 0
        ("epyc-7742", "syn-parameter_server-2cpus", "alexnet"): [
            ("ok", 700.0, None),
            ("failed", None, "signal 9 (killed: out of memory)"),
            ("ok", 710.0, None),
        ],
        # skipped by the runner
        ("i7-12700", "syn-replicated-nccl-4gpus", "resnet50"): [("skipped", None, "needs 4 GPUs, host has none")],
    }
    dirs = []
    for h, host in enumerate(HOSTS):
        meta = {k: v for k, v in host.items() if k != "factor"}
        meta["machine_fingerprint"] = f"fp-{host['host_id']}"
        meta["collected"] = "2025-03-01T00:00:00+00:00"
        dirs.append(store.write_host(root, meta).parent)
        for s, setting in enumerate(SETTINGS):
            if host["host_id"] == "lab-box" and setting.startswith("real-"):
                continue  # missing: the old box never ran real data
            for model, base in MODELS.items():
                if host["host_id"] == "ryzen-5950x" and setting == "syn-replicated-2cpus" and model == "ssd300":
                    continue  # missing cell
                key = (host["host_id"], setting, model)
                for r in range(REPEATS):
                    if key in special:
                        if r >= len(special[key]):
                            continue
                        status, ips, reason = special[key][r]
                        extra = {"reason": reason} if reason else {}
                        append(root, _record(host["host_id"], setting, model, r, status, ips, **extra))
                        continue
                    ips = round(base * host["factor"] * (1 + 0.1 * s) * (1 + 0.004 * (r - 1)) + h * 0.013, 4)
                    extra = EXTRAS[(*key, r)](ips) if (*key, r) in EXTRAS else {}
                    append(root, _record(host["host_id"], setting, model, r, "ok", ips, **extra))
    # a model run with two batch sizes in one setting: one row per batch size there
    append(root, _record("ryzen-5950x", "syn-parameter_server-1cpus", "resnet50", 0, "ok", 19.5, batch_size=64))
    # a record of a schema this cpubench does not read
    with open(root / "lab-box" / store.RUNS_FILE, "a") as f:
        f.write(json.dumps({"schema": 99, "host_id": "lab-box", "setting": "x", "model": "y", "status": "ok"}) + "\n")
    return dirs


def _normalise(text: str, root: Path) -> str:
    return text.replace(str(root), "<data>")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, report.ReportFiles, merge.Merged]:
    root = tmp_path_factory.mktemp("data")
    write_dataset(root)
    out = root.parent / (root.name + "-summary")
    files, merged = report.build_report([root], out, model_rows=lambda: FAKE_MODEL_ROWS)
    return root, out, files, merged


def test_golden_summary(rendered: tuple[Path, Path, report.ReportFiles, merge.Merged]) -> None:
    root, _, files, _ = rendered
    text = _normalise(files.summary.read_text(), root)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "summary.md changed; inspect and rerun with UPDATE_GOLDEN=1 if intended"


def _table(md: str, setting: str) -> list[list[str]]:
    """The rows of the table under ``**setting**`` in the Images/sec section, split into stripped cells."""
    section = md.split("## Images/sec", 1)[1]
    block = section.split(f"**{setting}**\n\n", 1)[1].split("\n\n", 1)[0]
    return [[c.strip() for c in line.strip("|").split("|")] for line in block.splitlines()]


def test_classic_shape_and_order(rendered: tuple[Path, Path, report.ReportFiles, merge.Merged]) -> None:
    _, _, files, _ = rendered
    md = files.summary.read_text()
    titles = re.findall(r"^\*\*(.+)\*\*$", md.split("## Relative to", 1)[0], flags=re.M)
    assert titles == [
        "syn-parameter_server-1cpus",
        "syn-parameter_server-1cpus-inference",
        "syn-parameter_server-2cpus",
        "syn-replicated-2cpus",
        "syn-replicated-nccl-4gpus",
        "real-parameter_server-1cpus",
        "real-parameter_server-distortions-1cpus",
        "real-replicated-2cpus",
        "real-replicated-nccl-distortions-4gpus",
    ]
    rows = _table(md, "syn-replicated-2cpus")
    assert rows[0] == ["model", "epyc-7742", "i7-12700", "lab-box", "ryzen-5950x", "xeon-6248"]  # data/ sorts
    assert [r[0] for r in rows[2:]] == [
        "resnet50",
        "resnet152",
        "inception3",
        "inception4",
        "vgg16",
        "alexnet",
        "ssd300",
    ]
    for row in rows[2:]:
        for cell in row[1:]:
            assert re.fullmatch(r"\d+\.\d\d|\u2014", cell), cell
    assert "| 0 " not in md and "| 0.00" not in md


def test_special_cells(rendered: tuple[Path, Path, report.ReportFiles, merge.Merged]) -> None:
    _, _, files, _ = rendered
    md = files.summary.read_text()
    notes = dict(re.findall(r"^- \[(\d+)\] (.*)$", md, flags=re.M))

    def cell(setting: str, row: str, host: str) -> str:
        table = _table(md, setting)
        return next(r for r in table if r[0] == row)[table[0].index(host)]

    unstable = cell("syn-parameter_server-1cpus", "resnet50 (bs 32)", "xeon-6248")
    assert re.fullmatch(r"30\.00 ~\[(\d+)\]", unstable)
    assert "spread 27.00\u201336.00" in notes[unstable.split("[")[1][:-1]]
    assert cell("syn-parameter_server-1cpus", "resnet50 (bs 64)", "ryzen-5950x") == "19.50"
    assert cell("syn-parameter_server-1cpus", "resnet50 (bs 64)", "xeon-6248") == "\u2014"
    assert cell("syn-parameter_server-1cpus", "alexnet", "xeon-6248") == "390.00"  # no bs split for other models

    failed = cell("syn-replicated-nccl-4gpus", "vgg16", "epyc-7742")
    assert re.fullmatch(r"failed \[\d+\]", failed)
    assert "3 of 3 repeats failed: exit code 1: ResourceExhaustedError" in notes[failed[8:-1]]

    timeout = cell("syn-parameter_server-1cpus", "inception4", "ryzen-5950x")
    assert re.fullmatch(r"timeout \[\d+\]", timeout)
    assert "timed out after 1800 s" in notes[timeout[9:-1]]

    partial = cell("syn-parameter_server-2cpus", "alexnet", "epyc-7742")
    assert re.fullmatch(r"705\.00 \*\[\d+\]", partial)  # median of 700 and 710, not (700 + 0 + 710) / 3
    assert "1 failed of 3 repeats (signal 9" in notes[partial.split("[")[1][:-1]]

    skipped = cell("syn-replicated-nccl-4gpus", "resnet50", "i7-12700")
    assert re.fullmatch(r"\u2014 \[\d+\]", skipped) and "needs 4 GPUs" in notes[skipped[3:-1]]
    assert cell("syn-replicated-2cpus", "ssd300", "ryzen-5950x") == "\u2014"
    assert cell("real-replicated-2cpus", "vgg16", "lab-box") == "\u2014"


def test_warnings_and_relative_table(rendered: tuple[Path, Path, report.ReportFiles, merge.Merged]) -> None:
    _, _, files, merged = rendered
    md = files.summary.read_text()
    assert "## Warnings" in md and "written by a newer cpubench (record schema 99" in md
    assert any("record schema 99" in w and "upgrade" in w for w in merged.warnings)
    rel = md.split("## Relative to epyc-7742", 1)[1]
    table = rel.split("**syn-replicated-2cpus**\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert table[2].split("|")[2].strip() == "1.00"  # the baseline column of resnet50


def test_plots_embedded_and_written(rendered: tuple[Path, Path, report.ReportFiles, merge.Merged]) -> None:
    _, out, files, _ = rendered
    assert len(files.plots) == 9
    for p in files.plots:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"](plots/{p.name})" in files.summary.read_text()
    assert (out / "plots" / "syn-replicated-nccl-4gpus.png").is_file()


def test_csv_and_json_are_tidy(rendered: tuple[Path, Path, report.ReportFiles, merge.Merged]) -> None:
    _, _, files, _ = rendered
    with open(files.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    # lab-box lacks the 4 real settings; one cell missing; skipped has 1 record not 3; one extra batch size
    expected = 5 * 9 * 7 * 3 - 4 * 7 * 3 - 3 - 2 + 1
    assert len(rows) == expected
    assert {"host_id", "cpu_brand", "setting", "model", "batch_size", "repeat", "status", "images_per_sec"} <= set(
        rows[0]
    )
    keys = [(r["host_id"], r["setting"], r["model"], r["batch_size"], r["repeat"]) for r in rows]
    assert len(set(keys)) == len(keys)
    assert all(r["images_per_sec"] == "" for r in rows if r["status"] != "ok")
    doc = json.loads(files.json.read_text())
    assert doc["baseline"] == "epyc-7742" and len(doc["hosts"]) == 5 and len(doc["settings"]) == 9


def test_model_table(rendered: tuple[Path, Path, report.ReportFiles, merge.Merged]) -> None:
    _, _, files, _ = rendered
    md = files.summary.read_text()
    models = md.split("## Models", 1)[1].split("## Images/sec", 1)[0]
    assert "| resnet50 | 224\u00d7224 |" in models.replace("  ", " ").replace("  ", " ")
    assert "25.56 M" in models
    assert "Not in the model declarations: resnet152, inception3, inception4, ssd300." in models
    assert "top-1" in models and "left out" in models


def test_model_table_failure_is_one_line(tmp_path: Path) -> None:
    root = tmp_path / "data"
    store.write_host(root, {"host_id": "a", "machine_fingerprint": "x"})
    append(root, _record("a", "syn-replicated-2cpus", "resnet50", 0, "ok", 5.0))

    def broken() -> list[dict[str, Any]]:
        raise ImportError("no module named cpubench.commands.models")

    files, _ = report.build_report([root], tmp_path / "s", model_rows=broken, plots=False)
    md = files.summary.read_text()
    assert "Model table not available (ImportError: no module named cpubench.commands.models)." in md
    assert "**syn-replicated-2cpus**" in md and "5.00" in md


def test_duplicate_host_id_from_two_machines_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "site-a", tmp_path / "site-b"
    store.write_host(a, {"host_id": "box", "machine_fingerprint": "fp-1"})
    store.write_host(b, {"host_id": "box", "machine_fingerprint": "fp-2"})
    rc = cli.main(["report", str(a), str(b), "-o", str(tmp_path / "out"), "--no-model-table"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert str(a / "box") in err[0] and str(b / "box") in err[0] and "--host-id" in err[0]
    assert not (tmp_path / "out" / "summary.md").exists()


def test_same_host_split_over_two_folders_merges(tmp_path: Path) -> None:
    a, b = tmp_path / "site-a", tmp_path / "site-b"
    for root, repeat, ips in ((a, 0, 10.0), (b, 1, 12.0)):
        store.write_host(root, {"host_id": "box", "machine_fingerprint": "fp-1"})
        append(root, _record("box", "syn-replicated-2cpus", "resnet50", repeat, "ok", ips))
    files, merged = report.build_report([a, b], tmp_path / "out", model_rows=None, plots=False)
    assert merged.host_ids == ["box"] and len(merged.runs) == 2
    assert "| resnet50 | 11.00 ~[1] |" in files.summary.read_text().replace("  ", " ").replace("  ", " ")


def test_same_run_recorded_twice_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "data"
    store.write_host(root, {"host_id": "box", "machine_fingerprint": "fp-1"})
    first = _record("box", "syn-replicated-2cpus", "resnet50", 0, "ok", 10.0)
    append(root, first)
    append(root, {**first, "images_per_sec": 99.0, "started": "2025-04-01T00:00:00+00:00"})
    # a failed attempt retried with success is not a duplicate: the ok record is kept, silently
    append(root, _record("box", "syn-replicated-2cpus", "alexnet", 0, "failed", None))
    append(root, _record("box", "syn-replicated-2cpus", "alexnet", 0, "ok", 50.0))
    rc = cli.main(["report", str(root), "-o", str(tmp_path / "out"), "--no-model-table", "--no-plots"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "box syn-replicated-2cpus resnet50 bs 32 repeat 0 (run cfg1) recorded 2 times with status ok" in err
    assert "kept the one started 2025-03-06T00:00:00+00:00" in err
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "10.00" in md and "99.00" not in md and "50.00" in md
    assert "## Warnings" in md and "recorded 2 times" in md


def test_bad_baseline_and_docs_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "data"
    store.write_host(root, {"host_id": "a", "machine_fingerprint": "x"})
    store.write_host(root, {"host_id": "b", "machine_fingerprint": "y"})
    append(root, _record("a", "syn-replicated-2cpus", "resnet50", 0, "ok", 5.0))
    append(root, _record("b", "syn-replicated-2cpus", "resnet50", 0, "ok", 10.0))
    out, docs = tmp_path / "out", tmp_path / "docs"
    assert cli.main(["report", str(root), "-o", str(out), "--baseline", "zzz", "--no-model-table"]) == 2
    assert "not one of the hosts: a, b" in capsys.readouterr().err
    rc = cli.main(["report", str(root), "-o", str(out), "--baseline", "b", "--docs", str(docs), "--no-model-table"])
    assert rc == 0
    md = (docs / "summary.md").read_text()
    assert "## Relative to b" in md and "| resnet50 | 0.50 (n=1) | 1.00 |" in md  # one repeat each: no interval
    assert (docs / "plots" / "syn-replicated-2cpus.png").is_file()


def test_settings_are_ordered_by_their_stored_axis_values_not_their_names() -> None:
    def full(setting: str, **kw: Any) -> dict[str, Any]:
        return {**axes.defaults(), **_params(setting), **kw}

    params = {
        "syn-replicated-2cpus-xla": full("syn-replicated-2cpus", xla_compile=True),
        "real-replicated-1cpus": full("real-replicated-1cpus"),
        "weird": {},  # no stored values (nothing known): last
        "syn-replicated-2cpus": full("syn-replicated-2cpus"),
        "syn-replicated-1cpus": full("syn-replicated-1cpus"),
        # A name that says nothing: its values put it between the 1- and 2-device syn settings.
        "zzz-renamed": full("syn-replicated-1cpus", forward_only=True),
    }
    assert sorted(params, key=lambda s: axes.sort_key(params[s])) == [
        "syn-replicated-1cpus",
        "zzz-renamed",
        "syn-replicated-2cpus",
        "syn-replicated-2cpus-xla",
        "real-replicated-1cpus",
        "weird",
    ]


def test_models_unknown_after_known() -> None:
    assert sorted(["zeta", "vgg16", "alpha", "resnet50"], key=order.model_sort_key) == [
        "resnet50",
        "vgg16",
        "alpha",
        "zeta",
    ]


def test_report_does_not_import_tensorflow(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = tmp_path / "data"
    store.write_host(root, {"host_id": "a", "machine_fingerprint": "x"})
    append(root, _record("a", "syn-replicated-2cpus", "resnet50", 0, "ok", 5.0))
    code = (
        "import sys; from cpubench import cli; "
        f"rc = cli.main(['report', {str(root)!r}, '-o', {str(tmp_path / 'o')!r}]); "
        "assert 'tensorflow' not in sys.modules, 'report imported tensorflow'; sys.exit(rc)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)


def test_cpu_report_script(tmp_path: Path) -> None:
    import subprocess

    repo = Path(__file__).resolve().parent.parent
    if not (repo / ".venv" / ".cpubench-installed").is_file():
        pytest.skip("scripts/cpu_report.sh would install the venv first")
    root = tmp_path / "data"
    store.write_host(root, {"host_id": "a", "machine_fingerprint": "x"})
    append(root, _record("a", "syn-replicated-2cpus", "resnet50", 0, "ok", 5.0))
    # --prices FILE (relative to the caller, as -o and --docs are): the script took the file for a data folder
    (tmp_path / "prices.yaml").write_text("a: 3.25\n")
    cmd = ["bash", str(repo / "scripts" / "cpu_report.sh"), "data", "-o", "out", "--docs", "docs", "--no-model-table",
           "--prices", "prices.yaml"]  # fmt: skip
    subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True, timeout=120)
    assert "3.25" in (tmp_path / "out" / "summary.md").read_text()
    assert (tmp_path / "out" / "summary.md").is_file() and (tmp_path / "out" / "results.csv").is_file()
    assert (tmp_path / "docs" / "summary.md").read_text() == (tmp_path / "out" / "summary.md").read_text()
    assert (tmp_path / "docs" / "plots" / "syn-replicated-2cpus.png").is_file()


# ------------------------------------------------------------------------------ intervals, noise and drift


MEASURED = [50.2, 49.6, 50.9, 50.4, 49.9, 50.7, 50.1, 49.4, 50.6, 50.3]  # images/sec of ten engine processes


def _ok_run(host: str, setting: str, model: str, repeat: int, ips: float, **kw: Any) -> RunRecord:
    rec = RunRecord.from_dict(_record(host, setting, model, repeat, "ok", ips))
    samples = kw.pop("samples", None)
    if samples is not None:
        rec = rec.with_samples(samples)
    for k, v in kw.items():
        setattr(rec, k, v)
    return rec


def _relative_cells(md: str, setting: str) -> dict[tuple[str, str], str]:
    rel = md.split("## Relative to ", 1)[1]
    block = rel.split(f"**{setting}**\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in block]
    return {(r[0], h): c for r in rows[2:] for h, c in zip(rows[0][1:], r[1:], strict=True)}


def test_relative_table_gives_intervals_and_marks_what_is_not_significant(tmp_path: Path) -> None:
    import numpy as np

    root = tmp_path / "data"
    setting = "syn-replicated-2cpus"
    for host in ("base", "same", "fast"):
        store.write_host(root, {"host_id": host, "machine_fingerprint": f"fp-{host}"})
    for m, model in enumerate(("resnet50", "alexnet")):
        rng = np.random.default_rng(m)
        base, same = rng.choice(MEASURED, 5), rng.choice(MEASURED, 5)  # two draws from one set of measurements
        for r in range(5):
            store.append_run(root, _ok_run("base", setting, model, r, float(base[r])))
            store.append_run(root, _ok_run("same", setting, model, r, float(same[r])))
            store.append_run(root, _ok_run("fast", setting, model, r, round(1.3 * float(same[r]), 4)))
    files, _ = report.build_report([root], tmp_path / "out", baseline="base", model_rows=None, plots=False)
    md = files.summary.read_text()
    cells = _relative_cells(md, setting)
    for model in ("resnet50", "alexnet"):
        assert cells[(model, "base")] == "1.00"
        # an end that would round to 1.00 shows a third decimal (the side of 1.00 it is on)
        assert re.fullmatch(r"\u2248(0\.9\d|1\.0\d) \[0\.9\d\d?\u20131\.0\d\d?\]", cells[(model, "same")]), cells
        fast = re.fullmatch(r"(1\.\d\d) \[(1\.\d\d)\u2013(1\.\d\d)\]", cells[(model, "fast")])
        assert fast and 1.2 < float(fast[1]) < 1.45 and float(fast[2]) > 1.0, cells
    assert "the interval contains 1.00, not significant" in md
    assert "Repeats (ok engine processes): 5 per cell." in md
    assert f"Intervals: {stats.METHOD}" in md
    with open(tmp_path / "out" / "relative.csv", newline="") as f:
        rel = {(r["row"], r["host_id"]): r for r in csv.DictReader(f)}
    assert {r["verdict"] for k, r in rel.items() if k[1] == "same"} == {"not significant"}
    assert {r["verdict"] for k, r in rel.items() if k[1] == "fast"} == {"faster"}
    assert all(r["baseline"] == "base" and r["n"] == r["n_baseline"] == "5" for r in rel.values())
    doc = json.loads(files.json.read_text())
    fast_cell = next(c for c in doc["cells"] if c["host_id"] == "fast" and c["model"] == "alexnet")
    assert fast_cell["relative"]["verdict"] == "faster" and fast_cell["relative"]["low"] > 1.0
    assert fast_cell["relative"]["method"] == stats.METHOD and len(fast_cell["values"]) == 5
    assert next(c for c in doc["cells"] if c["host_id"] == "base")["relative"] is None


def _drifting(ips: float, steps: int = 10, slope: float = 0.02) -> Samples:
    """Timed steps at batch 32 that get slower step by step (about ``ips`` images/sec over all of them)."""
    c = 32 * steps / ips / sum(1 + slope * i for i in range(steps))
    return Samples(global_batch=32, step_times=tuple(c * (1 + slope * i) for i in range(steps)))


def test_noisy_and_drifting_cells_are_marked_with_a_note(tmp_path: Path) -> None:
    root = tmp_path / "data"
    setting = "syn-replicated-2cpus"
    store.write_host(root, {"host_id": "box", "machine_fingerprint": "fp"})
    loud = {"foreign_cpu_pct": 30.0, "resolution_pct": 1.0}
    quiet = {"foreign_cpu_pct": 5.5, "resolution_pct": 1.0}  # within 5% plus the resolution
    for r in range(3):
        ips = MEASURED[r]
        store.append_run(root, _ok_run("box", setting, "resnet50", r, ips, noise=loud if r == 1 else None))
        store.append_run(root, _ok_run("box", setting, "vgg16", r, ips, noise=quiet))
        store.append_run(root, _ok_run("box", setting, "alexnet", r, ips, samples=_drifting(ips) if r == 2 else None,
                                       load_avg_after=[2.5, 1.0, 0.5]))  # fmt: skip
    files, _ = report.build_report([root], tmp_path / "out", model_rows=None, plots=False)
    md = files.summary.read_text()
    table = {row[0]: row[1] for row in _table(md, setting)[2:]}
    notes = dict(re.findall(r"^- \[(\d+)\] (.*)$", md, flags=re.M))
    noisy = re.fullmatch(r"50\.20 !\[(\d+)\]", table["resnet50"])
    assert noisy, table
    assert notes[noisy[1]] == "resnet50 on box: noisy: a repeat saw 30.0% foreign CPU during its measured window"
    assert table["vgg16"] == "50.20"
    drift = re.fullmatch(r"\d+\.\d\d \^\[(\d+)\]", table["alexnet"])
    assert drift, table
    assert re.fullmatch(
        r"alexnet on box: drift: in 1 of 3 repeats the second half of the timed steps ran 9\.6% slower than the "
        r"first \(beyond their spread\)",
        notes[drift[1]],
    )
    assert "`!` a repeat during whose measured window other processes used more than 5% of the machine's CPU" in md
    assert "`^` a repeat whose timed steps drifted" in md
    with open(files.csv, newline="") as f:
        rows = {(r["model"], r["repeat"]): r for r in csv.DictReader(f)}
    assert rows[("resnet50", "1")]["foreign_cpu_pct"] == "30.0" and rows[("resnet50", "1")]["resolution_pct"] == "1.0"
    assert rows[("resnet50", "0")]["foreign_cpu_pct"] == "" and rows[("resnet50", "0")]["drifted"] == ""
    assert rows[("alexnet", "2")]["drifted"] == "True" and float(rows[("alexnet", "2")]["drift_pct"]) > 9
    assert rows[("alexnet", "2")]["windows"] == "1" and rows[("alexnet", "0")]["windows"] == "0"
    assert rows[("alexnet", "0")]["load_avg_after"] == "2.5"
    doc = json.loads(files.json.read_text())
    cell = next(c for c in doc["cells"] if c["model"] == "resnet50")
    assert cell["noisy"] == 1 and cell["foreign_cpu_pct"] == 30.0 and cell["text"].startswith("50.20 !")


def test_notes_for_several_noisy_or_drifting_repeats() -> None:
    assert cells.noise_note(2, 3, 12.34) == (
        "noisy: 2 of 3 repeats saw up to 12.3% foreign CPU during their measured windows"
    )
    assert cells.drift_note([8.1], 1) == (
        "drift: the second half of the timed steps ran 8.1% slower than the first (beyond their spread)"
    )
    assert cells.drift_note([4.0, -3.2, 6.5], 5) == (
        "drift: in 3 of 5 repeats the second half of the timed steps ran up to 6.5% slower or up to 3.2% faster "
        "than the first (beyond their spread)"
    )
