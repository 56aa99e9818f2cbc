"""TensorFlow against PyTorch (cpubench.analysis.frameworks) on a small store written through cpubench.results.store:
the ratio table's
numbers come from the records (PyTorch's steps are exactly 1.5 times as fast, so 1.50x), each framework's best mode
and thread count, the n/a of a batch size whose PyTorch run failed (with its reason), the "TensorFlow vs PyTorch"
parts of ``cpubench pages`` and ``cpubench report`` with every PNG they name on disk and valid, and a TensorFlow-only
store that renders no such part."""

from __future__ import annotations

import csv
import re
import statistics
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from cpubench import cli
from cpubench.analysis import engines, frameworks, points
from cpubench.render import frameworks as framework_text
from cpubench.render import report
from cpubench.render import site as pages
from cpubench.results import store
from cpubench.spec import axes
from tf_cnn_benchmarks.record import RunRecord, Samples

HOST = "box1"
MODEL = "lenet"
THREADS = (1, 2)
BATCHES = (1, 8)
REPEATS = 2
MODES = {"tensorflow": ("graph", "eager"), "pytorch": ("eager", "script")}
# Seconds per image at one thread, per framework and mode: PyTorch script is exactly 1.5 times TensorFlow graph's
# speed; each framework's other mode is slower than its best.
SPEED = {("tensorflow", "graph"): 1.0, ("tensorflow", "eager"): 1.3, ("pytorch", "eager"): 0.9,
         ("pytorch", "script"): 1.0 / 1.5}  # fmt: skip
RATIO = 1.5
FAILED = ("pytorch", "eager", 2, 8)  # (framework, mode, threads, batch): the only PyTorch run at batch 8, failed
OOM = "exit code 1: RuntimeError: DefaultCPUAllocator: not enough memory"
PNG = b"\x89PNG\r\n\x1a\n"


def step_times(fw: str, mode: str, threads: int, batch: int, repeat: int) -> tuple[float, ...]:
    """Steps that spread a little and differ between repeats by a factor, so medians and ratios stay exact."""
    base = 0.002 * batch * SPEED[(fw, mode)] / threads * (1.0 + 0.04 * repeat)
    return tuple(base * f for f in (1.00, 1.10, 0.95, 1.05, 1.20, 0.98))


def params_of(fw: str, mode: str, threads: int) -> dict[str, Any]:
    """A scaling study's axis values; PyTorch's eager runs name no execution (the framework's default)."""
    p = {**axes.defaults(), "framework": fw, "execution": mode, "num_intra_threads": threads,
         "num_inter_threads": 1, "placement": "sequential", "memory": "local"}  # fmt: skip
    for k in ("model", "batch_size", *(["execution"] if (fw, mode) == ("pytorch", "eager") else [])):
        p.pop(k, None)
    return p


def write_store(root: Path, fws: tuple[str, ...] = ("tensorflow", "pytorch"), host: str = HOST) -> Path:
    store.write_host(root, {"host_id": host, "machine_fingerprint": f"fp-{host}"})
    n = 0
    for fw in fws:
        for mode in MODES[fw]:
            for t in THREADS:
                for b in BATCHES:
                    if fw == "pytorch" and b == FAILED[3] and (fw, mode, t, b) != FAILED:
                        continue  # PyTorch tried batch 8 once
                    p = params_of(fw, mode, t)
                    for r in range(REPEATS):
                        n += 1
                        rec = RunRecord(host_id=host, setting=axes.setting_name(p), params=p, model=MODEL,
                                        batch_size=b, num_devices=1, repeat=r, run_hash=f"{fw[0]}{n:04d}",
                                        framework=fw, threads={"intra": t, "intra_effective": t})  # fmt: skip
                        if (fw, mode, t, b) == FAILED:
                            rec.status, rec.reason = "failed", OOM
                        else:
                            rec = rec.with_samples(Samples(b, step_times(fw, mode, t, b, r)))
                        store.append_run(root, rec)
    return root


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_store(tmp_path_factory.mktemp("both"))


def expected_ips(fw: str, mode: str, t: int, b: int) -> float:
    """The median over repeats of images/sec, from the step times the records were given."""
    return statistics.median(b * len(s) / sum(s) for s in (step_times(fw, mode, t, b, r) for r in range(REPEATS)))


def expected_p50(fw: str, mode: str, t: int, b: int) -> float:
    return statistics.median(1000 * statistics.median(step_times(fw, mode, t, b, r)) for r in range(REPEATS))


def assert_valid_png(path: Path) -> None:
    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG, path
    with Image.open(path) as im:
        im.verify()
        assert im.format == "PNG" and im.size[0] > 0 and im.size[1] > 0


def page_images(md: str) -> list[str]:
    return re.findall(r'<img src="\./([^"]+)" alt="[^"]+" width="100%"/>', md)


def table_rows(md: str, first: str) -> list[list[str]]:
    """The cells of the markdown table rows whose first cell is ``first``."""
    out = []
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if cells and cells[0] == first:
            out.append(cells)
    return out


# ---------------------------------------------------------------------------------------------------- the numbers


def test_ratio_table_best_picks_and_na_reason_from_the_records(both: Path) -> None:
    (comp,) = frameworks.from_records(store.load_host(both / HOST).runs, [HOST])
    assert (comp.host, comp.model) == (HOST, MODEL) and comp.note is None
    assert comp.setting == frameworks.Setting("sequential", "local", 1)
    one, eight = comp.rows
    assert (one.batch, eight.batch) == BATCHES
    tf, pt = one.best["tensorflow"], one.best["pytorch"]
    assert (tf.key.execution, tf.key.threads) == ("graph", 2)  # the fastest of 2 modes x 2 thread counts
    assert (pt.key.execution, pt.key.threads) == ("script", 2)
    assert tf.thr_avg == pytest.approx(expected_ips("tensorflow", "graph", 2, 1), rel=1e-12)
    assert pt.thr_avg == pytest.approx(expected_ips("pytorch", "script", 2, 1), rel=1e-12)
    assert tf.p50 == pytest.approx(expected_p50("tensorflow", "graph", 2, 1), rel=1e-12)
    assert one.throughput_ratio == pytest.approx(RATIO) and one.latency_ratio == pytest.approx(RATIO)
    assert one.reason is None
    # batch 8: PyTorch's only run failed; TensorFlow's best is still there, and no ratio is made up
    assert "pytorch" not in eight.best and eight.best["tensorflow"].key.execution == "graph"
    assert eight.throughput_ratio is None and eight.latency_ratio is None
    assert eight.reason == f"n/a: no ok pytorch run at batch 8 ({OOM})"

    table = framework_text.table(comp)
    (row1,) = table_rows(table, "1")
    assert row1[1:] == ["graph, 2 threads", f"{tf.thr_avg:.2f}", f"{tf.p50:.2f}", "script, 2 threads",
                        f"{pt.thr_avg:.2f}", f"{pt.p50:.2f}", "1.50x", "1.50x"]  # fmt: skip
    (row8,) = table_rows(table, "8")
    assert row8[4:7] == ["n/a", "n/a", "n/a"] and row8[7] == f"n/a: no ok pytorch run at batch 8 ({OOM})"
    assert row8[8] == "n/a" and "0.00" not in row8


def test_plot_series_one_line_per_framework_and_mode(both: Path) -> None:
    (comp,) = frameworks.from_records(store.load_host(both / HOST).runs, [HOST])
    lines = comp.lines[1]
    assert [ln.label for ln in lines] == ["TensorFlow graph", "TensorFlow eager", "PyTorch eager", "PyTorch script"]
    assert all(ln.threads == list(THREADS) for ln in lines)
    script = lines[-1]
    assert [p.thr_avg for p in script.points] == pytest.approx([expected_ips("pytorch", "script", t, 1)
                                                                for t in THREADS])  # fmt: skip
    assert [ln.label for ln in comp.lines[8]] == ["TensorFlow graph", "TensorFlow eager"]  # PyTorch failed there


def test_the_key_tells_the_frameworks_eager_points_apart(both: Path) -> None:
    study = points.build_study(store.load_host(both / HOST).runs, [HOST])
    eager = [k for k in study.points if k.execution == "eager" and k.threads == 1 and k.batch == 1]
    assert sorted(k.framework for k in eager) == ["pytorch", "tensorflow"]
    # PyTorch's eager records name no execution: read as the framework's default, not TensorFlow's graph
    rec = RunRecord(framework="pytorch", params={})
    assert engines.execution_of(rec) == "eager" and engines.execution_of(RunRecord(params={})) == "graph"


def test_no_setting_in_common_says_so_and_a_missing_side_says_not_measured() -> None:
    def point(fw: str, placement: str, batch: int = 1) -> points.Point:
        key = points.Key("h", "m", engines.default_execution(fw), placement, "local", 1, 2, batch, fw)
        return points.Point(key, 1, *[10.0] * 8, *[100.0] * 5)

    comp = frameworks.compare([point("tensorflow", "sequential"), point("pytorch", "none")], [], "h", "m")
    assert comp is not None and not comp.rows and comp.note is not None
    assert comp.note.startswith("n/a: the two frameworks never ran at one setting")
    comp = frameworks.compare([point("tensorflow", "none"), point("pytorch", "none"), point("tensorflow", "none", 4)],
                              [], "h", "m")  # fmt: skip
    assert comp is not None and comp.rows[1].reason == "n/a: no ok pytorch run at batch 4 (not measured)"
    assert frameworks.compare([point("tensorflow", "none")], [], "h", "m") is None


# ------------------------------------------------------------------------------------------------------ the pages


def test_pages_show_the_comparison_and_every_image_exists(both: Path, tmp_path: Path) -> None:
    out = tmp_path / "pages"
    assert cli.main(["pages", str(both), "-o", str(out)]) == 0
    md = (out / HOST / f"{MODEL}.md").read_text()
    headings = [line for line in md.splitlines() if line.startswith("#")]
    assert headings[-3:] == ["# TensorFlow vs PyTorch", "## Latency comparison", "## Throughput comparison"]
    part = md.split("# TensorFlow vs PyTorch\n", 1)[1]
    assert table_rows(part, "1")[0][-2:] == ["1.50x", "1.50x"]
    assert f"n/a: no ok pytorch run at batch 8 ({OOM})" in part
    images = page_images(md)
    for name in images:
        assert_valid_png(out / HOST / name)
    for kind in ("latency", "throughput"):
        for b in BATCHES:
            assert f"{MODEL}-frameworks-{kind}-{b}.png" in images
    # the scaling sections name both frameworks where the page holds both
    for name in (f"{MODEL}-latency-opt-pytorch-eager.png", f"{MODEL}-latency-opt-tensorflow-eager.png",
                 f"{MODEL}-speedup-pytorch-script.png"):  # fmt: skip
        assert name in images
    assert 'alt="lenet Latency PyTorch eager"' in md
    assert not (out / HOST / f"{MODEL}_latency.csv").exists()
    for fw, modes in MODES.items():
        with (out / HOST / f"{MODEL}_{fw}_throughput.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
        assert {r["execution"] for r in rows} == set(modes)
    summary = (out / "summary.md").read_text()
    assert "### TensorFlow vs PyTorch" in summary and "1.50x" in summary
    assert table_rows(summary, "PyTorch script")  # the summary's rows name the framework too
    index = (out / "index.md").read_text()
    assert f"(./{HOST}/{MODEL}.html#{pages.FRAMEWORKS_ANCHOR})" in index


def test_pages_without_plots_keep_the_table_and_name_no_image(both: Path, tmp_path: Path) -> None:
    pages.build_pages([both], tmp_path, plots=False)
    md = (tmp_path / HOST / f"{MODEL}.md").read_text()
    assert "<img" not in md and "1.50x" in md and not list(tmp_path.rglob("*.png"))
    assert f"see {MODEL}_tensorflow_latency.csv, " in md


# ----------------------------------------------------------------------------------------------------- the report


def report_images(md: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", md)


def test_report_shows_the_comparison_and_every_plot_exists(both: Path, tmp_path: Path) -> None:
    out = tmp_path / "summary"
    assert cli.main(["report", str(both), "-o", str(out), "--no-model-table"]) == 0
    md = (out / "summary.md").read_text()
    part = md.split("## TensorFlow vs PyTorch\n", 1)[1]
    assert part.lstrip().startswith(f"### {HOST}: {MODEL}, ")
    assert table_rows(part, "1")[0][1:] == table_rows(framework_text.table(frameworks.from_records(
        store.load_host(both / HOST).runs)[0]), "1")[0][1:]  # fmt: skip
    assert f"n/a: no ok pytorch run at batch 8 ({OOM})" in part
    images = report_images(md)
    for name in images:
        assert_valid_png(out / name)
    (comp,) = frameworks.from_records(store.load_host(both / HOST).runs)
    named = [f"plots/{report.framework_plot_name(comp, kind, b)}" for kind in ("latency", "throughput")
             for b in BATCHES]  # fmt: skip
    assert all(n in report_images(part) for n in named)
    assert all(n.startswith("plots/frameworks-box1-lenet-") for n in named)


def test_classic_default_threads_one_point_a_line(tmp_path: Path) -> None:
    """Classic matrices run at the default threads: each line is one point, placed at the engine's thread count."""
    root = tmp_path / "data"
    store.write_host(root, {"host_id": HOST, "machine_fingerprint": "fp"})
    n = 0
    for fw, speed in (("tensorflow", 1.0), ("pytorch", 1.0 / RATIO)):
        p = {"data": "syn", "variable_update": "parameter_server", "num_devices": 1, "forward_only": True}
        for r in range(REPEATS):
            n += 1
            rec = RunRecord(host_id=HOST, setting="syn-parameter_server-1cpus-inference", params=p, model=MODEL,
                            batch_size=32, num_devices=1, repeat=r, run_hash=f"c{n}", framework=fw,
                            threads={"intra": 0, "intra_effective": 4})  # fmt: skip
            store.append_run(root, rec.with_samples(Samples(32, tuple(0.05 * speed * f for f in (1.0, 1.1, 0.9)))))
    out = tmp_path / "summary"
    files, _ = report.build_report([root], out, model_rows=None)
    md = files.summary.read_text()
    assert "### box1: lenet, syn-parameter_server-1cpus-inference" in md
    (row,) = table_rows(md.split("## TensorFlow vs PyTorch", 1)[1], "32")
    assert row[1] == "graph, default threads (4)" and row[4] == "eager, default threads (4)"
    assert row[-2:] == ["1.50x", "1.50x"]
    images = [i for i in report_images(md) if "frameworks-" in i]
    assert len(images) == 2
    for name in images:
        assert_valid_png(out / name)
        assert (out / name) in files.plots  # copied with --docs like the setting plots


# ---------------------------------------------------------------------------------------------- TensorFlow alone


def test_a_tensorflow_only_store_renders_no_comparison(tmp_path: Path) -> None:
    root = write_store(tmp_path / "data", fws=("tensorflow",))
    assert frameworks.from_records(store.load_host(root / HOST).runs) == []
    files, _ = pages.build_pages([root], tmp_path / "pages")
    md = (tmp_path / "pages" / HOST / f"{MODEL}.md").read_text()
    assert "TensorFlow vs PyTorch" not in md and "tensorflow" not in md.lower()
    assert "frameworks" not in (tmp_path / "pages" / "index.md").read_text()
    assert "TensorFlow vs PyTorch" not in (tmp_path / "pages" / "summary.md").read_text()
    assert sorted(p.name for p in files.csvs) == [f"{MODEL}_latency.csv", f"{MODEL}_throughput.csv"]
    assert f"{MODEL}-latency-opt-graph.png" in page_images(md)
    rfiles, _ = report.build_report([root], tmp_path / "summary", model_rows=None)
    assert "TensorFlow vs PyTorch" not in rfiles.summary.read_text()
    assert not [p for p in rfiles.plots if p.name.startswith("frameworks-")]
