"""Writing ImageNet-format TFRecord shards, with the schema ``imagenet.py`` defines (shared with the reader).

Kept in the engine package, not in the CLI, so tests and the benchmark script can write shards (including
deliberately bad ones) without going through ``cpubench make-data``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import tensorflow as tf

from tf_cnn_benchmarks.data import imagenet

Box = tuple[float, float, float, float]  # xmin, ymin, xmax, ymax, normalised to [0, 1] (upstream's CSV order)
WHOLE_IMAGE: Box = (0.0, 0.0, 1.0, 1.0)


@dataclass
class ImageRecord:
    """One image as it goes into a shard. ``boxes`` empty = one box covering the whole image."""

    encoded: bytes
    label: int
    text: str
    filename: str
    height: int
    width: int
    boxes: list[Box] = field(default_factory=list)
    format: str = "JPEG"


def _bytes(values: Sequence[bytes]) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _ints(values: Sequence[int]) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _floats(values: Sequence[float]) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def make_example(rec: ImageRecord) -> tf.train.Example:
    """The tf.train.Example of one image, every upstream key filled in."""
    boxes = rec.boxes or [WHOLE_IMAGE]
    feature = {
        imagenet.KEY_ENCODED: _bytes([rec.encoded]),
        imagenet.KEY_FORMAT: _bytes([rec.format.encode()]),
        imagenet.KEY_FILENAME: _bytes([rec.filename.encode()]),
        imagenet.KEY_HEIGHT: _ints([rec.height]),
        imagenet.KEY_WIDTH: _ints([rec.width]),
        imagenet.KEY_LABEL: _ints([rec.label]),
        imagenet.KEY_TEXT: _bytes([rec.text.encode()]),
        imagenet.KEY_XMIN: _floats([b[0] for b in boxes]),
        imagenet.KEY_YMIN: _floats([b[1] for b in boxes]),
        imagenet.KEY_XMAX: _floats([b[2] for b in boxes]),
        imagenet.KEY_YMAX: _floats([b[3] for b in boxes]),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature))


def shard_names(subset: str, num_shards: int) -> list[str]:
    """Upstream names: ``train-00000-of-00004`` ..."""
    return [f"{subset}-{i:05d}-of-{num_shards:05d}" for i in range(num_shards)]


def write_shard(path: str, records: Iterable[ImageRecord]) -> int:
    """Write one shard atomically (``.tmp`` then rename), so an interrupted run never leaves a half shard that
    the reader would pick up. Returns the record count; writes no file when there are none (an empty file would
    be a bad shard to the reader)."""
    tmp = path + ".tmp"
    count = 0
    with tf.io.TFRecordWriter(tmp) as writer:
        for rec in records:
            writer.write(make_example(rec).SerializeToString())
            count += 1
    if count:
        tf.io.gfile.rename(tmp, path, overwrite=True)
    else:
        tf.io.gfile.remove(tmp)
    return count


def split_into_shards(records: Sequence[ImageRecord], num_shards: int) -> list[list[ImageRecord]]:
    """Contiguous, near-equal chunks (callers shuffle first, so every shard mixes classes)."""
    num_shards = max(1, min(num_shards, len(records))) if records else 1
    base, extra = divmod(len(records), num_shards)
    chunks, start = [], 0
    for i in range(num_shards):
        end = start + base + (1 if i < extra else 0)
        chunks.append(list(records[start:end]))
        start = end
    return chunks


def write_subset(out_dir: str, subset: str, records: Sequence[ImageRecord], num_shards: int) -> list[str]:
    """Write ``records`` as ``num_shards`` shards of ``subset`` (fewer if there are fewer records); return paths."""
    chunks = split_into_shards(records, num_shards)
    paths = [os.path.join(out_dir, n) for n in shard_names(subset, len(chunks))]
    for path, chunk in zip(paths, chunks, strict=True):
        write_shard(path, chunk)
    return paths
