"""The report's "Cost and energy" section: per setting and model, each host's images per dollar, dollars per million
images and joules per image (:mod:`cpubench.analysis.cost` computes; this module only writes Markdown).

Why only where there is something to say: folders written before prices and energy readings existed must render
as they always did; a folder whose runs read no RAPL counter shows ``n/a`` with the reason the engine recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cpubench.analysis import cost
from cpubench.analysis.cells import Settings
from cpubench.render import tables
from cpubench.render.escape import md_text

TITLE = "Cost and energy"


def money(v: float | None, digits: int = 2) -> str:
    return "n/a" if v is None else f"${v:,.{digits}f}"


def count(v: float | None) -> str:
    return "n/a" if v is None else f"{v:,.0f}"


def joules(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3g} J"


def cost_lines(merged: Any, settings: Settings, prices: Mapping[str, float] | None = None) -> list[str]:
    """The section, or nothing when no host has a price and no run read energy."""
    if not cost.shown(merged, prices):
        return []
    items = cost.cell_costs(settings, merged, prices)
    out = [
        f"## {TITLE}",
        "",
        "Images per dollar and dollars per million images from each host's price per hour (`cpubench run "
        "--price-per-hour`, or `cpubench report --prices FILE`) and the cell's median images/sec; joules per image "
        "from the CPU packages' RAPL counters over the measured windows (the median of the ok repeats; the whole "
        "package, every process on it).",
        "",
    ]
    body = [[i.setting, i.row, i.host, tables.fmt_ips(i.images_per_sec), money(i.per_hour),
             count(i.images_per_dollar), money(i.dollars_per_million), joules(i.joules_per_image)]
            for i in items]  # fmt: skip
    headers = ["setting", "model", "host", "images/sec", "$/hour", "images per $", "$ per M images", "J per image"]
    out += [tables.markdown_table(headers, body), ""]
    hosts = {h.host_id: h.record for h in merged.hosts}
    why = []
    for h, record in hosts.items():
        if cost.price_of(record, prices) is None:
            unusable = cost.unusable_price(record, prices)
            why.append(f"- {md_text(h)}: " + (f"no price: {md_text(unusable)}" if unusable else cost.NO_PRICE))
    energy: dict[str, dict[str, None]] = {}  # host -> its cells' distinct reasons, in report order
    for i in items:
        if i.energy_na:
            energy.setdefault(i.host, {})[i.energy_na] = None
    why += [f"- {md_text(h)}: energy n/a: {md_text('; '.join(nas))}" for h, nas in energy.items()]
    return out + why + ([""] if why else [])
