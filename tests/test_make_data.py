"""``cpubench make-data``: round trips (labels, text, boxes, sizes come back), layouts, bad sources, and a real-data
engine run on what it writes. Everything on tiny images the tests generate (no download)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from cpubench import cli
from tf_cnn_benchmarks.data import find_shards, imagenet, make_dataset

pytestmark = pytest.mark.timeout(120)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_records(out: str, subset: str) -> list[dict]:
    """Every record of a subset as a plain dict (the schema keys, first values; boxes as lists)."""
    rows = []
    for path in find_shards(out, subset):
        for raw in tf.data.TFRecordDataset(path):
            f = tf.train.Example.FromString(raw.numpy()).features.feature
            rows.append(
                {
                    "label": f[imagenet.KEY_LABEL].int64_list.value[0],
                    "text": f[imagenet.KEY_TEXT].bytes_list.value[0].decode(),
                    "filename": f[imagenet.KEY_FILENAME].bytes_list.value[0].decode(),
                    "height": f[imagenet.KEY_HEIGHT].int64_list.value[0],
                    "width": f[imagenet.KEY_WIDTH].int64_list.value[0],
                    "format": f[imagenet.KEY_FORMAT].bytes_list.value[0].decode(),
                    "encoded": f[imagenet.KEY_ENCODED].bytes_list.value[0],
                    "boxes": list(
                        zip(
                            *(
                                f[k].float_list.value
                                for k in ("image/object/bbox/" + c for c in ("xmin", "ymin", "xmax", "ymax"))
                            ),
                            strict=True,
                        )
                    ),
                }
            )
    return rows


def make_data(*args: str) -> int:
    return cli.main(["make-data", *args])


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("gen")
    src, out = str(root / "src"), str(root / "out")
    rc = make_data(
        "--generate",
        "30",
        "--size",
        "40x30",
        "--classes",
        "3",
        "--shards",
        "2",
        "--validation-fraction",
        "0.2",
        src,
        out,
    )
    assert rc == 0
    return src, out


def test_generate_round_trip(generated):
    src, out = generated
    assert sorted(os.listdir(src)) == ["boxes.csv", "c000", "c001", "c002"]
    assert [os.path.basename(p) for p in find_shards(out, "train")] == ["train-00000-of-00002", "train-00001-of-00002"]
    train, val = read_records(out, "train"), read_records(out, "validation")
    assert len(train) == 24 and len(val) == 6  # 20% of each class of 10
    boxes = {}
    for line in open(os.path.join(src, "boxes.csv")):
        name, *coords = line.strip().split(",")
        boxes[os.path.basename(name)] = tuple(float(c) for c in coords)
    for rec in train + val:
        folder = f"c{rec['label'] - 1:03d}"
        assert rec["text"] == folder  # sorted class folders -> labels 1..K
        assert os.path.isfile(os.path.join(src, folder, rec["filename"]))
        assert (rec["height"], rec["width"], rec["format"]) == (30, 40, "JPEG")
        assert tf.image.extract_jpeg_shape(rec["encoded"]).numpy().tolist() == [30, 40, 3]
        np.testing.assert_allclose(rec["boxes"], [boxes[rec["filename"]]], atol=1e-6)
    assert {r["label"] for r in val} == {1, 2, 3}
    assert open(os.path.join(out, "labels.txt")).read() == "1\tc000\n2\tc001\n3\tc002\n"


def test_generated_set_feeds_the_pipeline(generated):
    _, out = generated
    for distortions in (False, True):
        images, labels = next(iter(make_dataset(out, "train", 24, 8, distortions=distortions)))
        assert images.shape == (8, 24, 24, 3) and set(labels.numpy()) <= {1, 2, 3}


def test_existing_shards_need_force(generated, capsys):
    src, out = generated
    assert make_data(src, out) == 2
    assert "already holds shards" in capsys.readouterr().err
    assert make_data(src, out, "--force", "--validation-fraction", "0") == 0
    assert read_records(out, "train") and not os.path.exists(os.path.join(out, "validation-00000-of-00001"))
    assert make_data(src, out, "--force", "--shards", "2", "--validation-fraction", "0.2") == 0  # restore


def _write_flat(folder, names: list[str]) -> None:
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    for n in names:
        pixels = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)
        data = tf.io.encode_png(pixels) if n.endswith(".png") else tf.io.encode_jpeg(pixels)
        (folder / n).write_bytes(data.numpy())


def test_flat_folder_with_class_names_boxes_and_png(tmp_path):
    src = tmp_path / "flat"
    _write_flat(src, ["a.jpg", "b.jpg", "c.png", "d.jpg"])
    (src / "labels.txt").write_text("# file label\na.jpg zebra\nb.jpg ant\nc.png zebra\nd.jpg ant\n")
    (tmp_path / "b.csv").write_text("filename,xmin,ymin,xmax,ymax\nb.jpg,0.1,0.2,0.5,0.6\nb.jpg,0.5,0.5,0.9,1.0\n")
    out = str(tmp_path / "out")
    assert make_data(str(src), out, "--boxes", str(tmp_path / "b.csv"), "--validation-fraction", "0") == 0
    recs = {r["filename"]: r for r in read_records(out, "train")}
    assert {k: (r["label"], r["text"]) for k, r in recs.items()} == {
        "a.jpg": (2, "zebra"),
        "b.jpg": (1, "ant"),
        "c.png": (2, "zebra"),
        "d.jpg": (1, "ant"),
    }
    np.testing.assert_allclose(recs["b.jpg"]["boxes"], [(0.1, 0.2, 0.5, 0.6), (0.5, 0.5, 0.9, 1.0)], atol=1e-6)
    assert recs["a.jpg"]["boxes"] == [(0.0, 0.0, 1.0, 1.0)]  # no box given: the whole image
    assert recs["c.png"]["encoded"][:2] == b"\xff\xd8"  # re-encoded as JPEG


def test_flat_folder_numeric_labels_kept(tmp_path):
    src = tmp_path / "flat"
    _write_flat(src, ["a.jpg", "b.jpg"])
    (tmp_path / "l.txt").write_text("a.jpg 0\nb.jpg 7\n")
    out = str(tmp_path / "out")
    assert make_data(str(src), out, "--labels", str(tmp_path / "l.txt"), "--validation-fraction", "0") == 0
    assert sorted(r["label"] for r in read_records(out, "train")) == [0, 7]


@pytest.mark.parametrize(
    "labels, message",
    [
        ("a.jpg x\n", "1 image\\(s\\) in .* have no label \\(first: b.jpg\\)"),
        ("a.jpg x\nb.jpg 3\n", "mix numbers and class names"),
        ("a.jpg 1\nb.jpg 1001\n", "label 1001 of b.jpg is outside"),
        ("a.jpg x\nb.jpg x\nz.jpg y\n", "labelled file\\(s\\) not in"),
        ("a.jpg\n", "expected 'filename label'"),
    ],
)
def test_bad_labels_file(tmp_path, capsys, labels, message):
    src = tmp_path / "flat"
    _write_flat(src, ["a.jpg", "b.jpg"])
    (src / "labels.txt").write_text(labels)
    assert make_data(str(src), str(tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("cpubench make-data: error: ")

    assert re.search(message, err), err


def test_bad_sources(tmp_path, capsys):
    assert make_data(str(tmp_path / "none"), str(tmp_path / "out")) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "flat").mkdir()
    assert make_data(str(tmp_path / "flat"), str(tmp_path / "out")) == 2
    assert "no class subfolders and no labels.txt" in capsys.readouterr().err
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "x").write_text("x")
    assert make_data("--generate", "3", str(tmp_path / "gen"), str(tmp_path / "out")) == 2
    assert "is not empty" in capsys.readouterr().err
    assert make_data("--generate", "3", "--size", "tiny", str(tmp_path / "g2"), str(tmp_path / "out")) == 2
    assert "--size=tiny" in capsys.readouterr().err


def test_unreadable_source_image_is_skipped_with_a_warning(tmp_path, capsys):
    src = tmp_path / "src"
    (src / "cat").mkdir(parents=True)
    _write_flat(src / "cat", ["a.jpg", "b.jpg"])
    good = (src / "cat" / "a.jpg").read_bytes()
    (src / "cat" / "broken.jpg").write_bytes(good[: len(good) // 2])
    (src / "cat" / "junk.png").write_bytes(b"not a png")
    out = str(tmp_path / "out")
    assert make_data(str(src), out, "--validation-fraction", "0") == 0
    captured = capsys.readouterr()
    assert captured.err.count("skipped unreadable image") == 2 and "broken.jpg" in captured.err
    assert "skipped 2 unreadable" in captured.out
    assert sorted(r["filename"] for r in read_records(out, "train")) == ["a.jpg", "b.jpg"]


# --------------------------------------------------------------------------------------------------------------
# The engine on real data (benchmark.py calls make_dataset / diagnose_error)
# --------------------------------------------------------------------------------------------------------------
def _engine_reads_real_data() -> bool:
    path = os.path.join(ROOT, "tf_cnn_benchmarks", "benchmark.py")
    return os.path.isfile(path) and "make_dataset" in open(path).read()


def run_engine(*flags: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.run(
        [sys.executable, "-m", "tf_cnn_benchmarks", *flags],
        capture_output=True,
        text=True,
        timeout=100,
        cwd=ROOT,
        env=env,
    )


@pytest.mark.skipif(not _engine_reads_real_data(), reason="engine (benchmark.py) does not read --data_dir yet")
@pytest.mark.parametrize("extra", [["--model=trivial"], ["--model=trivial", "--input_only", "--distortions"]])
def test_engine_real_data_run(generated, extra):
    _, out = generated
    proc = run_engine(*extra, f"--data_dir={out}", "--num_batches=3", "--batch_size=4", "--num_warmup_batches=1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "total images/sec:" in proc.stdout


@pytest.mark.skipif(not _engine_reads_real_data(), reason="engine (benchmark.py) does not read --data_dir yet")
def test_engine_bad_data_dir_one_line(tmp_path):
    proc = run_engine("--model=trivial", f"--data_dir={tmp_path / 'missing'}", "--num_batches=2", "--batch_size=2")
    assert proc.returncode != 0
    assert f"--data_dir={tmp_path / 'missing'}: no such folder" in proc.stderr
