"""The exact optimizer of ``cpubench tune`` against brute force, on small random profiles where latencies tie often.

Why brute force: the optimizer's whole claim is exactness (Packrat's float-matching recovery returns invalid
splits on ties), so every answer is checked against plain enumeration of every multiset of profiled points, and
every returned split is checked for feasibility on its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpubench.tune.optimizer import (
    REL_TOL,
    Instance,
    Profile,
    Split,
    make_split,
    max_throughput,
    min_latency,
)

Point = tuple[int, int]


def multisets(points: list[Point], cores: int, batch: int) -> Iterator[list[Point]]:
    """Every multiset of ``points`` with sum of threads <= cores and sum of batches == batch."""

    def walk(start: int, cores_left: int, batch_left: int, chosen: list[Point]) -> Iterator[list[Point]]:
        if batch_left == 0:
            yield list(chosen)
            return
        for i in range(start, len(points)):
            t, b = points[i]
            if t <= cores_left and b <= batch_left:
                chosen.append(points[i])
                yield from walk(i, cores_left - t, batch_left - b, chosen)
                chosen.pop()

    yield from walk(0, cores, batch, [])


def latency_key(profile: Profile, split: list[Point]) -> tuple:
    """The documented order of min_latency: latency, cores, instances, then the fattest instance list first."""
    fattest_first = sorted(((b, t) for t, b in split), reverse=True)
    return (
        max(profile.latency[p] for p in split),
        sum(t for t, _ in split),
        len(split),
        tuple((-b, -t) for b, t in fattest_first),  # lexicographically greatest list == smallest negated list
    )


def brute_min_latency(profile: Profile, cores: int, batch: int, exact_cores: bool) -> Split | None:
    splits = [
        s for s in multisets(sorted(profile.latency), cores, batch) if not exact_cores or sum(t for t, _ in s) == cores
    ]
    if not splits:
        return None
    return make_split(profile, min(splits, key=lambda s: latency_key(profile, s)))


def brute_max_throughput(
    profile: Profile, cores: int, batch: int, bound: float | None, exact_cores: bool
) -> tuple[float, int] | None:
    """The best throughput and the fewest cores among the splits within REL_TOL of it."""
    bounded = profile.latency if profile.p99 is None else profile.p99
    points = sorted(p for p in profile.latency if bound is None or bounded[p] <= bound)
    splits = [make_split(profile, s) for s in multisets(points, cores, batch)]
    if exact_cores:
        splits = [s for s in splits if s.threads == cores]
    if not splits:
        return None
    top = max(s.throughput for s in splits)
    return top, min(s.threads for s in splits if s.throughput >= top - REL_TOL * top)


def assert_feasible(
    split: Split, profile: Profile, cores: int, batch: int, exact_cores: bool, bound: float | None = None
) -> None:
    assert split.threads == sum(i.threads * i.count for i in split.instances)
    assert split.threads == cores if exact_cores else split.threads <= cores
    assert sum(i.batch * i.count for i in split.instances) == batch == split.batch
    keys = [(i.threads, i.batch) for i in split.instances]
    assert keys == sorted(set(keys)), "instances sorted and merged"
    assert all(i.count >= 1 for i in split.instances)
    assert all(k in profile.latency for k in keys), "every instance is a profiled point"
    assert split.latency_ms == max(profile.latency[k] for k in keys)
    if bound is not None:
        bounded = profile.latency if profile.p99 is None else profile.p99
        assert all(bounded[k] <= bound for k in keys)


VALUES = [1.0, 1.5, 2.0, 3.0, 4.0]  # few values: ties are frequent


@st.composite
def problems(draw: st.DrawFn) -> tuple[Profile, int, int]:
    cores = draw(st.integers(1, 6))
    batch = draw(st.integers(1, 8))
    grid = [(t, b) for t in range(1, 8) for b in range(1, 10)]  # some points lie outside the budget
    density = draw(st.sampled_from([0.2, 0.5, 0.8, 1.0]))  # sparse profiles make infeasibility, dense ones ties
    points = [p for p in grid if draw(st.floats(0, 1)) < density]
    latency = {p: draw(st.sampled_from(VALUES)) for p in points}
    p99 = None
    if draw(st.booleans()):
        p99 = {p: latency[p] + draw(st.sampled_from([0.0, 0.5, 1.0, 2.0])) for p in points}
    return Profile(latency=latency, p99=p99), cores, batch


@settings(max_examples=200, deadline=None)
@given(problems())
def test_min_latency_equals_brute_force(problem: tuple[Profile, int, int]) -> None:
    profile, cores, batch = problem
    results = {}
    for exact in (False, True):
        got = min_latency(profile, cores, batch, exact_cores=exact)
        want = brute_min_latency(profile, cores, batch, exact)
        assert (got is None) == (want is None)
        if got is not None:
            assert_feasible(got, profile, cores, batch, exact)
            assert got == want, "same optimum and the same documented tie-break"
        results[exact] = got
    if results[True] is not None:
        assert results[False] is not None
        assert results[False].latency_ms <= results[True].latency_ms


@settings(max_examples=200, deadline=None)
@given(problems(), st.one_of(st.none(), st.sampled_from([1.0, 2.0, 3.5, 5.0])))
def test_max_throughput_equals_brute_force(problem: tuple[Profile, int, int], bound: float | None) -> None:
    profile, cores, batch = problem
    for exact in (False, True):
        got = max_throughput(profile, cores, batch, latency_bound_ms=bound, exact_cores=exact)
        want = brute_max_throughput(profile, cores, batch, bound, exact)
        assert (got is None) == (want is None)
        if got is not None:
            assert_feasible(got, profile, cores, batch, exact, bound)
            top, fewest_cores = want
            assert got.throughput == pytest.approx(top, rel=1e-12)
            assert got.threads == fewest_cores


def test_one_fat_instance_wins() -> None:
    """Perfect scaling in threads and a fixed cost per instance: one instance on every core is best."""
    latency = {(t, b): 10.0 + 8.0 * b / t for t in range(1, 5) for b in range(1, 9)}
    split = min_latency(Profile(latency), cores=4, batch=8)
    assert split == make_split(Profile(latency), [(4, 8)])
    assert split.instances == (Instance(4, 8, 1),)
    assert split.latency_ms == 26.0


def test_thin_instances_win() -> None:
    """Threads barely help (Packrat's finding for small batches): four one-core instances of two beat one fat one."""
    latency = {(t, b): 2.0 + 4.0 * b / t**0.2 for t in range(1, 5) for b in range(1, 9)}
    profile = Profile(latency)
    split = min_latency(profile, cores=4, batch=8)
    assert split.instances == (Instance(1, 2, 4),)
    assert split.latency_ms == pytest.approx(10.0)
    assert split.latency_ms < latency[(4, 8)]
    best = max_throughput(profile, cores=4, batch=8)
    assert best.throughput >= split.throughput


def test_fewer_cores_when_no_worse() -> None:
    """Extra threads that do not help are left idle: Packrat's every-core rule would be slower here."""
    latency = {(1, 1): 5.0, (2, 2): 6.0, (3, 2): 9.0}
    profile = Profile(latency)
    free = min_latency(profile, cores=3, batch=2)
    exact = min_latency(profile, cores=3, batch=2, exact_cores=True)
    assert free.instances == (Instance(1, 1, 2),) and free.threads == 2 and free.latency_ms == 5.0
    assert exact.instances == (Instance(3, 2, 1),) and exact.latency_ms == 9.0


def test_ties_resolved_by_cores_instances_then_fattest() -> None:
    """Equal latencies everywhere: the fewest cores, then the fewest instances, then the fattest instance first."""
    profile = Profile({(1, 1): 1.0, (1, 2): 1.0, (1, 3): 1.0, (3, 4): 1.0})
    # two cores beat one three-core instance; of the two-core splits, 3+1 is fatter than 2+2
    assert min_latency(profile, cores=4, batch=4).instances == (Instance(1, 1, 1), Instance(1, 3, 1))
    # exactly three cores: one instance beats 1+1+2
    assert min_latency(profile, cores=3, batch=4, exact_cores=True).instances == (Instance(3, 4, 1),)


def test_infeasible_is_none() -> None:
    profile = Profile({(2, 1): 1.0, (1, 3): 1.0})
    assert min_latency(profile, cores=1, batch=2) is None  # (1, 3) overshoots the batch, (2, 1) the cores
    assert min_latency(profile, cores=3, batch=2, exact_cores=True) is None
    assert max_throughput(profile, cores=4, batch=2, latency_bound_ms=0.5) is None
    assert min_latency(Profile({}), cores=4, batch=4) is None


def test_latency_bound_reads_p99() -> None:
    """The bound applies to the tail when the profile has one: a point with a fast average but slow p99 is out."""
    latency = {(1, 1): 1.0, (2, 2): 1.5}
    fast_avg_slow_tail = Profile(latency, p99={(1, 1): 9.0, (2, 2): 2.0})
    assert max_throughput(Profile(latency), cores=2, batch=2).instances == (Instance(1, 1, 2),)
    bounded = max_throughput(fast_avg_slow_tail, cores=2, batch=2, latency_bound_ms=5.0)
    assert bounded.instances == (Instance(2, 2, 1),)


def test_profile_validation() -> None:
    with pytest.raises(ValueError):
        Profile({(0, 1): 1.0})
    with pytest.raises(ValueError):
        Profile({(1, 1): float("nan")})
    with pytest.raises(ValueError):
        Profile({(1, 1): 1.0}, p99={(1, 2): 1.0})
    with pytest.raises(ValueError):
        min_latency(Profile({(1, 1): 1.0}), cores=0, batch=1)


def test_large_budget_is_exact_on_a_structured_profile() -> None:
    """A larger case checked by construction: batch 64 over 16 cores, only (1, 4) and (16, 64) profiled."""
    profile = Profile({(1, 4): 3.0, (16, 64): 7.0, (2, 8): 3.0})
    split = min_latency(profile, cores=16, batch=64)
    assert split.latency_ms == 3.0 and split.threads == 16 and split.batch == 64
    assert split.instances == (Instance(2, 8, 8),)  # 8 instances beat 16 at the same cores
    exact = min_latency(profile, cores=16, batch=64, exact_cores=True)
    assert exact == split
