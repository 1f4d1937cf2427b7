"""What expressions mean: per-object facts of a video and the predicate of a :class:`Phrase`.

A phrase is a conjunction of categorical filters (colour, kind, texture), tri-state filters (motion,
a relation to an anchor phrase) and at most one superlative (size or position, among the objects
passing the filters). :func:`resolve` returns the one object a phrase picks out, or None when it picks
none, several, or an object whose membership is unclear (near a threshold): expressions are only kept
when they are unambiguous with a margin. Size, position and relations must hold on every frame, so an
expression is true of any clip of its video (a training clip, a window of the predictor), not only of
the first frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .render import Layout
from .spec import VideoSpec
from .vocab import GLYPH_KINDS

SIZE_RATIO = 1.4  # "biggest"/"smallest": extent ratio to every other candidate, on every frame ...
AREA_RATIO = 1.25  # ... and ratio of the square roots of the mask areas
POSITION_GAP = 0.12  # "leftmost"/"at the top": centre gap to every other candidate on every frame, fraction of side
MOVE_TRUE, MOVE_FALSE = 0.15, 0.04  # net displacement (fraction of the short side) that does / does not count
TURN_TRUE, TURN_FALSE = 45.0, 2.0  # degrees over the video
GROW_TRUE, GROW_FALSE = 1.35, 1.05  # scale ratio over the video

DIRECTIONS: dict[str, tuple[float, float]] = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0),
                                              "down": (0.0, 1.0)}
MOTIONS: tuple[str, ...] = ("left", "right", "up", "down", "turning", "growing", "shrinking", "still")
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below", "next to")
POSITIONS: tuple[str, ...] = ("left", "right", "top", "bottom")


@dataclass(frozen=True)
class ObjectFacts:
    """Ground truth of one object: ``centres [T, 2]`` its (x, y) centre, ``extent [T]`` its scaled radius
    and ``size [T]`` the square root of its full mask area per frame (also parts out of the frame or
    occluded), and its motion facts over the video (True/False/None = unclear)."""

    obj_id: int
    colour: str
    kind: str
    texture: str
    centres: np.ndarray
    extent: np.ndarray
    size: np.ndarray
    motion: dict[str, bool | None]


@dataclass(frozen=True)
class Phrase:
    """The meaning of a noun phrase: filters, at most one of ``size`` ("big"/"small") and ``position``
    ("left"/"right"/"top"/"bottom") as superlatives, and ``relation`` to the object ``anchor`` names."""

    colour: str | None = None
    kind: str | None = None
    texture: str | None = None
    size: str | None = None
    position: str | None = None
    motion: str | None = None
    relation: str | None = None
    anchor: Phrase | None = None

    def attributes(self) -> tuple[str, ...]:
        """Attribute groups this phrase uses (the anchor's own attributes are not counted)."""
        used = {"colour": self.colour, "kind": self.kind, "texture": self.texture, "size": self.size,
                "position": self.position, "motion": self.motion, "relation": self.relation}
        return tuple(k for k, v in used.items() if v is not None)


def _motion_facts(spec: VideoSpec, geo: Layout, k: int, centres: np.ndarray) -> dict[str, bool | None]:
    """Tri-state motion facts of object index ``k`` (``centres [T, 2]``) over the whole video."""
    obj, poses = spec.objects[k], geo.poses[k]
    short = min(spec.height, spec.width)
    facts: dict[str, bool | None] = {}
    for name, u in DIRECTIONS.items():
        progress = (centres - centres[0]) @ np.asarray(u)
        monotone = bool(np.all(np.diff(progress) >= -0.005 * short))
        if progress[-1] >= MOVE_TRUE * short and monotone:
            facts[name] = True
        elif progress.max() <= MOVE_FALSE * short:
            facts[name] = False
        else:
            facts[name] = None
    turn = abs(poses[-1].angle - poses[0].angle)
    visible_turn = not (obj.kind == "circle" and obj.texture == "solid")
    facts["turning"] = (True if turn >= TURN_TRUE and visible_turn else
                        False if turn <= TURN_FALSE or not visible_turn else None)
    ratio = poses[-1].scale / poses[0].scale
    facts["growing"] = True if ratio >= GROW_TRUE else False if ratio <= GROW_FALSE else None
    facts["shrinking"] = True if ratio <= 1 / GROW_TRUE else False if ratio >= 1 / GROW_FALSE else None
    travel = float(np.linalg.norm(centres - centres[0], axis=1).max())
    changes = [facts["turning"], facts["growing"], facts["shrinking"]]
    if travel <= 0.02 * short and not any(c is not False for c in changes):
        facts["still"] = True
    elif travel >= 0.12 * short or any(c is True for c in changes):
        facts["still"] = False
    else:
        facts["still"] = None
    return facts


def object_facts(spec: VideoSpec, geo: Layout) -> list[ObjectFacts]:
    """Facts of every object of ``spec`` (index ``obj_id - 1``)."""
    out = []
    for k, obj in enumerate(spec.objects):
        centres = np.array([[p.x, p.y] for p in geo.poses[k]], dtype=np.float64)
        extent = obj.radius * np.array([p.scale for p in geo.poses[k]]) * (0.85 if obj.kind in GLYPH_KINDS else 1.0)
        out.append(ObjectFacts(obj.obj_id, obj.colour, obj.kind, obj.texture, centres, extent,
                               np.sqrt(geo.full_area[k].astype(np.float64)), _motion_facts(spec, geo, k, centres)))
    return out


def _relation(rel: str, a: ObjectFacts, b: ObjectFacts) -> bool | None:
    """Is ``a`` ``rel`` ``b``: True when it is on every frame, False when it is not on any frame, else None
    (unclear on some frame, or true on some frames and not on others)."""
    if a.obj_id == b.obj_id:
        return False
    dx, dy = (a.centres - b.centres).T
    reach = a.extent + b.extent
    if rel == "next to":
        gap = np.hypot(dx, dy) - reach
        true, false = gap <= 0.25 * reach, gap >= 0.9 * reach
    else:
        along, across = {"left of": (-dx, dy), "right of": (dx, dy), "above": (-dy, dx), "below": (dy, dx)}[rel]
        true, false = (along >= 0.6 * reach) & (np.abs(across) <= along), along <= 0
    return True if true.all() else False if false.all() else None


def _filter(phrase: Phrase, f: ObjectFacts, anchor: ObjectFacts | None) -> bool | None:
    """Does ``f`` pass the phrase's filters (None: unclear)."""
    if phrase.colour is not None and f.colour != phrase.colour:
        return False
    if phrase.kind is not None and f.kind != phrase.kind:
        return False
    if phrase.texture is not None and f.texture != phrase.texture:
        return False
    states = []
    if phrase.motion is not None:
        states.append(f.motion[phrase.motion])
    if anchor is not None and phrase.relation is not None:
        states.append(_relation(phrase.relation, f, anchor))
    if any(s is False for s in states):
        return False
    return None if any(s is None for s in states) else True


def _extreme(which: str, target: ObjectFacts, other: ObjectFacts, width: int, height: int) -> bool:
    """Is ``target`` clearly more ``which`` than ``other``."""
    if which in ("big", "small"):
        extent = target.extent / np.maximum(other.extent, 1e-6)
        area = target.size / np.maximum(other.size, 1e-6)
        if which == "small":
            extent, area = 1 / np.maximum(extent, 1e-6), 1 / np.maximum(area, 1e-6)
        return bool(np.all(extent >= SIZE_RATIO) and np.all(area >= AREA_RATIO))
    gap = POSITION_GAP * (width if which in ("left", "right") else height)
    axis = 0 if which in ("left", "right") else 1
    sign = -1.0 if which in ("left", "top") else 1.0
    return bool(np.all(sign * (target.centres[:, axis] - other.centres[:, axis]) >= gap))


def resolve(phrase: Phrase, facts: list[ObjectFacts], width: int, height: int) -> int | None:
    """The ``obj_id`` of the one object ``phrase`` picks out among ``facts``, else None."""
    anchor = None
    if phrase.relation is not None:
        if phrase.anchor is None:
            return None
        anchor_id = resolve(phrase.anchor, facts, width, height)
        if anchor_id is None:
            return None
        anchor = next(f for f in facts if f.obj_id == anchor_id)
    states = [(f, _filter(phrase, f, anchor)) for f in facts]
    sure = [f for f, s in states if s is True]
    unsure = [f for f, s in states if s is None]
    superlative = phrase.size or phrase.position
    if superlative is None:
        return sure[0].obj_id if len(sure) == 1 and not unsure else None
    candidates = sure + unsure
    if len(candidates) < 2:
        return None
    for target in sure:
        if all(_extreme(superlative, target, o, width, height) for o in candidates if o is not target):
            return target.obj_id
    return None
