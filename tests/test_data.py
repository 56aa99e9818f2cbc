"""Real-data input pipeline (tf_cnn_benchmarks.data) on tiny shards the tests write themselves.

Why small JPEGs (48x64): the behaviour under test (crop, resize, skip, errors) does not depend on image size, and the
whole file has to run in seconds on 2 shared cores.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from tf_cnn_benchmarks.data import (
    DataError,
    count_records,
    diagnose_error,
    find_shards,
    make_dataset,
    reset_skipped_count,
    skipped_count,
    walk_records,
)
from tf_cnn_benchmarks.data.tfrecord_writer import ImageRecord, write_subset

pytestmark = pytest.mark.timeout(120)

H, W = 48, 64


def _jpeg(rng: np.random.Generator) -> bytes:
    return tf.io.encode_jpeg(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).numpy()


def write_set(
    folder, n: int = 24, shards: int = 3, subset: str = "train", label=lambda i: 1 + i % 5, bad=lambda i: None
) -> list[str]:
    """Write ``n`` records in ``shards`` shards; ``bad(i)`` may return replacement (broken) image bytes."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    recs = []
    for i in range(n):
        data = bad(i) or _jpeg(rng)
        recs.append(ImageRecord(data, label(i), f"c{label(i)}", f"img{i}.jpg", H, W, [(0.1, 0.2, 0.8, 0.9)]))
    return write_subset(str(folder), subset, recs, shards)


@pytest.fixture(scope="module")
def good_dir(tmp_path_factory) -> str:
    d = tmp_path_factory.mktemp("good")
    write_set(d)
    write_set(d, n=6, shards=1, subset="validation")
    return str(d)


def take(ds: tf.data.Dataset, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(x.numpy(), y.numpy()) for x, y in ds.take(n)]


def run_error(data_dir: str, n: int = 6, **kw) -> DataError:
    """Iterate until the pipeline fails; return what diagnose_error makes of it."""
    ds = make_dataset(data_dir, "train", 16, 4, distortions=False, **kw)
    with pytest.raises(tf.errors.OpError) as info:
        take(ds, n)
    return diagnose_error(data_dir, "train", info.value)


# --------------------------------------------------------------------------------------------------------------
# Shard discovery
# --------------------------------------------------------------------------------------------------------------
def test_find_shards_lists_both_subsets(good_dir):
    train = find_shards(good_dir, "train")
    assert [os.path.basename(p) for p in train] == [f"train-0000{i}-of-00003" for i in range(3)]
    assert len(find_shards(good_dir, "validation")) == 1
    assert count_records(good_dir, "train") == 24
    assert sum(walk_records(p) for p in train) == 24


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match=r"--data_dir=.*nope: no such folder.*cpubench make-data"):
        find_shards(str(tmp_path / "nope"), "train")
    with pytest.raises(DataError, match="--data_dir is empty"):
        find_shards("", "train")


def test_data_dir_is_a_file(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(DataError, match="is a file, not a folder"):
        find_shards(str(f), "train")


def test_no_matching_shards_names_what_is_there(tmp_path, good_dir):
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "train-00000-of-00001.tmp").write_bytes(b"x")  # a writer's leftover is not a shard
    with pytest.raises(DataError, match=r"no train-\*-of-\* shards \(found: a.jpg"):
        find_shards(str(tmp_path), "train")
    only_val = tmp_path / "v"
    write_set(only_val, n=2, shards=1, subset="validation")
    with pytest.raises(DataError, match="pick --data_subset=validation"):
        find_shards(str(only_val), "train")


def test_empty_and_non_tfrecord_shards(tmp_path):
    (tmp_path / "train-00000-of-00002").write_bytes(b"")
    with pytest.raises(DataError, match="train-00000-of-00002 is empty"):
        find_shards(str(tmp_path), "train")
    (tmp_path / "train-00000-of-00002").write_bytes(b"\xff\xd8 this is a jpeg, not a record file")
    with pytest.raises(DataError, match="train-00000-of-00002 is not a TFRecord file"):
        find_shards(str(tmp_path), "train")


# --------------------------------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("distortions", [False, True])
def test_batches_shape_range_labels(good_dir, distortions):
    ds = make_dataset(good_dir, "train", 32, 8, distortions=distortions, seed=7)
    assert ds.element_spec[0].shape.as_list() == [8, 32, 32, 3]
    assert ds.element_spec[1].dtype == tf.int32
    batches = take(ds, 6)  # 48 images from 24 records: repeats past the end of the data
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    assert images.dtype == np.float32 and images.shape == (48, 32, 32, 3)
    assert -1.0 <= images.min() < -0.5 and 0.5 < images.max() <= 1.0
    assert set(labels) == {1, 2, 3, 4, 5}


def test_same_seed_same_crops_and_distortions_change_pixels(tmp_path):
    # One record, so the order of parallel reads cannot differ: the seed alone decides the crop.
    write_set(tmp_path, n=1, shards=1)

    def first(distortions: bool, seed: int) -> np.ndarray:
        return take(make_dataset(str(tmp_path), "train", 24, 1, distortions=distortions, seed=seed), 1)[0][0]

    plain = first(False, 3)
    np.testing.assert_array_equal(plain, first(False, 3))
    assert not np.array_equal(plain, first(False, 4))  # the crop is random in both modes
    np.testing.assert_array_equal(first(True, 3), first(True, 3))
    assert not np.array_equal(plain, first(True, 3))


def test_dtype_validation_subset_and_options(good_dir):
    ds = make_dataset(
        good_dir, "validation", 16, 2, distortions=False, dtype=tf.bfloat16, num_private_threads=2, prefetch=3
    )
    assert ds.options().threading.private_threadpool_size == 2
    x, y = next(iter(ds))
    assert x.dtype == tf.bfloat16 and x.shape == (2, 16, 16, 3)


def test_label_offset(good_dir):
    labels = np.concatenate(
        [b[1] for b in take(make_dataset(good_dir, "train", 8, 6, distortions=False, label_offset=-1), 4)]
    )
    assert set(labels) == {0, 1, 2, 3, 4}


def test_worker_split_by_file_and_by_record(tmp_path):
    # Three shards, each one label: two workers split the files between them.
    d = tmp_path / "files"
    write_set(d, n=12, shards=3, label=lambda i: 1 + i // 4)
    seen = [
        set(
            np.concatenate(
                [
                    b[1]
                    for b in take(
                        make_dataset(str(d), "train", 8, 4, distortions=False, num_shards=2, shard_index=k), 4
                    )
                ]
            )
        )
        for k in (0, 1)
    ]
    assert seen == [{1, 3}, {2}]
    # One shard, two workers: split by record (labels alternate 1, 2 in the file).
    d = tmp_path / "records"
    write_set(d, n=8, shards=1, label=lambda i: 1 + i % 2)
    seen = [
        set(
            np.concatenate(
                [
                    b[1]
                    for b in take(
                        make_dataset(str(d), "train", 8, 4, distortions=False, num_shards=2, shard_index=k), 3
                    )
                ]
            )
        )
        for k in (0, 1)
    ]
    assert seen == [{1}, {2}]


# --------------------------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------------------------
def test_undecodable_images_are_skipped_and_counted(tmp_path):
    good = _jpeg(np.random.default_rng(1))

    def bad(i: int) -> bytes | None:
        if i == 3:
            return b"definitely not an image"
        if i == 7:
            return good[: len(good) // 2]  # a truncated JPEG: valid header, missing data
        return None

    write_set(tmp_path, n=10, shards=2, bad=bad)
    reset_skipped_count()
    batches = take(make_dataset(str(tmp_path), "train", 16, 4, distortions=True, shuffle_buffer=1), 6)
    assert len(batches) == 6
    assert skipped_count() >= 2  # two per pass over the data; the pipeline ran ahead by an unknown amount


def test_undecodable_image_without_skipping_names_shard_and_image(tmp_path):
    paths = write_set(tmp_path, n=6, shards=2, bad=lambda i: b"nope" if i == 4 else None)
    err = str(run_error(str(tmp_path), n=10, skip_bad_images=False))
    assert err.startswith(paths[1] + ": undecodable image img4.jpg")


def test_all_images_undecodable_fails_instead_of_hanging(tmp_path):
    write_set(tmp_path, n=5, shards=2, bad=lambda i: b"nope")
    err = run_error(str(tmp_path))
    assert str(err).startswith("no decodable JPEG in the train shards of " + str(tmp_path))


def test_truncated_shard_names_the_file(tmp_path):
    paths = write_set(tmp_path, n=9, shards=3)
    data = open(paths[1], "rb").read()
    open(paths[1], "wb").write(data[:-100])
    err = run_error(str(tmp_path), n=20)
    assert str(err).startswith(paths[1] + ": truncated record")
    assert "cpubench make-data" in str(err)


def test_corrupt_record_names_the_file(tmp_path):
    paths = write_set(tmp_path, n=9, shards=3)
    data = bytearray(open(paths[2], "rb").read())
    data[len(data) // 2] ^= 0xFF  # a flipped bit inside a record's data: only the data CRC sees it
    open(paths[2], "wb").write(bytes(data))
    err = run_error(str(tmp_path), n=20)
    assert str(err).startswith(paths[2] + ": corrupted record")


def test_label_out_of_range_fails_naming_image_and_shard(tmp_path):
    paths = write_set(tmp_path, n=6, shards=2, label=lambda i: 1001 if i == 4 else 3)
    err = str(run_error(str(tmp_path), n=10))
    assert "label 1001 + label_offset 0 of image img4.jpg in " + paths[1] in err
    assert "outside [0, 1000]" in err and "--label_offset" in err


def test_negative_label_after_offset_fails(tmp_path):
    write_set(tmp_path, n=4, shards=1, label=lambda i: i % 2)  # a 0-based set read with offset -1
    err = str(run_error(str(tmp_path), label_offset=-1))
    assert "label 0 + label_offset -1" in err


def test_record_that_is_not_an_example(tmp_path):
    path = str(tmp_path / "train-00000-of-00001")
    with tf.io.TFRecordWriter(path) as w:
        w.write(b"\x00\x01 not a tf.train.Example")
    err = str(run_error(str(tmp_path)))
    assert err.startswith(path + ": not an ImageNet-format record")


def test_diagnose_passes_through_unknown_errors(good_dir):
    err = diagnose_error(good_dir, "train", tf.errors.UnknownError(None, None, "something odd"))
    assert "something odd" in str(err) and good_dir in str(err)
