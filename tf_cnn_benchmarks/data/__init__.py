"""Real-data input: ImageNet-format TFRecord shards read by a tf.data pipeline (see preprocessing.py for design).

The engine calls::

    files = find_shards(data_dir, subset)          # DataError with a one-line fix, before any graph is built
    ds = make_dataset(data_dir, subset, image_size, batch_size, distortions=..., ...)
    ...                                            # iterate; on tf.errors.OpError from the iterator:
    raise diagnose_error(data_dir, subset, exc)    # -> DataError naming the shard
    n = skipped_count()                            # log "skipped N undecodable images" when N > 0
"""

from tf_cnn_benchmarks.data.imagenet import (
    DataError,
    count_records,
    diagnose_error,
    feature_spec,
    find_shards,
    walk_records,
)
from tf_cnn_benchmarks.data.preprocessing import make_dataset, reset_skipped_count, skipped_count

__all__ = [
    "DataError",
    "count_records",
    "diagnose_error",
    "feature_spec",
    "find_shards",
    "make_dataset",
    "reset_skipped_count",
    "skipped_count",
    "walk_records",
]
