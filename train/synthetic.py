"""A tiny Ref-Youtube-VOS-layout dataset of moving coloured shapes, and a tokenizer for its expressions.

``python -m train.synthetic OUT [--videos N] [--frames T]`` writes ``OUT/data`` (the dataset) and
``OUT/tokenizer`` (a byte-level BPE RoBERTa tokenizer trained on the expressions), enough to run
``python -m train --config tiny`` offline. Each video has two shapes of different colours, one on the
left and one on the right, drifting slowly; each is referred to as e.g. "the red circle on the left".
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 80, 230),
    "yellow": (235, 220, 50),
}
SHAPES = ("circle", "square", "triangle")
CATEGORY = "shape"
PALETTE = [0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9)


def _draw(label: np.ndarray, shape: str, cx: float, cy: float, radius: float, value: int) -> None:
    """Paint ``shape`` centred at (cx, cy) with ``value`` into the ``[H, W]`` uint8 ``label``."""
    centre = (int(round(cx)), int(round(cy)))
    r = int(round(radius))
    if shape == "circle":
        cv2.circle(label, centre, r, value, thickness=-1)
    elif shape == "square":
        cv2.rectangle(label, (centre[0] - r, centre[1] - r), (centre[0] + r, centre[1] + r), value, thickness=-1)
    else:
        points = np.array([[centre[0], centre[1] - r], [centre[0] - r, centre[1] + r], [centre[0] + r, centre[1] + r]])
        cv2.fillPoly(label, [points.astype(np.int32)], value)


def expression_for(colour: str, shape: str, side: str) -> str:
    return f"the {colour} {shape} on the {side}"


def generate_dataset(out: str | Path, num_videos: int = 4, num_frames: int = 6, height: int = 64, width: int = 96,
                     seed: int = 0) -> Path:
    """Write ``num_videos`` videos of ``num_frames`` ``height x width`` frames in the Ref-Youtube-VOS layout.

    Objects 1 (left) and 2 (right) of each video have one expression each. Returns ``out``.
    """
    out = Path(out)
    rng = np.random.default_rng(seed)
    meta: dict[str, dict] = {}
    expressions: dict[str, dict] = {}
    for v in range(num_videos):
        name = f"video{v:03d}"
        (out / "JPEGImages" / name).mkdir(parents=True, exist_ok=True)
        (out / "Annotations" / name).mkdir(parents=True, exist_ok=True)
        colours = rng.choice(list(COLOURS), size=2, replace=False)
        shapes = rng.choice(SHAPES, size=2)
        radius = height * rng.uniform(0.14, 0.2, size=2)
        start = np.array([[width * rng.uniform(0.2, 0.3), height * rng.uniform(0.35, 0.65)],
                          [width * rng.uniform(0.7, 0.8), height * rng.uniform(0.35, 0.65)]])
        velocity = rng.uniform(-1.0, 1.0, size=(2, 2))
        background = rng.integers(60, 120, size=3)
        frames = [f"{i * 5:05d}" for i in range(num_frames)]
        for i, frame in enumerate(frames):
            label = np.zeros((height, width), np.uint8)
            for k in range(2):
                cx, cy = start[k] + i * velocity[k]
                _draw(label, str(shapes[k]), cx, cy, radius[k], k + 1)
            image = np.empty((height, width, 3), np.uint8)
            image[:] = background
            for k in range(2):
                image[label == k + 1] = COLOURS[str(colours[k])]
            noise = rng.normal(0, 6, size=image.shape)
            image = np.clip(image.astype(np.float64) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(image).save(out / "JPEGImages" / name / f"{frame}.jpg", quality=95)
            png = Image.fromarray(label, mode="P")
            png.putpalette(PALETTE)
            png.save(out / "Annotations" / name / f"{frame}.png")
        sides = ("left", "right")
        meta[name] = {"objects": {str(k + 1): {"category": CATEGORY, "frames": frames} for k in range(2)}}
        expressions[name] = {
            "expressions": {str(k): {"exp": expression_for(str(colours[k]), str(shapes[k]), sides[k]),
                                     "obj_id": str(k + 1)} for k in range(2)},
            "frames": frames,
        }
    (out / "meta.json").write_text(json.dumps({"videos": meta}))
    (out / "meta_expressions.json").write_text(json.dumps({"videos": expressions}))
    return out


def write_tokenizer(out: str | Path, vocab_size: int = 400) -> Path:
    """A RoBERTa byte-level BPE tokenizer (ids < ``vocab_size``) trained on every possible expression."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = [expression_for(c, s, side) for c in COLOURS for s in SHAPES for side in ("left", "right")] * 5
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=vocab_size, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(out))
    RobertaTokenizerFast(vocab=str(out / "vocab.json"), merges=str(out / "merges.txt")).save_pretrained(
        str(out))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.synthetic", description=__doc__.splitlines()[0])
    parser.add_argument("out", help="folder to create: OUT/data and OUT/tokenizer")
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    data = generate_dataset(Path(args.out) / "data", args.videos, args.frames, args.height, args.width, args.seed)
    tokenizer = write_tokenizer(Path(args.out) / "tokenizer")
    print(f"dataset: {data}\ntokenizer: {tokenizer}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
