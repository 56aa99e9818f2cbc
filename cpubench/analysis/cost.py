"""Cost and energy per image: a host's price per hour (``host.json``'s ``price``, or a prices file given to the report)
turned into images per dollar and dollars per million images, and each run's RAPL joules (the engine's ``energy``)
turned into joules per image.

Why beside images/sec: a buyer compares what a million images cost, not only how fast they go; a host twice as fast
at three times the price is the worse buy. Energy is what the CPU packages used over the measured window (every
process on them: a quiet machine is assumed, as for every figure), so joules per image is the package's, not the
model's alone; where the kernel exposes no RAPL counter the figure is ``n/a`` with the reason the engine recorded.

Data in, data out: the prices file is parsed from its text (:func:`parse_prices`); ``cpubench report`` reads it.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from cpubench.host import price
from cpubench.host.record import HostRecord

COLUMNS = ("price_per_hour", "images_per_dollar", "dollars_per_million_images", "joules", "joules_per_image",
           "energy_na")  # fmt: skip
NO_PRICE = "no price: give `cpubench run --price-per-hour X` or `cpubench report --prices FILE`"


class PricesError(ValueError):
    """A prices file that cannot be read: the message names the line or key and the fix."""


def _shown(value: Any) -> str:
    """A value from a prices file as an error line shows it: its repr, at most 60 characters (a value of thousands
    of characters would make the one line a page)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _price(value: Any, where: str, currency: Any = None) -> float:
    """Dollars per hour from a prices file's entry (a number, or ``{per_hour: X, currency: USD}``); PricesError
    naming ``where`` otherwise. A boolean is not a price (``float(True)`` would read ``yes`` as $1.00/hour), and a
    price outside :func:`cpubench.host.price.plausible` is a slip, not a host's."""
    if isinstance(value, Mapping):
        currency = value.get("currency", currency)
        value = value.get("per_hour", value.get("price_per_hour"))
        if value is None:
            raise PricesError(f"{where}: no per_hour (expected dollars per hour, e.g. `host: 1.25` or "
                              "`host: {per_hour: 1.25}`)")  # fmt: skip
    if not (currency in (None, "") or (isinstance(currency, str) and currency.strip().upper() == price.CURRENCY)):
        # every cost figure is in dollars: a price in another currency would be shown as dollars
        raise PricesError(f"{where}: currency {_shown(currency)}: prices are dollars per hour ({price.CURRENCY}); "
                          "convert the price, or leave the currency out")  # fmt: skip
    try:
        v = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError, OverflowError):
        v = math.nan
    if not price.plausible(v):
        raise PricesError(f"{where}: expected dollars per hour (a number from {price.MIN_PER_HOUR:g} to "
                          f"{price.MAX_PER_HOUR:g}), got {_shown(value)}")  # fmt: skip
    return v


def parse_prices(text: str, name: str) -> dict[str, float]:
    """host id -> dollars per hour, from a YAML mapping (``host: 1.23`` or ``host: {per_hour: 1.23}``) or a CSV with
    a header naming ``host``/``host_id`` and ``price_per_hour``/``price`` (by ``name``'s ending)."""
    if name.lower().endswith(".csv"):
        try:
            rows = list(csv.DictReader(io.StringIO(text)))
        except csv.Error as e:  # a field past the csv module's limit, a NUL byte
            raise PricesError(f"{name}: not a prices CSV ({e})") from None
        if not rows:
            raise PricesError(f"{name}: no rows (expected a header host_id,price_per_hour and a row per host)")
        out = {}
        for i, row in enumerate(rows, start=2):
            host = row.get("host_id") or row.get("host")
            if not host:
                raise PricesError(f"{name}:{i}: no host_id (the header must name host_id and price_per_hour)")
            if None in row:  # a row with more fields than the header
                raise PricesError(f"{name}:{i}: more fields than the header names; one host_id and price per row")
            if host.strip() in out:  # two prices for one host: which is meant cannot be guessed
                raise PricesError(f"{name}:{i}: {host.strip()} has a price already; give each host one row")
            out[host.strip()] = _price(row.get("price_per_hour", row.get("price")), f"{name}:{i}",
                                       row.get("currency"))  # fmt: skip
        return out
    import yaml

    from cpubench.spec import bounded  # the bounded YAML reader configs use: no aliases, no bombs, one line errors
    from cpubench.spec.schema import ConfigError

    try:
        node, loader = bounded.compose(text, name)
        data = bounded.construct(node, loader, name) if node is not None else None
    except ConfigError as e:  # the file and line, and what is wrong
        raise PricesError(str(e)) from None
    if not isinstance(data, Mapping) or not data:
        raise PricesError(f"{name}: expected a mapping of host id to dollars per hour")
    keys = [str(k.value) for k, _ in node.value] if isinstance(node, yaml.MappingNode) else []
    twice = next((k for i, k in enumerate(keys) if k in keys[:i]), None)
    if twice is not None:  # YAML keeps the last of two keys silently: which price is meant cannot be guessed
        raise PricesError(f"{name}: {twice} has two prices; give each host one")
    return {str(k): _price(v, f"{name}: {k}") for k, v in data.items()}


def price_of(host: HostRecord | None, prices: Mapping[str, float] | None) -> float | None:
    """The host's dollars per hour: the prices file's entry, else its host.json's (where it can be used:
    :func:`cpubench.host.price.recorded`), else None (:func:`unusable_price` says why, where it can)."""
    if host is None:
        return None
    if prices and host.host_id in prices:
        return prices[host.host_id]
    return price.recorded(host.price)[0]


def unusable_price(host: HostRecord | None, prices: Mapping[str, float] | None) -> str | None:
    """Why the price ``host``'s host.json holds cannot be used (text from the file, to be escaped where shown), or
    None: the prices file gives one, or none was recorded (then :data:`NO_PRICE` says what to do)."""
    if host is None or (prices and host.host_id in prices):
        return None
    return price.recorded(host.price)[1]


def _finite(v: float) -> float | None:
    """A derived figure, or None where the arithmetic left the numbers (never ``inf`` or ``nan`` in a table)."""
    return v if math.isfinite(v) else None


def images_per_dollar(images_per_sec: float | None, per_hour: float | None) -> float | None:
    return _finite(images_per_sec * 3600.0 / per_hour) if images_per_sec and per_hour else None


def dollars_per_million(images_per_sec: float | None, per_hour: float | None) -> float | None:
    return _finite(per_hour / (images_per_sec * 3600.0) * 1e6) if images_per_sec and per_hour else None


# More than this over a record's window is no CPU host's draw (eight 500 W packages are 4 kW): a damaged reading, or
# one an older engine took across a counter that went backwards and counted as a wrap.
MAX_HOST_WATTS = 20_000.0


def joules_per_image(rec: Any) -> tuple[float | None, str | None]:
    """A record's joules per image over its measured window, or None and why not (None, None: not recorded)."""
    e = rec.energy
    if not e:
        return None, None
    j = e.get("joules")
    if j is None:
        return None, str(e.get("na") or "no energy reading")
    window = e.get("window_s")
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not window > 0:
        window = sum(rec.samples.step_times)  # the timed steps are the window (a record that did not say)
    if window > 0 and j / window > MAX_HOST_WATTS:
        return None, (f"{j:.4g} J over a {window:.3g} s window is {j / window:.3g} W, more than a host draws: "
                      "a damaged RAPL reading")  # fmt: skip
    images = (rec.samples.global_batch or 0) * len(rec.samples.step_times)
    return (j / images, None) if images else (None, "no timed steps")


def add_columns(df: pd.DataFrame, merged: Any, prices: Mapping[str, float] | None = None) -> pd.DataFrame:
    """``df`` (the report's runs frame) with :data:`COLUMNS` appended; a copy."""
    out = df.copy()
    hosts = {h.host_id: h.record for h in merged.hosts}
    recs = {(m.folder, m.rec.run_hash, m.rec.setting, m.rec.model, m.rec.batch_size, m.rec.repeat): m.rec
            for m in merged.runs}  # fmt: skip
    cols: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    for row in df.to_dict("records"):
        per_hour = price_of(hosts.get(str(row.get("host_id"))), prices)
        ips = row.get("images_per_sec") if row.get("status") == "ok" else None
        ips = float(ips) if isinstance(ips, (int, float)) and math.isfinite(ips) else None
        key = (row.get("folder"), row.get("run_hash"), row.get("setting"), row.get("model"), row.get("batch_size"),
               row.get("repeat"))  # fmt: skip
        rec = recs.get(key)
        jpi, na = joules_per_image(rec) if rec is not None and rec.ok else (None, None)
        ipd, dpm = images_per_dollar(ips, per_hour), dollars_per_million(ips, per_hour)
        cols["price_per_hour"].append(per_hour)
        cols["images_per_dollar"].append(None if ipd is None else round(ipd, 1))
        cols["dollars_per_million_images"].append(None if dpm is None else round(dpm, 4))
        joules = (rec.energy or {}).get("joules") if rec is not None and rec.ok else None
        cols["joules"].append(joules)
        cols["joules_per_image"].append(None if jpi is None else round(jpi, 4))
        cols["energy_na"].append(na)
    for c in COLUMNS:
        out[c] = cols[c] if len(df) else pd.Series(dtype=object)
    return out


@dataclass(frozen=True)
class CellCost:
    """One cell's cost and energy: from its median images/sec and its ok repeats' joules per image."""

    setting: str
    row: str
    host: str
    images_per_sec: float
    per_hour: float | None
    joules_per_image: float | None
    energy_na: str | None
    price_na: str | None = None  # why the host.json price cannot be used (None: a price, or none recorded)

    @property
    def images_per_dollar(self) -> float | None:
        return images_per_dollar(self.images_per_sec, self.per_hour)

    @property
    def dollars_per_million(self) -> float | None:
        return dollars_per_million(self.images_per_sec, self.per_hour)


def shown(merged: Any, prices: Mapping[str, float] | None = None) -> bool:
    """Whether the report has cost or energy to show: a host with a price (one its host.json holds but that cannot
    be used too, so its reason is shown), or a record with an energy reading (present or n/a). Folders from before
    either existed render as they did."""
    hosts = {h.host_id: h.record for h in merged.hosts}
    priced = any(price_of(h, prices) or h.price for h in hosts.values())
    return priced or any(m.rec.energy for m in merged.runs)


def cell_costs(settings: Mapping[str, Any], merged: Any, prices: Mapping[str, float] | None = None) -> list[CellCost]:
    """Every ok cell's cost and energy, in report order."""
    hosts = {h.host_id: h.record for h in merged.hosts}
    by: dict[tuple[Any, ...], list[Any]] = {}
    for m in merged.runs:
        if m.rec.ok:
            by.setdefault((m.rec.setting, m.rec.host_id, m.rec.model, m.rec.batch_size), []).append(m.rec)
    out = []
    for setting, (rows, cells) in settings.items():
        for row in rows:
            for (r, host), c in cells.items():
                if r != row or c.status != "ok" or c.value is None:
                    continue
                recs = by.get((setting, host, c.model, c.batch_size), [])
                readings = [joules_per_image(rec) for rec in recs]
                values = [j for j, _ in readings if j is not None]
                why = next((na for _, na in readings if na), None)
                out.append(
                    CellCost(
                        setting,
                        row,
                        host,
                        c.value,
                        price_of(hosts.get(host), prices),
                        statistics.median(values) if values else None,
                        None if values else (why or "not recorded (a run before energy was read)"),
                        unusable_price(hosts.get(host), prices),
                    )
                )
    return out
