"""The model declarations: every model builds, ends in logits, and matches the figures its paper publishes.

Only the symbolic graph is built (no TensorFlow execution), so these run in well under a second; the engine's tests
step every model on tiny batches.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cpubench.analysis.models import model_table_rows
from cpubench.render.models import render
from tf_cnn_benchmarks.models import IMAGENET_CLASSES, UnknownModelError, get, names

REPO = Path(__file__).resolve().parents[1]

EXPECTED_MODELS = {
    "trivial",
    "lenet",
    "alexnet",
    "vgg11",
    "vgg16",
    "vgg19",
    "googlenet",
    "inception3",
    "inception4",
    "mobilenet",
    "resnet50",
    "resnet50_v1.5",
    "resnet101",
    "resnet152",
}

# model -> (published parameters, published multiply-adds or None, relative tolerance, source)
# Our counts use 1001 classes (adds 4097, 2049 or 1025 parameters to a 1000-class figure, far below tolerance).
PUBLISHED: dict[str, tuple[float, float | None, float, str]] = {
    # He et al. 2015, Table 1 (3.8 G FLOPs = multiply-adds); 25.6 M is the usual count of the same network.
    "resnet50": (25.6e6, 3.8e9, 0.02, "He et al. 2015, Table 1"),
    # torchvision's alexnet is the same single-tower layout: 61,100,840 parameters, 0.71 G multiply-adds.
    "alexnet": (61.10e6, 0.714e9, 0.01, "Krizhevsky 2014 layout; torchvision model card"),
    # Simonyan & Zisserman 2014, Table 2 (133, 138, 144 M); the exact counts for 1000 classes are 132.86 M,
    # 138.36 M, 143.67 M, and the multiply-adds 7.6, 15.5, 19.6 G (e.g. torchvision's model cards).
    "vgg11": (132.9e6, 7.6e9, 0.01, "Simonyan & Zisserman 2014, Table 2"),
    "vgg16": (138.4e6, 15.5e9, 0.01, "Simonyan & Zisserman 2014, Table 2"),
    "vgg19": (143.7e6, 19.6e9, 0.01, "Simonyan & Zisserman 2014, Table 2"),
    # Szegedy et al. 2014, Table 1. Its params column sums to 6,797.7 "K" with K = 1024 (e.g. 3a: 163,328
    # weights = 159 K), i.e. 6.96 M weights; its ops column sums to 1,502 M but lists 34 M for the 7x7/2 stem,
    # which is 112*112*64*7*7*3 = 118 M: with that row corrected the table gives 1,586 M.
    "googlenet": (6.96e6, 1.586e9, 0.01, "Szegedy et al. 2014, Table 1 (sums, see comment)"),
    # Szegedy et al. 2015 without the auxiliary head; Keras' InceptionV3 (same layers, BN without scale) has
    # 23,817,352 trainable parameters; 5.7 G multiply-adds is the usual figure for this network.
    "inception3": (23.8e6, 5.7e9, 0.01, "Szegedy et al. 2015; Keras InceptionV3 trainable count"),
    # Szegedy et al. 2016; 42.7 M parameters and 12.3 G multiply-adds, the figures of TF-slim's inception_v4.
    "inception4": (42.7e6, 12.3e9, 0.01, "Szegedy et al. 2016; TF-slim inception_v4"),
    # Howard et al. 2017, Table 8: 1.0 MobileNet-224, 569 M mult-adds, 4.2 M parameters.
    "mobilenet": (4.2e6, 569e6, 0.01, "Howard et al. 2017, Table 8"),
}

# upstream tf_cnn_benchmarks' default batch sizes and input sizes (alexnet: 224 + 3 for its VALID stem)
UPSTREAM_DEFAULTS: dict[str, tuple[int, int]] = {
    "alexnet": (227, 512),
    "vgg11": (224, 64),
    "vgg16": (224, 64),
    "vgg19": (224, 64),
    "googlenet": (224, 32),
    "inception3": (299, 32),
    "inception4": (299, 32),
    "mobilenet": (224, 32),
}


def test_registry_holds_every_model() -> None:
    assert EXPECTED_MODELS <= set(names())


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS))
def test_model_declares_and_ends_in_logits(name: str) -> None:
    g = get(name).graph()
    last = g.nodes[-1]
    assert last.op == "dense" and last.shape == (1, 1, IMAGENET_CLASSES)
    s = g.summary()
    assert s["params"] > 0 and s["feature_mb"] >= 0 and s["layers"] >= 1
    # every node's inputs were recorded before it: the DAG is in execution order
    assert all(i < n for n, node in enumerate(g.nodes) for i in node.inputs)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_figures(name: str) -> None:
    params, macs, tol, source = PUBLISHED[name]
    s = get(name).graph().summary()
    assert s["params"] == pytest.approx(params, rel=tol), f"{name} parameters vs {source}"
    if macs is not None:
        assert s["macs"] == pytest.approx(macs, rel=tol), f"{name} multiply-adds vs {source}"


def test_exact_reference_counts() -> None:
    # Exact trainable counts of the Keras reference models (1000 classes), which share our layer layouts:
    # InceptionV3(include_top=True) 23,817,352 and MobileNet(alpha=1.0) 4,231,976.
    assert get("inception3").graph(1000).summary()["params"] == 23_817_352
    assert get("mobilenet").graph(1000).summary()["params"] == 4_231_976
    # torchvision's alexnet (same single-tower layout): 61,100,840; vgg16: 138,357,544.
    assert get("alexnet").graph(1000).summary()["params"] == 61_100_840
    assert get("vgg16").graph(1000).summary()["params"] == 138_357_544


@pytest.mark.parametrize("name", sorted(UPSTREAM_DEFAULTS))
def test_upstream_defaults(name: str) -> None:
    spec = get(name)
    assert (spec.image_size, spec.default_batch_size) == UPSTREAM_DEFAULTS[name]


def test_batch_norm_conventions() -> None:
    # AlexNet, VGG and GoogLeNet as upstream: biases, no batch norm; the others: batch norm instead of biases.
    for name in ("alexnet", "vgg16", "googlenet"):
        ops = {n.op for n in get(name).graph().nodes}
        assert "bn" not in ops
        assert all(n.attrs["bias"] for n in get(name).graph().nodes if n.op == "conv")
    for name in ("inception3", "inception4", "mobilenet"):
        g = get(name).graph()
        assert not any(n.attrs.get("bias") for n in g.nodes if n.op in ("conv", "dwconv"))
    # Inception v3/v4 batch norm has no learned scale, as the reference implementations
    for name in ("inception3", "inception4"):
        assert all(not n.attrs["scale"] for n in get(name).graph().nodes if n.op == "bn")


def test_known_shapes() -> None:
    shapes = [n.shape for n in get("inception3").graph().nodes if n.op == "concat"]
    assert (35, 35, 256) in shapes and (17, 17, 768) in shapes and (8, 8, 2048) in shapes
    shapes = [n.shape for n in get("inception4").graph().nodes if n.op == "concat"]
    assert (35, 35, 384) in shapes and (17, 17, 1024) in shapes and (8, 8, 1536) in shapes
    assert [n.shape for n in get("googlenet").graph().nodes if n.op == "concat"][-1] == (7, 7, 1024)


def test_unknown_model() -> None:
    with pytest.raises(UnknownModelError):
        get("no_such_model")


def test_model_table_rows() -> None:
    rows = model_table_rows()
    assert [r["model"] for r in rows] == names()
    assert all(set(r) == {"model", "input_size", "params", "param_mb", "feature_mb", "gmacs"} for r in rows)
    vgg16 = next(r for r in rows if r["model"] == "vgg16")
    assert vgg16["param_mb"] == pytest.approx(vgg16["params"] * 4 / 2**20)
    assert json.loads(render(rows, "json")) == rows
    assert render(rows, "csv").splitlines()[0] == "model,input_size,params,param_mb,feature_mb,gmacs"
    with pytest.raises(ValueError):
        render(rows, "html")


@pytest.mark.parametrize("fmt", ["markdown", "csv", "json"])
def test_cpubench_models_command(fmt: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cpubench", "models", "--format", fmt],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    for name in names():
        assert name in out
    if fmt == "markdown":
        assert "multiply-adds" in out.lower() and "batch 1" in out
    if fmt == "json":
        assert [r["model"] for r in json.loads(out)] == names()
