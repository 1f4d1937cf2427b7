"""The tracker without weights: OpenCV GrabCut on one frame, the studio's flow propagation across frames.

``segment`` seeds ``cv2.grabCut`` with the box (outside it: sure background), the clicks (sure foreground /
background disks) and the object's current mask (probable foreground) and works on a crop around them, so a
click costs the same on a 720p frame as on a small one. ``track`` moves each object's mask frame by frame: a
coarse shift first (:func:`coarse_shift`: the object's patch found again near where its last motion points, so
an object moving by half its size per frame is not lost), then the flow's similarity from there
(:func:`studio.propagate.object_motion`), then GrabCut snaps it to the object (:func:`refit`: a uniform object
gives the flow nothing to hold on to); it restarts from every conditioning frame it reaches, so a person's
corrections stick.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping

import cv2
import numpy as np

from .errors import StudioError
from .propagate import object_motion, warp_mask
from .tracker import DIRECTIONS, Frames, Prompt

ITERATIONS = 5
MAX_SIDE = 360
"""Crops longer than this are cut at this size for GrabCut and the mask scaled back."""


def _disk(shape: tuple[int, int], x: float, y: float, radius: int) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    cv2.circle(out, (int(round(x)), int(round(y))), radius, 1, -1)
    return out > 0


def grabcut_mask(image: np.ndarray, prompt: Prompt, current: np.ndarray | None = None) -> np.ndarray:
    """``[H, W]`` bool: the object ``prompt`` points at in ``image`` ``[H, W, 3]`` uint8 RGB.

    Components of the result touching a negative click (and holding no positive one) are removed: a click on
    a second, similar object leaves that object out rather than only the pixels under the click.
    """
    h, w = image.shape[:2]
    radius = max(2, min(h, w) // 60)
    positives = [p for p, v in zip(prompt.points, prompt.labels) if v]
    negatives = [p for p, v in zip(prompt.points, prompt.labels) if not v]
    seed = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    if prompt.box is not None:
        x0, y0, x1, y1 = (int(round(v)) for v in prompt.box)
        seed[:] = cv2.GC_BGD
        seed[max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)] = cv2.GC_PR_FGD
    elif current is not None and current.any():
        seed[current] = cv2.GC_PR_FGD
    else:
        for x, y in positives:
            seed[_disk((h, w), x, y, max(h, w) // 8)] = cv2.GC_PR_FGD
    for x, y in positives:
        seed[_disk((h, w), x, y, radius)] = cv2.GC_FGD
    for x, y in negatives:
        seed[_disk((h, w), x, y, radius)] = cv2.GC_BGD
    if not ((seed == cv2.GC_FGD) | (seed == cv2.GC_PR_FGD)).any():
        raise StudioError("nothing to segment: click on the object or drag a box around it")
    mask = _cut(image, seed)
    return _components(mask, positives, negatives, radius, prompt.box is None, current)



def _cut(image: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """``[H, W]`` bool: GrabCut of ``image`` from the ``cv2.GC_*`` labels ``seed``, on a crop around what is not
    sure background (scaled down to ``MAX_SIDE`` at most)."""
    h, w = image.shape[:2]
    ys, xs = np.nonzero(seed != cv2.GC_BGD)
    margin = 8 + max(np.ptp(xs), np.ptp(ys)) // 4
    cx0, cy0 = max(0, xs.min() - margin), max(0, ys.min() - margin)
    cx1, cy1 = min(w, xs.max() + margin + 1), min(h, ys.max() + margin + 1)
    crop, crop_seed = image[cy0:cy1, cx0:cx1], seed[cy0:cy1, cx0:cx1]
    scale = min(1.0, MAX_SIDE / max(crop.shape[:2]))
    if scale < 1:
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        crop_seed = cv2.resize(crop_seed, size, interpolation=cv2.INTER_NEAREST)
    if (crop_seed == cv2.GC_BGD).all() or not ((crop_seed == cv2.GC_BGD) | (crop_seed == cv2.GC_PR_BGD)).any():
        found = (crop_seed == cv2.GC_FGD) | (crop_seed == cv2.GC_PR_FGD)
    else:
        background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.grabCut(np.ascontiguousarray(crop[:, :, ::-1]), crop_seed, None, background, foreground, ITERATIONS,
                    cv2.GC_INIT_WITH_MASK)
        found = (crop_seed == cv2.GC_FGD) | (crop_seed == cv2.GC_PR_FGD)
    if scale < 1:
        found = cv2.resize(found.astype(np.uint8), (cx1 - cx0, cy1 - cy0), interpolation=cv2.INTER_NEAREST) > 0
    mask = np.zeros((h, w), bool)
    mask[cy0:cy1, cx0:cx1] = found
    return mask


def refit(image: np.ndarray, moved: np.ndarray) -> np.ndarray:
    """``moved`` (a mask carried over from the previous frame) snapped to the object in ``image``: GrabCut in
    a box a quarter larger than it, ``moved`` as probable foreground; ``moved`` itself when GrabCut loses it."""
    h, w = moved.shape
    ys, xs = np.nonzero(moved)
    if not len(xs):
        return moved
    grow = 4 + max(np.ptp(xs), np.ptp(ys)) // 4
    seed = np.full((h, w), cv2.GC_BGD, np.uint8)
    seed[max(0, ys.min() - grow):ys.max() + grow + 1, max(0, xs.min() - grow):xs.max() + grow + 1] = cv2.GC_PR_BGD
    seed[moved] = cv2.GC_PR_FGD
    found = _cut(image, seed)
    _, labels = cv2.connectedComponents(found.astype(np.uint8), connectivity=8)
    held = sorted(set(np.unique(labels[found & moved]).tolist()) - {0})
    found = np.isin(labels, held)
    return found if found.sum() >= 0.25 * moved.sum() else moved

def coarse_shift(mask: np.ndarray, previous: np.ndarray, current: np.ndarray,
                 velocity: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The ``[2, 3]`` translation that moves the object of ``mask`` (on grey frame ``previous`` ``[H, W]``) to
    where its patch best matches grey frame ``current``, searched within half its size around the position its
    last ``velocity`` (pixels per frame, x and y) predicts."""
    h, w = mask.shape
    x, y, bw, bh = cv2.boundingRect(mask.astype(np.uint8))
    reach = max(bw, bh) // 2 + 8
    px, py = int(round(x + velocity[0])), int(round(y + velocity[1]))
    sx0, sy0 = max(0, px - reach), max(0, py - reach)
    sx1, sy1 = min(w, px + bw + reach), min(h, py + bh + reach)
    if sx1 - sx0 < bw or sy1 - sy0 < bh or bw < 2 or bh < 2:
        return np.float32([[1, 0, 0], [0, 1, 0]])
    score = cv2.matchTemplate(current[sy0:sy1, sx0:sx1], previous[y:y + bh, x:x + bw], cv2.TM_SQDIFF_NORMED)
    _, _, (mx, my), _ = cv2.minMaxLoc(score)
    return np.float32([[1, 0, sx0 + mx - x], [0, 1, sy0 + my - y]])


def follow(mask: np.ndarray, previous: np.ndarray, current: np.ndarray, image: np.ndarray,
           velocity: tuple[float, float]) -> np.ndarray:
    """``mask`` of grey frame ``previous`` carried to grey frame ``current`` (RGB ``image``): coarse shift, flow,
    GrabCut (see the module's docstring)."""
    shift = coarse_shift(mask, previous, current, velocity)
    shifted = warp_mask(mask, shift)
    if not shifted.any():
        return shifted
    source = cv2.warpAffine(previous, shift, (previous.shape[1], previous.shape[0]), borderMode=cv2.BORDER_REPLICATE)
    return refit(image, warp_mask(shifted, object_motion(shifted, source, current)))


def _centre(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()]) if len(xs) else np.zeros(2)


def _components(mask: np.ndarray, positives: list, negatives: list, radius: int, clicks_only: bool,
                current: np.ndarray | None) -> np.ndarray:
    """``mask`` less its components touching a negative click; without a box, only the components holding a
    positive click or overlapping the ``current`` mask (GrabCut also finds look-alikes elsewhere in the frame)."""
    _, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    held = {int(labels[min(int(round(y)), mask.shape[0] - 1), min(int(round(x)), mask.shape[1] - 1)])
            for x, y in positives} - {0}
    if clicks_only:
        keep = set(held)
        if current is not None and current.any():
            keep |= set(np.unique(labels[current & mask]).tolist()) - {0}
        mask = np.isin(labels, sorted(keep)) if keep else mask
    for x, y in negatives:
        near = _disk(mask.shape, x, y, radius + 3)
        for label in np.unique(labels[near]):
            if label and int(label) not in held:
                mask[labels == label] = False
    return mask


class GrabCutEngine:
    """The offline engine (see the module's docstring)."""

    name = "grabcut"

    def segment(self, frames: Frames, frame: int, prompt: Prompt, current: np.ndarray | None = None) -> np.ndarray:
        return grabcut_mask(frames.read(frame), prompt, current)

    def track(self, frames: Frames, conditioning: Mapping[int, Mapping[int, np.ndarray]], start: int,
              direction: str, max_frames: int) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        """Each conditioned object's mask warped away from ``start`` (a conditioning frame restarts it); an
        object whose mask vanished is no longer given."""
        if direction not in DIRECTIONS:
            raise StudioError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

        def image(t: int) -> np.ndarray:
            if t not in cache:
                if len(cache) > 2:
                    cache.clear()
                rgb = frames.read(t)
                cache[t] = rgb, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            return cache[t][0]

        def grey(t: int) -> np.ndarray:
            image(t)
            return cache[t][1]

        given = dict(conditioning.get(start, {}))
        yield start, {o: np.asarray(m, bool) for o, m in given.items()}
        steps = {"forward": [1], "backward": [-1], "both": [1, -1]}[direction]
        for step in steps:
            current = {o: np.asarray(m, bool) for o, m in given.items()}
            velocity = {o: (0.0, 0.0) for o in current}
            stop = min(frames.count - 1, start + max_frames) if step > 0 else max(0, start - max_frames)
            previous = start
            for t in range(start + step, stop + step, step):
                out: dict[int, np.ndarray] = {}
                for obj_id, mask in current.items():
                    if mask.any():
                        out[obj_id] = follow(mask, grey(previous), grey(t), image(t), velocity.get(obj_id, (0.0, 0.0)))
                        velocity[obj_id] = tuple(_centre(out[obj_id]) - _centre(mask)) if out[obj_id].any() else (0, 0)
                out.update({o: np.asarray(m, bool) for o, m in conditioning.get(t, {}).items()})
                current, previous = out, t
                if not out:
                    break
                yield t, out
