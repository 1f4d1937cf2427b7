"""Rasterising one object at one pose: a binary mask patch and its colours (texture and shading).

Shapes are polygons on the unit disc, glyphs are thick ``cv2.putText`` characters warped from a
template, blobs are smooth closed Fourier curves. A :class:`Patch` is the object's mask on the pixel
grid, cut to its own bounding box (``mask [h, w]`` at ``(x0, y0)``, possibly outside the frame).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from .spec import ObjectSpec, Pose
from .vocab import BLOB_KIND, COLOURS, GLYPH_KINDS

_SUBPIXEL = 3  # cv2.fillPoly shift: vertices with 1/8 pixel precision


@dataclass(frozen=True)
class Patch:
    """An object's mask ``[h, w]`` bool whose top-left pixel is at ``(x0, y0)`` in the frame."""

    x0: int
    y0: int
    mask: np.ndarray


def _regular(n: int, offset_deg: float) -> np.ndarray:
    """``[n, 2]`` vertices of a regular ``n``-gon on the unit circle, the first at ``offset_deg``."""
    a = np.deg2rad(offset_deg + np.arange(n) * 360.0 / n)
    return np.stack([np.cos(a), np.sin(a)], axis=1)


def _star() -> np.ndarray:
    points = _regular(10, -90.0)
    points[1::2] *= 0.45
    return points


def _heart() -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    points = np.stack([x, y + 2.5], axis=1)
    return points / np.abs(points).max()


def _cross() -> np.ndarray:
    a, b = 0.34, 0.95
    return np.array([[-a, -b], [a, -b], [a, -a], [b, -a], [b, a], [a, a], [a, b], [-a, b], [-a, a], [-b, a],
                     [-b, -a], [-a, -a]])


UNIT_OUTLINES: dict[str, np.ndarray] = {
    "circle": _regular(64, 0.0),
    "square": np.array([[-0.82, -0.82], [0.82, -0.82], [0.82, 0.82], [-0.82, 0.82]]),
    "triangle": _regular(3, -90.0),
    "star": _star(),
    "hexagon": _regular(6, 0.0),
    "heart": _heart(),
    "cross": _cross(),
}
"""``[N, 2]`` polygon of each shape kind, centred, within the unit disc (y points down)."""


def blob_outline(coefficients: tuple[tuple[float, float], ...], points: int = 48) -> np.ndarray:
    """``[points, 2]`` closed curve ``r(a) = 1 + sum_k amp_k cos((k + 2) a + phase_k)``, scaled into the unit disc."""
    a = np.linspace(0, 2 * np.pi, points, endpoint=False)
    r = np.ones_like(a)
    for k, (amp, phase) in enumerate(coefficients):
        r += amp * np.cos((k + 2) * a + phase)
    r /= r.max()
    return np.stack([r * np.cos(a), r * np.sin(a)], axis=1)


@lru_cache(maxsize=None)
def glyph_template(kind: str) -> np.ndarray:
    """``[S, S]`` uint8 (0/255) mask of the glyph of ``kind`` ("letter A", "digit 7"), centred, tightly fit."""
    char = kind.split()[-1]
    canvas = np.zeros((200, 200), np.uint8)
    font, scale, thickness = cv2.FONT_HERSHEY_DUPLEX, 4.0, 22
    (w, h), _ = cv2.getTextSize(char, font, scale, thickness)
    cv2.putText(canvas, char, ((200 - w) // 2, (200 + h) // 2), font, scale, 255, thickness, cv2.LINE_AA)
    ys, xs = np.nonzero(canvas > 127)
    crop = canvas[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
    side = max(crop.shape) + 4
    out = np.zeros((side, side), np.uint8)
    top, left = (side - crop.shape[0]) // 2, (side - crop.shape[1]) // 2
    out[top: top + crop.shape[0], left: left + crop.shape[1]] = crop
    return out


def _polygon_patch(unit: np.ndarray, radius: float, p: Pose) -> Patch:
    """Rasterise the unit polygon rotated by ``p.angle``, scaled to ``radius * p.scale``, centred at ``p``."""
    c, s = math.cos(math.radians(p.angle)), math.sin(math.radians(p.angle))
    r = max(radius * p.scale - 0.5, 1.0)  # cv2.fillPoly also fills pixels whose centre is on the outline
    pts = unit @ np.array([[c, s], [-s, c]]) * r + np.array([p.x, p.y])
    x0, y0 = int(math.floor(pts[:, 0].min())) - 1, int(math.floor(pts[:, 1].min())) - 1
    x1, y1 = int(math.ceil(pts[:, 0].max())) + 2, int(math.ceil(pts[:, 1].max())) + 2
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    fixed = np.round((pts - np.array([x0, y0])) * (1 << _SUBPIXEL)).astype(np.int32)
    cv2.fillPoly(mask, [fixed], 1, lineType=cv2.LINE_8, shift=_SUBPIXEL)
    return Patch(x0, y0, mask.astype(bool))


def _glyph_patch(kind: str, radius: float, p: Pose) -> Patch:
    """Warp the glyph template so its enclosing disc has radius ``radius * p.scale``, rotated, at ``p``."""
    template = glyph_template(kind)
    side = template.shape[0]
    r = radius * p.scale
    half = int(math.ceil(r * math.sqrt(2))) + 2
    x0, y0 = int(math.floor(p.x)) - half, int(math.floor(p.y)) - half
    size = 2 * half + 2
    k = 2 * r / side
    rot = cv2.getRotationMatrix2D(((side - 1) / 2, (side - 1) / 2), -p.angle, k)
    rot[:, 2] += np.array([p.x - x0, p.y - y0]) - (side - 1) / 2
    warped = cv2.warpAffine(template, rot, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
    return Patch(x0, y0, warped > 127)


def object_patch(obj: ObjectSpec, p: Pose) -> Patch:
    """The mask of ``obj`` at pose ``p``."""
    if obj.kind in GLYPH_KINDS:
        return _glyph_patch(obj.kind, obj.radius, p)
    unit = blob_outline(obj.outline) if obj.kind == BLOB_KIND else UNIT_OUTLINES[obj.kind]
    return _polygon_patch(unit, obj.radius, p)


def shade_colour(rgb: tuple[int, int, int], factor: float) -> np.ndarray:
    """``[3]`` float32 variant of ``rgb`` for stripes and dots: darker, or lighter for dark colours."""
    base = np.asarray(rgb, np.float32)
    if base.max() < 80:
        return base + (255 - base) * 0.35
    return base * factor


def patch_colours(obj: ObjectSpec, p: Pose, patch: Patch) -> np.ndarray:
    """``[h, w, 3]`` float32 colours of ``obj`` over its patch: base colour, texture in object coordinates
    (so it turns and scales with the object) and a linear lighting gradient."""
    h, w = patch.mask.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = xs + patch.x0 - p.x, ys + patch.y0 - p.y
    base = np.asarray(COLOURS[obj.colour], np.float32)
    colours = np.broadcast_to(base, (h, w, 3)).copy()
    scale = max(p.scale, 1e-3)
    if obj.texture != "solid":
        a = math.radians(obj.texture_angle + p.angle)
        u = (dx * math.cos(a) + dy * math.sin(a)) / (obj.texture_period * scale)
        if obj.texture == "striped":
            alt = (np.floor(u) % 2) == 1
        else:
            v = (-dx * math.sin(a) + dy * math.cos(a)) / (obj.texture_period * scale)
            alt = (u - np.round(u)) ** 2 + (v - np.round(v)) ** 2 < 0.09
        colours[alt] = shade_colour(COLOURS[obj.colour], 0.5)
    angle, strength = obj.shade
    if strength:
        g = math.radians(angle + p.angle)
        light = 1.0 + strength * (dx * math.cos(g) + dy * math.sin(g)) / max(obj.radius * scale, 1.0)
        colours *= np.clip(light, 0.6, 1.4)[..., None]
    return colours
