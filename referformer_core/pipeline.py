"""Frames -> masks: the one inference pipeline (the official Ref-Youtube-VOS pre/post-processing, in windows).

    frames [H, W, 3] uint8
      -> resize to a ``short_side`` of 360 (antialiased bilinear), kept as uint8 in a ``FrameBuffer``
      -> ImageNet normalisation
      -> the model, ``window`` frames per forward pass (the backbone once per window for all expressions;
         with a memory budget, the longest window within it: :mod:`referformer_core.memory`)
      -> per expression, the query with the best mean score over all frames of all windows (or, for a model
         with a ``CandidateRanker``, the candidate it ranks first)
      -> its mask logits upsampled (bilinear) to the original size -> sigmoid > ``threshold`` (0.5)

:func:`segment_video` runs every step. ``VideoPredictor`` runs the same steps window by window
(:func:`prepare_frames`, :func:`run_windows`, :func:`best_query`, :func:`upsample_masks`); ``parity`` post-processes
with :func:`best_query` and :func:`mask_probs`; the trainer's held-out evaluation calls :func:`segment_video`.
So the number training reports is the number a user gets.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from . import prefetch as _prefetch
from .candidate_ranker import TrackDescription, mean_score_logits, mean_scores, pool_descriptors
from .memory import budget_window, release_memory, reuse_freed_memory
from .referformer import ReferFormer, TextFeatures
from .refine import guided_filter
from .settings import SHORT_SIDE, THRESHOLD, WINDOW, RunSettings, resolve_settings
from .text import tokenize
from .video import FrameBuffer, iter_frames, normalize_frames, resize_frame

Video = str | Path | np.ndarray | Iterable


@dataclass
class ObjectResult:
    """Raw model outputs for one expression over the frames run so far.

    ``logits [T, Q]`` (class score logits), ``boxes [T, Q, 4]`` (cx, cy, w, h in [0, 1]),
    ``mask_logits [T, Q, h, w]`` at stride 4 of the model input; for a model with a ``CandidateRanker``, the
    ``description`` of the candidate tracks (:class:`~referformer_core.candidate_ranker.TrackDescription`) and
    the ranker's ``ranking [Q]`` logits over the frames so far. ``best_query``: the ranker's choice, else the best
    mean score.
    """

    logits: Tensor
    boxes: Tensor
    mask_logits: Tensor
    description: TrackDescription | None = None
    ranking: Tensor | None = None

    @property
    def query_scores(self) -> Tensor:
        """``[Q]`` each query's score: the ranker's probability (softmax over queries) when there is one, else
        the mean over frames of the query's class score."""
        if self.ranking is not None:
            return self.ranking.softmax(0)
        return mean_scores(self.logits)

    @property
    def best_query(self) -> int:
        return int(self.query_scores.argmax())

    @property
    def score_logits(self) -> Tensor:
        """``[T, Q]`` each query's per-frame score, as logits: its class logits, plus, when there is a ranking,
        the ranker's correction of the query's video-level logit (``ranking`` minus the logit of its mean score).
        Without it, a track the ranker prefers to the one with the best mean score would read as low-confidence
        on every frame."""
        if self.ranking is None:
            return self.logits
        return self.logits + (self.ranking - mean_score_logits(self.logits))

    def first(self, end: int) -> "ObjectResult":
        """The outputs of frames ``[0, end)`` (views), without a description or a ranking."""
        return ObjectResult(self.logits[:end], self.boxes[:end], self.mask_logits[:end])


def prepare_frames(video: Video, short_side: int = SHORT_SIDE, stride: int = 1) -> tuple[FrameBuffer, tuple[int, int]]:
    """Decode (streamed) and resize every ``stride``-th frame; the buffer of ``[T, 3, h, w]`` uint8 frames and
    the original ``(H, W)``."""
    frames, orig = FrameBuffer(), None
    for frame in iter_frames(video, stride=stride):
        orig = frame.shape[:2]
        frames.append(resize_frame(frame, short_side))
    return frames, (int(orig[0]), int(orig[1]))


def window_bounds(num_frames: int, window: int | None = WINDOW, first_window: int | None = None
                  ) -> list[tuple[int, int]]:
    """``(start, end)`` of each forward pass: ``first_window`` frames, then ``window`` frames at a time."""
    size = num_frames if not window else window
    first = min(first_window or size, size)
    starts = [0, *range(first, num_frames, size)]
    return [(s, min(e, num_frames)) for s, e in zip(starts, starts[1:] + [num_frames]) if s < num_frames]


def choose_window(model: ReferFormer, frames: FrameBuffer | Tensor, num_objects: int, window: int | None,
                  max_memory: float | None, device: str | torch.device = "cpu") -> int | None:
    """Frames per forward pass over ``frames [T, 3, h, w]`` for ``num_objects`` expressions: ``window`` (``None``:
    all ``T``) shortened, on the CPU, to the longest window whose estimated peak RSS fits ``max_memory`` GB."""
    if max_memory is None or torch.device(device).type != "cpu" or len(frames) == 0:
        return window
    size = (int(frames.shape[-2]), int(frames.shape[-1]))
    return budget_window(model, size, len(frames), num_objects, max_memory, window or len(frames))


def _precision(device: torch.device, autocast: torch.dtype | None):
    return torch.autocast(device.type, dtype=autocast) if autocast else nullcontext()


def encode_texts(model: ReferFormer, tokenizer, texts: list[str], device: torch.device,
                 autocast: torch.dtype | None = None) -> TextFeatures:
    """The text features of N expressions, once for all the windows of a run."""
    with torch.inference_mode(), _precision(device, autocast):
        return model.encode_text(*tokenize(tokenizer, texts, device))


def forward_window(model: ReferFormer, frames: Tensor, text: TextFeatures, device: torch.device,
                   autocast: torch.dtype | None = None) -> list[tuple[ObjectResult, Tensor | None]]:
    """``frames [t, 3, h, w]`` uint8 and N expressions' ``text`` (:func:`encode_texts`) -> per expression: its
    outputs (logits ``[t, Q]``, boxes ``[t, Q, 4]``, mask logits ``[t, Q, h/4, w/4]``) and, for a model with a
    ranker, the candidates' descriptors ``[t, Q, C]`` (else ``None``); float32, on the CPU. The backbone runs once
    for all expressions."""
    x = normalize_frames(frames.to(device))[None]
    sizes = torch.tensor([x.shape[-2:]], device=device)
    results = []
    with torch.inference_mode(), _precision(device, autocast):
        visual = model.encode_frames(x)
        for out in model.decode_each(visual, text, sizes):
            masks = out["pred_masks"][0]
            descriptors = None
            if model.candidate_ranker is not None:
                descriptors = pool_descriptors(visual.features, out["query_features"][0], masks).cpu()
            results.append((ObjectResult(out["pred_logits"][0].float().max(-1)[0].cpu(),
                                         out["pred_boxes"][0].float().cpu(), masks.float().cpu()), descriptors))
    return results


def rank_candidates(model: ReferFormer, features: Tensor, logits: Tensor, text: TextFeatures) -> Tensor:
    """The ranker's ``[Q]`` logits for one expression: its candidates' ``features [Q, F]``
    (:meth:`TrackDescription.features`), its class ``logits [T, Q]`` so far; ``text`` holds that one expression."""
    ranker = model.candidate_ranker
    device = next(ranker.parameters()).device
    with torch.inference_mode():
        prior = mean_score_logits(logits)[None].to(device)
        logits = ranker(features[None].to(device), text.encoder_words.float(), text.mask, prior)
    return logits[0].float().cpu()


def run_windows(model: ReferFormer, tokenizer, frames: FrameBuffer | Tensor, texts: list[str],
                bounds: list[tuple[int, int]], device: torch.device, autocast: torch.dtype | None = None,
                prefetch: bool = False) -> Iterator[tuple[int, int, list[ObjectResult]]]:
    """Run ``texts`` (encoded once) over ``frames[start:end]`` for each window of ``bounds`` (from frame 0); yields
    ``(start, end, results)`` where ``results[i]`` holds expression i's outputs on every frame done so far
    (``[end, ...]``, views of one buffer per expression sized for all frames, filled window by window). With a
    ``CandidateRanker``, each window's frames are added to each expression's description of its candidate tracks
    and the candidates are ranked again over all the frames so far.

    Nothing of a window but its outputs outlives it, and freed heap memory goes back to the system before the
    next window, so later windows peak where the first did: the peak RSS does not grow with the number of windows.
    On the CPU, memory freed within a window is reused rather than given back (:func:`reuse_freed_memory`).
    With ``prefetch``, the next window's frames are read (and on CUDA copied to the GPU) while one runs
    (:func:`~referformer_core.prefetch.prefetch_windows`).
    """
    if device.type == "cpu":
        reuse_freed_memory()
    text = encode_texts(model, tokenizer, texts, device, autocast) if bounds else None
    total = bounds[-1][1] if bounds else 0
    buffers: list[ObjectResult] = []
    descriptions = [TrackDescription() for _ in texts] if model.candidate_ranker is not None else []
    windows = (_prefetch.prefetch_windows(frames, bounds, device) if prefetch
               else (frames[start:end] for start, end in bounds))
    for (start, end), window_frames in zip(bounds, windows):
        outputs = forward_window(model, window_frames, text, device, autocast)
        if not buffers:
            buffers = [ObjectResult(*(x.new_empty((total, *x.shape[1:])) for x in _tensors(o))) for o, _ in outputs]
        for i, (output, descriptors) in enumerate(outputs):
            for whole, part in zip(_tensors(buffers[i]), _tensors(output)):
                whole[start:end] = part
            if descriptions:
                descriptions[i].add(output.logits, output.boxes, output.mask_logits, descriptors)
        del outputs
        release_memory()
        so_far = [b.first(end) for b in buffers]
        for i, description in enumerate(descriptions):
            so_far[i].description = description
            so_far[i].ranking = rank_candidates(model, description.features(), so_far[i].logits, text.select(i))
        yield start, end, so_far


def _tensors(result: ObjectResult) -> tuple[Tensor, Tensor, Tensor]:
    return result.logits, result.boxes, result.mask_logits


def best_query(logits: Tensor) -> int:
    """The query with the best mean score over frames: ``logits [T, Q]`` class logits."""
    return int(mean_scores(logits).argmax())


def mask_probs(mask_logits: Tensor, size: tuple[int, int]) -> Tensor:
    """``[N, h, w]`` mask logits -> ``[N, H, W]`` probabilities at ``size`` (bilinear, then sigmoid)."""
    return F.interpolate(mask_logits[None], size=size, mode="bilinear", align_corners=False)[0].sigmoid()


def upsample_masks(mask_logits: Tensor, size: tuple[int, int], threshold: float = THRESHOLD,
                   guides: Tensor | None = None) -> np.ndarray:
    """``[N, h, w]`` mask logits -> ``[N, H, W]`` bool at ``size``.

    With ``guides``, the N frames ``[N, 3, h', w']`` uint8 at the working size, the probabilities are first made at
    that size and refined with each frame's colour edges (:func:`~referformer_core.refine.guided_filter`).
    """
    if guides is None:
        return (mask_probs(mask_logits, size) > threshold).numpy()
    probs = mask_probs(mask_logits, tuple(guides.shape[-2:])).numpy()
    frames = guides.permute(0, 2, 3, 1).numpy()
    refined = torch.from_numpy(np.stack([guided_filter(f, p) for f, p in zip(frames, probs)]))
    return (F.interpolate(refined[None], size=size, mode="bilinear", align_corners=False)[0] > threshold).numpy()


def segment_video(model: ReferFormer, tokenizer, video: Video, expressions: list[str],
                  settings: RunSettings = RunSettings()) -> np.ndarray:
    """Every step: ``[N, T, H, W]`` bool masks, at the original size, of the objects the N ``expressions`` name.

    ``video``: a path, an array ``[T, H, W, 3]`` uint8 or an iterable of frames. ``model`` must be on
    ``settings.device``; settings left open take the defaults for ``model`` (:func:`resolve_settings`). With
    ``settings.prefetch`` (by default on CUDA), a file or an array is decoded and resized on a background thread
    while the model runs (:func:`~referformer_core.prefetch.stream_frames`); the masks are the same either way.
    """
    if not settings.resolved:
        settings = resolve_settings(settings, {}, model.config.backbone)
    fed = _prefetch.wanted(settings.prefetch, settings.device)
    streamed = _prefetch.stream_frames(video, settings.short_side) if fed else None
    if streamed is not None:
        try:
            return _segment_frames(model, tokenizer, *streamed, expressions, settings, fed)
        except _prefetch.FrameCountChanged:
            pass  # the count made before decoding was wrong: decode again, serially
        finally:
            streamed[0].close()
    return _segment_frames(model, tokenizer, *prepare_frames(video, settings.short_side), expressions, settings, fed)


def _segment_frames(model: ReferFormer, tokenizer, frames: FrameBuffer | _prefetch.StreamedFrames,
                    orig_size: tuple[int, int], expressions: list[str], settings: RunSettings,
                    prefetch: bool) -> np.ndarray:
    """:func:`segment_video` over resized ``frames [T, 3, h, w]`` of a video of ``orig_size``."""
    device = torch.device(settings.device)
    window = choose_window(model, frames, len(expressions), settings.frames_per_pass, settings.budget, device)
    bounds = window_bounds(len(frames), window, settings.first_window)
    results: list[ObjectResult] = []
    for _start, _end, results in run_windows(model, tokenizer, frames, expressions, bounds, device,
                                             settings.autocast_dtype, prefetch):
        pass
    out = np.empty((len(expressions), len(frames), *orig_size), dtype=bool)
    for i, result in enumerate(results):
        query = result.best_query
        for start, end in bounds:
            out[i, start:end] = upsample_masks(result.mask_logits[start:end, query], orig_size, settings.threshold,
                                               frames[start:end] if settings.refine else None)
    return out
