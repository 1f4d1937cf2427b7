"""``referformer annotate`` throughput: one process, then two ``torchrun`` processes (gloo on CPU), same videos.

Writes ``--videos`` generated mp4s (``--frames`` frames of 240x320, two moving shapes, two expressions each) and a
``--config`` model with random weights (the speed does not depend on the weights), then runs the command in one
process (``--cores`` threads), under ``torchrun --nproc_per_node 2`` (``--cores / 2`` threads each), and in one
process with ``--cores / 2`` threads, every run pinned to the same ``--cores`` CPU cores. Frames per second are the run's own figure (frames over the time from
the model loaded to the project merged); wall seconds include start-up and model loading. ``--json`` adds one last
line of JSON with ``fps_1``, ``fps_2``, ``speedup`` and both runs.

    PYTHONPATH=. python benchmarks/bench_annotate.py [--videos 4] [--frames 12] [--config tiny] [--json]

On a machine with as many cores as the processes share, expect a speed-up of about 1x: the figure shows that the
sharded path (plan, shards, merge) costs little; with one GPU per process it scales with the GPUs.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HEIGHT, WIDTH = 240, 320
SHAPES = (("red", (220, 40, 40)), ("blue", (50, 80, 230)))


def write_inputs(folder: Path, videos: int, frames: int) -> tuple[Path, Path]:
    """``folder/videos/*.mp4`` and ``folder/expressions.csv`` (two objects a video)."""
    from referformer_core.overlay import write_video

    rng = np.random.default_rng(0)
    (folder / "videos").mkdir(parents=True)
    rows = ["video,obj_id,expression,category"]
    for v in range(videos):
        background = np.clip(rng.normal(110, 12, (HEIGHT, WIDTH, 3)), 0, 255).astype(np.uint8)

        def clip(v=v, background=background):
            for t in range(frames):
                frame = background.copy()
                for k, (_, colour) in enumerate(SHAPES):
                    x = 20 + (t * 5 + v * 13 + k * 150) % (WIDTH - 80)
                    frame[60 + k * 80:110 + k * 80, x:x + 50] = colour
                yield frame

        write_video(folder / "videos" / f"clip{v:03d}.mp4", clip(), fps=10)
        for k, (colour, _) in enumerate(SHAPES):
            rows.append(f"clip{v:03d},{k + 1},the {colour} square on the {('left', 'right')[k]},shape")
    (folder / "expressions.csv").write_text("\n".join(rows) + "\n")
    return folder / "videos", folder / "expressions.csv"


def write_model(folder: Path, config: str) -> tuple[Path, Path]:
    """A ``config`` model with seeded random weights and a small RoBERTa tokenizer."""
    import torch

    from referformer_core.checkpoint import save_checkpoint
    from referformer_core.config import get_config
    from referformer_core.referformer import ReferFormer
    from train.synthetic import write_tokenizer

    torch.manual_seed(0)
    save_checkpoint(ReferFormer(get_config(config)).eval(), folder / "model.pth")
    return folder / "model.pth", write_tokenizer(folder / "tokenizer")


def run(processes: int, threads: int, cores: list[int], args: list[str], out: Path) -> dict:
    """One ``annotate`` run on ``cores``, ``threads`` per process; its summary.json figures and the wall time."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
                if processes > 1 else [sys.executable])
    command = [*launcher, "-m", "referformer_core.cli", "annotate", *args, "--out", str(out), "--no-progress"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          preexec_fn=lambda: os.sched_setaffinity(0, cores))
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{processes}-process run failed:\n{done.stderr[-3000:]}")
    summary = json.loads((out / ".annotate" / "summary.json").read_text())
    return {"processes": processes, "threads_each": int(env["OMP_NUM_THREADS"]), "videos": summary["videos"],
            "frames": summary["frames"], "run_s": summary["seconds"], "fps": summary["fps"], "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--config", default="tiny", help="model config (random weights): tiny, small, resnet50, ...")
    parser.add_argument("--short-side", type=int, default=240)
    parser.add_argument("--cores", type=int, default=2, help="CPU cores every run is pinned to")
    parser.add_argument("--json", action="store_true", help="print one last JSON line with the results")
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))[:args.cores]
    with tempfile.TemporaryDirectory(prefix="bench_annotate_") as tmp:
        root = Path(tmp)
        videos, expressions = write_inputs(root, args.videos, args.frames)
        checkpoint, tokenizer = write_model(root, args.config)
        common = ["--videos", str(videos), "--expressions", str(expressions), "--checkpoint", str(checkpoint),
                  "--text-encoder", str(tokenizer), "--short-side", str(args.short_side), "--device", "cpu"]
        print(f"{args.videos} videos x {args.frames} frames of {WIDTH}x{HEIGHT} (2 objects each), model "
              f"{args.config} at short side {args.short_side}, on {len(cores)} cores", flush=True)
        half = max(1, len(cores) // 2)
        results = [run(1, len(cores), cores, common, root / "one"), run(2, half, cores, common, root / "two"),
                   run(1, half, cores, common, root / "one_half")]
    print(f"{'processes':>9} {'threads':>8} {'frames':>7} {'run s':>7} {'frames/s':>9} {'wall s':>7}")
    for r in results:
        print(f"{r['processes']:>9} {r['threads_each']:>8} {r['frames']:>7} {r['run_s']:>7.1f} {r['fps']:>9.2f} "
              f"{r['wall_s']:>7.1f}")
    speedup = results[1]["fps"] / results[0]["fps"]
    print(f"2-process speed-up over one process on all {len(cores)} cores: {speedup:.2f}x "
          f"(over one process with {results[2]['threads_each']} thread(s): "
          f"{results[1]['fps'] / results[2]['fps']:.2f}x)")
    if args.json:
        print(json.dumps({"config": args.config, "videos": args.videos, "frames_per_video": args.frames,
                          "cores": len(cores), "fps_1": results[0]["fps"], "fps_2": results[1]["fps"],
                          "speedup": speedup, "runs": results}))


if __name__ == "__main__":
    main()
