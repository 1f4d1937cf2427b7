"""What the project store hands out (video, object, mask, history records) and the checks on edit arguments."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from . import rle as rle_mod
from referformer_core.text import validate_expression

from .checks import safe_name
from .errors import EditError, FormatError
from .model import Origin, ReviewState


@dataclass(frozen=True)
class VideoInfo:
    """A video of the project; ``sampling`` says how frames were taken from the source (free-form)."""

    name: str
    source_path: str
    fps: float | None
    width: int
    height: int
    frame_count: int
    sampling: dict[str, Any]


@dataclass(frozen=True)
class ObjectInfo:
    """An object of a video with its referring expressions (possibly several)."""

    video: str
    obj_id: int
    category: str
    expressions: tuple[str, ...]


@dataclass(frozen=True)
class MaskInfo:
    """Metadata of one stored mask; ``bbox`` is COCO ``[x, y, w, h]``."""

    video: str
    obj_id: int
    frame: int
    origin: Origin
    score: float | None
    area: int
    bbox: tuple[float, float, float, float]


@dataclass(frozen=True)
class HistoryEntry:
    """One recorded edit; ``undone`` edits are the redo stack."""

    id: int
    description: str
    undone: bool


def mask_row(key: int, frame: int, rle: rle_mod.RLE, origin: Origin, score: float | None) -> dict[str, Any]:
    """The ``masks`` table row of one mask of object row ``key``."""
    return {"object_id": key, "frame_index": int(frame), "counts": rle["counts"], "area": rle_mod.area(rle),
            "bbox": json.dumps(rle_mod.bbox(rle)), "origin": str(origin), "score": score}


def to_origin(value: Origin | str) -> Origin:
    try:
        return Origin(value)
    except ValueError:
        raise EditError(f"mask origin must be one of {[o.value for o in Origin]}, got {value!r}") from None


def to_review_state(value: ReviewState | str) -> ReviewState:
    try:
        return ReviewState(value)
    except ValueError:
        raise EditError(f"review state must be one of {[s.value for s in ReviewState]}, got {value!r}") from None


def clean_expressions(expressions: Iterable[str]) -> list[str]:
    """Each expression checked and cleaned by the one rule (:func:`referformer_core.text.validate_expression`),
    whose ``ExpressionError`` it raises."""
    return [validate_expression(e) for e in expressions]


def safe_frame_name(video: str, name: str) -> str:
    """Check a video or frame name is a safe file name; raises EditError otherwise."""
    try:
        return safe_name(Path(video), "name", name)
    except FormatError as exc:
        raise EditError(f"video {video!r}: {exc.problem}") from None
