"""The real-data tf.data pipeline: shards -> parse -> decode-and-crop -> resize -> (distort) -> batches.

Design choices, and why:

* Crop, the same in both modes. Every image is cropped with a window from
  ``tf.image.stateless_sample_distorted_bounding_box`` over the record's boxes (min_object_covered 0.1, aspect
  3/4..4/3, area 5%..100% of the image, 100 attempts, whole image when there is no box), decoded with
  ``tf.image.decode_and_crop_jpeg`` (only the window's blocks are decoded), then bilinear-resized to the model's
  size. ``--distortions`` adds only a random left-right flip and colour distortion (brightness, saturation, hue,
  contrast), so a run with and one without distortions differ by exactly that work. The same crop is used for the
  validation subset (this is a throughput benchmark, not an accuracy evaluation).
* Seeds. Every random choice is a stateless op whose seed is drawn per image from ``Dataset.random(seed)``, so a
  run is reproducible for a given ``seed`` (up to the order parallel readers deliver records in) and each epoch
  draws fresh crops.
* Undecodable images are skipped and counted, never fatal and never silent. The decode runs inside a one-element
  nested dataset with ``ignore_errors`` followed by a placeholder, so a JPEG that fails to decode becomes a flagged
  placeholder which a filter drops while adding one to a counter (``skipped_count()``). Errors of the reader (a
  corrupt or truncated record) and bad labels sit outside that scope and still stop the run; the engine passes
  them to ``diagnose_error`` to name the shard.
* No hang on all-bad data. ``repeat()`` sits after the filter: an epoch that yields nothing ends tf.data's repeat,
  and the dataset then runs into an assertion whose message says so, instead of spinning forever.
* Labels. ``record label + label_offset`` must lie in ``[0, num_classes)``; otherwise the run fails with a line
  naming the shard, the image and the fix. ImageNet records hold 1..1000 and the engine's head has 1001 classes
  (0 = background), so the default offset 0 fits them; a 0-based set can use any offset that keeps it in range.
"""

from __future__ import annotations

import tensorflow as tf

from tf_cnn_benchmarks.data import imagenet

# Crop window parameters (the classic Inception-style bounding-box crop).
MIN_OBJECT_COVERED = 0.1
ASPECT_RATIO_RANGE = (0.75, 1.33)
AREA_RANGE = (0.05, 1.0)
MAX_ATTEMPTS = 100
# Record shuffle buffer (before decode, so records, ~110 KB each for ImageNet): big enough to mix shards, small
# enough for a 2-core box's memory and the warm-up steps to fill.
SHUFFLE_BUFFER = 1024
READ_BUFFER_BYTES = 1 << 20

_counter: tf.Variable | None = None


def _skip_counter() -> tf.Variable:
    """One process-wide int64 counter of skipped images, on the CPU where tf.data runs."""
    global _counter
    if _counter is None:
        with tf.init_scope(), tf.device("/cpu:0"):
            _counter = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_images")
    return _counter


def skipped_count() -> int:
    """Images skipped as undecodable so far, over every dataset this process made. The engine logs
    "skipped N undecodable images" when this is non-zero (read it after the timed steps)."""
    return int(_counter.numpy()) if _counter is not None else 0


def reset_skipped_count() -> None:
    """Set the skip counter back to 0 (tests; an engine running several phases)."""
    if _counter is not None:
        _counter.assign(0)


def _parse(record: tf.Tensor, shard: tf.Tensor, label_offset: int, num_classes: int):
    """Record -> (jpeg bytes, label int32, boxes [N, 4] float32). Fails on a label outside the head, naming it."""
    parsed = tf.io.parse_single_example(record, imagenet.feature_spec())
    raw = parsed[imagenet.KEY_LABEL]
    label = tf.cast(raw, tf.int32) + label_offset
    ok = tf.logical_and(label >= 0, label < num_classes)
    msg = tf.strings.join(
        [
            imagenet.MARKER,
            "label ",
            tf.strings.as_string(raw),
            f" + label_offset {label_offset} of image ",
            parsed[imagenet.KEY_FILENAME],
            " in ",
            shard,
            f" is outside [0, {num_classes - 1}]; fix the labels when making the shards or set --label_offset",
        ]
    )
    check = tf.debugging.Assert(ok, [msg])
    with tf.control_dependencies([check]):
        label = tf.identity(label)
    coords = [tf.sparse.to_dense(parsed[k]) for k in imagenet.BOX_KEYS]
    n = tf.reduce_min([tf.size(c) for c in coords])
    boxes = tf.clip_by_value(tf.stack([c[:n] for c in coords], axis=1), 0.0, 1.0)
    # Boxes with no area would make the crop sampler fail; dropping them leaves the whole image if none remain.
    boxes = tf.boolean_mask(boxes, tf.logical_and(boxes[:, 2] > boxes[:, 0], boxes[:, 3] > boxes[:, 1]))
    return parsed[imagenet.KEY_ENCODED], label, boxes


def _decode_and_crop(encoded: tf.Tensor, boxes: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Decode only the sampled crop window of a JPEG: uint8 [h, w, 3]. Raises on an undecodable image."""
    # Refuse non-JPEG bytes before libjpeg sees them (it would print "Not a JPEG file" for each one).
    check = tf.debugging.Assert(tf.io.is_jpeg(encoded), ["not a JPEG"])
    with tf.control_dependencies([check]):
        shape = tf.image.extract_jpeg_shape(encoded)
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape,
        tf.reshape(boxes, [1, -1, 4]),
        seed=seed,
        min_object_covered=MIN_OBJECT_COVERED,
        aspect_ratio_range=ASPECT_RATIO_RANGE,
        area_range=AREA_RANGE,
        max_attempts=MAX_ATTEMPTS,
        use_image_if_no_bounding_boxes=True,
    )
    window = tf.stack([begin[0], begin[1], size[0], size[1]])
    # INTEGER_FAST: the faster IDCT; the small accuracy loss does not matter to a throughput benchmark.
    return tf.image.decode_and_crop_jpeg(encoded, window, channels=3, dct_method="INTEGER_FAST")


def _safe_decode(encoded: tf.Tensor, label: tf.Tensor, boxes: tf.Tensor, seed: tf.Tensor) -> tf.data.Dataset:
    """One-element dataset: (crop, label, seed, True), or a (1x1 placeholder, label, seed, False) if decode fails."""
    good = tf.data.Dataset.from_tensors((encoded, label, boxes, seed)).map(
        lambda e, lab, b, s: (_decode_and_crop(e, b, s[0]), lab, s[1], tf.constant(True))
    )
    bad = tf.data.Dataset.from_tensors((tf.zeros([1, 1, 3], tf.uint8), label, seed[1], tf.constant(False)))
    return good.ignore_errors().concatenate(bad).take(1)


def _keep(image: tf.Tensor, label: tf.Tensor, seed: tf.Tensor, ok: tf.Tensor) -> tf.Tensor:
    """Filter predicate: drop placeholders of undecodable images, counting each one."""
    counter = _skip_counter()

    def skip() -> tf.Tensor:
        with tf.control_dependencies([counter.assign_add(1)]):
            return tf.constant(False)

    return tf.cond(ok, lambda: tf.constant(True), skip)


def _finish(image: tf.Tensor, seed: tf.Tensor, image_size: int, distortions: bool, dtype: tf.DType) -> tf.Tensor:
    """Resize the crop to the model's size, distort if asked, scale to [-1, 1], cast."""
    image = tf.image.resize(image, [image_size, image_size], method="bilinear")  # float32 in [0, 255]
    image = tf.clip_by_value(image, 0.0, 255.0) / 255.0
    if distortions:
        seeds = tf.random.experimental.stateless_split(seed, num=5)
        image = tf.image.stateless_random_flip_left_right(image, seeds[0])
        image = tf.image.stateless_random_brightness(image, 32.0 / 255.0, seeds[1])
        image = tf.image.stateless_random_saturation(image, 0.5, 1.5, seeds[2])
        image = tf.image.stateless_random_hue(image, 0.2, seeds[3])
        image = tf.image.stateless_random_contrast(image, 0.5, 1.5, seeds[4])
        image = tf.clip_by_value(image, 0.0, 1.0)
    image = image * 2.0 - 1.0
    image.set_shape([image_size, image_size, 3])
    return tf.cast(image, dtype)


def _no_images(data_dir: str, subset: str, image_size: int, dtype: tf.DType) -> tf.data.Dataset:
    """A dataset whose first element raises: reached only when a whole epoch yielded no decodable image."""

    def fail(x: tf.Tensor):
        msg = tf.strings.join(
            [
                imagenet.MARKER,
                f"no decodable JPEG in the {subset} shards of {data_dir} (",
                tf.strings.as_string(_skip_counter().read_value()),
                " skipped); re-create the shards with `cpubench make-data`",
            ]
        )
        check = tf.debugging.Assert(x < 0, [msg])
        with tf.control_dependencies([check]):
            return tf.zeros([image_size, image_size, 3], dtype), tf.cast(x, tf.int32)

    return tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).map(fail)


def make_dataset(
    data_dir: str,
    subset: str,
    image_size: int,
    batch_size: int,
    *,
    distortions: bool,
    num_private_threads: int = 0,
    prefetch: int = 0,
    label_offset: int = 0,
    seed: int = 1234,
    dtype: tf.DType = tf.float32,
    num_shards: int = 1,
    shard_index: int = 0,
    num_classes: int = 1001,
    shuffle_buffer: int = SHUFFLE_BUFFER,
    skip_bad_images: bool = True,
) -> tf.data.Dataset:
    """An endless dataset of (images [batch, size, size, 3] NHWC in [-1, 1] as ``dtype``, labels int32 [batch]).

    Raises DataError at once for a missing folder or no/empty/non-TFRecord shards. Errors found while running
    (corrupt record, bad label, no decodable image at all) surface as ``tf.errors.OpError`` from the iterator: pass
    them to ``diagnose_error(data_dir, subset, exc)`` for the one-line message. ``num_shards``/``shard_index``
    split the input between workers: by shard file when there are at least as many files as workers, else by
    record. ``prefetch`` 0 = AUTOTUNE; ``num_private_threads`` > 0 gives the pipeline its own thread pool.
    ``skip_bad_images=False`` decodes in a plain parallel map instead of the per-image nested dataset: an
    undecodable image then stops the run (``diagnose_error`` names it); kept as an A/B switch should the nested
    dataset's overhead ever show in the input-only rate.
    """
    files = imagenet.find_shards(data_dir, subset)
    if batch_size < 1 or image_size < 1:
        raise imagenet.DataError(f"batch_size ({batch_size}) and image_size ({image_size}) must be at least 1")
    if not 0 <= shard_index < num_shards:
        raise imagenet.DataError(f"shard_index {shard_index} must be in [0, {num_shards})")
    _skip_counter()
    training = subset == "train"
    autotune = tf.data.AUTOTUNE
    shard_records = num_shards > 1 and len(files) < num_shards

    ds = tf.data.Dataset.from_tensor_slices(files)
    if num_shards > 1 and not shard_records:
        ds = ds.shard(num_shards, shard_index)
    if training:
        # Same seed on every worker: record-level sharding needs the same file order everywhere.
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(
        lambda f: tf.data.Dataset.zip(
            (tf.data.TFRecordDataset(f, buffer_size=READ_BUFFER_BYTES), tf.data.Dataset.from_tensors(f).repeat())
        ),
        cycle_length=min(len(files), 8),
        block_length=1,
        num_parallel_calls=min(len(files), 8),
        deterministic=shard_records,
    )
    if shard_records:
        ds = ds.shard(num_shards, shard_index)
    if training and shuffle_buffer > 1:
        ds = ds.shuffle(shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=True)
    ds = ds.map(lambda r, f: _parse(r, f, label_offset, num_classes), num_parallel_calls=autotune)
    # Two int64 per image: one seeds the crop, the other the distortions; fresh draws every epoch.
    rand = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2, drop_remainder=True)
    ds = tf.data.Dataset.zip((ds, rand)).map(lambda x, s: (*x, tf.stack([s, s + 1])))
    if skip_bad_images:
        ds = ds.interleave(
            _safe_decode, cycle_length=autotune, block_length=1, num_parallel_calls=autotune, deterministic=False
        )
        ds = ds.filter(_keep)
    else:
        ds = ds.map(
            lambda e, lab, b, s: (_decode_and_crop(e, b, s[0]), lab, s[1], tf.constant(True)),
            num_parallel_calls=autotune,
            deterministic=False,
        )
    ds = ds.map(
        lambda image, label, s, ok: (_finish(image, s, image_size, distortions, dtype), label),
        num_parallel_calls=autotune,
        deterministic=False,
    )
    ds = ds.repeat().concatenate(_no_images(data_dir, subset, image_size, dtype))
    ds = ds.batch(batch_size, drop_remainder=True)
    ds = ds.prefetch(prefetch if prefetch > 0 else autotune)

    options = tf.data.Options()
    options.deterministic = False
    if num_private_threads > 0:
        options.threading.private_threadpool_size = num_private_threads
    # We split between workers ourselves (num_shards); a strategy's own auto-sharding would split again.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options)
