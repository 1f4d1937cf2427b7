"""Correct in clicks and follow the object: the studio's tracker operations over a project.

- :func:`click`: points and/or a box on one frame -> the object's mask there (origin ``hand``).
- :func:`track`: from the current frame forward, backward or both, for a number of frames or to the end, but no
  further than the next frame a person made (origin ``hand``) on each side: that frame is given to the tracker
  as a conditioning frame with the current one and kept, so a correction sticks and a later click re-tracks only
  the stretch up to it. The frames made are stored as ``tracked`` in one undoable edit, also when stopped.
- :func:`refine`: after a model run, the model's ``k`` most confident frames of each object (and a person's
  frames) condition the tracker both ways; the model's frames get the tracker's masks and keep ReferFormer's
  scores, a person's frames are left alone. :func:`refine_masks` is that rule over plain frames and masks
  (what ``referformer segment`` / ``annotate --tracker`` run after the model).
"""
from __future__ import annotations

import argparse
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from annotations import Origin, Project
from referformer_core.video import FrameBuffer, iter_frames

from .errors import StudioError
from .tracker import DIRECTIONS, Engine, Frames, Prompt, TrackerSettings, add_arguments, settings_from_args

REFINE_FRAMES = 3
"""How many of the model's most confident frames per object become the tracker's mask prompts."""


def refine_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tracker NAME`` (none by default), ``--tracker-precision`` and ``--refine-frames K``: the flags of
    ``referformer segment`` / ``annotate`` that refine ReferFormer's masks with the tracker."""
    add_arguments(parser, default=None)
    parser.add_argument("--refine-frames", type=_at_least_one, default=REFINE_FRAMES, metavar="K",
                        help="with --tracker: the model's K most confident frames of each object condition the "
                             f"tracker (default {REFINE_FRAMES})")


def refine_settings(args: argparse.Namespace, device: str) -> TrackerSettings | None:
    """The tracker :func:`refine_arguments`' flags name, or ``None`` when ``--tracker`` is not given."""
    return None if args.tracker is None else settings_from_args(args, device)


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text}")
    return value


def video_frames(project: Project, video: str) -> Frames:
    """``video`` of ``project`` as the tracker reads it (frame by frame from the store)."""
    info = project.video(video)
    return Frames((str(project.folder), video, info.frame_count), info.frame_count, info.height, info.width,
                  lambda t: project.read_frame(video, t))


def buffered_frames(key: tuple, buffer: FrameBuffer) -> Frames:
    """The frames of a core ``FrameBuffer`` (``[T, 3, H, W]`` uint8 on disk) as the tracker reads them."""
    count, _, height, width = buffer.shape
    return Frames(key, count, height, width,
                  lambda t: np.ascontiguousarray(buffer[t:t + 1][0].permute(1, 2, 0).numpy()))


def file_frames(video: str | Path, stride: int = 1) -> Frames:
    """Every ``stride``-th frame of a video file at its own size, decoded once into a ``FrameBuffer`` (the
    tracker runs both ways from its conditioning frames, so it reads frames out of order)."""
    buffer = FrameBuffer()
    for frame in iter_frames(video, stride):
        buffer.append(torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1))
    return buffered_frames((str(video), stride), buffer)


def make_prompt(points: Sequence[tuple[float, float, bool]], box: Sequence[float] | None, width: int,
                height: int) -> Prompt:
    """A :class:`Prompt` from clicks ``(x, y, positive)`` and a box ``(x0, y0, x1, y1)`` (any corner order),
    checked against the frame's size: one-line ``StudioError`` for a click outside it or a zero-size box."""
    for x, y, _ in points:
        if not (0 <= x < width and 0 <= y < height):
            raise StudioError(f"the click ({x:.0f}, {y:.0f}) is outside the {width}x{height} frame")
    clean_box = None
    if box is not None:
        x0, y0, x1, y1 = (float(v) for v in box)
        x0, x1 = sorted((min(max(x0, 0.0), width), min(max(x1, 0.0), width)))
        y0, y1 = sorted((min(max(y0, 0.0), height), min(max(y1, 0.0), height)))
        if x1 - x0 < 1 or y1 - y0 < 1:
            raise StudioError("the box has no area inside the frame: drag a box around the object")
        clean_box = (x0, y0, x1, y1)
    if not points and clean_box is None:
        raise StudioError("click on the object or drag a box around it")
    return Prompt(tuple((float(x), float(y)) for x, y, _ in points), tuple(int(bool(p)) for _, _, p in points),
                  clean_box)


def click(project: Project, video: str, obj_id: int, frame: int, prompt: Prompt, engine: Engine) -> np.ndarray:
    """Store the tracker's mask for ``prompt`` as the object's mask on ``frame`` (origin ``hand``); returns it."""
    current = project.get_mask(video, obj_id, frame)
    mask = engine.segment(video_frames(project, video), frame, prompt, current)
    if not mask.any():
        raise StudioError("the tracker found no object there: click on it or drag a box around it")
    project.set_mask(video, obj_id, frame, mask, Origin.HAND)
    return mask


@dataclass(frozen=True)
class TrackProgress:
    """Where a track stands: ``done`` frames of ``total`` made, and (at the end) how many were ``stored``."""

    done: int
    total: int
    stored: int | None = None

    def describe(self) -> str:
        if self.stored is None:
            return f"tracking {self.done}/{self.total} frames"
        return f"tracked {self.stored} frame(s); a person's frames in the range were kept"


def track_range(frame: int, direction: str, max_frames: int | None, count: int, stops: set[int] = frozenset()
                ) -> range:
    """The frames a track from ``frame`` covers: up to ``max_frames`` away (None: to the end of the video) and
    no further than the nearest frame of ``stops`` (a person's frames) on each side, which is included."""
    if direction not in DIRECTIONS:
        raise StudioError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    if max_frames is not None and max_frames < 1:
        raise StudioError("track at least one frame")
    span = count if max_frames is None else int(max_frames)
    lo = frame if direction == "forward" else max([0, frame - span, *(t for t in stops if t < frame)])
    hi = frame if direction == "backward" else min([count - 1, frame + span, *(t for t in stops if t > frame)])
    return range(lo, hi + 1)


def track(project: Project, video: str, obj_id: int, frame: int, engine: Engine, direction: str = "forward",
          max_frames: int | None = None) -> Iterator[TrackProgress]:
    """Track the object's mask on ``frame`` up to the next frame a person made on each side (yields as frames
    are made; closing the iterator keeps them). That frame and ``frame`` condition the tracker."""
    count = project.video(video).frame_count
    hand = {m.frame for m in project.mask_infos(video, obj_id) if m.origin == Origin.HAND}
    span = track_range(frame, direction, max_frames, count, hand)
    seed = project.get_mask(video, obj_id, frame)
    if seed is None or not seed.any():
        raise StudioError(f"object {obj_id} has no mask on frame {frame} to track: click on it first")
    conditioning = {t: {obj_id: project.get_mask(video, obj_id, t)} for t in hand & set(span) - {frame}}
    conditioning[frame] = {obj_id: seed}
    passes = [("forward", span.stop - 1 - frame), ("backward", frame - span.start)]
    passes = [(d, n) for d, n in passes if direction in (d, "both") and n > 0]
    made: dict[int, np.ndarray] = {}
    total = len(span) - len(conditioning)
    frames = video_frames(project, video)
    try:
        for way, reach in passes:
            for t, masks in engine.track(frames, conditioning, frame, way, reach):
                if t in span and t not in conditioning and obj_id in masks:
                    made[t] = masks[obj_id]
                    yield TrackProgress(len(made), total)
    finally:
        if made:
            project.set_masks(video, obj_id, made, Origin.TRACKED)
    yield TrackProgress(len(made), total, len(made))


class NothingToRefine(StudioError):
    """No object has a non-empty mask to condition the tracker on."""


class LazyMasks(Mapping):
    """Masks of ``frames``, each read by ``read(t)`` when asked: :func:`refine_masks` reads only the frames that
    condition the tracker, so a long video's masks need not all be in memory."""

    def __init__(self, frames: Iterable[int], read: Callable[[int], np.ndarray | None]) -> None:
        self._frames, self._read = sorted(set(frames)), read
        self._known = set(self._frames)

    def __getitem__(self, t: int) -> np.ndarray | None:
        if t not in self._known:
            raise KeyError(t)
        return self._read(t)

    def __iter__(self) -> Iterator[int]:
        return iter(self._frames)

    def __len__(self) -> int:
        return len(self._frames)


def refine_masks(frames: Frames, masks: Mapping[int, Mapping[int, np.ndarray | None]],
                 scores: Mapping[int, Sequence[float] | Mapping[int, float]], engine: Engine,
                 k: int = REFINE_FRAMES, keep: Mapping[int, Collection[int]] | None = None
                 ) -> dict[int, dict[int, np.ndarray]]:
    """The tracker's masks for the model's frames of every object, all objects tracked in one run.

    ``masks[obj_id]`` maps frame -> ``[H, W]`` bool (the model's frames and ``keep[obj_id]``, a person's frames);
    ``scores[obj_id][t]`` is ReferFormer's score of a model frame (an array ``[T]`` or ``{t: score}``). The ``k``
    most confident model frames of each object and its ``keep`` frames (non-empty ones) condition the tracker,
    which runs both ways over the video; the result maps each object's model frames (``masks`` less ``keep``,
    conditioning ones included) to the tracker's mask there; an object with only empty masks gets none.
    ``keep`` frames are never in it, and scores are not touched: the tracker draws the masks, ReferFormer still
    says how sure it is. :class:`NothingToRefine` when no object has a mask."""
    if k < 1:
        raise StudioError("refine from at least one frame")
    keep = keep or {}
    model = {o: [t for t in frame_masks if t not in keep.get(o, ())] for o, frame_masks in masks.items()}
    conditioning: dict[int, dict[int, np.ndarray]] = {}
    for obj_id, frame_masks in masks.items():
        best = sorted(model[obj_id], key=lambda t: (-float(scores[obj_id][t]), t))[:k]
        for t in sorted(set(best) | (set(keep.get(obj_id, ())) & set(frame_masks))):
            mask = frame_masks[t]
            if mask is not None and mask.any():
                conditioning.setdefault(t, {})[obj_id] = np.asarray(mask, bool)
    if not conditioning:
        raise NothingToRefine("nothing to refine: segment the object first")
    wanted = {o: set(ts) for o, ts in model.items()}
    made: dict[int, dict[int, np.ndarray]] = {o: {} for o in masks}
    for t, tracked in engine.track(frames, conditioning, min(conditioning), "both", frames.count):
        for obj_id, mask in tracked.items():
            if t in wanted.get(obj_id, ()):
                made[obj_id][t] = mask
    return made


def refine(project: Project, video: str, obj_ids: Sequence[int], engine: Engine, k: int = REFINE_FRAMES) -> int:
    """Replace the model's masks of ``obj_ids`` by the tracker's (:func:`refine_masks`: conditioned on the model's
    ``k`` most confident frames and a person's frames); returns how many masks changed. Scores stay
    ReferFormer's."""
    scores: dict[int, dict[int, float]] = {}
    person: dict[int, set[int]] = {}
    for obj_id in obj_ids:
        infos = project.mask_infos(video, obj_id)
        scores[obj_id] = {m.frame: m.score for m in infos if m.origin == Origin.MODEL and m.score is not None}
        person[obj_id] = {m.frame for m in infos if m.origin.by_person}
    masks = {o: LazyMasks(set(scores[o]) | person[o], lambda t, o=o: project.get_mask(video, o, t))
             for o in obj_ids}
    made = refine_masks(video_frames(project, video), masks, scores, engine, k, person)
    changed = 0
    for obj_id, new in made.items():
        new = {t: m for t, m in new.items() if not np.array_equal(m, project.get_mask(video, obj_id, t))}
        if new:
            project.set_masks(video, obj_id, new, Origin.MODEL, {t: scores[obj_id][t] for t in new})
            changed += len(new)
    return changed
