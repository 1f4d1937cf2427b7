"""What the studio's main screen shows for a ``View``: choices, the current object's fields, the pictures."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .projects import View
from .review import LOW_CONFIDENCE
from .session import Studio


@dataclass
class Screen:
    """Everything the widgets display for one view (``objects``: (label, obj_id) pairs)."""

    view: View
    projects: list[str]
    videos: list[str]
    objects: list[tuple[str, int]]
    expression: str = ""
    category: str = "others"
    frame_count: int = 1
    image: np.ndarray | None = None
    curve: np.ndarray | None = None
    status: str = ""
    filmstrip: list[tuple[np.ndarray, int]] = field(default_factory=list)  # (thumbnail, frame)


FIRST_STATUS = "create a project, open one, or try a sample video to start"
"""The status line before a project is open."""


@dataclass(frozen=True)
class Display:
    """Display options of a tab: boxes and labels on the masks, the low-confidence threshold."""

    show_boxes: bool = False
    show_labels: bool = True
    threshold: float = LOW_CONFIDENCE


def build_screen(studio: Studio, view: View, display: Display = Display(), with_filmstrip: bool = False) -> Screen:
    """The screen for ``view``; the filmstrip only when asked (it is re-drawn when the video changes)."""
    projects = studio.library.names()
    if not view.project:
        return Screen(view, projects, [], [], status=FIRST_STATUS)
    project = studio.project(view)
    videos = [v.name for v in project.videos()]
    objects = studio.objects(view)
    current = next((o for o in objects if o.obj_id == view.obj_id), None)
    return Screen(
        view=view,
        projects=projects,
        videos=videos,
        objects=[(object_label(o.obj_id, o.category, o.expressions), o.obj_id) for o in objects],
        expression=current.expressions[0] if current and current.expressions else "",
        category=current.category if current else "others",
        frame_count=project.video(view.video).frame_count if view.video else 1,
        image=studio.frame_image(view, display.show_boxes, display.show_labels),
        curve=studio.curve_image(view, display.threshold),
        status=studio.status_line(view),
        filmstrip=studio.filmstrip(view) if with_filmstrip else [],
    )


def object_label(obj_id: int, category: str, expressions: tuple[str, ...]) -> str:
    """e.g. ``1 · person · the man in a red coat`` (long expressions shortened)."""
    text = expressions[0] if expressions else "(no expression)"
    text = text if len(text) <= 48 else text[:47] + "…"
    return f"{obj_id} · {category} · {text}"
