"""MobileNet v1 (Howard et al. 2017, "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications"), width multiplier 1.0, 224x224.

A 3x3/2 stem and thirteen depthwise-separable blocks (3x3 depthwise, then 1x1 pointwise, each with batch norm), the
paper's Table 1. Activations are ReLU6, as the reference implementations (TF-slim and Keras) use rather than the
paper's plain ReLU; batch norm replaces biases. The paper's Table 8 gives 569 M multiply-adds and 4.2 M parameters;
the tests check both. Upstream tf_cnn_benchmarks registers MobileNet v2 (about 300 M multiply-adds) under this name:
the registry says so (``upstream=``), so a figure imported from an upstream log is never set against v1's FLOPs.
"""

from tf_cnn_benchmarks.models.graph import Graph, T
from tf_cnn_benchmarks.models.registry import register

# (pointwise filters, depthwise stride) of the thirteen separable blocks, the paper's Table 1
_BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)


@register(
    "mobilenet",
    batch_size=32,
    notes="MobileNet v1, width 1.0, ReLU6",
    upstream="upstream's mobilenet is MobileNet v2 (about 300 M multiply-adds, not v1's 569 M)",
)
def mobilenet(g: Graph, x: T) -> T:
    x = g.conv(x, 32, 3, 2, act="relu6")  # 112x112
    for filters, stride in _BLOCKS:
        x = g.dwconv(x, 3, stride, act="relu6")
        x = g.conv(x, filters, 1, act="relu6")
    x = g.global_avgpool(x)  # 1x1x1024
    x = g.dropout(x, 0.001)  # the reference implementations' keep probability of 0.999
    return g.logits(x)
