"""Mask refinement: a guided filter (He et al., "Guided Image Filtering", ECCV 2010) snaps the model's coarse mask
probabilities to the frame's colour edges before thresholding.

ReferFormer predicts masks at a quarter of its working size; bilinear upsampling leaves their edges blurred and
shifted. The filter fits, in every window of ``2r + 1`` pixels, the probabilities as a linear function of the
frame's colour, so the result follows the frame's edges where the colours differ and stays smooth where they do
not. ``eps`` regularises the fit (larger: smoother, closer to the input).
"""
from __future__ import annotations

import cv2
import numpy as np

RADIUS_FRACTION = 1 / 30
"""Window radius as a fraction of the frame's short side (8 pixels at 240)."""
EPS = 0.003
"""Regularisation of the fit, for colours in [0, 1]."""
SUPPORT = 1e-3
"""Probabilities at or under this are left as they are: the filter runs only on the box around the others, with a
margin of four radii (what a pixel's result can depend on), so a small object costs a small box and an empty mask
nothing. Results within two radii of the box of the others are those of the whole frame up to the influence of the
probabilities left out (each at most ``SUPPORT``)."""


def guided_radius(height: int, width: int) -> int:
    """The filter's window radius, in pixels, for a ``height`` x ``width`` frame."""
    return max(1, round(min(height, width) * RADIUS_FRACTION))


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (2 * radius + 1, 2 * radius + 1), normalize=True, borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, probs: np.ndarray, radius: int | None = None, eps: float = EPS) -> np.ndarray:
    """``probs [H, W]`` float filtered with the colour frame ``guide [H, W, 3]`` uint8: ``[H, W]`` float32.

    ``radius`` defaults to :func:`guided_radius` of the frame. Only the box around the probabilities over
    ``SUPPORT`` (plus four radii) is filtered; the rest is returned as it came.
    """
    if guide.shape[:2] != probs.shape:
        raise ValueError(f"guide {guide.shape[:2]} and probabilities {probs.shape} differ in size")
    radius = guided_radius(*probs.shape) if radius is None else radius
    p = probs.astype(np.float32)
    support = p > SUPPORT
    rows, cols = np.flatnonzero(support.any(1)), np.flatnonzero(support.any(0))
    if not len(rows):
        return p
    margin = 4 * radius + 1
    y0, y1 = max(rows[0] - margin, 0), min(rows[-1] + 1 + margin, p.shape[0])
    x0, x1 = max(cols[0] - margin, 0), min(cols[-1] + 1 + margin, p.shape[1])
    out = p.copy()
    out[y0:y1, x0:x1] = _filter(guide[y0:y1, x0:x1], p[y0:y1, x0:x1], radius, eps)
    return out


def _filter(guide: np.ndarray, p: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """The guided filter over the whole of ``guide [h, w, 3]`` uint8 and ``p [h, w]`` float32."""
    image = guide.astype(np.float32) / 255
    mean_i, mean_p = _box(image, radius), _box(p, radius)
    cov_ip = _box(image * p[..., None], radius) - mean_i * mean_p[..., None]
    v = {(i, j): _box(image[..., i] * image[..., j], radius) - mean_i[..., i] * mean_i[..., j] + (eps if i == j else 0)
         for i in range(3) for j in range(i, 3)}
    # the 3x3 colour covariance of every window, inverted in closed form (cofactors / determinant)
    c00 = v[1, 1] * v[2, 2] - v[1, 2] ** 2
    c01 = v[0, 2] * v[1, 2] - v[0, 1] * v[2, 2]
    c02 = v[0, 1] * v[1, 2] - v[0, 2] * v[1, 1]
    c11 = v[0, 0] * v[2, 2] - v[0, 2] ** 2
    c12 = v[0, 2] * v[0, 1] - v[0, 0] * v[1, 2]
    c22 = v[0, 0] * v[1, 1] - v[0, 1] ** 2
    det = v[0, 0] * c00 + v[0, 1] * c01 + v[0, 2] * c02
    x, y, z = (cov_ip[..., k] for k in range(3))
    a = np.stack([c00 * x + c01 * y + c02 * z, c01 * x + c11 * y + c12 * z, c02 * x + c12 * y + c22 * z], -1)
    a /= det[..., None]                                                      # [H, W, 3]
    b = mean_p - (a * mean_i).sum(-1)
    return (_box(a, radius) * image).sum(-1) + _box(b, radius)
