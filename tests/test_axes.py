"""Axes declared once: one more declaration reaches validation, argv, setting names, the run hash and report order.

The throwaway axis below is declared here and nowhere else; nothing in cpubench is edited for it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cpubench.render import report
from cpubench.results import store
from cpubench.spec import axes
from cpubench.spec import config as cfg
from tf_cnn_benchmarks.record import RunRecord, Samples

# Sets the engine's --kmp_blocktime; ranks before every other axis in reports; shows as "-kbt<N>" off its default.
KMP = axes.Axis(
    "kmp_blocktime", ("kmp_blocktime",), -1, fragment=axes.off_default("kbt{}", -1), rank=0, help="test only"
)


@pytest.fixture
def with_kmp(monkeypatch: pytest.MonkeyPatch) -> axes.Axis:
    monkeypatch.setattr(axes, "AXES", (*axes.AXES, KMP))
    return KMP


def test_a_declared_axis_reaches_validation_argv_names_hash_and_report_order(
    with_kmp: axes.Axis, tmp_path: Path
) -> None:
    c = cfg.parse_config(
        "name: t\nmodels: {trivial: 8}\nmatrix:\n  data: [syn, real]\n  kmp_blocktime: [-1, 0, 30]\n"
        "generate_data: {count: 4}\n",
        "t.yaml",
    )
    runs = cfg.plan(c, repeats=1)
    assert len(runs) == 6
    # argv: the engine flag, with the value
    by_value = {r.setting.params["kmp_blocktime"]: r for r in runs if r.setting.params["data"] == "syn"}
    assert "--kmp_blocktime=30" in cfg.engine_flags(c, by_value[30], "")
    assert "--kmp_blocktime=-1" in cfg.engine_flags(c, by_value[-1], "")
    # the setting name: classic names unchanged at the default, a fragment off it
    assert cfg.settings(c) == [
        "syn-parameter_server-1cpus",
        "syn-parameter_server-1cpus-kbt0",
        "syn-parameter_server-1cpus-kbt30",
        "real-parameter_server-1cpus",
        "real-parameter_server-1cpus-kbt0",
        "real-parameter_server-1cpus-kbt30",
    ]
    # the hash: every value is another measurement
    hashes = {cfg.run_hash(c, r, {"generated": {"count": 4}}) for r in runs}
    assert len(hashes) == 6
    # validation: its type comes from the engine's flag table; the engine flag is now the axis's
    with pytest.raises(cfg.ConfigError, match=r"t.yaml:3: matrix.kmp_blocktime\[0\]: expected an integer"):
        cfg.parse_config("name: t\nmodels: {trivial: 8}\nmatrix: {kmp_blocktime: [fast]}\n", "t.yaml")
    with pytest.raises(cfg.ConfigError, match=r"use `matrix.kmp_blocktime` instead of flags.kmp_blocktime"):
        cfg.parse_config("name: t\nmodels: {trivial: 8}\nflags: {kmp_blocktime: 1}\n", "t.yaml")
    # an exclude rule may name it
    ex = cfg.parse_config(
        "name: t\nmodels: {trivial: 8}\nmatrix: {kmp_blocktime: [-1, 0]}\nexclude: [{kmp_blocktime: 0}]\n"
    )
    assert [r.setting.params["kmp_blocktime"] for r in cfg.plan(ex, repeats=1)] == [-1]

    # report order: rank 0 puts it before data, so (real, -1) comes before (syn, 0), from the stored values
    root = tmp_path / "data"
    store.write_host(root, {"host_id": "h", "machine_fingerprint": "x"})
    for r in reversed(runs):
        rec = RunRecord(host_id="h", setting=r.setting.name, params=r.setting.params, model="trivial", batch_size=8,
                        num_devices=1, repeat=0, run_hash=cfg.run_hash(c, r, {}))  # fmt: skip
        store.append_run(root, rec.with_samples(Samples(8, (0.01, 0.02))))
    files, _ = report.build_report([root], tmp_path / "summary", model_rows=None, plots=False)
    md = files.summary.read_text()
    order = [line.strip("*") for line in md.splitlines() if line.startswith("**") and "cpus" in line]
    assert order == [
        "syn-parameter_server-1cpus",
        "real-parameter_server-1cpus",
        "syn-parameter_server-1cpus-kbt0",
        "real-parameter_server-1cpus-kbt0",
        "syn-parameter_server-1cpus-kbt30",
        "real-parameter_server-1cpus-kbt30",
    ]


def test_axis_types_and_choices_come_from_the_engine_flag_table() -> None:
    from tf_cnn_benchmarks import flags

    engine = {f.name: f for f in flags.FLAGS}
    for a in axes.table():
        if a.kind is None and a.flags:
            assert a.value_kind is engine[a.flags[0]].type, a.name
    assert axes.get("variable_update").allowed == engine["variable_update"].choices
    assert axes.get("model").allowed == tuple(axes.model_names())
    assert "overfeat" not in axes.get("model").allowed


def test_every_engine_flag_an_axis_owns_exists() -> None:
    from tf_cnn_benchmarks import flags

    known = set(flags.known_flags())
    for flag, where in cfg.runner_flags().items():
        assert flag in known, (flag, where)


def test_declaring_an_axis_reruns_nothing_measured_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    c = cfg.parse_config("name: t\nmodels: {trivial: 8}\n")
    before = [cfg.run_hash(c, r, {}) for r in cfg.plan(c)]
    monkeypatch.setattr(axes, "AXES", (*axes.AXES, KMP))
    c = cfg.parse_config("name: t\nmodels: {trivial: 8}\n")
    assert [cfg.run_hash(c, r, {}) for r in cfg.plan(c)] == before  # the new axis at its default
    c = cfg.parse_config("name: t\nmodels: {trivial: 8}\nmatrix: {kmp_blocktime: 5}\n")
    assert [cfg.run_hash(c, r, {}) for r in cfg.plan(c)] != before


FRAMEWORKS_YAML = """\
name: f
models: {trivial: [2]}
matrix:
  framework: [tensorflow, pytorch]
  execution: [graph, eager, script]
  forward_only: true
"""


def test_framework_axis_plans_each_frameworks_modes_and_keeps_tensorflow_hashes() -> None:
    both = cfg.parse_config(FRAMEWORKS_YAML)
    runs = cfg.plan(both, repeats=1)
    assert [(r.setting.params["framework"], r.setting.params["execution"]) for r in runs] == [
        ("tensorflow", "graph"), ("tensorflow", "eager"), ("pytorch", "eager"), ("pytorch", "script")]  # fmt: skip
    assert cfg.left_out(both) == {
        "tensorflow has no script execution (it runs graph, eager, xla)": 1,
        "pytorch has no graph execution (it runs eager, script, compile)": 1,
    }
    assert [r.setting.name for r in runs] == [
        "syn-parameter_server-1cpus-inference", "syn-parameter_server-1cpus-inference-eager",
        "syn-parameter_server-1cpus-inference-pytorch-eager", "syn-parameter_server-1cpus-inference-pytorch-script",
    ]  # fmt: skip
    # Left out of a config, execution takes each framework's own default.
    plain = cfg.parse_config("name: p\nmodels: {trivial: [2]}\nmatrix: {framework: [tensorflow, pytorch]}\n")
    assert [r.setting.params["execution"] for r in cfg.plan(plain, repeats=1)] == ["graph", "eager"]
    # A TensorFlow run's identity is what it was before the axis existed, whatever torch version is installed; a
    # PyTorch run's carries torch's version, not TensorFlow's.
    from cpubench.sweep.planner import engine_identity

    tf_only = cfg.parse_config("name: p\nmodels: {trivial: [2]}\n")
    old = cfg.run_hash(tf_only, cfg.plan(tf_only, 1)[0], {}, engine_identity([], True, "2.21.0"))
    tf_run, pt_run = cfg.plan(plain, 1)
    for torch_version in (None, "2.13.0", "2.14.1"):
        engine = engine_identity([], True, "2.21.0", torch_version)
        assert cfg.run_hash(plain, tf_run, {}, engine) == old
        ident = cfg.run_identity(plain, pt_run, {}, engine, {})
        assert ident["engine"]["framework"] == "pytorch" and ident["engine"]["framework_version"] == torch_version
        assert ident["axes"]["framework"] == "pytorch" and "execution" not in ident["axes"]  # eager: its default
    assert cfg.run_hash(plain, pt_run, {}, engine_identity([], True, "2.21.0", "2.13.0")) != cfg.run_hash(
        plain, pt_run, {}, engine_identity([], True, "2.21.0", "2.14.1"))  # fmt: skip


def test_xla_compile_with_pytorch_is_left_out_of_the_plan() -> None:
    c = cfg.parse_config("name: x\nmodels: {trivial: [2]}\nmatrix: {framework: [tensorflow, pytorch], "
                         "xla_compile: [false, true]}\n")  # fmt: skip
    combos = [(r.setting.params["framework"], r.setting.params["xla_compile"]) for r in cfg.plan(c, 1)]
    assert combos == [("tensorflow", False), ("pytorch", False), ("tensorflow", True)]
    assert cfg.left_out(c) == {"pytorch has no XLA (its compiler is execution: compile)": 1}
