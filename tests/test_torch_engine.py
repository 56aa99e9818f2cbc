"""The PyTorch engine (``--framework=pytorch``): the same flags, log and result record as the TensorFlow engine, its
execution modes, its refusals, its optimizers against the TensorFlow engine's, and the suite running both."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import textwrap
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from enginerun import ERROR_PREFIX, REPO, Run, clean_env, read_result

from cpubench.render import report
from cpubench.results import logparse
from tf_cnn_benchmarks import flags as flagdefs

ENGINE = [sys.executable, "-m", "tf_cnn_benchmarks", "--framework=pytorch"]
TINY = ["--batch_size=2", "--num_batches=4", "--num_warmup_batches=1", "--display_every=2"]


def run_engine(
    args: list[str], out_dir: Path, env: dict[str, str] | None = None, timeout: float = 300, name: str = "result"
) -> Run:
    out_dir.mkdir(parents=True, exist_ok=True)
    result = out_dir / f"{name}.json"
    argv = [*ENGINE, *args, f"--result_json={result}"]
    (out_dir / "tmp").mkdir()  # its temporary folder: the run must leave it empty
    env = {**(env or clean_env()), "TMPDIR": str(out_dir / "tmp")}
    p = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    return Run(argv, p.returncode, p.stdout, p.stderr, 0.0, read_result(result))


def _no_compiler_env() -> dict[str, str]:
    env = clean_env()
    env.pop("CXX", None)
    env["PATH"] = "/nonexistent"
    return env


RUNS: dict[str, tuple[list[str], dict[str, Any]]] = {
    "compile": (["--model=trivial", *TINY, "--forward_only", "--execution=compile"], {}),
    "train": (["--model=lenet", *TINY], {}),
    "script_infer": (["--model=lenet", *TINY, "--forward_only", "--execution=script", "--num_intra_threads=1"], {}),
    "script_train": (["--model=lenet", *TINY, "--execution=script", "--optimizer=momentum"], {}),
    "bf16": (["--model=lenet", *TINY, "--forward_only", "--precision=bf16"], {}),
    "nchw": (["--model=lenet", *TINY, "--data_format=NCHW", "--optimizer=rmsprop"], {}),
    "batch_sizes": (
        ["--model=trivial", "--num_batches=3", "--num_warmup_batches=1", "--forward_only", "--batch_sizes=1,3"],
        {"name": "bs{batch_size}"},
    ),  # fmt: skip
    "real_data": (["--model=trivial", *TINY, "--data_dir=/nonexistent"], {}),
    "two_devices": (["--model=trivial", *TINY, "--num_gpus=2"], {}),
    "no_compiler": (["--model=trivial", *TINY, "--execution=compile"], {"env": _no_compiler_env()}),
    "unknown_model": (["--model=resnet9000", *TINY], {}),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Future]:
    base = tmp_path_factory.mktemp("torch_runs")
    pool = ThreadPoolExecutor(max_workers=2)
    futures = {name: pool.submit(run_engine, args, base / name, **kw) for name, (args, kw) in RUNS.items()}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


def ok(runs: dict[str, Future], name: str) -> Run:
    run: Run = runs[name].result()
    assert run.rc == 0, run.show()
    assert run.result is not None and run.result.ok, run.show()
    return run


def failed(runs: dict[str, Future], name: str, *needles: str) -> str:
    run: Run = runs[name].result()
    assert run.rc > 0, run.show()
    assert run.result is not None and run.result.status == "failed" and run.result.images_per_sec is None
    reason = run.result.reason or ""
    assert run.stderr.splitlines()[-1] == f"{ERROR_PREFIX} {reason}", run.show()
    for needle in needles:
        assert needle in reason, run.show()
    return reason


def test_log_and_record_are_the_tensorflow_engines(runs: dict[str, Future]) -> None:
    run = ok(runs, "train")
    rec = run.result
    assert rec.framework == "pytorch" and rec.framework_version == torch.__version__
    assert rec.model == "lenet" and rec.batch_size == 2 and len(rec.samples.step_times) == 4
    assert rec.onednn is True and rec.threads["intra_effective"] == len(os.sched_getaffinity(0))
    assert 0 < rec.latency_ms.p50 <= rec.latency_ms.max
    assert rec.details["flags"]["framework"] == "pytorch" and rec.details["flags"]["execution"] == "eager"
    losses = [loss for _, loss in rec.details["losses"]]
    assert len(losses) == 3 and all(np.isfinite(losses)) and losses[-1] < losses[0]  # it learns the fixed batch
    parsed = logparse.parse_log(run.stdout)
    assert parsed.framework == "pytorch" and parsed.tf_version == ".".join(torch.__version__.split(".")[:2])
    assert parsed.model == "lenet" and parsed.mode == "training" and parsed.header["Execution"] == "eager"
    assert parsed.complete and [s.step for s in parsed.steps] == [1, 2, 4]
    assert parsed.total_images_per_sec == pytest.approx(rec.images_per_sec, rel=1e-3)


def test_script_compile_bf16_and_nchw_modes_run(runs: dict[str, Future]) -> None:
    infer = ok(runs, "script_infer").result
    assert infer.details["flags"]["execution"] == "script" and infer.threads["intra_effective"] == 1
    assert "Execution:   script" in ok(runs, "script_infer").stdout
    assert ok(runs, "script_train").result.details["flags"]["optimizer"] == "momentum"
    compiled = ok(runs, "compile")
    assert "Execution:   compile" in compiled.stdout
    for name in RUNS:  # torch.compile's caches and everything else a run made in its temporary folder are gone
        run: Run = runs[name].result()
        assert not list((Path(run.argv[-1].split("=", 1)[1]).parent / "tmp").iterdir()), name
    assert "Precision:   bf16 compute" in ok(runs, "bf16").stdout
    nchw = ok(runs, "nchw")
    assert "Data format: NCHW" in nchw.stdout and nchw.result.details["flags"]["optimizer"] == "rmsprop"


def test_batch_sizes_in_one_process(runs: dict[str, Future]) -> None:
    run: Run = runs["batch_sizes"].result()
    assert run.rc == 0, run.show()
    folder = Path(run.argv[-1].split("=", 1)[1]).parent
    recs = {b: read_result(folder / f"bs{b}.json") for b in (1, 3)}
    for b, rec in recs.items():
        assert rec is not None and rec.ok and rec.framework == "pytorch" and rec.batch_size == b, run.show()
        assert rec.group == {"batch_sizes": [1, 3], "trace": "per-batch"} and len(rec.samples.step_times) == 3
    # Each size's own wall time; the first one's includes importing torch, so it is the longer.
    walls = [recs[b].timings["wall"] for b in (1, 3)]
    assert all(w > 0 for w in walls) and walls[0] > recs[1].timings["import"] and walls[0] > walls[1], walls
    assert run.stdout.count("PyTorch:") == 2 and run.stdout.count("total images/sec:") == 2


def test_unsupported_runs_fail_with_one_line_naming_the_fix(runs: dict[str, Future]) -> None:
    failed(runs, "real_data", "real data is not supported for pytorch", "leave out --data_dir")
    failed(runs, "two_devices", "--num_gpus=2", "runs one device")
    failed(runs, "no_compiler", "needs a C++ compiler", "--execution=script")
    failed(runs, "unknown_model", "--model=resnet9000: unknown model")


def test_modes_of_the_other_framework_are_refused_at_the_command_line() -> None:
    for args, needle in (
        (["--execution=graph"], "--execution=graph is a tensorflow mode; pytorch runs eager, script, compile"),
        (
            ["--xla_compile"],
            "--xla_compile: XLA is tensorflow's compiler; with --framework=pytorch use --execution=compile",
        ),
    ):
        p = subprocess.run([*ENGINE, *args], cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and p.stderr.strip() == f"{ERROR_PREFIX} {needle}", p.stderr
    with pytest.raises(flagdefs.FlagError) as e:
        flagdefs.parse(["--execution=script"])
    assert str(e.value) == (
        "--execution=script is a pytorch mode; tensorflow runs graph, eager, xla (or add --framework=pytorch)"
    )


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "rmsprop"])
def test_optimizers_and_learning_rate_mean_what_they_mean_in_the_tensorflow_engine(optimizer: str) -> None:
    """The same network with the same weights, trained three steps by each engine's optimizer with weight decay:
    the same losses and the same weights after, so a learning rate (and momentum, decay) means the same in both."""
    import tensorflow as tf

    from tf_cnn_benchmarks.benchmark import Optimizer as TfOptimizer
    from tf_cnn_benchmarks.models import registry
    from tf_cnn_benchmarks.models.network import Network
    from tf_cnn_benchmarks.models.torchnet import TorchNetwork, copy_from_tensorflow
    from tf_cnn_benchmarks.torchbench import Optimizer as TorchOptimizer

    flags = flagdefs.parse(["--framework=pytorch", f"--optimizer={optimizer}", "--learning_rate=0.01",
                            "--weight_decay=0.01", "--momentum=0.9"])  # fmt: skip
    graph = registry.get("lenet").graph()
    rng = np.random.default_rng(3)
    images = rng.standard_normal((4, 28, 28, 3)).astype(np.float32)
    labels = rng.integers(1, 1001, 4)
    tf_net = Network(graph, seed=5)
    pt_net = TorchNetwork(graph, seed=5)
    copy_from_tensorflow(pt_net, tf_net)
    tf_opt = TfOptimizer(optimizer, flags.learning_rate, flags.momentum, tf_net.trainable)
    pt_opt = TorchOptimizer(flags, list(pt_net.decay_parameters()), list(pt_net.other_parameters()))
    tf_losses, pt_losses = [], []
    x_pt, y_pt = torch.from_numpy(images.transpose(0, 3, 1, 2).copy()), torch.from_numpy(labels)
    for _ in range(3):
        with tf.GradientTape() as tape:
            ce = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, tf_net(images, training=True)))
            loss = ce + flags.weight_decay * tf.add_n([tf.nn.l2_loss(v) for v in tf_net.decay_vars])
        grads = tape.gradient(loss, tf_net.trainable)
        for v, g, slots in zip(tf_net.trainable, grads, tf_opt.slots, strict=True):
            tf_opt.update(v, g, *slots)
        tf_losses.append(float(ce))
        pt_opt.zero_grad()
        pt_loss = torch.nn.functional.cross_entropy(pt_net(x_pt), y_pt)
        pt_loss.backward()
        pt_opt.step()
        pt_losses.append(float(pt_loss.detach()))
    assert pt_losses == pytest.approx(tf_losses, rel=1e-4), (pt_losses, tf_losses)
    assert tf_losses[-1] != pytest.approx(tf_losses[0], rel=1e-3)  # the steps did move the weights
    first_kernel = tf_net.weights[min(tf_net.weights)]["kernel"].numpy()  # HWIO
    pt_kernel = list(pt_net.decay_parameters())[0].detach().numpy().transpose(2, 3, 1, 0)
    assert np.abs(first_kernel - pt_kernel).max() <= 1e-4 * np.abs(first_kernel).max()


@pytest.mark.timeout(500)
def test_a_sweep_with_both_frameworks_yields_the_comparison_table_and_plots(tmp_path: Path) -> None:
    """Both frameworks through `cpubench run` (one process per point, as a study runs), then `cpubench report` and
    `cpubench pages`: the records, the classic columns, the TensorFlow-vs-PyTorch table and its plots."""
    from cpubench.render import site as pages
    from cpubench.results import store

    conf = tmp_path / "both.yaml"
    conf.write_text(
        textwrap.dedent("""\
        name: both-frameworks
        repeats: 1
        num_batches: 3
        num_warmup_batches: 1
        batches_per_process: true
        models: {trivial: [1, 2]}
        matrix:
          framework: [tensorflow, pytorch]
          execution: [graph, eager]
          forward_only: true
          num_intra_threads: [1, 2]
        """)
    )
    out = tmp_path / "data"
    env = clean_env(CPUBENCH_NO_TF_PROBE="1", PYTHONPATH=str(REPO))
    env.pop("CPUBENCH_ENGINE", None)
    p = subprocess.run([sys.executable, "-m", "cpubench", "run", "--config", str(conf), "--out", str(out),
                        "--host-id", "both"], env=env, capture_output=True, text=True, timeout=480)  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    assert "2 settings left out of the plan: pytorch has no graph execution" in p.stdout, p.stdout
    recs = store.read_runs(store.host_dir(out, "both")).records
    assert not list(store.scratch_dir(out, "both").iterdir())  # the children's TMPDIR, emptied by the runner
    assert len(recs) == 12 and all(r.ok for r in recs), [(r.setting, r.reason) for r in recs]
    assert {(r.framework, r.params["execution"]) for r in recs} == {
        ("tensorflow", "graph"), ("tensorflow", "eager"), ("pytorch", "eager")}  # fmt: skip
    for r in recs:
        assert r.threads["intra_effective"] == r.params["num_intra_threads"]
        assert (r.framework_version == torch.__version__) == (r.framework == "pytorch")
    files, _ = report.build_report([out], tmp_path / "summary", model_rows=None, plots=True)
    rows = list(csv.DictReader(open(files.csv)))
    assert sorted({row["framework"] for row in rows}) == ["pytorch", "tensorflow"]
    summary = files.summary.read_text()
    assert "## TensorFlow vs PyTorch" in summary
    assert "**syn-parameter_server-1cpus-inference-intra1-pytorch-eager**" in summary  # its classic column
    section = summary.split("## TensorFlow vs PyTorch", 1)[1]
    for batch in (1, 2):
        assert f"-latency-bs{batch}.png" in section and f"-throughput-bs{batch}.png" in section
    for link in re.findall(r"\]\((plots/[^)]+\.png)\)", summary):
        assert (files.summary.parent / link).stat().st_size > 0, link
    built, _study = pages.build_pages([out], tmp_path / "pages")
    page_file = next(p for p in built.pages if p.name == "trivial.md")
    page = page_file.read_text()
    assert "# TensorFlow vs PyTorch" in page and "PyTorch eager" in page
    images = re.findall(r'<img src="\./([^"]+\.png)"', page)
    assert "trivial-frameworks-latency-1.png" in images and "trivial-frameworks-throughput-2.png" in images
    for image in images:
        assert (page_file.parent / image).stat().st_size > 0, image


def test_host_json_records_torch_and_its_thread_pools() -> None:
    """The torch probe runs in a child Python, as the engine does, and reads the pools threadpoolctl finds."""
    from cpubench.host import facts as sysinfo

    info = sysinfo.probe_torch()
    assert info["torch_version"] == torch.__version__ == sysinfo.torch_version_installed()
    assert info["intra_threads"] >= 1 and info["interop_threads"] >= 1 and info["mkldnn_available"] is True
    assert "MKL-DNN" in info["onednn"] or "oneDNN" in info["onednn"]
    assert any(pool["user_api"] == "openmp" for pool in info["threadpools"]), info["threadpools"]
    host = sysinfo.collect_host("h", probe_tf=False)
    assert host.torch_version == torch.__version__ and host.torch_build["probe"] == {"skipped": "not requested"}
