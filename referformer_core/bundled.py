"""The bundled default model: a small ReferFormer our own ``python -m train`` trained on a generated world.

It ships inside the package (``weights/``, with its model card) and is what ``VideoPredictor.from_checkpoint()``,
``referformer segment`` and the studio use when no checkpoint is named. It knows shapes, glyphs and blobs on
photographs, not real objects: real videos need an official checkpoint (see the README).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checkpoint import TEXT_WEIGHTS_KEY, read_checkpoint
from .errors import CheckpointError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
BUNDLED_CHECKPOINT = WEIGHTS_DIR / "small_world.pth"
MODEL_CARD = WEIGHTS_DIR / "MODEL_CARD.md"
DEFAULT_TEXT_ENCODER = "roberta-base"
"""The tokenizer of the official checkpoints, used when neither the caller nor the checkpoint names one."""
DEFAULT_SHORT_SIDE = 360
"""The official working size (shorter side), used when neither the caller nor the checkpoint names one."""
WORKING_SIZE_KEY = "short_side"
WINDOW_KEY = "window"
REFINE_KEY = "refine_masks"
"""Checkpoint key: refine its masks with the frames' colour edges (:mod:`referformer_core.refine`); absent: no."""


@dataclass(frozen=True)
class ModelChoice:
    """A checkpoint file with the tokenizer and working size to run it with."""

    checkpoint: Path
    text_encoder: str
    short_side: int
    bundled: bool
    window: int | None = None
    """Frames per forward pass the checkpoint asks for (a memory bound), or None for the caller's default."""
    refine_masks: bool = False
    """Whether the checkpoint asks for its masks to be refined (official checkpoints: no)."""


def bundled_checkpoint() -> Path:
    """The bundled checkpoint's path; ``CheckpointError`` when this install lacks it."""
    if not BUNDLED_CHECKPOINT.is_file():
        raise CheckpointError(f"the bundled model {BUNDLED_CHECKPOINT} is missing from this install; reinstall the "
                              f"package or pass --checkpoint FILE (an official ReferFormer checkpoint)")
    return BUNDLED_CHECKPOINT


def choose_model(checkpoint: str | Path | None = None, text_encoder: str | None = None,
                 short_side: int | None = None) -> ModelChoice:
    """Fill what the caller left out: no checkpoint -> the bundled one; no text encoder -> the one the checkpoint
    names for its frozen weights, else ``roberta-base``; no size -> the checkpoint's working size, else 360; and
    the window the checkpoint asks for, if any."""
    path = checkpoint_path(checkpoint)
    return model_choice(path, read_checkpoint(path), text_encoder, short_side, bundled=checkpoint is None)


def checkpoint_path(checkpoint: str | Path | None) -> Path:
    """``checkpoint`` as a path, or the bundled checkpoint's when it is None."""
    return Path(checkpoint) if checkpoint is not None else bundled_checkpoint()


def model_choice(path: Path, data: Mapping[str, Any], text_encoder: str | None, short_side: int | None,
                 bundled: bool) -> ModelChoice:
    """:func:`choose_model` on a checkpoint already read (``data``), so that loading it needs no second read."""
    text_encoder = text_encoder or str(data.get(TEXT_WEIGHTS_KEY) or DEFAULT_TEXT_ENCODER)
    short_side = short_side or int(data.get(WORKING_SIZE_KEY) or DEFAULT_SHORT_SIDE)
    window = data.get(WINDOW_KEY)
    return ModelChoice(path, text_encoder, int(short_side), bundled=bundled,
                       window=int(window) if window else None, refine_masks=bool(data.get(REFINE_KEY, False)))
