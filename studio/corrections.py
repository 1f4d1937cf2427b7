"""Correct a mask: pick another of the model's candidates (by thumbnail or by a click), or paint it.

Candidates are the model's other queries for the object; their masks are made on demand for the frames
shown or chosen, never every query x every frame at full size. A picked candidate and a painted mask are a
person's decision, so they are stored with origin ``hand``, which :attr:`annotations.Origin.by_person` counts as a
person's (a later model run keeps it, review never flags it as low score).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from annotations import Origin, Project
from referformer_core.overlay import object_colour
from referformer_core.predictor import InferenceState, VideoPredictor
from train.metrics import region_similarity

from .errors import StudioError
from .render import candidate_thumbnail

SCOPES = ("this frame", "from this frame to…", "whole video")
BRUSH_ALPHA = 0.55


IN_USE_IOU = 0.9
"""A candidate whose mask on a frame overlaps the object's stored mask at least this much (IoU) is the one in use."""


@dataclass(frozen=True)
class Candidate:
    """One query of the model for an object, seen on one frame: ``video_score`` (``VideoPredictor.query_scores``:
    its mean class score over the video, or the ranker's probability), ``frame_score`` (its score on this frame),
    ``in_use`` (its mask is the object's stored one on this frame) and a thumbnail of its mask there."""

    query: int
    video_score: float
    frame_score: float
    in_use: bool
    thumbnail: np.ndarray

    @property
    def caption(self) -> str:
        """``query Q · video score · this frame's score`` and a check mark on the one in use."""
        return f"query {self.query} · {self.video_score:.2f} · {self.frame_score:.2f}{' ✓' if self.in_use else ''}"


def candidates(project: Project, video: str, obj_id: int, frame: int, predictor: VideoPredictor,
               state: InferenceState, height: int = 96) -> list[Candidate]:
    """Every query of ``obj_id``, best video score first, each drawn on ``frame``."""
    scores = predictor.query_scores(state, obj_id)
    image = project.read_frame(video, frame)
    stored = project.get_mask(video, obj_id, frame)
    colour = object_colour(obj_id)
    order = [int(q) for q in np.argsort(-scores, kind="stable")]
    found = {q: predictor.query_masks(state, obj_id, q, range(frame, frame + 1)) for q in order}
    overlaps = {q: _iou(masks[0], stored) for q, (masks, _) in found.items()}
    stored_score = next((m.score for m in project.mask_infos(video, obj_id) if m.frame == frame), None)
    # several masks can match the stored one (e.g. all empty): the stored score, kept with a pick, tells them apart
    in_use = max(order, key=lambda q: (overlaps[q] >= IN_USE_IOU, overlaps[q] if stored_score is None
                                       else -abs(float(found[q][1][0]) - stored_score), overlaps[q]))
    in_use = in_use if overlaps[in_use] >= IN_USE_IOU else None
    return [Candidate(q, float(scores[q]), float(found[q][1][0]), q == in_use,
                      candidate_thumbnail(image, found[q][0][0], colour, height)) for q in order]


def _iou(mask: np.ndarray, stored: np.ndarray | None) -> float:
    """IoU of two ``[H, W]`` bool masks (1 when both are empty); 0 without a stored mask of the same size."""
    return float(region_similarity(mask, stored)) if stored is not None and stored.shape == mask.shape else 0.0


def scope_frames(scope: str, frame: int, until: int | None, count: int) -> range:
    """The frames a pick applies to: ``this frame``, ``from this frame to…`` ``until`` (inclusive), ``whole video``."""
    if scope == SCOPES[0]:
        return range(frame, frame + 1)
    if scope == SCOPES[1]:
        if until is None:
            raise StudioError("say up to which frame the candidate applies")
        lo, hi = sorted((frame, int(until)))
        return range(max(lo, 0), min(hi, count - 1) + 1)
    if scope == SCOPES[2]:
        return range(count)
    raise StudioError(f"scope must be one of {', '.join(SCOPES)}")


def pick(project: Project, video: str, obj_id: int, predictor: VideoPredictor, state: InferenceState, query: int,
         frames: range) -> int:
    """Store query ``query``'s masks (and scores) on ``frames`` as the object's, origin ``hand``; one undoable edit."""
    masks, scores = predictor.query_masks(state, obj_id, query, frames)
    project.set_masks(video, obj_id, {t: masks[i] for i, t in enumerate(frames)}, Origin.HAND,
                      {t: float(scores[i]) for i, t in enumerate(frames)})
    return len(frames)


def query_at(predictor: VideoPredictor, state: InferenceState, obj_id: int, frame: int, x: float, y: float) -> int:
    """The best-scoring query whose mask on ``frame`` covers pixel (x, y); ``StudioError`` when none does."""
    scores = predictor.query_scores(state, obj_id)
    col, row = int(x), int(y)
    for query in np.argsort(-scores):
        masks, _ = predictor.query_masks(state, obj_id, int(query), range(frame, frame + 1))
        if 0 <= row < masks.shape[1] and 0 <= col < masks.shape[2] and masks[0, row, col]:
            return int(query)
    raise StudioError(f"none of the model's candidates covers the point ({col}, {row}); paint the mask instead")


def editor_value(project: Project, video: str, obj_id: int, frame: int) -> dict:
    """The brush editor's starting value: the frame as background and the object's mask as a translucent layer
    ``[H, W, 4]`` in the object's colour (erase it, or paint more of it, at the frame's full resolution)."""
    image = project.read_frame(video, frame)
    layer = np.zeros((*image.shape[:2], 4), np.uint8)
    mask = project.get_mask(video, obj_id, frame)
    if mask is not None:
        layer[mask] = (*object_colour(obj_id), round(255 * BRUSH_ALPHA))
    return {"background": image, "layers": [layer], "composite": None}


def mask_from_editor(value: dict | None, shape: tuple[int, int]) -> np.ndarray:
    """``[H, W]`` bool: the painted pixels of the editor's layers (any alpha), at the frame's ``shape``."""
    if not value or not value.get("layers"):
        raise StudioError("nothing painted: open the frame in the editor and paint the object")
    mask = np.zeros(shape, bool)
    for layer in value["layers"]:
        layer = np.asarray(layer)
        if layer.ndim != 3 or layer.shape[2] != 4:
            raise StudioError("the painted layer is not an RGBA image")
        painted = layer[..., 3] > 0
        if painted.shape != shape:
            painted = cv2.resize(painted.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST) > 0
        mask |= painted
    return mask


def save_painted(project: Project, video: str, obj_id: int, frame: int, value: dict | None) -> np.ndarray:
    """Replace the object's mask on ``frame`` by the painted one (origin ``hand``); returns it."""
    info = project.video(video)
    mask = mask_from_editor(value, (info.height, info.width))
    project.set_mask(video, obj_id, frame, mask, Origin.HAND)
    return mask
