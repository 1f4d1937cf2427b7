"""A procedurally generated referring-video world in the Ref-Youtube-VOS layout.

Videos of 2-5 moving, turning, scaling objects (shapes, glyphs, blobs; eight colours; solid, striped or
dotted) over photographs with a moving camera, each referred object named by several expressions
(colour, kind, texture, size, position, motion, relations) that are checked to pick out exactly one
object. ``generate_world`` writes a split; ``video_spec`` + ``render_video`` regenerate one video.
``HELD_OUT_PAIRS`` are (colour, kind) pairs absent from ``train`` and present in every ``heldout`` video.
"""
from __future__ import annotations

from .generate import generate_world, write_video
from .render import layout, render_video
from .sampling import video_spec
from .spec import Expression, ObjectSpec, VideoSpec
from .vocab import ATTRIBUTES, COLOURS, HELD_OUT_PAIRS, KINDS, MIX_WEIGHTS

__all__ = [
    "ATTRIBUTES", "COLOURS", "HELD_OUT_PAIRS", "KINDS", "MIX_WEIGHTS", "Expression", "ObjectSpec", "VideoSpec",
    "generate_world", "layout", "render_video", "video_spec", "write_video",
]
