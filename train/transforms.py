"""Clip augmentations of the official ReferFormer recipe, on numpy frames, with an explicit random generator.

Train: random horizontal flip (swapping "left"/"right" in the expression), photometric distortion (per
frame), then with probability 1/2 a multi-scale resize, else resize to one of ``crop_scales``, a random crop
that keeps the object, and the multi-scale resize. Every random draw comes from the ``np.random.Generator``
passed in, so a clip's augmentation is a function of its seed only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Clip:
    """Frames ``T x [H, W, 3]`` uint8 RGB, the object's masks ``[T, H, W]`` bool, and its expression."""

    frames: list[np.ndarray]
    masks: np.ndarray
    caption: str

    @property
    def size(self) -> tuple[int, int]:
        """(h, w)."""
        return self.frames[0].shape[0], self.frames[0].shape[1]


@dataclass(frozen=True)
class AugmentOptions:
    """Sizes of the training augmentations (the official values by default)."""

    scales: tuple[int, ...] = (288, 320, 352, 392, 416, 448, 480, 512)
    max_size: int = 640
    crop_scales: tuple[int, ...] = (400, 500, 600)
    crop_min_size: int = 384
    crop_max_size: int = 600


_LEFT_RIGHT = re.compile(r"\b(left|right)")


def swap_left_right(caption: str) -> str:
    """Exchange "left" and "right" at the start of words ("leftmost" too, but not "upright" or "bright", which
    the official plain substring swap turns into "upleft", "bleft")."""
    return _LEFT_RIGHT.sub(lambda m: "right" if m.group(0) == "left" else "left", caption)


def hflip(clip: Clip) -> Clip:
    """Mirror frames and masks horizontally and swap "left"/"right" in the expression."""
    return Clip([np.ascontiguousarray(f[:, ::-1]) for f in clip.frames], np.ascontiguousarray(clip.masks[:, :, ::-1]),
                swap_left_right(clip.caption))


def resized_size(h: int, w: int, short_side: int, max_size: int | None) -> tuple[int, int]:
    """(h, w) with the shorter side ``short_side``, shrunk so the longer side stays <= ``max_size`` (official)."""
    if max_size is not None:
        short, long = min(h, w), max(h, w)
        if long / short * short_side > max_size:
            short_side = int(round(max_size * short / long))
    if (w <= h and w == short_side) or (h <= w and h == short_side):
        return h, w
    if w < h:
        return int(short_side * h / w), short_side
    return short_side, int(short_side * w / h)


def resize(clip: Clip, short_side: int, max_size: int | None) -> Clip:
    """Resize frames (area when shrinking, bilinear when enlarging) and masks (nearest)."""
    h, w = clip.size
    nh, nw = resized_size(h, w, short_side, max_size)
    if (nh, nw) == (h, w):
        return clip
    interpolation = cv2.INTER_AREA if nh < h else cv2.INTER_LINEAR
    frames = [cv2.resize(f, (nw, nh), interpolation=interpolation) for f in clip.frames]
    masks = np.stack([cv2.resize(m.astype(np.uint8), (nw, nh), interpolation=cv2.INTER_NEAREST) for m in clip.masks])
    return Clip(frames, masks.astype(bool), clip.caption)


def crop(clip: Clip, top: int, left: int, height: int, width: int) -> Clip:
    return Clip([f[top:top + height, left:left + width].copy() for f in clip.frames],
                clip.masks[:, top:top + height, left:left + width].copy(), clip.caption)


def random_crop_keeping_object(clip: Clip, rng: np.random.Generator, min_size: int, max_size: int) -> Clip:
    """A random crop with sides in ``[min_size, max_size]`` (official ``RandomSizeCrop``) placed so that it contains
    a random pixel of the object: the object stays visible (on at least that frame). No object: uncropped."""
    h, w = clip.size
    _, ys, xs = np.nonzero(clip.masks)
    if ys.size == 0:
        return clip
    ch = int(rng.integers(min(min_size, h), min(h, max_size) + 1))
    cw = int(rng.integers(min(min_size, w), min(w, max_size) + 1))
    pick = int(rng.integers(ys.size))
    y, x = int(ys[pick]), int(xs[pick])
    top = int(rng.integers(max(0, y - ch + 1), min(h - ch, y) + 1))
    left = int(rng.integers(max(0, x - cw + 1), min(w - cw, x) + 1))
    return crop(clip, top, left, ch, cw)


def photometric_distort(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The SSD-style photometric distortion of the official recipe on one ``[H, W, 3]`` uint8 RGB frame:
    brightness, contrast (before or after), saturation and hue in HSV, and a random channel permutation,
    each applied with probability 1/2."""
    image = frame.astype(np.float32)
    if rng.integers(2):
        image += rng.uniform(-32, 32)
    contrast_first = bool(rng.integers(2))
    if contrast_first and rng.integers(2):
        image *= rng.uniform(0.5, 1.5)
    hsv = cv2.cvtColor(np.clip(image, 0, 255) / 255.0, cv2.COLOR_RGB2HSV)
    if rng.integers(2):
        hsv[:, :, 1] = np.clip(hsv[:, :, 1] * rng.uniform(0.5, 1.5), 0, 1)
    if rng.integers(2):
        hsv[:, :, 0] = (hsv[:, :, 0] + rng.uniform(-18, 18)) % 360.0
    image = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0
    if not contrast_first and rng.integers(2):
        image *= rng.uniform(0.5, 1.5)
    if rng.integers(2):
        image = image[:, :, rng.permutation(3)]
    return np.clip(image, 0, 255).astype(np.uint8)


def augment_clip(clip: Clip, rng: np.random.Generator, options: AugmentOptions) -> Clip:
    """The official training augmentation of one clip."""
    if rng.random() < 0.5:
        clip = hflip(clip)
    clip = Clip([photometric_distort(f, rng) for f in clip.frames], clip.masks, clip.caption)
    if rng.random() >= 0.5:
        clip = resize(clip, int(rng.choice(options.crop_scales)), None)
        clip = random_crop_keeping_object(clip, rng, options.crop_min_size, options.crop_max_size)
    return resize(clip, int(rng.choice(options.scales)), options.max_size)
