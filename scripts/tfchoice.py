"""Which TensorFlow this host gets, and whether a virtual environment holds the one it should (stdlib only).

Why a helper of its own: ``tensorflow-cpu`` and ``tensorflow[and-cuda]`` are two distributions that both install the
``tensorflow/`` package, so an environment holding both runs whichever pip wrote last. The scripts therefore install
exactly one, chosen here from what the host shows (an NVIDIA GPU and driver: CUDA; anything else: the CPU build),
and refuse an environment that holds both, or the other one, with the one command that fixes it. It runs before
the project is installed (with the system Python) and inside the venv (to read what is installed), so it imports
nothing but the standard library; the tests fake the host (``PATH``, :data:`PROC_ENV`, :data:`OVERRIDE_ENV`).

    python scripts/tfchoice.py choose            # prints `cpu|cuda why`; a line saying so goes to stderr
    python scripts/tfchoice.py check cpu|cuda    # exit 0: installed as chosen; 3: not installed; 2: refused
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

OVERRIDE_ENV = "CPUBENCH_TF"  # cpu | cuda: the user's choice beats the detection
PROC_ENV = "CPUBENCH_PROC_NVIDIA"  # where the NVIDIA driver's /proc folder is (tests point it elsewhere)
PROC_NVIDIA = "/proc/driver/nvidia"
CHOICES = ("cpu", "cuda")
# The distribution each choice installs (setup.py's extras of the same names pin the version).
DISTRIBUTION = {"cpu": "tensorflow-cpu", "cuda": "tensorflow"}
REQUIREMENT = {"cpu": "tensorflow-cpu", "cuda": "tensorflow[and-cuda]"}
EXIT_OK, EXIT_REFUSED, EXIT_MISSING = 0, 2, 3


class ChoiceError(Exception):
    """A choice that cannot be made (a bad override): the message is the one line the user sees."""


def _smi_gpus(env: Mapping[str, str]) -> list[str]:
    """The ``GPU n: ...`` lines of ``nvidia-smi -L`` found on ``env``'s PATH ([] without one, or when it fails)."""
    exe = shutil.which("nvidia-smi", path=env.get("PATH", os.defpath))
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=30, env=dict(env)).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip().startswith("GPU ")]


def _proc_gpus(proc: str) -> list[str]:
    """The GPUs the NVIDIA kernel driver lists under ``<proc>/gpus`` (one folder per PCI address)."""
    try:
        return sorted(p.name for p in Path(proc, "gpus").iterdir())
    except OSError:
        return []


def choose(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """``(cpu | cuda, why)``: CUDA where an NVIDIA GPU and driver are visible, else the CPU build; the
    :data:`OVERRIDE_ENV` variable wins. Raises :class:`ChoiceError` for an override that is neither."""
    env = os.environ if env is None else env
    forced = env.get(OVERRIDE_ENV, "").strip().lower()
    if forced:
        if forced not in CHOICES:
            raise ChoiceError(f"{OVERRIDE_ENV}={env[OVERRIDE_ENV]}: expected cpu or cuda (or leave it unset to detect)")
        return forced, f"{OVERRIDE_ENV}={forced}"
    smi = _smi_gpus(env)
    if smi:
        return "cuda", f"nvidia-smi lists {len(smi)} GPU(s): {smi[0]}"
    proc = env.get(PROC_ENV) or PROC_NVIDIA
    found = _proc_gpus(proc)
    if found:
        return "cuda", f"the NVIDIA driver lists {len(found)} GPU(s) under {proc}/gpus"
    return "cpu", f"no NVIDIA GPU visible (no nvidia-smi on PATH listing one, no GPU under {proc}/gpus)"


def installed(paths: Iterable[str] | None = None) -> set[str]:
    """The TensorFlow distributions installed (of :data:`DISTRIBUTION`'s), in ``paths`` (default: this Python's)."""
    from importlib import metadata

    dists = metadata.distributions() if paths is None else metadata.distributions(path=list(paths))
    names = {(d.metadata["Name"] or "").lower().replace("_", "-") for d in dists}
    return names & set(DISTRIBUTION.values())


def check(choice: str, have: set[str], venv: str = ".venv") -> tuple[int, str]:
    """Whether an environment holding the distributions ``have`` is right for ``choice``: (exit code, message).

    Both at once is refused (which one imports is an accident of install order); the other one alone is refused
    too, since installing the chosen one beside it would make both. Each refusal names the command that fixes it."""
    want, other = DISTRIBUTION[choice], DISTRIBUTION["cuda" if choice == "cpu" else "cpu"]
    pip = f"{venv}/bin/pip uninstall -y"
    if want in have and other in have:
        return EXIT_REFUSED, (
            f"cpubench: {venv} holds both tensorflow-cpu and tensorflow (CUDA), which install the same tensorflow/ "
            f"package; keep one: {pip} {other} (this host chose {choice}; {OVERRIDE_ENV}=cpu|cuda picks), then rerun"
        )
    if other in have:
        return EXIT_REFUSED, (
            f"cpubench: {venv} holds {other} but this host chose {REQUIREMENT[choice]}; installing it beside would "
            f"leave both: {pip} {other} and rerun (or set {OVERRIDE_ENV}={'cuda' if choice == 'cpu' else 'cpu'})"
        )
    if want not in have:
        return EXIT_MISSING, f"cpubench: {venv} has no {want} (the {choice} extra) installed"
    return EXIT_OK, ""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["choose"] and len(args) == 1:
        try:
            choice, why = choose()
        except ChoiceError as e:
            print(f"cpubench: {e}", file=sys.stderr)
            return EXIT_REFUSED
        print(f"cpubench: TensorFlow build: {choice} ({REQUIREMENT[choice]}): {why}", file=sys.stderr)
        print(f"{choice} {why}")  # the scripts read the first word; the rest is recorded (host.json: tf_install)
        return EXIT_OK
    if args[:1] == ["check"] and len(args) in (2, 3) and args[1] in CHOICES:
        code, message = check(args[1], installed(), args[2] if len(args) == 3 else ".venv")
        if message:
            print(message, file=sys.stderr)
        return code
    print("usage: tfchoice.py choose | check cpu|cuda [VENV]", file=sys.stderr)
    return EXIT_REFUSED


if __name__ == "__main__":
    sys.exit(main())
