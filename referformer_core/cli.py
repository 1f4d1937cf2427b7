"""``referformer segment``: masks of the object an expression refers to, for every frame of a video.

    referformer segment video.mp4 "the brown dog" --checkpoint r50_refytvos_joint.pth --out masks/
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .errors import ReferFormerError


def _save_masks(out: Path, masks: np.ndarray) -> None:
    import cv2

    out.mkdir(parents=True, exist_ok=True)
    for t, mask in enumerate(masks):
        if not cv2.imwrite(str(out / f"{t:05d}.png"), mask.astype(np.uint8) * 255):
            raise ReferFormerError(f"cannot write {out / f'{t:05d}.png'}")


def segment(args: argparse.Namespace) -> int:
    from .predictor import VideoPredictor

    predictor = VideoPredictor.from_checkpoint(args.checkpoint, text_encoder=args.text_encoder, device=args.device,
                                               short_side=args.short_side, window=args.window or None,
                                               autocast=args.autocast)
    state = predictor.init_state(args.video, stride=args.stride)
    predictor.add_expression(state, 1, args.expression)

    def progress(done: int, total: int) -> None:
        print(f"\rsegmenting: window {done}/{total}", end="", file=sys.stderr, flush=True)

    masks = np.stack([m[0] for _, _, m in predictor.propagate_in_video(state, progress=progress)])
    print(file=sys.stderr)
    _save_masks(Path(args.out), masks)
    scores = predictor.frame_scores(state, 1)
    print(f"{len(masks)} masks written to {args.out} (mean score {scores.mean():.3f})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="referformer", description="ReferFormer referring video segmentation")
    sub = parser.add_subparsers(dest="command", required=True)
    seg = sub.add_parser("segment", help="segment the object an expression refers to in a video")
    seg.add_argument("video", help="video file (any format PyAV reads)")
    seg.add_argument("expression", help='referring expression, e.g. "the brown dog jumping over the fence"')
    seg.add_argument("--checkpoint", required=True, help="official model-zoo .pth or one of ours")
    seg.add_argument("--text-encoder", default="roberta-base", help="tokenizer directory or cached model id")
    seg.add_argument("--out", default="masks", help="folder for one PNG mask per frame")
    seg.add_argument("--device", default="cpu")
    seg.add_argument("--autocast", choices=["bf16", "fp16"], help="reduced precision (fp16 on CUDA only)")
    seg.add_argument("--short-side", type=int, default=360, help="frames are resized to this shorter side")
    seg.add_argument("--stride", type=int, default=1, help="keep every n-th frame")
    seg.add_argument("--window", type=int, default=36, help="frames per forward pass (0: whole video)")
    seg.set_defaults(func=segment)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ReferFormerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
