"""The timing loop: warm-up steps, then timed steps, each timed around the call and the fetch of its loss.

Why apart from the log: what was measured (:class:`~tf_cnn_benchmarks.record.Samples`, the losses at the display
steps, the wall time of each phase) is the run's data, and upstream's log is one view of it
(:class:`~tf_cnn_benchmarks.upstreamlog.UpstreamLog`). The loop formats nothing; live output comes from an observer
it calls when a phase starts and after every timed step. Nothing here imports TensorFlow: a step is any callable
that returns the step's loss (or None), so the loop can be driven by fake steps.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tf_cnn_benchmarks import hostfacts
from tf_cnn_benchmarks.record import Samples

STEADY_STEPS = 3  # warm-up is steady when the median of the last 3 steps is within STEADY_TOLERANCE of the 3 before
STEADY_TOLERANCE = 0.05


class StepObserver(Protocol):
    """Told what the loop is doing, as it does it (to print progress live)."""

    def on_warmup(self) -> None:
        """Before the first warm-up step (also called when there are none)."""

    def on_timed(self) -> None:
        """After the last warm-up step, before the first timed step."""

    def on_step(self, i: int, seconds: float, loss: float | None) -> None:
        """After timed step ``i`` (1-based): its wall seconds and its loss."""


@dataclass(frozen=True)
class Measurement:
    """What one run measured."""

    samples: Samples
    losses: tuple[tuple[int, float | None], ...]  # (step, loss) at each display step
    # Wall seconds per phase: setup (start of the run to the start of the build), build (graph construction and the
    # first warm-up step, which traces and compiles), warmup (the other warm-up steps), measured (the timed steps,
    # with the observer's printing), total_in_engine (start of the run to the end of the timed steps).
    timings: dict[str, float]
    # What other processes used during the timed steps (hostfacts.noise_between); None when not measured.
    noise: dict[str, Any] | None = None
    # With a warm-up limit above the minimum: whether the step time settled before the limit; else None.
    warmup_settled: bool | None = None
    # The timed steps' wall-clock start and end (epoch seconds), to tell how concurrent instances' windows overlapped.
    window: tuple[float, float] | None = None
    # The CPU packages' energy over the timed steps (hostfacts.energy_between): joules, or null and why not.
    energy: dict[str, Any] | None = None


def is_display_step(i: int, display_every: int) -> bool:
    """Upstream prints (and we keep the loss of) the first timed step and every ``display_every``-th one."""
    return i == 1 or i % display_every == 0


def steady(times: list[float]) -> bool:
    """Whether warm-up step times have settled: the last few steps' median within 5% of the few before (the first
    step, which traces and compiles, is left out)."""
    t = times[1:]
    if len(t) < 2 * STEADY_STEPS:
        return False
    last = statistics.median(t[-STEADY_STEPS:])
    before = statistics.median(t[-2 * STEADY_STEPS : -STEADY_STEPS])
    return before > 0 and abs(last - before) / before <= STEADY_TOLERANCE


def measure(
    step: Callable[[], float | None],
    *,
    global_batch: int,
    num_warmup: int,
    num_batches: int,
    display_every: int,
    started: float,
    build_started: float,
    observer: StepObserver | None = None,
    after_first_step: Callable[[], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    max_warmup: int = 0,
    num_windows: int = 1,
    min_window_seconds: float = 0.0,
    snapshot: Callable[[], hostfacts.CpuSnapshot] | None = hostfacts.CpuSnapshot.take,
    barrier: Callable[[], float] | None = None,
    wall: Callable[[], float] = time.time,
    energy: Callable[[], hostfacts.EnergyReading] | None = hostfacts.EnergyReading.take,
) -> Measurement:
    """Run at least ``num_warmup`` untimed steps, then ``num_windows`` measured windows of at least ``num_batches``
    timed steps (and at least ``min_window_seconds``) each; return what was measured.

    With ``max_warmup`` above ``num_warmup``, warm-up goes on until the step time is steady (:func:`steady`) or
    ``max_warmup`` steps have run. Several windows in one process are repeats that cost no process start, import
    or graph build (pyperf's "values" within a "process"); each timed step records its window.

    ``started`` and ``build_started`` are ``clock()`` readings taken by the caller at the start of the run and of
    the graph construction, so the phases before the loop are timed on the same clock. ``after_first_step`` runs
    once, after the very first step of either phase (the multi-worker watchdog is cancelled there: the first step
    is the first collective, so the cluster is up). ``snapshot`` reads the machine's CPU time around the timed
    steps, to tell what other processes used meanwhile (None: not measured). ``barrier`` (concurrent instances)
    runs after warm-up and returns the wall-clock time (``wall``) until which every window keeps stepping, so all
    instances time the same window; the measured window's wall-clock start and end are returned either way.
    ``energy`` reads the CPU packages' RAPL counters around the timed steps (None: not read).
    """
    first_pending = after_first_step is not None

    def first_step_done() -> None:
        nonlocal first_pending
        if first_pending:
            first_pending = False
            after_first_step()

    build_end = clock()
    if observer is not None:
        observer.on_warmup()
    warm_start = clock()
    warmup_times: list[float] = []
    limit = max(num_warmup, max_warmup)
    k = 0
    while k < num_warmup or (k < limit and not steady(warmup_times)):
        s = clock()
        step()
        warmup_times.append(clock() - s)
        if k == 0:
            # The first step traces, optimises and compiles the graph: that is build, not warm-up.
            build_end = warm_start = clock()
            first_step_done()
        k += 1
    settled = steady(warmup_times) if max_warmup > num_warmup else None
    warm_end = clock()
    if observer is not None:
        observer.on_timed()
    until = barrier() if barrier is not None else None

    before = snapshot() if snapshot is not None else None
    joules_before = energy() if energy is not None else None
    wall_start = wall()
    timed_start = clock()
    step_times: list[float] = []
    windows: list[int] = []
    losses: list[tuple[int, float | None]] = []
    i = 0
    for w in range(num_windows):
        w_start, n = clock(), 0
        while n < num_batches or clock() - w_start < min_window_seconds or (until is not None and wall() < until):
            i += 1
            n += 1
            s = clock()
            loss = step()
            dt = clock() - s
            step_times.append(dt)
            windows.append(w)
            if is_display_step(i, display_every):
                losses.append((i, loss))
            if observer is not None:
                observer.on_step(i, dt, loss)
            if i == 1:
                first_step_done()
    end = clock()
    wall_end = wall()
    joules = hostfacts.energy_between(joules_before, energy()) if energy is not None and joules_before else None
    noise = hostfacts.noise_between(before, snapshot()) if snapshot is not None and before is not None else None
    timings = {
        "setup": build_started - started,
        "build": build_end - build_started,
        "warmup": warm_end - warm_start,
        "measured": end - timed_start,
        "total_in_engine": end - started,
    }
    samples = Samples(
        global_batch=global_batch,
        step_times=tuple(step_times),
        warmup_times=tuple(warmup_times),
        windows=tuple(windows) if num_windows > 1 else (),
    )
    return Measurement(samples, tuple(losses), timings, noise=noise, warmup_settled=settled,
                       window=(wall_start, wall_end), energy=joules)  # fmt: skip
