"""Every series of a chart gets its own colour, past matplotlib's ten-colour cycle too (a report of 12 hosts)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from matplotlib import rcParams
from matplotlib.colors import to_hex, to_rgb

from cpubench.analysis.roofline import Placed, Roofs
from cpubench.render import plots, roofline, series, siteplots

HOSTS = [f"host-{i:02d}" for i in range(12)]


@pytest.mark.parametrize("n", [1, 9, 10, 11, 20, 21, 64, 200])
def test_colours_are_distinct_and_the_first_ten_are_the_default_cycle(n: int) -> None:
    got = series.colours(n)
    assert len(got) == n and len(set(got)) == n
    default = [to_hex(c) for c in rcParams["axes.prop_cycle"].by_key()["color"]]
    if n <= 20:  # past twenty the colours are a ramp of their own
        assert got[: min(n, 10)] == default[: min(n, 10)]


def test_a_bar_chart_of_twelve_hosts_shows_twelve_colours(tmp_path: Path) -> None:
    cells = {("resnet50", h): (10.0 + i, "") for i, h in enumerate(HOSTS)}
    png = plots.grouped_bars("twelve hosts", ["resnet50"], HOSTS, cells, tmp_path / "bars.png")
    pixels = matplotlib.image.imread(png)[..., :3].reshape(-1, 3)
    found = {c for c in series.colours(len(HOSTS)) if np.any(np.all(np.abs(pixels - to_rgb(c)) < 1 / 255, axis=1))}
    assert len(found) == len(HOSTS)


def _drawn(monkeypatch: pytest.MonkeyPatch, module: object) -> list:
    """The figures ``module`` closes after saving them, kept to read what was drawn."""
    figures: list = []
    monkeypatch.setattr(module.plt, "close", figures.append)  # type: ignore[attr-defined]
    return figures


def test_a_roofline_of_twelve_hosts_gives_each_its_colour(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figures = _drawn(monkeypatch, roofline)
    roofs = [Roofs(h, {"fp32": 100.0 + i}, 20.0) for i, h in enumerate(HOSTS)]
    points = [Placed(h, f"resnet50 {h}", 30.0, 50.0 + i, "fp32") for i, h in enumerate(HOSTS)]
    roofline.draw(roofs, points, tmp_path / "roofline.png")
    (ax,) = figures[0].axes
    dots = [to_hex(c.get_facecolors()[0]) for c in ax.collections if len(c.get_offsets())]
    assert len(dots) == len(HOSTS) and len(set(dots)) == len(HOSTS)


def test_lines_past_ten_keep_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figures = _drawn(monkeypatch, siteplots)
    data = [siteplots.Line(f"batch {2**i}", [1, 2], [float(i), float(i + 1)]) for i in range(12)]
    siteplots.lines(tmp_path / "lines.png", "t", "threads", "images/sec", data)
    (ax,) = figures[0].axes
    drawn = [to_hex(ln.get_color()) for ln in ax.get_lines()]
    assert len(set(drawn)) == len(data)
