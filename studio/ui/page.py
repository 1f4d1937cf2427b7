"""The plumbing every panel of the page shares: the tab's state, the screen's widgets and the one error path.

A panel makes its widgets, registers the ones the screen refreshes, and wires each control to one ``Studio`` call
through :meth:`Page.wire`; the call returns an ``Answer`` (view, one-line message, maybe a file) and a failure
becomes one line in the message bar and a toast, never a traceback.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from ..clicks import Clicks, draw_clicks
from ..errors import user_message
from ..projects import Answer, View
from ..screen import Display, Screen, build_screen
from ..served import ServedImages
from ..session import Studio
from ..uploads import UploadCounts

Action = Callable[..., Answer]
"""``fn(view, *inputs) -> Answer``: what a control does."""


@dataclass
class Widgets:
    """The widgets the screen refreshes, made by the panels (each sets its own)."""

    project_select: Any = None
    video_select: Any = None
    obj_select: Any = None
    expression: Any = None
    category: Any = None
    frame_slider: Any = None
    viewer: Any = None
    curve: Any = None
    status: Any = None
    message: Any = None
    filmstrip: Any = None
    candidates: Any = None
    display: list = field(default_factory=list)   # boxes, labels, threshold
    click_mode: Any = None
    open_candidates: Any = None                    # the buttons that open the candidates and the brush panels
    open_brush: Any = None


class Page:
    """One page of the studio over ``studio``; its states are per browser tab."""

    def __init__(self, studio: Studio, uploads: UploadCounts, served: ServedImages) -> None:
        self.studio = studio
        self.uploads = uploads
        self.served = served
        self.w = Widgets()
        self.view = gr.State(View())
        self.clicks = gr.State(Clicks())          # the clicks on the current frame, not yet a stored mask
        self.filmstrip_frames = gr.State([])      # the frame of each filmstrip thumbnail
        self.candidate_queries = gr.State([])     # the query of each shown candidate ([] when none are shown)
        self.playing = gr.State(False)
        self.edits: list = []                     # events that change a mask, not the view

    # ---------------------------------------------------------------------------------------------- screen
    def screen_outputs(self) -> list:
        w = self.w
        return [self.view, w.project_select, w.video_select, w.obj_select, w.expression, w.category, w.frame_slider,
                w.viewer, w.curve, w.status]

    def display(self, boxes: bool, labels: bool, threshold: float) -> Display:
        return Display(bool(boxes), bool(labels), float(threshold))

    def image(self, picture) -> str | None:
        return self.served.save(picture, "jpeg")

    def gallery(self, items: list[tuple]) -> list[tuple[str, str]]:
        return [(self.served.save(image, "jpeg"), caption) for image, caption in items]

    def show(self, screen: Screen, clicks: Clicks = Clicks()) -> list:
        """The values of :meth:`screen_outputs` for ``screen`` (the clicks of its frame drawn on the picture)."""
        v = screen.view
        picture = screen.image
        on_frame = clicks.on(v)
        if picture is not None and (on_frame.points or on_frame.box):
            picture = draw_clicks(picture, on_frame)
        return [v, gr.update(choices=screen.projects, value=v.project), gr.update(choices=screen.videos, value=v.video),
                gr.update(choices=screen.objects, value=v.obj_id), screen.expression, screen.category,
                gr.update(maximum=max(screen.frame_count - 1, 1), value=v.frame), self.image(picture),
                self.served.save(screen.curve, "png"), screen.status]

    def filmstrip_values(self, screen: Screen) -> list:
        """Thumbnails (captioned by frame number) and the frames they show."""
        return [self.gallery([(image, str(t)) for image, t in screen.filmstrip]), [t for _, t in screen.filmstrip]]

    def build(self, view: View, display: Display, filmstrip: bool = False) -> Screen:
        return build_screen(self.studio, view, display, with_filmstrip=filmstrip)

    # ---------------------------------------------------------------------------------------------- actions
    def answer(self, fn: Action, view: View, display: Display, *args, filmstrip: bool = False,
               clicks: Clicks = Clicks()) -> tuple[Screen, str]:
        """Run ``fn(view, *args)``: the screen after it and its message, or after a failure the screen as it was
        and the failure in one line (shown as a toast too)."""
        try:
            answer = fn(view, *args)
            return self.build(answer.view, display, filmstrip), answer.message
        except Exception as exc:  # every failure is one line; the page keeps working
            note = "⚠️ " + self.warn(exc)
            try:
                return self.build(view, display, filmstrip), note
            except Exception as again:
                return self.build(View(), display), note + " · " + user_message(again)

    @staticmethod
    def warn(exc: BaseException) -> str:
        text = user_message(exc)
        gr.Warning(text)
        return text

    def act(self, fn: Action, *, filmstrip: bool = False) -> Callable:
        """A handler ``(view, clicks, boxes, labels, threshold, *inputs)`` -> screen, message (and filmstrip)."""
        def handler(view: View, clicks: Clicks, boxes: bool, labels: bool, thr: float, *args):
            screen, note = self.answer(fn, view, self.display(boxes, labels, thr), *args, filmstrip=filmstrip)
            outs = self.show(screen, clicks) + [note]
            return outs + (self.filmstrip_values(screen) if filmstrip else [])
        return handler

    def redraw(self, filmstrip: bool = False) -> Callable:
        """A handler like :meth:`act`'s with no action (outputs: :meth:`redraw_outputs`), redrawing the tab's
        current view after long work that changed masks, not the view: the message stays (a failure shows as a
        toast), and so does the slider, where the user may have moved it meanwhile."""
        act = self.act(Answer, filmstrip=filmstrip)
        slider = self.screen_outputs().index(self.w.frame_slider)
        message = len(self.screen_outputs())

        def handler(view: View, clicks: Clicks, boxes: bool, labels: bool, thr: float) -> list:
            outs = act(view, clicks, boxes, labels, thr)
            outs[slider] = gr.skip()
            del outs[message]
            return outs
        return handler

    def redraw_outputs(self, filmstrip: bool = False) -> list:
        """:meth:`outputs` without the message."""
        return [out for out in self.outputs(filmstrip) if out is not self.w.message]

    def outputs(self, filmstrip: bool = False) -> list:
        return self.screen_outputs() + [self.w.message] + ([self.w.filmstrip, self.filmstrip_frames] if filmstrip
                                                            else [])

    def inputs(self, *extra) -> list:
        return [self.view, self.clicks, *self.w.display, *extra]

    def wire(self, control, fn: Action | None, inputs=(), *, filmstrip: bool = False, event: str = "click",
             handler: Callable | None = None, extra_outputs=(), **kwargs):
        """``control.<event>`` calls ``fn`` through :meth:`act` (or ``handler``, for handlers that need Gradio's
        progress or event data) with the view, the clicks, the display options and ``inputs``."""
        kwargs.setdefault("show_progress", "hidden")
        return getattr(control, event)(handler or self.act(fn, filmstrip=filmstrip), self.inputs(*inputs),
                                       self.outputs(filmstrip) + list(extra_outputs), **kwargs)
