"""``python -m train.bundled.world OUT [--split train|heldout] [--videos N] [--frames T] [--height H] [--width W]
[--seed S] [--workers N] [--mix CATEGORY=W,...]``: write one split of the referring world (Ref-Youtube-VOS
layout) to OUT."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2

from .generate import generate_world
from .vocab import MIX_WEIGHTS, SPLITS, parse_mix


def _progress(done: int, total: int) -> None:
    end = "\n" if done == total else ""
    if sys.stdout.isatty():
        print(f"\r  videos {done}/{total}", end=end, flush=True)
    elif done == total or done % max(1, total // 10) == 0:
        print(f"  videos {done}/{total}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m train.bundled.world", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write (created)")
    parser.add_argument("--split", choices=SPLITS, default="train")
    parser.add_argument("--videos", type=int, default=400)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="render in N processes (same files)")
    parser.add_argument("--mix", default="", metavar="CATEGORY=W,...",
                        help="re-weigh expression categories, e.g. relation=0.2,kind=0.25 (the others keep their "
                             f"weights, then all are scaled to sum to 1; defaults: "
                             f"{', '.join(f'{k}={v}' for k, v in MIX_WEIGHTS.items())})")
    args = parser.parse_args(argv)
    try:
        mix = parse_mix(args.mix)
    except ValueError as error:
        parser.error(str(error))
    cv2.setNumThreads(1)  # one core per generator process: --workers for more
    start = time.perf_counter()
    out = generate_world(args.out, args.split, args.videos, args.frames, args.height, args.width, args.seed,
                         progress=_progress, workers=args.workers, mix=mix)
    seconds = time.perf_counter() - start
    counts = json.loads((out / "world.json").read_text())["counts"]
    print(f"wrote {counts['videos']} {args.split} videos ({counts['frames']} frames of {args.height}x{args.width}, "
          f"{counts['objects']} objects, {counts['expressions']} expressions) to {out} in {seconds:.1f} s "
          f"({1000 * seconds / max(counts['frames'], 1):.1f} ms/frame)")
    print("expressions per attribute: " + ", ".join(f"{k} {v}" for k, v in counts["attributes"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

