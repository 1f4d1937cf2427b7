"""``referformer segment``: the core's command (:mod:`referformer_core.cli`), and with ``--tracker`` its masks
re-drawn by the tracker before they are written.

    referformer segment video.mp4 "the brown dog" --tracker facebook/sam2.1-hiera-tiny [--refine-frames 3]

The model's ``--refine-frames`` most confident frames become the tracker's mask prompts and it runs both ways
(:func:`studio.tracking.refine_masks`); the PNG masks and preview.mp4 are then the tracker's, scores.json stays
ReferFormer's. The core stays unaware of the tracker: this front runs its ``predict`` and ``write_outputs``.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from referformer_core import cli
from referformer_core.errors import ReferFormerError

from .tracker import load_engine
from .tracking import NothingToRefine, file_frames, refine_arguments, refine_masks, refine_settings


def build_parser(prog: str = "referformer segment") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="segment the object an expression refers to in a "
                                                            "video, optionally refined by a tracker")
    cli.segment_arguments(parser)
    refine_arguments(parser)
    return parser


def refined(args: argparse.Namespace) -> int:
    """The core's segment with the tracker after it: the tracker loads first (a bad name or weights not
    downloaded stop here, before the model runs), then masks ``[T, H, W]`` are re-drawn at the video's size."""
    engine = load_engine(refine_settings(args, args.device))
    masks, scores = cli.predict(args)
    try:
        made = refine_masks(file_frames(args.video, args.stride), {1: dict(enumerate(masks))}, {1: scores}, engine,
                            args.refine_frames)[1]
    except NothingToRefine:
        print("the model found the object on no frame: nothing for the tracker to follow", file=sys.stderr)
        made = {}
    cli.write_outputs(args, np.stack([made.get(t, m) for t, m in enumerate(masks)]), scores)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return cli.segment(args) if args.tracker is None else refined(args)
    except ReferFormerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
