"""Both frameworks through `cpubench run` with the real engines, on the classic matrix a new user would try: every run
the plan keeps runs, because what PyTorch cannot do was settled when the plan was made, not by failed processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from enginerun import REPO, clean_env

from cpubench.host import locks
from cpubench.results import store


@pytest.mark.timeout(420)
def test_replicated_with_both_frameworks_runs_every_pytorch_run_ok(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    conf = tmp_path / "both.yaml"
    conf.write_text(
        textwrap.dedent("""\
        name: both-classic
        device: cpu
        num_gpus: [1]
        repeats: 1
        num_batches: 2
        num_warmup_batches: 1
        timeout: 180
        models: {trivial: [2], lenet: [2]}
        matrix:
          framework: [tensorflow, pytorch]
          variable_update: [replicated]
          forward_only: [false, true]
        flags: {optimizer: sgd}
        """)
    )
    out = tmp_path / "data"
    env = clean_env(CPUBENCH_NO_TF_PROBE="1", PYTHONPATH=str(REPO), **{locks.LOCK_ENV: str(tmp_path / "lock")})
    env.pop("CPUBENCH_ENGINE", None)
    args = [sys.executable, "-m", "cpubench", "run", "--config", str(conf), "--out", str(out), "--host-id", "h"]
    p = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=400)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "2 settings run as another: pytorch on one device has local variables: variable_update replicated runs " \
        "as parameter_server" in p.stdout, p.stdout  # fmt: skip
    recs = store.read_runs(store.host_dir(out, "h")).records
    assert len(recs) == 8 and all(r.status == "ok" and r.ok for r in recs), [(r.setting, r.reason) for r in recs]
    torch_runs = {(r.model, r.params["forward_only"]): r for r in recs if r.framework == "pytorch"}
    assert set(torch_runs) == {("trivial", False), ("trivial", True), ("lenet", False), ("lenet", True)}
    for (_model, inference), r in torch_runs.items():
        assert r.setting == "syn-parameter_server-1cpus" + ("-inference" if inference else "") + "-pytorch-eager"
        assert r.params["variable_update"] == "parameter_server" and "--variable_update=parameter_server" in r.command
        assert r.images_per_sec and r.images_per_sec > 0
    tf = sorted({r.setting for r in recs if r.framework == "tensorflow"})
    assert tf == ["syn-replicated-1cpus", "syn-replicated-1cpus-inference"]  # TensorFlow runs as asked
    again = subprocess.run([*args, "--dry-run"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "cpubench: 0 runs to do, 8 already done" in again.stdout, again.stdout + again.stderr
