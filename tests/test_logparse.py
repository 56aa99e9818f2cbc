"""cpubench.results.logparse: the upstream stdout format and the classic log names, read exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from cpubench.results.logparse import NO_TOTAL_REASON, parse_log, parse_log_name

FIXTURES = Path(__file__).parent / "fixtures" / "legacy"

SAMPLE = """TensorFlow:  2.21
Model:       resnet50
Dataset:     imagenet (synthetic)
Mode:        training
SingleSess:  False
Batch size:  64 global
             64 per device
Num batches: 100
Num epochs:  0.00
Devices:     ['/cpu:0']
NUMA bind:   False
Data format: NHWC
Optimizer:   sgd
Variables:   parameter_server
==========
Generating training model
Running warm up
Done warm up
Step\tImg/sec\ttotal_loss
1\timages/sec: 6.2 +/- 0.0 (jitter = 0.0)\t7.853
10\timages/sec: 6.1 +/- 0.1 (jitter = 0.2)\t7.841
----------------------------------------------------------------
total images/sec: 6.13
----------------------------------------------------------------
"""


def test_sample_header_and_body() -> None:
    p = parse_log(SAMPLE)
    assert p.tf_version == "2.21"
    assert p.model == "resnet50"
    assert (p.dataset, p.synthetic) == ("imagenet", True)
    assert p.mode == "training" and p.forward_only is False
    assert p.single_sess is False
    assert (p.batch_size_global, p.batch_size_per_device) == (64, 64)
    assert (p.num_batches, p.num_epochs) == (100, 0.0)
    assert p.devices == ["/cpu:0"] and p.num_devices == 1 and p.device_kind == "cpu"
    assert p.numa_bind is False
    assert (p.data_format, p.optimizer, p.variable_update, p.all_reduce) == ("NHWC", "sgd", "parameter_server", None)
    assert [(s.step, s.images_per_sec, s.spread, s.jitter, s.loss) for s in p.steps] == [
        (1, 6.2, 0.0, 0.0, 7.853),
        (10, 6.1, 0.1, 0.2, 7.841),
    ]
    assert p.total_images_per_sec == 6.13
    assert p.complete and p.failure_reason is None and p.last_error is None


def test_header_keys_are_kept_raw_in_order() -> None:
    p = parse_log(SAMPLE)
    assert list(p.header) == [
        "TensorFlow",
        "Model",
        "Dataset",
        "Mode",
        "SingleSess",
        "Batch size",
        "Num batches",
        "Num epochs",
        "Devices",
        "NUMA bind",
        "Data format",
        "Optimizer",
        "Variables",
    ]
    assert p.header["Batch size"] == "64 global\n64 per device"


def test_allreduce_multi_device_and_warnings_everywhere() -> None:
    p = parse_log((FIXTURES / "resnet50-syn-replicated-nccl-4gpus-64-1.log").read_text())
    assert p.tf_version == "1.13"
    assert p.all_reduce == "nccl" and p.variable_update == "replicated"
    assert p.num_devices == 4 and p.device_kind == "gpu"
    assert (p.batch_size_global, p.batch_size_per_device) == (256, 64)
    assert len(p.steps) == 3 and p.total_images_per_sec == 1020.37
    assert "WARNING" not in p.header


def test_warning_inside_header_and_crlf() -> None:
    text = SAMPLE.replace("Optimizer:", "W0000 00:00:17.1 42 x.cc:1] noise: here\nOptimizer:").replace("\n", "\r\n")
    p = parse_log(text)
    assert p.optimizer == "sgd" and p.variable_update == "parameter_server"
    assert p.total_images_per_sec == 6.13


def test_crashed_run_has_reason_with_last_error() -> None:
    p = parse_log((FIXTURES / "inception3-real-parameter_server-distortions-1gpus-32-1.log").read_text())
    assert p.synthetic is False and p.dataset == "imagenet"
    assert not p.complete and p.total_images_per_sec is None
    assert p.failure_reason is not None and p.failure_reason.startswith(NO_TOTAL_REASON)
    assert "ResourceExhaustedError: OOM when allocating" in p.failure_reason


def test_crash_without_error_line() -> None:
    cut = SAMPLE.split("----")[0]
    p = parse_log(cut)
    assert p.failure_reason == NO_TOTAL_REASON
    assert len(p.steps) == 2


def test_killed_is_the_last_error() -> None:
    p = parse_log(SAMPLE.split("----")[0] + "Killed\n")
    assert p.last_error == "Killed"


def test_forward_only_and_step_without_loss() -> None:
    text = SAMPLE.replace("Mode:        training", "Mode:        forward-only")
    text = text.replace("\t7.853", "").replace("images/sec: 6.1 +/- 0.1 (jitter = 0.2)", "images/sec: 6.1")
    p = parse_log(text)
    assert p.forward_only is True
    assert p.steps[0].loss is None
    assert (p.steps[1].spread, p.steps[1].jitter) == (None, None)


def test_eval_metrics_after_loss() -> None:
    p = parse_log("1\timages/sec: 5.0 +/- 0.0 (jitter = 0.0)\t7.1\t0.001\t0.005\ntotal images/sec: 5.00\n")
    assert p.steps[0].values == [7.1, 0.001, 0.005]
    assert not p.has_header and p.is_benchmark_log


def test_not_a_log() -> None:
    p = parse_log("hello\nworld: yes\n")
    assert not p.is_benchmark_log and p.header == {}


def test_several_totals_keep_the_last() -> None:
    p = parse_log(SAMPLE + SAMPLE.replace("6.13", "7.00"))
    assert p.totals == [6.13, 7.0] and p.total_images_per_sec == 7.0


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "resnet50-syn-replicated-nccl-4gpus-64-1.log",
            ("resnet50", "syn", "replicated", True, False, 4, 64, 1, "syn-replicated-nccl-4gpus"),
        ),
        (
            "inception3-real-parameter_server-distortions-1gpus-32-2.log",
            (
                "inception3",
                "real",
                "parameter_server",
                False,
                True,
                1,
                32,
                2,
                "real-parameter_server-distortions-1gpus",
            ),
        ),
        (
            "resnet50_v1.5-real-replicated-nccl-distortions-8gpus-128-10.log",
            ("resnet50_v1.5", "real", "replicated", True, True, 8, 128, 10, "real-replicated-nccl-distortions-8gpus"),
        ),
    ],
)
def test_classic_names(name: str, expected: tuple[object, ...]) -> None:
    n = parse_log_name(Path("some/dir") / name)
    assert n is not None
    got = (n.model, n.data, n.variable_update, n.nccl, n.distortions, n.num_devices, n.batch_size, n.iteration)
    assert (*got, n.setting) == expected


@pytest.mark.parametrize(
    "name", ["resnet50.log", "resnet50-syn-replicated-4cpus-64-1.log", "x-syn-replicated-1gpus-1.log"]
)
def test_not_classic_names(name: str) -> None:
    assert parse_log_name(name) is None


def test_classic_names_land_in_the_settings_the_runner_names() -> None:
    from cpubench.spec import axes

    n = parse_log_name("resnet50-syn-replicated-nccl-4gpus-64-1.log")
    assert n is not None and n.setting == "syn-replicated-nccl-4gpus"
    assert n.setting == axes.setting_name({**axes.defaults(), **n.params})
