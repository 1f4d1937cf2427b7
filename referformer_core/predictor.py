"""``VideoPredictor``: a small stateful API over ReferFormer, shaped like SAM 2's video predictor.

    predictor = VideoPredictor.from_checkpoint("r50_refytvos_joint.pth", text_encoder="roberta-base")
    predictor = VideoPredictor.from_settings(RunSettings(checkpoint="r50_refytvos_joint.pth", window=12))  # the same
    state = predictor.init_state("video.mp4")
    predictor.add_expression(state, obj_id=1, text="the brown dog jumping over the fence")
    for frame_idx, obj_ids, masks in predictor.propagate_in_video(state):   # masks [N, H, W] bool
        ...
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from . import pipeline
from .checkpoint import model_from_checkpoint_data
from .errors import ExpressionError, ReferFormerError
from .pipeline import ObjectResult
from .prefetch import wanted as prefetch_wanted
from .referformer import ReferFormer
from .settings import RunSettings, read_settings, resolve_settings, with_options
from .text import load_tokenizer, validate_expression
from .video import FrameBuffer

SCORE_TOLERANCE = 0.01
"""How far a frame's score may move by the end of a run before its window is yielded again (:meth:`iter_windows`)."""
Progress = Callable[[int, int], None]


@dataclass
class CandidateTrack:
    """One query's track: ``masks [T, H, W]`` bool, ``scores [T]``, ``boxes [T, 4]`` (x0, y0, x1, y1 pixels)."""

    query: int
    mean_score: float
    scores: np.ndarray
    boxes: np.ndarray
    masks: np.ndarray


@dataclass
class WindowMasks:
    """Masks of one window of frames, for every object: ``masks [N, t, H, W]`` bool at the original size,
    ``scores [N, t]`` of the query used (``queries [N]``, :attr:`ObjectResult.score_logits`); ``final`` when re-sent
    because the run's end changed the best query or the scores (by more than ``SCORE_TOLERANCE``)."""

    frames: range
    obj_ids: list[int]
    masks: np.ndarray
    scores: np.ndarray
    queries: list[int]
    final: bool


@dataclass
class InferenceState:
    """A video prepared for the model (resized frames on disk), its objects and their results.

    ``partial`` holds the outputs of the windows done so far while a run is in progress.
    """

    frames: FrameBuffer
    orig_size: tuple[int, int]
    expressions: dict[int, str] = field(default_factory=dict)
    results: dict[int, ObjectResult] = field(default_factory=dict)
    partial: dict[int, ObjectResult] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.frames)


class VideoPredictor:
    """Segment the object an expression refers to, on every frame of a video, as its :class:`RunSettings` say.

    The model runs ``settings.window`` frames per forward pass (0: the whole video in one pass, as the official
    code), fewer on the CPU where the memory budget ``settings.max_memory`` asks for it (the longest window whose
    estimated peak RSS for the video at hand fits: :mod:`referformer_core.memory`); ``first_window`` makes the first
    pass shorter so that the first masks arrive sooner; ``refine`` refines every mask with its frame's colour edges
    (:mod:`referformer_core.refine`; the official code does not). Every step from frames to masks is
    :mod:`referformer_core.pipeline`'s, the one pipeline of the project.

    ``VideoPredictor(model, tokenizer, settings, **options)``: ``options`` are :class:`RunSettings` fields or the
    predictor's keyword names (``window="auto"``, ``max_window``, ``autocast``, ``refine_masks``, ``max_memory=None``;
    :func:`~referformer_core.settings.with_options`). ``predictor.settings`` is resolved: every field concrete.
    ``settings.prefetch`` reads (on CUDA: copies) the next window while the model runs one
    (:mod:`referformer_core.prefetch`; the same masks; ``None``: on CUDA only).
    """

    def __init__(self, model: ReferFormer, tokenizer, settings: RunSettings | None = None, **options: Any) -> None:
        settings = with_options(settings or RunSettings(), **options)
        self.device = torch.device(settings.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ReferFormerError("device 'cuda' requested but no CUDA GPU is available")
        if not settings.resolved:
            settings = resolve_settings(settings, {}, model.config.backbone)
        self.settings: RunSettings = settings
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The autocast dtype of ``settings.precision`` (``None``: float32)."""
        return self.settings.autocast_dtype

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path | None = None, text_encoder: str | None = None,
                        device: str | torch.device = "cpu", short_side: int | None = None,
                        precision: str | None = None, **options: Any) -> "VideoPredictor":
        """Load an official or our own checkpoint (``None``: the bundled model); ``text_encoder`` names the tokenizer
        (a directory, a packaged name or a cached id; ``None``: the one the checkpoint names, else ``roberta-base``);
        ``short_side`` the working size (``None``: the checkpoint's, else 360); ``precision`` ("fp32", "bf16",
        "fp16" on CUDA; ``None``: :func:`~referformer_core.precision.default_precision` for the device and the
        checkpoint's backbone); ``options`` as for the constructor. The same as :meth:`from_settings`."""
        settings = RunSettings(checkpoint=None if checkpoint is None else str(checkpoint), text_encoder=text_encoder,
                               device=str(device), short_side=short_side, precision=precision)
        return cls.from_settings(with_options(settings, **options))

    @classmethod
    def from_settings(cls, settings: RunSettings) -> "VideoPredictor":
        """The predictor of ``settings``: its checkpoint (``None``: the bundled one) read once, the settings it
        leaves open filled from that checkpoint's keys (:func:`~referformer_core.settings.resolve_settings`)."""
        resolved, data = read_settings(settings)
        return cls.from_checkpoint_data(data, resolved)

    @classmethod
    def from_checkpoint_data(cls, data: Mapping[str, Any], settings: RunSettings) -> "VideoPredictor":
        """The predictor of a checkpoint already read (:func:`~referformer_core.checkpoint.read_checkpoint`,
        perhaps altered) that ``settings.checkpoint`` names; settings it leaves open come from that dict."""
        model = model_from_checkpoint_data(data, settings.checkpoint or "checkpoint")
        if not settings.resolved:
            settings = resolve_settings(settings, data, model.config.backbone)
        return cls(model, load_tokenizer(settings.text_encoder), settings)

    def init_state(self, video: str | Path | np.ndarray | Iterable, stride: int = 1) -> InferenceState:
        """Decode (streamed) and resize the frames of a path, an array ``[T, H, W, 3]`` uint8, or an iterable of
        frames."""
        frames, orig_size = pipeline.prepare_frames(video, self.settings.short_side, stride)
        return InferenceState(frames=frames, orig_size=orig_size)

    def add_expression(self, state: InferenceState, obj_id: int, text: str) -> None:
        """Set (or replace) the expression of object ``obj_id``; results are computed by ``propagate_in_video``."""
        state.expressions[int(obj_id)] = validate_expression(text)
        state.results.pop(int(obj_id), None)
        state.partial.pop(int(obj_id), None)

    def remove_object(self, state: InferenceState, obj_id: int) -> None:
        state.expressions.pop(int(obj_id), None)
        state.results.pop(int(obj_id), None)
        state.partial.pop(int(obj_id), None)

    def run(self, state: InferenceState, progress: Progress | None = None) -> None:
        """Run the model for every object without a result; ``progress(done, total)`` after each window."""
        for _ in self._run_windows(state, progress):
            pass

    def iter_windows(self, state: InferenceState, progress: Progress | None = None) -> Iterator[WindowMasks]:
        """Run the model window by window and yield each window's masks as soon as it is done.

        Each object's masks use its best query over the frames done so far. When the end of the run changes an
        object's best query, or the scores of earlier frames (a ``CandidateRanker`` re-ranks after each window),
        the earlier windows are yielded again with the final query and scores (``final=True`` on those), so the
        last masks yielded for a frame are always the final result: the query with the best mean score over the
        whole video (the official rule), or the candidate a ``CandidateRanker`` ranks first. Objects that already
        have results are yielded without re-running.
        """
        if not state.expressions:
            raise ExpressionError("no object to segment: add an expression first")
        obj_ids = sorted(state.expressions)
        used: dict[tuple[int, int], tuple[tuple[int, ...], np.ndarray]] = {}    # queries and scores, not masks
        for start, end, logits in self._run_windows(state, progress):
            queries = tuple(self._known(state, o).best_query for o in obj_ids)
            window = self._window_masks(state, obj_ids, start, end, queries, logits, final=False)
            used[(start, end)] = (queries, window.scores)
            yield window
        final = tuple(state.results[o].best_query for o in obj_ids)
        logits = {o: state.results[o].score_logits for o in obj_ids}
        for (start, end), (queries, sent) in used.items():
            scores = self._window_scores(obj_ids, start, end, final, logits)
            if queries != final or not np.allclose(sent, scores, rtol=0, atol=SCORE_TOLERANCE):
                yield self._window_masks(state, obj_ids, start, end, final, logits, final=True)

    def propagate_in_video(self, state: InferenceState, progress: Progress | None = None
                           ) -> Iterator[tuple[int, list[int], np.ndarray]]:
        """Yield ``(frame_idx, obj_ids, masks [N, H, W] bool)`` at the original resolution as each window finishes.

        A frame may be yielded twice: see :meth:`iter_windows`; the last masks of a frame are the final ones.
        """
        for window in self.iter_windows(state, progress):
            for i, frame_idx in enumerate(window.frames):
                yield frame_idx, window.obj_ids, window.masks[:, i]

    def _run_windows(self, state: InferenceState, progress: Progress | None
                     ) -> Iterator[tuple[int, int, dict[int, Tensor]]]:
        """Run pending objects window by window; yields ``(start, end, logits)`` where ``logits[obj_id]`` is
        ``[end, Q]``: the score logits (:attr:`ObjectResult.score_logits`) of every frame done so far. Completed
        objects get ``state.results``.

        The backbone runs once per window for all pending objects; their expressions then go through the
        text-conditioned parts one after the other. Objects with results are served from them.
        """
        pending = [o for o in state.expressions if o not in state.results]
        done_ids = [o for o in state.expressions if o in state.results]
        if not pending:
            if done_ids:
                yield from ((s, e, {o: state.results[o].score_logits[:e] for o in done_ids})
                            for s, e in self._windows(state))
            return
        windows = self._windows(state)
        texts = [state.expressions[o] for o in pending]
        runs = pipeline.run_windows(self.model, self.tokenizer, state.frames, texts, windows, self.device,
                                    self.settings.autocast_dtype,
                                    prefetch_wanted(self.settings.prefetch, self.settings.device))
        for done, (start, end, results) in enumerate(runs, start=1):
            for obj_id, result in zip(pending, results):
                (state.results if done == len(windows) else state.partial)[obj_id] = result
            if progress is not None:
                progress(done, len(windows))
            logits = {o: self._known(state, o).score_logits[:end] for o in state.expressions}
            yield start, end, logits
        for obj_id in pending:
            state.partial.pop(obj_id, None)

    @staticmethod
    def _known(state: InferenceState, obj_id: int) -> ObjectResult:
        return state.results[obj_id] if obj_id in state.results else state.partial[obj_id]

    def _window_masks(self, state: InferenceState, obj_ids: list[int], start: int, end: int, queries: tuple[int, ...],
                      logits: dict[int, Tensor], final: bool) -> WindowMasks:
        masks = np.stack([self._upsample(state, self._known(state, o).mask_logits[start:end, q], start)
                          for o, q in zip(obj_ids, queries)])
        scores = self._window_scores(obj_ids, start, end, queries, logits)
        return WindowMasks(range(start, end), list(obj_ids), masks, scores, list(queries), final)

    @staticmethod
    def _window_scores(obj_ids: list[int], start: int, end: int, queries: tuple[int, ...],
                       logits: dict[int, Tensor]) -> np.ndarray:
        """``[N, end - start]`` scores of each object's query from its score ``logits [T, Q]``."""
        return np.stack([logits[o][start:end, q].sigmoid().numpy() for o, q in zip(obj_ids, queries)])

    def frame_scores(self, state: InferenceState, obj_id: int) -> np.ndarray:
        """``[T]`` score of the chosen query on each frame (:attr:`ObjectResult.score_logits`)."""
        result = self._result(state, obj_id)
        return result.score_logits[:, result.best_query].sigmoid().numpy()

    def frame_boxes(self, state: InferenceState, obj_id: int) -> np.ndarray:
        """``[T, 4]`` box (x0, y0, x1, y1) of the chosen query, in original pixels."""
        result = self._result(state, obj_id)
        return self._boxes_xyxy(result.boxes[:, result.best_query], state.orig_size)

    def candidate_tracks(self, state: InferenceState, obj_id: int) -> list[CandidateTrack]:
        """Every query's track for ``obj_id``, best first (``query_scores``), so the UI can offer the runner-up."""
        result = self._result(state, obj_id)
        scores = result.query_scores
        tracks = []
        for q in scores.argsort(descending=True).tolist():
            masks = np.stack([self._upsample(state, result.mask_logits[t, q][None], t)[0]
                              for t in range(state.num_frames)])
            tracks.append(CandidateTrack(query=q, mean_score=float(scores[q]),
                                         scores=result.score_logits[:, q].sigmoid().numpy(),
                                         boxes=self._boxes_xyxy(result.boxes[:, q], state.orig_size), masks=masks))
        return tracks

    def query_scores(self, state: InferenceState, obj_id: int) -> np.ndarray:
        """``[Q]`` score of every query of ``obj_id`` (the chosen one is the largest): its mean score over frames,
        or the ranker's probability for a model with a ``CandidateRanker``."""
        return self._result(state, obj_id).query_scores.numpy()

    def query_masks(self, state: InferenceState, obj_id: int, query: int, frames: range
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Masks ``[t, H, W]`` bool and scores ``[t]`` of one query on ``frames`` only, made on demand (the
        studio's candidates: never every query x every frame at full size)."""
        result = self._result(state, obj_id)
        if not 0 <= query < result.logits.shape[1]:
            raise ExpressionError(f"query {query} does not exist; the model has {result.logits.shape[1]} queries")
        frames = range(max(frames.start, 0), min(frames.stop, state.num_frames))
        masks = self._upsample(state, result.mask_logits[frames.start:frames.stop, query], frames.start)
        return masks, result.score_logits[frames.start:frames.stop, query].sigmoid().numpy()

    def predict(self, frames: str | Path | np.ndarray | Iterable, expression: str) -> np.ndarray:
        """One call for scripts: ``[T, H, W]`` bool masks of the object ``expression`` refers to
        (:func:`referformer_core.pipeline.segment_video` with this predictor's settings)."""
        return pipeline.segment_video(self.model, self.tokenizer, frames, [validate_expression(expression)],
                                      self.settings)[0]

    def _result(self, state: InferenceState, obj_id: int) -> ObjectResult:
        if obj_id not in state.expressions:
            raise ExpressionError(f"object {obj_id} has no expression")
        self.run(state)
        return state.results[obj_id]

    def window_for(self, state: InferenceState) -> int | None:
        """Frames per forward pass over ``state``'s video (``None``: all in one): ``window``, or the longest the
        memory budget allows for its working size, length and objects (at most ``settings.window``)."""
        return pipeline.choose_window(self.model, state.frames, len(state.expressions), self.settings.frames_per_pass,
                                      self.settings.budget, self.device)

    def _windows(self, state: InferenceState) -> list[tuple[int, int]]:
        """``(start, end)`` of each forward pass: ``first_window`` frames, then the window at a time."""
        return pipeline.window_bounds(state.num_frames, self.window_for(state), self.settings.first_window)

    def _upsample(self, state: InferenceState, logits: Tensor, start: int) -> np.ndarray:
        """``[t, h, w]`` mask logits of frames ``start..start + t`` -> ``[t, H, W]`` bool at the original size."""
        guides = state.frames[start:start + len(logits)] if self.settings.refine else None
        return pipeline.upsample_masks(logits, state.orig_size, self.settings.threshold, guides)

    @staticmethod
    def _boxes_xyxy(boxes: Tensor, size: tuple[int, int]) -> np.ndarray:
        cx, cy, w, h = boxes.unbind(-1)
        xyxy = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
        return (xyxy * torch.tensor([size[1], size[0], size[1], size[0]])).numpy()
