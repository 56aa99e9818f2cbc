"""A host's price per hour, given by the user (``cpubench run --price-per-hour X``) and kept in ``host.json``
(``price``: ``per_hour``, ``currency``, ``given``), so the report and ``compare`` can turn images/sec into images per
dollar and dollars per million images.

Why in the host record: a price belongs to the machine (an instance type, a server's amortised cost), not to a run;
given once, it stays with the folder and travels with it. A run without the option keeps the price already recorded;
``cpubench report --prices FILE`` overrides it per host at report time (:mod:`cpubench.analysis.cost`).
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timezone

from cpubench.host.record import HostRecord

CURRENCY = "USD"
# A price per hour outside these is a slip (a price per month, a typo) or a damaged file, never a host's: set against
# it, images per dollar and dollars per million images run to hundreds of digits or to infinity. The bounds are far
# outside any machine's (a spot micro-instance is a fraction of a cent an hour; the largest instances tens of dollars).
MIN_PER_HOUR, MAX_PER_HOUR = 1e-6, 1e6


def plausible(per_hour: object) -> bool:
    """Whether ``per_hour`` can be dollars per hour: a number (not a boolean) within the bounds above."""
    return (
        isinstance(per_hour, (int, float))
        and not isinstance(per_hour, bool)
        and math.isfinite(per_hour)
        and MIN_PER_HOUR <= per_hour <= MAX_PER_HOUR
    )


def check(per_hour: float) -> float:
    """A price per hour must be a finite number above 0 (ValueError with the fix otherwise). A price outside
    :func:`plausible` is still kept (``cpubench run`` validates its flag before the sweep, and this runs mid-sweep,
    where an error would end it); the report shows it as n/a with the reason (:func:`recorded`)."""
    if isinstance(per_hour, bool) or not (
        isinstance(per_hour, (int, float)) and math.isfinite(per_hour) and per_hour > 0
    ):
        raise ValueError(f"--price-per-hour={per_hour}: must be a number above 0 (dollars per hour)")
    return float(per_hour)


def recorded(price: object) -> tuple[float | None, str | None]:
    """A ``host.json`` ``price`` object's dollars per hour, or None and why it cannot be used (None, None: no price
    recorded). Why a reason: a hand-edited or damaged price would otherwise read as "no price", or as a figure in a
    currency the report does not show (every figure is in dollars)."""
    if not isinstance(price, dict) or not price:
        return None, None
    per_hour, currency = price.get("per_hour"), price.get("currency", CURRENCY)
    if not plausible(per_hour):
        return None, (f"host.json's price per_hour {repr(per_hour)[:40]} is not dollars per hour (a number from "
                      f"{MIN_PER_HOUR:g} to {MAX_PER_HOUR:g}): give `cpubench run --price-per-hour X` or "
                      "`cpubench report --prices FILE`")  # fmt: skip
    if currency != CURRENCY:
        return None, (f"host.json's price is in {repr(currency)[:40]}, not {CURRENCY} (every cost figure is in "
                      f"dollars): give the price in {CURRENCY} with `cpubench report --prices FILE`")  # fmt: skip
    return float(per_hour), None


def with_price(host: HostRecord, previous: HostRecord | None, per_hour: float | None) -> HostRecord:
    """``host`` with the price given now, else the one ``previous`` recorded (a rerun without the option keeps it)."""
    if per_hour is not None:
        given = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return replace(host, price={"per_hour": check(per_hour), "currency": CURRENCY, "given": given})
    if previous is not None and previous.price:
        return replace(host, price=previous.price)
    return host
