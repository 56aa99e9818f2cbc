"""Configs: the shipped matrices, setting names, the per-run hash, and errors that name the file, line and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cpubench.spec import config as cfg

ROOT = Path(__file__).resolve().parents[1]

MINIMAL = "name: t\nmodels: {trivial: 8}\n"


def parse(text: str) -> cfg.Config:
    return cfg.parse_config(textwrap.dedent(text), "c.yaml")


def error_of(text: str) -> str:
    with pytest.raises(cfg.ConfigError) as e:
        parse(text)
    return str(e.value)


def test_lambda_4gpu_is_the_classic_matrix() -> None:
    c = cfg.load_config("lambda-4gpu")
    assert cfg.settings(c) == [
        "syn-parameter_server-4gpus",
        "syn-replicated-4gpus",
        "syn-replicated-nccl-4gpus",
        "real-parameter_server-4gpus",
        "real-parameter_server-distortions-4gpus",
        "real-replicated-4gpus",
        "real-replicated-distortions-4gpus",
        "real-replicated-nccl-4gpus",
        "real-replicated-nccl-distortions-4gpus",
    ]
    runs = cfg.plan(c)
    assert len(runs) == 9 * 7 * 3 and c.models["alexnet"] == [512] and c.flags == {"optimizer": "sgd"}
    assert c.device == "gpu" and c.timeout == 1800 and c.data_dir == "~/data/imagenet_mini"
    nccl = next(r for r in runs if r.setting.name == "real-replicated-nccl-4gpus" and r.model == "vgg16")
    flags = cfg.engine_flags(c, nccl, "/d")
    assert "--all_reduce_spec=nccl" in flags and "--data_dir=/d" in flags and "--num_gpus=4" in flags
    assert "--device=gpu" in flags and "--optimizer=sgd" in flags and "--batch_size=64" in flags


@pytest.mark.parametrize("name", ["cpu-default", "cpu-full"])
def test_cpu_configs_are_cpu_only_and_never_nccl(name: str) -> None:
    c = cfg.load_config(name)
    assert c.device == "cpu" and c.generate_data is not None
    runs = cfg.plan(c)
    assert runs and all(r.setting.name.endswith(("cpus", "cpus-inference")) for r in runs)
    assert not any(r.setting.params["nccl"] for r in runs)
    assert {r.setting.params["data"] for r in runs} == {"syn", "real"}


def test_default_config_is_small() -> None:
    c = cfg.load_config(None)
    assert c.name == "cpu-default"
    runs = cfg.plan(c)
    # ResNet-50 only as inference: training it is ~6 images/s on 2 cores.
    assert {r.setting.params["forward_only"] for r in runs if r.model == "resnet50"} == {True}
    # Three repeats (noise against differences), each short: at most 10 engine processes per repeat.
    assert c.repeats == 3 and len(runs) <= 30 and c.num_batches <= 30


def test_configs_folder_and_package_hold_the_same_files() -> None:
    for name in cfg.packaged_configs():
        assert (ROOT / "configs" / f"{name}.yaml").read_text() == (cfg.PACKAGE_CONFIGS / f"{name}.yaml").read_text()
    assert set(cfg.packaged_configs()) >= {"cpu-default", "cpu-full", "lambda-4gpu"}


def test_resolve_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a fresh folder without configs/: shipped names and configs/NAME.yaml still work
    assert cfg.resolve_config("configs/cpu-full.yaml") == cfg.PACKAGE_CONFIGS / "cpu-full.yaml"
    assert cfg.resolve_config("lambda-4gpu.yaml") == cfg.PACKAGE_CONFIGS / "lambda-4gpu.yaml"
    mine = tmp_path / "cpu-default.yaml"
    mine.write_text(MINIMAL)
    assert cfg.resolve_config("cpu-default.yaml").resolve() == mine  # a file that exists wins
    with pytest.raises(cfg.ConfigError, match="no such config file"):
        cfg.resolve_config("/elsewhere/cpu-default.yaml")
    with pytest.raises(cfg.ConfigError, match="no-such.yaml: no such config file; shipped configs: cpu-default"):
        cfg.resolve_config("no-such.yaml")


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"data": "syn", "variable_update": "replicated", "nccl": True, "device": "gpu", "num_devices": 8},
         "syn-replicated-nccl-8gpus"),
        ({"data": "real", "variable_update": "parameter_server", "distortions": True, "device": "gpu",
          "num_devices": 1}, "real-parameter_server-distortions-1gpus"),
        ({"data": "syn", "variable_update": "replicated", "device": "cpu", "num_devices": 2, "forward_only": True},
         "syn-replicated-2cpus-inference"),
        ({"data": "syn", "variable_update": "replicated", "device": "cpu", "num_devices": 1, "xla_compile": True,
          "precision": "bf16", "num_intra_threads": 4, "num_inter_threads": 2},
         "syn-replicated-1cpus-xla-bf16-intra4-inter2"),
    ],
)  # fmt: skip
def test_setting_names(params: dict, name: str) -> None:
    assert cfg.setting_name(params) == name


def test_optional_axes_batch_lists_and_exclude_lists() -> None:
    c = parse(
        """\
        name: t
        num_gpus: [1, 2]
        repeats: 3
        models: {trivial: [8, 16], lenet: 4}
        matrix:
          precision: [fp32, bf16]
          num_intra_threads: [0, 2]
        exclude:
          - {model: [lenet], precision: bf16}
          - {num_gpus: 2, num_intra_threads: 2}
        """
    )
    runs = cfg.plan(c)
    per_repeat = [r for r in runs if r.repeat == 0]
    # 2 gpus x 2 precisions x 2 thread counts x (trivial 2 sizes + lenet) minus exclusions
    assert len(per_repeat) == (2 * 2 * 2 * 3) - (2 * 2) - (2 * 3 - 1)
    assert [r.repeat for r in runs] == sorted(r.repeat for r in runs)  # repeats outermost
    assert not any(r.model == "lenet" and r.setting.params["precision"] == "bf16" for r in runs)
    assert "syn-parameter_server-1cpus-bf16-intra2" in cfg.settings(c)
    c2 = parse(MINIMAL + "matrix: {batch_size: [2, 4]}\n")
    assert [r.batch_size for r in cfg.plan(c2, repeats=1)] == [2, 4]


def test_only_globs() -> None:
    c = parse("name: t\nmodels: {trivial: 8, lenet: 4}\nmatrix: {data: syn, forward_only: [false, true]}\n")
    runs = cfg.plan(c, repeats=1)
    assert [r.model for r in runs if cfg.matches(r, ["lenet"])] == ["lenet", "lenet"]
    assert [r.key for r in runs if cfg.matches(r, ["*-inference/trivial-bs8"])] == [
        ("syn-parameter_server-1cpus-inference", "trivial", 8, 0)
    ]
    assert not [r for r in runs if cfg.matches(r, ["nothing*"])]


def test_run_hash_tracks_the_measurement_not_the_bookkeeping() -> None:
    base = parse(MINIMAL)
    run = cfg.plan(base)[0]
    src = {"dir": ""}
    h = cfg.run_hash(base, run, src)
    same = parse("name: other\ntimeout: 5\nrepeats: 7\nmodels: {trivial: 8, lenet: 4}\n")
    assert cfg.run_hash(same, cfg.plan(same)[0], src) == h
    for changed in ("num_batches: 7\n", "flags: {optimizer: momentum}\n", "env: {OMP_NUM_THREADS: 1}\n"):
        c = parse(MINIMAL + changed)
        assert cfg.run_hash(c, cfg.plan(c)[0], src) != h, changed
    real = parse(MINIMAL + "data_dir: /x\nmatrix: {data: real}\n")
    rr = cfg.plan(real)[0]
    assert cfg.run_hash(real, rr, {"dir": "/x"}) != cfg.run_hash(real, rr, {"generated": {"count": 8}})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: t\nmodels: {trivial: 8\n", "c.yaml:3: not valid YAML: while parsing a flow mapping"),
        ("name: t\nmodels:\n  trivial: 8\n   lenet: 4\n", "c.yaml:4: not valid YAML"),
        ("name: t\nmodles: {trivial: 8}\n", "c.yaml:2: modles: unknown key 'modles'; did you mean models?"),
        ("name: t\n", "c.yaml:1: (top): missing required key `models`"),
        ("name: t\nmodels: {trivial: 8}\nname: u\n", "c.yaml:3: name: duplicate key (first at line 1)"),
        ("name: t\nmodels:\n  resnet-50: 32\n", "c.yaml:3: models.resnet-50: unknown model 'resnet-50'; did you mean"),
        ("name: t\nmodels:\n  trivial: 0\n", "c.yaml:3: models.trivial: must be at least 1, got 0"),
        ("name: t\nmodels: {trivial: [8, x]}\n", "c.yaml:2: models.trivial[1]: expected an integer, got 'x'"),
        (MINIMAL + "device: tpu\n", "c.yaml:3: device: 'tpu' is not one of cpu, gpu"),
        (MINIMAL + "repeats: 0\n", "c.yaml:3: repeats: must be at least 1, got 0"),
        (MINIMAL + "generate_data: {count: 1000000000}\n", "c.yaml:3: generate_data.count: must be at most 100000"),
        ('name: "t\\e[2J"\nmodels: {trivial: 8}\n', "c.yaml:1: name: 't\\x1b[2J' holds control characters"),
        (MINIMAL + "timeout: -1\n", "c.yaml:3: timeout: expected seconds > 0, got -1"),
        (MINIMAL + "matrix:\n  data: [syn]\n  variable_update:\n    - replicated\n    - replicate\n",
         "c.yaml:7: matrix.variable_update[1]: 'replicate' is not one of"),
        (MINIMAL + "matrix:\n  nccl: [no_idea]\n", "c.yaml:4: matrix.nccl[0]: expected true or false, got 'no_idea'"),
        (MINIMAL + "matrix:\n  colour: [red]\n", "c.yaml:4: matrix.colour: unknown matrix axis 'colour'"),
        (MINIMAL + "matrix:\n  data: [syn, syn]\n", "c.yaml:4: matrix.data: a value is listed twice"),
        (MINIMAL + "matrix: {data: [real]}\n", "c.yaml:3: matrix.data: real data needs `data_dir:`"),
        (MINIMAL + "exclude:\n  - {varible_update: replicated}\n",
         "c.yaml:4: exclude[0].varible_update: unknown exclude key 'varible_update'; did you mean variable_update?"),
        (MINIMAL + "exclude:\n  - {model: vgg16}\n", "c.yaml:4: exclude[0].model: model 'vgg16' is not in `models`"),
        (MINIMAL + "exclude: {data: syn}\n", "c.yaml:3: exclude: expected a list of rules"),
        (MINIMAL + "flags:\n  optimiser: sgd\n", "c.yaml:4: flags.optimiser: unknown engine flag 'optimiser'"),
        (MINIMAL + "flags:\n  optimizer: adam\n", "c.yaml:4: flags.optimizer: --optimizer=adam: must be one of"),
        (MINIMAL + "flags:\n  batch_size: 4\n", "c.yaml:4: flags.batch_size: set by the runner; use `models"),
        (MINIMAL + "flags:\n  num_intra_threads: 4\n", "use `matrix.num_intra_threads` instead"),
        (MINIMAL + "generate_data: {count: 10, size: big}\n", "c.yaml:3: generate_data.size: expected pixels"),
        ("- a\n- b\n", "c.yaml:1: (top): expected a mapping"),
        ("", "c.yaml:1: empty config"),
    ],
)  # fmt: skip
def test_broken_configs_name_the_line_and_key(text: str, expected: str) -> None:
    assert expected in error_of(text)


def test_valid_config_round_trip() -> None:
    c = parse(
        """\
        name: t
        device: gpu
        num_gpus: 2
        data_dir: /data
        generate_data: {count: 10, size: 500x375}
        models: {trivial: 8}
        matrix: {data: [syn, real], nccl: true}
        env: {OMP_NUM_THREADS: 4}
        engine: python3 my_engine.py
        flags: {optimizer: momentum, display_every: 5}
        """
    )
    assert c.num_gpus == [2] and c.matrix == {"data": ["syn", "real"], "nccl": [True]}
    assert c.env == {"OMP_NUM_THREADS": "4"} and c.engine == ["python3", "my_engine.py"]
    assert c.generate_data == cfg.GenerateData(10, "500x375")
    run = cfg.plan(c)[-1]
    assert run.setting.name == "real-parameter_server-nccl-2gpus"
    assert cfg.engine_flags(c, run, "/data")[-2:] == ["--display_every=5", "--optimizer=momentum"]
