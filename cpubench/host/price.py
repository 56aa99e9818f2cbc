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


def check(per_hour: float) -> float:
    """A price per hour must be a finite number above 0 (ValueError with the fix otherwise)."""
    if not (isinstance(per_hour, (int, float)) and math.isfinite(per_hour) and per_hour > 0):
        raise ValueError(f"--price-per-hour={per_hour}: must be a number above 0 (dollars per hour)")
    return float(per_hour)


def with_price(host: HostRecord, previous: HostRecord | None, per_hour: float | None) -> HostRecord:
    """``host`` with the price given now, else the one ``previous`` recorded (a rerun without the option keeps it)."""
    if per_hour is not None:
        given = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return replace(host, price={"per_hour": check(per_hour), "currency": CURRENCY, "given": given})
    if previous is not None and previous.price:
        return replace(host, price=previous.price)
    return host
