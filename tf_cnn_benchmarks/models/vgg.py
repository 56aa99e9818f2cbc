"""VGG networks A, D and E (Simonyan & Zisserman 2014, "Very Deep Convolutional Networks for Large-Scale Image
Recognition"): ``vgg11``, ``vgg16`` and ``vgg19``.

Stacks of 3x3 convolutions (SAME, bias, ReLU, no batch norm: the paper predates it and upstream follows the paper)
in five stages of 64-128-256-512-512 filters, each closed by a 2x2/2 max pool, then two 4096-unit fully connected
layers with dropout. Published sizes (paper Table 2, 1000 classes): 133 M, 138 M and 144 M parameters; the dense
layers hold about 124 M of them, so VGG is the suite's parameter-memory-bound model.
"""

from tf_cnn_benchmarks.models.graph import Graph, T
from tf_cnn_benchmarks.models.registry import register

# convolutions per stage; the paper's configurations A, D and E
_STAGES: dict[str, tuple[int, int, int, int, int]] = {
    "vgg11": (1, 1, 2, 2, 2),
    "vgg16": (2, 2, 3, 3, 3),
    "vgg19": (2, 2, 4, 4, 4),
}


def _vgg(g: Graph, x: T, stages: tuple[int, int, int, int, int]) -> T:
    for stage, count in enumerate(stages):
        filters = min(64 * 2**stage, 512)
        for _ in range(count):
            x = g.conv(x, filters, 3, bn=False)
        x = g.maxpool(x, 2, 2)  # 224 -> 7 after five stages
    x = g.dropout(g.dense(x, 4096))
    x = g.dropout(g.dense(x, 4096))
    return g.logits(x)


@register("vgg11", batch_size=64, notes="VGG configuration A")
def vgg11(g: Graph, x: T) -> T:
    return _vgg(g, x, _STAGES["vgg11"])


@register("vgg16", batch_size=64, notes="VGG configuration D")
def vgg16(g: Graph, x: T) -> T:
    return _vgg(g, x, _STAGES["vgg16"])


@register("vgg19", batch_size=64, notes="VGG configuration E")
def vgg19(g: Graph, x: T) -> T:
    return _vgg(g, x, _STAGES["vgg19"])
