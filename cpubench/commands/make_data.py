"""``cpubench make-data SRC OUT``: ImageNet-format TFRecord shards from a folder of JPEGs (or generated ones).

The arguments and the one-line errors; the builder is :mod:`tf_cnn_benchmarks.data.make`, beside the engine's input
pipeline that reads what it writes.
"""

from __future__ import annotations

import argparse
import os
import sys

from tf_cnn_benchmarks.data import make
from tf_cnn_benchmarks.data.make import (
    DEFAULT_SIZE,
    GEN_QUALITY,
    MAX_GENERATE,
    MAX_WORKERS,
    MakeDataError,
    build,
    check_build,
    check_generate,
    check_space,
    generate,
    generated_bytes,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n")[0].replace("``", "") if __doc__ else None
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    # The builder's own notes (source layouts, labels, boxes, shards) are the help's epilog.
    parser.epilog = "\n\n".join(make.__doc__.split("\n\n")[2:]) if make.__doc__ else None
    parser.add_argument("src", metavar="SRC", help="folder of JPEGs (class subfolders, or flat plus a labels file)")
    parser.add_argument("out", metavar="OUT", help="folder to write train-*-of-* and validation-*-of-* shards into")
    parser.add_argument("--shards", type=int, default=0, help="train shards; 0 = one per ~1000 images")
    parser.add_argument("--validation-shards", type=int, default=0, help="validation shards; 0 = one per ~1000")
    parser.add_argument(
        "--validation-fraction", type=float, default=0.1, help="share of each class for validation (default 0.1)"
    )
    parser.add_argument("--labels", help="labels file for a flat folder: lines 'filename label'")
    parser.add_argument("--boxes", help="CSV of boxes: filename,xmin,ymin,xmax,ymax (normalised)")
    parser.add_argument("--generate", type=int, default=0, metavar="COUNT", help="first generate COUNT JPEGs in SRC "
                        f"(at most {MAX_GENERATE:,}: a stand-in for real data, not a replacement)")  # fmt: skip
    parser.add_argument("--classes", type=int, default=10, help="classes of the generated set (default 10)")
    parser.add_argument("--size", default="", metavar="S", help="generated image size: WxH or S (SxS); default 500x375")
    parser.add_argument("--quality", type=int, default=GEN_QUALITY,
                        help=f"JPEG quality (1 to 100) of generated/re-encoded (default {GEN_QUALITY})")  # fmt: skip
    parser.add_argument("--seed", type=int, default=1234, help="seed for generation, the split and shard order")
    parser.add_argument("--no-verify", action="store_true", help="do not fully decode each image while writing")
    parser.add_argument("--force", action="store_true", help="replace shards already in OUT")
    parser.add_argument("--workers", type=int, default=0, help=f"threads writing shards (at most {MAX_WORKERS}); "
                        "0 = CPU count")  # fmt: skip


def parse_size(text: str) -> tuple[int, int]:
    """'500x375' -> (500, 375); '64' -> (64, 64); '' -> the default."""
    if not text:
        return DEFAULT_SIZE
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise MakeDataError(f"--size={text}: expected WxH or S, e.g. 500x375 or 64") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 8 or max(parts) > 8192:
        raise MakeDataError(f"--size={text}: expected WxH or S with sides from 8 to 8192")
    return parts[0], parts[1]


def main(args: argparse.Namespace) -> int:
    # TensorFlow is imported only once every option, the source and the free space are checked; its C++ start-up
    # notes are not this command's output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        check_build(args.shards, args.validation_shards, args.validation_fraction, args.quality, args.seed,
                    args.workers)  # fmt: skip
        if args.generate:
            check_generate(args.generate, args.classes, args.quality, args.seed)
            size = parse_size(args.size)
            need = generated_bytes(args.generate, size, args.quality)
            check_space([(args.src, need, f"{args.generate:,} generated JPEGs"), (args.out, need, "their shards")])
            generate(args.src, args.generate, args.classes, size, args.quality, args.seed)
            print(f"generated {args.generate} {size[0]}x{size[1]} JPEGs in {args.classes} classes in {args.src}")
        elif args.size:
            raise MakeDataError("--size applies to --generate only")
        stats = build(
            args.src,
            args.out,
            shards=args.shards,
            validation_shards=args.validation_shards,
            validation_fraction=args.validation_fraction,
            labels=args.labels,
            boxes=args.boxes,
            seed=args.seed,
            verify=not args.no_verify,
            quality=args.quality,
            force=args.force,
            workers=args.workers,
        )
    except MakeDataError as e:
        print(f"cpubench make-data: error: {e}", file=sys.stderr)
        return 2
    for line in stats.skipped[:10]:
        print(f"cpubench make-data: warning: skipped unreadable image {line}", file=sys.stderr)
    if len(stats.skipped) > 10:
        print(f"cpubench make-data: warning: ... and {len(stats.skipped) - 10} more", file=sys.stderr)
    total = stats.written["train"] + stats.written["validation"]
    print(
        f"wrote {stats.written['train']} train and {stats.written['validation']} validation images to {args.out}"
        + (f"; re-encoded {stats.reencoded} non-JPEG" if stats.reencoded else "")
        + (f"; skipped {len(stats.skipped)} unreadable" if stats.skipped else "")
    )
    if total == 0:
        print(f"cpubench make-data: error: no readable image in {args.src}", file=sys.stderr)
        return 1
    return 0
