"""How sure a comparison of two hosts is: a bootstrap confidence interval for the ratio of their median images/sec.

Why: a table that says host A runs resnet50 at 1.03x host B invites the reader to call A faster, when three
repeats on each side may not tell them apart at all. Each repeat is one engine process (one record's
``images_per_sec``), so the repeats are the independent samples; resampling each host's repeats with replacement
and taking the ratio of medians each time gives the spread of the ratio those repeats support. The interval is the
2.5th to 97.5th percentile of the resampled ratios (a 95% percentile interval). A fixed seed makes a report of the
same data print the same intervals every time.

With fewer than 2 repeats on a side there is nothing to resample: the interval is unknown, and the result says so
(never an interval of width zero that would look like certainty). How a ratio reads in a table
(``1.32 [1.25–1.40]``, ``≈1.02 [...]``, ``1.02 (n=1)``) is :func:`cpubench.render.tables.ratio_ci_text`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

RESAMPLES = 2000
CONFIDENCE = 0.95
SEED = 20250301  # fixed: the same repeats give the same interval in every report
MIN_REPEATS = 2  # fewer on either side: no interval


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
    """The ratio median(A) / median(B) of images/sec and its bootstrap interval (None when a side has < 2 repeats)."""

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
        """``faster`` / ``slower`` (A against B, significant), ``not significant``, or ``no interval``."""
        if not self.known:
            return NO_INTERVAL
        if not self.significant:
            return NOT_SIGNIFICANT
        return FASTER if self.ratio > 1.0 else SLOWER

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


def ratio_of_medians(
    a: Sequence[float], b: Sequence[float], resamples: int = RESAMPLES, seed: int = SEED
) -> RatioCI | None:
    """median(a) / median(b) with its bootstrap percentile interval; None when a side is empty or median(b) <= 0.

    ``a`` and ``b`` are per-repeat images/sec (one value per engine process). Each side is resampled with
    replacement ``resamples`` times, independently, and the ratio of the resampled medians is taken each time.
    """
    xa = np.asarray([float(v) for v in a], dtype=float)
    xb = np.asarray([float(v) for v in b], dtype=float)
    if xa.size == 0 or xb.size == 0:
        return None
    mb = float(np.median(xb))
    if mb <= 0:
        return None
    ratio = float(np.median(xa)) / mb
    if xa.size < MIN_REPEATS or xb.size < MIN_REPEATS:
        return RatioCI(ratio, None, None, int(xa.size), int(xb.size), resamples)
    rng = np.random.default_rng(seed)
    med_a = np.median(xa[rng.integers(0, xa.size, size=(resamples, xa.size))], axis=1)
    med_b = np.median(xb[rng.integers(0, xb.size, size=(resamples, xb.size))], axis=1)
    alpha = 100.0 * (1.0 - CONFIDENCE) / 2.0
    low, high = np.percentile(med_a / med_b, [alpha, 100.0 - alpha])
    return RatioCI(ratio, float(low), float(high), int(xa.size), int(xb.size), resamples)
