"""The engine's result JSON (``--result_json PATH``): the one contract between the engine and the runner.

The runner reads nothing else from a run (besides keeping its log), so legacy logs and new runs enter the store the
same way. Written once at the end of the process, to a temporary file renamed into place: a file that exists is
whole. A run that fails (a bad command line included, when --result_json can be found in it) still writes it,
with ``status: "failed"`` and a one-line ``reason``.

Keys:
  schema            RESULT_SCHEMA
  engine_version    tf_cnn_benchmarks.__version__
  status            "ok" | "failed"
  reason            None, or one line saying what went wrong and the fix
  flags             every flag with its effective value (flags.as_dict)
  model             model name
  batch_size        per device
  num_devices       devices (logical CPU devices with --device=cpu)
  global_batch_size batch_size x num_devices (x workers)
  images_per_sec    global images / second over the timed steps (mean step time), None unless ok
  step_times        seconds of each timed step (after warm-up), in order
  warmup_times      seconds of each warm-up step (the first includes tracing and graph build)
  timings           {"import": s, "build": s, "warmup": s, "measured": s} wall seconds of each phase
  tf_version, python_version, threads {"intra": n, "inter": n, "intra_effective": n}, onednn (bool or None),
  devices           the TensorFlow device names used
  started           ISO 8601 UTC of process start
  losses            the loss at each display step (training), for checks across modes
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

RESULT_SCHEMA = 1


def write_result(path: str, result: dict[str, Any]) -> None:
    """Write the result JSON atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    data = dict(result)
    data.setdefault("schema", RESULT_SCHEMA)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True, default=str)
        f.write("\n")
    os.replace(tmp, target)


def read_result(path: str) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)
