"""Drawing a :class:`VideoSpec` for ``(split, seed, index)``: objects, motions, background, camera,
noise, and the expressions, with the visibility and held-out constraints checked (and redrawn
otherwise). One ``numpy.random.Generator`` per video, seeded from the split name's bytes, the seed and
the index, so any single video can be regenerated exactly."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np

from .backgrounds import PHOTOS
from .language import expressions_for, valid_phrases
from .render import Layout, layout
from .semantics import object_facts
from .spec import Background, Expression, Motion, ObjectSpec, VideoSpec
from .vocab import (BLOB_KIND, COLOUR_NAMES, GLYPH_KINDS, HELD_OUT_PAIRS, KIND_GROUP_WEIGHTS, SHAPE_KINDS,
                    SPLITS, TEXTURE_WEIGHTS, TEXTURES)

MIN_VISIBLE = 0.3  # a referred object shows >= 30% of its area ...
MIN_VISIBLE_FRAMES = 0.8  # ... in >= 80% of the frames
MIN_FIRST_VISIBLE = 0.15  # and >= 15% of it in the first frame
MAX_ATTEMPTS = 30
SIZE_CONTRAST = 0.4  # fraction of scenes drawn with one object clearly bigger or smaller than the rest


def video_rng(split: str, seed: int, index: int) -> np.random.Generator:
    """The generator of video ``index`` of ``split`` for ``seed`` (split mixed in by its bytes, not hash())."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return np.random.default_rng([*split.encode("ascii"), seed, index])


def _choice(rng: np.random.Generator, options: tuple[str, ...], weights: tuple[float, ...] | None = None) -> str:
    p = None if weights is None else np.asarray(weights) / np.sum(weights)
    return options[int(rng.choice(len(options), p=p))]


def _kind(rng: np.random.Generator) -> str:
    group = _choice(rng, tuple(KIND_GROUP_WEIGHTS), tuple(KIND_GROUP_WEIGHTS.values()))
    return _choice(rng, SHAPE_KINDS) if group == "shape" else _choice(rng, GLYPH_KINDS) if group == "glyph" \
        else BLOB_KIND


def _pair(rng: np.random.Generator, split: str, previous: list[tuple[str, str]], held_out: bool) -> tuple[str, str]:
    """A (colour, kind): a held-out pair if ``held_out``; never one in ``train``; sometimes sharing the
    colour or kind of an earlier object (so that size, position and motion are needed to tell them apart)."""
    if held_out:
        return HELD_OUT_PAIRS[int(rng.integers(len(HELD_OUT_PAIRS)))]
    while True:
        colour, kind = _choice(rng, COLOUR_NAMES), _kind(rng)
        if previous and rng.random() < 0.2:
            other = previous[int(rng.integers(len(previous)))]
            colour, kind = (other[0], kind) if rng.random() < 0.5 else (colour, other[1])
        if split != "train" or (colour, kind) not in HELD_OUT_PAIRS:
            return colour, kind


def _motion(rng: np.random.Generator, kind: str, texture: str, radius: float, height: int,
            width: int) -> tuple[Motion, float]:
    """A motion and the (possibly reduced) radius at scale 1."""
    short = min(height, width)
    start = (float(rng.uniform(0.12, 0.88) * width), float(rng.uniform(0.12, 0.88) * height))
    if rng.random() < 0.25:
        shift = (0.0, 0.0)
    else:
        distance = rng.uniform(0.15, 0.55) * short
        if rng.random() < 0.5:
            direction = float(rng.integers(4)) * 90.0 + rng.uniform(-12, 12)
        else:
            direction = rng.uniform(0, 360)
        a = math.radians(direction)
        shift = (float(distance * math.cos(a)), float(distance * math.sin(a)))
    bounce = bool(rng.random() < 0.2)
    if bounce:
        shift = (shift[0] * 2.5, shift[1] * 2.5)
    turn = 0.0
    if not (kind == "circle" and texture == "solid") and rng.random() < 0.3:
        turn = float(rng.choice([-1, 1]) * rng.uniform(60, 270))
    scale_end, draw = 1.0, rng.random()
    if draw < 0.15:
        scale_end = float(rng.uniform(1.4, 1.8))
        radius = min(radius, 0.26 * height / scale_end)
    elif draw < 0.3:
        scale_end = float(1 / rng.uniform(1.4, 1.8))
        radius = max(radius, 0.09 * height / scale_end)
    return Motion(start, shift, bounce, float(rng.uniform(-25, 25)) if rng.random() < 0.5 else 0.0, turn,
                  scale_end), radius


def _object(rng: np.random.Generator, obj_id: int, pair: tuple[str, str], height: int, width: int) -> ObjectSpec:
    colour, kind = pair
    texture = _choice(rng, TEXTURES, TEXTURE_WEIGHTS)
    radius = float((rng.uniform(0.10, 0.13) if rng.random() < 0.5 else rng.uniform(0.16, 0.22)) * height)
    motion, radius = _motion(rng, kind, texture, radius, height, width)
    outline = tuple((float(rng.uniform(0.0, 0.2)), float(rng.uniform(0, 2 * np.pi))) for _ in range(3)) \
        if kind == BLOB_KIND else ()
    shade = (float(rng.uniform(0, 360)), float(rng.uniform(0.0, 0.25)))
    return ObjectSpec(obj_id, kind, colour, texture, radius, 0, motion, outline, shade,
                      float(rng.uniform(0.18, 0.3) * radius), float(rng.uniform(0, 180)))


def _contrast_sizes(rng: np.random.Generator, objects: list[ObjectSpec], height: int) -> list[ObjectSpec]:
    """Make one object clearly the biggest or the smallest: it keeps its scale and gets a radius far from
    the others' (which are pulled into the middle of the range)."""
    k = int(rng.integers(len(objects)))
    big = bool(rng.random() < 0.5)
    out = []
    for i, o in enumerate(objects):
        if i == k:
            radius = rng.uniform(0.2, 0.23) if big else rng.uniform(0.085, 0.1)
            out.append(dataclasses.replace(o, radius=float(radius * height),
                                           motion=dataclasses.replace(o.motion, scale_end=1.0)))
        else:
            radius = rng.uniform(0.1, 0.13) if big else rng.uniform(0.16, 0.2)
            out.append(dataclasses.replace(o, radius=float(radius * height),
                                           motion=dataclasses.replace(o.motion, scale_end=1.0)))
    return out


def _background(rng: np.random.Generator) -> Background:
    """A photograph (80%) or gradient backdrop, with a camera window panning and zooming over it."""
    start = (float(rng.uniform()), float(rng.uniform()), float(rng.uniform(0.45, 1.0)))
    end = tuple(float(np.clip(s + rng.uniform(-d, d), lo, 1.0)) for s, d, lo in
                zip(start, (0.35, 0.35, 0.2), (0.0, 0.0, 0.45)))
    tint = tuple(float(v) for v in rng.uniform(0.85, 1.15, size=3))
    if rng.random() < 0.2:
        grey = rng.integers(40, 215, size=3)
        c0 = tuple(int(v) for v in np.clip(grey + rng.integers(-30, 31, size=3), 0, 255))
        c1 = c0 if rng.random() < 0.3 else tuple(int(v) for v in np.clip(rng.integers(40, 215) +
                                                                             rng.integers(-30, 31, size=3), 0, 255))
        return Background("gradient", False, start, end, tint, (c0, c1), float(rng.uniform(0, 360)))
    return Background(_choice(rng, PHOTOS), bool(rng.random() < 0.5), start, end, tint)


def referable(geo: Layout, k: int) -> bool:
    """Whether object index ``k`` is visible enough to be referred to."""
    frac = geo.visible_fraction[k]
    return bool(np.mean(frac >= MIN_VISIBLE) >= MIN_VISIBLE_FRAMES and frac[0] >= MIN_FIRST_VISIBLE)


def _draw(rng: np.random.Generator, split: str, seed: int, index: int, num_frames: int, height: int,
          width: int) -> VideoSpec:
    """One unconstrained draw of the scene (no expressions yet)."""
    count = int(rng.choice([2, 3, 4, 5], p=[0.2, 0.4, 0.32, 0.08]))
    pairs: list[tuple[str, str]] = []
    for i in range(count):
        pairs.append(_pair(rng, split, pairs, held_out=split == "heldout" and i == 0))
    objects = [_object(rng, i + 1, pair, height, width) for i, pair in enumerate(pairs)]
    order = rng.permutation(count)
    objects = [dataclasses.replace(o, depth=int(order[i])) for i, o in enumerate(objects)]
    if rng.random() < SIZE_CONTRAST:
        objects = _contrast_sizes(rng, objects, height)
    noise = float(rng.uniform(2.0, 8.0))
    blur = float(rng.uniform(0.5, 1.2)) if rng.random() < 0.25 else 0.0
    return VideoSpec(f"{split}_{index:04d}", split, seed, index, num_frames, height, width, tuple(objects),
                     _background(rng), noise, blur, int(rng.integers(2 ** 31)))


def video_spec(split: str, seed: int, index: int, num_frames: int = 12, height: int = 240,
               width: int = 320, mix: Mapping[str, float] | None = None) -> VideoSpec:
    """The spec of video ``index`` of ``split`` for ``seed``: 2-4 referred objects (fewer when the scene
    has fewer referable ones), 2-3 expressions each; in ``heldout`` object 1 has a held-out (colour, kind)
    pair and is referred; an object that can be told apart by its size is referred first (size phrases
    are rare otherwise). ``mix`` weighs the expression categories (default
    :data:`~train.bundled.world.vocab.MIX_WEIGHTS`). Redraws the scene until the constraints hold (RuntimeError if it
    never does)."""
    rng = video_rng(split, seed, index)
    for _ in range(MAX_ATTEMPTS):
        spec = _draw(rng, split, seed, index, num_frames, height, width)
        geo = layout(spec)
        ok = [o.obj_id for k, o in enumerate(spec.objects) if referable(geo, k)]
        if split == "heldout" and 1 not in ok:
            continue
        facts = object_facts(spec, geo)
        wanted = min(len(ok), int(rng.integers(2, 5)))
        shuffled = [ok[int(i)] for i in rng.permutation(len(ok))]
        sized = [i for i in shuffled if valid_phrases("size", facts[i - 1], facts, width, height, tuple(ok))]
        first = [1] if split == "heldout" else []
        order = list(dict.fromkeys(first + sized[:1] + shuffled))
        expressions: list[Expression] = []
        referred: list[int] = []
        for obj_id in order:
            if len(referred) == wanted:
                break
            found = expressions_for(facts[obj_id - 1], facts, int(rng.integers(2, 4)), width, height, rng,
                                    tuple(ok), mix)
            if found:
                referred.append(obj_id)
                expressions += [Expression(text, obj_id, attrs) for text, attrs in found]
        if len(referred) < 2 or (split == "heldout" and 1 not in referred):
            continue
        return VideoSpec(spec.name, split, seed, index, num_frames, height, width, spec.objects, spec.background,
                         spec.noise, spec.blur, spec.render_seed, tuple(sorted(referred)), tuple(expressions))
    raise RuntimeError(f"no valid scene for {split} video {index} (seed {seed}) in {MAX_ATTEMPTS} draws")
