"""``referformer annotate`` throughput: on the CPU one process, then two ``torchrun`` processes (gloo), same videos;
on CUDA frames/s per GPU.

Writes ``--videos`` generated mp4s (``--frames`` frames of 240x320, two moving shapes, two expressions each) and a
``--config`` model with random weights (the speed does not depend on the weights), then runs the command in one
process (``--cores`` threads), under ``torchrun --nproc_per_node 2`` (``--cores / 2`` threads each), and in one
process with ``--cores / 2`` threads, every run pinned to the same ``--cores`` CPU cores. Frames per second are the run's own figure (frames over the time from
the model loaded to the project merged); wall seconds include start-up and model loading. ``--json`` adds one last
line of JSON with ``fps_1``, ``fps_2``, ``speedup`` and both runs.

    PYTHONPATH=. python benchmarks/bench_annotate.py [--device cpu|cuda] [--quick] [--videos 4] [--frames 12]
                                                     [--config tiny] [--json]

On a machine with as many cores as the processes share, expect a speed-up of about 1x: the figure shows that the
sharded path (plan, shards, merge) costs little; with one GPU per process it scales with the GPUs.

``--device cuda`` runs one process on one GPU (``fps_per_gpu``) and, with several GPUs, ``torchrun`` with one process
per GPU (nccl; ``fps_all``); there the defaults are ``--config resnet50``, ``--short-side 360`` and 60 frames a
video. ``--quick`` runs one CPU process over 2 videos of 3 frames (seconds; the benchmark's own check).
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
    command = [*launcher, "-m", "referformer_cli", "annotate", *args, "--out", str(out), "--no-progress"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          preexec_fn=lambda: os.sched_setaffinity(0, cores))
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{processes}-process run failed:\n{done.stderr[-3000:]}")
    summary = json.loads((out / ".annotate" / "summary.json").read_text())
    return {"processes": processes, "threads_each": int(env["OMP_NUM_THREADS"]), "videos": summary["videos"],
            "frames": summary["frames"], "run_s": summary["seconds"], "fps": summary["fps"], "wall_s": wall}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="one CPU process, 2 videos of 3 frames")
    parser.add_argument("--videos", type=int)
    parser.add_argument("--frames", type=int)
    parser.add_argument("--config", help="model config (random weights): tiny, small, resnet50, ... "
                        "(default: tiny; resnet50 on CUDA)")
    parser.add_argument("--short-side", type=int)
    parser.add_argument("--cores", type=int, default=2, help="CPU cores every run is pinned to")
    parser.add_argument("--json", action="store_true", help="print one last JSON line with the results")
    args = parser.parse_args(argv)
    cuda = args.device == "cuda"
    defaults = {"videos": 2 if args.quick else 4, "frames": 3 if args.quick else 60 if cuda else 12,
                "config": "resnet50" if cuda else "tiny", "short_side": 360 if cuda else 96 if args.quick else 240}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def cpu_runs(args: argparse.Namespace, cores: list[int], common: list[str], root: Path) -> dict:
    """One process on all ``cores``, two under ``torchrun`` with half the threads each, one with half (not with
    ``--quick``: the one process only)."""
    one = run(1, len(cores), cores, common, root / "one")
    if args.quick:
        print(f"{'processes':>9} {'frames':>7} {'run s':>7} {'frames/s':>9} {'wall s':>7}")
        print(f"{1:>9} {one['frames']:>7} {one['run_s']:>7.1f} {one['fps']:>9.2f} {one['wall_s']:>7.1f}")
        return {"fps_1": one["fps"], "fps_2": None, "speedup": None, "runs": [one]}
    half = max(1, len(cores) // 2)
    results = [one, run(2, half, cores, common, root / "two"), run(1, half, cores, common, root / "one_half")]
    print(f"{'processes':>9} {'threads':>8} {'frames':>7} {'run s':>7} {'frames/s':>9} {'wall s':>7}")
    for r in results:
        print(f"{r['processes']:>9} {r['threads_each']:>8} {r['frames']:>7} {r['run_s']:>7.1f} {r['fps']:>9.2f} "
              f"{r['wall_s']:>7.1f}")
    speedup = results[1]["fps"] / results[0]["fps"]
    print(f"2-process speed-up over one process on all {len(cores)} cores: {speedup:.2f}x "
          f"(over one process with {results[2]['threads_each']} thread(s): "
          f"{results[1]['fps'] / results[2]['fps']:.2f}x)")
    return {"fps_1": results[0]["fps"], "fps_2": results[1]["fps"], "speedup": speedup, "runs": results}


def cuda_runs(cores: list[int], common: list[str], root: Path) -> dict:
    """One process on one GPU, then (with several GPUs) one process per GPU under ``torchrun``."""
    import torch

    gpus = torch.cuda.device_count()
    results = [run(1, len(cores), cores, common, root / "one")]
    if gpus > 1:
        results.append(run(gpus, max(1, len(cores) // gpus), cores, common, root / "all"))
    print(f"{'GPUs':>5} {'frames':>7} {'run s':>7} {'frames/s':>9} {'per GPU':>8} {'wall s':>7}")
    for r in results:
        print(f"{r['processes']:>5} {r['frames']:>7} {r['run_s']:>7.1f} {r['fps']:>9.2f} "
              f"{r['fps'] / r['processes']:>8.2f} {r['wall_s']:>7.1f}")
    return {"gpu": torch.cuda.get_device_name(0), "gpus": gpus, "fps_per_gpu": results[0]["fps"],
            "fps_all": results[-1]["fps"], "runs": results}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("error: --device cuda: no CUDA GPU is available here", file=sys.stderr)
            return 2
    cores = sorted(os.sched_getaffinity(0))[:args.cores]
    with tempfile.TemporaryDirectory(prefix="bench_annotate_") as tmp:
        root = Path(tmp)
        videos, expressions = write_inputs(root, args.videos, args.frames)
        checkpoint, tokenizer = write_model(root, args.config)
        common = ["--videos", str(videos), "--expressions", str(expressions), "--checkpoint", str(checkpoint),
                  "--text-encoder", str(tokenizer), "--short-side", str(args.short_side), "--device", args.device]
        print(f"{args.videos} videos x {args.frames} frames of {WIDTH}x{HEIGHT} (2 objects each), model "
              f"{args.config} at short side {args.short_side}, {args.device}, {len(cores)} cores", flush=True)
        figures = cuda_runs(cores, common, root) if args.device == "cuda" else cpu_runs(args, cores, common, root)
    if args.json:
        print(json.dumps({"device": args.device, "quick": args.quick, "config": args.config, "videos": args.videos,
                          "frames_per_video": args.frames, "cores": len(cores), **figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
