"""Pictures the studio shows: a frame with its masks, the confidence curve of an object, a filmstrip."""
from __future__ import annotations

import cv2
import numpy as np

from annotations import Project, ReviewState
from annotations import rle as rle_mod
from referformer_core.overlay import object_colour, overlay_masks

from .review import LOW_CONFIDENCE, frame_scores

CURVE_SIZE = (900, 110)
_MARGIN = 8


def render_frame(project: Project, video: str, frame: int, selected: int | None = None, show_boxes: bool = False,
                 show_labels: bool = True, alpha: float = 0.45) -> np.ndarray:
    """Frame ``frame`` of ``video`` ``[H, W, 3]`` uint8 with every object's mask in its colour.

    The ``selected`` object is drawn more opaque; boxes and ``id category`` labels on request.
    """
    image = project.read_frame(video, frame)
    objects = project.objects(video)
    ids, masks, colours, boxes, labels = [], [], [], [], []
    for obj in objects:
        mask = project.get_mask(video, obj.obj_id, frame)
        if mask is None or not mask.any():
            continue
        ids.append(obj.obj_id)
        masks.append(mask)
        colour = object_colour(obj.obj_id)
        colours.append(colour)
        x, y, w, h = rle_mod.bbox(rle_mod.encode(mask)) if show_boxes else (0, 0, 0, 0)
        boxes.append((x, y, x + w - 1, y + h - 1) if show_boxes else None)
        labels.append(f"{obj.obj_id} {obj.category}" if show_labels else "")
    if not masks:
        return image
    out = overlay_masks(image, masks, colours, alpha=alpha, boxes=boxes, labels=labels)
    if selected in ids:
        i = ids.index(selected)
        out = overlay_masks(out, [masks[i]], [colours[i]], alpha=0.25)
    return out


def confidence_curve(project: Project, video: str, obj_id: int | None, frame: int,
                     threshold: float = LOW_CONFIDENCE, size: tuple[int, int] = CURVE_SIZE) -> np.ndarray:
    """An ``[h, w, 3]`` picture of the object's per-frame score: low frames in red, reviewed frames as a
    green band at the bottom, the current frame as a vertical line. Click x -> frame: :func:`curve_frame`."""
    width, height = size
    count = project.video(video).frame_count
    image = np.full((height, width, 3), 250, np.uint8)
    plot_h = height - 2 * _MARGIN - 6
    states = project.review_states(video)
    for t, state in enumerate(states):
        if state != ReviewState.UNREVIEWED:
            x0, x1 = _x(t, count, width), _x(t + 1, count, width)
            colour = (60, 170, 90) if state == ReviewState.REVIEWED else (230, 140, 30)
            cv2.rectangle(image, (x0, height - 6), (max(x0, x1 - 1), height - 1), colour, -1)
    y_threshold = _MARGIN + int((1 - threshold) * plot_h)
    cv2.line(image, (0, y_threshold), (width - 1, y_threshold), (200, 200, 200), 1)
    if obj_id is not None:
        scores, low = frame_scores(project, video, obj_id, threshold)
        colour = object_colour(obj_id)
        points = [(_x(t + 0.5, count, width), _MARGIN + int((1 - np.nan_to_num(s)) * plot_h))
                  for t, s in enumerate(scores)]
        for t in range(count - 1):
            if not (np.isnan(scores[t]) or np.isnan(scores[t + 1])):
                cv2.line(image, points[t], points[t + 1], colour, 2, cv2.LINE_AA)
        for t in np.flatnonzero(low):
            cv2.circle(image, points[t], 3, (215, 40, 40), -1)
    x = _x(frame + 0.5, count, width)
    cv2.line(image, (x, 0), (x, height - 1), (40, 40, 40), 1)
    return image


def curve_frame(x: float, count: int, width: int = CURVE_SIZE[0]) -> int:
    """The frame under pixel column ``x`` of :func:`confidence_curve`."""
    return int(min(count - 1, max(0, x * count // width)))


def _x(t: float, count: int, width: int) -> int:
    return int(min(width - 1, t * width / max(count, 1)))


def thumbnail(image: np.ndarray, height: int = 72) -> np.ndarray:
    """``image`` scaled to ``height`` pixels high."""
    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)


def candidate_thumbnail(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], height: int = 96
                        ) -> np.ndarray:
    """``image [H, W, 3]`` with one candidate's ``mask [H, W]`` lit and everything else dimmed, outlined in
    ``colour``, scaled to ``height``: which object a candidate picks stays clear at thumbnail size, even where the
    object's own colour is close to the mask colour."""
    lit = overlay_masks(image, [mask], [colour], alpha=0.3)
    out = np.where(mask[..., None], lit, (image.astype(np.uint16) * 3 // 10).astype(np.uint8))
    small = thumbnail(out, height)
    small_mask = (thumbnail(mask.astype(np.uint8) * 255, height) > 127).astype(np.uint8)
    contours, _ = cv2.findContours(small_mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(small, contours, -1, tuple(int(c) for c in colour), 2)
    return small


def filmstrip(project: Project, video: str, count: int = 12, height: int = 72) -> list[tuple[np.ndarray, int]]:
    """Up to ``count`` thumbnails spread over the video with every mask drawn, each with the frame it shows."""
    total = project.video(video).frame_count
    n = min(count, total)
    picks = sorted({int(round(i * (total - 1) / max(n - 1, 1))) for i in range(n)})
    return [(thumbnail(render_frame(project, video, t, show_labels=False), height), t) for t in picks]
