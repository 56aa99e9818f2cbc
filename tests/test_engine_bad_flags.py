"""Bad command lines the engine must refuse in one line, exit 2, before TensorFlow or PyTorch is imported: a result
JSON that cannot be written where it is asked, epochs that are no number of steps, flags one framework cannot run,
and multi-worker flags without their partners. Real subprocesses; none of them gets as far as a framework import,
so each takes about a second."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from enginerun import ERROR_PREFIX, REPO, clean_env

from tf_cnn_benchmarks import flags

TINY = ["--model=trivial", "--batch_size=2", "--num_batches=1", "--num_warmup_batches=0"]

# The engine's main() as the console script runs it, then which frameworks the process imported (on stdout, which a
# refused command line leaves empty otherwise): "refused before any framework import" is checked, not assumed.
_MAIN = """
import sys
from tf_cnn_benchmarks.tf_cnn_benchmarks import main
rc = main(sys.argv[1:])
print(sorted(m for m in ('tensorflow', 'torch') if m in sys.modules))
sys.exit(rc)
"""


def refused(args: list[str], *needles: str, cwd: Path = REPO) -> str:
    """Run the engine's main() on ``args``; assert exit 2, one error line holding every needle, no framework
    imported and no traceback; return the line."""
    p = subprocess.run([sys.executable, "-c", _MAIN, *args], cwd=cwd, env=clean_env(), capture_output=True, text=True,
                       timeout=60)  # fmt: skip
    shown = f"rc={p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr[-3000:]}"
    assert p.returncode == 2, shown
    assert p.stdout == "[]\n", shown  # neither TensorFlow nor PyTorch was imported
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{ERROR_PREFIX} "), shown
    for needle in needles:
        assert needle in lines[0], shown
    return lines[0]


def engine_cli(args: list[str]) -> subprocess.CompletedProcess:
    """The real command line, ``python -m tf_cnn_benchmarks``."""
    return subprocess.run([sys.executable, "-m", "tf_cnn_benchmarks", *args], cwd=REPO, env=clean_env(),
                          capture_output=True, text=True, timeout=60)  # fmt: skip


# -- --result_json where no file can be written ---------------------------------------------------------------------
def test_result_json_under_a_file_is_refused_before_the_run(tmp_path: Path) -> None:
    """Before: the run was measured, then writing the record raised FileExistsError (a traceback, exit 1, the figure
    lost). The check also runs before other flags are parsed, since a bad command line's record goes there too."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    target = afile / "r.json"
    refused([*TINY, f"--result_json={target}"], f"--result_json={target}", f"{afile} is a file, not a folder")
    refused([*TINY, "--frobnicate", f"--result_json={target}"], f"{afile} is a file, not a folder")
    p = engine_cli([*TINY, "--result_json", str(target)])
    assert p.returncode == 2 and p.stdout == "" and "Traceback" not in p.stderr, p.stderr[-3000:]
    assert p.stderr == f"{ERROR_PREFIX} --result_json={target}: {afile} is a file, not a folder; give a path in a " \
                       "folder\n"  # fmt: skip
    assert afile.read_text() == "x"


def test_result_json_that_is_a_folder_is_refused_before_the_run(tmp_path: Path) -> None:
    """Before: os.replace onto the folder raised IsADirectoryError after the whole run."""
    line = refused([*TINY, f"--result_json={tmp_path}"], f"--result_json={tmp_path} is a folder")
    assert line.endswith(f"e.g. --result_json={tmp_path / 'result.json'}")
    assert list(tmp_path.iterdir()) == []


def test_result_json_in_a_folder_that_does_not_exist_is_refused_and_nothing_is_made(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "sub" / "r.json"
    refused([*TINY, f"--result_json={target}"], f"the folder {target.parent} does not exist", "mkdir -p")
    assert not (tmp_path / "missing").exists()


def test_result_json_relative_to_the_working_folder(tmp_path: Path) -> None:
    """A bare file name is in the working folder, which exists: parsing goes on (here to the unknown model)."""
    line = refused(["--model=nope", "--result_json=r.json"], "--model=nope: unknown model", cwd=tmp_path)
    rec = json.loads((tmp_path / "r.json").read_text())
    assert rec["status"] == "failed" and rec["reason"] == line.removeprefix(f"{ERROR_PREFIX} ")


def test_result_json_check_leaves_library_callers_a_usable_path() -> None:
    assert flags.result_json_problem("") is None
    assert flags.result_json_problem("/tmp/{batch_size}/r.json") is None  # one folder per size: the write decides


# -- --num_epochs that is no number of steps ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "epochs, needle",
    [("nan", "--num_epochs=nan"), ("inf", "--num_epochs=inf"), ("-1", "--num_epochs=-1")],
    ids=["nan", "inf", "negative"],
)
def test_num_epochs_must_be_a_finite_count(tmp_path: Path, epochs: str, needle: str) -> None:
    """Before: nan with --num_batches=0 ran zero timed steps and exited 0 with an "ok" record and "total images/sec:
    nan"; inf crashed in math.ceil (OverflowError traceback) after TensorFlow's import; -1 was silently ignored."""
    out = tmp_path / "r.json"
    line = refused(["--model=trivial", "--num_batches=0", f"--num_epochs={epochs}", f"--result_json={out}"], needle,
                   "must be a number of epochs")  # fmt: skip
    rec = json.loads(out.read_text())
    assert rec["status"] == "failed" and rec["images_per_sec"] is None
    assert rec["reason"] == line.removeprefix(f"{ERROR_PREFIX} ")


def test_num_epochs_still_replaces_num_batches() -> None:
    assert flags.parse(["--num_batches=0", "--num_epochs=0.5"]).num_epochs == 0.5
    assert flags.parse(["--num_epochs=0"]).num_batches == 100


# -- flags the PyTorch engine cannot run ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, needle",
    [
        (["--variable_update=replicated"], "--variable_update=replicated: the pytorch engine runs one device"),
        (["--num_gpus=2"], "--num_gpus=2: the pytorch engine runs one device; leave --num_gpus at 1"),
        (["--device=gpu"], "--device=gpu: the pytorch engine runs on the CPU"),
        (["--data_dir=/nonexistent"], "real data is not supported for pytorch; leave out --data_dir"),
        (["--worker_hosts=a:1,b:2"], "--worker_hosts: multi-worker runs are not supported for pytorch"),
        (["--job_name=worker"], "--job_name: multi-worker runs are not supported for pytorch"),
    ],
    ids=["variable-update", "num-gpus", "gpu", "data-dir", "worker-hosts", "job-name"],
)
def test_pytorch_refuses_what_it_cannot_run_before_importing_torch(args: list[str], needle: str) -> None:
    """Before: torch was imported (seconds) and the run failed with exit 1; the flags alone say it cannot run."""
    refused(["--framework=pytorch", *TINY, *args], needle)


# -- multi-worker flags without their partners ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, needle",
    [
        (["--variable_update=collective_all_reduce"], "--variable_update=collective_all_reduce needs --worker_hosts"),
        (["--variable_update=distributed_replicated", "--worker_hosts= , "], "needs --worker_hosts=host:port"),
        (["--variable_update=collective_all_reduce", "--worker_hosts=a:1,b:2", "--task_index=2"],
         "--task_index=2: must be below the 2 worker(s) given"),
        (["--variable_update=collective_all_reduce", "--worker_hosts=a:1,b:2", "--task_index=-1"],
         "--task_index=-1: must be below the 2 worker(s) given"),
        (["--variable_update=collective_all_reduce", "--worker_hosts=a:1", "--ps_hosts=b:2"],
         "parameter-server tasks are not used"),
        (["--variable_update=collective_all_reduce", "--worker_hosts=a:1", "--job_name=ps"],
         "drop --ps_hosts and start only the --job_name=worker tasks"),
    ],
    ids=["no-workers", "blank-workers", "task-index-high", "task-index-negative", "ps-hosts", "ps-job"],
)  # fmt: skip
def test_multi_worker_flags_need_their_partners_before_tensorflow(args: list[str], needle: str) -> None:
    """Before: TensorFlow was imported and strategies.py refused them as a failed run (exit 1)."""
    refused([*TINY, *args], needle)


@pytest.mark.parametrize(
    "argv",
    [["--worker_hosts=a:1,b:2"], ["--task_index=1"], ["--ps_hosts=c:3"], ["--use_nccl"],
     ["--local_parameter_device=gpu"], ["--cluster_timeout=5"]],
)  # fmt: skip
def test_each_config_flag_alone_still_parses(argv: list[str]) -> None:
    """cpubench validates a config's ``flags:`` one at a time (a fleet adds --worker_hosts and --task_index that way):
    the checks of combinations must never trip on one flag alone."""
    flags.parse(argv)


# -- values each flag alone shows are wrong -------------------------------------------------------------------------
@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_seed_outside_numpys_range_is_refused_before_tensorflow(seed: str) -> None:
    """Before: --seed=-1 imported TensorFlow, then numpy's seeding raised ValueError (a traceback, exit 1)."""
    refused([*TINY, f"--seed={seed}"], f"--seed={seed}: must be from 0 to {2**32 - 1}")


def test_seed_range_ends_are_accepted() -> None:
    assert flags.parse(["--seed=0"]).seed == 0 and flags.parse([f"--seed={2**32 - 1}"]).seed == 2**32 - 1


def test_batch_sizes_equal_as_numbers_are_one_size(tmp_path: Path) -> None:
    """Before: --batch_sizes=1,01 measured batch 1 twice, the second (already traced) record replacing the first's
    file, exit 0."""
    refused(["--forward_only", "--batch_sizes=1,01", f"--result_json={tmp_path}/r{{batch_size}}.json"],
            "--batch_sizes=1,01: expected distinct batch sizes")  # fmt: skip
    # Nothing was measured: the only file is the refused command line's record (main() writes it at the path as given).
    assert [f.name for f in tmp_path.iterdir()] == ["r{batch_size}.json"]
