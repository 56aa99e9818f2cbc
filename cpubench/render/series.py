"""The colours of a chart's series (its hosts, its batch sizes), so that no two series of one chart share a colour.

Why one place: the report's bars, the roofline and the pages' lines each draw one series per host or per value, and
matplotlib's default cycle has ten colours, then starts again: an eleventh host's bars had the first host's colour,
and the legend could not tell them apart. Up to ten series keep the default cycle (C0-C9, so a chart of few hosts
looks as it always did); up to twenty add the cycle's lighter twins (``tab20``); beyond that, evenly spaced colours
of a continuous map, each distinct.
"""

from __future__ import annotations

from matplotlib import colormaps
from matplotlib.colors import to_hex

_CYCLE = 10  # matplotlib's default cycle: tab10
_TWINS = 20  # tab10 and the lighter twin of each (tab20)


def colours(n: int) -> list[str]:
    """``n`` distinct colours as ``#rrggbb``, the n-th series' colour at index n."""
    if n <= _CYCLE:
        return [to_hex(colormaps["tab10"](i)) for i in range(n)]
    if n <= _TWINS:
        # tab20 holds each tab10 colour followed by its lighter twin: the first ten as the default cycle, then twins.
        order = [2 * i for i in range(_CYCLE)] + [2 * i + 1 for i in range(n - _CYCLE)]
        return [to_hex(colormaps["tab20"](i)) for i in order]
    ramp = colormaps["turbo"].resampled(n)
    return [to_hex(ramp(i)) for i in range(n)]
