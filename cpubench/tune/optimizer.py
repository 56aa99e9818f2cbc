"""The exact best split of T cores and a batch B into concurrent instances, from one instance's profile.

Why this exists: one "fat" instance on every core is rarely the fastest way to serve a batch on a CPU; several
"thin" instances, each on its own cores with its own share of the batch, often are (Packrat, msr-fiddle/packrat).
Packrat's optimizer answers with an O(T^2 B^2) Python loop, insists that every core is used, and recovers the split
by matching floats, which returns invalid splits when two profiled latencies tie. This module answers exactly, fast,
and recovers every split from integer predecessor tables (back-pointers), never by comparing latencies.

The problem: a profile gives L(t, b), the latency (ms) of one instance with ``t`` threads on a batch of ``b``. A split
is a multiset of profiled points (t_i, b_i) with sum t_i <= T (``exact_cores``: == T, Packrat's rule) and
sum b_i == B, all instances running concurrently.

- :func:`min_latency` minimises the slowest instance's latency, max_i L(t_i, b_i). Ties are broken
  deterministically, in this order: fewer cores used, then fewer instances, then the instance list sorted by
  (batch, threads) descending that is lexicographically greatest ("the fattest instance first").
- :func:`max_throughput` maximises sum_i b_i / L(t_i, b_i) (images per second), every instance's latency (its p99
  when the profile has one, else its average) within an optional bound. Throughputs within a relative
  :data:`REL_TOL` of the best count as tied; ties go to fewer cores, then to the DP's fixed scan order.

Both return None when no split is feasible. Pure: numpy and the standard library only, nothing of cpubench, so the
same code serves the CLI, the report and the tests.

Algorithms (T cores, B batch, P <= T*B profiled points within the budget):

- min_latency, cores <= T: binary search over the sorted distinct latencies (log P steps) of the question "can B be
  covered exactly by points of latency <= lam using at most T threads?". For a given lam each batch size b costs its
  cheapest allowed thread count t_min(b, lam), so the question is a one-dimensional unbounded knapsack over the batch
  (min threads to cover beta exactly), O(B * nb) per step, numpy-vectorised over the nb batch sizes. The final step
  minimises cores*(B+1)+instances and keeps back-pointers. A more-thread variant of a batch size never helps: it only
  costs cores at no gain in latency, so the cheapest is the only one a minimal split uses.
- min_latency, cores == T: thread counts can no longer be chosen freely (idle threads are not allowed, and a
  thread count can be raised only where a profiled point exists), so the question becomes two-dimensional: is
  (T, B) reachable as a sum of allowed points? Reachability with exactly tau threads is computed row by row,
  R[tau] = OR_t (R[tau - t] sumset A[t]), each sumset a convolution done by FFT: O(T^2 B + T B log B) per step.
  The lower end of the search is the cores <= T optimum. At the optimum, boolean layers "reachable with exactly k
  instances" (one 2-D FFT convolution each) give the fewest instances and the predecessor table for recovery.
  The FFT only decides which integer cells are reachable (counts of 0/1 products, thresholded at 0.5, far from any
  rounding): no latency is ever compared for equality.
- max_throughput: DP over (threads used exactly, batch covered), best[tau][beta] = max over points (t, b) of
  best[tau - t][beta - b] + b / L(t, b), threads outermost, vectorised over the batch with numpy (a max-plus
  convolution per (tau, t)): O(T^2 * B * nb). The answer is the best over tau <= T (or tau == T).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

#: Relative tolerance under which two throughputs (float sums, whose rounding depends on the order of addition)
#: count as tied in :func:`max_throughput`.
REL_TOL = 1e-9

_BIG = 1 << 60  # an unreachable cost in the integer DP (never overflows int64 when a point's cost is added)

#: The most cores a split is sought for: the most threads cpubench's sweep axes take.
MAX_CORES = 4096
#: The largest batch a split is sought for: past any batch one CPU inference instance serves, and what keeps a
#: profile's point (a forged or mistyped record) from sizing the tables.
MAX_BATCH = 1 << 16
#: The most cells of one (cores + 1) x (batch + 1) table: :func:`max_throughput` keeps about six such float64 and
#: int64 tables (about 200 MiB at this bound), :func:`min_latency` two. Beyond it a budget is refused before any
#: table is allocated (:func:`largest_batch` is the largest batch a core count allows).
MAX_CELLS = 1 << 22
#: The most elements of one temporary in :func:`_max_plus` (32 MiB of float64): wider sums are taken in row blocks.
_CHUNK = 1 << 22


@dataclass(frozen=True)
class Profile:
    """One instance's batch latency (ms) per (threads, batch) point; optionally its p99 (ms).

    Only the points given exist: the optimizer never interpolates, because a split is only as good as the
    measurements it is made of. ``p99``, when given, must cover the same points; it bounds
    :func:`max_throughput`'s latency constraint (a tail bound is what a service promises).
    """

    latency: Mapping[tuple[int, int], float]
    p99: Mapping[tuple[int, int], float] | None = None

    def __post_init__(self) -> None:
        for name, table in (("latency", self.latency), ("p99", self.p99)):
            if table is None:
                continue
            for (threads, batch), value in table.items():
                if not (isinstance(threads, int | np.integer) and isinstance(batch, int | np.integer)):
                    raise ValueError(f"{name}: point ({threads!r}, {batch!r}) is not a pair of integers")
                if threads < 1 or batch < 1:
                    raise ValueError(f"{name}: point ({threads}, {batch}) needs threads >= 1 and batch >= 1")
                if not (np.isfinite(value) and value > 0):
                    raise ValueError(f"{name}: point ({threads}, {batch}) has latency {value!r}, not a positive number")
        if self.p99 is not None and set(self.p99) != set(self.latency):
            raise ValueError("p99 must cover exactly the points of latency")


@dataclass(frozen=True)
class Instance:
    """``count`` concurrent instances, each running ``batch`` inputs on ``threads`` cores of its own."""

    threads: int
    batch: int
    count: int


@dataclass(frozen=True)
class Split:
    """A split of the cores and the batch into concurrent instances, with what the profile expects of it."""

    instances: tuple[Instance, ...]  # sorted, merged by (threads, batch)
    latency_ms: float  # the slowest instance's profiled latency
    throughput: float  # sum of batch / latency_s over all instances (images/sec)
    threads: int  # cores used (sum of threads*count)

    @property
    def batch(self) -> int:
        """The batch the split serves (sum of batch*count)."""
        return sum(i.batch * i.count for i in self.instances)

    @property
    def instance_count(self) -> int:
        """How many concurrent instances (processes) the split runs."""
        return sum(i.count for i in self.instances)


def make_split(profile: Profile, points: Iterable[tuple[int, int]]) -> Split:
    """The split made of these (threads, batch) points (one per instance), its figures read from ``profile``.

    Public so that callers (the fat and thin baselines, the tests' brute force) price a split the same way.
    """
    counts = Counter((int(t), int(b)) for t, b in points)
    if not counts:
        raise ValueError("a split needs at least one instance")
    instances = tuple(Instance(t, b, n) for (t, b), n in sorted(counts.items()))
    latency = max(profile.latency[(i.threads, i.batch)] for i in instances)
    throughput = sum(i.count * i.batch * 1000.0 / profile.latency[(i.threads, i.batch)] for i in instances)
    threads = sum(i.threads * i.count for i in instances)
    return Split(instances=instances, latency_ms=float(latency), throughput=float(throughput), threads=threads)


def largest_batch(cores: int) -> int:
    """The largest batch a split over ``cores`` may serve: :data:`MAX_BATCH`, or less where the tables would
    exceed :data:`MAX_CELLS`."""
    return min(MAX_BATCH, MAX_CELLS // (cores + 1) - 1)


def _check_budget(cores: int, batch: int) -> None:
    if cores < 1 or batch < 1:
        raise ValueError(f"cores and batch must be >= 1 (got cores={cores}, batch={batch})")
    if cores > MAX_CORES or batch > largest_batch(min(cores, MAX_CORES)):
        raise ValueError(f"cores={cores}, batch={batch}: over the tables' bound (at most {MAX_CORES} cores, "
                         f"{MAX_BATCH} batch, {MAX_CELLS} cells)")  # fmt: skip


def _grid(table: Mapping[tuple[int, int], float], cores: int, batch: int) -> np.ndarray:
    """``table`` as a (cores+1, batch+1) array indexed [t, b]; +inf where no point is profiled (and row/column 0)."""
    grid = np.full((cores + 1, batch + 1), np.inf)
    for (t, b), value in table.items():
        if t <= cores and b <= batch:
            grid[t, b] = value
    return grid


def _fast_len(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n: FFT lengths with only small factors are fast."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


# --- min_latency, cores <= T ----------------------------------------------------------------------------------------


def _cheapest_threads(allowed: np.ndarray) -> np.ndarray:
    """t_min[b]: the fewest threads of an allowed point with batch b; 0 where batch b has no allowed point."""
    has = allowed.any(axis=0)
    return np.where(has, allowed.argmax(axis=0), 0)


def _min_cost_cover(t_min: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Unbounded knapsack: cost[beta] = min cores*(B+1)+instances covering beta exactly; choice[beta] = last batch.

    Items are tried in descending batch order and np.argmin keeps the first minimum, so among equal costs the
    largest batch is chosen: following the back-pointers then yields the lexicographically greatest descending
    instance list among the cheapest splits (each step takes the largest batch of any cheapest completion).
    """
    stride = batch + 1
    batches = np.nonzero(t_min)[0][::-1]  # descending, all >= 1
    weights = t_min[batches].astype(np.int64) * stride + 1
    ascending = batches[::-1]
    n_valid = np.searchsorted(ascending, np.arange(batch + 1), side="right")  # how many batch sizes <= beta
    n_items = len(batches)
    cost = np.full(batch + 1, _BIG, dtype=np.int64)
    cost[0] = 0
    choice = np.zeros(batch + 1, dtype=np.int64)
    for beta in range(1, batch + 1):
        first = n_items - int(n_valid[beta])
        if first == n_items:
            continue
        sizes = batches[first:]
        cand = cost[beta - sizes] + weights[first:]
        j = int(cand.argmin())
        if cand[j] < _BIG:
            cost[beta] = cand[j]
            choice[beta] = sizes[j]
    return cost, choice


def _free_cores_feasible(grid: np.ndarray, lam: float, cores: int, batch: int) -> bool:
    cost, _ = _min_cost_cover(_cheapest_threads(grid <= lam), batch)
    return bool(cost[batch] < _BIG and cost[batch] // (batch + 1) <= cores)


# --- min_latency, cores == T ----------------------------------------------------------------------------------------


def _exact_cores_feasible(allowed: np.ndarray, cores: int, batch: int) -> bool:
    """Is (cores, batch) a sum of allowed points? Rows of exact-thread reachability, each a sum of FFT convolutions.

    R[tau][beta] = "beta is covered with exactly tau threads"; R[tau] = OR over t of (R[tau - t] sumset A[t]). Rows
    are thresholded to 0/1 before their transform is kept, so rounding never accumulates; the largest convolution
    value is at most T*(B+1), far below where float64 FFT rounding could move a cell across 0.5.
    """
    n = _fast_len(2 * batch + 1)
    spectra_a = np.fft.rfft(allowed[1:].astype(np.float64), n, axis=1)  # row i is t = i + 1
    spectra_r = np.empty((cores + 1, n // 2 + 1), dtype=np.complex128)
    spectra_r[0] = 1.0  # R[0] = {0}: the transform of a unit impulse
    live = np.zeros(cores + 1, dtype=bool)
    live[0] = True
    for tau in range(1, cores + 1):
        ts = np.nonzero(live[tau - 1 :: -1][:tau] & allowed[1 : tau + 1].any(axis=1))[0]  # t - 1 for useful t
        if len(ts) == 0:
            continue
        total = np.einsum("ij,ij->j", spectra_r[tau - 1 - ts], spectra_a[ts])
        row = np.fft.irfft(total, n)[: batch + 1] > 0.5
        if tau == cores:
            return bool(row[batch])
        if row.any():
            live[tau] = True
            spectra_r[tau] = np.fft.rfft(row.astype(np.float64), n)
    return False


def _exact_cores_points(allowed: np.ndarray, cores: int, batch: int) -> list[tuple[int, int]] | None:
    """The fewest-instance split of exactly (cores, batch) into allowed points, fattest instance first.

    Layer k = cells reachable with exactly k instances (each layer one 2-D FFT convolution with the allowed
    points, thresholded). The first layer that reaches (T, B) gives the fewest instances; walking back through the
    layers, each step takes the greatest (batch, threads) point whose remainder the previous layer reaches.
    """
    shape = (_fast_len(2 * cores + 1), _fast_len(2 * batch + 1))
    spectrum_a = np.fft.rfft2(allowed.astype(np.float64), shape)
    layer = np.zeros((cores + 1, batch + 1), dtype=bool)
    layer[0, 0] = True
    layers = [layer]
    for _ in range(min(cores, batch)):
        spectrum = np.fft.rfft2(layers[-1].astype(np.float64), shape) * spectrum_a
        layer = np.fft.irfft2(spectrum, shape)[: cores + 1, : batch + 1] > 0.5
        layers.append(layer)
        if layer[cores, batch] or not layer.any():
            break
    if not layers[-1][cores, batch]:
        return None
    points: list[tuple[int, int]] = []
    tau, beta = cores, batch
    for k in range(len(layers) - 1, 0, -1):
        previous = layers[k - 1]
        # ok[t - 1, b - 1]: point (t, b) is allowed and the remainder (tau - t, beta - b) has k - 1 instances
        ok = allowed[1 : tau + 1, 1 : beta + 1] & previous[tau - 1 :: -1, beta - 1 :: -1]
        columns = np.nonzero(ok.any(axis=0))[0]
        b = int(columns[-1]) + 1
        t = int(np.nonzero(ok[:, b - 1])[0][-1]) + 1
        points.append((t, b))
        tau, beta = tau - t, beta - b
    assert (tau, beta) == (0, 0), "predecessor walk must end at the origin"
    return points


# --- the public API -------------------------------------------------------------------------------------------------


def _search(values: np.ndarray, feasible: Callable[[float], bool]) -> float | None:
    """The smallest value in sorted ``values`` for which the monotone ``feasible`` holds; None if none does."""
    if len(values) == 0 or not feasible(values[-1]):
        return None
    lo, hi = 0, len(values) - 1  # feasible(values[hi]) holds
    while lo < hi:
        mid = (lo + hi) // 2
        if feasible(values[mid]):
            hi = mid
        else:
            lo = mid + 1
    return float(values[lo])


def min_latency(profile: Profile, cores: int, batch: int, exact_cores: bool = False) -> Split | None:
    """The split of ``batch`` over at most ``cores`` threads (exactly ``cores`` with ``exact_cores``) whose slowest
    instance is fastest; None when no split of profiled points covers the batch within the cores.

    Ties: fewer cores, then fewer instances, then the fattest instance first (see the module docstring).
    ``exact_cores=False`` is never worse than ``exact_cores=True`` (Packrat's rule), since it allows more splits.
    """
    _check_budget(cores, batch)
    grid = _grid(profile.latency, cores, batch)
    values = np.unique(grid[np.isfinite(grid)])
    lam = _search(values, lambda v: _free_cores_feasible(grid, v, cores, batch))
    if lam is None:
        return None
    if not exact_cores:
        t_min = _cheapest_threads(grid <= lam)
        _, choice = _min_cost_cover(t_min, batch)
        points = []
        beta = batch
        while beta > 0:
            b = int(choice[beta])
            points.append((int(t_min[b]), b))
            beta -= b
        return make_split(profile, points)
    # exact cores: the optimum is at least the free-cores one, so the search starts there
    lam_exact = _search(values[values >= lam], lambda v: _exact_cores_feasible(grid <= v, cores, batch))
    if lam_exact is None:
        return None
    points_exact = _exact_cores_points(grid <= lam_exact, cores, batch)
    assert points_exact is not None, "a feasible latency must yield a split"
    return make_split(profile, points_exact)


def _max_plus(
    prev: np.ndarray, sizes: np.ndarray, values: np.ndarray, dense: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """cand[beta] = max_j prev[beta - sizes[j]] + values[j] and the arg size; sizes descending (ties: largest).

    ``dense`` (values indexed by batch, -inf where absent, reversed) selects a strided sliding-window form, which is
    cheaper than a gather when most batch sizes are present.
    """
    batch = len(prev) - 1
    padded = np.concatenate((np.full(batch, -np.inf), prev))
    best = np.empty(batch + 1)
    arg = np.empty(batch + 1, dtype=np.int64)
    # Each beta's maximum is its own, so blocks of beta give the same answer with a bounded temporary.
    step = max(1, _CHUNK // max(1, batch if dense is not None else len(sizes)))
    for lo in range(0, batch + 1, step):
        beta = np.arange(lo, min(batch + 1, lo + step))
        rows = np.arange(len(beta))
        if dense is not None:
            # window[beta, k] = padded[beta + k] = prev[beta - (B - k)]: k = B - b, so k ascending is b descending
            window = np.lib.stride_tricks.sliding_window_view(padded, batch)[beta[0] : beta[-1] + 1]
            sums = window + dense
            k = sums.argmax(axis=1)
            best[beta], arg[beta] = sums[rows, k], batch - k
        else:
            sums = padded[beta[None, :] - sizes[:, None] + batch] + values[:, None]
            j = sums.argmax(axis=0)
            best[beta], arg[beta] = sums[j, rows], sizes[j]
    return best, arg


def max_throughput(
    profile: Profile, cores: int, batch: int, latency_bound_ms: float | None = None, exact_cores: bool = False
) -> Split | None:
    """The split of ``batch`` over at most ``cores`` threads (exactly, with ``exact_cores``) with the most images per
    second, every instance's latency (p99 when profiled, else average) within ``latency_bound_ms``; None when none.

    Throughputs within :data:`REL_TOL` of the best are tied; ties go to fewer cores, then to the DP's scan order
    (fewer threads for the last instance, then its larger batch). Recovered from back-pointers.
    """
    _check_budget(cores, batch)
    grid = _grid(profile.latency, cores, batch)
    bound_grid = grid if profile.p99 is None else _grid(profile.p99, cores, batch)
    allowed = np.isfinite(grid)
    if latency_bound_ms is not None:
        allowed &= bound_grid <= latency_bound_ms
    value = np.where(allowed, 1000.0 * np.arange(batch + 1)[None, :] / np.where(allowed, grid, 1.0), -np.inf)
    items: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = [(np.empty(0, int), np.empty(0), None)]
    for t in range(1, cores + 1):
        sizes = np.nonzero(allowed[t])[0][::-1]
        dense = value[t, :0:-1].copy() if 4 * len(sizes) > batch else None  # k -> b = B - k
        items.append((sizes, value[t, sizes], dense))
    best = np.full((cores + 1, batch + 1), -np.inf)
    best[0, 0] = 0.0
    back_t = np.zeros((cores + 1, batch + 1), dtype=np.int64)
    back_b = np.zeros((cores + 1, batch + 1), dtype=np.int64)
    live = np.zeros(cores + 1, dtype=bool)
    live[0] = True
    for tau in range(1, cores + 1):
        row = best[tau]
        for t in range(1, tau + 1):
            sizes, values, dense = items[t]
            if not live[tau - t] or len(sizes) == 0:
                continue
            cand, arg = _max_plus(best[tau - t], sizes, values, dense)
            better = cand > row
            row[better] = cand[better]
            back_t[tau, better] = t
            back_b[tau, better] = arg[better]
        live[tau] = bool(np.isfinite(row).any())
    totals = best[:, batch]
    if exact_cores:
        tau = cores
        if not np.isfinite(totals[tau]):
            return None
    else:
        top = totals.max()
        if not np.isfinite(top):
            return None
        tau = int(np.nonzero(totals >= top - REL_TOL * abs(top))[0][0])
    points = []
    beta = batch
    while tau > 0 or beta > 0:
        t, b = int(back_t[tau, beta]), int(back_b[tau, beta])
        points.append((t, b))
        tau, beta = tau - t, beta - b
    return make_split(profile, points)
