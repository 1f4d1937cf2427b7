"""Run settings: how a checkpoint segments a video, in one frozen value resolved once.

    settings = settings_from_flags(checkpoint="r50_refytvos_joint.pth", window=12)   # what a caller asked for
    predictor = VideoPredictor.from_settings(settings)      # reads the checkpoint once, fills in the rest
    predictor.settings                                      # resolved: every field concrete

A :class:`RunSettings` names the checkpoint, the text encoder, the working size, the window, the memory budget, the
refinement, the mask threshold, the precision, the device and the tracker. Fields left ``None`` are filled by
:func:`resolve_settings` from the checkpoint's own keys (as timm's pretrained configs declare input size and
normalisation once), else from this module's defaults; the predictor, the pipeline, the command lines, the studio
(whose model cache keys on it) and batch pre-annotation all take this one value.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from .checkpoint import TEXT_WEIGHTS_KEY, checkpoint_backbone, read_checkpoint
from .errors import ConfigError

SHORT_SIDE = 360
"""The official working size (the frames' shorter side), used when neither the caller nor the checkpoint names one."""
WINDOW = 36
"""Most frames per forward pass, used when neither the caller nor the checkpoint names one."""
FIRST_WINDOW = 2
"""The short first pass of interactive runs (the studio), so that the first masks show within seconds."""
THRESHOLD = 0.5
"""Mask probability above which a pixel is the object (the official post-processing)."""
DEFAULT_TEXT_ENCODER = "roberta-base"
"""The tokenizer of the official checkpoints, used when neither the caller nor the checkpoint names one."""
DEFAULT_MAX_MEMORY = 4.0
"""The memory budget (GiB of peak RSS on the CPU) a run keeps to by shortening its windows."""
NO_LIMIT = 0
"""``window`` 0: the whole video in one pass (as the official code); ``max_memory`` 0: no budget."""

WORKING_SIZE_KEY = "short_side"
"""Checkpoint key: the working size it was trained at."""
WINDOW_KEY = "window"
"""Checkpoint key: the most frames per pass it asks for (a memory bound)."""
REFINE_KEY = "refine_masks"
"""Checkpoint key: refine its masks with the frames' colour edges (:mod:`referformer_core.refine`); absent: no."""


@dataclass(frozen=True)
class RunSettings:
    """How a checkpoint runs; ``None`` fields are filled by :func:`resolve_settings`.

    ``checkpoint``: the file (``None``: the bundled model). ``text_encoder``: the tokenizer's folder, packaged name or
    cached id (``None``: the checkpoint's, else ``roberta-base``). ``device``: ``"cpu"``, ``"cuda"``, ``"cuda:1"``.
    ``short_side``: frames are resized to this shorter side (``None``: the checkpoint's, else 360). ``window``: the
    most frames per forward pass, which a memory budget may lower (``None``: the checkpoint's, else 36; 0: the
    whole video in one pass). ``first_window``: the first pass's length (``None``: ``window``). ``max_memory``: on the
    CPU, the GiB of peak RSS the windows are chosen to fit (:mod:`referformer_core.memory`; 0: no budget).
    ``refine``: refine masks with the frames' colour edges (``None``: as the checkpoint asks; official ones do
    not). ``threshold``: the mask probability cut. ``precision``: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (CUDA;
    ``None``: :func:`~referformer_core.precision.default_precision` for the device and backbone). ``tracker``: the
    name of the tracker corrections use (the tracker itself lives in ``studio/``; ``None``: none). ``prefetch``:
    decode, resize and copy the next window on a background thread while the model runs the current one
    (:mod:`referformer_core.prefetch`; the masks are the same either way; ``None``: on CUDA only).
    """

    checkpoint: str | None = None
    text_encoder: str | None = None
    device: str = "cpu"
    short_side: int | None = None
    window: int | None = None
    first_window: int | None = None
    max_memory: float = DEFAULT_MAX_MEMORY
    refine: bool | None = None
    threshold: float = THRESHOLD
    precision: str | None = None
    tracker: str | None = None
    prefetch: bool | None = None

    def __post_init__(self) -> None:
        for name in ("short_side", "first_window"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a positive number of {'pixels' if name == 'short_side' else 'frames'}"
                                  f", got {value!r}")
        if self.window is not None and (not isinstance(self.window, int) or self.window < 0):
            raise ConfigError(f"window must be a number of frames (0: the whole video), got {self.window!r}")
        if not (isinstance(self.max_memory, (int, float)) and self.max_memory >= 0):
            raise ConfigError(f"max_memory must be a number of GB >= 0 (0: no budget), got {self.max_memory!r}")
        if not 0 < self.threshold < 1:
            raise ConfigError(f"threshold must be between 0 and 1, got {self.threshold!r}")
        object.__setattr__(self, "device", str(self.device))
        if self.checkpoint is not None:
            object.__setattr__(self, "checkpoint", str(self.checkpoint))

    @property
    def budget(self) -> float | None:
        """The memory budget in GiB, or ``None`` for none."""
        return self.max_memory or None

    @property
    def frames_per_pass(self) -> int | None:
        """The window as the pipeline takes it: ``None`` for the whole video in one pass."""
        return self.window or None

    @property
    def resolved(self) -> bool:
        """Whether every field a run needs is filled in (:func:`resolve_settings`)."""
        return None not in (self.text_encoder, self.short_side, self.window, self.refine, self.precision)

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The autocast dtype of the precision: ``None`` for fp32 (or a precision not resolved yet)."""
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision or "fp32")


def settings_from_flags(checkpoint: str | None = None, text_encoder: str | None = None, device: str = "cpu",
                        short_side: int | None = None, window: int | None = None, max_memory: float | None = None,
                        precision: str | None = None, first_window: int | None = None,
                        tracker: str | None = None) -> RunSettings:
    """The settings of command-line flags (``referformer segment``/``annotate``, ``app.py``), each ``None`` when not
    given: a ``window`` given explicitly wins over the memory budget (0: the whole video in one pass); ``max_memory``
    0 is no budget, ``None`` the default budget."""
    budget = DEFAULT_MAX_MEMORY if max_memory is None else max_memory
    return RunSettings(checkpoint=checkpoint, text_encoder=text_encoder, device=device, short_side=short_side,
                       window=window, first_window=first_window,
                       max_memory=NO_LIMIT if window is not None else budget, precision=precision, tracker=tracker)


def resolve_settings(settings: RunSettings, data: Mapping[str, Any], backbone: str) -> RunSettings:
    """``settings`` with each ``None`` but the checkpoint filled from the checkpoint ``data`` (its dict, read once;
    ``{}`` for a model built in memory) and its ``backbone`` (for the default precision), else the defaults. A
    precision the device cannot run is a ``ConfigError`` (one line)."""
    from .precision import resolve_precision

    window = settings.window if settings.window is not None else int(data.get(WINDOW_KEY) or WINDOW)
    try:
        precision = resolve_precision(settings.precision, settings.device, backbone)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return replace(settings,
                   text_encoder=settings.text_encoder or str(data.get(TEXT_WEIGHTS_KEY) or DEFAULT_TEXT_ENCODER),
                   short_side=settings.short_side or int(data.get(WORKING_SIZE_KEY) or SHORT_SIDE),
                   window=window,
                   refine=bool(data.get(REFINE_KEY, False)) if settings.refine is None else settings.refine,
                   precision=precision)


def with_options(settings: RunSettings, window: int | str | None = "auto", max_window: int | None = None,
                 max_memory: float | None | str = "default", autocast: str | None | bool = False,
                 refine_masks: bool | None = None, **fields: Any) -> RunSettings:
    """``settings`` with the predictor's keyword arguments applied: :class:`RunSettings` field names, and the
    keyword names of ``VideoPredictor(...)``/``from_checkpoint(...)`` calls: ``window`` a number or ``None`` (the
    whole video; either wins over the budget) or ``"auto"`` (from the budget, at most ``max_window``),
    ``max_memory`` ``None`` (no budget), ``autocast`` ``None``/``"bf16"``/``"fp16"`` (the precision) and
    ``refine_masks`` (``refine``)."""
    if isinstance(window, str) and window != "auto":
        raise ConfigError(f"window must be a number of frames, None or 'auto', got {window!r}")
    if max_memory != "default":
        if max_memory is not None and max_memory <= 0:
            raise ConfigError(f"max_memory must be a positive number of GB or None, got {max_memory!r}")
        fields["max_memory"] = max_memory or NO_LIMIT
    if window != "auto":
        fields.update(window=window or NO_LIMIT, max_memory=NO_LIMIT)
    elif max_window is not None:
        fields["window"] = max_window
    if autocast is not False:
        if autocast not in (None, "bf16", "fp16"):
            raise ConfigError(f"autocast must be None, 'bf16' or (on CUDA) 'fp16', got {autocast!r}")
        fields["precision"] = autocast or "fp32"
    if refine_masks is not None:
        fields["refine"] = refine_masks
    if "device" in fields:
        fields["device"] = str(fields["device"])
    try:
        return replace(settings, **fields)
    except TypeError as e:
        raise TypeError(f"unknown run setting: {e}") from None


def checkpoint_file(settings: RunSettings) -> Path:
    """The checkpoint ``settings`` names, or the bundled one."""
    from .bundled import bundled_checkpoint

    return Path(settings.checkpoint) if settings.checkpoint is not None else bundled_checkpoint()


def read_settings(settings: RunSettings, mmap: bool = False) -> tuple[RunSettings, dict[str, Any]]:
    """Read the checkpoint ``settings`` names (the bundled one when ``None``) once: the resolved settings and the
    checkpoint's dict, from which the model loads. ``mmap``: map its tensors rather than read them, for a caller
    that only needs the settings (``CheckpointError``, ``ConfigError``: one line)."""
    path = checkpoint_file(settings)
    data = read_checkpoint(path, mmap=mmap)
    resolved = resolve_settings(replace(settings, checkpoint=str(path)), data, checkpoint_backbone(data, path))
    return resolved, data
