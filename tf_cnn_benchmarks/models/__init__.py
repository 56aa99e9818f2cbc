"""Models, each declared once in the layer vocabulary of :mod:`.graph`; see :mod:`.registry` to look them up."""

from tf_cnn_benchmarks.models.registry import IMAGENET_CLASSES, ModelSpec, UnknownModelError, get, names

__all__ = ["IMAGENET_CLASSES", "ModelSpec", "UnknownModelError", "get", "names"]
