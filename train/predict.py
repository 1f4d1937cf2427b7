"""Run a checkpoint over a Ref-Youtube-VOS-layout folder and write the submission layout ``train.evaluate`` reads.

    python -m train.predict --data DIR --out PRED [--checkpoint CKPT] [--short-side N]

``PRED/<video>/<exp_id>/<frame>.png`` (0/255 masks at the frames' size) and ``PRED/<video>/<exp_id>/scores.json``
(the chosen query's score on each frame). All expressions of a video share one pass over its frames.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from referformer_core.errors import ReferFormerError
from referformer_core.predictor import VideoPredictor
from referformer_core.progress import end_progress, show_progress
from train.data import ExpressionRecord, read_expressions


def read_frames(root: Path, video: str, frames: Sequence[str]) -> np.ndarray:
    """``[T, H, W, 3]`` uint8 ``frames`` of ``video`` under ``root/JPEGImages``."""
    return np.stack([np.asarray(Image.open(root / "JPEGImages" / video / f"{f}.jpg").convert("RGB"))
                     for f in frames])


def predict_folder(predictor: VideoPredictor, data: str | Path, out: str | Path, progress: bool = True) -> Path:
    """Masks and scores of every expression of ``data`` under ``out``; returns ``out``."""
    data, out = Path(data), Path(out)
    by_video: dict[str, list[ExpressionRecord]] = defaultdict(list)
    for record in read_expressions(data):
        by_video[record.video].append(record)
    for done, (video, records) in enumerate(by_video.items(), 1):
        state = predictor.init_state(read_frames(data, video, records[0].frames))
        for obj, record in enumerate(records, 1):
            predictor.add_expression(state, obj, record.expression)
        final: dict[int, np.ndarray] = {}
        for frame_idx, _ids, masks in predictor.propagate_in_video(state):
            final[frame_idx] = masks
        for obj, record in enumerate(records, 1):
            folder = out / video / record.exp_id
            folder.mkdir(parents=True, exist_ok=True)
            for t, frame in enumerate(record.frames):
                Image.fromarray(final[t][obj - 1].astype(np.uint8) * 255).save(folder / f"{frame}.png")
            scores = predictor.frame_scores(state, obj)
            (folder / "scores.json").write_text(json.dumps({"scores": [round(float(s), 6) for s in scores]}))
        if progress:
            show_progress(f"predicting: video {done}/{len(by_video)}")
    if progress:
        end_progress()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.predict", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="Ref-Youtube-VOS-layout folder (JPEGImages, meta_expressions)")
    parser.add_argument("--out", required=True, help="folder for the predicted masks")
    parser.add_argument("--checkpoint", help="default: the bundled model")
    parser.add_argument("--text-encoder", help="default: the checkpoint's own, else roberta-base")
    parser.add_argument("--short-side", type=int, help="default: the checkpoint's working size, else 360")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        predictor = VideoPredictor.from_checkpoint(args.checkpoint, args.text_encoder, args.device, args.short_side)
        predict_folder(predictor, args.data, args.out, progress=not args.no_progress)
    except ReferFormerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"predictions written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
