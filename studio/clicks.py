"""The clicks a person has put on one frame for one object, before the tracker turns them into a mask.

The page sends each pointer gesture on the frame as a :class:`Gesture` (a click, a shift/right click, or a drag)
in fractions of the shown picture; :meth:`Clicks.add` turns it into frame pixels and keeps every click of the
current (project, video, object, frame): each further click refines the same mask, another frame or object
starts afresh. What is kept is only what is on screen, as the design asks: nothing here is stored.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace

import cv2
import numpy as np

from .errors import StudioError
from .projects import View

MIN_DRAG = 0.01
"""A gesture moving less than this fraction of the frame is a click, more is a box."""


@dataclass(frozen=True)
class Gesture:
    """One pointer gesture on the frame: from ``(x0, y0)`` to ``(x1, y1)`` in fractions of the picture
    ([0, 1] inside it), ``positive`` False for a shift-click or a right click."""

    x0: float
    y0: float
    x1: float
    y1: float
    positive: bool = True

    @property
    def is_box(self) -> bool:
        return max(abs(self.x1 - self.x0), abs(self.y1 - self.y0)) >= MIN_DRAG


def parse_gesture(text: str) -> Gesture:
    """The page's JSON ``{"x0", "y0", "x1", "y1", "positive"}`` as a :class:`Gesture`; one line when malformed."""
    try:
        data = json.loads(text)
        return Gesture(float(data["x0"]), float(data["y0"]), float(data.get("x1", data["x0"])),
                       float(data.get("y1", data["y0"])), bool(data.get("positive", True)))
    except (ValueError, TypeError, KeyError) as exc:
        raise StudioError(f"could not read the click ({exc.__class__.__name__}): click on the frame again") from None


@dataclass(frozen=True)
class Clicks:
    """Clicks ``(x, y, positive)`` and the box ``(x0, y0, x1, y1)``, in frame pixels, of one object on one frame
    (``key``: project, video, object, frame)."""

    key: tuple = ()
    points: tuple[tuple[float, float, bool], ...] = ()
    box: tuple[float, float, float, float] | None = None

    def on(self, view: View) -> Clicks:
        """These clicks if they belong to ``view``'s object and frame, else none."""
        key = (view.project, view.video, view.obj_id, view.frame)
        return self if self.key == key else Clicks(key)

    def add(self, view: View, gesture: Gesture, width: int, height: int) -> Clicks:
        """The clicks of ``view`` plus ``gesture`` on its ``width`` x ``height`` frame: a drag replaces the box,
        a click adds a point. A click outside the frame is refused with one line."""
        if view.obj_id is None:
            raise StudioError("select or add an object first: clicks make the selected object's mask")
        clicks = self.on(view)
        if gesture.is_box:
            box = (gesture.x0 * width, gesture.y0 * height, gesture.x1 * width, gesture.y1 * height)
            return replace(clicks, box=box)
        if not (0 <= gesture.x0 <= 1 and 0 <= gesture.y0 <= 1):
            raise StudioError("the click is outside the frame: click on the object in the picture")
        x = min(gesture.x0 * width, width - 1.0)
        y = min(gesture.y0 * height, height - 1.0)
        return replace(clicks, points=clicks.points + ((x, y, gesture.positive),))

    def describe(self) -> str:
        """e.g. ``2 positive, 1 negative click(s), a box``."""
        positive = sum(p for _, _, p in self.points)
        parts = [f"{positive} positive, {len(self.points) - positive} negative click(s)"] if self.points else []
        return ", ".join(parts + (["a box"] if self.box else [])) or "no clicks"


def draw_clicks(image: np.ndarray, clicks: Clicks) -> np.ndarray:
    """``image`` ``[H, W, 3]`` uint8 with the clicks drawn (green +, red -) and the box (a white frame)."""
    if not clicks.points and clicks.box is None:
        return image
    out = image.copy()
    radius = max(3, round(min(image.shape[:2]) / 90))
    if clicks.box is not None:
        x0, y0, x1, y1 = (int(round(v)) for v in clicks.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), (255, 255, 255), max(1, radius // 2), cv2.LINE_AA)
    for x, y, positive in clicks.points:
        centre = (int(round(x)), int(round(y)))
        cv2.circle(out, centre, radius + 1, (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(out, centre, radius, (40, 200, 60) if positive else (220, 40, 40), -1, cv2.LINE_AA)
    return out
