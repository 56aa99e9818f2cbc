"""``cpubench pages`` on a tiny scaling study written to a real store: the CSVs' columns and numbers, the pages'
headings, front matter and images, the n/a sections of a one-node host, the summary, and the site built by Jekyll
and opened in headless Chromium with every image loaded."""

from __future__ import annotations

import csv
import re
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cpubench import cli
from cpubench.analysis import points
from cpubench.render import site as pages
from cpubench.render import site_pages
from cpubench.results import store
from cpubench.spec import axes
from tf_cnn_benchmarks.record import RunRecord, Samples

HOST = "box1"
MODELS = ("trivial", "lenet")
THREADS = (1, 2)
BATCHES = (1, 2, 4)
MODES = ("eager", "graph")
REPEATS = 2
HEADINGS = [
    "# Latency (Sequential)",
    "## Latency Per Batch",
    "## Latency Per Optimization",
    "# Throughput (Sequential)",
    "## Throughput Per Batch",
    "## Throughput Per Optimization",
    "## Speedup",
    "# NUMA Effects",
    "# Latency (Remote vs Local)",
    "## % Latency Loss Per Batch",
    "# Throughput (Remote vs Local)",
    "## % Throughput Loss Per Batch",
]


def step_times(model: str, mode: str, threads: int, batch: int, repeat: int) -> tuple[float, ...]:
    """Plausible seconds per step: more images cost more, two threads help, eager is slower, repeats differ a bit."""
    base = (0.004 if model == "trivial" else 0.010) * batch * (1.3 if mode == "eager" else 1.0) / threads**0.8
    base *= 1.0 + 0.05 * repeat
    return tuple(base * f for f in (1.00, 1.10, 0.95, 1.05, 1.20, 0.98))


def params_of(mode: str, threads: int, memory: str) -> dict[str, Any]:
    p = {**axes.defaults(), "execution": mode, "num_intra_threads": threads, "num_inter_threads": 1,
         "placement": "sequential", "memory": memory}  # fmt: skip
    p.pop("model")
    p.pop("batch_size")
    return p


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    store.write_host(root, {"host_id": HOST, "machine_fingerprint": "fp-box1"})
    n = 0
    for model in MODELS:
        for mode in MODES:
            for t in THREADS:
                for b in BATCHES:
                    for memory in ("local", "remote"):
                        p = params_of(mode, t, memory)
                        for r in range(REPEATS):
                            n += 1
                            rec = RunRecord(host_id=HOST, setting=axes.setting_name(p), params=p, model=model,
                                            batch_size=b, num_devices=1, repeat=r, run_hash=f"h{n:04d}")  # fmt: skip
                            if memory == "local":
                                rec = rec.with_samples(Samples(b, step_times(model, mode, t, b, r)))
                            else:
                                rec.status, rec.reason = "skipped", "n/a: one NUMA node"
                            store.append_run(root, rec)
    return root


@pytest.fixture(scope="module")
def site(study: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pages")
    assert cli.main(["pages", str(study), "-o", str(out)]) == 0
    return out


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def ms_stats(model: str, mode: str, t: int, b: int) -> list[list[float]]:
    """Per repeat: the step times in ms."""
    return [[1000 * s for s in step_times(model, mode, t, b, r)] for r in range(REPEATS)]


def test_csv_columns_and_values(site: Path) -> None:
    header, rows = read_csv(site / HOST / "lenet_latency.csv")
    assert header == ["benchmark", "topology", "pinning", "allocator", "instance_id", "interop_threads",
                      "intraop_threads", "batch_size", "latency(min)", "latency(avg)", "latency(max)",
                      "p50", "p90", "p99", "repeats", "host", "execution", "framework", "memory"]  # fmt: skip
    assert len(rows) == len(MODES) * len(THREADS) * len(BATCHES)  # ok points only: the remote ones were skipped
    row = next(r for r in rows if r["execution"] == "eager" and r["intraop_threads"] == "2" and r["batch_size"] == "4")
    assert (row["benchmark"], row["topology"], row["pinning"], row["allocator"], row["instance_id"]) == (
        "lenet_tensorflow_eager", "sequential", "affinity", "default", "0")  # fmt: skip
    assert (row["memory"], row["framework"]) == ("local", "tensorflow")
    assert (row["interop_threads"], row["repeats"], row["host"]) == ("1", "2", HOST)
    per_repeat = ms_stats("lenet", "eager", 2, 4)
    assert float(row["latency(avg)"]) == pytest.approx(statistics.median(statistics.fmean(x) for x in per_repeat),
                                                        abs=1e-4)  # fmt: skip
    assert float(row["latency(min)"]) == pytest.approx(statistics.median(min(x) for x in per_repeat), abs=1e-4)
    assert float(row["latency(max)"]) == pytest.approx(statistics.median(max(x) for x in per_repeat), abs=1e-4)
    assert float(row["p50"]) == pytest.approx(statistics.median(statistics.median(x) for x in per_repeat), abs=1e-4)

    header, rows = read_csv(site / HOST / "lenet_throughput.csv")
    assert header[8:12] == ["throughput(min)", "throughput(avg)", "throughput(max)", "throughput"]
    assert header[:8] == ["benchmark", "topology", "pinning", "allocator", "instance_id", "interop_threads",
                          "intraop_threads", "batch_size"]  # fmt: skip
    row = next(r for r in rows if r["execution"] == "eager" and r["intraop_threads"] == "2" and r["batch_size"] == "4")
    ips = [4 * len(x) / (sum(x) / 1000) for x in per_repeat]
    assert float(row["throughput(avg)"]) == pytest.approx(statistics.median(ips), abs=1e-4)
    assert float(row["throughput(min)"]) < float(row["throughput(avg)"]) < float(row["throughput(max)"])
    assert row["throughput"] == row["throughput(avg)"]  # Packrat's one throughput column


def page_images(md: str) -> list[str]:
    return re.findall(r'<img src="\./([^"]+)" alt="[^"]+" width="100%"/>', md)


def test_pages_headings_front_matter_images_and_na_sections(site: Path) -> None:
    for model in MODELS:
        md = (site / HOST / f"{model}.md").read_text()
        assert md.startswith(f'---\nlayout: scalebench\ntitle: "{site_pages.model_title(model)}"\n---\n')
        headings = [line for line in md.splitlines() if line.startswith("#")]
        assert headings == HEADINGS
        images = page_images(md)
        assert images and all((site / HOST / i).is_file() for i in images)
        assert f"{model}-latency-1.png" in images and f"{model}-throughput-4.png" in images
        assert f"{model}-speedup-graph.png" in images and f"{model}-speedup-eager.png" in images
        for heading in ("## % Latency Loss Per Batch", "## % Throughput Loss Per Batch"):
            after = md.split(heading + "\n", 1)[1].lstrip("\n").split("\n#", 1)[0]
            assert after.strip() == "n/a: one NUMA node"
        # no interleave runs at all: said so, never a plot
        numa = md.split("# NUMA Effects\n", 1)[1].split("\n#", 1)[0]
        assert "<img" not in numa and "not measured" in numa
    assert site_pages.model_title("resnet50") == "ResNet50" and site_pages.model_short("resnet50") == "resnet"
    index = (site / "index.md").read_text()
    assert f"(./{HOST}/lenet.html)" in index and f"(./{HOST}/trivial.html)" in index
    assert (site / "_config.yml").is_file() and (site / "_layouts" / "scalebench.html").is_file()


def test_summary_best_threads(site: Path) -> None:
    md = (site / "summary.md").read_text()
    assert f"## {HOST}: lenet" in md
    rows = [line for line in md.splitlines() if line.startswith("| graph | 4 |")]
    assert len(rows) == len(MODELS)
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[2] == "2"  # two threads are faster at every batch size
    assert cells[6].endswith("at 2")  # efficiency at the most threads measured
    assert cells[7] == "n/a / n/a"  # no 4, 8 or 16 thread points to tell where returns diminish


def test_speedup_and_losses_from_points() -> None:
    def point(threads: int, thr: float, memory: str = "local", p50: float = 10.0) -> points.Point:
        key = points.Key("h", "m", "graph", "sequential", memory, 1, threads, 8)
        return points.Point(key, 1, p50, p50, p50, p50, p50, p50, p50, p50, thr, thr, thr, thr, thr)

    su = points.speedups([point(1, 10.0), point(2, 18.0), point(4, 30.0)])
    assert su == {1: 1.0, 2: 1.8, 4: 3.0}
    assert points.speedups([point(2, 18.0)]) is None
    pts = [point(1, 10.0), point(1, 8.0, "remote", p50=12.5)]
    (lat,) = points.losses(pts, "memory", "local", "remote", "latency")
    (thr,) = points.losses(pts, "memory", "local", "remote", "throughput")
    assert lat.values[(1, 8)] == pytest.approx(25.0) and thr.values[(1, 8)] == pytest.approx(20.0)


def test_site_builds_with_jekyll_and_every_image_loads_in_chromium(site: Path, tmp_path: Path) -> None:
    jekyll, chromium = shutil.which("jekyll"), shutil.which("chromium")
    if not jekyll or not chromium:
        pytest.skip("jekyll and chromium are not installed here (scripts/_system.sh installs them where it may)")
    built = tmp_path / "site"
    subprocess.run([jekyll, "build", "--source", str(site), "--destination", str(built)], check=True,
                   capture_output=True, timeout=300)  # fmt: skip
    page = built / HOST / "lenet.html"
    assert page.is_file() and (built / "index.html").is_file()
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                          f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
                         check=True, capture_output=True, text=True, timeout=300).stdout  # fmt: skip
    m = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom)
    assert m, dom[-2000:]
    loaded, total = int(m.group(1)), int(m.group(2))
    assert total == len(page_images((site / HOST / "lenet.md").read_text())) > 0
    assert loaded == total


def test_a_two_node_host_gets_numa_heatmaps_and_hosts_share_plots(study: Path, tmp_path: Path) -> None:
    """A second host with both placements and both memory modes measured: its NUMA sections show heatmaps (remote
    memory 20% slower, interleave 10% slower), the one-node host's still say n/a, and the index lists both."""
    root = tmp_path / "data"
    shutil.copytree(study / HOST, root / HOST)
    store.write_host(root, {"host_id": "box2", "machine_fingerprint": "fp-box2"})
    n = 0
    for placement, memory, slower in (("sequential", "local", 1.0), ("sequential", "remote", 1.2),
                                      ("interleave", "local", 1.1)):  # fmt: skip
        for t in THREADS:
            for b in (1, 2):
                p = {**params_of("graph", t, memory), "placement": placement}
                for r in range(REPEATS):
                    n += 1
                    rec = RunRecord(host_id="box2", setting=axes.setting_name(p), params=p, model="lenet",
                                    batch_size=b, num_devices=1, repeat=r, run_hash=f"b{n:04d}")  # fmt: skip
                    times = tuple(slower * s for s in step_times("lenet", "graph", t, b, r))
                    store.append_run(root, rec.with_samples(Samples(b, times)))
    out = tmp_path / "pages"
    files, _ = pages.build_pages([root], out)
    md = (out / "box2" / "lenet.md").read_text()
    assert [line for line in md.splitlines() if line.startswith("#")] == HEADINGS
    images = page_images(md)
    assert all((out / "box2" / i).is_file() for i in images)
    for name in ("lenet-numa-latency-graph.png", "lenet-numa-throughput-graph.png", "lenet-remote-latency-graph.png",
                 "lenet-remote-throughput-graph.png"):  # fmt: skip
        assert name in images
    assert "n/a" not in md and "not measured" not in md
    (loss,) = points.losses(points.build_study(store.load_host(root / "box2").runs, ["box2"]).of("box2", "lenet"),
                           "memory", "local", "remote", "latency")  # fmt: skip
    assert all(v == pytest.approx(20.0) for v in loss.values.values())
    assert "n/a: one NUMA node" in (out / HOST / "lenet.md").read_text()
    index = (out / "index.md").read_text()
    assert "| box1 |" in index and "| box2 | [lenet](./box2/lenet.html) | — |" in index
    assert "## box2: lenet" in (out / "summary.md").read_text()


def test_no_plots_pages_name_no_images(study: Path, tmp_path: Path) -> None:
    pages.build_pages([study], tmp_path, plots=False)
    md = (tmp_path / HOST / "lenet.md").read_text()
    assert "<img" not in md and "plots not drawn (--no-plots)" in md and not list(tmp_path.rglob("*.png"))
    assert [line for line in md.splitlines() if line.startswith("#")] == HEADINGS


def test_the_index_is_where_a_person_starts(site: Path) -> None:
    """The best configuration per host and model first (most images/sec, lowest latency, each with its figures and
    a link to its page), then the detail pages; the summary is a page of the built site (front matter)."""
    index = (site / "index.md").read_text()
    assert index.index("## Best configurations") < index.index("## Detail pages")
    for model in MODELS:
        header, rows = read_csv(site / HOST / f"{model}_throughput.csv")
        best = max(rows, key=lambda r: float(r["throughput(avg)"]))
        line = next(ln for ln in index.splitlines() if f"(./{HOST}/{model}.html)" in ln and "most images/sec" in ln)
        assert f"{float(best['throughput(avg)']):.2f}" in line
        assert f"{best['intraop_threads']} threads, batch {best['batch_size']}" in line
    assert (site / "summary.md").read_text().startswith("---\nlayout: default\n")
