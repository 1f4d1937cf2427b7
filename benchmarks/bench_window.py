"""How much frame windowing changes the masks, against one pass over the whole video; the window the default
memory budget chooses, and the peak RSS of segmenting a long video under it.

    python benchmarks/bench_window.py [--device cpu|cuda] [--quick] [--frames 72] [--windows 5,12,36] [--json]

The cross-modal FPN attends over all frames of a pass and the query is chosen per pass, so cutting a long
video into windows changes the result. This segments a generated video (a textured square moving across a
textured background) with the ResNet-50 model on the parity recipe weights, once in one pass, once per
window size and once with the window the default budget (``--max-memory`` 4 GB) chooses, and prints the mean IoU
and the fraction of differing pixels against the one-pass masks.

Then it segments 300 generated frames at 360 x 640 under the default budget in a fresh process and reports that
process's peak RSS (``peak_rss_gb_300f``). ResNet-50 runs about 0.3 frames/s at 360p on 2 CPU cores (17 minutes for
300 frames), so that run uses the bundled small model (its working size, 192 short side); the window the budget
would give ResNet-50 at 360p is printed from the estimate alone.

The memory model's two constants (``referformer_core.memory``) were calibrated with ``memory.calibrate`` (the
growth of the peak RSS, ``VmHWM``, between two window lengths, one child process per measurement; 2 CPU threads,
torch 2.14, glibc; a shared machine, so the repeated measurements spread by about 10%):

    config (backbone, hidden)            frames      per frame             floats per pixel
    resnet50 (ResNet-50, 256)            360 x 640   190-211 MB            207-229  (peak in the decoder)
    tiny, hidden 256 (EffNet-Lite0, 256) 96 x 160    11.9 MB               194      (peak in the decoder)
                                         128 x 224   27.2 MB               237
    small (EffNet-Lite0, 96)             360 x 640   62-100 MB             67-108   (peak in the backbone)
    tiny (EffNet-Lite0, 64)              96 x 160    3.5 MB                57       (peak in the backbone)

Over their backbone outputs (30 and 3 floats per pixel) the decoder rows leave at most 199 and 234 floats per
pixel: 12.4 and 14.6 maps of 16 (hidden 256 at stride 4). So ``DECODER_MAPS = 15`` and ``BACKBONE_FLOATS = 110``,
both rounded up: the estimate errs on the large side (ResNet-50 at 360 x 640: 270 floats, 249 MB per frame; the
backbone floor is up to twice the EfficientNet measurements). ResNet-50 grows linearly from 1 to 8 frames (to
within 10%).

With freed memory kept for reuse within a window (``memory.reuse_freed_memory``, as the pipeline runs on the CPU)
the same measurement gave 219 MiB per frame (249 floats per pixel) for ResNet-50 and 85 MiB (96) for ``small``,
both at 360 x 640: still under the estimate (237 and 97 MiB), with less to spare (8% and 12%).

``--device cuda`` segments on the GPU (the memory budget is the CPU's: there the budget's window is the longest,
and the long-video RSS run is left out). ``--quick``: 6 frames, windows 2 and 3, the ``tiny`` model at a 32-pixel
short side, and 8 long frames at 72 x 128 (seconds; the benchmark's own check).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from referformer_core import memory, pipeline  # noqa: E402
from referformer_core.config import get_config  # noqa: E402
from referformer_core.parity import apply_recipe  # noqa: E402
from referformer_core.predictor import VideoPredictor  # noqa: E402
from referformer_core.referformer import ReferFormer  # noqa: E402
from referformer_core.settings import DEFAULT_MAX_MEMORY, WINDOW  # noqa: E402

LONG_FRAMES = 300
LONG_SIZE = (360, 640)


class FixedTokenizer:
    """Stands in for a tokenizer: the same token ids for any text (no vocabulary exists offline)."""

    def __call__(self, texts, **kwargs):
        ids = torch.tensor([[0, 11, 12, 13, 14, 2]] * len(texts))
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def generated_frames(num_frames: int, h: int = 180, w: int = 320) -> Iterator[np.ndarray]:
    """``[h, w, 3]`` uint8 frames, one at a time: a textured square crossing a textured background."""
    rng = np.random.default_rng(0)
    background = rng.integers(0, 120, (h, w, 3), dtype=np.uint8)
    square = rng.integers(150, 255, (h // 3, h // 3, 3), dtype=np.uint8)
    for t in range(num_frames):
        frame = background.copy()
        x = int((w - square.shape[1]) * t / max(1, num_frames - 1))
        frame[h // 3: h // 3 + square.shape[0], x: x + square.shape[1]] = square
        yield frame


def generated_video(num_frames: int, h: int = 180, w: int = 320) -> np.ndarray:
    """``[T, h, w, 3]`` uint8: :func:`generated_frames` stacked."""
    return np.stack(list(generated_frames(num_frames, h, w)))


def segment_long_video(num_frames: int = LONG_FRAMES, size: tuple[int, int] = LONG_SIZE) -> tuple[int | None, float]:
    """Child process: the bundled model under the default budget over ``num_frames`` generated frames at ``size``,
    streamed in and masks consumed as they come; the window it chose and the seconds it took."""
    torch.set_num_threads(2)
    predictor = VideoPredictor.from_checkpoint()
    start = time.perf_counter()
    state = predictor.init_state(generated_frames(num_frames, *size))
    predictor.add_expression(state, 1, "the bright square")
    window = predictor.window_for(state)
    for _frame, _ids, masks in predictor.propagate_in_video(state):
        assert masks.shape == (1, *size)
    return window, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: seconds")
    parser.add_argument("--frames", type=int)
    parser.add_argument("--windows")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda: no CUDA GPU is available here", file=sys.stderr)
        return 2
    frames = args.frames or (6 if args.quick else 72)
    windows = args.windows or ("2,3" if args.quick else "5,12,36")
    short_side, long_frames, long_size = (32, 8, (72, 128)) if args.quick else (180, LONG_FRAMES, LONG_SIZE)
    device = torch.device(args.device)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = ReferFormer(get_config("tiny" if args.quick else "resnet50")).eval()
    if not args.quick:
        apply_recipe(model)
    model_name = "tiny (random weights)" if args.quick else "ResNet-50 on recipe weights"
    video = generated_video(frames)

    def segment(window: int | str | None) -> tuple[np.ndarray, float]:
        predictor = VideoPredictor(model, FixedTokenizer(), device=args.device, short_side=short_side, window=window)
        start = time.perf_counter()
        masks = predictor.predict(video, "the bright square")
        return masks, time.perf_counter() - start

    budget = VideoPredictor(model, FixedTokenizer(), device=args.device, short_side=short_side)
    budget_state = budget.init_state(video)
    budget.add_expression(budget_state, 1, "the bright square")
    budget_window = budget.window_for(budget_state)
    reference, ref_time = segment(None)
    rows = [("one pass", "one_pass", ref_time, 1.0, 0.0)]
    runs = [(f"window {w}", f"window_{w}", int(w)) for w in windows.split(",")]
    for name, key, window in [*runs, (f"budget ({budget_window})", "default_budget", "auto")]:
        masks, seconds = segment(window)
        inter = (masks & reference).sum((1, 2))
        union = (masks | reference).sum((1, 2))
        iou = float(np.where(union > 0, inter / np.maximum(union, 1), 1.0).mean())
        rows.append((name, key, seconds, iou, float((masks != reference).mean())))
    print(f"windowing vs one pass: {frames} generated frames at 180x320, {model_name}, {args.device}; "
          f"budget: the window the default {memory.DEFAULT_MAX_MEMORY:g} GB budget chose")
    print(f"{'run':<14}{'seconds':>10}{'mean IoU':>11}{'pixels differing':>18}")
    for name, _key, seconds, iou, diff in rows:
        print(f"{name:<14}{seconds:>10.1f}{iou:>11.3f}{diff:>18.4f}")
    out: dict = {key: {"seconds": s, "mean_iou": i, "pixels_differing": d} for _name, key, s, i, d in rows}
    out.update(device=args.device, quick=args.quick, max_memory_gb=memory.DEFAULT_MAX_MEMORY,
               window_default_budget=budget_window)
    if device.type == "cpu":
        estimate_name = "tiny" if args.quick else "ResNet-50"
        estimate = memory.budget_window(model, LONG_SIZE, LONG_FRAMES, 1, memory.DEFAULT_MAX_MEMORY, pipeline.WINDOW)
        peak, (long_window, long_seconds) = memory.measure_peak_rss(segment_long_video, long_frames, long_size)
        long_rows = [(f"{estimate_name} (estimate only)", estimate, None, None),
                     ("bundled small (measured)", long_window, long_seconds, peak / memory.GIB)]
        print(f"\n{long_frames} generated frames at {long_size[0]}x{long_size[1]} under the default "
              f"{memory.DEFAULT_MAX_MEMORY:g} GB budget (peak RSS of a fresh process; the {estimate_name} estimate "
              f"for {LONG_FRAMES} frames at {LONG_SIZE[0]}x{LONG_SIZE[1]})")
        print(f"{'model':<27}{'window':>8}{'seconds':>10}{'peak RSS GB':>13}")
        for name, window, seconds, gb in long_rows:
            print(f"{name:<27}{window:>8}{'-' if seconds is None else f'{seconds:.1f}':>10}"
                  f"{'-' if gb is None else f'{gb:.2f}':>13}")
        n = long_frames
        out.update({f"window_default_budget_{'tiny' if args.quick else 'r50'}_360p_300f": estimate,
                    f"window_{n}f": long_window, f"seconds_{n}f": long_seconds, f"peak_rss_gb_{n}f": peak / memory.GIB,
                    f"model_{n}f": "bundled small"})
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
