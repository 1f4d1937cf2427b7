"""The sample videos shipped with the studio: short generated clips the bundled model knows, with expressions.

``samples.json`` beside them records how each was generated (``train.bundled.world`` split, seed, index, size), so its
ground truth can be regenerated exactly (the tests do).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import StudioError

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
SAMPLES_INDEX = SAMPLES_DIR / "samples.json"


@dataclass(frozen=True)
class Sample:
    """One sample video: ``file`` (mp4), its ``expressions`` as ``(text, obj_id)``, ``categories`` (obj_id ->
    the object's kind, e.g. ``"star"``) and how it was generated."""

    name: str
    title: str
    file: Path
    expressions: tuple[tuple[str, int], ...]
    split: str
    seed: int
    index: int
    num_frames: int
    height: int
    width: int
    fps: float
    categories: dict[int, str]


def list_samples() -> list[Sample]:
    """The shipped samples in order (empty when this install has none)."""
    if not SAMPLES_INDEX.is_file():
        return []
    records = json.loads(SAMPLES_INDEX.read_text())["samples"]
    return [Sample(r["name"], r["title"], SAMPLES_DIR / r["file"],
                   tuple((e["exp"], int(e["obj_id"])) for e in r["expressions"]), r["split"], int(r["seed"]),
                   int(r["index"]), int(r["num_frames"]), int(r["height"]), int(r["width"]), float(r["fps"]),
                   {int(k): str(v) for k, v in r.get("categories", {}).items()})
            for r in records]


def get_sample(name: str) -> Sample:
    """The sample called ``name``; ``StudioError`` naming the known ones otherwise."""
    for sample in list_samples():
        if sample.name == name:
            return sample
    known = ", ".join(s.name for s in list_samples()) or "none in this install"
    raise StudioError(f"no sample called {name!r} (known: {known})")
