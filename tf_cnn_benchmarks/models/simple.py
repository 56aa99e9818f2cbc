"""Small models: ``trivial`` (measures the engine's own overhead) and ``lenet`` (LeCun et al. 1998).

Both differ from upstream's networks of the same names, which the registry says (``upstream=``) so that a figure
imported from an upstream log of either is never set against this declaration's FLOPs: upstream's ``trivial`` takes
227x227 images through affine(1) then affine(4096); its ``lenet`` (``lenet5`` in its logs) pads its convolutions
(SAME: 28x28 to 7x7, 14.0 M multiply-adds, 2.17 M parameters), where this one does not (VALID: 5.7 M, 1.09 M).
"""

from tf_cnn_benchmarks.models.graph import Graph, T
from tf_cnn_benchmarks.models.registry import register


@register(
    "trivial",
    image_size=224,
    batch_size=32,
    notes="one affine unit on the flattened image",
    upstream="upstream's trivial is another network (227x227 input, affine(1) then affine(4096))",
)
def trivial(g: Graph, x: T) -> T:
    x = g.dense(x, 1, act=None)
    return g.logits(x)


@register(
    "lenet",
    image_size=28,
    batch_size=32,
    upstream="upstream's lenet pads its convolutions (SAME: 14.0 M multiply-adds, not this one's 5.7 M)",
)
def lenet(g: Graph, x: T) -> T:
    x = g.conv(x, 32, 5, padding="VALID", bn=False)
    x = g.maxpool(x, 2, 2)
    x = g.conv(x, 64, 5, padding="VALID", bn=False)
    x = g.maxpool(x, 2, 2)
    x = g.dense(x, 512)
    return g.logits(x)
