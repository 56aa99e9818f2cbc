"""The timing loop and upstream's log, apart: fake steps on a fake clock, no TensorFlow.

The loop (tf_cnn_benchmarks.timing) must time and keep, not format; the formatter
(tf_cnn_benchmarks.upstreamlog) must print what ``cpubench.results.logparse`` reads back from upstream's logs, figures
included. The engine runs that check the same on real TensorFlow steps are in test_engine.py.
"""

from __future__ import annotations

import ast
import io
import subprocess
import sys
from pathlib import Path

import pytest

from cpubench.results.logparse import parse_log
from tf_cnn_benchmarks.record import Samples
from tf_cnn_benchmarks.timing import measure
from tf_cnn_benchmarks.upstreamlog import DASHES, Header, UpstreamLog, rate_stats

ENGINE_DIR = Path(__file__).resolve().parents[1] / "tf_cnn_benchmarks"


class FakeClock:
    """A clock that a fake step moves forward by the step's duration."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fake_steps(clock: FakeClock, seconds: list[float], losses: list[float]):
    """A step function: the i-th call takes seconds[i] and returns losses[i]."""
    calls = iter(zip(seconds, losses, strict=True))

    def step() -> float:
        dt, loss = next(calls)
        clock.now += dt
        return loss

    return step


class Recorder:
    """An observer that remembers the calls, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def on_warmup(self) -> None:
        self.calls.append(("warmup",))

    def on_timed(self) -> None:
        self.calls.append(("timed",))

    def on_step(self, i: int, seconds: float, loss: float | None) -> None:
        self.calls.append(("step", i, seconds, loss))


HEADER = Header(
    tf_version="2.21.0",
    model="resnet50",
    dataset="imagenet (synthetic)",
    mode="training",
    global_batch=64,
    batch=32,
    num_batches=12,
    num_epochs=12 * 64 / 1281167,
    devices=["/cpu:0", "/cpu:1"],
    data_format="NHWC",
    optimizer="sgd",
    variables="replicated",
    all_reduce="reduce_to_one_device",
)


# -- the loop -----------------------------------------------------------------------------------------------------
def test_measure_times_warmup_then_steps_and_keeps_display_losses():
    clock = FakeClock()
    warm = [3.0, 0.5]
    timed = [0.25, 0.5, 0.25, 1.0, 0.5]
    timed_losses = [7.0, 6.0, 5.0, 4.0, 3.0]
    step = fake_steps(clock, warm + timed, [9.0, 8.0, *timed_losses])
    firsts: list[float] = []
    rec = Recorder()
    started, build_started = 90.0, 95.0
    m = measure(
        step,
        global_batch=16,
        num_warmup=2,
        num_batches=5,
        display_every=2,
        started=started,
        build_started=build_started,
        observer=rec,
        after_first_step=lambda: firsts.append(clock.now),
        clock=clock,
    )
    assert m.samples == Samples(global_batch=16, step_times=tuple(timed), warmup_times=tuple(warm))
    assert m.losses == ((1, 7.0), (2, 6.0), (4, 4.0))
    assert m.samples.images_per_sec == 16 * 5 / sum(timed)
    assert firsts == [103.0]  # once, right after the first (tracing) warm-up step
    # build: from build_started to the end of the first warm-up step; warmup: the other warm-up steps.
    assert m.timings == {
        "setup": 5.0,
        "build": 103.0 - 95.0,
        "warmup": 0.5,
        "measured": sum(timed),
        "total_in_engine": 100.0 + sum(warm) + sum(timed) - 90.0,
    }
    assert rec.calls == [
        ("warmup",),
        ("timed",),
        *[("step", i, dt, loss) for i, (dt, loss) in enumerate(zip(timed, timed_losses, strict=True), start=1)],
    ]


def test_measure_without_warmup_still_runs_the_first_step_hook():
    """The multi-worker watchdog is cancelled after the first step: without warm-up that is the first timed one."""
    clock = FakeClock()
    firsts: list[int] = []
    rec = Recorder()
    m = measure(
        fake_steps(clock, [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]),
        global_batch=1,
        num_warmup=0,
        num_batches=3,
        display_every=10,
        started=100.0,
        build_started=100.0,
        observer=rec,
        after_first_step=lambda: firsts.append(len(rec.calls)),
        clock=clock,
    )
    assert firsts == [3]  # after warmup, timed and step 1
    assert m.samples.warmup_times == () and m.timings["build"] == 0.0 and m.timings["warmup"] == 0.0
    assert m.losses == ((1, 1.0),)


# -- the log -----------------------------------------------------------------------------------------------------
def test_upstream_log_from_fake_steps_parses_back():
    out = io.StringIO()
    log = UpstreamLog(global_batch=64, display_every=5, out=out)
    log.header(HEADER)
    log.line("Generating training model")
    clock = FakeClock()
    timed = [0.5, 0.25, 0.5, 0.5, 0.25, 0.5, 0.4, 0.5, 0.5, 0.8, 0.5, 0.5]
    losses = [7.0 - 0.1 * i for i in range(len(timed) + 1)]
    m = measure(
        fake_steps(clock, [2.0, *timed], losses),
        global_batch=64,
        num_warmup=1,
        num_batches=len(timed),
        display_every=5,
        started=100.0,
        build_started=100.0,
        observer=log,
        clock=clock,
    )
    log.skipped(0)  # nothing skipped: no line
    log.total(m.samples)
    text = out.getvalue()
    lines = text.splitlines()

    parsed = parse_log(text)
    assert parsed.tf_version == "2.21" and parsed.model == "resnet50"
    assert (parsed.batch_size_global, parsed.batch_size_per_device) == (64, 32)
    assert parsed.num_batches == 12 and parsed.devices == ["/cpu:0", "/cpu:1"]
    assert parsed.variable_update == "replicated" and parsed.all_reduce == "reduce_to_one_device"
    assert parsed.mode == "training" and parsed.synthetic is True
    assert parsed.complete and parsed.last_error is None and len(parsed.totals) == 1
    assert parsed.total_images_per_sec == round(64 * len(timed) / sum(timed), 2)

    # One progress line per display step: the running mean, stderr and jitter of the per-step rates so far.
    assert [s.step for s in parsed.steps] == [1, 5, 10]
    for s in parsed.steps:
        mean, stderr, jitter = rate_stats([64 / dt for dt in timed[: s.step]])
        assert (s.images_per_sec, s.spread, s.jitter) == (round(mean, 1), round(stderr, 1), round(jitter, 1))
        assert s.loss == pytest.approx(losses[s.step], abs=5e-4)  # losses[0] was the warm-up step's

    # The lines around the steps, in upstream's order.
    i = lines.index("==========")
    assert lines[i + 1 : i + 5] == [
        "Generating training model",
        "Running warm up",
        "Done warm up",
        "Step\tImg/sec\ttotal_loss",
    ]
    assert lines[i + 5] == f"1\timages/sec: {64 / 0.5:.1f} +/- 0.0 (jitter = 0.0)\t{losses[1]:.3f}"
    assert lines[-3:] == [DASHES, f"total images/sec: {m.samples.images_per_sec:.2f}", DASHES]


def test_upstream_log_header_lines():
    assert HEADER.lines() == [
        "TensorFlow:  2.21",
        "Model:       resnet50",
        "Dataset:     imagenet (synthetic)",
        "Mode:        training",
        "SingleSess:  False",
        "Batch size:  64 global",
        "             32 per device",
        "Num batches: 12",
        "Num epochs:  0.00",
        "Devices:     ['/cpu:0', '/cpu:1']",
        "NUMA bind:   False",
        "Data format: NHWC",
        "Optimizer:   sgd",
        "Variables:   replicated",
        "AllReduce:   reduce_to_one_device",
        "==========",
    ]


def test_upstream_log_skipped_images_and_missing_loss():
    out = io.StringIO()
    log = UpstreamLog(global_batch=8, display_every=1, out=out)
    log.on_step(1, 0.5, None)  # --input_only: no loss
    log.skipped(3)
    assert out.getvalue().splitlines() == [
        "1\timages/sec: 16.0 +/- 0.0 (jitter = 0.0)\t0.000",
        "skipped 3 undecodable images (counted, not trained on)",
    ]


# -- what these modules import -----------------------------------------------------------------------------------
def test_engine_package_never_imports_cpubench():
    """The suite imports the engine's modules, never the other way round."""
    offenders = []
    for path in sorted(ENGINE_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "cpubench"]
    assert offenders == []


def test_loop_log_and_result_do_not_import_tensorflow():
    # The result of a bad command line is written before TensorFlow's import; the loop and the log need none.
    code = (
        "import sys; import tf_cnn_benchmarks.timing, tf_cnn_benchmarks.upstreamlog, tf_cnn_benchmarks.result; "
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"


def test_windows_repeat_the_timed_steps_in_one_process_and_each_step_knows_its_window() -> None:
    clock = FakeClock()
    times = [1.0, 0.1, 0.1] + [0.2] * 4 + [0.1] * 4 + [0.4] * 4
    step = fake_steps(clock, times, [1.0] * len(times))
    m = measure(step, global_batch=8, num_warmup=3, num_batches=4, display_every=2, started=clock(),
                build_started=clock(), clock=clock, num_windows=3, snapshot=None)  # fmt: skip
    assert m.samples.windows == (0,) * 4 + (1,) * 4 + (2,) * 4
    assert m.samples.window_rates() == pytest.approx([40.0, 80.0, 20.0])
    assert m.samples.num_windows == 3 and m.noise is None


def test_a_window_runs_at_least_its_minimum_time() -> None:
    clock = FakeClock()
    times = [0.5] + [0.125] * 30
    step = fake_steps(clock, times, [0.0] * len(times))
    m = measure(step, global_batch=1, num_warmup=1, num_batches=3, display_every=10, started=clock(),
                build_started=clock(), clock=clock, num_windows=2, min_window_seconds=1.0, snapshot=None)  # fmt: skip
    # 3 steps are not 1 s: each window goes on to 8 steps (8 x 0.125 s)
    assert m.samples.windows == (0,) * 8 + (1,) * 8


def test_warm_up_goes_on_until_the_step_time_is_steady_or_the_limit() -> None:
    clock = FakeClock()
    # tracing (left out), then steps settling: steady at the 9th step, when the last three steps' median (0.2)
    # is within 5% of the three before's (0.3, 0.2, 0.2 -> 0.2); more steps are left for the timed part
    warm = [3.0, 0.5, 0.4, 0.3, 0.2, 0.2, 0.2, 0.2, 0.2]
    step = fake_steps(clock, warm + [0.2] * 2, [0.0] * (len(warm) + 2))
    m = measure(step, global_batch=1, num_warmup=2, num_batches=2, display_every=10, started=clock(),
                build_started=clock(), clock=clock, max_warmup=20, snapshot=None)  # fmt: skip
    assert len(m.samples.warmup_times) == len(warm) and m.warmup_settled is True
    clock = FakeClock()
    never = [3.0] + [0.1, 0.3] * 5
    step = fake_steps(clock, never + [0.2] * 2, [0.0] * (len(never) + 2))
    m = measure(step, global_batch=1, num_warmup=2, num_batches=2, display_every=10, started=clock(),
                build_started=clock(), clock=clock, max_warmup=len(never), snapshot=None)  # fmt: skip
    assert len(m.samples.warmup_times) == len(never) and m.warmup_settled is False


def test_noise_is_what_others_used_during_the_timed_steps() -> None:
    from tf_cnn_benchmarks.hostfacts import CpuSnapshot

    clock = FakeClock()
    shots = iter([CpuSnapshot(0.0, 100.0, 5.0, 2000.0), CpuSnapshot(2.0, 103.0, 6.0, 2100.0)])
    step = fake_steps(clock, [0.1] * 3, [0.0] * 3)
    m = measure(step, global_batch=1, num_warmup=1, num_batches=2, display_every=10, started=clock(),
                build_started=clock(), clock=clock, snapshot=lambda: next(shots))  # fmt: skip
    assert m.noise is not None
    cpus = m.noise["cpus"]
    # 3 CPU seconds used on the machine, 1 of them ours, over 2 s of a machine with `cpus` CPUs
    assert m.noise["foreign_cpu_s"] == 2.0 and m.noise["foreign_cpu_pct"] == pytest.approx(100 * 2 / (2 * cpus), 0.01)
    assert m.noise["freq_mhz"] == [2000.0, 2100.0]
