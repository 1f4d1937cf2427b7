"""How much frame windowing changes the masks, against one pass over the whole video.

    python benchmarks/bench_window.py [--frames 72] [--windows 5,12,36] [--json]

The cross-modal FPN attends over all frames of a pass and the query is chosen per pass, so cutting a long
video into windows changes the result. This segments a generated video (a textured square moving across a
textured background) with the ResNet-50 model on the parity recipe weights, once in one pass and once per
window size, and prints the mean IoU and the fraction of differing pixels against the one-pass masks.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from referformer_core.config import get_config  # noqa: E402
from referformer_core.parity import apply_recipe  # noqa: E402
from referformer_core.predictor import VideoPredictor  # noqa: E402
from referformer_core.referformer import ReferFormer  # noqa: E402


class FixedTokenizer:
    """Stands in for a tokenizer: the same token ids for any text (no vocabulary exists offline)."""

    def __call__(self, texts, **kwargs):
        ids = torch.tensor([[0, 11, 12, 13, 14, 2]] * len(texts))
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def generated_video(num_frames: int, h: int = 180, w: int = 320) -> np.ndarray:
    rng = np.random.default_rng(0)
    background = rng.integers(0, 120, (h, w, 3), dtype=np.uint8)
    square = rng.integers(150, 255, (h // 3, h // 3, 3), dtype=np.uint8)
    frames = np.repeat(background[None], num_frames, axis=0)
    for t in range(num_frames):
        x = int((w - square.shape[1]) * t / max(1, num_frames - 1))
        frames[t, h // 3: h // 3 + square.shape[0], x: x + square.shape[1]] = square
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=72)
    parser.add_argument("--windows", default="5,12,36")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = ReferFormer(get_config("resnet50")).eval()
    apply_recipe(model)
    video = generated_video(args.frames)

    def segment(window: int | None) -> tuple[np.ndarray, float]:
        predictor = VideoPredictor(model, FixedTokenizer(), short_side=180, window=window)
        start = time.perf_counter()
        masks = predictor.predict(video, "the bright square")
        return masks, time.perf_counter() - start

    reference, ref_time = segment(None)
    rows = [("one pass", ref_time, 1.0, 0.0)]
    for window in (int(w) for w in args.windows.split(",")):
        masks, seconds = segment(window)
        inter = (masks & reference).sum((1, 2))
        union = (masks | reference).sum((1, 2))
        iou = float(np.where(union > 0, inter / np.maximum(union, 1), 1.0).mean())
        rows.append((f"window {window}", seconds, iou, float((masks != reference).mean())))
    print(f"windowing vs one pass: {args.frames} generated frames at 180x320, ResNet-50 on recipe weights")
    print(f"{'run':<12}{'seconds':>10}{'mean IoU':>11}{'pixels differing':>18}")
    for name, seconds, iou, diff in rows:
        print(f"{name:<12}{seconds:>10.1f}{iou:>11.3f}{diff:>18.4f}")
    if args.json:
        print(json.dumps({name.replace(" ", "_"): {"seconds": s, "mean_iou": i, "pixels_differing": d}
                          for name, s, i, d in rows}))


if __name__ == "__main__":
    main()
