"""Properties of the bootstrap interval behind ``cpubench compare`` and the report's relative table
(:mod:`cpubench.analysis.stats`), checked with hypothesis over repeats a host can record, and ``cpubench compare``
run as a user runs it.

What broke before: with 2 repeats a side the percentile interval is the range of the possible ratios, so two hosts
that run alike were called ``faster`` or ``slower`` whenever their two pairs did not overlap (one time in three);
``cpubench compare A B`` and ``--baseline-last`` (A and B swapped) could give different verdicts for the same repeats,
since the two sides drew their resamples in the order they were passed; a NaN, infinite, zero or negative figure
came back as a ratio (``nan [nan–nan]``, ``not significant``) instead of none.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpubench.analysis import stats
from cpubench.render import tables
from cpubench.results import store
from tf_cnn_benchmarks.record import RunRecord

FAST = settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
REL = 1e-9  # float rounding only: every property below is exact up to it

# Images/sec a record can hold (> 0, at most MAX_IMAGES_PER_SEC), kept to a range whose ratios stay far inside a float.
figure = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)
repeats = st.lists(figure, min_size=3, max_size=8)
# Repeats of one host around one speed (a few percent apart), so that verdicts of all three kinds come up.
speed = st.floats(min_value=1.0, max_value=1e4)
jitter = st.lists(st.floats(min_value=0.9, max_value=1.1), min_size=3, max_size=7)
scale = st.floats(min_value=1e-3, max_value=1e3)

OPPOSITE = {stats.FASTER: stats.SLOWER, stats.SLOWER: stats.FASTER, stats.NOT_SIGNIFICANT: stats.NOT_SIGNIFICANT}


def ci_of(a: list[float], b: list[float]) -> stats.RatioCI:
    ci = stats.ratio_of_medians(a, b)
    assert ci is not None and ci.low is not None and ci.high is not None, (a, b, ci)
    return ci


@FAST
@given(s=speed, ja=jitter, jb=jitter, k=st.floats(min_value=0.9, max_value=1.1))
def test_swapping_the_sides_inverts_the_ratio_its_interval_and_the_verdict(
    s: float, ja: list[float], jb: list[float], k: float
) -> None:
    """``compare A B`` and ``compare A B --baseline-last`` must answer alike; before, the first side drew its
    resamples first, so the swapped interval was another one (up to 2.5% apart) and a verdict could flip."""
    a, b = [s * k * x for x in ja], [s * x for x in jb]
    ab, ba = ci_of(a, b), ci_of(b, a)
    assert ba.ratio == pytest.approx(1 / ab.ratio, rel=REL)
    assert ba.low == pytest.approx(1 / ab.high, rel=REL) and ba.high == pytest.approx(1 / ab.low, rel=REL)
    assert ba.verdict == OPPOSITE[ab.verdict], (ab, ba)


def test_a_borderline_verdict_does_not_depend_on_which_host_is_the_baseline() -> None:
    """Repeats where the old code said ``slower`` one way round and ``not significant`` the other."""
    a = [97.3, 98.2, 99.9, 96.7]
    b = [98.4, 103.5, 99.7, 102.7, 103.3]
    assert ci_of(b, a).verdict == OPPOSITE[ci_of(a, b).verdict]


@FAST
@given(a=repeats, b=repeats, c=scale)
def test_the_interval_scales_with_the_data(a: list[float], b: list[float], c: float) -> None:
    """Images/sec in other units (or one host c times faster on every repeat) move the ratio and its interval by c:
    the resamples never depend on the values."""
    base, scaled, both = ci_of(a, b), ci_of([c * x for x in a], b), ci_of([c * x for x in a], [c * x for x in b])
    for got, factor in ((scaled, c), (both, 1.0)):
        assert got.ratio == pytest.approx(factor * base.ratio, rel=REL)
        assert got.low == pytest.approx(factor * base.low, rel=REL)
        assert got.high == pytest.approx(factor * base.high, rel=REL)


@FAST
@given(x=figure, y=figure, n=st.integers(3, 6), m=st.integers(3, 6))
def test_a_constant_sample_gives_a_zero_width_interval(x: float, y: float, n: int, m: int) -> None:
    """Identical repeats leave nothing to resample: the interval is the ratio itself, and its side of 1.00 the
    verdict."""
    ci = ci_of([x] * n, [y] * m)
    assert ci.low == ci.high == pytest.approx(x / y, rel=REL)
    assert ci.verdict == (stats.FASTER if x > y else stats.SLOWER if x < y else stats.NOT_SIGNIFICANT)


@FAST
@given(a=repeats, b=repeats)
def test_the_verdict_reads_the_interval_and_text_json_agree(a: list[float], b: list[float]) -> None:
    """Not significant exactly when the interval holds 1.00; faster / slower exactly when it lies above / below; the
    JSON and the text (``≈`` mark) say the same; the interval lies within what the repeats can give."""
    ci = ci_of(a, b)
    assert ci.low is not None and ci.high is not None
    assert ci.low <= ci.high
    assert (ci.verdict == stats.NOT_SIGNIFICANT) == (ci.low <= 1.0 <= ci.high)
    assert (ci.verdict == stats.FASTER) == (ci.low > 1.0) and (ci.verdict == stats.SLOWER) == (ci.high < 1.0)
    d = ci.to_dict()
    assert (d["verdict"], d["significant"], d["low"], d["high"]) == (ci.verdict, ci.significant, ci.low, ci.high)
    text = tables.ratio_ci_text(ci)
    assert text.startswith(tables.NOT_SIGNIFICANT_MARK) == (ci.verdict == stats.NOT_SIGNIFICANT), text
    assert min(a) / max(b) * (1 - REL) <= ci.low and ci.high <= max(a) / min(b) * (1 + REL)
    assert ci == stats.ratio_of_medians(list(a), list(b))  # the fixed seed: the same repeats, the same interval


@FAST
@given(a=st.lists(figure, min_size=1, max_size=2), b=repeats, swap=st.booleans())
def test_fewer_than_three_repeats_on_a_side_give_no_interval(a: list[float], b: list[float], swap: bool) -> None:
    """One or two repeats cannot support a 95% interval: the ratio is given with ``(n=…)`` and no verdict."""
    ci = stats.ratio_of_medians(*((b, a) if swap else (a, b)))
    assert ci is not None and ci.low is None and ci.high is None and ci.verdict == stats.NO_INTERVAL
    assert tables.ratio_ci_text(ci).endswith(f"(n={len(a)})")


def test_two_alike_pairs_that_do_not_overlap_are_not_called_faster() -> None:
    """Two repeats each, of hosts that run alike, fall wholly apart one time in three; the old interval (the range of
    the possible ratios) then excluded 1.00 and the verdict read ``faster``."""
    ci = stats.ratio_of_medians([100.4, 100.9], [99.6, 100.1])
    assert ci is not None and ci.verdict == stats.NO_INTERVAL and ci.ratio == pytest.approx(100.65 / 99.85)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 0.0, -50.0])
@pytest.mark.parametrize("side", ["a", "b"])
def test_a_figure_no_run_can_have_gives_no_ratio(bad: float, side: str) -> None:
    """A NaN, infinite, zero or negative images/sec is no measurement: no ratio (before: ``nan [nan–nan]`` read as
    not significant, or a ratio of 0.00 read as slower)."""
    good = [50.0, 51.0, 52.0]
    args = (good[:2] + [bad], good) if side == "a" else (good, good[:2] + [bad])
    assert stats.ratio_of_medians(*args) is None


def test_a_ratio_beyond_a_float_gives_no_ratio() -> None:
    """A ratio that overflows is no ratio (before: ``inf [inf–inf]`` read as faster)."""
    assert stats.ratio_of_medians([1e9] * 3, [1e-300] * 3) is None


def test_even_counts_take_the_mean_of_the_middle_two() -> None:
    """The ratio is of the medians the report's cells show (pandas: the mean of the middle two of an even count)."""
    ci = ci_of([1.0, 2.0, 4.0, 10.0], [2.0, 2.0, 2.0])
    assert ci.ratio == pytest.approx(1.5)


def _host(root: Path, host: str, values: list[float]) -> Path:
    folder = store.write_host(root, {"host_id": host, "machine_fingerprint": f"fp-{host}"}).parent
    for r, ips in enumerate(values):
        rec = RunRecord(status="ok", images_per_sec=ips, model="trivial", batch_size=32, num_devices=1,
                        params={"data": "syn", "variable_update": "parameter_server", "device": "cpu",
                                "num_devices": 1}, engine={"name": "tf_cnn_benchmarks", "version": "0.1.0"},
                        host_id=host, setting="syn-parameter_server-1cpus", config_name="test", run_hash="h",
                        repeat=r, started=f"2025-03-01T{r:02d}:00:00+00:00", duration=60.0)  # fmt: skip
        store.append_run(root, rec)
    return folder


def test_compare_with_two_repeats_a_side_says_no_interval(tmp_path: Path) -> None:
    """``cpubench compare`` of two hosts with two repeats each (apart, but alike): before, ``faster`` with an interval
    of 2 repeats; now no interval, and the summary says why."""
    root = tmp_path / "data"
    a, b = _host(root, "box-a", [99.6, 100.1]), _host(root, "box-b", [100.4, 100.9])
    for args in ([str(a), str(b)], [str(a), str(b), "--baseline-last"]):
        p = subprocess.run([sys.executable, "-m", "cpubench", "compare", *args], capture_output=True, text=True,
                           timeout=120, cwd=tmp_path)  # fmt: skip
        assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
        row = next(line for line in p.stdout.splitlines() if line.strip().startswith("trivial"))
        assert row.split()[1:3] == ["no", "interval"] and "(n=2)" in row, p.stdout
        assert "1 without an interval (fewer than 3 ok repeats)" in p.stdout.splitlines()[-1], p.stdout
