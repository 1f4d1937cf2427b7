"""Write the studio's sample videos: ``python -m train.bundled.samples [--out studio/samples]``.

Three short clips of the generated world (``train.bundled.world``'s held-out split, a seed no training run uses), as
H.264 mp4 with their expressions and the kind of each referred object (its category) in ``samples.json``. Their ground truth is regenerated from the recorded split,
seed and index (``train.bundled.world.video_spec``), never shipped.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from referformer_core.overlay import write_video
from train.bundled.world import render_video, video_spec

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "studio" / "samples"
"""Where the studio reads them (``studio.samples``)."""
SAMPLE_SPLIT = "heldout"
SAMPLE_SEED = 2026
SAMPLE_FRAMES = 24
SAMPLE_FPS = 8.0
SAMPLE_SIZE = (240, 320)


def write_samples(out: str | Path = SAMPLES_DIR, count: int = 3) -> Path:
    """Write ``count`` samples (videos 0.. of the sample seed) and ``samples.json`` into ``out``; returns ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for index in range(count):
        spec = video_spec(SAMPLE_SPLIT, SAMPLE_SEED, index, SAMPLE_FRAMES, *SAMPLE_SIZE)
        frames, _labels, expressions = render_video(spec)
        name = f"sample_{index + 1}"
        write_video(out / f"{name}.mp4", frames, fps=SAMPLE_FPS)
        records.append({"name": name, "title": f"Sample {index + 1}: “{expressions[0]['exp']}”",
                        "file": f"{name}.mp4", "expressions": expressions,
                        "categories": {str(i): spec.object(i).kind for i in spec.referred}, "split": SAMPLE_SPLIT,
                        "seed": SAMPLE_SEED, "index": index, "num_frames": SAMPLE_FRAMES, "height": SAMPLE_SIZE[0],
                        "width": SAMPLE_SIZE[1], "fps": SAMPLE_FPS})
    (out / "samples.json").write_text(json.dumps({"samples": records}, indent=1) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.bundled.samples", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(SAMPLES_DIR))
    parser.add_argument("--count", type=int, default=3)
    args = parser.parse_args(argv)
    out = write_samples(args.out, args.count)
    for path in sorted(out.glob("*.mp4")):
        print(f"{path} ({path.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
