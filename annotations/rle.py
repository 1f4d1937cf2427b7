"""Masks <-> COCO run-length encoding (pycocotools), plus area and bbox.

An RLE here is always the compressed COCO form ``{"size": [H, W], "counts": str}``.
Masks are numpy bool arrays ``[H, W]`` (one frame) or ``[T, H, W]`` (a clip).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

RLE = dict[str, Any]


def encode(mask: np.ndarray) -> RLE:
    """Encode one ``[H, W]`` mask (bool or 0/1 of any integer type) as a compressed RLE."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be [H, W], got shape {mask.shape}")
    binary = np.asfortranarray(mask, dtype=bool).view(np.uint8)[:, :, None]
    rle = mask_utils.encode(binary)[0]
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def encode_labels(labels: np.ndarray, ids: list[int]) -> dict[int, RLE]:
    """Encode ``labels == i`` for each id of ``ids`` from one ``[H, W]`` integer label map."""
    fortran = np.asfortranarray(labels)
    return {i: encode(fortran == i) for i in ids}


def decode(rle: RLE) -> np.ndarray:
    """Decode a compressed RLE to a ``[H, W]`` bool mask."""
    return mask_utils.decode(_native(rle)).astype(bool)


def area(rle: RLE) -> int:
    """Number of foreground pixels."""
    return int(mask_utils.area(_native(rle)))


def bbox(rle: RLE) -> list[float]:
    """COCO box ``[x, y, width, height]`` of the foreground; ``[0, 0, 0, 0]`` for an empty mask."""
    return [float(v) for v in mask_utils.toBbox(_native(rle))]


def from_coco_segmentation(segmentation: Any, height: int, width: int) -> RLE:
    """Normalise any COCO segmentation (compressed RLE, uncompressed RLE, polygons) to a compressed RLE.

    Raises ValueError when it is none of those or its size is not ``[height, width]``.
    """
    if isinstance(segmentation, list):
        if not all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 for p in segmentation):
            raise ValueError("polygons must be lists of at least 3 x, y pairs")
        if not all(isinstance(v, (int, float)) for p in segmentation for v in p):
            raise ValueError("polygon coordinates must be numbers")
        merged = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
        return {"size": [height, width], "counts": merged["counts"].decode("ascii")}
    if not isinstance(segmentation, dict) or set(segmentation) != {"size", "counts"}:
        raise ValueError("must be an RLE {size, counts} or a list of polygons")
    size = segmentation["size"]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size)):
        raise ValueError("size must be [height, width]")
    if size != [height, width]:
        raise ValueError(f"mask size {size} does not match the frame size [{height}, {width}]")
    counts = segmentation["counts"]
    if isinstance(counts, list):
        if not all(isinstance(c, int) and c >= 0 for c in counts) or sum(counts) != height * width:
            raise ValueError(f"uncompressed counts must be non-negative and sum to {height * width}")
        compressed = mask_utils.frPyObjects({"size": size, "counts": counts}, height, width)
        return {"size": size, "counts": compressed["counts"].decode("ascii")}
    if not isinstance(counts, str):
        raise ValueError("counts must be a string or a list of integers")
    rle = {"size": size, "counts": counts}
    if not _counts_valid(rle):
        raise ValueError("counts is not a valid compressed RLE for this size")
    return rle


def _counts_valid(rle: RLE) -> bool:
    counts = rle["counts"]
    if not counts.isascii() or any(not 48 <= ord(c) < 48 + 64 for c in counts):
        return False
    h, w = rle["size"]
    uncompressed = _uncompress(counts)
    return uncompressed is not None and sum(uncompressed) == h * w


def _uncompress(counts: str) -> list[int] | None:
    """Pure-Python version of pycocotools' rleFrString, used only to validate imported data."""
    out: list[int] = []
    p = 0
    while p < len(counts):
        x = 0
        k = 0
        more = True
        while more:
            if p >= len(counts):
                return None
            c = ord(counts[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(out) > 2:
            x += out[-2]
        if x < 0:
            return None
        out.append(x)
    return out


def _native(rle: RLE) -> dict[str, Any]:
    return {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
