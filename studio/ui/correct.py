"""Correcting the selected object: clicks and a box on the frame, tracking, the model's candidates, the brush.

Click mode (``k``): the page's script turns a click (positive), a shift or right click (negative) or a drag (a
box) on the frame into a gesture sent through a hidden box; each gesture adds to the clicks of that frame and the
tracker re-draws the object's mask from all of them. Track (``t`` / ``shift+t``) follows it from there.
"""
from __future__ import annotations

import gradio as gr

from referformer_core.overlay import object_colour

from ..clicks import Clicks, parse_gesture
from ..corrections import SCOPES
from ..projects import Answer, View
from .page import Page
from .sidebar import Wiring

TRACK_FRAMES = 30
"""Frames a track covers by default on each side (unless "to the end")."""


def correct_tools(page: Page) -> Wiring:
    """The always-visible correction bar under the transport bar, and the panels it opens."""
    w = page.w
    with gr.Row(elem_id="correct_tools"):
        click_mode = gr.Checkbox(label="Click mode (k)", value=False, elem_id="click_mode", min_width=110)
        clear = gr.Button("Clear clicks", elem_id="click_clear", min_width=70)
        back = gr.Button("◀ Track (shift+t)", elem_id="track_back", min_width=80)
        both = gr.Button("◀ Track both ▶", elem_id="track_both", min_width=80)
        forward = gr.Button("Track (t) ▶", elem_id="track_fwd", variant="primary", min_width=80)
        frames = gr.Number(label="frames", value=TRACK_FRAMES, precision=0, minimum=1, elem_id="track_frames",
                           min_width=70)
        to_end = gr.Checkbox(label="to the end", value=False, elem_id="track_to_end", min_width=90)
        stop = gr.Button("Stop", elem_id="track_stop", variant="stop", min_width=60)
    with gr.Row(elem_id="correct_more"):
        show_candidates = gr.Button("Model's candidates (c)", elem_id="show_candidates", min_width=80)
        brush_load = gr.Button("Brush (e)", elem_id="brush_load", min_width=70)
        direction = gr.Radio(["forward", "backward", "both"], value="forward", label="Propagate (flow)",
                             elem_id="propagate_direction", scale=2)
        propagate_frames = gr.Number(label="frames", value=30, precision=0, minimum=1, elem_id="propagate_frames",
                                     min_width=70)
        propagate = gr.Button("Propagate (p)", elem_id="propagate", min_width=80)
    w.click_mode, w.open_candidates, w.open_brush = click_mode, show_candidates, brush_load
    gesture = gr.Textbox(visible="hidden", elem_id="gesture")
    send = gr.Button("send", visible="hidden", elem_id="gesture_send")

    def wire() -> None:
        studio = page.studio

        def clicked(view: View, clicks: Clicks, boxes: bool, labels: bool, thr: float, text: str):
            display = page.display(boxes, labels, thr)
            try:
                info = studio.project(view).video(view.video) if view.project and view.video else None
                if info is None:
                    raise ValueError("open a video first: clicks make the selected object's mask on its frame")
                more = clicks.add(view, parse_gesture(text), info.width, info.height)
                answer = studio.click(view, more.points, more.box)
                screen, note, clicks = page.build(answer.view, display), f"{answer.message} ({more.describe()})", more
            except Exception as exc:
                screen, note = page.build(view, display), "⚠️ " + page.warn(exc)
            return page.show(screen, clicks) + [note, clicks]

        page.edits.append(send.click(clicked, page.inputs(gesture), page.outputs() + [page.clicks],
                                     api_name="click", show_progress="hidden", concurrency_id="tracker"))

        def cleared(view: View, clicks: Clicks, boxes: bool, labels: bool, thr: float):
            return page.act(Answer)(view, Clicks(), boxes, labels, thr) + [Clicks()]

        clear.click(cleared, page.inputs(), page.outputs() + [page.clicks], api_name="clear_clicks",
                    show_progress="hidden")

        def run_track(way: str):
            def handler(view: View, clicks: Clicks, boxes: bool, labels: bool, thr: float, n: float, end: bool,
                        progress=gr.Progress()):
                idle = [gr.skip()] * len(page.screen_outputs())
                note = ""
                steps = None
                try:
                    steps = studio.track(view, way, None if end else int(n or TRACK_FRAMES))
                    progress((0, 1), desc=f"tracking {way}")
                    for step in steps:
                        note = step.describe()
                        progress((step.done, max(step.total, 1)), desc=note)
                        yield idle + [note, gr.skip(), gr.skip()]
                except Exception as exc:
                    note = "⚠️ " + page.warn(exc)
                finally:
                    if steps is not None:
                        steps.close()  # stopped or done: the frames made so far are stored
                yield idle + [note, gr.skip(), gr.skip()]  # the view may have moved meanwhile: redrawn after
            return handler

        inputs = page.inputs(frames, to_end)
        common = dict(concurrency_id="tracker", concurrency_limit=1, show_progress="full",
                      show_progress_on=[w.message])
        tracks = [button.click(run_track(way), inputs, page.outputs(True), api_name=f"track_{way}", **common)
                  for button, way in ((forward, "forward"), (back, "backward"), (both, "both"))]
        redraw = dict(fn=page.redraw(filmstrip=True), inputs=page.inputs(), outputs=page.redraw_outputs(True),
                      show_progress="hidden", api_visibility="private")
        page.edits += [track.then(**redraw) for track in tracks]
        stop.click(lambda: "stopped: the frames tracked so far are kept", None, w.message, cancels=tracks,
                   api_name="stop_tracking").then(**redraw)
        page.edits.append(page.wire(propagate, lambda v, d, n: studio.propagate(v, d, n),
                                    [direction, propagate_frames], api_name="propagate", filmstrip=True))
    return wire


def candidates_panel(page: Page) -> Wiring:
    """The model's other tracks for the object (opened by "Model's candidates")."""
    w = page.w
    with gr.Accordion("Model's candidates", open=False, elem_id="candidates_panel") as panel:
        with gr.Row():
            scope = gr.Radio(list(SCOPES), value=SCOPES[0], label="A pick applies to", elem_id="pick_scope", scale=2)
            until = gr.Number(label="…up to frame", value=None, precision=0, minimum=0, elem_id="pick_until",
                              min_width=90)
            click_picks = gr.Checkbox(label="Out of click mode, clicking the frame picks the candidate under it",
                                      value=True, elem_id="click_picks")
        gr.Markdown("**Candidates** (click one to use it): query · score over the video · score on this frame · ✓ the "
                    "one in use", elem_id="candidates_caption")
        w.candidates = gr.Gallery(label="Candidates", show_label=False, columns=5, rows=1, height=190,
                                  allow_preview=False, object_fit="contain", elem_id="candidates")

    def wire() -> None:
        studio = page.studio

        def listed(v: View):
            try:
                found = studio.candidates(v)
                return (page.gallery([(c.thumbnail, c.caption) for c in found]), [c.query for c in found],
                        f"{len(found)} candidates for object {v.obj_id} on frame {v.frame}", gr.Accordion(open=True))
            except Exception as exc:
                return [], [], "⚠️ " + page.warn(exc), gr.skip()

        w.open_candidates.click(listed, page.view, [w.candidates, page.candidate_queries, w.message, panel],
                                     api_name="candidates", concurrency_id="model")

        def follow(v: View, shown: list[int], is_playing: bool):
            """Shown candidates follow the frame, the object and picks (not every frame of a playback)."""
            if not shown or is_playing:
                return gr.skip(), gr.skip()
            try:
                found = studio.candidates(v)
                return page.gallery([(c.thumbnail, c.caption) for c in found]), [c.query for c in found]
            except Exception:  # e.g. another object, not segmented yet: nothing to show, no message to replace
                return [], []

        following = dict(fn=follow, inputs=[page.view, page.candidate_queries, page.playing],
                         outputs=[w.candidates, page.candidate_queries], show_progress="hidden",
                         concurrency_id="model", api_visibility="private")
        page.view.change(**following)

        def picked(view: View, clicks: Clicks, boxes: bool, labels: bool, thr: float, queries: list[int], where: str,
                   last, evt: gr.SelectData):
            return page.act(lambda v: studio.pick_candidate(v, queries[evt.index], where, last))(
                view, clicks, boxes, labels, thr)

        page.edits.append(page.wire(w.candidates, None, [page.candidate_queries, scope, until], handler=picked,
                                    event="select", api_visibility="private"))

        def frame_clicked(view: View, clicks: Clicks, boxes: bool, labels: bool, thr: float, enabled: bool,
                          picking: bool, where: str, last, evt: gr.SelectData):
            if enabled or not picking:  # in click mode the page's script sends the click to the tracker instead
                return [gr.skip()] * len(page.outputs())
            x, y = evt.index
            return page.act(lambda v: studio.pick_at(v, x, y, where, last))(view, clicks, boxes, labels, thr)

        page.edits.append(page.wire(w.viewer, None, [w.click_mode, click_picks, scope, until],
                                    handler=frame_clicked, event="select", api_visibility="private"))
        for edit in page.edits:  # the frame's mask changed, not the view: the ✓ of shown candidates may move
            edit.then(**following)
    return wire


def brush_panel(page: Page) -> Wiring:
    """The brush and eraser on the frame's mask (opened by "Brush")."""
    with gr.Accordion("Brush / eraser", open=False, elem_id="brush_panel") as panel:
        brush = gr.ImageEditor(label="Brush / eraser (paint the object; ✓ or m saves)", type="numpy", sources=[],
                               transforms=[], layers=False, elem_id="brush", height=420,
                               brush=gr.Brush(default_size=12, colors=[("#e69f00", 0.55)], color_mode="fixed"),
                               eraser=gr.Eraser(default_size=12))
        save = gr.Button("Save painted mask (m)", elem_id="brush_save", variant="primary")

    def wire() -> None:
        studio = page.studio

        def loaded(v: View):
            try:
                colour = "#%02x%02x%02x" % object_colour(v.obj_id or 1)
                editor = gr.ImageEditor(value=studio.brush_start(v), brush=gr.Brush(
                    default_size=12, colors=[(colour, 0.55)], color_mode="fixed"))
                return (editor, f"editing object {v.obj_id} on frame {v.frame}: paint or erase, then save (m)",
                        gr.Accordion(open=True))
            except Exception as exc:
                return None, "⚠️ " + page.warn(exc), gr.skip()

        page.w.open_brush.click(loaded, page.view, [brush, page.w.message, panel], api_name="brush_start")
        page.edits += [page.wire(save, studio.brush_save, [brush], api_name="brush_save"),
                       page.wire(brush, studio.brush_save, [brush], event="apply", api_visibility="private")]
    return wire
