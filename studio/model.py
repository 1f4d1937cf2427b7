"""The studio's model: one ``VideoPredictor`` per run settings (checkpoint, text encoder, device, ...), loaded on first
use and kept."""
from __future__ import annotations

import sys
import threading
from dataclasses import replace
from pathlib import Path

from referformer_core.bundled import BUNDLED_CHECKPOINT
from referformer_core.errors import ReferFormerError
from referformer_core.predictor import VideoPredictor
from referformer_core.settings import FIRST_WINDOW, RunSettings, read_settings, settings_from_flags

from .errors import StudioError

def startup_settings(checkpoint: str | None, text_encoder: str | None, device: str, short_side: int | None,
                     max_memory: float | None = None, window: int | None = None) -> RunSettings:
    """The studio's start-up model from its flags (:func:`~referformer_core.settings.settings_from_flags`; ``None``
    each when not given): the given checkpoint or else the bundled one, resolved from the checkpoint's own keys
    (its tensors mapped, not read: the model cache reads them once, on first use). A model fine-tuned from
    it in the studio keeps its working size, window and refinement. Without a usable checkpoint, no model (``checkpoint`` None; the reason is printed
    once)."""
    requested = settings_from_flags(checkpoint, text_encoder, device, short_side, window, max_memory)
    try:
        return read_settings(requested, mmap=True)[0]
    except ReferFormerError as e:
        print(f"warning: {e}", file=sys.stderr)
        return replace(requested, checkpoint=None)


def describe(settings: RunSettings) -> str:
    """One line naming the studio's model for the page header."""
    if settings.checkpoint is None:
        return "no model loaded (start the studio with --checkpoint FILE --text-encoder DIR)"
    if Path(settings.checkpoint) == BUNDLED_CHECKPOINT:
        return (f"the bundled small model on {settings.device} (it knows generated shapes, glyphs and blobs, not "
                f"real objects: start with --checkpoint for real videos)")
    return f"{Path(settings.checkpoint).name} on {settings.device}"


class ModelCache:
    """Loads predictors lazily, one per :class:`RunSettings`, and keeps them; safe to share between sessions
    (loading is locked). Settings without a first window get the studio's short one (``FIRST_WINDOW``), so that
    the first masks show within seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._predictors: dict[RunSettings, VideoPredictor] = {}

    def get(self, settings: RunSettings) -> VideoPredictor:
        """The predictor of ``settings``; ``StudioError`` when no checkpoint is configured."""
        if settings.checkpoint is None:
            raise StudioError("no model is loaded: restart the studio with --checkpoint FILE "
                              "(an official ReferFormer .pth or one of ours) and --text-encoder DIR")
        with self._lock:
            if settings not in self._predictors:
                first = settings.first_window or FIRST_WINDOW
                self._predictors[settings] = VideoPredictor.from_settings(replace(settings, first_window=first))
            return self._predictors[settings]
