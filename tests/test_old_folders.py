"""Folders written before the layout by role and the declared record fields (schema-2 run records that kept
``launch`` and a point's batch sizes in ``details``, tests/fixtures/schema2) resume, report, compare and render
pages exactly as the version that wrote them did (its outputs are the golden files in tests/golden/schema2); the
schema-1 folder of cpubench 0.1 (tests/fixtures/schema1) reports and renders pages as that version did too
(tests/golden/schema1; its resume is tested in test_runner.py)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cpubench.results import store

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "fixtures" / "schema2"
GOLDEN = HERE / "golden" / "schema2"


def cpubench(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cpubench", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the fixture, and the outputs of report, compare and pages over it (run once for the module)."""
    d = tmp_path_factory.mktemp("schema2")
    shutil.copytree(FIXTURE / "data", d / "data")
    for args in (["report", "data", "-o", "out/report", "--no-model-table", "--no-plots"],
                 ["pages", "data", "-o", "out/pages", "--no-plots"]):  # fmt: skip
        p = cpubench(args, d)
        assert p.returncode == 0, p.stderr
    for name, extra in (("compare.txt", []), ("compare.json", ["--json"])):
        p = cpubench(["compare", "data/s2-a", "data/s2-b", *extra], d)
        assert p.returncode == 0, p.stderr
        (d / "out" / name).write_text(p.stdout)
    return d


@pytest.fixture(scope="module")
def work1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("schema1")
    shutil.copytree(HERE / "fixtures" / "schema1" / "data", d / "data")
    for args in (["report", "data", "-o", "out/report", "--no-model-table", "--no-plots"],
                 ["pages", "data", "-o", "out/pages", "--no-plots"]):  # fmt: skip
        p = cpubench(args, d)
        assert p.returncode == 0, p.stderr
    return d


@pytest.mark.parametrize(
    "name",
    sorted(
        str(p.relative_to(GOLDEN.parent / "schema1"))
        for p in (GOLDEN.parent / "schema1").rglob("*")
        if p.is_file() and p.name != "results.json"
    ),  # fmt: skip
)
def test_schema1_outputs_are_those_of_the_version_before(work1: Path, name: str) -> None:
    same_as_then(work1 / "out" / name, GOLDEN.parent / "schema1" / name)


def golden_files() -> list[str]:
    return sorted(str(p.relative_to(GOLDEN)) for p in GOLDEN.rglob("*") if p.is_file() and p.name != "results.json")


@pytest.mark.parametrize("name", golden_files())
def test_outputs_are_those_of_the_version_that_wrote_the_folder(work: Path, name: str) -> None:
    same_as_then(work / "out" / name, GOLDEN / name)


# Lines the pages wrote then for a model with no ok run, which now go on to name the runs' reasons (a failed run is
# shown failed with its reason): "no ok runs: exit code 1: out of memory: lenet does not fit (8 runs)".
NO_OK_RUNS = ("no ok runs", "no ok runs of this model on this host")


# The section a page of a model run in several settings (training and inference, say) now opens with: the page shows
# one setting's points, where it once took the median of all of them as one point.
RUNS_SHOWN = "# Runs Shown"


def same_line(then: str, now: str) -> bool:
    return now == then or (then in NO_OK_RUNS and now.startswith(f"{then}: ") and now.endswith(")"))


def same_as_then(new: Path, old: Path) -> None:
    """The file as the version before wrote it; the pages' CSVs in Packrat's layout since ``cpubench tune`` (the
    tune issue changed it on purpose): ``benchmark`` names the framework and mode, ``allocator`` the memory allocator
    and the binding it held has a ``memory`` column, the throughput file has Packrat's ``throughput`` column; every
    other column and every figure is as it was. The report's ``results.csv`` gained columns at its end (efficiency,
    cost, energy: issue 24): every column it had is as it was, in its place, row for row. The pages' figures of a
    model run in several settings (training and inference, say) were one median over all of them; those rows of the
    golden CSVs and the pages' summary were written again when each setting became its own point (the old columns
    kept, only the repeats and figures of the mixed points changed). Ratios of two repeats a side have no interval
    since an interval needs three (a bootstrap of two values called alike hosts apart one time in three): the
    relative tables and compare outputs were written again for that."""
    if new.suffix == ".csv" and new.name == "results.csv" and new.parent.name == "report":
        then_rows, now_rows = list(csv.reader(old.open())), list(csv.reader(new.open()))
        assert len(then_rows) == len(now_rows)
        width = len(then_rows[0])
        assert now_rows[0][:width] == then_rows[0]  # the old columns first, in their order; new ones after
        for a, b in zip(then_rows, now_rows, strict=True):
            assert b[:width] == a
        return
    if new.name in ("index.md", "summary.md") and "pages" in new.parts:
        # The pages' index became the page a person starts from (best configurations first) and the summary a page
        # of the built site (front matter): every line written then is still there, in its order.
        lines = iter(new.read_text().splitlines())
        missing = [ln for ln in old.read_text().splitlines() if not any(same_line(ln, x) for x in lines)]
        assert not missing, missing[:3]
        return
    if new.suffix == ".md" and "pages" in new.parts:
        then_lines, now_lines = old.read_text().splitlines(), new.read_text().splitlines()
        if RUNS_SHOWN in now_lines:  # a model run in several settings: the page now says which one it shows
            at = now_lines.index(RUNS_SHOWN)
            assert now_lines[at + 2].startswith("The runs of setting "), now_lines[at : at + 4]
            del now_lines[at : at + 4]
        assert len(then_lines) == len(now_lines) and all(map(same_line, then_lines, now_lines)), new.read_text()
        return
    if new.suffix != ".csv" or new.parent.name == "report":
        assert new.read_text() == old.read_text()
        return
    then, now = list(csv.DictReader(old.open())), list(csv.DictReader(new.open()))
    assert len(then) == len(now)
    for a, b in zip(then, now, strict=True):
        assert b["benchmark"] == f"{a['benchmark']}_tensorflow_{a['execution']}"
        assert (b["allocator"], b["memory"], b["framework"]) == ("default", a["allocator"], "tensorflow")
        if "throughput(avg)" in a:
            assert b["throughput"] == a["throughput(avg)"]
        assert {k: v for k, v in a.items() if k not in ("benchmark", "allocator")} == {
            k: v for k, v in b.items() if k in a and k not in ("benchmark", "allocator")
        }


def test_results_json_keeps_every_figure_and_lifts_details_into_declared_fields(work: Path) -> None:
    old = json.loads((GOLDEN / "report" / "results.json").read_text())
    new = json.loads((work / "out" / "report" / "results.json").read_text())
    assert {k: v for k, v in new.items() if k not in ("generated", "runs")} == {
        k: v for k, v in old.items() if k not in ("generated", "runs")
    }
    assert len(new["runs"]) == len(old["runs"]) == 80
    lifted = {"launch", "group", "recovered_from", "quiet_wait", "lock_forced", "ensemble", "instance", "window",
              "energy", "allocator"}  # fmt: skip
    for a, b in zip(old["runs"], new["runs"], strict=True):
        assert {k: v for k, v in a.items() if k != "details"} == {k: v for k, v in b.items() if k not in lifted
                                                                  and k != "details"}  # fmt: skip
        was = a["details"]
        if "launch" in was:
            assert b["launch"] == was["launch"]
        if "process" in was:
            assert b["group"]["batch_sizes"] == was["process"]["batch_sizes"]
        assert not {"launch", "process", "batch_sizes", "trace"} & set(b["details"])


def test_the_folder_resumes_without_rerunning_anything(work: Path) -> None:
    env = {**os.environ, "CPUBENCH_NO_TF_PROBE": "1", "CPUBENCH_LOCK": str(work / "lock"), "FAKE_SPEED": "1.0"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    before = (work / "data" / "s2-a" / "runs.jsonl").read_bytes()
    for config, todo in (("classic.yaml", 8), ("scaling.yaml", 0)):
        p = cpubench(["run", "--config", str(FIXTURE / config), "--out", "data", "--host-id", "s2-a", "--dry-run"],
                     work, env)  # fmt: skip
        assert p.returncode == 0, p.stderr
        # The classic matrix's lenet runs failed: they are done unless --retry-failed asks for them again.
        assert f"0 runs to do, {16 if todo else 24} already done" in p.stdout, p.stdout
        retry = cpubench(["run", "--config", str(FIXTURE / config), "--out", "data", "--host-id", "s2-a",
                          "--dry-run", "--retry-failed"], work, env)  # fmt: skip
        assert f"{todo} runs to do" in retry.stdout, retry.stdout
    p = cpubench(["run", "--config", str(FIXTURE / "scaling.yaml"), "--out", "data", "--host-id", "s2-a"], work, env)
    assert p.returncode == 0 and "0 ok, 0 failed, 0 timeout" in p.stdout and "24 already done" in p.stdout, p.stdout
    assert (work / "data" / "s2-a" / "runs.jsonl").read_bytes() == before
    runs = store.read_runs(work / "data" / "s2-a")
    assert not runs.warnings and len(runs.records) == 40
    pinned = [r for r in runs.records if r.params.get("placement") == "sequential"]
    assert pinned and all(r.launch and r.launch["cpus"] for r in pinned)
    assert all(r.group and r.group["batch_sizes"] == [1, 2, 4] for r in runs.records if r.config_name == "s2-scaling")


def test_a_model_with_no_ok_run_shows_its_runs_reasons_on_the_pages(work: Path) -> None:
    """lenet's runs in the fixture all failed (out of memory): its page and the pages' summary say why, with how many
    runs gave each reason, where the version before said only that there was nothing to show."""
    why = "exit code 1: out of memory: lenet does not fit (8 runs)"
    for host in ("s2-a", "s2-b"):
        page = (work / "out" / "pages" / host / "lenet.md").read_text()
        assert page.count(f"no ok runs of this model on this host: {why}") == 4, page
    assert (work / "out" / "pages" / "summary.md").read_text().count(f"no ok runs: {why}") == 2
