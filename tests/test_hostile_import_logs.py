"""cpubench import-logs on logs nobody checked: bad figures, hostile header text and file names, links, pipes.

Why: old logs come from anywhere (mailed folders, shared drives). A bad one must cost one clear line (a warning when
other logs import, an error with exit 2 when nothing does), never a traceback, a half-made host folder, an escape
sequence on the user's terminal, or a file read through a link to somewhere else.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cpubench import cli
from cpubench.results import store

HEADER = """TensorFlow:  2.21
Model:       {model}
Dataset:     imagenet (synthetic)
Mode:        forward-only
SingleSess:  False
Batch size:  2 global
             2 per device
Num batches: 2
Num epochs:  0.00
Devices:     ['/cpu:0']
NUMA bind:   False
Data format: NHWC
Optimizer:   sgd
Variables:   {variables}
==========
Generating model
Running warm up
Done warm up
Step\tImg/sec\ttotal_loss
1\timages/sec: 902.9 +/- 0.0 (jitter = 0.0)\t7.263
----------------------------------------------------------------
total images/sec: {total}
----------------------------------------------------------------
"""


def _log(model: str = "resnet50", total: str = "1199.45", variables: str = "replicated", extra: str = "") -> str:
    return extra + HEADER.format(model=model, total=total, variables=variables)


def _run(src: Path, out: Path, host: str = "IMP") -> int:
    return cli.main(["import-logs", str(src), "--host-id", host, "--out", str(out)])


def _err_lines(capsys: pytest.CaptureFixture[str]) -> tuple[str, list[str]]:
    captured = capsys.readouterr()
    return captured.out, captured.err.splitlines()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


BAD_LOGS = {
    "evilmodel.log": (_log(model="../../../evil<script>"), "model"),
    "nan.log": (_log(total="nan"), "nan"),
    "inf.log": (_log(total="1e999"), "inf"),
    "evilvar.log": (_log(variables="=cmd|calc!A1"), "setting"),
}


@pytest.mark.parametrize("name", sorted(BAD_LOGS))
def test_a_bad_log_among_good_ones_is_skipped_with_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    src, out = tmp_path / "src", tmp_path / "data"
    src.mkdir()
    (src / "ok.log").write_text(_log())
    text, what = BAD_LOGS[name]
    (src / name).write_text(text)
    assert _run(src, out) == 0
    stdout, err = _err_lines(capsys)
    assert "imported 1 log(s)" in stdout
    assert len(err) == 1 and err[0].startswith("cpubench import-logs: warning: ") and "Traceback" not in err[0]
    assert name in err[0] and what in err[0] and err[0].endswith("skipped")
    runs = list(store.iter_runs(out / "IMP"))
    assert [r.details["source_file"] for r in runs] == ["ok.log"]
    assert sorted(p.name for p in (out / "IMP" / "logs" / "import").iterdir()) == ["ok.log"]


@pytest.mark.parametrize("name", sorted(BAD_LOGS))
def test_a_bad_log_as_the_only_input_is_one_error_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    text, what = BAD_LOGS[name]
    (tmp_path / name).write_text(text)
    out = tmp_path / "data"
    assert _run(tmp_path / name, out) == 2
    stdout, err = _err_lines(capsys)
    assert stdout == "" and len(err) == 1 and err[0].startswith("cpubench import-logs: error: ")
    assert name in err[0] and what in err[0] and "nothing written" in err[0]
    assert not out.exists() or _files(out) == []


def test_a_folder_of_bad_logs_writes_nothing_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, out = tmp_path / "src", tmp_path / "data"
    src.mkdir()
    for name, (text, _what) in BAD_LOGS.items():
        (src / name).write_text(text)
    assert _run(src, out) == 2
    _stdout, err = _err_lines(capsys)
    assert len(err) == len(BAD_LOGS) + 1 and all("warning" in line for line in err[:-1])
    assert err[-1].startswith("cpubench import-logs: error: ") and "nothing written" in err[-1]
    assert not (out / "IMP").exists()


def test_a_write_that_fails_midway_leaves_no_half_made_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    src, out = tmp_path / "src", tmp_path / "data"
    src.mkdir()
    for i in range(3):
        (src / f"ok{i}.log").write_text(_log())
    real_append = store.append_run
    calls = []

    def failing_append(root: Path, record: store.RunRecord) -> Path:
        calls.append(record)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_append(root, record)

    monkeypatch.setattr(store, "append_run", failing_append)
    assert _run(src, out) == 2
    _stdout, err = _err_lines(capsys)
    assert len(err) == 1 and err[0].startswith("cpubench import-logs: error: ") and "No space" in err[0]
    assert _files(out) == []  # no host.json, no copied log, no record: the host folder was never made
    assert not (out / "IMP").exists()


def test_an_empty_folder_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert _run(tmp_path / "empty", tmp_path / "data", "X") == 2
    stdout, err = _err_lines(capsys)
    assert stdout == "" and len(err) == 1 and err[0].startswith("cpubench import-logs: error: ")
    assert "no tf_cnn_benchmarks logs found" in err[0] and "nothing written" in err[0]
    assert not (tmp_path / "data" / "X").exists()


def test_names_and_header_text_reach_the_terminal_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, out = tmp_path / "src", tmp_path / "data"
    src.mkdir()
    (src / "ok.log").write_text(_log())
    (src / "x\x1b]0;PWNTITLE\x07\x1b[2J.log").write_text("hello\n")  # not a log: its name is warned about
    (src / "name\x1b[31mRED.log").write_text(_log(model="\x1b[31mred\x1b]0;pwn\x07"))  # a bad model
    assert _run(src, out) == 0
    captured = capsys.readouterr()
    assert "\x1b" not in captured.err and "\x07" not in captured.err and "\x1b" not in captured.out
    lines = captured.err.splitlines()
    assert len(lines) == 2 and all(line.startswith("cpubench import-logs: warning: ") for line in lines)
    assert any("not a tf_cnn_benchmarks log" in line and "/x.log" in line for line in lines)
    assert any("nameRED.log" in line and "model" in line for line in lines)


def _outside(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "real.log").write_text(_log(extra="SECRET_LINE_XYZ\n"))
    return outside


def test_a_symlinked_log_is_skipped_not_followed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outside = _outside(tmp_path)
    src, out = tmp_path / "src", tmp_path / "data"
    src.mkdir()
    (src / "ok.log").write_text(_log())
    (src / "a.log").symlink_to(outside / "real.log")
    (src / "dirlink").symlink_to(outside, target_is_directory=True)
    assert _run(src, out) == 0
    stdout, err = _err_lines(capsys)
    assert "imported 1 log(s)" in stdout
    assert len(err) == 2 and all(line.startswith("cpubench import-logs: warning: ") for line in err)
    assert any("a.log" in line and "symbolic link" in line for line in err)
    assert any("dirlink" in line and "symbolic link" in line for line in err)
    assert [r.details["source_file"] for r in store.iter_runs(out / "IMP")] == ["ok.log"]
    assert not any("SECRET_LINE_XYZ" in p.read_text(errors="replace") for p in _files(out))


def test_a_symlinked_log_as_the_only_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outside = _outside(tmp_path)
    (tmp_path / "a.log").symlink_to(outside / "real.log")
    assert _run(tmp_path / "a.log", tmp_path / "data") == 2
    _stdout, err = _err_lines(capsys)
    assert len(err) == 1 and err[0].startswith("cpubench import-logs: error: ") and "symbolic link" in err[0]
    assert not (tmp_path / "data").exists() or _files(tmp_path / "data") == []


def test_a_named_pipe_is_skipped_without_blocking(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, out = tmp_path / "src", tmp_path / "data"
    src.mkdir()
    (src / "ok.log").write_text(_log())
    os.mkfifo(src / "fifo.log")
    assert _run(src, out) == 0
    _stdout, err = _err_lines(capsys)
    assert len(err) == 1 and "fifo.log" in err[0] and "named pipe" in err[0] and err[0].endswith("skipped")


def test_a_link_inside_an_imported_host_is_refused_before_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out, elsewhere = tmp_path / "src", tmp_path / "data", tmp_path / "elsewhere"
    src.mkdir()
    elsewhere.mkdir()
    (src / "ok.log").write_text(_log())
    assert _run(src, out) == 0
    capsys.readouterr()
    before = (out / "IMP" / store.RUNS_FILE).read_bytes()
    (out / "IMP" / "logs" / "import" / "ok.log").unlink()
    (out / "IMP" / "logs" / "import").rmdir()
    (out / "IMP" / "logs" / "import").symlink_to(elsewhere, target_is_directory=True)
    (src / "more.log").write_text(_log())
    assert _run(src, out) == 2
    _stdout, err = _err_lines(capsys)
    assert len(err) == 1 and err[0].startswith("cpubench import-logs: error: ") and "symbolic link" in err[0]
    assert list(elsewhere.iterdir()) == []
    assert (out / "IMP" / store.RUNS_FILE).read_bytes() == before


def test_an_upstream_network_of_another_shape_is_never_set_against_this_declaration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Upstream's ``mobilenet`` is MobileNet v2 and its ``trivial`` another network: an imported log of either was
    figured with this declaration's FLOPs (v1's 569 M multiply-adds for a v2 figure: 1.9x too high). The import now
    says so, and the figure's % of peak is n/a with the reason; a model both declare alike keeps its figure."""
    import csv

    src = tmp_path / "logs"
    src.mkdir()
    for model in ("mobilenet", "resnet50"):
        (src / f"{model}.log").write_text(_log(model=model))
    assert _run(src, tmp_path / "data") == 0
    _, err = _err_lines(capsys)
    assert any("mobilenet: upstream's mobilenet is MobileNet v2" in line and "n/a" in line for line in err), err
    assert not any("resnet50:" in line for line in err), err
    host = store.host_dir(tmp_path / "data", "IMP")
    (host / store.HOST_FILE).write_text((host / store.HOST_FILE).read_text().replace(
        '"host_id"', '"limits": {"values": {"gemm_fp32_all": {"value": 200.0}}}, "host_id"', 1))  # fmt: skip
    assert cli.main(["report", str(host), "-o", str(tmp_path / "out"), "--no-plots", "--no-model-table"]) == 0
    rows = {r["model"]: r for r in csv.DictReader((tmp_path / "out" / "results.csv").open())}
    assert rows["mobilenet"]["pct_of_peak"] == "" and "imported from an upstream log, and upstream's mobilenet" in (
        rows["mobilenet"]["peak_basis"])  # fmt: skip
    assert rows["resnet50"]["pct_of_peak"] != "", rows["resnet50"]
