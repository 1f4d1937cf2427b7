"""The fixed vocabulary of the referring world: colours, object kinds, textures, attribute groups.

Everything here is a module constant so that the generator, the expression grammar and the tests share
one definition: :data:`COLOURS` (name -> RGB), :data:`KINDS` (shapes, glyphs and the blob), the
synonyms used when a kind is named, :data:`HELD_OUT_PAIRS` (colour, kind pairs never seen in the
``train`` split) and :data:`MIX_WEIGHTS` (how often each kind of expression is attempted).
"""
from __future__ import annotations

SPLITS: tuple[str, ...] = ("train", "heldout")

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (40, 165, 60),
    "blue": (35, 75, 215),
    "yellow": (240, 215, 35),
    "orange": (245, 130, 20),
    "purple": (135, 45, 175),
    "white": (245, 245, 240),
    "black": (22, 22, 26),
}
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)

SHAPE_KINDS: tuple[str, ...] = ("circle", "square", "triangle", "star", "hexagon", "heart", "cross")
GLYPH_KINDS: tuple[str, ...] = ("letter A", "letter E", "letter R", "digit 2", "digit 4", "digit 7")
BLOB_KIND = "blob"
KINDS: tuple[str, ...] = SHAPE_KINDS + GLYPH_KINDS + (BLOB_KIND,)
KIND_GROUP_WEIGHTS: dict[str, float] = {"shape": 0.55, "glyph": 0.25, "blob": 0.20}

KIND_WORDS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "disc"),
    "square": ("square",),
    "triangle": ("triangle",),
    "star": ("star",),
    "hexagon": ("hexagon",),
    "heart": ("heart",),
    "cross": ("cross", "plus sign"),
    "letter A": ("letter A", "A"),
    "letter E": ("letter E", "E"),
    "letter R": ("letter R", "R"),
    "digit 2": ("digit 2", "number 2", "2"),
    "digit 4": ("digit 4", "number 4", "4"),
    "digit 7": ("digit 7", "number 7", "7"),
    "blob": ("blob", "blotch"),
}

TEXTURES: tuple[str, ...] = ("solid", "striped", "dotted")
TEXTURE_WEIGHTS: tuple[float, ...] = (0.7, 0.15, 0.15)
TEXTURE_WORDS: dict[str, tuple[str, ...]] = {"striped": ("striped", "stripy"), "dotted": ("dotted", "spotted")}

HELD_OUT_PAIRS: tuple[tuple[str, str], ...] = (
    ("red", "star"),
    ("blue", "circle"),
    ("yellow", "letter A"),
    ("green", "triangle"),
    ("purple", "heart"),
    ("orange", "digit 7"),
)

ATTRIBUTES: tuple[str, ...] = ("colour", "kind", "texture", "size", "position", "motion", "relation")

MIX_WEIGHTS: dict[str, float] = {
    "colour": 0.40,
    "kind": 0.15,
    "size": 0.10,
    "position": 0.15,
    "motion": 0.10,
    "relation": 0.10,
}
"""Probability of each expression category being tried first for a referred object ("kind" covers
kind-only and texture expressions); a category impossible for the object falls back to the others."""


def parse_mix(text: str) -> dict[str, float]:
    """:data:`MIX_WEIGHTS` with the categories named in ``text`` ("relation=0.2,kind=0.25") re-weighted, all
    scaled to sum to 1. ValueError, naming the problem, for an unknown category, a weight that is not a
    non-negative number, or weights that leave nothing to draw."""
    mix = dict(MIX_WEIGHTS)
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in mix:
            raise ValueError(f"mix: expected CATEGORY=WEIGHT with CATEGORY one of {', '.join(mix)}, got {item!r}")
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(f"mix: the weight of {name} is not a number: {value.strip()!r}") from None
        if not weight >= 0 or weight == float("inf"):
            raise ValueError(f"mix: the weight of {name} must be a non-negative number, got {value.strip()}")
        mix[name] = weight
    total = sum(mix.values())
    if total <= 0:
        raise ValueError("mix: every category has weight 0")
    return {name: weight / total for name, weight in mix.items()}

PALETTE: list[int] = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0, 0, 0, 128, 128, 0, 128, 0, 128, 128,
                      128, 128, 128, 64, 0, 0] + [0] * (256 * 3 - 27)
"""Palette of the label PNGs: index 0 black (background), ids 1..8 the DAVIS colours."""
