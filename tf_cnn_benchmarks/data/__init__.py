"""Real-data input: ImageNet-format TFRecord shards read by a tf.data pipeline (see preprocessing.py for design).

The engine calls::

    files = find_shards(data_dir, subset)          # DataError with a one-line fix, before any graph is built
    ds = make_dataset(data_dir, subset, image_size, batch_size, distortions=..., ...)
    ...                                            # iterate; on tf.errors.OpError from the iterator:
    raise diagnose_error(data_dir, subset, exc)    # -> DataError naming the shard
    n = skipped_count()                            # log "skipped N undecodable images" when N > 0

Its names load on first use (PEP 562), so importing a TensorFlow-free submodule (``data.make``'s command line,
``data.tfrecord_writer``) does not import TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "DataError": "imagenet",
    "count_records": "imagenet",
    "diagnose_error": "imagenet",
    "feature_spec": "imagenet",
    "find_shards": "imagenet",
    "walk_records": "imagenet",
    "make_dataset": "preprocessing",
    "reset_skipped_count": "preprocessing",
    "skipped_count": "preprocessing",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
