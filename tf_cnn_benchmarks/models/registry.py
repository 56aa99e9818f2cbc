"""Model registry: name -> declaration, input size and default batch size.

Model files register their declarations with :func:`register`; everything else (engine, model table, report)
looks models up here, so a model added once is known everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tf_cnn_benchmarks.models.graph import Graph, T

IMAGENET_CLASSES = 1001  # 1000 ImageNet classes + background 0, as upstream's label layout


class UnknownModelError(ValueError):
    pass


@dataclass(frozen=True)
class ModelSpec:
    name: str
    image_size: int
    default_batch_size: int
    declare: Callable[[Graph, T], T]
    notes: str = ""
    # How upstream tf_cnn_benchmarks' network of this name differs from this declaration ("" where it is the same
    # network): a figure imported from an upstream log of this model is that other network's, not this one's.
    upstream: str = ""

    def graph(self, num_classes: int = IMAGENET_CLASSES) -> Graph:
        """Run the declaration symbolically: the DAG with shapes, parameters and multiply-adds."""
        g = Graph(self.name, self.image_size, num_classes)
        out = self.declare(g, g.input())
        if out.shape != (1, 1, num_classes):
            raise ValueError(f"model {self.name} ends in {out.shape}, not logits (1, 1, {num_classes})")
        return g


_REGISTRY: dict[str, ModelSpec] = {}


def register(
    name: str, image_size: int = 224, batch_size: int = 64, notes: str = "", upstream: str = ""
) -> Callable[[Callable[[Graph, T], T]], Callable[[Graph, T], T]]:
    def deco(fn: Callable[[Graph, T], T]) -> Callable[[Graph, T], T]:
        if name in _REGISTRY:
            raise ValueError(f"model {name} registered twice")
        _REGISTRY[name] = ModelSpec(name, image_size, batch_size, fn, notes, upstream)
        return fn

    return deco


def _load_all() -> None:
    # Importing the model files runs their @register decorators.
    from tf_cnn_benchmarks.models import (  # noqa: F401
        alexnet,
        googlenet,
        inception,
        mobilenet,
        resnet,
        simple,
        vgg,
    )


def names() -> list[str]:
    _load_all()
    return list(_REGISTRY)


def get(name: str) -> ModelSpec:
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; known models: {', '.join(_REGISTRY)}") from None


def upstream_differs(name: str) -> str:
    """How upstream tf_cnn_benchmarks' network of this name differs from the one declared here ("" where it is the
    same network, or the name is not declared here)."""
    try:
        return get(name).upstream
    except UnknownModelError:
        return ""
