"""The bundled default model: a small ReferFormer our own ``python -m train`` trained on a generated world.

It ships inside the package (``weights/``, with its model card) and is what ``VideoPredictor.from_checkpoint()``,
``referformer segment`` and the studio use when no checkpoint is named. It knows shapes, glyphs and blobs on
photographs, not real objects: real videos need an official checkpoint (see the README).
"""
from __future__ import annotations

from pathlib import Path

from .errors import CheckpointError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
BUNDLED_CHECKPOINT = WEIGHTS_DIR / "small_world.pth"
MODEL_CARD = WEIGHTS_DIR / "MODEL_CARD.md"


def bundled_checkpoint() -> Path:
    """The bundled checkpoint's path; ``CheckpointError`` when this install lacks it."""
    if not BUNDLED_CHECKPOINT.is_file():
        raise CheckpointError(f"the bundled model {BUNDLED_CHECKPOINT} is missing from this install; reinstall the "
                              f"package or pass --checkpoint FILE (an official ReferFormer checkpoint)")
    return BUNDLED_CHECKPOINT
