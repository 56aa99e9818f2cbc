"""GoogLeNet, i.e. Inception v1 (Szegedy et al. 2014, "Going Deeper with Convolutions"), without auxiliary heads.

Nine inception modules of four parallel branches (1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max pool -> 1x1) whose widths
are the paper's Table 1. As upstream tf_cnn_benchmarks: convolutions with biases and no batch norm (the paper
predates it), and neither the local response normalisation of the stem nor the 40% dropout before the classifier
(neither changes the parameter or multiply-add counts). The paper's Table 1 sums to about 6.8 M parameters and
1.5 G multiply-adds ("1.5 billion multiply-adds at inference time"); the tests check both.
"""

from tf_cnn_benchmarks.models.graph import Graph, T
from tf_cnn_benchmarks.models.registry import register


def _inception(g: Graph, x: T, b1: int, b3_reduce: int, b3: int, b5_reduce: int, b5: int, pool_proj: int) -> T:
    """One module; the arguments are the columns of the paper's Table 1 in its order."""
    branch1 = g.conv(x, b1, 1, bn=False)
    branch3 = g.conv(g.conv(x, b3_reduce, 1, bn=False), b3, 3, bn=False)
    branch5 = g.conv(g.conv(x, b5_reduce, 1, bn=False), b5, 5, bn=False)
    branch_pool = g.conv(g.maxpool(x, 3, 1, "SAME"), pool_proj, 1, bn=False)
    return g.concat([branch1, branch3, branch5, branch_pool])


@register("googlenet", batch_size=32, notes="Inception v1 without auxiliary heads, LRN or dropout")
def googlenet(g: Graph, x: T) -> T:
    x = g.conv(x, 64, 7, 2, bn=False)  # 112x112
    x = g.maxpool(x, 3, 2, "SAME")  # 56x56
    x = g.conv(x, 64, 1, bn=False)
    x = g.conv(x, 192, 3, bn=False)
    x = g.maxpool(x, 3, 2, "SAME")  # 28x28
    x = _inception(g, x, 64, 96, 128, 16, 32, 32)  # 3a
    x = _inception(g, x, 128, 128, 192, 32, 96, 64)  # 3b
    x = g.maxpool(x, 3, 2, "SAME")  # 14x14
    x = _inception(g, x, 192, 96, 208, 16, 48, 64)  # 4a
    x = _inception(g, x, 160, 112, 224, 24, 64, 64)  # 4b
    x = _inception(g, x, 128, 128, 256, 24, 64, 64)  # 4c
    x = _inception(g, x, 112, 144, 288, 32, 64, 64)  # 4d
    x = _inception(g, x, 256, 160, 320, 32, 128, 128)  # 4e
    x = g.maxpool(x, 3, 2, "SAME")  # 7x7
    x = _inception(g, x, 256, 160, 320, 32, 128, 128)  # 5a
    x = _inception(g, x, 384, 192, 384, 48, 128, 128)  # 5b
    x = g.avgpool(x, 7, 1)  # 1x1x1024
    return g.logits(x)
