"""How sure a comparison of two hosts is: a bootstrap confidence interval for the ratio of their median images/sec.

Why: a table that says host A runs resnet50 at 1.03x host B invites the reader to call A faster, when three
repeats on each side may not tell them apart at all. Each repeat is one engine process (one record's
``images_per_sec``), so the repeats are the independent samples; resampling each host's repeats with replacement
and taking the ratio of medians each time gives the spread of the ratio those repeats support. The interval is the
2.5th to 97.5th percentile of the resampled ratios (a 95% percentile interval, read as the outer order statistics,
so never narrower than the resamples allow). A fixed seed makes a report of the same data print the same intervals
every time.

The interval answers the same question whichever host is the baseline: swapping the two sides gives exactly the
inverse ratio, the inverse interval and the opposite verdict (``cpubench compare A B`` and ``--baseline-last`` never
disagree). That is why each side's resamples come from a stream of its own role-free draws, used once as numerator
and once as denominator (see :func:`ratio_of_medians`), and why the percentiles are taken of log ratios.

With fewer than MIN_REPEATS (3) repeats on a side the result has no interval, and says so (never an interval that
would look like certainty): a bootstrap of two values can only return their range, and two hosts that run alike
have their two repeats each fall wholly apart one time in three, which that interval would call faster or slower.
How a ratio reads in a table (``1.32 [1.25–1.40]``, ``≈1.02 [...]``, ``1.02 (n=2)``) is
:func:`cpubench.render.tables.ratio_ci_text`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

RESAMPLES = 2000
CONFIDENCE = 0.95
SEED = 20250301  # fixed: the same repeats give the same interval in every report
# Fewer on either side: no interval. With 2 a side the percentile interval is the range of the possible ratios, and it
# excludes 1.00 whenever the two pairs do not overlap: one time in three for two hosts that run alike.
MIN_REPEATS = 3


def method_text(resamples: int = RESAMPLES, confidence: float = CONFIDENCE) -> str:
    """How the interval is made, in the words the report and ``cpubench compare`` print."""
    return (
        f"bootstrap of the ratio of medians over process repeats, {resamples} resamples, "
        f"{100 * confidence:.0f}% percentile interval"
    )


METHOD = method_text()

FASTER = "faster"
SLOWER = "slower"
NOT_SIGNIFICANT = "not significant"
NO_INTERVAL = "no interval"


@dataclass(frozen=True)
class RatioCI:
    """The ratio median(A) / median(B) of images/sec and its bootstrap interval (None when a side has fewer than
    MIN_REPEATS repeats)."""

    ratio: float
    low: float | None
    high: float | None
    n_a: int
    n_b: int
    resamples: int = RESAMPLES
    confidence: float = CONFIDENCE

    @property
    def method(self) -> str:
        return method_text(self.resamples, self.confidence)

    @property
    def known(self) -> bool:
        """Whether there is an interval (both sides had at least MIN_REPEATS repeats)."""
        return self.low is not None and self.high is not None

    @property
    def significant(self) -> bool:
        """The interval excludes 1.00: the repeats tell the two hosts apart."""
        if self.low is None or self.high is None:
            return False
        return self.low > 1.0 or self.high < 1.0

    @property
    def verdict(self) -> str:
        """``faster`` / ``slower`` (A against B, significant), ``not significant``, or ``no interval``.

        The side of 1.00 the interval lies on decides, not the point ratio: the two always agree in the text."""
        if self.low is None or self.high is None:
            return NO_INTERVAL
        if self.low > 1.0:
            return FASTER
        if self.high < 1.0:
            return SLOWER
        return NOT_SIGNIFICANT

    def to_dict(self) -> dict[str, Any]:
        return {
            "ratio": self.ratio,
            "low": self.low,
            "high": self.high,
            "significant": self.significant,
            "verdict": self.verdict,
            "n_a": self.n_a,
            "n_b": self.n_b,
            "resamples": self.resamples,
            "confidence": self.confidence,
            "method": self.method,
        }


def _log_medians(x: np.ndarray, stream: int, draws: int, seed: int) -> np.ndarray:
    """log of the median of ``draws`` resamples (with replacement) of ``x``, from index stream ``stream``.

    The draws depend on the seed, the stream and the sample size only, never on the values or on which side of the
    ratio ``x`` is: so scaling a side scales every resample, and swapping the sides swaps whole streams."""
    idx = np.random.default_rng([seed, stream]).integers(0, x.size, size=(draws, x.size))
    return np.log(np.median(x[idx], axis=1))


def _positive_finite(values: Sequence[float]) -> np.ndarray | None:
    """The values as floats, or None when one is not a positive finite number (no images/sec a run can have)."""
    x = np.asarray([float(v) for v in values], dtype=float)
    if x.size == 0 or not bool(np.all(np.isfinite(x))) or bool(np.any(x <= 0)):
        return None
    return x


def ratio_of_medians(
    a: Sequence[float], b: Sequence[float], resamples: int = RESAMPLES, seed: int = SEED
) -> RatioCI | None:
    """median(a) / median(b) with its bootstrap percentile interval; None when a side is empty, holds a value that is
    not a positive finite number, or the ratio is beyond a float.

    ``a`` and ``b`` are per-repeat images/sec (one value per engine process); the median of an even count is the mean
    of the middle two, as the report's cells take it. Each side is resampled with replacement, independently of the
    other, and the ratio of the resampled medians is taken each time. Half the resamples pair stream 1 of ``a`` with
    stream 2 of ``b``, the other half stream 2 of ``a`` with stream 1 of ``b``: within each half the sides are
    independent, and ``ratio_of_medians(b, a)`` draws the very same resamples, so its log ratios are exactly these
    negated. The interval's ends are the outer order statistics at 2.5% and 97.5% of the sorted log ratios, mirror
    images of each other, and the verdict is read from them before they are turned back into ratios.
    """
    xa, xb = _positive_finite(a), _positive_finite(b)
    if xa is None or xb is None:
        return None
    ratio = float(np.median(xa)) / float(np.median(xb))
    if not math.isfinite(ratio) or ratio <= 0:
        return None
    if xa.size < MIN_REPEATS or xb.size < MIN_REPEATS:
        return RatioCI(ratio, None, None, int(xa.size), int(xb.size), resamples)
    half = max(1, resamples // 2)
    logs = np.concatenate(
        [
            _log_medians(xa, 1, half, seed) - _log_medians(xb, 2, half, seed),
            _log_medians(xa, 2, half, seed) - _log_medians(xb, 1, half, seed),
        ]
    )
    logs.sort()
    tail = (1.0 - CONFIDENCE) / 2.0
    k = max(0, math.ceil(round(logs.size * tail, 9)) - 1)  # the 2.5% order statistic (its mirror is the 97.5% one)
    lo, hi = float(logs[k]), float(logs[logs.size - 1 - k])
    return RatioCI(ratio, _end(lo), _end(hi), int(xa.size), int(xb.size), 2 * half)


def _end(log_ratio: float) -> float:
    """An end of the interval as a ratio, on the same side of 1.00 as its log is of 0 (exp may round a log ratio of
    1e-17 to exactly 1.0, which would put a significant end on 1.00 and make the text contradict the verdict)."""
    r = math.exp(log_ratio)
    if log_ratio > 0 and r <= 1.0:
        return math.nextafter(1.0, math.inf)
    if log_ratio < 0 and r >= 1.0:
        return math.nextafter(1.0, 0.0)
    return r
