"""The studio's model: one ``VideoPredictor`` per (checkpoint, text encoder, device), loaded on first use."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from referformer_core.predictor import VideoPredictor

from .errors import StudioError


@dataclass(frozen=True)
class ModelSpec:
    """Which model segments and how: a checkpoint file, the text encoder's tokenizer (folder or cached id), a
    device, the short side frames are resized to for the model (360 as the official Ref-Youtube-VOS setting),
    and frames per forward pass (a short first one, so the first masks show within seconds)."""

    checkpoint: str | None = None
    text_encoder: str = "roberta-base"
    device: str = "cpu"
    short_side: int = 360
    window: int = 36
    first_window: int = 2

    def describe(self) -> str:
        if self.checkpoint is None:
            return "no model loaded (start the studio with --checkpoint FILE --text-encoder DIR)"
        return f"{Path(self.checkpoint).name} on {self.device}"


class ModelCache:
    """Loads predictors lazily and keeps them; safe to share between sessions (loading is locked)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._predictors: dict[ModelSpec, VideoPredictor] = {}

    def get(self, spec: ModelSpec) -> VideoPredictor:
        """The predictor of ``spec``; ``StudioError`` when no checkpoint is configured."""
        if spec.checkpoint is None:
            raise StudioError("no model is loaded: restart the studio with --checkpoint FILE "
                              "(an official ReferFormer .pth or one of ours) and --text-encoder DIR")
        with self._lock:
            if spec not in self._predictors:
                self._predictors[spec] = VideoPredictor.from_checkpoint(
                    spec.checkpoint, text_encoder=spec.text_encoder, device=spec.device, short_side=spec.short_side,
                    window=spec.window, first_window=spec.first_window)
            return self._predictors[spec]
