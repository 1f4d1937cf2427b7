"""The bundled model's speed and memory on this machine: frames per second at its working size and the peak RSS
of segmenting a 300-frame video, each in a fresh process.

    python benchmarks/bench_bundled.py [--json] [--frames 300] [--threads 2]

The video is one of the generated world (``train.bundled.world``, held-out split) at 240x320, the size of the samples;
the model runs at the short side stored with it. Frames per second count everything ``VideoPredictor`` does from
decoded frames to masks at the original size (resize, backbone, transformer, masks, upsampling), after one
warm-up video; the same again without the mask refinement the bundle asks for (``referformer_core/refine.py``),
the official post-processing. Prints a table; with ``--json`` a last line with ``fps``, ``seconds_per_frame``,
``fps_unrefined``, ``short_side``, ``frames``, ``peak_rss_gb``, ``checkpoint_mb``, ``threads``.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def generated_video(num_frames: int):
    """``[T, 240, 320, 3]`` uint8 frames of one held-out world video."""
    from train.bundled.world import render_video, video_spec

    frames, _labels, expressions = render_video(video_spec("heldout", 7, 0, num_frames, 240, 320))
    return frames, expressions[0]["exp"]


def child(mode: str, num_frames: int, threads: int) -> None:
    """``speed``: print seconds per frame (``speed_unrefined``: without mask refinement); ``memory``: print the
    peak RSS in GB after segmenting the video."""
    import torch

    from referformer_core.predictor import VideoPredictor

    torch.set_num_threads(threads)
    frames, expression = generated_video(num_frames)
    predictor = VideoPredictor.from_checkpoint(refine=False if mode == "speed_unrefined" else None)
    mode = "speed" if mode == "speed_unrefined" else mode
    if mode == "speed":
        predictor.predict(frames[:8], expression)
        start = time.perf_counter()
        predictor.predict(frames, expression)
        print((time.perf_counter() - start) / len(frames))
    else:
        state = predictor.init_state(iter(frames))
        del frames
        predictor.add_expression(state, 1, expression)
        for _ in predictor.propagate_in_video(state):
            pass
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2)


def run_child(mode: str, num_frames: int, threads: int) -> float:
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--frames", str(num_frames), "--threads",
                          str(threads)], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=300, help="frames of the memory run")
    parser.add_argument("--speed-frames", type=int, default=48, help="frames of the timed run")
    parser.add_argument("--child", choices=["speed", "speed_unrefined", "memory"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.frames if args.child == "memory" else args.speed_frames, args.threads)
        return
    from referformer_core.bundled import bundled_checkpoint
    from referformer_core.settings import RunSettings, read_settings

    choice = read_settings(RunSettings(), mmap=True)[0]
    seconds = run_child("speed", args.speed_frames, args.threads)
    unrefined = run_child("speed_unrefined", args.speed_frames, args.threads)
    rss = run_child("memory", args.frames, args.threads)
    size_mb = bundled_checkpoint().stat().st_size / 2**20
    rows = [("working size (short side)", f"{choice.short_side} px"),
            (f"speed ({args.speed_frames} frames of 240x320, {args.threads} threads)",
             f"{1 / seconds:.1f} fps ({1000 * seconds:.0f} ms/frame)"),
            ("the same without mask refinement", f"{1 / unrefined:.1f} fps ({1000 * unrefined:.0f} ms/frame)"),
            (f"peak RSS, {args.frames} frames", f"{rss:.2f} GB"),
            ("checkpoint", f"{size_mb:.1f} MiB")]
    width = max(len(r[0]) for r in rows)
    print("bundled model")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if args.json:
        print(json.dumps({"fps": round(1 / seconds, 2), "seconds_per_frame": round(seconds, 4),
                          "fps_unrefined": round(1 / unrefined, 2),
                          "short_side": choice.short_side, "frames": args.frames,
                          "peak_rss_gb": round(rss, 3), "checkpoint_mb": round(size_mb, 2),
                          "threads": args.threads}))


if __name__ == "__main__":
    main()
