"""AlexNet as upstream tf_cnn_benchmarks benchmarks it: the single-tower variant of Krizhevsky 2014.

The original network (Krizhevsky, Sutskever & Hinton 2012, "ImageNet Classification with Deep Convolutional Neural
Networks") split its layers over two GPUs (48+48, 128+128, 192+192, 192+192, 128+128 filters), used local response
normalisation and reports "60 million parameters". Upstream's model, like most frameworks', is instead the
one-tower layout of Krizhevsky 2014 ("One weird trick for parallelizing convolutional neural networks"): 64, 192,
384, 256, 256 filters, no LRN, 227x227 input (224 plus 3 so the VALID 11x11/4 stem gives 55x55). That is about
61.1 M parameters and 0.71 G multiply-adds (torchvision's ``alexnet`` is the same layout), which the tests check.
Convolutions use biases and no batch norm, as upstream.
"""

from tf_cnn_benchmarks.models.graph import Graph, T
from tf_cnn_benchmarks.models.registry import register


@register(
    "alexnet",
    image_size=227,
    batch_size=512,
    notes="single-tower AlexNet (Krizhevsky 2014), 227x227, no LRN",
)
def alexnet(g: Graph, x: T) -> T:
    x = g.conv(x, 64, 11, 4, "VALID", bn=False)  # 55x55
    x = g.maxpool(x, 3, 2)  # 27x27
    x = g.conv(x, 192, 5, bn=False)
    x = g.maxpool(x, 3, 2)  # 13x13
    x = g.conv(x, 384, 3, bn=False)
    x = g.conv(x, 256, 3, bn=False)
    x = g.conv(x, 256, 3, bn=False)
    x = g.maxpool(x, 3, 2)  # 6x6x256
    x = g.dropout(g.dense(x, 4096))
    x = g.dropout(g.dense(x, 4096))
    return g.logits(x)
