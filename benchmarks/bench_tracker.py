"""The tracker's speed and memory: first mask after a click, a further click, tracking frames/s, peak RSS.

    python benchmarks/bench_tracker.py [--quick] [--models sam2.1-tiny,edgetam,grabcut] [--frames 4]
                                       [--rss-frames 300] [--precision fp32] [--json]

SAM 2.1-tiny and EdgeTAM are built at their real default sizes (``Sam2VideoConfig()``, ``EdgeTamVideoConfig()``)
with random weights, saved and loaded through the studio's engine as downloaded weights are (the compute does
not depend on the weights' values); GrabCut needs none. Each runs on a generated video (a textured square
crossing a textured background) at 360p and 720p input: the first mask after a click on a frame (image encoder
+ decoder, in ms), a further click on the same frame (decoder only), and tracking forward from a mask over
``--frames`` frames (frames/s). The peak RSS of tracking ``--rss-frames`` frames at 360p is measured in a fresh
process per model. ``--quick`` uses the tests' tiny configurations and few frames (a check that it runs).

The JSON line holds, for the CPU default (``--default``, EdgeTAM), ``first_mask_after_click_ms``,
``refine_click_ms``, ``track_fps_360p``, ``track_fps_720p`` and ``peak_rss_gb_300f``, and ``rows``: one per
model and input size.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from studio.tracker import Frames, Prompt, TrackerSettings, load_engine  # noqa: E402

SIZES = {"360p": (360, 640), "720p": (720, 1280)}
MODELS = ("sam2.1-tiny", "edgetam", "grabcut")


def generated(count: int, h: int, w: int) -> tuple[Frames, Callable[[int], np.ndarray]]:
    """A ``count``-frame ``h`` x ``w`` video made on demand (nothing kept) and ``truth(t)``, its square's mask."""
    rng = np.random.default_rng(0)
    background = rng.integers(0, 120, (h, w, 3), dtype=np.uint8)
    side = h // 3
    square = rng.integers(150, 255, (side, side, 3), dtype=np.uint8)

    def x(t: int) -> int:
        return int((w - side) * t / max(1, count - 1) * 0.5)

    def read(t: int) -> np.ndarray:
        frame = background.copy()
        frame[side:2 * side, x(t):x(t) + side] = square
        return frame

    def truth(t: int) -> np.ndarray:
        mask = np.zeros((h, w), bool)
        mask[side:2 * side, x(t):x(t) + side] = True
        return mask

    return Frames(("bench", count, h, w), count, h, w, read), truth


def save_model(model: str, folder: Path, quick: bool) -> str:
    """Save ``model`` with random weights into ``folder``; the tracker name to load it by."""
    if model == "grabcut":
        return "grabcut"
    import torch
    import transformers

    if quick:
        from tests.studio.tracker_models import save_tiny_edgetam, save_tiny_sam2

        (save_tiny_sam2 if model == "sam2.1-tiny" else save_tiny_edgetam)(folder)
        return str(folder)
    torch.manual_seed(0)
    if model == "sam2.1-tiny":
        net = transformers.Sam2VideoModel(transformers.Sam2VideoConfig())
    else:
        net = transformers.EdgeTamVideoModel(transformers.EdgeTamVideoConfig())
    net.eval().save_pretrained(folder)
    size = {"height": net.config.image_size, "width": net.config.image_size}
    transformers.Sam2VideoProcessor(transformers.Sam2ImageProcessor(size=size),
                                    transformers.Sam2VideoVideoProcessor(size=size)).save_pretrained(folder)
    return str(folder)


def measure(name: str, precision: str, size: str, frames_count: int) -> dict:
    """One row: click, further click and tracking speed of tracker ``name`` at input ``size``."""
    h, w = SIZES[size]
    engine = load_engine(TrackerSettings(name, precision=precision))
    video, truth = generated(frames_count + 1, h, w)
    ys, xs = np.nonzero(truth(0))
    centre = (float(xs.mean()), float(ys.mean()))
    box = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
    started = time.perf_counter()
    engine.segment(video, 0, Prompt(box=box))
    first = time.perf_counter() - started
    started = time.perf_counter()
    engine.segment(video, 0, Prompt((centre, (2.0, 2.0)), (1, 0), box), truth(0))
    further = time.perf_counter() - started
    started = time.perf_counter()
    made = sum(1 for t, _ in engine.track(video, {0: {1: truth(0)}}, 0, "forward", frames_count) if t > 0)
    fps = made / (time.perf_counter() - started)
    return {"first_mask_after_click_ms": round(first * 1e3, 1), "refine_click_ms": round(further * 1e3, 1),
            "track_fps": round(fps, 3), "frames": made}


def peak_rss(name: str, precision: str, frames_count: int) -> float:
    """Peak RSS (GB) of a fresh process tracking ``frames_count`` frames at 360p with tracker ``name``."""
    out = subprocess.run([sys.executable, __file__, "--rss-child", name, "--precision", precision,
                          "--rss-frames", str(frames_count)], capture_output=True, text=True, cwd=REPO)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_gb"]


def rss_child(name: str, precision: str, frames_count: int) -> None:
    h, w = SIZES["360p"]
    engine = load_engine(TrackerSettings(name, precision=precision))
    video, truth = generated(frames_count, h, w)
    for _ in engine.track(video, {0: {1: truth(0)}}, 0, "forward", frames_count - 1):
        pass
    print(json.dumps({"peak_rss_gb": round(peak_rss_kb() / 2 ** 20, 3)}))


def peak_rss_kb() -> int:
    """This process's peak RSS in kB: ``VmHWM`` (``ru_maxrss`` would carry over the parent's peak, which Linux
    keeps across ``fork`` + ``execve``)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny configurations, few frames")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--default", default="edgetam", choices=MODELS, help="the CPU default the JSON keys report")
    parser.add_argument("--frames", type=int, help="frames tracked per row (default 4; --quick 3)")
    parser.add_argument("--rss-frames", type=int, help="frames tracked for the peak RSS (default 300; --quick 20)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child, args.precision, args.rss_frames)
        return 0
    frames = args.frames or (3 if args.quick else 4)
    rss_frames = args.rss_frames or (20 if args.quick else 300)
    models = [m for m in args.models.split(",") if m]
    rows, peaks = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            name = save_model(model, Path(tmp) / model, args.quick)
            for size in SIZES:
                rows.append({"model": model, "input": size, **measure(name, args.precision, size, frames)})
            peaks[model] = peak_rss(name, args.precision, rss_frames)
    print(f"{'model':<13}{'input':<7}{'first click ms':>15}{'further ms':>12}{'track fps':>11}{'peak RSS GB':>13}")
    for row in rows:
        peak = f"{peaks[row['model']]:.2f}" if row["input"] == "360p" else ""
        print(f"{row['model']:<13}{row['input']:<7}{row['first_mask_after_click_ms']:>15.0f}"
              f"{row['refine_click_ms']:>12.0f}{row['track_fps']:>11.3f}{peak:>13}")
    print(f"{os.cpu_count()} CPU cores, torch threads {__import__('torch').get_num_threads()}, {args.precision}, "
          f"{frames} tracked frames per row, peak RSS over {rss_frames} frames at 360p")
    if args.json:
        default = args.default if args.default in models else models[0]
        mine = {r["input"]: r for r in rows if r["model"] == default}
        print(json.dumps({
            "default": default, "quick": args.quick, "precision": args.precision, "cores": os.cpu_count(),
            "first_mask_after_click_ms": mine["360p"]["first_mask_after_click_ms"],
            "refine_click_ms": mine["360p"]["refine_click_ms"], "track_fps_360p": mine["360p"]["track_fps"],
            "track_fps_720p": mine["720p"]["track_fps"], "peak_rss_gb_300f": peaks[default],
            "rss_frames": rss_frames, "rows": [{**r, "peak_rss_gb": peaks[r["model"]] if r["input"] == "360p"
                                                else None} for r in rows]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
