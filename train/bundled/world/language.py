"""The expression grammar: candidate meanings (:class:`Phrase`) for a target object per category, and
their realisation as text with paraphrases (synonyms, articles, word order).

:func:`expressions_for` picks categories by :data:`~train.bundled.world.vocab.MIX_WEIGHTS`, keeps only phrases
that :func:`~train.bundled.world.semantics.resolve` maps back to the target, and renders each as a string.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from .semantics import MOTIONS, POSITIONS, RELATIONS, ObjectFacts, Phrase, resolve
from .vocab import KIND_WORDS, MIX_WEIGHTS, TEXTURE_WORDS

FEASIBILITY: dict[str, float] = {"colour": 0.95, "kind": 0.78, "size": 0.29, "position": 0.56, "motion": 0.64,
                                 "relation": 0.32}
"""Measured share of referable objects with a valid phrase of each category (see ``valid_phrases``; 895
objects of 300 scenes, 6 or 12 frames alike); dividing :data:`MIX_WEIGHTS` by it corrects the mix for
categories that are often impossible."""
GENERIC_NOUNS: tuple[str, ...] = ("object", "shape", "thing", "item", "one")
SIZE_WORDS: dict[str, tuple[str, ...]] = {"big": ("biggest", "largest", "big", "large"),
                                          "small": ("smallest", "small", "little")}
POSITION_PRE: dict[str, tuple[str, ...]] = {"left": ("leftmost",), "right": ("rightmost",),
                                            "top": ("topmost", "highest", "uppermost"),
                                            "bottom": ("lowest", "bottommost")}
POSITION_POST: dict[str, tuple[str, ...]] = {
    "left": ("on the left", "at the left", "on the left side", "at the left side", "left side"),
    "right": ("on the right", "at the right", "on the right side", "at the right side", "right side"),
    "top": ("at the top", "on top", "at the top side", "near the top"),
    "bottom": ("at the bottom", "on the bottom", "near the bottom", "at the bottom side"),
}
MOTION_PRE: dict[str, tuple[str, ...]] = {"turning": ("rotating", "turning", "spinning"),
                                          "growing": ("growing", "expanding"), "shrinking": ("shrinking",),
                                          "still": ("motionless", "static")}
MOTION_POST: dict[str, tuple[str, ...]] = {
    "left": ("moving left", "moving to the left", "that moves left", "going left", "heading left"),
    "right": ("moving right", "moving to the right", "that moves right", "going right", "heading right"),
    "up": ("moving up", "going up", "that moves up", "moving upwards", "rising"),
    "down": ("moving down", "going down", "that moves down", "moving downwards", "sinking"),
    "turning": ("that turns", "that is turning", "that rotates", "spinning around"),
    "growing": ("that is growing", "that gets bigger", "growing in size"),
    "shrinking": ("that is shrinking", "that gets smaller", "shrinking in size"),
    "still": ("that stays still", "that does not move", "standing still"),
}
RELATION_WORDS: dict[str, tuple[str, ...]] = {
    "left of": ("left of", "to the left of", "on the left of"),
    "right of": ("right of", "to the right of", "on the right of"),
    "above": ("above", "over"),
    "below": ("below", "under", "beneath"),
    "next to": ("next to", "beside", "close to"),
}


def primary_category(attributes: tuple[str, ...] | list[str]) -> str:
    """The :data:`MIX_WEIGHTS` category of an expression from its attribute groups: relation, motion,
    size, position, colour, then kind (kind and/or texture only), the first one present."""
    for name in ("relation", "motion", "size", "position", "colour"):
        if name in attributes:
            return name
    return "kind"


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def realise(phrase: Phrase, rng: np.random.Generator, anchor: bool = False) -> str:
    """A text for ``phrase``, e.g. "the small green circle", "red star", "the one that turns"."""
    pre: list[str] = []
    post: list[str] = []
    if phrase.size is not None:
        pre.append(_pick(rng, SIZE_WORDS[phrase.size]))
    if phrase.position is not None:
        if rng.random() < 0.4:
            pre.append(_pick(rng, POSITION_PRE[phrase.position]))
        else:
            post.append(_pick(rng, POSITION_POST[phrase.position]))
    if phrase.motion is not None:
        if phrase.motion in MOTION_PRE and rng.random() < 0.35:
            pre.append(_pick(rng, MOTION_PRE[phrase.motion]))
        else:
            post.append(_pick(rng, MOTION_POST[phrase.motion]))
    colour_post = phrase.colour is not None and not anchor and rng.random() < 0.15
    if phrase.colour is not None and not colour_post:
        pre.append(phrase.colour)
    if phrase.texture is not None:
        pre.append(_pick(rng, TEXTURE_WORDS[phrase.texture]))
    if phrase.kind is not None:
        head = _pick(rng, KIND_WORDS[phrase.kind])
    else:
        head = _pick(rng, GENERIC_NOUNS if (pre or post or colour_post) else GENERIC_NOUNS[:4])
    if colour_post:
        post.insert(0, f"that is {phrase.colour}")
    if phrase.relation is not None and phrase.anchor is not None:
        post.append(f"{_pick(rng, RELATION_WORDS[phrase.relation])} {realise(phrase.anchor, rng, anchor=True)}")
    if len(post) > 1 and rng.random() < 0.5:
        post.reverse()
    draw = rng.random()
    superlative = phrase.size is not None or phrase.position is not None
    if anchor or head == "one" or draw < 0.7:
        article = "the"
    elif draw < 0.8 and not superlative:
        article = "a"
    else:
        article = ""
    words = [*pre, head, *post]
    if article == "a" and (words[0][0] in "aeiou" or words[0].split()[0] in ("A", "E", "R")):
        article = "an"
    return " ".join(w for w in [article, *words] if w)


def _anchors(target: ObjectFacts, facts: list[ObjectFacts], width: int, height: int,
             anchor_ids: tuple[int, ...]) -> list[Phrase]:
    """Simple phrases naming each allowed anchor other than the target uniquely."""
    out = []
    for f in facts:
        if f.obj_id == target.obj_id or f.obj_id not in anchor_ids:
            continue
        for p in (Phrase(colour=f.colour, kind=f.kind), Phrase(kind=f.kind), Phrase(colour=f.colour)):
            if resolve(p, facts, width, height) == f.obj_id:
                out.append(p)
    return out


def candidates(category: str, t: ObjectFacts, facts: list[ObjectFacts], width: int, height: int,
               anchor_ids: tuple[int, ...]) -> list[Phrase]:
    """Phrases of ``category`` built from the target's true attributes (not yet checked for uniqueness)."""
    c, k = t.colour, t.kind
    if category == "colour":
        out = [Phrase(colour=c, kind=k)] * 3 + [Phrase(colour=c)]
        return out + ([Phrase(colour=c, kind=k, texture=t.texture)] if t.texture != "solid" else [])
    if category == "kind":
        out = [Phrase(kind=k)]
        if t.texture != "solid":
            out += [Phrase(texture=t.texture), Phrase(texture=t.texture, kind=k), Phrase(colour=c, texture=t.texture)]
        return out
    if category in ("size", "position"):
        values = ("big", "small") if category == "size" else POSITIONS
        return [Phrase(**{category: v}, colour=col, kind=kind) for v in values
                for col, kind in ((None, None), (None, k), (c, None), (c, k))]
    if category == "motion":
        moves = [m for m in MOTIONS if t.motion[m] is True]
        return [Phrase(motion=m, colour=col, kind=kind) for m in moves
                for col, kind in ((None, None), (None, k), (c, None))]
    anchors = _anchors(t, facts, width, height, anchor_ids)
    return [Phrase(relation=r, anchor=a, colour=col, kind=kind) for r in RELATIONS for a in anchors
            for col, kind in ((None, None), (None, k), (c, None))]


def _needed(category: str, phrase: Phrase) -> Phrase | None:
    """``phrase`` without the attribute its category is about (None for colour and kind phrases)."""
    if category in ("size", "position", "motion"):
        return dataclasses.replace(phrase, **{category: None})
    if category == "relation":
        return dataclasses.replace(phrase, relation=None, anchor=None)
    return None


def valid_phrases(category: str, target: ObjectFacts, facts: list[ObjectFacts], width: int, height: int,
                  anchor_ids: tuple[int, ...]) -> list[Phrase]:
    """Phrases of ``category`` that pick out ``target`` alone, and for size, position, motion and relation
    phrases only those whose category attribute is needed (the phrase without it does not)."""
    out = []
    for p in candidates(category, target, facts, width, height, anchor_ids):
        if resolve(p, facts, width, height) != target.obj_id:
            continue
        bare = _needed(category, p)
        if bare is None or resolve(bare, facts, width, height) != target.obj_id:
            out.append(p)
    return out


def expressions_for(target: ObjectFacts, facts: list[ObjectFacts], count: int, width: int, height: int,
                    rng: np.random.Generator, anchor_ids: tuple[int, ...],
                    mix: Mapping[str, float] | None = None) -> list[tuple[str, tuple[str, ...]]]:
    """Up to ``count`` distinct ``(text, attribute groups)`` that each pick out ``target`` alone.

    Each expression's category is drawn among those with a valid phrase for the target, with weight
    ``mix / FEASIBILITY`` (so that the overall mix follows ``mix``, by default :data:`MIX_WEIGHTS`); a
    category already used for this target weighs a third. Simpler phrases (fewer attributes) are preferred.
    """
    mix = MIX_WEIGHTS if mix is None else mix
    names = list(MIX_WEIGHTS)
    valid = {n: valid_phrases(n, target, facts, width, height, anchor_ids) for n in names}
    used: dict[str, int] = {}
    texts: set[str] = set()
    out: list[tuple[str, tuple[str, ...]]] = []
    for _ in range(4 * count):
        if len(out) == count:
            break
        weights = np.array([mix[n] / FEASIBILITY[n] * (1 / 3) ** used.get(n, 0) if valid[n] else 0.0
                            for n in names])
        if weights.sum() <= 0:
            break
        category = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        options = valid[category]
        simple = np.array([0.5 ** len(p.attributes()) for p in options])
        phrase = options[int(rng.choice(len(options), p=simple / simple.sum()))]
        text = realise(phrase, rng)
        if text in texts:
            continue
        texts.add(text)
        used[category] = used.get(category, 0) + 1
        out.append((text, phrase.attributes()))
    return out
