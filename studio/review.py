"""Review a video: per-frame scores of an object, review states, and the next frame that needs a look."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from annotations import Project, ReviewState

from .errors import StudioError

LOW_CONFIDENCE = 0.5


def frame_scores(project: Project, video: str, obj_id: int, threshold: float = LOW_CONFIDENCE
                 ) -> tuple[np.ndarray, np.ndarray]:
    """From one read of the store: ``scores [T]``, the stored score of the object's mask on each frame (NaN where
    none is stored), and ``low [T]`` bool, the frames scoring below ``threshold`` unless a person chose their mask
    (``Origin.by_person``: a picked candidate keeps its model score, but it is no longer a frame the
    model is unsure of)."""
    count = project.video(video).frame_count
    scores, low = np.full(count, np.nan), np.zeros(count, bool)
    for info in project.mask_infos(video, obj_id):
        if info.score is not None:
            scores[info.frame] = info.score
            low[info.frame] = info.score < threshold and not info.origin.by_person
    return scores, low


def low_confidence_frames(project: Project, video: str, obj_id: int, threshold: float = LOW_CONFIDENCE) -> list[int]:
    """The ``low`` frames of :func:`frame_scores`."""
    return [int(t) for t in np.flatnonzero(frame_scores(project, video, obj_id, threshold)[1])]


def mark(project: Project, video: str, frames: int | Iterable[int], state: ReviewState | str) -> None:
    """Set the review state of frames (one undoable edit)."""
    project.set_review(video, frames, state)


def next_frame(project: Project, video: str, frame: int, kind: str, obj_id: int | None = None,
               threshold: float = LOW_CONFIDENCE) -> int:
    """The first frame after ``frame`` (wrapping around) that is ``unreviewed`` or ``low`` confidence for ``obj_id``.

    Raises ``StudioError`` when there is none, so the UI can say so.
    """
    count = project.video(video).frame_count
    if kind == "unreviewed":
        candidates = set(project.frames_in_state(video, ReviewState.UNREVIEWED))
        none = "every frame is reviewed"
    elif kind == "low":
        if obj_id is None:
            raise StudioError("choose an object to find its low-confidence frames")
        candidates = set(low_confidence_frames(project, video, obj_id, threshold))
        none = f"no frame scores below {threshold:.2f} for object {obj_id}"
    else:
        raise StudioError(f"unknown frame kind {kind!r}")
    for step in range(1, count + 1):
        t = (frame + step) % count
        if t in candidates:
            return t
    raise StudioError(none)


def progress_line(project: Project, video: str) -> str:
    """e.g. ``12/48 frames reviewed · 2 need fixing``."""
    states = project.review_states(video)
    reviewed = sum(s == ReviewState.REVIEWED for s in states)
    fixing = sum(s == ReviewState.NEEDS_FIXING for s in states)
    extra = f" · {fixing} need fixing" if fixing else ""
    return f"{reviewed}/{len(states)} frames reviewed{extra}"
