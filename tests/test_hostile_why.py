"""The "why" figures against damaged, hand-edited and hostile inputs: a host.json's limits and price, a prices file,
a run record's energy, and a powercap tree (through CPUBENCH_POWERCAP_ROOT). Each must give a figure with its
reason, n/a with the reason, or one line and exit 2: never a traceback, a hang, inf, nan, a share set against a
damaged or another machine's limit, or text from data rendered unescaped. Through the real CLI and engine where a
folder or a tree is what is hostile."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cpubench.host import limits as lim
from cpubench.host.record import HostRecord
from cpubench.results import store
from tf_cnn_benchmarks import hostfacts
from tf_cnn_benchmarks.record import RunRecord

GFLOPS = lim.GFLOPS
SETTING = "syn-parameter_server-1cpus-inference"


def limits_of(fp32_all: Any, fingerprint: str = "f") -> dict[str, Any]:
    return {"version": lim.LIMITS_VERSION, "machine_fingerprint": fingerprint, "measured": "2026-01-02T00:00:00+00:00",
            "wall_s": 20.0, "values": {
                lim.GEMM_FP32_ALL: {"value": fp32_all, "unit": GFLOPS, "how": "test"},
                lim.GEMM_FP32_ONE: {"value": 110.0, "unit": GFLOPS, "how": "test"},
                lim.TRIAD_ALL: {"value": 20.0, "unit": lim.GBS, "how": "test"}}}  # fmt: skip


def write_host(root: Path, host_id: str, limits: Any = None, price: Any = None, energy: Any = None,
               setting: str = SETTING, speed: float = 1.0) -> Path:  # fmt: skip
    """A host folder as `cpubench run` writes it (host.json written whole by hand: it may be damaged), with two ok
    ResNet-50 inference repeats on two threads."""
    folder = root / host_id
    folder.mkdir(parents=True)
    host: dict[str, Any] = {"schema": 1, "host_id": host_id, "cpu_brand": "Test CPU", "sockets": 1,
                            "cores_physical": 2, "cores_logical": 2, "machine_fingerprint": "f"}  # fmt: skip
    if limits is not None:
        host["limits"] = limits
    if price is not None:
        host["price"] = price
    (folder / "host.json").write_text(json.dumps(host))
    for repeat in range(2):
        rate = 20.0 * speed * (1 + 0.01 * repeat)
        rec = {"schema": store.RUN_SCHEMA, "host_id": host_id, "setting": setting, "model": "resnet50",
               "batch_size": 32, "num_devices": 1, "repeat": repeat, "status": "ok", "images_per_sec": rate,
               "global_batch_size": 32, "step_times": [32 / rate] * 10, "run_hash": f"h{repeat}",
               "params": {"data": "syn", "variable_update": "parameter_server", "num_devices": 1,
                          "forward_only": True},
               "threads": {"intra_effective": 2}, "cpus": [0, 1], "config_name": "t", "energy": energy,
               "started": "2026-01-02T00:00:00+00:00"}  # fmt: skip
        store.append_run(root, RunRecord.from_dict(rec))
    return folder


def cli(*args: str, cwd: Path, rc: int = 0) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "cpubench", *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert p.returncode == rc, p.stdout + p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    return p


def report(tmp_path: Path, *extra: str) -> str:
    cli("report", "data", "-o", "out", "--no-plots", "--no-model-table", *extra, cwd=tmp_path)
    return (tmp_path / "out" / "summary.md").read_text()


def no_bad_numbers(text: str) -> None:
    """No infinity, no NaN, no figure of dozens of digits (a damaged input set against, or divided into)."""
    assert not re.search(r"(?<![A-Za-z])(inf|nan)(?![A-Za-z])", text, re.I), text
    assert not re.search(r"[0-9,]{40}", text), text


# ------------------------------------------------------------------------------------------------------ limits


@pytest.mark.parametrize("bad", [-5, 0, 1e308, 1e-300])
def test_a_limit_no_cpu_has_is_na_with_the_reason_never_a_share_set_against_it(tmp_path: Path, bad: float) -> None:
    """Before: a GEMM limit of 1e308 GFLOP/s in host.json made every figure "0%" beside a 309-digit limit (and 1e-300
    a share of 10^300 %); a negative or zero one read "n/a, not measured", which it was not."""
    write_host(tmp_path / "data", "a", limits_of(bad))
    write_host(tmp_path / "data", "b", limits_of(100.0), speed=0.5)
    md = report(tmp_path)
    no_bad_numbers(md)
    assert "- a: GEMM fp32, all cores: n/a, the recorded value" in md and "outside what a CPU gives" in md
    flat = " ".join(md.split())
    assert "| resnet50 | n/a (" in flat and "| a | n/a | 110.0 GFLOP/s |" in flat  # achieved shown, no share
    text = cli("compare", "data/a", "data/b", cwd=tmp_path).stdout
    no_bad_numbers(text)
    assert re.search(r"% of peak: b \d+% \(\d+ GFLOP/s\), a n/a \(\d+ GFLOP/s\)", text), text
    cli("pages", "data", "-o", "site", "--no-plots", cwd=tmp_path)
    pages = (tmp_path / "site" / "summary.md").read_text()
    no_bad_numbers(pages)
    assert "n/a: the recorded value" in pages


def test_another_machines_limits_are_never_set_against_this_hosts_figures(tmp_path: Path) -> None:
    """Before: a host.json whose limits carry another machine's fingerprint (copied over, pieced together) had every
    figure of the report and the pages set against that machine's roofs."""
    write_host(tmp_path / "data", "a", limits_of(200.0, fingerprint="0123456789abcdef"))
    write_host(tmp_path / "data", "b", limits_of(100.0), speed=0.5)
    md = report(tmp_path)
    assert "- a: n/a, the limits in host.json were measured on another machine (fingerprint 0123456789abcdef" in md
    flat = " ".join(md.split())
    assert "| a | n/a | n/a | n/a | n/a | n/a | n/a | — |" in flat and "200.0" not in md
    assert re.search(r"\| resnet50 \| n/a \(\d+ GFLOP/s\) \| \d+% \(\d+ GFLOP/s\) \|", flat), flat
    text = cli("compare", "data/a", "data/b", cwd=tmp_path).stdout
    assert re.search(r"% of peak: b \d+% \(\d+ GFLOP/s\), a n/a", text), text
    assert "GEMM fp32, all cores n/a" in text and "200.0" not in text  # never a ratio to another machine's limits
    cli("pages", "data", "-o", "site", "--no-plots", cwd=tmp_path)
    assert (
        "n/a: the limits in host.json were measured on another machine"
        in (tmp_path / "site" / "summary.md").read_text()
    )


def test_damaged_limits_of_this_machine_are_measured_again_on_the_next_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: limits with this machine's fingerprint were kept whatever their values held (a 1e308 or a negative
    limit stayed for as long as the machine did); now only limits a CPU can have are kept."""
    monkeypatch.setenv(lim.NO_LIMITS_ENV, "0")
    measured: list[str | None] = []

    def measure(fp: str | None, flags: Any = None) -> dict[str, Any]:
        measured.append(fp)
        return limits_of(150.0, fingerprint=fp or "")

    monkeypatch.setattr(lim, "measure", measure)
    host = HostRecord("h", machine_fingerprint="f")
    assert lim.attach(host, HostRecord("h", machine_fingerprint="f", limits=limits_of(200.0))).limits == limits_of(200)
    assert measured == []
    for bad in (-5, 0, 1e308):
        got = lim.attach(host, HostRecord("h", machine_fingerprint="f", limits=limits_of(bad)))
        assert got.limits is not None and lim.value(got.limits, lim.GEMM_FP32_ALL) == 150.0
    assert measured == ["f", "f", "f"]


# ------------------------------------------------------------------------------------------------------- price


@pytest.mark.parametrize(
    ("name", "text", "said"),
    [
        ("p.yaml", "a: 1.0e+308\n", "got 1e+308"),
        ("p.yaml", "a: 1.0e-300\n", "got 1e-300"),
        ("p.yaml", "a: true\n", "got True"),
        ("p.yaml", 'a: {per_hour: 2, currency: "<b>EUR</b>\\n"}\n', "currency '<b>EUR</b>\\n': prices are dollars"),
        ("p.yaml", "a: {currency: USD}\n", "a: no per_hour"),
        ("p.csv", "host_id,price_per_hour,currency\na,2,EUR\n", "p.csv:2: currency 'EUR'"),
        ("p.csv", "host_id,price_per_hour\na," + "9" * 100_000 + "\n", "got '9999"),
    ],
)
def test_a_prices_file_with_no_hosts_price_is_one_line_and_exit_2(
    tmp_path: Path, name: str, text: str, said: str
) -> None:
    """Before: 1e308 dollars an hour made "$inf per M images" and a 309-digit price, 1e-300 a 300-digit images per
    dollar, `true` read as $1.00/hour, a price in EUR was shown as dollars, and a 100,000-digit price was echoed
    whole in the error line."""
    write_host(tmp_path / "data", "a")
    (tmp_path / name).write_text(text)
    p = cli("report", "data", "-o", "out", "--no-plots", "--no-model-table", "--prices", name, cwd=tmp_path, rc=2)
    assert p.stderr.startswith(f"cpubench report: error: {name}") and said in p.stderr, p.stderr
    assert len(p.stderr.splitlines()) == 1 and len(p.stderr) < 300, p.stderr
    assert not (tmp_path / "out").exists()


def test_a_prices_files_currency_must_be_dollars_in_any_case(tmp_path: Path) -> None:
    """Before: a currency in a prices file was ignored, so a price in EUR was shown as dollars."""
    write_host(tmp_path / "data", "a")
    (tmp_path / "p.yaml").write_text("a: {per_hour: 2, currency: EUR}\n")
    p = cli("report", "data", "-o", "out", "--no-plots", "--no-model-table", "--prices", "p.yaml", cwd=tmp_path, rc=2)
    assert "p.yaml: a: currency 'EUR': prices are dollars per hour (USD)" in p.stderr
    (tmp_path / "p.yaml").write_text("a: {per_hour: 2, currency: usd}\n")
    flat = " ".join(report(tmp_path, "--prices", "p.yaml").split())
    assert "| a | 20.10 | \\$2.00 | 36,180 | \\$27.64 |" in flat


@pytest.mark.parametrize(
    ("price", "said"),
    [
        ({"per_hour": "2"}, "host.json's price per_hour '2' is not dollars per hour"),
        ({"per_hour": True}, "host.json's price per_hour True is not dollars per hour"),
        ({"per_hour": 1e308}, "host.json's price per_hour 1e+308 is not dollars per hour"),
        ({"per_hour": -1}, "host.json's price per_hour -1 is not dollars per hour"),
        (
            {"per_hour": 2, "currency": "<b>EUR</b>\n|x|"},
            "host.json's price is in '&lt;b>EUR&lt;/b>\\\\n\\|x\\|', not USD",
        ),
    ],
)
def test_a_host_json_price_that_cannot_be_used_is_na_with_the_reason(tmp_path: Path, price: Any, said: str) -> None:
    """Before: 1e308 gave "$inf per M images" in the report and compare, `true` a price of $1.00, a price in EUR
    was shown as dollars, and a price given as text read "no price: give ..." as if none had been recorded (or, with
    no energy reading either, no cost section at all)."""
    write_host(tmp_path / "data", "a", price=price)
    write_host(tmp_path / "data", "b", price={"per_hour": 1.0, "currency": "USD"}, speed=0.5)
    md = report(tmp_path)
    no_bad_numbers(md)
    assert f"- a: no price: {said}" in md, md
    assert "<b>" not in md
    text = cli("compare", "data/a", "data/b", cwd=tmp_path).stdout
    no_bad_numbers(text)
    assert "a n/a (host.json's price " in text, text  # compare names the reason too
    assert "\x1b" not in text and "<b>EUR</b>\n" not in text


def test_the_cost_tables_setting_is_escaped_once(tmp_path: Path) -> None:
    """Before: the cost table escaped a setting itself and the table escaped it again: `<` showed as `&lt;`."""
    write_host(tmp_path / "data", "a", price={"per_hour": 2.0}, setting="syn-<i>x</i>")
    md = report(tmp_path)
    row = next(line for line in md.splitlines() if "\\$2.00" in line)
    assert row.startswith("| syn-&lt;i>x&lt;/i> ") and "&amp;" not in md


# ------------------------------------------------------------------------------------------------------ energy


def test_a_damaged_energy_reading_is_na_with_its_reason_and_every_reason_is_shown(tmp_path: Path) -> None:
    """Before: 1e308 joules in a record gave a joules-per-image figure of 300 digits' worth, and a host's n/a line
    named only its first cell's reason, so a reason from data (escaped) behind it was never shown."""
    write_host(tmp_path / "data", "a", energy={"joules": 1e308, "window_s": 16.0})
    write_host(tmp_path / "data", "b", energy={"joules": None, "na": "<script>x</script>|`y`"}, setting="syn-b")
    md = report(tmp_path)
    no_bad_numbers(md)
    assert "- a: energy n/a: 1e+308 J over a 16 s window is 6.25e+306 W, more than a host draws" in md
    assert "- b: energy n/a: &lt;script>x&lt;/script>\\|\\`y\\`" in md and "<script" not in md


def powercap(root: Path, energy: str | bytes, top: str = "262143328850", name: str = "package-0") -> Path:
    """A fake /sys/class/powercap with one package zone."""
    zone = root / "intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text(name + "\n")
    (zone / "energy_uj").write_bytes(energy.encode() if isinstance(energy, str) else energy)
    (zone / "max_energy_range_uj").write_text(top + "\n")
    return root


def between(tree: Path, then: str, now: str, seconds: float = 2.0) -> dict[str, Any]:
    """energy_between two readings of ``tree`` whose counter reads ``then``, then ``now``, ``seconds`` apart."""
    (tree / "intel-rapl:0" / "energy_uj").write_text(then + "\n")
    start = hostfacts.read_energy(str(tree))
    (tree / "intel-rapl:0" / "energy_uj").write_text(now + "\n")
    end = hostfacts.read_energy(str(tree))
    return hostfacts.energy_between(start, hostfacts.EnergyReading(start.wall + seconds, end.zones, end.na))


def test_counters_that_went_backwards_or_cannot_wrap_are_na_never_a_figure(tmp_path: Path) -> None:
    """Before: a counter that went back by a joule read as a wrap, 262,142 J over a 2 s window; with
    max_energy_range_uj 0 it read -1 J (a record no reader accepts); 10^4000 microjoules ended the engine with an
    OverflowError after its timed steps; a signed or `1_000` counter was read as one."""
    tree = powercap(tmp_path / "t", "0\n")
    wrapped = between(tree, "262143000000", "1000000")  # a real wrap: 1.33 J
    assert wrapped["joules"] == pytest.approx(1.3289, abs=1e-3) and "na" not in wrapped
    back = between(tree, "5000000", "4000000")
    assert back["joules"] is None and "counter went backwards (5000000 to 4000000 uJ)" in back["na"]
    zero = powercap(tmp_path / "zero", "5000000\n", top="0")
    assert "max_energy_range_uj is 0" in (between(zero, "5000000", "4000000")["na"] or "")
    above = powercap(tmp_path / "above", "5\n", top="1000")
    assert "above its range 1000" in (between(above, "5000", "6000")["na"] or "")
    for text in ("-5", "1_000", "1" * 4000, "nan", "12abc"):
        got = between(tree, text, text)
        assert got["joules"] is None and "energy_uj" in got["na"] and "not a counter" in got["na"], (text, got)


def na_in_child(tree: Path) -> str:
    """read_energy's reason for ``tree``, read in a child with a time and a memory limit: a reader that blocks on a
    FIFO or reads /dev/zero without end fails this test instead of hanging it or filling the machine's memory."""

    def limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (2**31, 2**31))

    code = "import sys; from tf_cnn_benchmarks import hostfacts; print(hostfacts.read_energy(sys.argv[1]).na)"
    p = subprocess.run([sys.executable, "-c", code, str(tree)], capture_output=True, text=True, timeout=60,
                       preexec_fn=limit)  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


def test_a_powercap_file_that_is_no_counter_is_na_without_a_hang(tmp_path: Path) -> None:
    """Before: an energy_uj that is a FIFO blocked the reader's open for ever, one linked to /dev/zero was read
    without end, a 10 MB one was read whole (and its 10 million digits refused by int() only then), and a zone
    reached under two names was counted twice; a zone's name went into the record as the file held it (markup,
    newlines)."""
    fifo = powercap(tmp_path / "fifo", "1\n")
    (fifo / "intel-rapl:0" / "energy_uj").unlink()
    os.mkfifo(fifo / "intel-rapl:0" / "energy_uj")
    assert "energy_uj is not a regular file" in na_in_child(fifo)
    zero = powercap(tmp_path / "zero", "1\n")
    (zero / "intel-rapl:0" / "energy_uj").unlink()
    (zero / "intel-rapl:0" / "energy_uj").symlink_to("/dev/zero")
    assert "energy_uj is not a regular file" in na_in_child(zero)
    big = powercap(tmp_path / "big", "1" * 10_000_000)
    assert "is longer than 64 bytes" in (hostfacts.read_energy(str(big)).na or "")
    twice = powercap(tmp_path / "twice", "7\n", name="<b>pkg</b>\n| x")
    (twice / "intel-rapl:1").symlink_to(twice / "intel-rapl:0")
    reading = hostfacts.read_energy(str(twice))
    assert reading.na is None and reading.zones == {"b-pkg-b-x": (7, 262143328850)}


def test_the_engine_records_its_run_with_energy_na_where_the_counter_is_a_fifo(tmp_path: Path) -> None:
    """Before: the engine blocked opening the FIFO after its timed steps and never wrote its result."""
    tree = powercap(tmp_path / "powercap", "1\n")
    (tree / "intel-rapl:0" / "energy_uj").unlink()
    os.mkfifo(tree / "intel-rapl:0" / "energy_uj")
    env = {**os.environ, hostfacts.POWERCAP_ENV: str(tree)}
    out = tmp_path / "r.json"
    p = subprocess.run([sys.executable, "-m", "tf_cnn_benchmarks", "--model=trivial", "--batch_size=2",
                        "--num_batches=2", "--num_warmup_batches=1", "--device=cpu", f"--result_json={out}"],
                       env=env, capture_output=True, text=True, timeout=90)  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    rec = json.loads(out.read_text())
    assert rec["status"] == "ok" and rec["energy"]["joules"] is None
    assert "energy_uj is not a regular file" in rec["energy"]["na"]


@pytest.mark.parametrize("given", ["1e300", "1e-9"])
def test_a_price_no_host_costs_is_refused_before_the_sweep(tmp_path: Path, given: str) -> None:
    """Before: ``cpubench run --price-per-hour 1e300`` was kept in host.json (any finite number above 0 was), and
    every cost figure of that host read n/a afterwards; it is now refused in one line, before anything runs."""
    (tmp_path / "c.yaml").write_text("name: t\nmodels: {trivial: 2}\nnum_batches: 1\nnum_warmup_batches: 0\n")
    p = subprocess.run([sys.executable, "-m", "cpubench", "run", "--config", "c.yaml", "--out", "data", "--host-id",
                        "h", "--dry-run", "--price-per-hour", given], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert f"--price-per-hour={float(given):g}: must be dollars per hour, from 1e-06 to 1e+06" in p.stderr
    assert not (tmp_path / "data").exists()
