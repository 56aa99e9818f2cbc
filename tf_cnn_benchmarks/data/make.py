"""ImageNet-format TFRecord shards from a folder of JPEGs, or from JPEGs generated here (``cpubench make-data``).

Beside the input pipeline that reads them (:mod:`tf_cnn_benchmarks.data.imagenet`) and the shard writer; imports
nothing of cpubench, whose ``make-data`` verb (:mod:`cpubench.commands.make_data`) is its command line.

Source layouts:

* class subfolders: ``SRC/<class>/*.jpg``. Class folder names, sorted, get labels 1..K (K <= 1000, upstream's
  ImageNet numbering; label 0 is the engine's background class); ``image/class/text`` is the folder name.
* flat folder plus a labels file (``--labels FILE``, or ``SRC/labels.txt`` when present): lines ``filename label``
  (blank lines and ``#`` comments ignored). Integer labels are written as they are (a 0-based file then needs the
  engine's ``--label_offset``); class names are sorted and get labels 1..K like folders. Every image must have a
  label and every label line an image: a mismatch is an error, never a silent guess.

Bounding boxes: ``--boxes FILE`` (or ``SRC/boxes.csv`` when present), upstream's CSV ``filename,xmin,ymin,xmax,ymax``
with coordinates normalised to [0, 1], any number of lines per image, matched by path relative to SRC or by base
name. Images without a box get one box covering the whole image.

``--generate COUNT`` first writes COUNT synthetic labelled JPEGs (class subfolders and a boxes.csv of the drawn
object) into SRC, so the real-data path runs with no download; ``--size`` sets their size (default 500x375, about
110 KB each at the default quality, like an average ImageNet JPEG). COUNT is at most 100,000: the set stands in for
real data to exercise the input pipeline (twice ImageNet's 50,000 validation images is plenty for that); a larger
set is real data's job.

Before anything is written, the options are checked and the output's size is estimated against the free space of
the disks it goes to (the generated JPEGs in SRC, the shards in OUT): a run that cannot fit stops with one line.

Images are checked as they are written (``--no-verify`` skips the full decode): an unreadable file is skipped with a
warning and counted in the summary; non-JPEG images (PNG, ...) are re-encoded as JPEG.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import re
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
MAX_LABEL = 1000  # the engine's head has 1001 classes, 0 = background
DEFAULT_SIZE = (500, 375)
# Noise level and quality that give ~110 KB per 500x375 image (the average ImageNet train JPEG).
GEN_NOISE = 28.0
GEN_QUALITY = 90
MAX_GENERATE = 100_000  # a stand-in for real data, not a replacement for it (see the module docstring)
MAX_WORKERS = 256  # shard writers past this only contend for the same disk
MAX_SHARDS = 99_999  # upstream's shard names count in five digits
MAX_SEED = 2**63 - 1  # numpy's generators take a non-negative seed
# Bytes per pixel of a generated JPEG by quality, measured on the generated images at 64x64 to 2000x2000 and
# rounded up: with RECORD_OVERHEAD (JPEG headers, the record's other features) an upper estimate of their size.
_BYTES_PER_PIXEL = ((1, 0.18), (25, 0.28), (50, 0.38), (75, 0.55), (90, 0.82), (95, 1.03), (100, 1.7))
RECORD_OVERHEAD = 1024


class MakeDataError(Exception):
    """A problem with the source or the options: the message is the one line the user sees."""


@dataclass
class Item:
    """One source image before it is read: where it is and what it is labelled."""

    path: str
    relpath: str
    label: int
    text: str
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)


@dataclass
class Stats:
    """Counts shared by the shard-writing threads."""

    written: dict[str, int] = field(default_factory=lambda: {"train": 0, "validation": 0})
    reencoded: int = 0
    skipped: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _synthetic_image(rng, k: int, num_classes: int, width: int, height: int, noise: float):
    """An image with structure: a class-coloured gradient and stripes, one object (ellipse), noise.

    Returns (uint8 HxWx3 array, object box as xmin, ymin, xmax, ymax normalised). The class shows in the colours and
    stripe frequency, so the set is learnable, and the noise gives JPEGs the size and decode cost of photos.
    """
    import numpy as np

    hue = k / max(1, num_classes)
    base = np.array([math.sin(2 * math.pi * (hue + o)) for o in (0.0, 1 / 3, 2 / 3)]) * 90 + 128
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    yy /= height
    xx /= width
    img = base * (0.6 + 0.4 * xx[..., None]) + rng.uniform(-30, 30, 3)
    freq = 1 + k % 7
    img += 35 * np.sin(2 * np.pi * (freq * xx + (k % 3) * yy + rng.uniform()))[..., None]
    rx, ry = rng.uniform(0.1, 0.35) * width, rng.uniform(0.1, 0.35) * height
    cx, cy = rng.uniform(rx, width - rx), rng.uniform(ry, height - ry)
    mask = ((xx * width - cx) / rx) ** 2 + ((yy * height - cy) / ry) ** 2 <= 1.0
    img[mask] = 255 - base
    img += rng.normal(0, noise, img.shape)
    box = ((cx - rx) / width, (cy - ry) / height, (cx + rx) / width, (cy + ry) / height)
    return np.clip(img, 0, 255).astype(np.uint8), tuple(min(1.0, max(0.0, round(v, 4))) for v in box)


def _bounded(flag: str, value: int, low: int, high: int, why: str = "") -> None:
    if not low <= value <= high:
        raise MakeDataError(f"{flag}={value}: expected {low:,} to {high:,}" + (f" ({why})" if why else ""))


def check_generate(count: int, num_classes: int, quality: int = GEN_QUALITY, seed: int = 1234) -> None:
    """Refuse (MakeDataError, one line) generation options out of range, before anything is imported or written."""
    _bounded("--generate", count, 1, MAX_GENERATE, "a synthetic stand-in for real data; for more, use real JPEGs")
    _bounded("--classes", num_classes, 1, MAX_LABEL, "the engine's classes")
    _bounded("--quality", quality, 1, 100, "a JPEG quality")
    _bounded("--seed", seed, 0, MAX_SEED)


def check_build(
    shards: int = 0,
    validation_shards: int = 0,
    validation_fraction: float = 0.1,
    quality: int = GEN_QUALITY,
    seed: int = 1234,
    workers: int = 0,
) -> None:
    """Refuse (MakeDataError, one line) shard-writing options out of range, before anything is read or written."""
    _bounded("--shards", shards, 0, MAX_SHARDS, "0: one per ~1000 images")
    _bounded("--validation-shards", validation_shards, 0, MAX_SHARDS, "0: one per ~1000 images")
    if not 0 <= validation_fraction < 1:
        raise MakeDataError(f"--validation-fraction={validation_fraction}: must be in [0, 1)")
    _bounded("--quality", quality, 1, 100, "a JPEG quality")
    _bounded("--seed", seed, 0, MAX_SEED)
    _bounded("--workers", workers, 0, MAX_WORKERS, "0: one per CPU")


def generated_bytes(count: int, size: tuple[int, int], quality: int = GEN_QUALITY) -> int:
    """An upper estimate of the bytes of ``count`` generated JPEGs (and of their shards, which hold the same JPEGs)."""
    q0, b0 = _BYTES_PER_PIXEL[0]
    per_pixel = b0
    for q1, b1 in _BYTES_PER_PIXEL[1:]:
        if quality <= q1:
            per_pixel = b0 + (b1 - b0) * (max(quality, q0) - q0) / (q1 - q0)
            break
        q0, b0 = q1, b1
    else:
        per_pixel = b0
    return count * (RECORD_OVERHEAD + math.ceil(size[0] * size[1] * per_pixel))


def _existing(path: str) -> str:
    """``path`` or its nearest existing parent: where a folder still to be made will live."""
    p = os.path.abspath(path)
    while not os.path.exists(p) and os.path.dirname(p) != p:
        p = os.path.dirname(p)
    return p


def _human(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} TB"


def check_space(needs: list[tuple[str, int, str]]) -> None:
    """Refuse (MakeDataError, one line) when what is about to be written does not fit: ``needs`` holds (folder,
    bytes, what), and folders on the same disk add up."""
    disks: dict[int, tuple[str, int, list[str]]] = {}
    for path, size, what in needs:
        where = _existing(path)
        try:
            dev = os.stat(where).st_dev
        except OSError as e:
            raise MakeDataError(f"{path}: cannot reach its disk ({e.strerror})") from None
        first, total, whats = disks.get(dev, (path, 0, []))
        disks[dev] = (first, total + size, [*whats, what])
    for path, total, whats in disks.values():
        try:
            free = shutil.disk_usage(_existing(path)).free
        except OSError as e:
            raise MakeDataError(f"{path}: cannot read its disk's free space ({e.strerror})") from None
        if total > free:
            raise MakeDataError(
                f"{path}: {' and '.join(whats)} need about {_human(total)}, and its disk has {_human(free)} free; "
                "free some space, write to another disk, or make fewer images"
            )


def generate(
    src: str, count: int, num_classes: int, size: tuple[int, int], quality: int = GEN_QUALITY, seed: int = 1234
) -> None:
    """Write ``count`` synthetic JPEGs into ``src/c000/...`` and their object boxes into ``src/boxes.csv``."""
    check_generate(count, num_classes, quality, seed)
    if os.path.exists(src) and not os.path.isdir(src):
        raise MakeDataError(f"{src}: not a folder; --generate writes a fresh set: pass a new or empty folder as SRC")
    if os.path.isdir(src) and os.listdir(src):
        raise MakeDataError(f"{src} is not empty: --generate writes a fresh set; pass a new or empty folder as SRC")
    check_space([(src, generated_bytes(count, size, quality), f"{count:,} generated JPEGs")])
    import numpy as np
    import tensorflow as tf

    width, height = size
    rng = np.random.default_rng(seed)
    lines = []
    try:
        for i in range(count):
            k = i % num_classes
            folder = os.path.join(src, f"c{k:03d}")
            os.makedirs(folder, exist_ok=True)
            pixels, box = _synthetic_image(rng, k, num_classes, width, height, GEN_NOISE)
            name = f"c{k:03d}/img_{i:06d}.JPEG"
            data = tf.io.encode_jpeg(pixels, quality=quality).numpy()
            with open(os.path.join(src, name), "wb") as f:
                f.write(data)
            lines.append(f"{name},{box[0]},{box[1]},{box[2]},{box[3]}\n")
        with open(os.path.join(src, "boxes.csv"), "w") as f:
            f.writelines(lines)
    except OSError as e:
        raise MakeDataError(f"{src}: cannot write the generated set ({e.strerror}); free space or give another SRC"
                            ) from None  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# Scanning the source
# ---------------------------------------------------------------------------------------------------------------
def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTS) and not name.startswith(".")


def _scan_class_folders(src: str, classes: list[str]) -> list[Item]:
    if len(classes) > MAX_LABEL:
        raise MakeDataError(f"{src} has {len(classes)} class folders; the engine takes at most {MAX_LABEL}")
    items = []
    for label, name in enumerate(classes, start=1):
        root = os.path.join(src, name)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for fn in sorted(filenames):
                if _is_image(fn):
                    path = os.path.join(dirpath, fn)
                    items.append(Item(path, os.path.relpath(path, src), label, name))
    return items


def _read_labels(path: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    with open(path) as f:
        for n, line in enumerate(f, start=1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2:
                raise MakeDataError(f"{path}:{n}: expected 'filename label', got {line!r}")
            labels[parts[0]] = parts[1]
    if not labels:
        raise MakeDataError(f"{path}: no 'filename label' lines")
    return labels


def _scan_flat(src: str, labels_path: str) -> list[Item]:
    raw = _read_labels(labels_path)
    numeric = [v.lstrip("-").isdigit() for v in raw.values()]
    if any(numeric) and not all(numeric):
        raise MakeDataError(f"{labels_path}: labels mix numbers and class names; use one or the other")
    if all(numeric):
        bad = [(k, v) for k, v in raw.items() if not 0 <= int(v) <= MAX_LABEL]
        if bad:
            raise MakeDataError(f"{labels_path}: label {bad[0][1]} of {bad[0][0]} is outside [0, {MAX_LABEL}]")
        to_label = {v: (int(v), v) for v in raw.values()}
    else:
        names = sorted(set(raw.values()))
        if len(names) > MAX_LABEL:
            raise MakeDataError(f"{labels_path}: {len(names)} classes; the engine takes at most {MAX_LABEL}")
        to_label = {name: (i, name) for i, name in enumerate(names, start=1)}
    images = sorted(fn for fn in os.listdir(src) if _is_image(fn) and os.path.isfile(os.path.join(src, fn)))
    unlabelled = [fn for fn in images if fn not in raw]
    if unlabelled:
        raise MakeDataError(
            f"{labels_path}: {len(unlabelled)} image(s) in {src} have no label (first: {unlabelled[0]}); "
            "add them or move them out"
        )
    missing = [fn for fn in raw if fn not in set(images)]
    if missing:
        raise MakeDataError(f"{labels_path}: {len(missing)} labelled file(s) not in {src} (first: {missing[0]})")
    return [Item(os.path.join(src, fn), fn, *to_label[raw[fn]]) for fn in images]


def _read_boxes(path: str) -> dict[str, list[tuple[float, float, float, float]]]:
    boxes: dict[str, list[tuple[float, float, float, float]]] = {}
    with open(path) as f:
        for n, line in enumerate(f, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = [p.strip() for p in line.split(",")]
            try:
                xmin, ymin, xmax, ymax = (float(p) for p in parts[1:])
            except ValueError:
                if n == 1:  # a header line
                    continue
                raise MakeDataError(f"{path}:{n}: expected filename,xmin,ymin,xmax,ymax, got {line!r}") from None
            if not (0 <= xmin < xmax <= 1 and 0 <= ymin < ymax <= 1):
                raise MakeDataError(f"{path}:{n}: box must satisfy 0 <= min < max <= 1 (normalised), got {line!r}")
            boxes.setdefault(parts[0], []).append((xmin, ymin, xmax, ymax))
    return boxes


def scan(src: str, labels: str | None = None, boxes: str | None = None) -> list[Item]:
    """Every labelled source image, in a stable order, with its boxes."""
    if not os.path.isdir(src):
        raise MakeDataError(f"{src}: no such folder (use --generate COUNT to make a synthetic set there)")
    classes = sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d)) and not d.startswith("."))
    labels = labels or (os.path.join(src, "labels.txt") if os.path.isfile(os.path.join(src, "labels.txt")) else None)
    if labels:
        if not os.path.isfile(labels):
            raise MakeDataError(f"--labels={labels}: no such file")
        items = _scan_flat(src, labels)
    elif classes:
        items = _scan_class_folders(src, classes)
    else:
        raise MakeDataError(f"{src} has no class subfolders and no labels.txt; add one or pass --labels FILE")
    if not items:
        raise MakeDataError(f"{src}: no images ({', '.join(IMAGE_EXTS)}) found")
    boxes = boxes or (os.path.join(src, "boxes.csv") if os.path.isfile(os.path.join(src, "boxes.csv")) else None)
    if boxes:
        if not os.path.isfile(boxes):
            raise MakeDataError(f"--boxes={boxes}: no such file")
        table = _read_boxes(boxes)
        for item in items:
            item.boxes = table.get(item.relpath) or table.get(os.path.basename(item.relpath)) or []
    return items


def split(items: list[Item], fraction: float, seed: int) -> tuple[list[Item], list[Item]]:
    """Per-class split into (train, validation), both shuffled so every shard mixes classes."""
    if not 0 <= fraction < 1:  # also refused by check_build; split is public
        raise MakeDataError(f"--validation-fraction={fraction}: must be in [0, 1)")
    rng = random.Random(seed)
    by_class: dict[int, list[Item]] = {}
    for item in items:
        by_class.setdefault(item.label, []).append(item)
    train, val = [], []
    for label in sorted(by_class):
        group = by_class[label][:]
        rng.shuffle(group)
        k = min(round(len(group) * fraction), len(group) - 1)
        val += group[:k]
        train += group[k:]
    if fraction > 0 and not val and len(train) >= 2:
        val.append(train.pop())  # a tiny set still gets a validation image when one was asked for
    rng.shuffle(train)
    rng.shuffle(val)
    return train, val


# ---------------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------------
def _load(item: Item, verify: bool, quality: int, stats: Stats):
    """Read one source image as an ImageRecord (re-encoding non-JPEGs), or None (with a warning) if unreadable."""
    import tensorflow as tf

    from tf_cnn_benchmarks.data.tfrecord_writer import ImageRecord

    try:
        with open(item.path, "rb") as f:
            data = f.read()
        shape = None
        if data[:2] == b"\xff\xd8":
            shape = tf.image.extract_jpeg_shape(data).numpy()
            if shape[2] not in (1, 3):
                shape = None  # CMYK: re-encode as RGB below
            elif verify:
                tf.io.decode_jpeg(data, channels=3)
        if shape is None:
            pixels = tf.io.decode_image(data, channels=3, expand_animations=False)
            data = tf.io.encode_jpeg(pixels, quality=quality).numpy()
            shape = pixels.shape
            with stats.lock:
                stats.reencoded += 1
    except (tf.errors.OpError, OSError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        with stats.lock:
            stats.skipped.append(f"{item.path}: {reason[:120]}")
        return None
    name = os.path.basename(item.relpath)
    return ImageRecord(data, item.label, item.text, name, int(shape[0]), int(shape[1]), list(item.boxes))


def _write_one(path: str, subset: str, chunk: list[Item], verify: bool, quality: int, stats: Stats) -> None:
    from tf_cnn_benchmarks.data.tfrecord_writer import write_shard

    def records() -> Iterator:
        for item in chunk:
            rec = _load(item, verify, quality, stats)
            if rec is not None:
                with stats.lock:
                    stats.written[subset] += 1
                yield rec

    if not write_shard(path, records()):
        with stats.lock:
            stats.skipped.append(f"{path}: no readable image for this shard, so it was not written")


def _auto_shards(n: int, requested: int) -> int:
    return requested if requested > 0 else max(1, math.ceil(n / 1000))


_SHARD = re.compile(r"^(train|validation)-\d+-of-\d+")


def _old_shards(out: str) -> list[str]:
    return [n for n in os.listdir(out) if _SHARD.match(n)] if os.path.isdir(out) else []


def _check_out(out: str, force: bool) -> None:
    if os.path.exists(out) and not os.path.isdir(out):
        raise MakeDataError(f"{out}: not a folder; give a new or empty folder as OUT")
    old = _old_shards(out)
    if old and not force:
        raise MakeDataError(f"{out} already holds shards ({old[0]}, ...); pass --force to replace them")


def _prepare_out(out: str) -> None:
    try:
        os.makedirs(out, exist_ok=True)
        for n in _old_shards(out):
            os.remove(os.path.join(out, n))
    except OSError as e:
        raise MakeDataError(f"{out}: cannot write there ({e.strerror}); give a folder you can write") from None


def _source_bytes(items: list[Item], out: str, force: bool) -> int:
    """An estimate of the shards' bytes: the source files and a record's overhead each, less the old shards that
    ``--force`` removes first (their space comes back before the new ones are written)."""
    total = 0
    for item in items:
        try:
            total += os.path.getsize(item.path) + RECORD_OVERHEAD
        except OSError:
            pass  # unreadable: skipped with a warning when its shard is written
    if force:
        for n in _old_shards(out):
            with contextlib.suppress(OSError):
                total -= os.path.getsize(os.path.join(out, n))
    return max(0, total)


def build(
    src: str,
    out: str,
    *,
    shards: int = 0,
    validation_shards: int = 0,
    validation_fraction: float = 0.1,
    labels: str | None = None,
    boxes: str | None = None,
    seed: int = 1234,
    verify: bool = True,
    quality: int = GEN_QUALITY,
    force: bool = False,
    workers: int = 0,
) -> Stats:
    """Scan SRC, split, and write the shards and ``OUT/labels.txt`` (label, tab, class text). Returns the counts.

    Every check (options, source, labels, boxes, free space, shards already in OUT) comes before TensorFlow is
    imported, so a refusal is its one line, without TensorFlow's start-up logging."""
    check_build(shards, validation_shards, validation_fraction, quality, seed, workers)
    items = scan(src, labels, boxes)
    train, val = split(items, validation_fraction, seed)
    _check_out(out, force)
    check_space([(out, _source_bytes(items, out, force), f"the shards of {len(items):,} images")])
    _prepare_out(out)
    from tf_cnn_benchmarks.data.tfrecord_writer import shard_names, split_into_shards

    jobs = []
    for subset, group, requested in (("train", train, shards), ("validation", val, validation_shards)):
        if not group:
            continue
        chunks = split_into_shards(group, _auto_shards(len(group), requested))
        for name, chunk in zip(shard_names(subset, len(chunks)), chunks, strict=True):
            jobs.append((os.path.join(out, name), subset, chunk))
    stats = Stats()
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        for future in [pool.submit(_write_one, *job, verify, quality, stats) for job in jobs]:
            future.result()
    classes = sorted({(item.label, item.text) for item in items})
    with open(os.path.join(out, "labels.txt"), "w") as f:
        f.writelines(f"{label}\t{text}\n" for label, text in classes)
    return stats
