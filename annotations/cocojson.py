"""Pieces shared by the two COCO-style JSON formats (YouTube-VIS and COCO image)."""
from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

from . import rle as rle_mod
from .checks import field, positive_int, safe_relative_path
from .errors import FormatError
from .model import Dataset, Origin, Track


def category_table(dataset: Dataset) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """COCO ``categories`` list (ids 1.. by sorted name) and the name -> id map."""
    names = sorted({t.category for v in dataset.videos for t in v.objects})
    ids = {name: i + 1 for i, name in enumerate(names)}
    return [{"id": ids[n], "name": n, "supercategory": "object"} for n in names], ids


def read_categories(file: Path, data: Any) -> dict[int, str]:
    """Validated ``categories``: id -> name; duplicate ids are refused."""
    out: dict[int, str] = {}
    for i, cat in enumerate(field(file, data, "categories", list, "")):
        cid = positive_int(file, cat, "id", f"categories[{i}]")
        name = field(file, cat, "name", str, f"categories[{i}]")
        if cid in out:
            raise FormatError(file, f"categories[{i}].id", f"duplicate category id {cid}")
        out[cid] = name
    return out


def read_segmentation(file: Path, where: str, segmentation: Any, height: int, width: int) -> rle_mod.RLE | None:
    """Validated segmentation as a compressed RLE, or None for null / empty masks."""
    if segmentation is None:
        return None
    try:
        rle = rle_mod.from_coco_segmentation(segmentation, height, width)
    except ValueError as exc:
        raise FormatError(file, where, str(exc)) from None
    return rle if rle_mod.area(rle) > 0 else None


def mask_extras(track: Track, position: int) -> dict[str, Any]:
    """The extra keys ``origin`` and ``score`` of one stored mask (ignored by other COCO readers)."""
    return {"origin": str(track.origins.get(position, Origin.IMPORTED)), "score": track.scores.get(position)}


def read_mask_extras(file: Path, where: str, origin: Any, score: Any, track: Track, position: int) -> None:
    """Validate one mask's optional ``origin`` / ``score`` (absent or null: imported, no score) into ``track``."""
    if origin is not None:
        if origin not in {o.value for o in Origin}:
            raise FormatError(file, f"{where}.origin", f"must be one of {[o.value for o in Origin]}, got {origin!r}")
        track.origins[position] = Origin(origin)
    if score is not None:
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise FormatError(file, f"{where}.score", f"must be a number or null, got {score!r}")
        track.scores[position] = float(score)


def split_file_name(file: Path, where: str, value: Any) -> tuple[str | None, str]:
    """``"video/frame.jpg"`` -> ``("video", "frame")``; ``"frame.jpg"`` -> ``(None, "frame")``."""
    path = safe_relative_path(file, where, value)
    if len(path.parts) > 2:
        raise FormatError(file, where, f"{value!r} must be <video>/<frame>.jpg or <frame>.jpg")
    stem = PurePosixPath(path.name).stem
    if not stem:
        raise FormatError(file, where, f"{value!r} has an empty frame name")
    return (path.parts[0] if len(path.parts) == 2 else None), stem


def unique_ids(file: Path, items: list[Any], section: str) -> dict[int, Any]:
    """Map ``id`` -> item for a list of JSON objects, refusing missing, non-integer and duplicate ids."""
    out: dict[int, Any] = {}
    for i, item in enumerate(items):
        iid = positive_int(file, item, "id", f"{section}[{i}]")
        if iid in out:
            raise FormatError(file, f"{section}[{i}].id", f"duplicate id {iid}")
        out[iid] = item
    return out


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
