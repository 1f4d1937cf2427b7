"""``TrainConfig``: every option of a fine-tuning run in one dataclass (defaults: the official recipe)."""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrainConfig:
    """Options of ``python -m train``; defaults follow the official ``opts.py`` for Ref-Youtube-VOS.

    Data: ``data`` is a Ref-Youtube-VOS-layout folder; ``val`` a second one held out for validation, or
    else ``val_fraction`` of ``data``'s videos are held out (0 disables validation). ``refcoco`` adds
    Ref-COCO/RefCOCO+/RefCOCOg json files (the official converted format) to the training clips, one-frame
    clips of the images in ``refcoco_images`` (default: ``train2014/`` beside each json's folder).
    Model: ``config`` names a ``ReferFormerConfig`` used when starting from scratch; ``pretrained`` (an
    official or our checkpoint) gives the starting weights and the model config; ``resume`` continues an
    interrupted run of ours exactly. ``text_encoder`` is the tokenizer (and, from scratch, the pretrained
    text weights when the folder holds them); ``imagenet_backbone``: from scratch, start the backbone from the
    ImageNet weights it ships offline (EfficientNet-Lite0), if any. ``sentence_refiner_layers`` > 0 gives the
    model a ``SentenceRefiner`` of that depth (from scratch, or added fresh to a ``pretrained`` model that has none;
    a model that has one keeps it).
    Optimisation: AdamW with four parameter groups (rest ``lr``, backbone ``lr_backbone``, text encoder
    ``lr_text_encoder`` or frozen, deformable offsets/reference points ``lr * lr_linear_proj_mult``), and
    ``lr_sentence_refiner`` for a model with a ``SentenceRefiner`` (it starts from scratch, so it learns faster),
    ``MultiStepLR`` at the ``lr_drop`` epochs, gradient clipping at ``clip_max_norm``.
    """

    data: str
    out: str
    val: str | None = None
    val_fraction: float = 0.1
    refcoco: tuple[str, ...] = ()
    refcoco_images: str | None = None
    config: str = "resnet50"
    pretrained: str | None = None
    resume: str | None = None
    text_encoder: str = "roberta-base"
    imagenet_backbone: bool = True
    sentence_refiner_layers: int = 0
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 1
    num_frames: int = 5
    max_skip: int = 3
    augment: bool = True
    train_scales: tuple[int, ...] = (288, 320, 352, 392, 416, 448, 480, 512)
    crop_scales: tuple[int, ...] = (400, 500, 600)
    crop_min_size: int = 384
    crop_max_size: int = 600
    max_size: int = 640
    eval_short_side: int = 360
    lr: float = 1e-4
    lr_backbone: float = 5e-5
    lr_text_encoder: float = 1e-5
    lr_sentence_refiner: float = 5e-4
    freeze_text_encoder: bool = False
    lr_linear_proj_names: tuple[str, ...] = ("reference_points", "sampling_offsets")
    lr_linear_proj_mult: float = 1.0
    weight_decay: float = 5e-4
    lr_drop: tuple[int, ...] = (6, 8)
    clip_max_norm: float = 0.1
    loss_class: float = 2.0
    loss_bbox: float = 5.0
    loss_giou: float = 2.0
    loss_mask: float = 2.0
    loss_dice: float = 5.0
    aux_loss: bool = True
    amp: bool = True
    device: str = "auto"
    num_workers: int = 2
    seed: int = 42
    save_every_steps: int = 0
    log_every_steps: int = 10
    progress: bool = True

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_namespace(self) -> argparse.Namespace:
        """The options as an ``argparse.Namespace`` of plain values (the official checkpoints' ``args``)."""
        values = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}
        return argparse.Namespace(**values)
