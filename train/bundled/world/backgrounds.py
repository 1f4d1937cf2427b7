"""Backgrounds: photographs bundled with scikit-image (no download) or gradients, seen through a moving
camera window (pan and zoom) that is resampled to the frame size."""
from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

from .spec import Background

PHOTOS: tuple[str, ...] = (
    "astronaut", "brick", "camera", "cat", "cell", "chelsea", "checkerboard", "clock", "coffee", "coins",
    "grass", "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "moon", "page", "rocket",
    "stereo_motorcycle", "text",
)
"""Names of ``skimage.data`` images that ship with scikit-image (each loads offline)."""


@lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    """``[h, w, 3]`` uint8 RGB of the ``skimage.data`` image ``name`` (grey and binary ones made RGB)."""
    from skimage import data

    image = getattr(data, name)()
    if isinstance(image, tuple):
        image = image[0]
    image = np.asarray(image)
    if image.dtype == bool:
        image = cv2.GaussianBlur(image.astype(np.uint8) * 200 + 30, (0, 0), 1.5)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    image = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
    image.setflags(write=False)
    return image


def gradient(colours: tuple[tuple[int, int, int], tuple[int, int, int]], angle_deg: float, height: int,
             width: int) -> np.ndarray:
    """``[height, width, 3]`` uint8 linear gradient from ``colours[0]`` to ``colours[1]`` along ``angle_deg``."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    a = math.radians(angle_deg)
    t = xs / max(width - 1, 1) * math.cos(a) + ys / max(height - 1, 1) * math.sin(a)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    c0, c1 = (np.asarray(c, np.float32) for c in colours)
    return (c0 + t[..., None] * (c1 - c0)).astype(np.uint8)


def source_image(bg: Background, height: int, width: int) -> np.ndarray:
    """``[h, w, 3]`` uint8 image the camera looks at: the photograph, or a gradient twice the frame size."""
    if bg.source == "gradient":
        return gradient(bg.colours, bg.gradient_angle, 2 * height, 2 * width)
    return photo(bg.source)


def camera_matrix(bg: Background, tau: float, source_shape: tuple[int, ...], height: int,
                  width: int) -> np.ndarray:
    """``[2, 3]`` affine map from frame pixels to source pixels of the camera window at time ``tau``."""
    hs, ws = source_shape[:2]
    fx, fy, zoom = (a + tau * (b - a) for a, b in zip(bg.window_start, bg.window_end))
    win_w = zoom * min(ws, hs * width / height)
    win_h = win_w * height / width
    cx = win_w / 2 + fx * (ws - win_w)
    cy = win_h / 2 + fy * (hs - win_h)
    k = win_w / width
    sx = -k if bg.flip else k
    return np.array([[sx, 0.0, cx - sx * (width - 1) / 2], [0.0, k, cy - k * (height - 1) / 2]])


def background_frames(bg: Background, num_frames: int, height: int, width: int) -> list[np.ndarray]:
    """``T`` frames ``[height, width, 3]`` float32 of the background, tinted, as the camera moves."""
    source = source_image(bg, height, width)
    tint = np.asarray(bg.tint, np.float32)
    out = []
    for tau in (np.linspace(0.0, 1.0, num_frames) if num_frames > 1 else [0.0]):
        m = camera_matrix(bg, float(tau), source.shape, height, width)
        frame = cv2.warpAffine(source, m, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT)
        out.append(frame.astype(np.float32) * tint)
    return out
