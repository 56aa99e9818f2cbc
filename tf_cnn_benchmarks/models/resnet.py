"""ResNet v1 (He et al. 2015, "Deep Residual Learning") with bottleneck blocks: 50, 101 and 152 layers.

``resnet50`` puts a block's stride on its first 1x1 convolution, as the paper and upstream's v1 do (3.8 G
multiply-adds in the paper's Table 1); ``resnet50_v1.5`` moves it to the 3x3 convolution, the variant most framework
model zoos ship (4.1 G multiply-adds, same parameters).
"""

from tf_cnn_benchmarks.models.graph import Graph, T
from tf_cnn_benchmarks.models.registry import register


def _bottleneck(g: Graph, x: T, depth: int, stride: int, v15: bool) -> T:
    out = depth * 4
    if x.shape[2] != out or stride != 1:
        shortcut = g.conv(x, out, 1, stride, act=None)
    else:
        shortcut = x
    s1, s3 = (1, stride) if v15 else (stride, 1)
    y = g.conv(x, depth, 1, s1)
    y = g.conv(y, depth, 3, s3)
    y = g.conv(y, out, 1, act=None)
    return g.relu(g.add(y, shortcut))


def _resnet(g: Graph, x: T, blocks: tuple[int, int, int, int], v15: bool = False) -> T:
    x = g.conv(x, 64, 7, 2)
    x = g.maxpool(x, 3, 2, "SAME")
    for stage, count in enumerate(blocks):
        depth = 64 * 2**stage
        for i in range(count):
            x = _bottleneck(g, x, depth, 2 if (i == 0 and stage > 0) else 1, v15)
    x = g.global_avgpool(x)
    return g.logits(x)


@register("resnet50", batch_size=64)
def resnet50(g: Graph, x: T) -> T:
    return _resnet(g, x, (3, 4, 6, 3))


@register("resnet50_v1.5", batch_size=64)
def resnet50_v15(g: Graph, x: T) -> T:
    return _resnet(g, x, (3, 4, 6, 3), v15=True)


@register("resnet101", batch_size=64)
def resnet101(g: Graph, x: T) -> T:
    return _resnet(g, x, (3, 4, 23, 3))


@register("resnet152", batch_size=64)
def resnet152(g: Graph, x: T) -> T:
    return _resnet(g, x, (3, 8, 36, 3))
