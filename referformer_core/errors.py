"""Errors a user can meet: each carries one readable line, no traceback needed."""
from __future__ import annotations


class ReferFormerError(Exception):
    """Base class of every error caused by user input rather than a bug."""


class CheckpointError(ReferFormerError):
    """The file is not a usable ReferFormer checkpoint (not a checkpoint, truncated, wrong model)."""


class TextEncoderNotFoundError(ReferFormerError):
    """The text encoder's weights/tokenizer are neither in a local directory nor in the HF cache."""


class ExpressionError(ReferFormerError):
    """The referring expression is empty or unusable."""


class VideoError(ReferFormerError):
    """The video cannot be used: unreadable, empty, frames of different sizes, too large."""


class ConfigError(ReferFormerError, ValueError):
    """An unknown model config or backbone name (also a ``ValueError``, as before)."""
