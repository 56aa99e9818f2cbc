"""Inception v3 and v4 at 299x299: ``inception3`` and ``inception4``.

``inception3``: Szegedy et al. 2015, "Rethinking the Inception Architecture for Computer Vision" (the paper's
Table 1 and Figures 5-7), without the auxiliary classifier, as upstream benchmarks it. About 23.8 M parameters
and 5.7 G multiply-adds (the paper quotes "5 billion multiply-adds" for the plain network; the 5.7 G of the
reference implementations includes the factorised-7x7 grid modules at the widths the released models use).
Like upstream, the last module's pooling branch uses max rather than average pooling.

``inception4``: Szegedy et al. 2016, "Inception-v4, Inception-ResNet and the Impact of Residual Connections on
Learning" (Figures 3-9): stem, 4 x Inception-A, Reduction-A (k=192, l=224, m=256, n=384), 7 x Inception-B,
Reduction-B, 3 x Inception-C. Inception-C shares each 1x1 projection between its 1x3 and 3x1 outputs, as the
paper's Figure 6 draws it (upstream duplicates those projections, which adds parameters the paper does not
have). About 42.7 M parameters and 12.3 G multiply-adds.

Both use convolutions without bias followed by batch norm without a learned scale (``gamma``): the reference
implementations (TF-slim's ``inception_arg_scope`` and Keras' InceptionV3) do, since the following ReLU makes the
scale redundant with the next layer's weights. Parameter counts are therefore trainable variables only; the
moving statistics are the graph's separate ``state``.
"""

from tf_cnn_benchmarks.models.graph import Graph, T
from tf_cnn_benchmarks.models.registry import register


def _conv(g: Graph, x: T, filters: int, kernel: int | tuple[int, int], stride: int = 1, padding: str = "SAME") -> T:
    """Convolution without bias, batch norm without scale, ReLU: the unit both references build from."""
    x = g.conv(x, filters, kernel, stride, padding, bn=False, bias=False, act=None)
    return g.relu(g.bn(x, scale=False))


def _avg_proj(g: Graph, x: T, filters: int) -> T:
    """The pooling branch: 3x3/1 average pool, then a 1x1 projection."""
    return _conv(g, g.avgpool(x, 3, 1, "SAME"), filters, 1)


# -- Inception v3 ------------------------------------------------------------------------------------------------
def _v3_a(g: Graph, x: T, pool_features: int) -> T:
    """35x35 module (paper Figure 5: the 5x5 factorised into two 3x3s, plus the 5x5 branch of the release)."""
    b1 = _conv(g, x, 64, 1)
    b5 = _conv(g, _conv(g, x, 48, 1), 64, 5)
    b3 = _conv(g, _conv(g, _conv(g, x, 64, 1), 96, 3), 96, 3)
    return g.concat([b1, b5, b3, _avg_proj(g, x, pool_features)])


def _v3_b(g: Graph, x: T) -> T:
    """35x35 -> 17x17 grid reduction (paper Figure 10)."""
    b3 = _conv(g, x, 384, 3, 2, "VALID")
    b3dbl = _conv(g, _conv(g, _conv(g, x, 64, 1), 96, 3), 96, 3, 2, "VALID")
    return g.concat([b3, b3dbl, g.maxpool(x, 3, 2)])


def _v3_c(g: Graph, x: T, n: int) -> T:
    """17x17 module with 7x7 convolutions factorised into 1x7 and 7x1 (paper Figure 6)."""
    b1 = _conv(g, x, 192, 1)
    b7 = _conv(g, _conv(g, _conv(g, x, n, 1), n, (1, 7)), 192, (7, 1))
    b7dbl = _conv(g, x, n, 1)
    for filters, kernel in ((n, (7, 1)), (n, (1, 7)), (n, (7, 1)), (192, (1, 7))):
        b7dbl = _conv(g, b7dbl, filters, kernel)
    return g.concat([b1, b7, b7dbl, _avg_proj(g, x, 192)])


def _v3_d(g: Graph, x: T) -> T:
    """17x17 -> 8x8 grid reduction."""
    b3 = _conv(g, _conv(g, x, 192, 1), 320, 3, 2, "VALID")
    b7 = _conv(g, _conv(g, _conv(g, x, 192, 1), 192, (1, 7)), 192, (7, 1))
    b7 = _conv(g, b7, 192, 3, 2, "VALID")
    return g.concat([b3, b7, g.maxpool(x, 3, 2)])


def _v3_e(g: Graph, x: T, pool: str) -> T:
    """8x8 module with expanded filter banks: 3x3s split into parallel 1x3 and 3x1 (paper Figure 7)."""
    b1 = _conv(g, x, 320, 1)
    b3 = _conv(g, x, 384, 1)
    b3 = g.concat([_conv(g, b3, 384, (1, 3)), _conv(g, b3, 384, (3, 1))])
    b3dbl = _conv(g, _conv(g, x, 448, 1), 384, 3)
    b3dbl = g.concat([_conv(g, b3dbl, 384, (1, 3)), _conv(g, b3dbl, 384, (3, 1))])
    pooled = g.avgpool(x, 3, 1, "SAME") if pool == "avg" else g.maxpool(x, 3, 1, "SAME")
    return g.concat([b1, b3, b3dbl, _conv(g, pooled, 192, 1)])


@register("inception3", image_size=299, batch_size=32, notes="Inception v3 without the auxiliary head")
def inception3(g: Graph, x: T) -> T:
    x = _conv(g, x, 32, 3, 2, "VALID")  # 149x149
    x = _conv(g, x, 32, 3, 1, "VALID")  # 147x147
    x = _conv(g, x, 64, 3)
    x = g.maxpool(x, 3, 2)  # 73x73
    x = _conv(g, x, 80, 1, 1, "VALID")
    x = _conv(g, x, 192, 3, 1, "VALID")  # 71x71
    x = g.maxpool(x, 3, 2)  # 35x35x192
    for pool_features in (32, 64, 64):
        x = _v3_a(g, x, pool_features)  # 35x35x256, 288, 288
    x = _v3_b(g, x)  # 17x17x768
    for n in (128, 160, 160, 192):
        x = _v3_c(g, x, n)
    x = _v3_d(g, x)  # 8x8x1280
    x = _v3_e(g, x, "avg")  # 8x8x2048
    x = _v3_e(g, x, "max")
    x = g.avgpool(x, 8, 1)  # 1x1x2048
    return g.logits(x)


# -- Inception v4 ------------------------------------------------------------------------------------------------
def _v4_stem(g: Graph, x: T) -> T:
    """299x299x3 -> 35x35x384 (paper Figure 3)."""
    x = _conv(g, x, 32, 3, 2, "VALID")  # 149x149
    x = _conv(g, x, 32, 3, 1, "VALID")  # 147x147
    x = _conv(g, x, 64, 3)
    x = g.concat([g.maxpool(x, 3, 2), _conv(g, x, 96, 3, 2, "VALID")])  # 73x73x160
    left = _conv(g, _conv(g, x, 64, 1), 96, 3, 1, "VALID")
    right = _conv(g, _conv(g, _conv(g, x, 64, 1), 64, (7, 1)), 64, (1, 7))
    right = _conv(g, right, 96, 3, 1, "VALID")
    x = g.concat([left, right])  # 71x71x192
    return g.concat([_conv(g, x, 192, 3, 2, "VALID"), g.maxpool(x, 3, 2)])  # 35x35x384


def _v4_a(g: Graph, x: T) -> T:
    """Inception-A, 35x35 (paper Figure 4)."""
    b1 = _conv(g, x, 96, 1)
    b3 = _conv(g, _conv(g, x, 64, 1), 96, 3)
    b3dbl = _conv(g, _conv(g, _conv(g, x, 64, 1), 96, 3), 96, 3)
    return g.concat([_avg_proj(g, x, 96), b1, b3, b3dbl])


def _v4_reduction_a(g: Graph, x: T) -> T:
    """Reduction-A, 35x35 -> 17x17 (paper Figure 7 with k, l, m, n = 192, 224, 256, 384)."""
    b3 = _conv(g, x, 384, 3, 2, "VALID")
    b3dbl = _conv(g, _conv(g, _conv(g, x, 192, 1), 224, 3), 256, 3, 2, "VALID")
    return g.concat([g.maxpool(x, 3, 2), b3, b3dbl])  # 17x17x1024


def _v4_b(g: Graph, x: T) -> T:
    """Inception-B, 17x17 (paper Figure 5)."""
    b1 = _conv(g, x, 384, 1)
    b7 = _conv(g, _conv(g, _conv(g, x, 192, 1), 224, (1, 7)), 256, (7, 1))
    b7dbl = _conv(g, x, 192, 1)
    for filters, kernel in ((192, (7, 1)), (224, (1, 7)), (224, (7, 1)), (256, (1, 7))):
        b7dbl = _conv(g, b7dbl, filters, kernel)
    return g.concat([_avg_proj(g, x, 128), b1, b7, b7dbl])  # 17x17x1024


def _v4_reduction_b(g: Graph, x: T) -> T:
    """Reduction-B, 17x17 -> 8x8 (paper Figure 8)."""
    b3 = _conv(g, _conv(g, x, 192, 1), 192, 3, 2, "VALID")
    b7 = _conv(g, _conv(g, _conv(g, x, 256, 1), 256, (1, 7)), 320, (7, 1))
    b7 = _conv(g, b7, 320, 3, 2, "VALID")
    return g.concat([g.maxpool(x, 3, 2), b3, b7])  # 8x8x1536


def _v4_c(g: Graph, x: T) -> T:
    """Inception-C, 8x8 (paper Figure 6): each 1x1 projection feeds both a 1x3 and a 3x1 output."""
    b1 = _conv(g, x, 256, 1)
    b3 = _conv(g, x, 384, 1)
    b3dbl = _conv(g, _conv(g, _conv(g, x, 384, 1), 448, (1, 3)), 512, (3, 1))
    outputs = [_avg_proj(g, x, 256), b1]
    for t in (b3, b3dbl):
        outputs += [_conv(g, t, 256, (1, 3)), _conv(g, t, 256, (3, 1))]
    return g.concat(outputs)  # 8x8x1536


@register("inception4", image_size=299, batch_size=32, notes="Inception v4 (paper's shared Inception-C projections)")
def inception4(g: Graph, x: T) -> T:
    x = _v4_stem(g, x)
    for _ in range(4):
        x = _v4_a(g, x)
    x = _v4_reduction_a(g, x)
    for _ in range(7):
        x = _v4_b(g, x)
    x = _v4_reduction_b(g, x)
    for _ in range(3):
        x = _v4_c(g, x)
    x = g.avgpool(x, 8, 1)  # 1x1x1536
    x = g.dropout(x, 0.2)  # the paper's keep probability of 0.8
    return g.logits(x)
