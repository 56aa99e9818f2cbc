"""The figures every "% of peak" divides by, pinned: each declared model's parameters and multiply-adds.

Why: achieved GFLOP/s is 2 x the declaration's multiply-adds x images/sec (training 3x), and the roofline's
intensity divides the same FLOPs by bytes; the figures are derived from today's declaration for every record,
old ones included, so a declaration that drifts (a stride moved, a branch duplicated, a padding changed) silently
changes every efficiency figure already shown. ``tests/test_models.py`` checks the papers' rounded figures within
1-2%; this file pins the exact counts against independent implementations of the same networks, counts a few
layers by hand from the declared shapes, and checks that the table ``cpubench models`` prints is these figures.

Exact references (1000 classes, counted on the reference model, not copied from our code):

- Keras 3 applications built with ``weights=None`` (no download): trainable weights, less each Conv2D's bias where
  the Keras model has one and our (upstream's) batch-normed convolution has none (ResNet: 26,560 / 52,672 / 75,712
  biases); multiply-adds summed over every Conv2D / DepthwiseConv2D / Dense layer from its kernel and output shape.
- torchvision's model cards (alexnet 61,100,840 parameters, 0.71 GFLOPS; vgg11 132,863,336, 7.61; resnet50, the
  v1.5 layout, 25,557,032, 4.09), whose "GFLOPS" are multiply-adds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cpubench.analysis import efficiency
from tf_cnn_benchmarks.models import get, names

REPO = Path(__file__).resolve().parents[1]

# model -> (parameters, multiply-adds, classifier fan-in) at 1000 classes, and where the exact figure comes from.
# The fan-in turns a 1000-class figure into the engine's 1001-class one (+fan_in + 1 parameters, +fan_in MACs).
EXACT: dict[str, tuple[int, int, int, str]] = {
    # Keras ResNet50: stride 2 on the block's first 1x1 convolution, as the paper, Caffe and upstream's v1.
    "resnet50": (25_557_032, 3_857_973_248, 2048, "Keras ResNet50"),
    # torchvision resnet50 is this v1.5 layout (stride on the 3x3): 25,557,032 parameters, 4.09 G.
    "resnet50_v1.5": (25_557_032, 4_089_184_256, 2048, "torchvision resnet50 (v1.5)"),
    "resnet101": (44_549_160, 7_570_194_432, 2048, "Keras ResNet101"),
    "resnet152": (60_192_808, 11_282_415_616, 2048, "Keras ResNet152"),
    "vgg11": (132_863_336, 7_609_090_048, 4096, "torchvision vgg11 (7.61 G)"),
    "vgg16": (138_357_544, 15_470_264_320, 4096, "Keras VGG16"),
    "vgg19": (143_667_240, 19_632_062_464, 4096, "Keras VGG19"),
    "alexnet": (61_100_840, 714_188_480, 4096, "torchvision alexnet (0.71 G; per layer below)"),
    # Keras InceptionV3: convolutions without bias, batch norm without scale, as upstream and TF-slim.
    "inception3": (23_817_352, 5_713_216_096, 2048, "Keras InceptionV3"),
    "mobilenet": (4_231_976, 568_740_352, 1024, "Keras MobileNet (alpha 1.0)"),
    # No reference implementation at hand: upstream's layout (tensorflow/benchmarks inception_model.py, Inception-C
    # sharing its 1x1 projections between the 1x3 and 3x1 outputs); with the 31,584 batch-norm scales timm's
    # inception_v4 learns, 42,679,816 = timm's 42.7 M, and 12.3 GMACs its model card's.
    "inception4": (42_648_232, 12_253_974_624, 1536, "upstream's layout; timm inception_v4 card (42.7 M, 12.3 G)"),
    # Upstream's layout (googlenet_model.py, the paper's Table 1 widths, biases, 5x5 branches); each module's
    # multiply-adds are the Table 1 "ops" column (3a 128 M, 3b 304 M, 4e 170 M...), see test_googlenet_modules.
    "googlenet": (6_998_552, 1_582_671_872, 1024, "Szegedy et al. 2014, Table 1, per module"),
}

# The published figure of each network and the tolerance it is quoted to (the papers round), for the models
# tests/test_models.py does not already check against a paper.
PUBLISHED: dict[str, tuple[float, float, float, str]] = {
    # He et al. 2015, Table 1: 101 layers 7.6 x 10^9 FLOPs (multiply-adds), 152 layers 11.3 x 10^9.
    "resnet101": (44.5e6, 7.6e9, 0.01, "He et al. 2015, Table 1"),
    "resnet152": (60.2e6, 11.3e9, 0.01, "He et al. 2015, Table 1"),
    # Goyal et al. 2017 / MLPerf's ResNet-50 v1.5; torchvision's card: 25.6 M, 4.09 G.
    "resnet50_v1.5": (25.6e6, 4.09e9, 0.005, "torchvision resnet50 card"),
}


def _figures(name: str, classes: int = 1000) -> tuple[int, int]:
    s = get(name).graph(classes).summary()
    return s["params"], s["macs"]


@pytest.mark.parametrize("name", sorted(EXACT))
def test_exact_counts_match_an_independent_implementation(name: str) -> None:
    params, macs, _fan_in, source = EXACT[name]
    assert _figures(name) == (params, macs), f"{name}: declaration vs {source}"


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_figures_of_the_deeper_resnets(name: str) -> None:
    params, macs, tol, source = PUBLISHED[name]
    ours_params, ours_macs = _figures(name)
    assert ours_params == pytest.approx(params, rel=tol), f"{name} parameters vs {source}"
    assert ours_macs == pytest.approx(macs, rel=tol), f"{name} multiply-adds vs {source}"


def test_resnet50_is_v1_with_the_stride_on_the_1x1_and_v15_on_the_3x3() -> None:
    """Upstream's ``resnet50`` is v1 (bottleneck_block_v1: the stride on the block's first 1x1) and
    ``resnet50_v1.5`` strides the 3x3 (bottleneck_block_v1_5). The 231 M multiply-adds between them are exactly
    that first 1x1 of the three strided blocks run on the input grid (56, 28, 14) instead of the output grid."""

    def strided(name: str) -> list[tuple[int, int]]:
        return [n.attrs["kernel"] for n in get(name).graph().nodes if n.op == "conv" and n.attrs["stride"] == 2]

    # the stem, then per strided block its projection shortcut and one main-path convolution
    assert strided("resnet50") == [(7, 7)] + [(1, 1), (1, 1)] * 3
    assert strided("resnet50_v1.5") == [(7, 7)] + [(1, 1), (3, 3)] * 3
    extra = sum((side * side - (side // 2) ** 2) * c_in * depth for side, c_in, depth in
                ((56, 256, 128), (28, 512, 256), (14, 1024, 512)))  # fmt: skip
    assert extra == 231_211_008
    assert EXACT["resnet50_v1.5"][1] - EXACT["resnet50"][1] == extra


def test_layers_counted_by_hand() -> None:
    """A few layers' multiply-adds from their declared shapes: output pixels x filters x kernel taps x channels in."""

    def layer(name: str, op: str, index: int) -> int:
        return [n.macs for n in get(name).graph(1000).nodes if n.op == op][index]

    assert layer("resnet50", "conv", 0) == 112 * 112 * 64 * (7 * 7 * 3)  # stem, 7x7/2 on 224
    assert layer("resnet50", "conv", 3) == 56 * 56 * 64 * (3 * 3 * 64)  # first 3x3 (index 1 is the shortcut)
    assert layer("resnet50", "dense", 0) == 2048 * 1000
    assert layer("inception3", "conv", 0) == 149 * 149 * 32 * (3 * 3 * 3)  # 3x3/2 VALID on 299
    assert layer("mobilenet", "dwconv", 0) == 112 * 112 * 32 * (3 * 3)  # depthwise: one channel in per filter
    assert layer("mobilenet", "conv", 1) == 112 * 112 * 64 * 32  # its pointwise 1x1
    assert layer("vgg16", "dense", 0) == (7 * 7 * 512) * 4096
    # AlexNet (227 VALID stem, upstream's and torchvision's single tower), every layer: 714,188,480 in all
    alexnet = [
        55 * 55 * 64 * (11 * 11 * 3),
        27 * 27 * 192 * (5 * 5 * 64),
        13 * 13 * 384 * (3 * 3 * 192),
        13 * 13 * 256 * (3 * 3 * 384),
        13 * 13 * 256 * (3 * 3 * 256),
        (6 * 6 * 256) * 4096,
        4096 * 4096,
        4096 * 1000,
    ]
    counted = [n.macs for n in get("alexnet").graph(1000).nodes if n.op in ("conv", "dense")]
    assert counted == alexnet and sum(alexnet) == EXACT["alexnet"][1]


def test_googlenet_modules_match_the_papers_ops_column() -> None:
    """Szegedy et al. 2014, Table 1, "ops" per inception module (M multiply-adds, rounded); the stem's 34 M is not
    112*112*64*7*7*3 = 118 M, and 5a's 54 M not its widths' 51 M, so those two rows are not compared."""
    table = {"3a": 128, "3b": 304, "4a": 73, "4b": 88, "4c": 100, "4d": 119, "4e": 170, "5b": 71}
    g = get("googlenet").graph(1000)
    second_pool = [i for i, n in enumerate(g.nodes) if n.op == "maxpool"][1]  # the stem ends here, at 28x28x192
    modules, current = [], 0
    for n in g.nodes[second_pool:]:
        current += n.macs
        if n.op == "concat":
            modules.append(current)
            current = 0
    names_ = ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"]
    ours = dict(zip(names_, modules, strict=True))
    for module, published in table.items():
        assert abs(ours[module] / 1e6 - published) <= 1, f"googlenet {module}: {ours[module] / 1e6:.1f} M"


def test_only_convolutions_and_dense_layers_count() -> None:
    """The convention of the papers' columns and of the model table's note: batch norm, activations, pooling,
    concatenation and residual adds carry no multiply-adds, and the total is the sum of the layers that do."""
    for name in names():
        g = get(name).graph()
        assert all(n.macs == 0 for n in g.nodes if n.op not in ("conv", "dwconv", "dense")), name
        assert g.summary()["macs"] == sum(n.macs for n in g.nodes), name


def test_efficiency_uses_these_figures_and_counts_training_as_three_forward_passes() -> None:
    for name in EXACT:
        macs_1001 = EXACT[name][1] + EXACT[name][2]
        assert efficiency.flops_per_image(name) == 2 * macs_1001
        inference = efficiency.figure(name, 10.0, False, "fp32", None, None)
        training = efficiency.figure(name, 10.0, True, "fp32", None, None)
        assert inference.achieved == pytest.approx(2 * macs_1001 * 10 / 1e9)
        assert training.achieved == pytest.approx(3 * inference.achieved)  # type: ignore[operator]


def test_the_model_table_prints_these_figures() -> None:
    """``cpubench models --format json``, the table users read, is the engine's 1001-class network."""
    out = subprocess.run(
        [sys.executable, "-m", "cpubench", "models", "--format", "json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    rows = {r["model"]: r for r in json.loads(out.stdout)}
    for name, (params, macs, fan_in, _source) in EXACT.items():
        assert rows[name]["params"] == params + fan_in + 1, name
        assert rows[name]["gmacs"] == pytest.approx((macs + fan_in) / 1e9, abs=1e-9), name
