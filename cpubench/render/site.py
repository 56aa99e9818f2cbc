"""``cpubench pages``' output: a thread-scaling study as a Jekyll site, one page per host and model.

Why a second output beside ``cpubench report``: the report compares settings across hosts in one table; a scaling
study (threads x batch x execution x placement x memory) reads better as the Packrat project's CPU scaling pages:
per-model CSVs with Packrat's column names (so their plotting scripts and ours read the same files), latency and
throughput against threads per batch size, speedup, and the NUMA losses as heatmaps. The output folder builds with
``jekyll build`` as it is (``_config.yml`` and the layouts are written beside the pages), and ``summary.md`` says the
same in words for a reader without the plots.

How repeats are quoted: each statistic of a point (threads, batch, execution, placement, memory) is the median over
its ok repeats of that statistic per run; the plots' bands are the min and max across repeats. Only what the store
holds is shown: a section whose runs could not happen on this host (remote memory on one NUMA node, interleave on one
socket) says the records' reason instead of showing a plot, so an empty or failed plot is never mistaken for data.

Two frameworks: a point's key holds its framework, so a PyTorch eager point and a TensorFlow eager point stay apart.
A page that holds both ends with a "TensorFlow vs PyTorch" part (:mod:`cpubench.analysis.frameworks`), which the
index links and the summary repeats.

This module writes the site around the pages: the layouts, ``_config.yml``, the index and ``summary.md``. The
points are :mod:`cpubench.analysis.points`; one page (its CSVs, plots and sections) is
:mod:`cpubench.render.site_pages`; ``cpubench pages`` is :mod:`cpubench.commands.pages`.

Sharing: a results folder may come from anyone, and the site is published. Every file name built from a record goes
through :func:`cpubench.results.store.file_part` (checked for the whole study before anything is written), every
string from data is escaped for where it lands (:mod:`cpubench.render.escape`: Markdown, HTML attributes, front
matter; braces become entities, so Liquid never sees ``{{`` or ``{%`` from data and the pages need no ``{% raw %}``),
and ``-o`` is written only when it is new, empty or a site this command wrote (:data:`MARKER`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cpubench.analysis import cost, efficiency
from cpubench.analysis.frameworks import study_comparison
from cpubench.analysis.order import model_sort_key
from cpubench.analysis.points import Point, Study, base_points, build_study, modes, series, several_frameworks, speedups
from cpubench.analysis.roofline import placed_points, roofs
from cpubench.host.record import HostRecord
from cpubench.render import frameworks
from cpubench.render.escape import md_cell, md_text
from cpubench.render.site_pages import (
    check_names,
    csv_names,
    host_page,
    mode_label,
    model_title,
    render_page,
    write_csvs,
)
from cpubench.render.tune import tuned_section
from cpubench.results import store
from cpubench.results.merge import Merged, merge

# ------------------------------------------------------------------------------------------------------ the site

CONFIG_YML = """\
# Written by `cpubench pages`: this folder builds with `jekyll build` as it is.
title: cpubench scaling pages
markdown: kramdown
"""

DEFAULT_HTML = """\
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{{ page.title | default: site.title }}</title>
</head>
<body>
{{ content }}
</body>
</html>
"""

# The script records how many images loaded, so a headless browser's DOM dump tells a broken image from a good one.
SCALEBENCH_HTML = """\
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{{ page.title }}</title>
  <style>body { max-width: 60em; margin: auto; font-family: sans-serif; }</style>
</head>
<body>
<h1 class="page-title">{{ page.title }}</h1>
{{ content }}
<script>
  window.addEventListener("load", function () {
    var images = Array.prototype.slice.call(document.images);
    var loaded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
    document.body.dataset.imagesLoaded = loaded + "/" + images.length;
  });
</script>
</body>
</html>
"""


# The anchor kramdown gives the "# TensorFlow vs PyTorch" heading, so the index can link the part of a page.
FRAMEWORKS_ANCHOR = "tensorflow-vs-pytorch"


def best_rows(study: Study, pages: dict[tuple[str, str], str], records: Mapping[str, HostRecord]) -> list[list[str]]:
    """Per host and model: the configuration with the most images/sec and the one with the lowest p50 latency
    found anywhere in the study (any framework, mode, placement, threads and batch), each with its latency p50/p99,
    throughput, share of the host's GEMM limit and cost per million images where the host has them."""
    rows = []
    for (h, m), link in pages.items():
        points = study.of(h, m)
        if not points:
            continue
        host = records.get(h)
        price = cost.price_of(host, None)
        fastest = max(points, key=lambda p: p.thr_avg)
        quickest = min(points, key=lambda p: p.p50)
        for what, p in (("most images/sec", fastest), ("lowest latency", quickest)):
            if what == "lowest latency" and p is fastest:
                continue
            k = p.key
            config = f"{k.framework} {k.execution}, {k.threads or p.threads_effective or 'default'} threads, batch " \
                     f"{k.batch}, {k.placement}"  # fmt: skip
            peak = "n/a"
            if host is not None and host.limits:
                threads = k.threads or p.threads_effective
                peak = peak_cell(efficiency.figure(m, p.thr_avg, not p.forward_only, p.precision, threads, host))
            dollars = cost.dollars_per_million(p.thr_avg, price)
            rows.append([md_cell(h), f"[{md_cell(model_title(m))}](./{link})", md_cell(what), md_cell(config),
                         f"{p.p50:.2f} / {p.p99:.2f}", f"{p.thr_avg:.2f}", peak,
                         "n/a" if dollars is None else f"{dollars:.4f}"])  # fmt: skip
    return rows


def index_page(
    study: Study,
    pages: dict[tuple[str, str], str],
    rooflines: Mapping[str, str] | None = None,
    records: Mapping[str, HostRecord] | None = None,
) -> str:
    """The page a person starts from: per host and model the best configuration found (most images/sec, lowest
    latency) with its latency, throughput, efficiency and cost, then the host x model links to the detail pages, the
    summary, and each host's roofline (``rooflines``: host -> its PNG, for hosts with measured limits)."""
    models = sorted({m for _, m in pages}, key=model_sort_key)
    hosts = [h for h in study.hosts if any(h == ph for ph, _ in pages)]
    lines = ["---", "layout: default", 'title: "CPU scaling"', "---", "", "# CPU scaling", ""]
    best = best_rows(study, {k: pages[k] for h in hosts for k in sorted(pages) if k[0] == h}, records or {})
    if best:
        head = ["host", "model", "best for", "configuration", "latency p50 / p99 (ms)", "images/sec", "% of peak",
                "$ per million images"]  # fmt: skip
        lines += ["## Best configurations", "",
                  f"Medians over repeats; % of peak against the host's measured GEMM limit ({efficiency.LIMIT_NOTE}) "
                  "and cost from "
                  "its price per hour, n/a where the host has none. The [summary](./summary.html) has every batch "
                  "size, the detail pages every plot.", "",
                  "| " + " | ".join(head) + " |", "|" + " --- |" * len(head),
                  *("| " + " | ".join(r) + " |" for r in best), "", "## Detail pages", ""]  # fmt: skip
    lines.append("| host | " + " | ".join(md_cell(model_title(m)) for m in models) + " |")
    lines.append("| --- |" + " --- |" * len(models))
    compared = False
    for h in hosts:
        cells = []
        for m in models:
            if (h, m) not in pages:
                cells.append("—")
                continue
            cell = f"[{md_cell(model_title(m))}](./{pages[(h, m)]})"
            if study_comparison(study, h, m) is not None:
                compared = True
                cell += f" ([{frameworks.TITLE}](./{pages[(h, m)]}#{FRAMEWORKS_ANCHOR}))"
            cells.append(cell)
        lines.append(f"| {md_cell(h)} | " + " | ".join(cells) + " |")
    lines += ["", "Per-model CSVs sit beside each page (`<model>_latency.csv`, `<model>_throughput.csv`"
              + ("; where both frameworks ran, one pair per framework: `<model>_pytorch_latency.csv`..." if compared
                 else "") + ").", ""]  # fmt: skip
    for h, png in (rooflines or {}).items():
        lines += [f"## {md_text(h)}: roofline", "", f"![roofline of {md_text(h)}](./{png})", "",
                  "Its compute roofs (GEMM limits) and bandwidth roof (triad), and every measured point at its "
                  "model's arithmetic intensity; see `summary.md` for each point's % of peak.", ""]  # fmt: skip
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------- summary


def _x(v: float | None) -> str:
    return "n/a" if v is None else f"x{v:.2f}"


def summary_rows(points: Sequence[Point], host: HostRecord | None = None) -> list[list[str]]:
    """Per execution and batch size of the base points: the best thread count by throughput and its figures, the
    efficiency at the most threads measured, and the gains of doubling threads 2->4 and 8->16; where ``host`` has
    measured limits, the best point's share of its GEMM limit too (:mod:`cpubench.analysis.efficiency`)."""
    base = base_points(points)
    multi = several_frameworks(points)
    rows = []
    for mode in modes(base):
        ex = mode_label(mode, multi)
        for b in sorted({p.key.batch for p in base if p.key.mode == mode}):
            s = series(base, mode, b)
            best = max(s, key=lambda p: p.thr_avg)
            su = speedups(s)
            tmax = s[-1].key.threads
            eff = f"{su[tmax] / tmax * 100:.0f}% at {tmax}" if su and tmax > 0 else "n/a"
            g24 = su[4] / su[2] if su and 2 in su and 4 in su else None
            g816 = su[16] / su[8] if su and 8 in su and 16 in su else None
            rows.append([md_cell(ex), str(b), str(best.key.threads), f"{best.p50:.2f}", f"{best.p99:.2f}",
                         f"{best.thr_avg:.2f}", eff, f"{_x(g24)} / {_x(g816)}"])  # fmt: skip
            if host is not None and host.limits:
                threads = best.key.threads or best.threads_effective
                k = best
                f = efficiency.figure(k.key.model, k.thr_avg, not k.forward_only, k.precision, threads, host)
                rows[-1].append(peak_cell(f))
    return rows


def peak_cell(f: efficiency.Figure) -> str:
    """``96% of 219 GFLOP/s (fp32, all cores)``, or n/a with why."""
    if f.share is None or f.peak is None:
        return md_cell(f.basis if f.basis.startswith("n/a") else "n/a")
    return md_cell(f"{100 * f.share:.0f}% of {f.peak:.0f} GFLOP/s ({f.basis})")


def summary_markdown(
    study: Study, hosts: Sequence[str], tuned: Sequence[str] = (), records: Mapping[str, HostRecord] | None = None
) -> str:
    """The pages' summary; ``records`` (host id -> host record) adds a "% of peak" column for hosts with limits."""
    lines = ["---", "layout: default", 'title: "CPU scaling summary"', "---", "", "# CPU scaling summary", "",
             "Medians over repeats, at the sequential placement with local memory where measured. Best threads: the "
             "thread count with the highest throughput. Efficiency: speedup over one thread divided by the threads, "
             "at the most threads measured. Doubling gains: speedup(4)/speedup(2) against speedup(16)/speedup(8); "
             "a second figure well under the first is where returns diminish.", ""]  # fmt: skip
    head = ["execution", "batch", "best threads", "latency p50 (ms)", "latency p99 (ms)", "images/sec",
            "efficiency", "doubling 2→4 / 8→16"]  # fmt: skip
    for h in hosts:
        for m in study.models(h):
            lines += [f"## {md_text(h)}: {md_text(model_title(m))}", ""]
            record = (records or {}).get(h)
            rows = summary_rows(study.of(h, m), record)
            if not rows:
                why = study.why_none(h, m)
                lines += ["no ok runs" + (f": {md_text(why)}" if why else ""), ""]
                continue
            cols = [*head, "% of peak"] if record is not None and record.limits else head
            lines.append("| " + " | ".join(cols) + " |")
            lines.append("|" + " --- |" * len(cols))
            lines += ["| " + " | ".join(r) + " |" for r in rows]
            lines.append("")
            comp = study_comparison(study, h, m)
            if comp is not None:
                lines += [f"### {frameworks.TITLE}", "", *frameworks.markdown(comp)]
    lines += list(tuned)
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------- build


# Written into every site `cpubench pages` writes: a non-empty -o without it is someone else's folder, never written.
MARKER = ".cpubench-pages"
MARKER_TEXT = "Written by `cpubench pages`: this folder is a site it may write into again.\n"


class PagesError(Exception):
    """An output folder or an input that ``cpubench pages`` refuses: the message is one line naming it and the fix."""


@dataclass
class PagesFiles:
    pages: list[Path] = field(default_factory=list)
    csvs: list[Path] = field(default_factory=list)
    index: Path | None = None
    summary: Path | None = None
    rooflines: list[Path] = field(default_factory=list)


def check_out(out: str | Path) -> Path:
    """The output folder, if ``cpubench pages`` may write into it: missing, empty, or a site it wrote before (it
    holds :data:`MARKER`). Anything else (a file, someone's folder or site: its ``index.md``, ``_config.yml`` and
    layouts would be overwritten) raises store.StoreError, before anything is read or written."""
    root = Path(out)
    store.check_output(root, MARKER, "pages")
    return root


def build_pages(data: Iterable[str | Path], out: str | Path, plots: bool = True) -> tuple[PagesFiles, Merged]:
    """Read the host folders and write the site into ``out``; return what was written and the merged runs.

    Refused before anything is written (PagesError, store.StoreError): an ``out`` that is a file or a non-empty
    folder that is not a site of ours, inputs with no host folder, and a model, framework or execution mode that
    cannot be part of a file name (:func:`cpubench.results.store.file_part`: the store's reader skips such models
    already; this is the last gate, so text from data never becomes a path outside ``out``).
    """
    root = check_out(out)
    data = list(data)
    merged = merge(data)
    if not merged.hosts:
        raise PagesError(merged.left_out[0] if merged.left_out else (
            f"no host folders (with {store.HOST_FILE}) in {', '.join(str(p) for p in data)}: give a host folder or a "
            "folder of them"
        ))  # fmt: skip
    hosts = merged.host_ids
    study = build_study((r.rec for r in merged.runs), hosts)
    for h in study.hosts:
        store.validate_host_id(h)
        for m in study.models(h):
            check_names(m, study.of(h, m))
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text(MARKER_TEXT)
    files = PagesFiles()
    pages: dict[tuple[str, str], str] = {}
    for h in study.hosts:
        for m in study.models(h):
            folder = store.host_dir(root, h)  # host ids are checked folder names
            folder.mkdir(parents=True, exist_ok=True)
            files.csvs += write_csvs(folder, m, study.of(h, m))
            page = folder / f"{store.file_part(m, 'model')}.md"
            sections = host_page(study, h, m, folder, plots)
            if not plots:  # a page never names an image that was not drawn
                names = csv_names(m, study.of(h, m))
                for sec in sections:
                    if sec.images:
                        sec.images, sec.note = (
                            [],
                            f"plots not drawn (--no-plots): see {', '.join(names[:-1])} and {names[-1]}",
                        )
            page.write_text(render_page(m, sections))
            files.pages.append(page)
            pages[(h, m)] = f"{h}/{m}.html"
    (root / "_layouts").mkdir(exist_ok=True)
    (root / "_layouts" / "default.html").write_text(DEFAULT_HTML)
    (root / "_layouts" / "scalebench.html").write_text(SCALEBENCH_HTML)
    (root / "_config.yml").write_text(CONFIG_YML)
    files.index = root / "index.md"
    rooflines: dict[str, str] = {}
    records = efficiency.hosts_of(merged)
    for h in study.hosts if plots else []:
        host_roofs = roofs(h, records[h].limits) if h in records else None
        if host_roofs is None:
            continue
        from cpubench.render.roofline import ROOFLINE_PNG, draw  # lazy: matplotlib only when plots are drawn

        pts = [q for m in study.models(h) for q in placed_points(base_points(study.of(h, m)), records[h])]
        png = draw([host_roofs], pts, store.host_dir(root, h) / ROOFLINE_PNG, f"Roofline: {h}")
        files.rooflines.append(png)
        rooflines[h] = f"{h}/{ROOFLINE_PNG}"
    files.index.write_text(index_page(study, pages, rooflines, records))
    files.summary = root / "summary.md"
    files.summary.write_text(summary_markdown(study, study.hosts, tuned_section(r.rec for r in merged.runs),
                                              efficiency.hosts_of(merged)))  # fmt: skip
    return files, merged
