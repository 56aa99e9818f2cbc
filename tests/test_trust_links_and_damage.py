"""Folders someone shared, through the real CLI: a link in a results or output folder is never written through, a
retried run's log never overwrites the kept one, a damaged ``host.json`` is kept aside rather than written over,
records whose fields no reader can use are skipped with ``runs.jsonl:LINE`` (never a traceback), and text from a
config or a record reaches neither a terminal nor a CSV with its control characters."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fakeengine import cpubench_run, records, write_config

from cpubench.render import escape
from cpubench.results import store
from tf_cnn_benchmarks import hostfacts

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "schema2" / "data"


def cpubench(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cpubench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def one_line(p: subprocess.CompletedProcess, *words: str) -> None:
    err = p.stderr.strip()
    assert p.returncode == 2 and "Traceback" not in p.stderr and err.count("\n") == 0, (p.returncode, p.stderr)
    for w in words:
        assert w in err, err


def _fixture(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(FIXTURE, data)
    return data


@pytest.mark.parametrize("where", ["log", "logs-folder"])
def test_a_link_in_the_results_folder_is_refused_before_any_run(tmp_path: Path, env: dict[str, str],
                                                                 where: str) -> None:  # fmt: skip
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8})
    out = tmp_path / "data"
    assert cpubench_run(["--config", str(cfg), "--out", str(out), "--host-id", "h1"], env, tmp_path).returncode == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours\n")
    (out / "h1" / "runs.jsonl").unlink()  # so the run would measure again and write its log
    if where == "log":
        log = next((out / "h1" / "logs").rglob("*.log"))
        log.unlink()
        log.symlink_to(victim)
    else:
        shutil.rmtree(out / "h1" / "logs")
        (tmp_path / "elsewhere").mkdir()
        (out / "h1" / "logs").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    p = cpubench_run(["--config", str(cfg), "--out", str(out), "--host-id", "h1"], env, tmp_path)
    one_line(p, "symbolic link", "never through a link")
    assert victim.read_text() == "not yours\n" and not any((tmp_path / "elsewhere").iterdir() if where != "log" else [])


@pytest.mark.parametrize("verb", ["report", "pages"])
def test_an_output_folder_holding_a_link_is_refused_and_nothing_is_written_through_it(tmp_path: Path,
                                                                                      verb: str) -> None:  # fmt: skip
    _fixture(tmp_path)
    extra = ["--no-model-table"] if verb == "report" else []
    first = cpubench([verb, "data", "-o", "out", "--no-plots", *extra], tmp_path)
    assert first.returncode == 0, first.stderr
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours\n")
    page = tmp_path / "out" / ("summary.md" if verb == "report" else "index.md")
    page.unlink()
    page.symlink_to(victim)
    one_line(cpubench([verb, "data", "-o", "out", "--no-plots", *extra], tmp_path), page.name, "symbolic link")
    assert victim.read_text() == "not yours\n"
    (tmp_path / "linked").symlink_to(tmp_path / "out", target_is_directory=True)
    one_line(cpubench([verb, "data", "-o", "linked", "--no-plots", *extra], tmp_path), "linked", "symbolic link")


def test_a_retried_failure_writes_a_log_of_its_own_and_the_first_stays_as_it_was(
    tmp_path: Path, env: dict[str, str]
) -> None:
    cfg = write_config(tmp_path / "c.yaml", {"lenet": 16})
    out = tmp_path / "data"
    args = ["--config", str(cfg), "--out", str(out), "--host-id", "h1"]
    assert cpubench_run(args, env, tmp_path).returncode == 1  # lenet fails in the fake engine
    (first,) = list((out / "h1" / "logs").rglob("*.log"))
    kept = first.read_bytes()
    assert cpubench_run([*args, "--retry-failed"], env, tmp_path).returncode == 1
    assert first.read_bytes() == kept
    logs = sorted(r["log"] for r in records(out))
    assert len(set(logs)) == 2 and logs[0].endswith("lenet-bs16-r0.log") and logs[1].endswith("lenet-bs16-try2-r0.log")
    assert all((out / "h1" / log).is_file() for log in logs)


def test_a_damaged_host_record_is_kept_aside_not_written_over(tmp_path: Path, env: dict[str, str]) -> None:
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8})
    out = tmp_path / "data"
    args = ["--config", str(cfg), "--out", str(out), "--host-id", "h1"]
    assert cpubench_run(args, env, tmp_path).returncode == 0
    host = out / "h1" / "host.json"
    damaged = host.read_bytes()[:300]
    host.write_bytes(damaged)
    p = cpubench_run(args, env, tmp_path)
    assert p.returncode == 0 and "not valid JSON" in p.stdout + p.stderr, p.stdout + p.stderr
    (aside,) = list((out / "h1").glob("host.json.unreadable-*"))
    assert aside.read_bytes() == damaged and store.read_host(out / "h1").host_id == "h1"


def _with_line(tmp_path: Path, change) -> Path:
    data = _fixture(tmp_path)
    runs = data / "s2-a" / "runs.jsonl"
    lines = runs.read_text().splitlines()
    rec = json.loads(lines[0])
    change(rec)
    runs.write_text("\n".join([lines[0], json.dumps(rec) if isinstance(rec, dict) else rec, *lines[1:]]) + "\n")
    return data


@pytest.mark.parametrize(("name", "change", "said"), [
    ("framework", lambda r: r["params"].update(framework="../../x"), "params.framework: '../../x' is none"),
    ("threads", lambda r: r["threads"].update(intra_effective="y"), "threads.intra_effective: expected a count"),
])  # fmt: skip
def test_a_record_whose_fields_no_reader_can_use_is_skipped_with_its_line(tmp_path: Path, name, change, said) -> None:
    _with_line(tmp_path, change)
    for args in (["report", "data", "-o", "out", "--no-model-table", "--no-plots"],
                 ["compare", "data/s2-a", "data/s2-b"]):  # fmt: skip
        p = cpubench(args, tmp_path)
        assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
        assert f"runs.jsonl:2: {said}" in p.stderr, p.stderr


def test_numbers_longer_than_python_converts_are_one_line_or_a_skipped_line(tmp_path: Path) -> None:
    data = _fixture(tmp_path)
    runs = data / "s2-a" / "runs.jsonl"
    kept = runs.read_text()
    runs.write_text(kept + '{"schema": 2, "batch_size": ' + "9" * 5000 + "}\n")
    p = cpubench(["compare", "data/s2-a", "data/s2-b"], tmp_path)
    assert p.returncode == 0 and "a number longer than any record holds; skipped" in p.stderr, p.stderr
    runs.write_text(kept)
    host = data / "s2-b" / "host.json"
    host.write_text(host.read_text().replace('"host_id"', '"cpu_family": ' + "7" * 5000 + ', "host_id"', 1))
    one_line(cpubench(["report", "data", "-o", "out", "--no-plots"], tmp_path), "s2-b", "a number longer")


@pytest.mark.parametrize(("limits", "entry"), [({"values": "x"}, "limits.values: expected"),
                                               ({"values": {"gemm_fp32_all": [1]}}, "limits.values.gemm_fp32_all: "),
                                               ({"values": {"gemm_fp32_all": {"value": "fast"}}},
                                                "limits.values.gemm_fp32_all.value: expected")])  # fmt: skip
def test_host_limits_of_a_shape_no_reader_can_walk_are_refused_in_one_line(tmp_path: Path, limits, entry) -> None:
    data = _fixture(tmp_path)
    host = data / "s2-a" / "host.json"
    h = json.loads(host.read_text())
    h["limits"] = limits
    host.write_text(json.dumps(h))
    for args in (["report", "data", "-o", "out", "--no-plots"], ["compare", "data/s2-a", "data/s2-b"],
                 ["pages", "data", "-o", "site", "--no-plots"]):  # fmt: skip
        one_line(cpubench(args, tmp_path), "s2-a", entry)  # the entry that is damaged, named


def test_credential_names_beyond_the_obvious_are_never_recorded() -> None:
    for name in ("OMP_PWD", "OMP_CREDS", "DNNL_JWT", "OMP_SAS", "KMP_BEARER", "ONEDNN_SIGNATURE"):
        assert hostfacts.is_secret(name) and not hostfacts.is_thread_setting(name), name
    assert not hostfacts.is_secret("OMP_NUM_THREADS") and hostfacts.is_thread_setting("OMP_NUM_THREADS")


def test_a_config_name_with_control_characters_is_refused_and_never_printed_raw(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text('name: "x\\e[31m<script>"\nmodels: {trivial: 8}\n')
    p = cpubench(["run", "--config", str(cfg), "--dry-run", "--out", "data", "--host-id", "h1"], tmp_path)
    one_line(p, "c.yaml:1", "name", "control characters")
    assert "\x1b" not in p.stdout + p.stderr


def test_a_csv_cell_shows_control_characters_as_everywhere_else() -> None:
    assert escape.csv_cell("EPYC\x1b[31m red") == "EPYC red"
    assert escape.csv_cell("oom\x07 bell") == "oom\\u0007 bell"
    assert escape.csv_cell("=1+1") == "'=1+1" and escape.csv_cell(3.5) == 3.5


def test_an_only_glob_that_matches_nothing_is_a_typo_named_in_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8})
    args = ["--config", str(cfg), "--out", str(tmp_path / "data"), "--host-id", "h1"]
    one_line(cpubench_run([*args, "--only", "trivial", "--only", "resnet5O"], env, tmp_path), "--only resnet5O",
             "matches no setting")  # fmt: skip
    assert not (tmp_path / "data" / "h1").exists()
    assert cpubench_run([*args, "--only", "triv*"], env, tmp_path).returncode == 0


def test_a_host_folder_that_is_a_link_is_refused_before_its_scratch_folder_is_emptied(
    tmp_path: Path, env: dict[str, str]
) -> None:
    elsewhere = tmp_path / "someones"
    (elsewhere / "tmp").mkdir(parents=True)
    (elsewhere / "tmp" / "keep.txt").write_text("theirs\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "h1").symlink_to(elsewhere, target_is_directory=True)
    cfg = write_config(tmp_path / "c.yaml", {"trivial": 8})
    p = cpubench_run(["--config", str(cfg), "--out", str(tmp_path / "data"), "--host-id", "h1"], env, tmp_path)
    one_line(p, "h1", "symbolic link")
    assert (elsewhere / "tmp" / "keep.txt").read_text() == "theirs\n" and sorted(elsewhere.iterdir()) == [
        elsewhere / "tmp"
    ]
