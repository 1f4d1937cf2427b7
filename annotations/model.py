"""In-memory annotation data exchanged between the project store and the file formats.

Formats are pure conversions between files and a :class:`Dataset`; the store builds a Dataset for
export and writes one on import.  Masks are kept as compressed RLE (see :mod:`annotations.rle`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from .rle import RLE


class Origin(StrEnum):
    """Where a stored mask came from: the model, a person (``hand``: drawn, clicked or picked), flow propagation
    or the tracker from a person's frame (``propagated``, ``tracked``), or an imported file."""

    MODEL = "model"
    HAND = "hand"
    PROPAGATED = "propagated"
    TRACKED = "tracked"
    IMPORTED = "imported"

    @property
    def by_person(self) -> bool:
        """Whether a person made or asked for this mask: a model run keeps it (unless told to overwrite edits) and
        review never flags it as low score, even when it carries a model score (a picked candidate)."""
        return self in (Origin.HAND, Origin.PROPAGATED, Origin.TRACKED)


class ReviewState(StrEnum):
    """Per-frame review state of a video."""

    UNREVIEWED = "unreviewed"
    REVIEWED = "reviewed"
    NEEDS_FIXING = "needs_fixing"


@dataclass(frozen=True)
class Frame:
    """One frame: its name (no extension, e.g. ``"00005"``) and the JPEG file holding it."""

    name: str
    image: Path


@dataclass
class Track:
    """One object of one video.

    ``masks`` maps a frame position (index into :attr:`VideoData.frames`) to the object's RLE on that
    frame; frames without an entry are unannotated, and an empty mask means "annotated, not visible".
    ``origins`` and ``scores`` hold, for the same positions, where a mask came from and the model's
    score; a position without an entry is ``imported`` / no score.
    """

    obj_id: int
    category: str
    expressions: list[str] = field(default_factory=list)
    masks: dict[int, RLE] = field(default_factory=dict)
    origins: dict[int, Origin] = field(default_factory=dict)
    scores: dict[int, float] = field(default_factory=dict)


@dataclass
class VideoData:
    """One video: ``frames`` in display order, all ``height`` x ``width``, and its objects."""

    name: str
    width: int
    height: int
    frames: list[Frame]
    objects: list[Track] = field(default_factory=list)
    fps: float | None = None
    source_path: str = ""


@dataclass
class Dataset:
    """A set of annotated videos, as read from or written to an annotation format."""

    videos: list[VideoData] = field(default_factory=list)
