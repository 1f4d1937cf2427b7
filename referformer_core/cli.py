"""``referformer segment``: masks of the object an expression refers to, for every frame of a video, with a
preview mp4 and per-frame scores; and the model flags every command that runs the model shares.

    referformer segment sample.mp4 "the red star"                   # the bundled model
    referformer segment video.mp4 "the brown dog" --checkpoint r50_refytvos_joint.pth --out masks/
    python -m referformer_core.cli segment ...                      # the same, from the core alone
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .errors import ReferFormerError
from .precision import PRECISIONS
from .progress import end_progress, show_progress
from .settings import DEFAULT_MAX_MEMORY, SHORT_SIDE, WINDOW, RunSettings, settings_from_flags


def _save_masks(out: Path, masks: np.ndarray) -> None:
    import cv2

    out.mkdir(parents=True, exist_ok=True)
    for t, mask in enumerate(masks):
        if not cv2.imwrite(str(out / f"{t:05d}.png"), mask.astype(np.uint8) * 255):
            raise ReferFormerError(f"cannot write {out / f'{t:05d}.png'}")


def _write_preview(args: argparse.Namespace, masks: np.ndarray, scores: np.ndarray) -> None:
    """``OUT/preview.mp4`` (the mask over the frames at their original size) and ``OUT/scores.json``."""
    from .overlay import object_colour, overlay_masks, write_video
    from .video import iter_frames, probe_video

    out = Path(args.out)
    fps = probe_video(args.video).fps / args.stride
    colour = [object_colour(1)]
    frames = (overlay_masks(frame, mask[None], colour)
              for frame, mask in zip(iter_frames(args.video, args.stride), masks))
    write_video(out / "preview.mp4", frames, fps=fps)
    (out / "scores.json").write_text(json.dumps({"expression": args.expression, "mean": float(scores.mean()),
                                                 "scores": [round(float(s), 6) for s in scores]}))


def run_settings(args: argparse.Namespace) -> RunSettings:
    """The run settings of the model flags (:func:`model_arguments`), each ``None`` when not given."""
    return settings_from_flags(args.checkpoint, args.text_encoder, args.device, args.short_side, args.window,
                               args.max_memory, args.precision)


def predict(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """The model over ``args.video`` for ``args.expression``: masks ``[T, H, W]`` bool at the video's size and
    per-frame scores ``[T]``."""
    from .predictor import VideoPredictor

    predictor = VideoPredictor.from_settings(run_settings(args))
    state = predictor.init_state(args.video, stride=args.stride)
    predictor.add_expression(state, 1, args.expression)

    def progress(done: int, total: int) -> None:
        show_progress(f"segmenting: window {done}/{total}")

    by_frame = {t: m[0] for t, _, m in predictor.propagate_in_video(state, progress=progress)}
    masks = np.stack([by_frame[t] for t in range(len(by_frame))])
    end_progress()
    return masks, predictor.frame_scores(state, 1)


def write_outputs(args: argparse.Namespace, masks: np.ndarray, scores: np.ndarray) -> None:
    """One PNG per frame in ``args.out`` (and, with ``args.preview``, preview.mp4 and scores.json); says so."""
    _save_masks(Path(args.out), masks)
    if args.preview:
        _write_preview(args, masks, scores)
    print(f"{len(masks)} masks written to {args.out} (mean score {scores.mean():.3f})")


def segment(args: argparse.Namespace) -> int:
    masks, scores = predict(args)
    write_outputs(args, masks, scores)
    return 0


def gigabytes(text: str) -> float:
    """An argparse type: a number of GB (GiB), at least 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of GB >= 0, got {text}")
    return value


def model_arguments(parser: argparse.ArgumentParser, device: str) -> None:
    """The model flags of ``referformer segment`` and ``annotate`` (read by :func:`run_settings`)."""
    parser.add_argument("--checkpoint", help="official model-zoo .pth or one of ours (default: the bundled small "
                                             "model, which knows generated shapes, not real objects)")
    parser.add_argument("--text-encoder", help="tokenizer directory, packaged name or cached model id (default: the "
                                               "one the checkpoint names, else roberta-base)")
    parser.add_argument("--device", default=device)
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="fp32, bf16 or fp16 (CUDA only); default: bf16 on a CPU with native bf16 for backbones "
                             "whose bf16 masks were checked against fp32, else fp32")
    parser.add_argument("--short-side", type=int, help="frames are resized to this shorter side (default: the "
                                                       f"checkpoint's working size, else {SHORT_SIDE})")
    parser.add_argument("--stride", type=int, default=1, help="keep every n-th frame")
    parser.add_argument("--window", type=int, help="frames per forward pass (0: whole video; default: on the CPU "
                                                   "the longest that fits the memory budget, at most the "
                                                   f"checkpoint's window, else {WINDOW})")
    parser.add_argument("--max-memory", type=gigabytes, metavar="GB",
                        help="peak memory (RSS, GiB) the window is chosen to fit when --window is not given "
                             f"(default {DEFAULT_MAX_MEMORY:g}; 0: no budget)")


def segment_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``referformer segment`` (the video, the expression, the outputs, the model flags)."""
    parser.add_argument("video", help="video file (any format PyAV reads)")
    parser.add_argument("expression", help='referring expression, e.g. "the brown dog jumping over the fence"')
    parser.add_argument("--out", default="masks", help="folder for one PNG mask per frame, preview.mp4, "
                                                       "scores.json")
    parser.add_argument("--preview", action=argparse.BooleanOptionalAction, default=True,
                        help="write preview.mp4 (mask overlaid) and scores.json (per-frame scores)")
    model_arguments(parser, "cpu")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="referformer", description="ReferFormer referring video segmentation")
    sub = parser.add_subparsers(dest="command", required=True)
    seg = sub.add_parser("segment", help="segment the object an expression refers to in a video")
    segment_arguments(seg)
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
