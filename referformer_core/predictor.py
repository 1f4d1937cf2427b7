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
class InferenceState:
    """A video prepared for the model (resized frames on disk), its objects and their results."""

    frames: FrameBuffer
    orig_size: tuple[int, int]
    expressions: dict[int, str] = field(default_factory=dict)
    results: dict[int, ObjectResult] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.frames)


class VideoPredictor:
    """Segment the object an expression refers to, on every frame of a video."""

    def __init__(self, model: ReferFormer, tokenizer, device: str | torch.device = "cpu", short_side: int = 360,
                 threshold: float = 0.5, window: int | None = 36, autocast: str | None = None) -> None:
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ReferFormerError("device 'cuda' requested but no CUDA GPU is available")
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.short_side = short_side
        self.threshold = threshold
        self.window = window
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

    def remove_object(self, state: InferenceState, obj_id: int) -> None:
        state.expressions.pop(int(obj_id), None)
        state.results.pop(int(obj_id), None)

    def run(self, state: InferenceState, progress: Progress | None = None) -> None:
        """Run the model for every object without a result; ``progress(done, total)`` after each window.

        The backbone runs once per window for all pending objects; their expressions then go through the
        text-conditioned parts one after the other.
        """
        pending = [o for o in state.expressions if o not in state.results]
        if not pending:
            return
        windows = self._windows(state.num_frames)
        parts: dict[int, list] = {o: [] for o in pending}
        for done, (start, end) in enumerate(windows, start=1):
            outputs = self._forward(state.frames[start:end], [state.expressions[o] for o in pending])
            for obj_id, output in zip(pending, outputs):
                parts[obj_id].append(output)
            if progress is not None:
                progress(done, len(windows))
        for obj_id in pending:
            state.results[obj_id] = ObjectResult(*(torch.cat(p, 0) for p in zip(*parts[obj_id])))

    def propagate_in_video(self, state: InferenceState, progress: Progress | None = None
                           ) -> Iterator[tuple[int, list[int], np.ndarray]]:
        """Yield ``(frame_idx, obj_ids, masks [N, H, W] bool)`` at the original resolution, frame by frame."""
        if not state.expressions:
            raise ExpressionError("no object to segment: add an expression first")
        self.run(state, progress)
        obj_ids = sorted(state.expressions)
        best = {o: state.results[o].best_query for o in obj_ids}
        for t in range(state.num_frames):
            logits = torch.stack([state.results[o].mask_logits[t, best[o]] for o in obj_ids])
            yield t, obj_ids, self._upsample(logits, state.orig_size)

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
        return np.stack([masks[0] for _, _, masks in self.propagate_in_video(state)])

    def _result(self, state: InferenceState, obj_id: int) -> ObjectResult:
        if obj_id not in state.expressions:
            raise ExpressionError(f"object {obj_id} has no expression")
        self.run(state)
        return state.results[obj_id]

    def _windows(self, num_frames: int) -> list[tuple[int, int]]:
        size = num_frames if not self.window else self.window
        return [(s, min(s + size, num_frames)) for s in range(0, num_frames, size)]

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
