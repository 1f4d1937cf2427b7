"""The description of one generated video (:class:`VideoSpec`) and the pose of its objects over time.

A spec holds everything needed to render the video deterministically: the objects (kind, colour,
texture, radius, motion), the background and camera path, the noise, and the expressions referring to
its objects. Positions and radii are in pixels of the ``height x width`` frame; time runs over the
normalised interval ``tau = t / (T - 1)`` in ``[0, 1]`` so that motions do not depend on ``T``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Motion:
    """How an object moves over the video.

    ``start`` is the centre ``(x, y)`` at ``tau = 0``; ``shift`` the displacement ``(dx, dy)`` reached at
    ``tau = 1`` before bouncing; with ``bounce`` the centre is reflected at the frame edges. ``angle`` is
    the rotation (degrees) at ``tau = 0`` and ``turn`` the rotation added by ``tau = 1``; the scale goes
    linearly from 1 to ``scale_end``.
    """

    start: tuple[float, float]
    shift: tuple[float, float]
    bounce: bool
    angle: float
    turn: float
    scale_end: float


@dataclass(frozen=True)
class ObjectSpec:
    """One object. ``depth`` is the draw order (0 is drawn first, at the back).

    ``outline`` holds the blob's Fourier coefficients ``(amplitude, phase)`` per harmonic (empty for
    other kinds); ``shade`` is ``(angle in degrees, strength)`` of a linear lighting gradient;
    ``texture_period`` (pixels at scale 1) and ``texture_angle`` (degrees) parametrise stripes and dots.
    """

    obj_id: int
    kind: str
    colour: str
    texture: str
    radius: float
    depth: int
    motion: Motion
    outline: tuple[tuple[float, float], ...] = ()
    shade: tuple[float, float] = (0.0, 0.0)
    texture_period: float = 10.0
    texture_angle: float = 0.0


@dataclass(frozen=True)
class Background:
    """The backdrop: ``source`` is a photograph name of :mod:`train.bundled.world.backgrounds`, or ``"gradient"``
    (from ``colours[0]`` to ``colours[1]`` along ``gradient_angle`` degrees; equal colours give a plain
    background). The camera window goes linearly from ``window_start`` to ``window_end``, each
    ``(fx, fy, zoom)``: the window's position in the free range of the source (fractions in [0, 1])
    and its width as a fraction of the widest window that fits. ``tint`` multiplies the RGB channels."""

    source: str
    flip: bool
    window_start: tuple[float, float, float]
    window_end: tuple[float, float, float]
    tint: tuple[float, float, float]
    colours: tuple[tuple[int, int, int], tuple[int, int, int]] = ((128, 128, 128), (128, 128, 128))
    gradient_angle: float = 0.0


@dataclass(frozen=True)
class Expression:
    """A referring expression: its text, the object id it names and the attribute groups it uses."""

    exp: str
    obj_id: int
    attributes: tuple[str, ...]

    def as_dict(self) -> dict:
        """The ``meta_expressions.json`` entry: ``{"exp", "obj_id" (a string), "attributes"}``."""
        return {"exp": self.exp, "obj_id": str(self.obj_id), "attributes": list(self.attributes)}


@dataclass(frozen=True)
class VideoSpec:
    """Everything needed to render one video of ``num_frames`` frames of ``height x width`` pixels.

    ``objects`` are in ``obj_id`` order (ids ``1..K``); ``referred`` lists the ids of the objects with
    expressions; ``noise`` is the Gaussian noise sigma (0-255 scale) and ``blur`` the Gaussian blur sigma
    (0: none) applied to whole frames; ``render_seed`` seeds the noise.
    """

    name: str
    split: str
    seed: int
    index: int
    num_frames: int
    height: int
    width: int
    objects: tuple[ObjectSpec, ...]
    background: Background
    noise: float
    blur: float
    render_seed: int
    referred: tuple[int, ...] = ()
    expressions: tuple[Expression, ...] = ()

    @property
    def frame_names(self) -> list[str]:
        """Frame file names without extension: ``00000``, ``00005``, ..."""
        return [f"{i * 5:05d}" for i in range(self.num_frames)]

    def object(self, obj_id: int) -> ObjectSpec:
        """The object with id ``obj_id``."""
        return self.objects[obj_id - 1]


@dataclass(frozen=True)
class Pose:
    """An object's centre ``(x, y)`` in pixels, rotation in degrees and scale at one frame."""

    x: float
    y: float
    angle: float
    scale: float


def _fold(value: float, low: float, high: float) -> float:
    """``value`` reflected back and forth into ``[low, high]`` (a bounce off both walls)."""
    span = high - low
    if span <= 0:
        return value
    p = (value - low) % (2 * span)
    return low + (p if p <= span else 2 * span - p)


def taus(num_frames: int) -> np.ndarray:
    """``[T]`` normalised times ``t / (T - 1)`` (all 0 for a single frame)."""
    return np.linspace(0.0, 1.0, num_frames) if num_frames > 1 else np.zeros(1)


def pose(obj: ObjectSpec, tau: float, height: int, width: int) -> Pose:
    """The pose of ``obj`` at normalised time ``tau`` in a ``height x width`` frame."""
    m = obj.motion
    x = m.start[0] + tau * m.shift[0]
    y = m.start[1] + tau * m.shift[1]
    if m.bounce:
        margin = 0.8 * obj.radius
        x = _fold(x, margin, width - margin)
        y = _fold(y, margin, height - margin)
    scale = 1.0 + tau * (m.scale_end - 1.0)
    return Pose(x, y, m.angle + tau * m.turn, scale)


def trajectory(obj: ObjectSpec, num_frames: int, height: int, width: int) -> list[Pose]:
    """The ``T`` poses of ``obj`` over the video."""
    return [pose(obj, float(tau), height, width) for tau in taus(num_frames)]


def unit_direction(angle_deg: float) -> tuple[float, float]:
    """``(cos, sin)`` of ``angle_deg``."""
    a = math.radians(angle_deg)
    return math.cos(a), math.sin(a)
