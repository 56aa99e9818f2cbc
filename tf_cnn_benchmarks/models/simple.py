"""Small models: ``trivial`` (measures the engine's own overhead) and ``lenet`` (LeCun et al. 1998, as upstream)."""

from tf_cnn_benchmarks.models.graph import Graph, T
from tf_cnn_benchmarks.models.registry import register


@register("trivial", image_size=224, batch_size=32, notes="one affine unit on the flattened image")
def trivial(g: Graph, x: T) -> T:
    x = g.dense(x, 1, act=None)
    return g.logits(x)


@register("lenet", image_size=28, batch_size=32)
def lenet(g: Graph, x: T) -> T:
    x = g.conv(x, 32, 5, padding="VALID", bn=False)
    x = g.maxpool(x, 2, 2)
    x = g.conv(x, 64, 5, padding="VALID", bn=False)
    x = g.maxpool(x, 2, 2)
    x = g.dense(x, 512)
    return g.logits(x)
