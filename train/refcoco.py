"""Ref-COCO / RefCOCO+ / RefCOCOg training data as one-frame clips (the official image pretraining format).

Layout (the official ``convert_refexp_to_coco`` output; several json files may share one image folder)::

    <coco>/train2014/COCO_train2014_<id>.jpg
    <coco>/refcoco/instances_refcoco_train.json    (refcoco+/instances_refcoco+_train.json, ...)

The json is COCO-format with one ``images`` entry per referring expression: ``id``, ``file_name``,
``height``, ``width`` and the expression as ``caption``; its ``annotations`` (``image_id`` = that entry's
``id``) hold the referred object's ``segmentation`` (polygons, or RLE, decoded by ``annotations.rle``). Crowd
annotations are ignored, as officially; several annotations of one entry form one object. Boxes come from the
masks (as the official ``refexp2seq``), so ``bbox`` is not read.

Each expression is one sample: its image repeated to ``num_frames`` frames (a static clip, not the official
``refexp2seq`` pseudo-motion augmentation), then the clip augmentation of the video data (one flip, crop and
resize for the whole clip, photometric distortion per frame).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from annotations import rle
from referformer_core.text import normalize_expression
from train.data import TrainingDataError, clip_target, frames_tensor, prepare_clip, read_frame
from train.transforms import AugmentOptions, Clip

RNG_STREAM = 1
"""Last word of a Ref-COCO sample's seed, so its draws differ from the video sample of the same index."""


@dataclass(frozen=True)
class RefExpRecord:
    """One referring expression of an image: the image file, its size, and the object's COCO segmentations
    (polygons as flat ``[x0, y0, x1, y1, ...]`` lists of floats, RLEs as their dicts)."""

    image_id: int
    file_name: str
    height: int
    width: int
    expression: str
    segmentations: tuple[Any, ...]


def _load_coco_json(path: Path) -> dict:
    if not path.is_file():
        raise TrainingDataError(f"Ref-COCO annotation file {path} not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TrainingDataError(f"cannot read {path}: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise TrainingDataError(f"{path} is not COCO-format: it needs 'images' and 'annotations' lists")
    return data


def _compact(segmentation: Any, where: str) -> tuple[Any, ...]:
    """A COCO ``segmentation`` as a tuple of polygons (float arrays of even length >= 6) or of one RLE dict."""
    if isinstance(segmentation, dict):
        if "counts" not in segmentation or "size" not in segmentation:
            raise TrainingDataError(f"{where}: RLE segmentation needs 'counts' and 'size'")
        return (segmentation,)
    if not isinstance(segmentation, list) or not segmentation:
        raise TrainingDataError(f"{where} has no segmentation (polygons or RLE)")
    try:
        polygons = tuple(np.asarray(p, dtype=np.float64) for p in segmentation)
    except (TypeError, ValueError):
        raise TrainingDataError(f"{where}: segmentation polygons must be lists of numbers") from None
    if any(p.ndim != 1 or p.size < 6 or p.size % 2 for p in polygons):
        raise TrainingDataError(f"{where}: a segmentation polygon needs at least 3 (x, y) points")
    return tuple(p.tolist() for p in polygons)


def read_refexp(json_path: str | Path, images: str | Path) -> list[RefExpRecord]:
    """Every expression of a converted Ref-COCO json whose images are in ``images``; ``TrainingDataError``
    (one line) for a missing or malformed file, a missing image, or an expression without a segmentation."""
    json_path, images = Path(json_path), Path(images)
    if not images.is_dir():
        raise TrainingDataError(f"Ref-COCO image folder {images} does not exist")
    data = _load_coco_json(json_path)
    objects: dict[int, list] = {}
    for ann in data["annotations"]:
        if not isinstance(ann, dict) or "image_id" not in ann:
            raise TrainingDataError(f"{json_path}: an annotation has no 'image_id'")
        where = f"{json_path.name}: annotation {ann.get('id', '?')} (image {ann['image_id']})"
        if "segmentation" not in ann:
            raise TrainingDataError(f"{where} has no segmentation (polygons or RLE)")
        if not ann.get("iscrowd", 0):
            objects.setdefault(ann["image_id"], []).extend(_compact(ann["segmentation"], where))
    records, checked = [], set()
    for image in data["images"]:
        try:
            image_id, file_name = image["id"], str(image["file_name"])
            height, width, caption = int(image["height"]), int(image["width"]), str(image["caption"])
        except (KeyError, TypeError, ValueError):
            raise TrainingDataError(f"{json_path}: every image needs 'id', 'file_name', integer 'height' and "
                                    f"'width', and a 'caption'") from None
        if image_id not in objects:
            raise TrainingDataError(f"{json_path.name}: image {image_id} ({caption!r}) has no non-crowd annotation")
        if file_name not in checked:
            if not (images / file_name).is_file():
                raise TrainingDataError(f"{images / file_name} listed in {json_path.name} does not exist")
            checked.add(file_name)
        expression = normalize_expression(caption)
        if expression:
            records.append(RefExpRecord(image_id, file_name, height, width, expression, tuple(objects[image_id])))
    if not records:
        raise TrainingDataError(f"{json_path} lists no images with captions")
    return records


def decode_mask(record: RefExpRecord) -> np.ndarray:
    """``[H, W]`` bool: the union of ``record``'s polygons and RLEs (:func:`annotations.rle.from_coco_segmentation`)."""
    h, w = record.height, record.width
    mask = np.zeros((h, w), bool)
    for segmentation in record.segmentations:
        try:
            mask |= rle.decode(rle.from_coco_segmentation(
                segmentation if isinstance(segmentation, dict) else [segmentation], h, w))
        except ValueError as e:
            raise TrainingDataError(f"Ref-COCO image {record.image_id}: cannot decode its segmentation: {e}") from None
    return mask


def read_refexp_clip(images: Path, record: RefExpRecord, num_frames: int) -> Clip:
    """``record``'s image repeated ``num_frames`` times, with the object's mask."""
    frame = read_frame(images / record.file_name)
    if frame.shape[:2] != (record.height, record.width):
        raise TrainingDataError(f"{images / record.file_name} is {frame.shape[:2]}, its json entry (image "
                                f"{record.image_id}) says {(record.height, record.width)}")
    mask = decode_mask(record)
    return Clip([frame] * num_frames, np.repeat(mask[None], num_frames, axis=0), record.expression)


class RefExpDataset(torch.utils.data.Dataset):
    """Ref-COCO clips: item ``i`` (expression ``i``) -> ``(frames [T, 3, H, W] normalised, target)`` as
    ``train.data.ClipDataset``; ``T`` identical frames before the augmentation."""

    def __init__(self, images: str | Path, records: Sequence[RefExpRecord], num_frames: int,
                 options: AugmentOptions, augment: bool, seed: int) -> None:
        self.images = Path(images)
        self.records = list(records)
        self.num_frames = num_frames
        self.options = options
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[Tensor, dict]:
        rng = np.random.default_rng([self.seed, self.epoch, index, RNG_STREAM])
        for _ in range(100):
            clip = read_refexp_clip(self.images, self.records[index], self.num_frames)
            clip = prepare_clip(clip, rng, self.options, self.augment)
            if clip.masks.any():
                return frames_tensor(clip.frames), clip_target(clip)
            index = int(rng.integers(len(self.records)))
        raise TrainingDataError(f"{self.images}: no Ref-COCO clip shows its object after 100 draws; are the "
                                f"segmentations empty?")


def default_image_folder(json_path: str | Path) -> Path:
    """``<coco>/train2014`` for ``<coco>/<dataset>/<file>.json`` (the official layout)."""
    return Path(json_path).resolve().parent.parent / "train2014"
