"""ImageNet-format TFRecord shards: the feature schema, shard discovery and cheap validation, error diagnosis.

The schema (feature keys) is defined here ONCE; the reader (``preprocessing.make_dataset``) and the writer
(``tfrecord_writer``) both import it, so a shard ``cpubench make-data`` writes is a shard the engine reads.

Why validation lives here and is cheap: a real ImageNet train set is ~140 GB in 1024 shards, so nothing may read all
of it before the first step. ``find_shards`` only lists the folder and checks each shard's first record header (12
bytes); deeper checks (walking every record header, checking data CRCs) run only in ``diagnose_error``, after the
pipeline has already failed, to turn TensorFlow's file-less "corrupted record at 2044" into a line naming the shard.
"""

from __future__ import annotations

import os
import re
import struct

import tensorflow as tf

# ---------------------------------------------------------------------------------------------------------------
# The schema (upstream ImageNet TFRecord feature keys).
# ---------------------------------------------------------------------------------------------------------------
KEY_ENCODED = "image/encoded"
KEY_FORMAT = "image/format"
KEY_FILENAME = "image/filename"
KEY_HEIGHT = "image/height"
KEY_WIDTH = "image/width"
KEY_LABEL = "image/class/label"
KEY_TEXT = "image/class/text"
KEY_XMIN = "image/object/bbox/xmin"
KEY_YMIN = "image/object/bbox/ymin"
KEY_XMAX = "image/object/bbox/xmax"
KEY_YMAX = "image/object/bbox/ymax"
BOX_KEYS = (KEY_YMIN, KEY_XMIN, KEY_YMAX, KEY_XMAX)  # the order tf.image's box ops take

SUBSETS = ("train", "validation")
# Upstream shard names: train-00000-of-01024. A ".tfrecord(s)" suffix is tolerated; anything else (e.g. a
# ".tmp" left by an interrupted writer) is ignored.
_SHARD_RE = r"^{subset}-(\d+)-of-(\d+)(\.tfrecords?)?$"

# Marker the in-graph checks put in front of their messages, so ``diagnose_error`` can lift them out verbatim.
MARKER = "cpubench-data: "


def feature_spec() -> dict[str, tf.io.FixedLenFeature | tf.io.VarLenFeature]:
    """The parse spec the reader uses. The label is required: a record without one must fail, not read as 0."""
    return {
        KEY_ENCODED: tf.io.FixedLenFeature([], tf.string),
        KEY_LABEL: tf.io.FixedLenFeature([], tf.int64),
        KEY_FILENAME: tf.io.FixedLenFeature([], tf.string, default_value=""),
        KEY_XMIN: tf.io.VarLenFeature(tf.float32),
        KEY_YMIN: tf.io.VarLenFeature(tf.float32),
        KEY_XMAX: tf.io.VarLenFeature(tf.float32),
        KEY_YMAX: tf.io.VarLenFeature(tf.float32),
    }


class DataError(Exception):
    """Bad real-data input. The message is the one line the user sees: it names the file or folder and the fix."""


# ---------------------------------------------------------------------------------------------------------------
# TFRecord framing: [uint64 length][uint32 masked crc32c(length)][data][uint32 masked crc32c(data)]
# ---------------------------------------------------------------------------------------------------------------
def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc32c_table()


def _masked_crc32c(data: bytes) -> int:
    """Masked CRC-32C as TFRecord stores it. Pure Python: only ever run on 8-byte headers, so speed is no issue."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _read_header(f, path: str, offset: int, size: int) -> int:
    """Read and check one record header at ``offset``; return the data length. Raises DataError naming the file."""
    header = f.read(12)
    if len(header) < 12:
        raise DataError(f"{path}: truncated record header at byte {offset} (file is {size} bytes); {_REMAKE}")
    (length,) = struct.unpack("<Q", header[:8])
    (crc,) = struct.unpack("<I", header[8:])
    if _masked_crc32c(header[:8]) != crc:
        what = "is not a TFRecord file" if offset == 0 else f"has a corrupt record header at byte {offset}"
        raise DataError(f"{path} {what}; {_REMAKE}")
    if offset + 12 + length + 4 > size:
        raise DataError(
            f"{path}: truncated record at byte {offset} (needs {length + 16} bytes, file ends at {size}); {_REMAKE}"
        )
    return length


_REMAKE = "re-create the shard (cpubench make-data) or move it out of the data folder"


def walk_records(path: str) -> int:
    """Walk every record header of a shard (seeks, no data read); return the record count or raise DataError.

    Catches truncation and corrupt lengths; not a flipped bit inside a record's data (only the data CRC, which
    ``diagnose_error`` checks with TensorFlow's reader, catches that).
    """
    size = tf.io.gfile.stat(path).length
    count, offset = 0, 0
    with tf.io.gfile.GFile(path, "rb") as f:
        while offset < size:
            length = _read_header(f, path, offset, size)
            offset += 12 + length + 4
            f.seek(offset)
            count += 1
    return count


# ---------------------------------------------------------------------------------------------------------------
# Shard discovery
# ---------------------------------------------------------------------------------------------------------------
def find_shards(data_dir: str, subset: str) -> list[str]:
    """The sorted shard paths of ``subset`` in ``data_dir``; DataError with a one-line fix when there are none.

    Checks per shard only what costs nothing: the file is not empty and its first record header is a valid
    TFRecord header (catches a folder of JPEGs or zips named like shards). Gaps in the ``-of-N`` numbering are
    allowed on purpose: "imagenet_mini" sets are usually a few shards copied out of the full 1024.
    """
    if subset not in SUBSETS:
        raise DataError(f"--data_subset={subset}: must be one of {', '.join(SUBSETS)}")
    if not data_dir:
        raise DataError("--data_dir is empty: pass the folder holding the train-*-of-* shards")
    if not tf.io.gfile.exists(data_dir):
        raise DataError(
            f"--data_dir={data_dir}: no such folder; pass the folder holding {subset}-*-of-* shards "
            "(make a set with `cpubench make-data`)"
        )
    if not tf.io.gfile.isdir(data_dir):
        raise DataError(f"--data_dir={data_dir} is a file, not a folder; pass the folder holding the shards")
    pattern = re.compile(_SHARD_RE.format(subset=re.escape(subset)))
    names = sorted(n for n in tf.io.gfile.listdir(data_dir) if pattern.match(n.rstrip("/")))
    if not names:
        present = sorted(tf.io.gfile.listdir(data_dir))
        shown = ", ".join(present[:5]) + (", ..." if len(present) > 5 else "") if present else "the folder is empty"
        other = [s for s in SUBSETS if s != subset]
        hint = f" or pick --data_subset={other[0]}" if any(n.startswith(other[0] + "-") for n in present) else ""
        raise DataError(
            f"--data_dir={data_dir}: no {subset}-*-of-* shards (found: {shown}); "
            f"make them with `cpubench make-data`{hint}"
        )
    paths = [os.path.join(data_dir, n.rstrip("/")) for n in names]
    for path in paths:
        if tf.io.gfile.isdir(path):
            raise DataError(f"{path} is a folder, not a TFRecord shard; move it out of the data folder")
        size = tf.io.gfile.stat(path).length
        if size == 0:
            raise DataError(f"{path} is empty (0 bytes); {_REMAKE}")
        with tf.io.gfile.GFile(path, "rb") as f:
            _read_header(f, path, 0, size)
    return paths


def count_records(data_dir: str, subset: str) -> int:
    """Number of records (images) in the subset, from record headers only: for ``--num_epochs`` and the log."""
    return sum(walk_records(p) for p in find_shards(data_dir, subset))


# ---------------------------------------------------------------------------------------------------------------
# Error diagnosis
# ---------------------------------------------------------------------------------------------------------------
def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
    text = re.sub(r"\s*\[\[\{\{node [^]]*\]\]", "", text)
    text = re.sub(r"\s*\[Op:\w+\].*$", "", text, flags=re.S)
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    return line


def _check_crc(path: str) -> str | None:
    """Read a whole shard with TensorFlow's reader (checks every data CRC); return its error line or None."""
    try:
        tf.data.TFRecordDataset(path).reduce(tf.constant(0, tf.int64), lambda n, _: n + 1)
    except (tf.errors.DataLossError, tf.errors.OutOfRangeError, tf.errors.InvalidArgumentError) as e:
        return _first_line(e)
    return None


def _check_parse(path: str) -> str | None:
    """Parse every record of a shard with the reader's spec; return the first error line or None."""
    spec = feature_spec()
    try:
        ds = tf.data.TFRecordDataset(path).map(lambda r: tf.io.parse_single_example(r, spec)[KEY_LABEL])
        ds.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1)
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
        return _first_line(e)
    return None


def _check_decode(path: str) -> str | None:
    """Decode every image of a shard; return "image NAME: reason" for the first that fails, or None."""
    spec = feature_spec()
    for raw in tf.data.TFRecordDataset(path):
        ex = tf.io.parse_single_example(raw, spec)
        try:
            tf.io.decode_jpeg(ex[KEY_ENCODED], channels=3)
        except tf.errors.OpError as e:
            return f"image {ex[KEY_FILENAME].numpy().decode(errors='replace')}: {_first_line(e)}"
    return None


def diagnose_error(data_dir: str, subset: str, exc: BaseException) -> DataError:
    """Turn an error raised while iterating ``make_dataset`` into a DataError whose one line names the shard.

    Call it on ``tf.errors.DataLossError`` / ``InvalidArgumentError`` (or any ``tf.errors.OpError``) from the input
    pipeline. TensorFlow's own messages ("corrupted record at 2044") do not say which file, so this re-checks the
    shards, cheapest check first, and stops at the first bad one: (1) messages our in-graph checks made (bad label,
    no decodable image) are returned as they are; (2) every record header of every shard (seeks only); (3) the data
    CRCs, starting with the shards big enough to hold the offset TensorFlow reported; (4) for parse errors, every
    record parsed with the reader's spec; (5) for decode errors (``skip_bad_images=False``), every image decoded.
    Costs a read of the data set at worst, paid only once the run has failed.
    """
    if isinstance(exc, DataError):
        return exc
    line = _first_line(exc)
    raw = str(exc)
    if MARKER in raw:
        msg = raw[raw.index(MARKER) + len(MARKER) :]
        msg = re.split(r"\]\s*(\n|\[\[|$)", msg)[0].replace('\\"', '"').strip()
        return DataError(msg)
    try:
        shards = find_shards(data_dir, subset)
    except DataError as e:
        return e
    if isinstance(exc, tf.errors.DataLossError) or "record" in line:
        try:
            for path in shards:
                walk_records(path)
        except DataError as e:
            return e
        m = re.search(r"record at (\d+)", line)
        at = int(m.group(1)) if m else 0
        ordered = sorted(shards, key=lambda p: tf.io.gfile.stat(p).length <= at)
        for path in ordered:
            err = _check_crc(path)
            if err:
                return DataError(f"{path}: {err}; {_REMAKE}")
    if isinstance(exc, tf.errors.InvalidArgumentError):
        for path in shards:
            err = _check_parse(path)
            if err:
                return DataError(f"{path}: not an ImageNet-format record ({err}); {_REMAKE}")
        if "jpeg" in line.lower() or "image" in line.lower():
            for path in shards:
                err = _check_decode(path)
                if err:
                    return DataError(f"{path}: undecodable {err}; {_REMAKE}")
    return DataError(f"reading the {subset} shards in {data_dir} failed: {line}")
