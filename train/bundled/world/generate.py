"""Writing a split of the world to disk in the Ref-Youtube-VOS layout.

::

    OUT/JPEGImages/<video>/<frame>.jpg    RGB, JPEG quality 90
    OUT/Annotations/<video>/<frame>.png   palette PNG, pixel = object id (0 background)
    OUT/meta.json                         {"videos": {v: {"objects": {id: {"category", "frames"}}}}}
    OUT/meta_expressions.json             {"videos": {v: {"expressions": {i: {"exp", "obj_id", "attributes"}},
                                                          "frames": [...]}}}
    OUT/world.json                        split, seed, sizes, counts
"""
from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from collections.abc import Callable, Iterator, Mapping

import numpy as np
from PIL import Image

from .language import primary_category
from .render import render_video
from .sampling import video_spec
from .spec import VideoSpec
from .vocab import ATTRIBUTES, HELD_OUT_PAIRS, MIX_WEIGHTS, PALETTE

JPEG_QUALITY = 90


def write_video(out: Path, spec: VideoSpec, frames: np.ndarray, labels: np.ndarray) -> tuple[dict, dict]:
    """Write the JPEGs and label PNGs of one rendered video; returns its meta.json and
    meta_expressions.json entries. Objects never visible are left out of meta.json."""
    images, annotations = out / "JPEGImages" / spec.name, out / "Annotations" / spec.name
    images.mkdir(parents=True, exist_ok=True)
    annotations.mkdir(parents=True, exist_ok=True)
    names = spec.frame_names
    for name, frame, label in zip(names, frames, labels):
        Image.fromarray(frame).save(images / f"{name}.jpg", quality=JPEG_QUALITY)
        png = Image.fromarray(label)
        png.putpalette(PALETTE)
        png.save(annotations / f"{name}.png")
    objects = {}
    for obj in spec.objects:
        seen = [n for n, label in zip(names, labels) if (label == obj.obj_id).any()]
        if seen:
            objects[str(obj.obj_id)] = {"category": obj.kind, "frames": seen}
    expressions = {str(i): e.as_dict() for i, e in enumerate(spec.expressions)}
    return {"objects": objects}, {"expressions": expressions, "frames": names}


def _write_one(job: tuple) -> tuple[VideoSpec, dict, dict]:
    """Render and write video ``index`` of ``(out, split, seed, index, num_frames, height, width, mix)``."""
    out, split, seed, index, num_frames, height, width, mix = job
    spec = video_spec(split, seed, index, num_frames, height, width, mix)
    frames, labels, _ = render_video(spec)
    return (spec, *write_video(out, spec, frames, labels))


def _one_thread() -> None:
    """Pool initializer: one OpenCV thread per worker process."""
    import cv2
    cv2.setNumThreads(1)


def _written_videos(jobs: list[tuple], workers: int) -> Iterator[tuple[VideoSpec, dict, dict]]:
    """``_write_one`` over ``jobs`` in order, in ``workers`` processes when more than one."""
    if workers <= 1:
        yield from map(_write_one, jobs)
        return
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_one_thread) as pool:
        yield from pool.imap(_write_one, jobs, chunksize=4)


def generate_world(out: str | Path, split: str = "train", num_videos: int = 400, num_frames: int = 12,
                   height: int = 240, width: int = 320, seed: int = 0,
                   progress: Callable[[int, int], None] | None = None, workers: int = 1,
                   mix: Mapping[str, float] | None = None) -> Path:
    """Generate ``num_videos`` videos of ``split`` ("train" or "heldout") into ``out``; returns ``out``.

    Video ``i`` is named ``<split>_<i:04d>`` and depends only on ``(split, seed, i)``, the sizes and ``mix``
    (:func:`~train.bundled.world.sampling.video_spec`), so the same arguments give byte-identical files.
    ``progress(done, total)`` is called after each video. ``workers`` > 1 renders videos in that many
    processes; the files are the same as with one. ``mix`` weighs every expression category (default
    :data:`~train.bundled.world.vocab.MIX_WEIGHTS`; :func:`~train.bundled.world.vocab.parse_mix` makes one;
    ``world.json`` records the one used).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta: dict[str, dict] = {}
    meta_expressions: dict[str, dict] = {}
    objects = 0
    attributes = {a: 0 for a in ATTRIBUTES}
    categories = {c: 0 for c in MIX_WEIGHTS}
    jobs = [(out, split, seed, i, num_frames, height, width, mix) for i in range(num_videos)]
    for i, (spec, video_meta, video_expressions) in enumerate(_written_videos(jobs, workers)):
        meta[spec.name], meta_expressions[spec.name] = video_meta, video_expressions
        objects += len(spec.objects)
        for e in spec.expressions:
            categories[primary_category(e.attributes)] += 1
            for a in e.attributes:
                attributes[a] += 1
        if progress is not None:
            progress(i + 1, num_videos)
    (out / "meta.json").write_text(json.dumps({"videos": meta}))
    (out / "meta_expressions.json").write_text(json.dumps({"videos": meta_expressions}))
    summary = {
        "generator": "train.bundled.world",
        "split": split,
        "seed": seed,
        "num_videos": num_videos,
        "num_frames": num_frames,
        "height": height,
        "width": width,
        "held_out_pairs": [list(p) for p in HELD_OUT_PAIRS],
        "mix_weights": dict(MIX_WEIGHTS if mix is None else mix),
        "counts": {
            "videos": num_videos,
            "frames": num_videos * num_frames,
            "objects": objects,
            "referred_objects": sum(len({e["obj_id"] for e in v["expressions"].values()})
                                    for v in meta_expressions.values()),
            "expressions": sum(len(v["expressions"]) for v in meta_expressions.values()),
            "attributes": attributes,
            "categories": categories,
        },
    }
    (out / "world.json").write_text(json.dumps(summary, indent=2))
    return out
