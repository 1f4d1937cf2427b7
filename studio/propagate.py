"""Spread a corrected mask to the neighbouring frames with dense optical flow (OpenCV DIS on grey frames).

The object's motion from one frame to the next is the similarity transform that best fits the dense flow
inside its mask (see :func:`object_motion`): rigid motion, turning and scaling are followed exactly, while
parts that move on their own (a swinging arm) are not; the drift checks below stop it when that matters.
From a frame whose mask a person drew or fixed, the mask is warped frame by frame, forward and/or backward,
and stored with origin ``propagated`` as one undoable edit. It stops at the next frame a person drew (origin
``hand``), after
``max_frames``, or where the warped mask has drifted: its area changed too much from the corrected one, it
vanished, or a confident model mask on that frame disagrees with it.

Stopping at ``hand`` only is its own decision, not :attr:`annotations.Origin.by_person`: a drawn frame is a fixed
point the flow must not cross, while earlier ``propagated`` or ``tracked`` masks are what a new propagation from a
corrected frame is meant to replace.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from annotations import Origin, Project

from .errors import StudioError

@dataclass(frozen=True)
class DriftLimits:
    """When to stop: the area leaves ``[1/max_area_ratio, max_area_ratio]`` x the source area, or a model mask
    scored at least ``model_score`` has IoU below ``min_model_iou`` with the warped mask."""

    max_area_ratio: float = 2.0
    min_model_iou: float = 0.1
    model_score: float = 0.7


@dataclass(frozen=True)
class Propagation:
    """What a propagation wrote: ``frames`` (sorted) and why each direction stopped."""

    frames: list[int]
    stops: dict[str, str]

    def describe(self) -> str:
        reasons = "; ".join(f"{d}: {why}" for d, why in self.stops.items())
        return f"propagated to {len(self.frames)} frame(s) ({reasons})"


def object_motion(mask: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The ``[2, 3]`` similarity transform (shift, rotation, scale) that moves the object of ``mask`` from grey
    frame ``source`` to grey frame ``target``.

    Dense DIS flow is computed at full resolution on a crop around the object (fast, and sharp at its edges),
    and a similarity is fitted with RANSAC to the flow of the mask's inner pixels, so the flow of the background
    bleeding over the object's edges does not drag the mask along with it.
    """
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    margin = 16 + max(xs.max() - xs.min(), ys.max() - ys.min()) // 4
    x0, y0 = max(0, xs.min() - margin), max(0, ys.min() - margin)
    x1, y1 = min(w, xs.max() + margin + 1), min(h, ys.max() + margin + 1)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    dis.setFinestScale(0)
    flow = dis.calc(np.ascontiguousarray(source[y0:y1, x0:x1]), np.ascontiguousarray(target[y0:y1, x0:x1]), None)
    inner = cv2.erode(mask[y0:y1, x0:x1].astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    py, px = np.nonzero(inner if inner.sum() >= 20 else mask[y0:y1, x0:x1])
    step = max(1, len(px) // 4000)
    py, px = py[::step], px[::step]
    points = np.stack([px, py], 1).astype(np.float32)
    moved = points + flow[py, px]
    offset = np.float32([x0, y0])
    transform = None
    if len(points) >= 2:  # a similarity needs two points; a one-pixel mask only shifts
        transform, _ = cv2.estimateAffinePartial2D(points + offset, moved + offset, method=cv2.RANSAC,
                                                   ransacReprojThreshold=1.0)
    if transform is None:
        shift = np.median(flow[py, px], axis=0)
        transform = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
    return transform


def warp_mask(mask: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """``[H, W]`` bool ``mask`` moved by the ``[2, 3]`` ``transform``."""
    moved = cv2.warpAffine(mask.astype(np.float32), transform, (mask.shape[1], mask.shape[0]), flags=cv2.INTER_LINEAR)
    return moved > 0.5


def propagate_masks(grey: Callable[[int], np.ndarray], start: int, mask: np.ndarray, frames: list[int],
                    stop: Callable[[int, np.ndarray], str | None]) -> tuple[dict[int, np.ndarray], str]:
    """Warp ``mask`` of frame ``start`` along ``frames`` (consecutive, away from ``start``).

    ``grey(t)`` gives frame ``t`` as ``[H, W]`` uint8; ``stop(t, warped)`` returns a reason to stop before
    keeping frame ``t`` (or None). Returns the kept masks and why it stopped.
    """
    out: dict[int, np.ndarray] = {}
    current = mask
    source = grey(start)
    for t in frames:
        target = grey(t)
        warped = warp_mask(current, object_motion(current, source, target))
        reason = stop(t, warped)
        if reason:
            return out, reason
        out[t] = warped
        current, source = warped, target
    return out, "reached the frame limit" if frames else "no frame to propagate to"


def propagate(project: Project, video: str, obj_id: int, frame: int, direction: str = "both",
              max_frames: int = 30, limits: DriftLimits = DriftLimits()) -> Propagation:
    """Propagate the object's mask on ``frame`` forward, backward or both, storing ``propagated`` masks."""
    if direction not in ("forward", "backward", "both"):
        raise StudioError(f"direction must be forward, backward or both, got {direction!r}")
    if max_frames < 1:
        raise StudioError("propagate to at least one frame")
    mask = project.get_mask(video, obj_id, frame)
    if mask is None or not mask.any():
        raise StudioError(f"object {obj_id} has no mask on frame {frame} to propagate; paint one first")
    count = project.video(video).frame_count
    infos = {m.frame: m for m in project.mask_infos(video, obj_id)}
    area = float(mask.sum())
    cache: dict[int, np.ndarray] = {}

    def grey(t: int) -> np.ndarray:
        if t not in cache:
            cache[t] = cv2.cvtColor(project.read_frame(video, t), cv2.COLOR_RGB2GRAY)
        return cache[t]

    def stop(t: int, warped: np.ndarray) -> str | None:
        info = infos.get(t)
        if info is not None and info.origin == Origin.HAND:
            return f"frame {t} was edited by hand"
        ratio = warped.sum() / area
        if ratio == 0:
            return f"the mask vanished at frame {t}"
        if not 1 / limits.max_area_ratio <= ratio <= limits.max_area_ratio:
            return f"the area changed {ratio:.1f}x by frame {t}"
        if info is not None and info.origin == Origin.MODEL and (info.score or 0) >= limits.model_score:
            model = project.get_mask(video, obj_id, t)
            union = np.logical_or(model, warped).sum()
            if union and np.logical_and(model, warped).sum() / union < limits.min_model_iou:
                return f"a confident model mask disagrees at frame {t}"
        return None

    written: dict[int, np.ndarray] = {}
    stops: dict[str, str] = {}
    if direction in ("forward", "both"):
        masks, stops["forward"] = propagate_masks(grey, frame, mask, list(range(frame + 1, min(count, frame + 1 +
                                                                                            max_frames))), stop)
        written.update(masks)
    if direction in ("backward", "both"):
        masks, stops["backward"] = propagate_masks(grey, frame, mask, list(range(frame - 1, max(-1, frame - 1 -
                                                                                             max_frames), -1)), stop)
        written.update(masks)
    if written:
        project.set_masks(video, obj_id, written, Origin.PROPAGATED)
    return Propagation(sorted(written), stops)
