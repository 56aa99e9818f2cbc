"""TensorFlow against PyTorch on resnet50, side by side in one run, through both engines; and our PyTorch executor
against a plain PyTorch ResNet-50 written the usual way.

Cases: inference at batch 1, 8 and 32 and training at batch 32, on all cores. Each framework runs in each of its
modes (TensorFlow graph, eager, xla; PyTorch eager, script, compile) as a fresh engine process
(``python -m tf_cnn_benchmarks --framework=...``, the way a sweep runs it). The reference is a ``torch.nn.Module``
this file builds from torch's own layers (``nn.Conv2d``, ``nn.BatchNorm2d``, ``nn.ReLU``, a ``Bottleneck`` class),
with the same parameter count as our declaration, run in a fresh process with the engine's set-up (channels_last,
the same pools, synthetic batch, inference_mode, SGD) and timed by the engine's own loop
(:func:`tf_cnn_benchmarks.timing.measure`). Every measurement runs alone; the order is interleaved across repeats, so
drift in the machine's load hits all alike; figures are medians with their min-max spread, and ratios are taken per
repeat (pairs measured back to back) as well as of the medians.

Where one framework's best mode is more than 1.3x slower than the other's, the script prints where each spends its
time: the declared network walked node by node in each framework's eager mode, synchronised after every node, summed
per kind of layer (conv, batch norm, pool...).

    .venv/bin/python bench/tf_vs_torch.py [--repeats 3] [--steps 5] [--warmup 2] [--window 2]
        [--cases infer1,infer8,infer32,train32]
        [--modes tf-graph,tf-eager,tf-xla,pt-eager,pt-script,pt-compile,ref-eager] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the engine's package, also from a checkout that is not installed

import _engine  # noqa: E402

from tf_cnn_benchmarks.record import Spread  # noqa: E402

CASES = {"infer1": (True, 1), "infer8": (True, 8), "infer32": (True, 32), "train32": (False, 32)}
MODES = ("tf-graph", "tf-eager", "tf-xla", "pt-eager", "pt-script", "pt-compile", "ref-eager", "ref-script")
DEFAULT_MODES = ("tf-graph", "tf-eager", "tf-xla", "pt-eager", "pt-script", "pt-compile", "ref-eager")


# -- the reference: a ResNet-50 (v1, stride on the first 1x1 as our declaration) written the usual way -------------
def reference_resnet50(num_classes: int = 1001):  # noqa: ANN201 - torch is imported in the worker only
    import torch
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, cin: int, depth: int, stride: int) -> None:
            super().__init__()
            out = depth * 4
            self.conv1 = nn.Conv2d(cin, depth, 1, stride, bias=False)
            self.bn1 = nn.BatchNorm2d(depth, eps=1e-3, momentum=0.003)
            self.conv2 = nn.Conv2d(depth, depth, 3, 1, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(depth, eps=1e-3, momentum=0.003)
            self.conv3 = nn.Conv2d(depth, out, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(out, eps=1e-3, momentum=0.003)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = None
            if cin != out or stride != 1:
                self.downsample = nn.Sequential(
                    nn.Conv2d(cin, out, 1, stride, bias=False), nn.BatchNorm2d(out, eps=1e-3, momentum=0.003)
                )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            identity = x if self.downsample is None else self.downsample(x)
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.relu(self.bn2(self.conv2(y)))
            y = self.bn3(self.conv3(y))
            y += identity  # in place, as torchvision's Bottleneck does
            return self.relu(y)

    class ResNet50(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(
                nn.Conv2d(3, 64, 7, 2, padding=3, bias=False),
                nn.BatchNorm2d(64, eps=1e-3, momentum=0.003),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, padding=1),
            )
            blocks, cin = [], 64
            for stage, count in enumerate((3, 4, 6, 3)):
                depth = 64 * 2**stage
                for i in range(count):
                    blocks.append(Bottleneck(cin, depth, 2 if (i == 0 and stage > 0) else 1))
                    cin = depth * 4
            self.layers = nn.Sequential(*blocks)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(cin, num_classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))

    return ResNet50()


def _reference_worker(forward_only: bool, batch: int, steps: int, warmup: int, mode: str, window: float) -> None:
    """Time the reference module in this fresh process with the engine's set-up, and print its figure as JSON."""
    import torch
    import torch.nn.functional as F

    from tf_cnn_benchmarks import hostfacts, models
    from tf_cnn_benchmarks.timing import measure

    cores = len(hostfacts.schedulable_cpus())
    torch.set_num_threads(cores)
    torch.set_num_interop_threads(cores)
    torch.manual_seed(1234)
    net = reference_resnet50().to(memory_format=torch.channels_last)
    declared = models.get("resnet50").graph().summary()["params"]
    have = sum(p.numel() for p in net.parameters())
    if have != declared:
        raise SystemExit(f"reference has {have} parameters, the declaration {declared}")
    gen = torch.Generator().manual_seed(1234)
    images = torch.empty(batch, 3, 224, 224)
    torch.nn.init.trunc_normal_(images, std=1.0, a=-2.0, b=2.0, generator=gen)
    images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(1, 1001, (batch,), generator=gen)
    net.train(not forward_only)
    model = net
    if mode == "script":
        with torch.no_grad():
            model = torch.jit.trace(net, images, check_trace=False)
            if forward_only:
                model = torch.jit.optimize_for_inference(torch.jit.freeze(model))
    if forward_only:

        def step() -> float:
            with torch.inference_mode():
                return float(F.cross_entropy(model(images), labels))
    else:
        opt = torch.optim.SGD(net.parameters(), lr=0.005, weight_decay=4e-5)

        def step() -> float:
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            opt.step()
            return float(loss.detach())

    t0 = time.perf_counter()
    m = measure(step, global_batch=batch, num_warmup=warmup, num_batches=steps, display_every=steps, started=t0,
                build_started=t0, min_window_seconds=window)  # fmt: skip
    print(json.dumps({"images_per_sec": m.samples.images_per_sec}))


# -- where the time goes ------------------------------------------------------------------------------------------
def _breakdown_worker(framework: str, forward_only: bool, batch: int) -> None:
    """The declared resnet50 walked node by node in eager mode, synchronised after each node: seconds per kind of
    layer (median of 3 passes), printed as JSON. A diagnostic, not a speed: graph modes fuse what this separates."""
    import statistics

    from tf_cnn_benchmarks import models

    graph = models.get("resnet50").graph()
    per_kind: dict[str, list[float]] = {}
    if framework == "tensorflow":
        import numpy as np
        import tensorflow as tf

        from tf_cnn_benchmarks.models.network import Network

        net = Network(graph)
        images = tf.constant(np.random.default_rng(0).standard_normal((batch, 224, 224, 3)).astype(np.float32))

        def one_pass() -> dict[str, float]:
            values, spent, subsampled = [None] * len(graph.nodes), {}, {}
            for i, node in enumerate(graph.nodes):
                t = time.perf_counter()
                args = [values[j] for j in node.inputs]
                values[i] = net._apply(i, node, args, images, not forward_only, subsampled)
                _ = values[i].numpy() if hasattr(values[i], "numpy") else None
                spent[node.op] = spent.get(node.op, 0.0) + time.perf_counter() - t
            return spent
    else:
        import torch

        from tf_cnn_benchmarks.models.torchnet import TorchNetwork

        net = TorchNetwork(graph).to(memory_format=torch.channels_last).train(not forward_only)
        images = torch.randn(batch, 3, 224, 224).contiguous(memory_format=torch.channels_last)
        hooks: dict[str, float] = {}

        def pre(_m: object, _i: object) -> None:
            hooks["t"] = time.perf_counter()

        spent: dict[str, float] = {}
        kinds = {n.name: n.op for n in graph.nodes}
        for name, layer in net.layers.items():

            def post(_m: object, _i: object, _o: object, op: str = kinds.get(name, name)) -> None:
                spent[op] = spent.get(op, 0.0) + time.perf_counter() - hooks["t"]

            layer.register_forward_pre_hook(pre)
            layer.register_forward_hook(post)

        def one_pass() -> dict[str, float]:
            spent.clear()
            t = time.perf_counter()
            with torch.inference_mode():
                net(images)
            spent["(between layers)"] = time.perf_counter() - t - sum(spent.values())
            return dict(spent)

    one_pass()
    for _ in range(3):
        for k, v in one_pass().items():
            per_kind.setdefault(k, []).append(v)
    print(json.dumps({k: statistics.median(v) for k, v in per_kind.items()}))


def _worker_cmd(*args: str) -> list[str]:
    return [sys.executable, __file__, "--worker", *args]


def _run_json(cmd: list[str]) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise RuntimeError(f"{' '.join(cmd[2:6])} failed: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- one measurement ------------------------------------------------------------------------------------------------
def measure_one(mode: str, forward_only: bool, batch: int, steps: int, warmup: int, window: float) -> float:
    """Images/sec of one fresh process; a failed run raises with its reason (never a 0)."""
    who, how = mode.split("-", 1)
    if who == "ref":
        args = ("ref", str(forward_only), str(batch), str(steps), str(warmup), how, str(window))
        return float(_run_json(_worker_cmd(*args))["images_per_sec"])
    framework = "tensorflow" if who == "tf" else "pytorch"
    flags = [f"--framework={framework}", f"--execution={how}", "--model=resnet50", f"--batch_size={batch}",
             f"--num_batches={steps}", f"--num_warmup_batches={warmup}", f"--forward_only={forward_only}",
             f"--min_window_seconds={window}"]  # fmt: skip
    return float(_engine.run_engine(flags).images_per_sec)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--window", type=float, default=2.0, help="each measured window runs at least this long (s)")
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--modes", default=",".join(DEFAULT_MODES), help=f"any of {', '.join(MODES)}")
    p.add_argument("--quick", action="store_true", help="inference at batch 1, 1 step, 1 repeat: checks it runs")
    p.add_argument("--worker", nargs="*", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        kind, *rest = a.worker
        if kind == "ref":
            _reference_worker(rest[0] == "True", int(rest[1]), int(rest[2]), int(rest[3]), rest[4], float(rest[5]))
        else:
            _breakdown_worker(kind, rest[0] == "True", int(rest[1]))
        return 0
    if a.quick:
        a.cases, a.steps, a.warmup, a.repeats, a.window = "infer1", 1, 1, 1, 0.0
    cases = [c for c in a.cases.split(",") if c]
    modes = [m for m in a.modes.split(",") if m]
    unknown = [c for c in cases if c not in CASES] + [m for m in modes if m not in MODES]
    if unknown:
        p.error(f"unknown case or mode: {', '.join(unknown)}")
    figures: dict[tuple[str, str], list[float]] = {}
    failures: dict[tuple[str, str], str] = {}
    loads: list[float] = []
    t_start = time.monotonic()
    for r in range(a.repeats):
        for case in cases:
            forward_only, batch = CASES[case]
            for mode in modes:
                if (case, mode) in failures:
                    continue
                loads.append(os.getloadavg()[0])
                try:
                    figure = measure_one(mode, forward_only, batch, a.steps, a.warmup, a.window)
                    figures.setdefault((case, mode), []).append(figure)
                    shown = f"{figures[(case, mode)][-1]:9.2f} images/sec"
                except RuntimeError as e:
                    failures[(case, mode)] = str(e)
                    figures.pop((case, mode), None)
                    shown = f"failed: {e}"
                print(f"  repeat {r + 1}/{a.repeats} {case:8s} {mode:11s} {shown}  (load {loads[-1]:.2f})",
                      file=sys.stderr, flush=True)  # fmt: skip
    wall = time.monotonic() - t_start
    print(f"resnet50 on all cores ({len(os.sched_getaffinity(0))} CPUs), at least {a.steps} timed steps and "
          f"{a.window:g} s after {a.warmup} warm-up per process, {a.repeats} repeats interleaved; images/sec, "
          f"median [min-max]; load average 1-min {min(loads):.2f}-{max(loads):.2f}; {wall / 60:.1f} min")  # fmt: skip
    header = f"| case | {' | '.join(modes)} |"
    print(header)
    print("|" + "---|" * (len(modes) + 1))
    for case in cases:
        cells = []
        for mode in modes:
            if (case, mode) in failures:
                cells.append("failed")
            else:
                cells.append(Spread.of(figures[(case, mode)]).text())
        print(f"| {case} | {' | '.join(cells)} |")
    for (case, mode), why in failures.items():
        print(f"  {case} {mode}: failed: {why}")
    _ratios(cases, modes, figures, a.repeats)
    return 0


def _ratio(figures: dict[tuple[str, str], list[float]], case: str, a: str, b: str) -> str | None:
    if (case, a) not in figures or (case, b) not in figures:
        return None
    x, y = figures[(case, a)], figures[(case, b)]
    pairs = [p / q for p, q in zip(x, y, strict=True)]
    med = Spread.of(x).median / Spread.of(y).median
    return f"{med:.3f}x of the medians, per repeat {Spread.of(pairs).text(unit='x')}"


def _ratios(cases: list[str], modes: list[str], figures: dict[tuple[str, str], list[float]], repeats: int) -> None:
    best: Callable[[str, str], str | None] = lambda case, who: max(  # noqa: E731
        (m for m in modes if m.startswith(who + "-") and (case, m) in figures),
        key=lambda m: Spread.of(figures[(case, m)]).median,
        default=None,
    )
    print("ratios (images/sec; above 1 the first is faster):")
    for case in cases:
        for how in ("eager", "script"):
            text = _ratio(figures, case, f"pt-{how}", f"ref-{how}")
            if text:
                print(f"  {case} our PyTorch executor / plain PyTorch module ({how}): {text}")
        pt, tf = best(case, "pt"), best(case, "tf")
        if pt and tf:
            print(f"  {case} PyTorch best ({pt}) / TensorFlow best ({tf}): {_ratio(figures, case, pt, tf)}")
            ratio = Spread.of(figures[(case, pt)]).median / Spread.of(figures[(case, tf)]).median
            if ratio > 1.3 or ratio < 1 / 1.3:
                forward_only, batch = CASES[case]
                print(f"  {case}: one framework is more than 1.3x slower; seconds per pass by layer kind, eager, "
                      "node by node:")  # fmt: skip
                for fw in ("tensorflow", "pytorch"):
                    spent = _run_json(_worker_cmd(fw, str(forward_only), str(batch)))
                    total = sum(spent.values())
                    top = sorted(spent.items(), key=lambda kv: -kv[1])[:6]
                    print(f"    {fw:10s} {total:.3f} s: " + ", ".join(f"{k} {v:.3f} ({100 * v / total:.0f}%)"
                                                               for k, v in top))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
