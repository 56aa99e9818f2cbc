"""GPU hosts without a GPU (issue 23): the install choice under faked detection and the refusal of two TensorFlows;
GPU facts parsed from a recorded nvidia-smi output; real and logical GPUs kept apart (flags, plan, the real engine
refusing logical GPUs on this GPU-less host in one line); the input-bound fraction and mark from hand-made records;
the classic per-setting tables for GPU records.

Nothing here needs a GPU or installs anything: the detection reads a fake ``nvidia-smi`` on PATH and a fake
``/proc/driver/nvidia`` (``CPUBENCH_PROC_NVIDIA``), the install check reads fake ``dist-info`` folders.
"""

from __future__ import annotations

import importlib.util
import json
import os
import runpy
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import setuptools
from enginerun import ERROR_PREFIX, REPO, read_result
from enginerun import clean_env as _env

from cpubench.analysis import inputbound
from cpubench.host import facts
from cpubench.host.record import HostRecord
from cpubench.render import report
from cpubench.results import merge, store
from cpubench.spec import axes, config, plan
from tf_cnn_benchmarks import flags, result
from tf_cnn_benchmarks.record import RunRecord

SMI_FIXTURE = Path(__file__).parent / "fixtures" / "nvidia-smi" / "a100x4.csv"


def _tfchoice() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tfchoice", REPO / "scripts" / "tfchoice.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


tfchoice = _tfchoice()


def _fake_smi(folder: Path, csv: Path | None = SMI_FIXTURE) -> Path:
    """A fake ``nvidia-smi`` in ``folder``: ``-L`` lists the fixture's GPUs, ``--query-gpu`` prints the fixture."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = csv.read_text().splitlines() if csv else []
    listing = "\n".join(f"GPU {r.split(', ')[0]}: {r.split(', ')[1]} (UUID: {r.split(', ')[-1]})" for r in rows)
    exe = folder / "nvidia-smi"
    exe.write_text(
        f'#!/bin/sh\ncase "$1" in -L) printf "%s\\n" "{listing}" ;; --query-gpu=*) cat "{csv}" ;; esac\n'
        if csv
        else "#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.' >&2\n"
        "exit 9\n"
    )
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return folder


def _host_env(tmp_path: Path, smi: bool = False, proc_gpus: int = 0, **extra: str) -> dict[str, str]:
    """An environment that shows a host: nvidia-smi on PATH or not, a /proc/driver/nvidia with N GPUs or none."""
    proc = tmp_path / "proc-nvidia"
    for i in range(proc_gpus):
        (proc / "gpus" / f"0000:{7 + i:02x}:00.0").mkdir(parents=True, exist_ok=True)
    path = [str(_fake_smi(tmp_path / "bin"))] if smi else []
    return {"PATH": os.pathsep.join([*path, "/usr/bin", "/bin"]), tfchoice.PROC_ENV: str(proc), **extra}


# -- 1. one TensorFlow, chosen for the host ---------------------------------------------------------------------------


def test_setup_installs_tensorflow_only_through_the_choice_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    captured: dict[str, Any] = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kw: captured.update(kw))
    monkeypatch.chdir(REPO)
    runpy.run_path(str(REPO / "setup.py"))
    assert not [r for r in captured["install_requires"] if r.startswith(("tensorflow", "tf-"))]
    extras = captured["extras_require"]
    assert extras["cpu"] == ["tensorflow-cpu==2.21.0"] and extras["cuda"] == ["tensorflow[and-cuda]==2.21.0"]
    for choice in tfchoice.CHOICES:  # the helper's names are setup.py's
        assert extras[choice] == [f"{tfchoice.REQUIREMENT[choice]}==2.21.0"]
    # no other extra brings the other TensorFlow along
    others = [r for name, reqs in extras.items() if name not in ("cpu", "cuda", "gpu") for r in reqs]
    assert not [r for r in others if r.startswith("tensorflow")]


@pytest.mark.parametrize(
    ("smi", "proc_gpus", "override", "want"),
    [
        (False, 0, "", "cpu"),  # nothing NVIDIA: the CPU build
        (True, 0, "", "cuda"),  # nvidia-smi lists the 4 A100s
        (False, 2, "", "cuda"),  # the driver lists GPUs under /proc, no nvidia-smi on PATH
        (True, 4, "cpu", "cpu"),  # the override beats the GPUs
        (False, 0, "cuda", "cuda"),  # and the lack of them (a container building for a GPU host)
        (False, 0, " CUDA ", "cuda"),
    ],
)
def test_the_choice_under_faked_detection(tmp_path: Path, smi: bool, proc_gpus: int, override: str, want: str) -> None:
    env = _host_env(tmp_path, smi=smi, proc_gpus=proc_gpus, **({tfchoice.OVERRIDE_ENV: override} if override else {}))
    choice, why = tfchoice.choose(env)
    assert choice == want
    if override:
        assert why == f"CPUBENCH_TF={want}"
    elif smi:
        assert why.startswith("nvidia-smi lists 4 GPU(s): GPU 0: NVIDIA A100-SXM4-40GB")
    elif proc_gpus:
        assert "lists 2 GPU(s)" in why
    else:
        assert why.startswith("no NVIDIA GPU visible")


def test_nvidia_smi_that_lists_no_gpu_means_cpu(tmp_path: Path) -> None:
    env = _host_env(tmp_path)
    env["PATH"] = f"{_fake_smi(tmp_path / 'broken', csv=None)}{os.pathsep}{env['PATH']}"
    assert tfchoice.choose(env)[0] == "cpu"


def test_a_bad_override_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(tfchoice.ChoiceError, match=r"^CPUBENCH_TF=rocm: expected cpu or cuda"):
        tfchoice.choose(_host_env(tmp_path, **{tfchoice.OVERRIDE_ENV: "rocm"}))
    p = subprocess.run([sys.executable, str(REPO / "scripts" / "tfchoice.py"), "choose"], capture_output=True,
                       text=True, env=_host_env(tmp_path, **{tfchoice.OVERRIDE_ENV: "rocm"}))  # fmt: skip
    assert p.returncode == 2 and p.stdout == "" and len(p.stderr.splitlines()) == 1


def test_choose_prints_the_choice_and_says_why(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, str(REPO / "scripts" / "tfchoice.py"), "choose"], capture_output=True,
                       text=True, env=_host_env(tmp_path, smi=True))  # fmt: skip
    assert p.returncode == 0 and p.stdout.split()[0] == "cuda"
    assert p.stderr.startswith("cpubench: TensorFlow build: cuda (tensorflow[and-cuda]): nvidia-smi lists 4 GPU(s)")


def _site(tmp_path: Path, *dists: str) -> Path:
    """A fake site-packages holding the ``dist-info`` of each distribution (name, version 2.21.0)."""
    site = tmp_path / "site"
    site.mkdir(parents=True, exist_ok=True)
    for name in dists:
        info = site / f"{name.replace('-', '_')}-2.21.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 2.21.0\n")
    return site


@pytest.mark.parametrize(
    ("have", "choice", "code", "needles"),
    [
        (["tensorflow-cpu"], "cpu", 0, []),
        (["tensorflow", "nvidia-cudnn-cu12"], "cuda", 0, []),
        ([], "cpu", 3, ["no tensorflow-cpu"]),
        (["tensorflow-cpu", "tensorflow"], "cpu", 2, ["both", "uninstall -y tensorflow ", "then rerun"]),
        (["tensorflow-cpu", "tensorflow"], "cuda", 2, ["both", "uninstall -y tensorflow-cpu", "then rerun"]),
        (["tensorflow-cpu"], "cuda", 2, ["holds tensorflow-cpu", "uninstall -y tensorflow-cpu", "CPUBENCH_TF=cpu"]),
        (["tensorflow"], "cpu", 2, ["holds tensorflow ", "uninstall -y tensorflow ", "CPUBENCH_TF=cuda"]),
    ],
)
def test_an_environment_holding_both_or_the_other_is_refused_with_the_fix(
    tmp_path: Path, have: list[str], choice: str, code: int, needles: list[str]
) -> None:
    found = tfchoice.installed([str(_site(tmp_path, *have))])
    assert found == {d for d in have if d.startswith("tensorflow")}
    got, message = tfchoice.check(choice, found, "/x/.venv")
    assert got == code
    assert len(message.splitlines()) == (0 if code == 0 else 1)
    for needle in needles:
        assert needle in message + " ", message
    if code == 2:
        assert "/x/.venv/bin/pip uninstall -y" in message


def _sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """The scripts and setup.py in a folder of their own, with a ``.venv`` whose python is this one without its
    site-packages (``-S``: it sees only the fake ``dist-info`` folders on PYTHONPATH) and whose ``-m pip`` only logs
    its arguments: _venv.sh's decisions run for real, whatever this machine has installed, and nothing is."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    for name in ("_venv.sh", "tfchoice.py"):
        (root / "scripts" / name).write_text((REPO / "scripts" / name).read_text())
    (root / "setup.py").write_text((REPO / "setup.py").read_text())
    log = tmp_path / "pip.log"
    py = root / ".venv" / "bin" / "python"
    py.parent.mkdir(parents=True)
    py.write_text(f'#!/bin/sh\nif [ "$1" = -m ] && [ "$2" = pip ]; then echo "$*" >> "{log}"; exit 0; fi\n'
                  f'exec "{sys.executable}" -S "$@"\n')  # fmt: skip
    py.chmod(0o755)
    return root, log


def _venv(root: Path, env: dict[str, str], *extras: str) -> subprocess.CompletedProcess[str]:
    script = f'source "{root}/scripts/_venv.sh" {" ".join(extras)}; echo "PATH0=${{PATH%%:*}}"'
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=120, cwd="/")


def test_the_venv_script_installs_one_tensorflow_and_refuses_two(tmp_path: Path) -> None:
    root, log = _sandbox(tmp_path)
    cpu_site = _site(tmp_path / "cpu", "tensorflow-cpu")
    env = {**_host_env(tmp_path), "HOME": str(tmp_path), "PYTHONPATH": str(cpu_site)}
    p = _venv(root, env, "test,torch")  # the venv holds tensorflow-cpu, no stamp yet: install, with the cpu extra
    assert p.returncode == 0, p.stderr
    assert "cpubench: TensorFlow build: cpu (tensorflow-cpu): no NVIDIA GPU visible" in p.stderr
    assert log.read_text().splitlines()[-1] == f"-m pip install -q -e {root}[cpu,test,torch]"
    stamp = (root / ".venv" / ".cpubench-installed-test,torch").read_text().split()
    assert stamp[1] == "tf=cpu" and (root / ".venv" / ".cpubench-installed").read_text().split() == stamp
    log.unlink()
    assert _venv(root, env, "test,torch").returncode == 0 and _venv(root, env).returncode == 0
    assert not log.exists()  # the stamp (setup.py's hash and the choice) matches: no pip call
    # a GPU host (faked): the cuda extra would go beside tensorflow-cpu: refused with the fix, nothing installed
    gpu_env = {**_host_env(tmp_path, smi=True), "HOME": str(tmp_path), "PYTHONPATH": str(cpu_site)}
    p = _venv(root, gpu_env, "test,torch")
    assert p.returncode == 2 and not log.exists()
    assert p.stderr.splitlines()[-1].startswith(f"cpubench: {root}/.venv holds tensorflow-cpu but this host chose")
    # both distributions seen by the venv's python: refused whatever the choice
    both = {**env, "PYTHONPATH": os.pathsep.join([str(cpu_site), str(_site(tmp_path, "tensorflow"))])}
    p = _venv(root, both)
    assert p.returncode == 2 and not log.exists()
    assert "holds both tensorflow-cpu and tensorflow" in p.stderr.splitlines()[-1]


def test_host_record_says_which_tensorflow_and_why() -> None:
    got = facts.tf_install({facts.TF_CHOSEN_ENV: "cpu no NVIDIA GPU visible (no nvidia-smi)"})
    assert got["chosen"] == "cpu" and got["chosen_because"] == "no NVIDIA GPU visible (no nvidia-smi)"
    assert got["distributions"]["tensorflow-cpu"] == {"version": "2.21.0", "build": "cpu"}  # this machine's
    assert "warning" not in got and "chosen" not in facts.tf_install({})


# -- 2. GPU facts in host.json ----------------------------------------------------------------------------------------


def test_nvidia_smi_fixture_parses_into_four_gpus_with_their_links() -> None:
    rows = facts.parse_nvidia_smi(SMI_FIXTURE.read_text())
    assert [g["index"] for g in rows] == [0, 1, 2, 3]
    assert {g["name"] for g in rows} == {"NVIDIA A100-SXM4-40GB"}
    assert {g["memory_mib"] for g in rows} == {40960} and {g["driver"] for g in rows} == {"535.129.03"}
    assert [g["pcie_gen"] for g in rows] == [4, 4, 4, 1] and {g["pcie_width"] for g in rows} == {16}
    assert rows[1]["uuid"] == "GPU-9c7f3e22-51aa-4e8b-b3d4-6a0e2f5c7b12"
    odd = facts.parse_nvidia_smi("0, Tesla K80, 11441, 470.57.02, [N/A], [Not Supported], GPU-1\nNo devices found\n")
    assert odd == [{"index": 0, "name": "Tesla K80", "memory_mib": 11441, "driver": "470.57.02", "pcie_gen": None,
                    "pcie_width": None, "uuid": "GPU-1"}]  # fmt: skip


def test_gpu_facts_from_nvidia_smi_and_the_tensorflow_probe(tmp_path: Path) -> None:
    rows, why = facts.nvidia_smi(_host_env(tmp_path, smi=True))
    assert len(rows) == 4 and why is None
    probe = {
        "tf_version": "2.21.0",
        "build_info": {"is_cuda_build": True, "cuda_version": "12.5.1", "cudnn_version": "9"},
        "gpus_visible": [{"name": f"/physical_device:GPU:{i}", "compute_capability": [8, 0]} for i in range(4)],
    }
    gpu = facts.gpu_facts(rows, why, probe)
    assert gpu["count"] == 4 and gpu["models"] == {"NVIDIA A100-SXM4-40GB": 4} and "n/a" not in gpu
    assert gpu["memory_mib"] == [40960] and gpu["driver"] == ["535.129.03"]
    assert gpu["pcie"][3] == {"index": 3, "gen": 1, "width": 16}
    assert gpu["tf_built_with"] == {"is_cuda_build": True, "cuda": "12.5.1", "cudnn": "9"}
    assert gpu["tf_sees"]["count"] == 4
    # into the typed host record and back, as host.json holds it
    rec = HostRecord.from_dict({"schema": 1, "host_id": "a100-box", "gpus": rows, "gpu": gpu})
    assert HostRecord.from_dict(json.loads(json.dumps(rec.to_dict()))) == rec and rec.gpu == gpu


def test_gpu_facts_say_na_with_the_reason_on_a_host_without_gpus(tmp_path: Path) -> None:
    rows, why = facts.nvidia_smi(_host_env(tmp_path))
    assert rows == [] and why is not None and why.startswith("no NVIDIA GPU: nvidia-smi is not on PATH")
    cpu_build = {"build_info": {"is_cuda_build": False}, "gpus_visible": []}
    gpu = facts.gpu_facts(rows, why, cpu_build)
    assert gpu == {"count": 0, "n/a": why, "tf_built_with": {"is_cuda_build": False, "cuda": None, "cudnn": None},
                   "tf_sees": {"count": 0, "devices": []}}  # fmt: skip
    env = _host_env(tmp_path)
    env["PATH"] = f"{_fake_smi(tmp_path / 'broken', csv=None)}{os.pathsep}{env['PATH']}"
    rows, why = facts.nvidia_smi(env)
    assert rows == [] and why is not None and "could not communicate with the NVIDIA driver" in why
    assert facts.gpu_facts([], why, {"skipped": "CPUBENCH_NO_TF_PROBE is set"})["tf_sees"].startswith("n/a:")


def test_an_old_host_json_without_gpu_facts_reads_as_before() -> None:
    old = {"schema": 1, "host_id": "old", "gpus": [{"index": 0, "name": "NVIDIA H100", "pci_bus_id": "0:1"}]}
    rec = HostRecord.from_dict(old)
    assert rec.gpu is None and rec.tf_install is None and rec.to_dict() == old


def test_physical_gpu_ids_follow_cuda_visible_devices() -> None:
    assert result.physical_gpu_ids(2, False, None) == ["0", "1"]
    assert result.physical_gpu_ids(2, False, "3,1") == ["3", "1"]
    assert result.physical_gpu_ids(2, False, "GPU-aa, GPU-bb") == ["GPU-aa", "GPU-bb"]
    assert result.physical_gpu_ids(4, True, "2,3") == ["2"] * 4  # logical GPUs: all on the first card
    assert result.physical_gpu_ids(4, True, None) == ["0"] * 4


# -- 3. real and logical devices kept apart --------------------------------------------------------------------------


def test_logical_gpus_flag_needs_a_gpu_and_no_nccl() -> None:
    assert flags.parse(["--device=gpu", "--num_gpus=4", "--logical_gpus"]).logical_gpus is True
    with pytest.raises(flags.FlagError, match=r"--logical_gpus splits one GPU and needs --device=gpu"):
        flags.parse(["--num_gpus=4", "--logical_gpus"])
    with pytest.raises(flags.FlagError, match=r"NCCL cannot all-reduce between logical devices of one GPU"):
        flags.parse(["--device=gpu", "--num_gpus=4", "--logical_gpus", "--variable_update=replicated", "--use_nccl"])


LOGICAL = "--device=gpu --num_gpus=4 --logical_gpus"


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (LOGICAL, ["--logical_gpus", "no GPU visible to TensorFlow", "--device=cpu"]),
        ("--device=gpu --num_gpus=4", ["--num_gpus=4", "no GPU", "--logical_gpus", "not comparable"]),
    ],
)
def test_gpus_asked_of_this_gpu_less_host_fail_in_one_line(tmp_path: Path, args: str, needles: list[str]) -> None:
    """The real engine, on this machine (no GPU): one error line, and a failed record with the same reason."""
    out = tmp_path / "result.json"
    argv = [sys.executable, "-m", "tf_cnn_benchmarks", "--model=trivial", "--batch_size=2", "--num_batches=2",
            "--num_warmup_batches=1", *args.split(), f"--result_json={out}"]  # fmt: skip
    p = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=_env(), timeout=300)
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith(ERROR_PREFIX)]
    assert p.returncode == 1 and len(lines) == 1, p.stderr[-2000:]
    assert "total images/sec" not in p.stdout
    rec = read_result(out)
    assert rec is not None and rec.status == "failed" and rec.images_per_sec is None
    assert lines == [f"{ERROR_PREFIX} {rec.reason}"]
    for needle in needles:
        assert needle in (rec.reason or ""), rec.reason
    assert rec.details["flags"]["logical_gpus"] is ("--logical_gpus" in args)


LAMBDA = (REPO / "configs" / "lambda-4gpu.yaml").read_text()


def test_logical_gpus_in_a_config_are_named_logical_and_nccl_is_left_out_with_the_reason() -> None:
    cfg = config.parse_config(LAMBDA.replace("num_gpus: [4]", "num_gpus: [4]\nlogical_gpus: [false, true]"))
    names = plan.settings(cfg)
    logical = [n for n in names if n.endswith("-logical")]
    assert "syn-replicated-4gpus" in names and "syn-replicated-4gpus-logical" in logical
    assert not [n for n in logical if "nccl" in n]  # NCCL only between real GPUs
    assert "syn-replicated-nccl-4gpus" in names and len(logical) == 6
    assert any("NCCL cannot all-reduce between logical devices of one GPU" in line for line in plan.plan_notes(cfg))
    runs = plan.plan(cfg, repeats=1)
    argv_of = {r.setting.name: axes.argv(r.values, axes.Context()) for r in runs}
    assert "--logical_gpus=true" in argv_of["syn-replicated-4gpus-logical"]
    assert not [a for a in argv_of["syn-replicated-4gpus"] if "logical" in a]  # off: upstream's engine still runs
    # off is the default: a real-GPU setting's identity (and run hash) is what it was before the axis existed
    real = next(r for r in runs if r.setting.name == "syn-replicated-4gpus")
    assert "logical_gpus" not in axes.identity(real.values)
    with pytest.raises(config.ConfigError, match="logical_gpus"):
        config.parse_config(LAMBDA.replace("device: gpu", "device: gpu\nlogical_gpus: maybe"))
    cpu = config.parse_config(LAMBDA.replace("device: gpu", "device: cpu\nlogical_gpus: true"))
    assert plan.settings(cpu) == [] and any("device: cpu" in line for line in plan.plan_notes(cpu))


# -- 4. input-bound, said in numbers ----------------------------------------------------------------------------------


def _run(host: str, setting: str, model: str, repeat: int, ips: float, noise: dict[str, Any] | None = None,
         **params: Any) -> RunRecord:  # fmt: skip
    tokens = setting.split("-")
    p = {"data": tokens[0], "variable_update": tokens[1], "nccl": "nccl" in tokens,
         "distortions": "distortions" in tokens, "device": "gpu", "num_devices": 4,
         "logical_gpus": "logical" in tokens, **params}  # fmt: skip
    steps = [64 * 4 / ips] * 10
    return RunRecord.from_dict({
        "schema": store.RUN_SCHEMA, "status": "ok", "host_id": host, "setting": setting, "model": model,
        "batch_size": 64, "num_devices": 4, "repeat": repeat, "images_per_sec": 64 * 4 * 10 / sum(steps),
        "global_batch_size": 256, "step_times": steps, "params": p, "run_hash": f"{setting}-{model}",
        "started": f"2026-01-0{1 + repeat}T00:00:00+00:00", "engine": {"name": "tf_cnn_benchmarks", "version": "0.1.0"},
        "noise": noise, "source": "run",
    })  # fmt: skip


def _gpu_folder(root: Path, host: str, brand: str, factor: float, real: bool = True) -> None:
    store.write_host(root, {"host_id": host, "cpu_brand": brand, "machine_fingerprint": f"fp-{host}",
                            "gpus": [{"name": "NVIDIA A100-SXM4-40GB"}] * 4, "tf_version": "2.21.0"})  # fmt: skip
    for r in range(3):
        wobble = 1 + 0.01 * (r - 1)
        for model, ips in (("resnet50", 1000.0), ("vgg16", 600.0)):
            store.append_run(root, _run(host, "syn-replicated-4gpus", model, r, ips * wobble))
            store.append_run(root, _run(host, "syn-parameter_server-4gpus", model, r, 0.9 * ips * wobble))
            store.append_run(root, _run(host, "syn-replicated-4gpus-logical", model, r, 0.3 * ips * wobble))
            if not real:
                continue
            # the CPU decodes fast enough for vgg16, not for resnet50 on the slower host
            rate = ips * (min(1.0, factor) if model == "resnet50" else 0.97) * wobble
            noise = {"foreign_cpu_pct": 1.0, "resolution_pct": 0.5, "own_cpu_pct": 80.0, "host_cpu_pct": 81.0 + r}
            store.append_run(root, _run(host, "real-replicated-distortions-4gpus", model, r, rate, noise))
            # written before the engine measured its own CPU: no host CPU figure
            store.append_run(root, _run(host, "real-replicated-4gpus-logical", model, r, 0.25 * ips * wobble,
                                        {"foreign_cpu_pct": 1.0, "resolution_pct": 0.5}))  # fmt: skip


def test_input_bound_fraction_and_mark_from_hand_made_records(tmp_path: Path) -> None:
    _gpu_folder(tmp_path, "epyc-7742", "AMD EPYC 7742 64-Core Processor", 1.0)
    _gpu_folder(tmp_path, "xeon-e5", "Intel(R) Xeon(R) CPU E5-2690 v4", 0.62)
    items = inputbound.input_bound(merge.merge([tmp_path]))
    got = {(b.setting, b.model, b.host_id): b for b in items}
    slow = got[("real-replicated-distortions-4gpus", "resnet50", "xeon-e5")]
    assert slow.synthetic_setting == "syn-replicated-4gpus"  # same model, mode, device count; not parameter_server
    assert slow.fraction == pytest.approx(0.62) and slow.input_bound is True
    assert slow.host_cpu_pct == 82.0 and slow.n_real == slow.n_synthetic == 3
    fast = got[("real-replicated-distortions-4gpus", "vgg16", "xeon-e5")]
    assert fast.fraction == pytest.approx(0.97) and fast.input_bound is False
    assert got[("real-replicated-distortions-4gpus", "resnet50", "epyc-7742")].input_bound is False
    # logical GPUs against logical GPUs only, never the real 4-GPU figure
    lg = got[("real-replicated-4gpus-logical", "resnet50", "epyc-7742")]
    assert lg.synthetic_setting == "syn-replicated-4gpus-logical" and lg.fraction == pytest.approx(0.25 / 0.3)
    assert lg.host_cpu_pct is None  # the records do not say
    # report order: settings by their axis values (undistorted first), then models, then hosts as the columns go
    assert list(dict.fromkeys(b.setting for b in items)) == ["real-replicated-4gpus-logical",
                                                             "real-replicated-distortions-4gpus"]  # fmt: skip
    assert [(b.model, b.host_id) for b in items][:3] == [("resnet50", "epyc-7742"), ("resnet50", "xeon-e5"),
                                                         ("vgg16", "epyc-7742")]  # fmt: skip

    files, _ = report.build_report([tmp_path], tmp_path / "out", model_rows=None, plots=False)
    md = files.summary.read_text()
    section = md.split("## Input-bound: real data against synthetic", 1)[1]
    assert "### real-replicated-distortions-4gpus against syn-replicated-4gpus\n" in section
    assert "### real-replicated-4gpus-logical against syn-replicated-4gpus-logical\n" in section
    real4 = section.split("### real-replicated-distortions-4gpus", 1)[1]
    row = next(ln for ln in real4.splitlines() if ln.startswith("| resnet50 (bs 64) | xeon-e5"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:] == ["620.00", "1000.00", "62.0%", "82%", "input-bound"]
    row = next(ln for ln in real4.splitlines() if ln.startswith("| vgg16 (bs 64)    | xeon-e5"))
    assert [c.strip() for c in row.strip("|").split("|")][4:] == ["97.0%", "82%", ""]
    assert "n/a |" in section  # the logical runs' host CPU


def test_a_real_setting_without_its_synthetic_twin_says_so(tmp_path: Path) -> None:
    store.write_host(tmp_path, {"host_id": "h", "machine_fingerprint": "fp"})
    for r in range(2):
        store.append_run(tmp_path, _run("h", "real-parameter_server-4gpus", "resnet50", r, 500.0))
    (b,) = inputbound.input_bound(merge.merge([tmp_path]))
    assert b.fraction is None and b.input_bound is None
    assert b.why == "no ok run of syn-parameter_server-4gpus on this host"


def test_no_real_data_no_section(tmp_path: Path) -> None:
    _gpu_folder(tmp_path, "epyc-7742", "AMD EPYC 7742 64-Core Processor", 1.0, real=False)
    files, _ = report.build_report([tmp_path], tmp_path / "out", model_rows=None, plots=False)
    assert "Input-bound" not in files.summary.read_text()


# -- 5. the Lambda layout kept on GPU hosts ---------------------------------------------------------------------------


def test_gpu_records_give_the_classic_per_setting_tables(tmp_path: Path) -> None:
    """``**syn-replicated-4gpus**``, models as rows, one column per host CPU: as lambdal/cpu_benchmark's summary."""
    _gpu_folder(tmp_path, "i7-7820X", "Intel(R) Core(TM) i7-7820X CPU @ 3.60GHz", 0.8, real=False)
    _gpu_folder(tmp_path, "EPYC-7742", "AMD EPYC 7742 64-Core Processor", 1.0, real=False)
    files, _ = report.build_report([tmp_path], tmp_path / "out", model_rows=None, plots=False)
    md = files.summary.read_text()
    images = md.split("## Images/sec", 1)[1].split("## Relative to", 1)[0]
    headers = [ln for ln in images.splitlines() if ln.startswith("**")]
    assert headers == ["**syn-parameter_server-4gpus**", "**syn-replicated-4gpus**", "**syn-replicated-4gpus-logical**"]
    block = images.split("**syn-replicated-4gpus**\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [c.strip() for c in block[0].strip("|").split("|")] == ["model", "EPYC-7742", "i7-7820X"]
    assert block[1].startswith("|:") and block[1].count("--:") == 2  # model left, figures right
    assert [ln.split("|")[1].strip() for ln in block[2:]] == ["resnet50", "vgg16"]
    assert [c.strip() for c in block[2].strip("|").split("|")] == ["resnet50", "1000.00", "1000.00"]
    assert "4\u00d7 NVIDIA A100-SXM4-40GB" in md  # the hosts table names the GPUs
