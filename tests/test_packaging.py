"""The install declares every folder Python can import, so a first install prints no setuptools warning."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest
import setuptools

ROOT = Path(__file__).resolve().parents[1]


def test_every_importable_folder_is_a_declared_package(monkeypatch: pytest.MonkeyPatch) -> None:
    captured: dict[str, Any] = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kw: captured.update(kw))
    monkeypatch.chdir(ROOT)
    runpy.run_path(str(ROOT / "setup.py"))
    declared = set(captured["packages"])
    for top in ("cpubench", "tf_cnn_benchmarks"):
        for d in [ROOT / top, *(p for p in (ROOT / top).rglob("*") if p.is_dir())]:
            if d.name == "__pycache__" or not any(f.is_file() for f in d.iterdir()):
                continue
            name = ".".join(d.relative_to(ROOT).parts)
            assert name in declared, f"{name} is importable but not in setup.py's packages"
    assert captured["package_data"]["cpubench.configs"] == ["*.yaml"]
