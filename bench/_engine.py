"""One engine run for the benchmarks: a fresh ``python -m tf_cnn_benchmarks`` process, its result as a record.

Each benchmark times the engine the way a sweep does (a process per run, the figure from its result JSON), so the
figures compare with the suite's. A run that fails raises with the engine's reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the engine's package, also from a checkout that is not installed

from tf_cnn_benchmarks.record import RunRecord  # noqa: E402


def run_engine(flags: list[str], env: dict[str, str] | None = None) -> RunRecord:
    """Run the engine with ``flags`` and return its ok record (RuntimeError with the reason otherwise)."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "r.json"
        proc = subprocess.run(
            [sys.executable, "-m", "tf_cnn_benchmarks", *flags, f"--result_json={out}"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
        )
        if not out.exists():
            raise RuntimeError(f"{' '.join(flags)}: no result: {proc.stderr[-300:]}")
        rec = RunRecord.from_dict(json.loads(out.read_text()))
    if not rec.ok or rec.images_per_sec is None:
        raise RuntimeError(f"{' '.join(flags)}: {rec.reason}")
    return rec
