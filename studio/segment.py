"""Run the model over a video of a project and write its masks into the store window by window.

Each window's masks are stored (origin ``model``, with the chosen query's score per frame) as soon as the
model finishes it, so they show in the viewer while the rest runs, and stopping keeps what is done.
Frames whose mask a person made or asked for (``Origin.by_person``: hand, propagated, tracked) are left alone
unless ``overwrite_edits`` is set.
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from annotations import Origin, Project
from referformer_core.predictor import InferenceState, VideoPredictor

from .errors import StudioError

@dataclass(frozen=True)
class SegmentProgress:
    """Where a run stands after a window: frames done out of ``total``, speed, time left, last frames written."""

    done: int
    total: int
    frames_per_second: float
    seconds_left: float
    last_frames: range
    final: bool

    def describe(self) -> str:
        if self.final:
            return "refined earlier frames with the best query over the whole video"
        return (f"segmented {self.done}/{self.total} frames · {self.frames_per_second:.1f} frames/s · "
                f"{self.seconds_left:.0f} s left")


def load_state(project: Project, video: str, predictor: VideoPredictor) -> InferenceState:
    """The video's frames prepared for ``predictor`` (read from the project, resized for the model)."""
    count = project.video(video).frame_count
    return predictor.init_state(project.read_frame(video, t) for t in range(count))


def segment_into_project(project: Project, video: str, predictor: VideoPredictor, obj_ids: Sequence[int] | None = None,
                  overwrite_edits: bool = False, state: InferenceState | None = None) -> Iterator[SegmentProgress]:
    """Segment objects ``obj_ids`` (default: all with an expression) of ``video``; yields after each window.

    Each object is segmented with its first referring expression. ``state`` (from :func:`load_state`) is reused
    when given: objects whose expression did not change keep their results and are not run again. Raises
    ``StudioError`` when there is nothing to segment.
    """
    objects = {o.obj_id: o for o in project.objects(video)}
    wanted = list(objects) if obj_ids is None else list(obj_ids)
    missing = [o for o in wanted if o not in objects]
    if missing:
        raise StudioError(f"video {video!r} has no object {missing[0]}")
    wanted = [o for o in wanted if objects[o].expressions]
    if not wanted:
        raise StudioError("nothing to segment: give the object a referring expression first")
    info = project.video(video)
    started = time.perf_counter()
    state = state if state is not None else load_state(project, video, predictor)
    for obj_id in list(state.expressions):
        if obj_id not in objects or (obj_id not in wanted and obj_id not in state.results):
            predictor.remove_object(state, obj_id)
    for obj_id in wanted:
        if state.expressions.get(obj_id) != objects[obj_id].expressions[0]:
            predictor.add_expression(state, obj_id, objects[obj_id].expressions[0])
    protected = {o: set() if overwrite_edits else protected_frames(project, video, o) for o in wanted}
    done = 0
    for window in predictor.iter_windows(state):
        for n, obj_id in enumerate(window.obj_ids):
            if obj_id not in protected:
                continue
            masks = {t: window.masks[n, i] for i, t in enumerate(window.frames) if t not in protected[obj_id]}
            scores = {t: float(window.scores[n, i]) for i, t in enumerate(window.frames) if t in masks}
            if masks:
                project.set_masks(video, obj_id, masks, Origin.MODEL, scores)
        if not window.final:
            done = window.frames.stop
        elapsed = max(time.perf_counter() - started, 1e-6)
        rate = done / elapsed
        yield SegmentProgress(done, info.frame_count, rate, (info.frame_count - done) / max(rate, 1e-6),
                              window.frames, window.final)


def protected_frames(project: Project, video: str, obj_id: int) -> set[int]:
    """Frames where the object's mask was made or corrected by a person (never overwritten by the model)."""
    return {m.frame for m in project.mask_infos(video, obj_id) if m.origin.by_person}
