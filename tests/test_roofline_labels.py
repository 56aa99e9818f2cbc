"""The roofline's point labels: figures a few pixels apart (one model at nearby batch sizes, or several hosts) get
labels that do not print over one another, each still tied to its point."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pytest
from matplotlib.text import Text

from cpubench.analysis.roofline import Placed, Roofs
from cpubench.render import roofline


def test_labels_of_points_close_together_do_not_overlap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figures: list = []
    monkeypatch.setattr(roofline.plt, "close", figures.append)
    crowd = [Placed("h", f"resnet50 bs{2**i} inference fp32", 70.0, 150.0 + i, "fp32") for i in range(8)]
    alone = Placed("h", "lenet bs32 training fp32", 3.0, 20.0, "fp32")
    roofline.draw([Roofs("h", {"fp32": 220.0}, 30.0)], [*crowd, alone], tmp_path / "roofline.png")
    (ax,) = figures[0].axes
    renderer = figures[0].canvas.get_renderer()
    notes = {t.get_text(): t for t in ax.texts}
    assert sorted(notes) == sorted(p.label for p in [*crowd, alone])
    boxes = {}
    for label, note in notes.items():
        note.update_positions(renderer)
        boxes[label] = Text.get_window_extent(note, renderer)
    for a, b in combinations(boxes, 2):
        assert not boxes[a].overlaps(boxes[b]), (a, b)
    # Each label still names its own point: a moved one has a line back to it, one with room stays beside it.
    for p in crowd:
        assert notes[p.label].xy == (p.intensity, p.gflops)
    assert sum(1 for p in crowd if notes[p.label].arrow_patch is not None) >= len(crowd) - 1
    assert notes[alone.label].arrow_patch is None


def test_a_label_that_would_run_off_the_plot_goes_to_its_points_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    figures: list = []
    monkeypatch.setattr(roofline.plt, "close", figures.append)
    far = [Placed("h", f"resnet50 bs{b} inference fp32 (a-long-setting-name-{b})", 90.0, 100.0 * b, "fp32")
           for b in (1, 2)]  # fmt: skip
    roofline.draw([Roofs("h", {"fp32": 220.0}, 30.0)], far, tmp_path / "roofline.png")
    (ax,) = figures[0].axes
    renderer = figures[0].canvas.get_renderer()
    right = ax.get_window_extent(renderer).x1
    for note in ax.texts:
        note.update_positions(renderer)
        box = Text.get_window_extent(note, renderer)
        assert box.x1 <= right and note.get_horizontalalignment() == "right", note.get_text()
