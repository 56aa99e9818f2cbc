"""The engine's command line (tf_cnn_benchmarks.flags): every absl spelling upstream scripts use, the derived defaults,
and the one-line errors. Pure Python: the flags are parsed before TensorFlow is imported, so nothing here imports it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tf_cnn_benchmarks import flags
from tf_cnn_benchmarks.flags import FlagError, parse


def test_parse_defaults():
    ns = parse([])
    assert ns.model == "trivial"
    assert ns.batch_size == 0  # left out = the model's default
    assert ns.forward_only is False
    assert ns.precision == "fp32" and ns.use_fp16 is False
    assert ns.data_format == "NHWC"
    assert ns.variable_update == "parameter_server"
    assert ns.explicit_flags == []


@pytest.mark.parametrize(
    "argv",
    [
        ["--model=resnet50", "--batch_size=32", "--num_batches=7"],
        ["--model", "resnet50", "--batch_size", "32", "--num_batches", "7"],
        ["-model=resnet50", "-batch_size", "32", "--num_batches=7"],
    ],
    ids=["equals", "space", "single-dash"],
)
def test_value_spellings(argv):
    ns = parse(argv)
    assert (ns.model, ns.batch_size, ns.num_batches) == ("resnet50", 32, 7)
    assert ns.explicit_flags == ["batch_size", "model", "num_batches"]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--forward_only"], True),
        (["--forward_only=True"], True),
        (["--forward_only=true"], True),
        (["--forward_only=1"], True),
        (["--forward_only", "true"], True),
        (["--forward_only=False"], False),
        (["--forward_only", "false"], False),
        (["--noforward_only"], False),
        (["--forward_only", "--noforward_only"], False),
        (["--noforward_only", "--forward_only"], True),
    ],
)
def test_bool_spellings(argv, expected):
    assert parse(argv).forward_only is expected


def test_bool_flag_does_not_swallow_next_flag():
    ns = parse(["--forward_only", "--model=lenet"])
    assert ns.forward_only is True and ns.model == "lenet"


def test_bad_bool_value():
    with pytest.raises(FlagError, match=r"--forward_only=maybe: expected true or false"):
        parse(["--forward_only=maybe"])


def test_eval_is_forward_only():
    assert parse(["--eval"]).forward_only is True
    assert parse(["--eval=false"]).forward_only is False


def test_xla_alias():
    assert parse(["--xla"]).xla_compile is True
    assert parse(["--xla_compile"]).xla_compile is True
    assert parse([]).xla_compile is False


@pytest.mark.parametrize("argv", [["--use_nccl=true"], ["--use_nccl"], ["--use_nccl", "--all_reduce_spec=nccl"]])
def test_use_nccl_means_all_reduce_spec_nccl(argv):
    assert parse(argv).all_reduce_spec == "nccl"


def test_use_nccl_false_leaves_all_reduce_spec_alone():
    assert parse(["--use_nccl=false"]).all_reduce_spec == ""
    assert parse(["--use_nccl=false", "--all_reduce_spec=xring"]).all_reduce_spec == "xring"


def test_use_nccl_conflicts_with_other_spec():
    with pytest.raises(FlagError) as e:
        parse(["--use_nccl", "--all_reduce_spec=xring"])
    msg = str(e.value)
    assert "--use_nccl" in msg and "--all_reduce_spec=xring" in msg and "\n" not in msg


@pytest.mark.parametrize(
    "argv, precision",
    [
        (["--use_fp16"], "bf16"),
        (["--use_fp16", "--device=cpu"], "bf16"),
        (["--use_fp16", "--device=gpu"], "fp16"),
        (["--use_fp16=false", "--device=gpu"], "fp32"),
        (["--use_fp16", "--precision=fp32"], "fp32"),  # --precision overrides --use_fp16
        (["--precision=bf16"], "bf16"),
        (["--precision=fp16", "--device=gpu"], "fp16"),
    ],
)
def test_precision(argv, precision):
    ns = parse(argv)
    assert ns.precision == precision
    assert ns.use_fp16 is (precision != "fp32")


@pytest.mark.parametrize(
    "argv, fmt",
    [
        ([], "NHWC"),
        (["--device=cpu"], "NHWC"),
        (["--device=gpu"], "NCHW"),
        (["--device=gpu", "--data_format=NHWC"], "NHWC"),
        (["--data_format=NCHW"], "NCHW"),
        (["--data_format=nchw"], "NCHW"),  # case-folded onto the choice
    ],
)
def test_data_format_default(argv, fmt):
    assert parse(argv).data_format == fmt


def test_choice_case_folding_lowercase():
    assert parse(["--device=GPU"]).device == "gpu"


def test_unknown_flag_names_it():
    with pytest.raises(FlagError) as e:
        parse(["--model=lenet", "--frobnicate=3"])
    msg = str(e.value)
    assert msg.startswith("unknown flag --frobnicate")
    assert "\n" not in msg


def test_unknown_flag_suggests_close_name():
    with pytest.raises(FlagError) as e:
        parse(["--batch-size=4"])
    assert "--batch_size" in str(e.value)


def test_no_prefix_on_non_bool_is_unknown():
    with pytest.raises(FlagError, match="unknown flag --nomodel"):
        parse(["--nomodel"])


def test_positional_argument_rejected():
    with pytest.raises(FlagError, match="unexpected argument 'resnet50'"):
        parse(["resnet50"])


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--optimizer=adam"], "--optimizer=adam: must be one of sgd, momentum, rmsprop"),
        (["--variable_update=magic"], "--variable_update=magic: must be one of"),
        (["--data_format=NWHC"], "--data_format=NWHC: must be one of NHWC, NCHW"),
        (["--device=tpu"], "--device=tpu: must be one of cpu, gpu"),
        (["--batch_size=abc"], "--batch_size=abc: expected int"),
        (["--batch_size=1.5"], "--batch_size=1.5: expected int"),
        (["--num_batches", "ten"], "--num_batches=ten: expected int"),
        (["--learning_rate=fast"], "--learning_rate=fast: expected float"),
        (["--num_batches=0"], "--num_batches=0"),
        (["--num_warmup_batches=-1"], "--num_warmup_batches=-1"),
        (["--display_every=0"], "--display_every=0"),
        (["--num_gpus=0"], "--num_gpus=0"),
        (["--num_intra_threads=-2"], "--num_intra_threads"),
        (["--all_reduce_spec=magic"], "--all_reduce_spec=magic"),
    ],
)
def test_bad_value(argv, needle):
    """A value outside its flag's choices, type or range: the message names the flag and the value."""
    with pytest.raises(FlagError) as e:
        parse(argv)
    assert needle in str(e.value)


def test_missing_value_at_end():
    with pytest.raises(FlagError, match="--model needs a value"):
        parse(["--model"])


@pytest.mark.parametrize("value", ["0", "-1"])
def test_batch_size_below_one_rejected(value):
    with pytest.raises(FlagError) as e:
        parse([f"--batch_size={value}"])
    assert f"--batch_size={value}: must be at least 1" in str(e.value)


def test_batch_size_left_out_is_model_default():
    assert parse(["--model=lenet"]).batch_size == 0


def test_num_epochs_replaces_num_batches():
    ns = parse(["--num_batches=0", "--num_epochs=0.5"])
    assert ns.num_epochs == 0.5


def test_job_name_needs_worker_hosts():
    with pytest.raises(FlagError) as e:
        parse(["--job_name=worker", "--task_index=0"])
    assert "--job_name=worker needs --worker_hosts" in str(e.value)


def test_job_name_with_worker_hosts_parses():
    ns = parse(["--job_name=worker", "--worker_hosts=a:1,b:2", "--task_index=1"])
    assert (ns.job_name, ns.worker_hosts, ns.task_index) == ("worker", "a:1,b:2", 1)


def test_data_dir_implies_imagenet():
    assert parse(["--data_dir=/x"]).data_name == "imagenet"
    assert parse([]).data_name == ""


def test_as_dict_has_every_flag_with_effective_values():
    ns = parse(["--use_fp16", "--eval", "--use_nccl"])
    d = flags.as_dict(ns)
    assert set(d) == set(flags.known_flags())
    assert d["precision"] == "bf16" and d["forward_only"] is True and d["all_reduce_spec"] == "nccl"
    assert "explicit_flags" not in d


def test_flag_names_unique_and_defaults_typed():
    names = flags.known_flags()
    assert len(names) == len(set(names))
    for f in flags.FLAGS:
        assert isinstance(f.default, f.type), f.name
        if f.choices is not None:
            assert f.default in f.choices, f.name


def test_usage_lists_every_flag():
    text = flags.usage()
    for name in flags.known_flags():
        assert f"--{name}" in text


def test_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as e:
        parse(["--help"])
    assert e.value.code == 0
    assert "--batch_size" in capsys.readouterr().out


def test_main_error_one_line(capsys):
    assert flags.main_error("boom") == 2
    assert capsys.readouterr().err == "tf_cnn_benchmarks: error: boom\n"


def test_flags_module_does_not_import_tensorflow():
    # The engine sets TF_ENABLE_ONEDNN_OPTS and the OpenMP variables from the flags before TensorFlow's import.
    code = (
        "import sys; from tf_cnn_benchmarks import flags; flags.parse(['--mkl=false']); "
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
