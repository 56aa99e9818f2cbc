"""cpubench import-logs: classic-layout and upstream-format logs become run records that the report merges."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cpubench import cli
from cpubench.results import store
from cpubench.results.import_logs import import_logs
from cpubench.results.logparse import NO_TOTAL_REASON

FIXTURES = Path(__file__).parent / "fixtures" / "legacy"


def _runs(root: Path, host: str) -> list[dict]:
    return [r.to_dict() for r in store.iter_runs(root / host)]


def test_import_classic_and_upstream(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "data"
    rc = cli.main(["import-logs", str(FIXTURES), "--host-id", "lab-box", "--out", str(out), "--cpu-brand", "Xeon X"])
    assert rc == 0
    captured = capsys.readouterr()
    assert "imported 5 log(s)" in captured.out
    assert "README.txt: not a tf_cnn_benchmarks log" in captured.err

    host = store.read_host(out / "lab-box")
    assert host.machine_fingerprint == "import:lab-box" and host.source == "import" and host.imported
    assert host.cpu_brand == "Xeon X" and host.tf_version == "1.13, 2.21"
    # Only what the logs tell: no null CPU, kernel or GPU facts for a machine nobody measured.
    assert set(json.loads((out / "lab-box" / store.HOST_FILE).read_text())) == {
        "schema", "host_id", "machine_fingerprint", "source", "cpu_brand", "tf_version"
    }  # fmt: skip

    runs = {(r["setting"], r["model"], r["repeat"]): r for r in _runs(out, "lab-box")}
    assert set(runs) == {
        ("syn-replicated-nccl-4gpus", "resnet50", 0),
        ("syn-replicated-nccl-4gpus", "resnet50", 1),
        ("real-parameter_server-distortions-1gpus", "inception3", 0),
        ("syn-parameter_server-1gpus", "vgg16", 0),
        ("syn-parameter_server-1cpus-inference", "alexnet", 0),
    }
    for r in runs.values():
        assert r["schema"] == store.RUN_SCHEMA and r["run_hash"] is None
        assert r["source"] == "import" and r["host_id"] == "lab-box"
        assert (out / "lab-box" / r["log"]).is_file()
    ok = runs[("syn-replicated-nccl-4gpus", "resnet50", 1)]
    assert ok["status"] == "ok" and ok["images_per_sec"] == 1012.84 and ok["details"]["legacy_iteration"] == 2
    assert (ok["batch_size"], ok["num_devices"], ok["params"]["nccl"]) == (64, 4, True)
    assert ok["log"] == "logs/import/resnet50-syn-replicated-nccl-4gpus-64-2.log"
    failed = runs[("real-parameter_server-distortions-1gpus", "inception3", 0)]
    assert failed["status"] == "failed" and failed["images_per_sec"] is None
    assert failed["reason"].startswith(NO_TOTAL_REASON) and "ResourceExhaustedError" in failed["reason"]
    assert failed["params"]["distortions"] is True
    headerless = runs[("syn-parameter_server-1gpus", "vgg16", 0)]
    assert headerless["images_per_sec"] == 180.95 and headerless["batch_size"] == 32
    upstream = runs[("syn-parameter_server-1cpus-inference", "alexnet", 0)]
    assert upstream["params"]["forward_only"] is True and upstream["batch_size"] == 128
    assert upstream["log"] == "logs/import/upstream/cpu-alexnet-inference-2024-11-25.txt"


def test_reimport_is_idempotent_and_continues_repeats(tmp_path: Path) -> None:
    src = tmp_path / "logs"
    src.mkdir()
    first = "resnet50-syn-replicated-nccl-4gpus-64-1.log"
    shutil.copy(FIXTURES / first, src / first)
    out = tmp_path / "data"
    assert import_logs(src, out, "old")[:2] == (1, 0)
    host_json = (out / "old" / store.HOST_FILE).read_bytes()
    assert import_logs(src, out, "old")[:2] == (0, 1)
    assert (out / "old" / store.HOST_FILE).read_bytes() == host_json  # nothing new: host.json as it was
    second = "resnet50-syn-replicated-nccl-4gpus-64-2.log"
    shutil.copy(FIXTURES / second, src / second)
    assert import_logs(src, out, "old")[:2] == (1, 1)
    assert sorted(r["repeat"] for r in _runs(out, "old")) == [0, 1]


def test_refuses_a_measured_host_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "data"
    store.write_host(out, {"host_id": "box", "machine_fingerprint": "sha256:abc"})
    rc = cli.main(["import-logs", str(FIXTURES), "--host-id", "box", "--out", str(out)])
    assert rc == 2
    assert "--host-id" in capsys.readouterr().err
    assert not (out / "box" / "runs.jsonl").exists()


def test_no_logs_found(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "notes.txt").write_text("nothing here\n")
    rc = cli.main(["import-logs", str(tmp_path / "src"), "--host-id", "x", "--out", str(tmp_path / "data")])
    assert rc == 2
    assert not (tmp_path / "data" / "x").exists()


def test_imported_host_merges_into_report(tmp_path: Path) -> None:
    from cpubench.render.report import build_report

    out = tmp_path / "data"
    import_logs(FIXTURES, out, "lab-box")
    files, merged = build_report([out], tmp_path / "summary", model_rows=None, plots=False)
    md = files.summary.read_text()
    assert "**syn-replicated-nccl-4gpus**" in md
    assert "1016.61" in md  # median of 1020.37 and 1012.84
    assert "failed [1]" in md and NO_TOTAL_REASON in md
    doc = json.loads(files.json.read_text())
    assert len(doc["runs"]) == 5 and merged.warnings == []


@pytest.mark.parametrize("host_id", ["../../etc", "../x", "/tmp/abs", ".hidden", "a/b", "x\\0y"])
def test_import_refuses_host_ids_that_would_write_outside_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], host_id: str
) -> None:
    out = tmp_path / "root" / "data"
    out.mkdir(parents=True)
    before = set(Path("/tmp").iterdir())
    rc = cli.main(["import-logs", str(FIXTURES), "--host-id", host_id, "--out", str(out)])
    assert rc == 2
    assert capsys.readouterr().err.startswith(f"cpubench import-logs: error: host id {host_id!r}: use letters")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # nothing written, inside --out or beside it
    assert set(Path("/tmp").iterdir()) == before


def test_import_of_no_logs_names_no_folder_it_did_not_make(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    rc = cli.main(["import-logs", str(empty), "--host-id", "box", "--out", str(tmp_path / "data")])
    captured = capsys.readouterr()
    assert rc == 2 and "imported" not in captured.out
    assert "no tf_cnn_benchmarks logs found" in captured.err and "nothing written" in captured.err
    assert not (tmp_path / "data" / "box").exists()
