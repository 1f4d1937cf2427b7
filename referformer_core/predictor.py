"""``VideoPredictor``: a small stateful API over ReferFormer, shaped like SAM 2's video predictor.

    predictor = VideoPredictor.from_checkpoint("r50_refytvos_joint.pth", text_encoder="roberta-base")
    state = predictor.init_state("video.mp4")
    predictor.add_expression(state, obj_id=1, text="the brown dog jumping over the fence")
    for frame_idx, obj_ids, masks in predictor.propagate_in_video(state):   # masks [N, H, W] bool
        ...
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .checkpoint import load_checkpoint
from .errors import ExpressionError, ReferFormerError
from .referformer import ReferFormer
from .text import load_tokenizer, tokenize, validate_expression
from .video import FrameBuffer, iter_frames, normalize_frames, resize_frame

Progress = Callable[[int, int], None]


@dataclass
class ObjectResult:
    """Raw model outputs for one expression over the whole video.

    ``logits [T, Q]`` (class score logits), ``boxes [T, Q, 4]`` (cx, cy, w, h in [0, 1]),
    ``mask_logits [T, Q, h, w]`` at stride 4 of the model input, ``best_query`` by mean score.
    """

    logits: Tensor
    boxes: Tensor
    mask_logits: Tensor

    @property
    def query_scores(self) -> Tensor:
        """``[Q]`` mean over frames of each query's score."""
        return self.logits.sigmoid().mean(0)

    @property
    def best_query(self) -> int:
        return int(self.query_scores.argmax())


@dataclass
class Track:
    """One query's track: ``masks [T, H, W]`` bool, ``scores [T]``, ``boxes [T, 4]`` (x0, y0, x1, y1 pixels)."""

    query: int
    mean_score: float
    scores: np.ndarray
    boxes: np.ndarray
    masks: np.ndarray


@dataclass
class WindowMasks:
    """Masks of one window of frames, for every object: ``masks [N, t, H, W]`` bool at the original size,
    ``scores [N, t]`` of the query used (``queries [N]``); ``final`` when re-sent after the best query changed."""

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
    """Segment the object an expression refers to, on every frame of a video.

    The model runs ``window`` frames per forward pass (``None``: the whole video in one pass, as the official
    code); ``first_window`` makes the first pass shorter so that the first masks arrive sooner.
    """

    def __init__(self, model: ReferFormer, tokenizer, device: str | torch.device = "cpu", short_side: int = 360,
                 threshold: float = 0.5, window: int | None = 36, autocast: str | None = None,
                 first_window: int | None = None) -> None:
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ReferFormerError("device 'cuda' requested but no CUDA GPU is available")
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.short_side = short_side
        self.threshold = threshold
        self.window = window
        self.first_window = first_window
        if autocast not in (None, "bf16", "fp16") or (autocast == "fp16" and self.device.type != "cuda"):
            raise ValueError(f"autocast must be None, 'bf16' or (on CUDA) 'fp16', got {autocast!r}")
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(autocast)

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, text_encoder: str = "roberta-base",
                        device: str | torch.device = "cpu", **kwargs) -> "VideoPredictor":
        """Load an official or our own checkpoint; ``text_encoder`` names the tokenizer (a directory or a cached id)."""
        tokenizer = load_tokenizer(text_encoder)
        return cls(load_checkpoint(checkpoint), tokenizer, device=device, **kwargs)

    def init_state(self, video: str | Path | np.ndarray | Iterable, stride: int = 1) -> InferenceState:
        """Decode (streamed) and resize the frames of a path, an array ``[T, H, W, 3]`` uint8, or an iterable of frames."""
        frames, orig = FrameBuffer(), None
        for frame in iter_frames(video, stride=stride):
            orig = frame.shape[:2]
            frames.append(resize_frame(frame, self.short_side))
        return InferenceState(frames=frames, orig_size=(int(orig[0]), int(orig[1])))

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

        Each object's masks use its best query over the frames done so far. When the last window changes an
        object's best query, the earlier windows are yielded again with the final query (``final=True`` on
        those), so the last masks yielded for a frame are always the official result: the query with the best
        mean score over the whole video. Objects that already have results are yielded without re-running.
        """
        if not state.expressions:
            raise ExpressionError("no object to segment: add an expression first")
        obj_ids = sorted(state.expressions)
        used: dict[tuple[int, int], tuple[int, ...]] = {}
        for start, end, logits in self._run_windows(state, progress):
            queries = tuple(int(logits[o].sigmoid().mean(0).argmax()) for o in obj_ids)
            used[(start, end)] = queries
            yield self._window_masks(state, obj_ids, start, end, queries, logits, final=False)
        final = tuple(state.results[o].best_query for o in obj_ids)
        logits = {o: state.results[o].logits for o in obj_ids}
        for (start, end), queries in used.items():
            if queries != final:
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
        ``[end, Q]``: the class logits of every frame done so far. Completed objects get ``state.results``.

        The backbone runs once per window for all pending objects; their expressions then go through the
        text-conditioned parts one after the other. Objects with results are served from them.
        """
        pending = [o for o in state.expressions if o not in state.results]
        done_ids = [o for o in state.expressions if o in state.results]
        if not pending:
            if done_ids:
                yield from ((s, e, {o: state.results[o].logits[:e] for o in done_ids})
                            for s, e in self._windows(state.num_frames))
            return
        windows = self._windows(state.num_frames)
        parts: dict[int, list] = {o: [] for o in pending}
        for done, (start, end) in enumerate(windows, start=1):
            outputs = self._forward(state.frames[start:end], [state.expressions[o] for o in pending])
            for obj_id, output in zip(pending, outputs):
                parts[obj_id].append(output)
            if done == len(windows):
                for obj_id in pending:
                    state.results[obj_id] = ObjectResult(*(torch.cat(p, 0) for p in zip(*parts[obj_id])))
            else:
                for obj_id in pending:
                    state.partial[obj_id] = ObjectResult(*(torch.cat(p, 0) for p in zip(*parts[obj_id])))
            if progress is not None:
                progress(done, len(windows))
            logits = {o: self._known(state, o).logits[:end] for o in state.expressions}
            yield start, end, logits
        for obj_id in pending:
            state.partial.pop(obj_id, None)

    @staticmethod
    def _known(state: InferenceState, obj_id: int) -> ObjectResult:
        return state.results[obj_id] if obj_id in state.results else state.partial[obj_id]

    def _window_masks(self, state: InferenceState, obj_ids: list[int], start: int, end: int, queries: tuple[int, ...],
                      logits: dict[int, Tensor], final: bool) -> WindowMasks:
        masks = np.stack([self._upsample(self._known(state, o).mask_logits[start:end, q], state.orig_size)
                          for o, q in zip(obj_ids, queries)])
        scores = np.stack([logits[o][start:end, q].sigmoid().numpy() for o, q in zip(obj_ids, queries)])
        return WindowMasks(range(start, end), list(obj_ids), masks, scores, list(queries), final)

    def frame_scores(self, state: InferenceState, obj_id: int) -> np.ndarray:
        """``[T]`` score of the chosen query on each frame."""
        result = self._result(state, obj_id)
        return result.logits[:, result.best_query].sigmoid().numpy()

    def frame_boxes(self, state: InferenceState, obj_id: int) -> np.ndarray:
        """``[T, 4]`` box (x0, y0, x1, y1) of the chosen query, in original pixels."""
        result = self._result(state, obj_id)
        return self._boxes_xyxy(result.boxes[:, result.best_query], state.orig_size)

    def candidate_tracks(self, state: InferenceState, obj_id: int) -> list[Track]:
        """Every query's track for ``obj_id``, best mean score first (so the UI can offer the runner-up)."""
        result = self._result(state, obj_id)
        scores = result.query_scores
        tracks = []
        for q in scores.argsort(descending=True).tolist():
            masks = np.stack([self._upsample(result.mask_logits[t, q][None], state.orig_size)[0]
                              for t in range(state.num_frames)])
            tracks.append(Track(query=q, mean_score=float(scores[q]), scores=result.logits[:, q].sigmoid().numpy(),
                                boxes=self._boxes_xyxy(result.boxes[:, q], state.orig_size), masks=masks))
        return tracks

    def predict(self, frames: str | Path | np.ndarray | Iterable, expression: str) -> np.ndarray:
        """One call for scripts: ``[T, H, W]`` bool masks of the object ``expression`` refers to."""
        state = self.init_state(frames)
        self.add_expression(state, 1, expression)
        masks = {frame_idx: m[0] for frame_idx, _, m in self.propagate_in_video(state)}
        return np.stack([masks[t] for t in range(state.num_frames)])

    def _result(self, state: InferenceState, obj_id: int) -> ObjectResult:
        if obj_id not in state.expressions:
            raise ExpressionError(f"object {obj_id} has no expression")
        self.run(state)
        return state.results[obj_id]

    def _windows(self, num_frames: int) -> list[tuple[int, int]]:
        """``(start, end)`` of each forward pass: ``first_window`` frames, then ``window`` frames at a time."""
        size = num_frames if not self.window else self.window
        first = min(self.first_window or size, size)
        starts = [0, *range(first, num_frames, size)]
        return [(s, min(e, num_frames)) for s, e in zip(starts, starts[1:] + [num_frames]) if s < num_frames]

    def _forward(self, frames: Tensor, texts: list[str]) -> list[tuple[Tensor, Tensor, Tensor]]:
        """``frames [t, 3, h, w]`` uint8 and N expressions -> per expression: logits ``[t, Q]``,
        boxes ``[t, Q, 4]``, mask logits ``[t, Q, h/4, w/4]``."""
        ids, attention = tokenize(self.tokenizer, texts, self.device)
        x = normalize_frames(frames.to(self.device))[None]
        sizes = torch.tensor([x.shape[-2:]], device=self.device)
        precision = (torch.autocast(self.device.type, dtype=self.autocast_dtype) if self.autocast_dtype
                     else nullcontext())
        with torch.inference_mode(), precision:
            outs = self.model.decode_each(self.model.encode_frames(x), self.model.encode_text(ids, attention), sizes)
        return [(out["pred_logits"][0].float().max(-1)[0].cpu(), out["pred_boxes"][0].float().cpu(),
                 out["pred_masks"][0].float().cpu()) for out in outs]

    def _upsample(self, logits: Tensor, size: tuple[int, int]) -> np.ndarray:
        """``[N, h, w]`` mask logits -> ``[N, H, W]`` bool at the original size."""
        probs = F.interpolate(logits[None], size=size, mode="bilinear", align_corners=False)[0].sigmoid()
        return (probs > self.threshold).numpy()

    @staticmethod
    def _boxes_xyxy(boxes: Tensor, size: tuple[int, int]) -> np.ndarray:
        cx, cy, w, h = boxes.unbind(-1)
        xyxy = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
        return (xyxy * torch.tensor([size[1], size[0], size[1], size[0]])).numpy()
