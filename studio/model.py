"""The studio's model: one ``VideoPredictor`` per (checkpoint, text encoder, device), loaded on first use."""
from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from referformer_core.bundled import BUNDLED_CHECKPOINT, DEFAULT_SHORT_SIDE, DEFAULT_TEXT_ENCODER, choose_model
from referformer_core.errors import ReferFormerError
from referformer_core.memory import DEFAULT_MAX_MEMORY
from referformer_core.predictor import VideoPredictor

from .errors import StudioError


@dataclass(frozen=True)
class ModelSpec:
    """Which model segments and how: a checkpoint file, the text encoder's tokenizer (folder or cached id), a
    device, the short side frames are resized to for the model (360 as the official Ref-Youtube-VOS setting),
    the most frames per forward pass (fewer when the memory budget asks; a short first one, so the first masks
    show within seconds), that budget: the peak RSS, in GiB, a segmentation on the CPU keeps to (None: none), and
    whether masks are refined with the frames' colour edges (as the start-up checkpoint asks; a model fine-tuned
    from it in the studio keeps its working size, window and refinement)."""

    checkpoint: str | None = None
    text_encoder: str = DEFAULT_TEXT_ENCODER
    device: str = "cpu"
    short_side: int = DEFAULT_SHORT_SIDE
    window: int = 36
    first_window: int = 2
    max_memory: float | None = DEFAULT_MAX_MEMORY
    refine_masks: bool = False

    def describe(self) -> str:
        if self.checkpoint is None:
            return "no model loaded (start the studio with --checkpoint FILE --text-encoder DIR)"
        if Path(self.checkpoint) == BUNDLED_CHECKPOINT:
            return (f"the bundled small model on {self.device} (it knows generated shapes, glyphs and blobs, not "
                    f"real objects: start with --checkpoint for real videos)")
        return f"{Path(self.checkpoint).name} on {self.device}"


def model_spec(checkpoint: str | None, text_encoder: str | None, device: str, short_side: int | None,
               max_memory: float | None = DEFAULT_MAX_MEMORY) -> ModelSpec:
    """The studio's start-up model: the given checkpoint or else the bundled one, with the tokenizer and working size
    the checkpoint names unless given, segmenting within ``max_memory`` GiB on the CPU (None: no budget). Without a
    usable checkpoint, no model (the reason is printed once)."""
    try:
        choice = choose_model(checkpoint, text_encoder, short_side)
    except ReferFormerError as e:
        print(f"warning: {e}", file=sys.stderr)
        return ModelSpec(None, text_encoder or DEFAULT_TEXT_ENCODER, device, short_side or DEFAULT_SHORT_SIDE,
                         max_memory=max_memory)
    return ModelSpec(str(choice.checkpoint), choice.text_encoder, device, choice.short_side,
                     window=choice.window or ModelSpec.window, max_memory=max_memory,
                     refine_masks=choice.refine_masks)


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
                    window="auto", max_window=spec.window, first_window=spec.first_window,
                    max_memory=spec.max_memory, refine_masks=spec.refine_masks)
            return self._predictors[spec]
