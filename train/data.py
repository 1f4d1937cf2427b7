"""Ref-Youtube-VOS-layout training data: read the folder, hold out videos, sample and augment clips, batch them.

Layout (the official dataset and ``annotations/`` exports)::

    <root>/JPEGImages/<video>/<frame>.jpg
    <root>/Annotations/<video>/<frame>.png      palette PNG, pixel value = obj_id
    <root>/meta_expressions.json                videos -> <video> -> {frames, expressions -> <id> -> {exp, obj_id}}

One training sample per (expression, every ``num_frames``-th frame) as the official loader; a clip is that
frame, one frame 1..``max_skip`` before and after it, and frames drawn from the rest of the video. A sample's
randomness comes from ``(seed, epoch, index)`` only, so runs are reproducible whatever the worker count, and
the same on one process or many. Ref-COCO images join as one-frame clips (``train.refcoco``, concatenated with
``ConcatClipDatasets``).
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from annotations.errors import AnnotationError
from annotations.images import read_label_png
from annotations.ytvos import read_meta_expressions
from referformer_core.errors import ReferFormerError
from referformer_core.text import normalize_expression
from referformer_core.video import normalize_frames
from train.transforms import AugmentOptions, Clip, augment_clip, resize

SIZE_DIVISIBILITY = 32
SMALL_TRAINING_SET = 20


class TrainingDataError(ReferFormerError):
    """The training or validation folder is missing, malformed or empty."""


@dataclass(frozen=True)
class ExpressionRecord:
    """One referring expression of a video: the object it names and the video's frame names in order."""

    video: str
    exp_id: str
    expression: str
    obj_id: int
    frames: tuple[str, ...]


def read_expressions(root: str | Path) -> list[ExpressionRecord]:
    """Every expression of a Ref-Youtube-VOS-layout folder, in file order; ``TrainingDataError`` if unusable.

    ``meta_expressions.json`` is read by :func:`annotations.ytvos.read_meta_expressions`; texts are put in the form the
    model reads (:func:`referformer_core.text.normalize_expression`, as the official loader), blank ones skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise TrainingDataError(f"data folder {root} does not exist")
    for sub in ("JPEGImages", "Annotations"):
        if not (root / sub).is_dir():
            raise TrainingDataError(f"{root} has no {sub}/ folder (expected the Ref-Youtube-VOS layout)")
    meta_path = root / "meta_expressions.json"
    try:
        videos = read_meta_expressions(meta_path)
    except AnnotationError as e:
        raise TrainingDataError(str(e)) from None
    records = []
    for video in videos:
        first = root / "JPEGImages" / video.name / f"{video.frames[0]}.jpg"
        if not first.is_file():
            raise TrainingDataError(f"{first} listed in {meta_path.name} does not exist")
        for exp in video.expressions:
            if exp.obj_id is None:
                raise TrainingDataError(f"{meta_path}: expression {video.name}/{exp.exp_id} has no obj_id")
            text = normalize_expression(exp.text)
            if text:
                records.append(ExpressionRecord(video.name, exp.exp_id, text, exp.obj_id, video.frames))
    if not records:
        raise TrainingDataError(f"{meta_path} lists no videos with expressions")
    return records


def split_by_video(records: Sequence[ExpressionRecord], fraction: float, seed: int
                   ) -> tuple[list[ExpressionRecord], list[ExpressionRecord]]:
    """(train, held out): ``fraction`` of the videos (at least one when > 0, never all) go to the held-out part."""
    videos = sorted({r.video for r in records})
    count = 0 if fraction <= 0 else min(len(videos) - 1, max(1, round(fraction * len(videos))))
    held = set(np.random.default_rng(seed).permutation(len(videos))[:count].tolist())
    held_names = {v for i, v in enumerate(videos) if i in held}
    return [r for r in records if r.video not in held_names], [r for r in records if r.video in held_names]


def sample_frame_indices(frame_id: int, num_frames: int, num_video_frames: int, max_skip: int,
                         rng: np.random.Generator) -> list[int]:
    """Sorted indices of a ``num_frames`` clip around ``frame_id`` (official sampling).

    The frame itself, one 1..``max_skip`` frames before and one after (clamped to the video), then frames drawn
    without replacement from outside that window (with replacement when the video is too short).
    """
    indices = [frame_id]
    if num_frames > 1:
        before, after = rng.integers(1, max_skip + 1, size=2)
        indices += [max(0, frame_id - int(before)), min(num_video_frames - 1, frame_id + int(after))]
    missing = num_frames - len(indices)
    if missing > 0:
        outside = [i for i in range(num_video_frames) if i < min(indices) or i > max(indices)]
        pool = outside if len(outside) >= missing else list(range(num_video_frames))
        indices += rng.choice(pool, size=missing, replace=len(pool) < missing).tolist()
    return sorted(indices[:num_frames])


def clip_starts(record: ExpressionRecord, num_frames: int) -> range:
    """The frames a record's training samples are centred on: every ``num_frames``-th (the official loader's)."""
    return range(0, len(record.frames), num_frames)


def clip_count(records: Sequence[ExpressionRecord], num_frames: int) -> int:
    """How many training samples (clips) ``records`` give per epoch: :class:`ClipDataset`'s length."""
    return sum(len(clip_starts(r, num_frames)) for r in records)


def steps_per_epoch(num_items: int, batch_size: int, world_size: int = 1) -> int:
    """Optimiser steps per epoch over ``num_items`` samples: incomplete global batches are dropped
    (:class:`EpochBatchSampler`)."""
    return num_items // (batch_size * world_size)


def read_frame(path: Path) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB."""
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except (OSError, ValueError) as e:
        raise TrainingDataError(f"cannot read frame {path}: {e}") from e


def read_object_mask(path: Path, obj_id: int) -> np.ndarray:
    """``[H, W]`` bool: pixels of ``obj_id`` in a palette (or grey) label PNG
    (:func:`annotations.images.read_label_png`)."""
    try:
        return read_label_png(path, path, "(image)") == obj_id
    except AnnotationError as e:
        raise TrainingDataError(str(e)) from None


def read_clip(root: Path, record: ExpressionRecord, indices: Sequence[int]) -> Clip:
    """The frames at ``indices`` of ``record``'s video with the object's masks."""
    frames, masks = [], []
    for i in indices:
        name = record.frames[i]
        frames.append(read_frame(root / "JPEGImages" / record.video / f"{name}.jpg"))
        masks.append(read_object_mask(root / "Annotations" / record.video / f"{name}.png", record.obj_id))
        if masks[-1].shape != frames[-1].shape[:2]:
            raise TrainingDataError(f"{root / 'Annotations' / record.video / name}.png is {masks[-1].shape}, "
                                    f"its frame is {frames[-1].shape[:2]}")
    return Clip(frames, np.stack(masks), record.expression)


def clip_target(clip: Clip) -> dict[str, Tensor | str]:
    """The target of a transformed clip, as ``train.losses`` wants it.

    ``labels [T]`` (0), ``boxes [T, 4]`` normalised cx, cy, w, h of the mask (zeros where absent),
    ``masks [T, H, W]`` float, ``valid [T]`` (object present), ``caption``, ``size`` (h, w).
    """
    h, w = clip.size
    boxes, valid = [], []
    for mask in clip.masks:
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if rows.size:
            x0, y0, x1, y1 = cols[0], rows[0], cols[-1] + 1, rows[-1] + 1
            boxes.append([(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h])
        else:
            boxes.append([0.0, 0.0, 0.0, 0.0])
        valid.append(int(rows.size > 0))
    t = len(clip.frames)
    return {"labels": torch.zeros(t, dtype=torch.long), "boxes": torch.tensor(boxes, dtype=torch.float32),
            "masks": torch.from_numpy(clip.masks.astype(np.float32)), "valid": torch.tensor(valid),
            "caption": clip.caption, "size": torch.tensor([h, w])}


def frames_tensor(frames: Sequence[np.ndarray]) -> Tensor:
    """``T x [H, W, 3]`` uint8 -> ``[T, 3, H, W]`` ImageNet-normalised float."""
    return normalize_frames(torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous())


def prepare_clip(clip: Clip, rng: np.random.Generator, options: AugmentOptions, augment: bool) -> Clip:
    """The training augmentation of ``clip``, or with ``augment`` False only the resize to ``options.scales[0]``."""
    if augment:
        return augment_clip(clip, rng, options)
    return resize(clip, options.scales[0], options.max_size)


class ClipDataset(torch.utils.data.Dataset):
    """Training clips: item ``i`` -> ``(frames [T, 3, H, W] normalised, target)`` (see ``clip_target``).

    With ``augment`` False clips are only resized (short side ``options.scales[0]``, long side <= ``max_size``).
    """

    def __init__(self, root: str | Path, records: Sequence[ExpressionRecord], num_frames: int, max_skip: int,
                 options: AugmentOptions, augment: bool, seed: int) -> None:
        self.root = Path(root)
        self.records = list(records)
        self.num_frames = num_frames
        self.max_skip = max_skip
        self.options = options
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self.items = [(r, f) for r, rec in enumerate(self.records) for f in clip_starts(rec, num_frames)]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[Tensor, dict]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        for _ in range(100):
            record_index, frame_id = self.items[index]
            record = self.records[record_index]
            indices = sample_frame_indices(frame_id, self.num_frames, len(record.frames), self.max_skip, rng)
            clip = prepare_clip(read_clip(self.root, record, indices), rng, self.options, self.augment)
            if clip.masks.any():
                return frames_tensor(clip.frames), clip_target(clip)
            index = int(rng.integers(len(self.items)))
        raise TrainingDataError(f"{self.root}: no clip shows its object after 100 draws; are the masks empty?")


class ConcatClipDatasets(torch.utils.data.ConcatDataset):
    """Several clip datasets (Ref-Youtube-VOS, Ref-COCO, ...) as one, indices in order; ``set_epoch`` reaches all."""

    def set_epoch(self, epoch: int) -> None:
        for dataset in self.datasets:
            dataset.set_epoch(epoch)


@dataclass
class ClipBatch:
    """Padded clips: ``frames [B, T, 3, H, W]``, ``padding_mask [B, T, H, W]`` (True on padding),
    ``image_sizes [B, 2]`` (h, w unpadded), the ``targets`` and their ``captions``."""

    frames: Tensor
    padding_mask: Tensor
    image_sizes: Tensor
    targets: list[dict]
    captions: list[str]

    def to(self, device: torch.device) -> "ClipBatch":
        targets = [{k: v.to(device) if isinstance(v, Tensor) else v for k, v in t.items()} for t in self.targets]
        return ClipBatch(self.frames.to(device), self.padding_mask.to(device), self.image_sizes.to(device),
                         targets, self.captions)


def collate_clips(batch: Sequence[tuple[Tensor, dict]]) -> ClipBatch:
    """Pad clips at the bottom/right to a common size divisible by 32 (the official ``collate_fn``)."""
    t = batch[0][0].shape[0]
    height = math.ceil(max(c.shape[-2] for c, _ in batch) / SIZE_DIVISIBILITY) * SIZE_DIVISIBILITY
    width = math.ceil(max(c.shape[-1] for c, _ in batch) / SIZE_DIVISIBILITY) * SIZE_DIVISIBILITY
    frames = torch.zeros(len(batch), t, 3, height, width)
    padding = torch.ones(len(batch), t, height, width, dtype=torch.bool)
    for i, (clip, _) in enumerate(batch):
        frames[i, :, :, :clip.shape[-2], :clip.shape[-1]] = clip
        padding[i, :, :clip.shape[-2], :clip.shape[-1]] = False
    targets = [target for _, target in batch]
    sizes = torch.stack([target["size"] for target in targets])
    return ClipBatch(frames, padding, sizes, targets, [str(target["caption"]) for target in targets])


class EpochBatchSampler(torch.utils.data.Sampler):
    """This rank's index batches of one epoch, from a permutation seeded by ``(seed, epoch)``.

    Step ``s`` uses items ``perm[s*G:(s+1)*G]`` with ``G = batch_size * world_size`` (incomplete global
    batches are dropped), rank ``r`` taking its ``batch_size`` slice: so one process with batch ``G`` sees
    exactly the samples of ``world_size`` processes with batch ``batch_size``. ``start_step`` skips the
    first steps (resuming inside an epoch).
    """

    def __init__(self, num_items: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.num_items = num_items
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start_step = 0

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        self.epoch = epoch
        self.start_step = start_step

    def steps_per_epoch(self) -> int:
        return steps_per_epoch(self.num_items, self.batch_size, self.world_size)

    def __len__(self) -> int:
        return max(0, self.steps_per_epoch() - self.start_step)

    def __iter__(self) -> Iterator[list[int]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.num_items).tolist()
        global_batch = self.batch_size * self.world_size
        for step in range(self.start_step, self.steps_per_epoch()):
            start = step * global_batch + self.rank * self.batch_size
            yield order[start:start + self.batch_size]
