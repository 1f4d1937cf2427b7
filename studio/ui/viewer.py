"""The frame and its review: the picture, the frame slider, the transport bar, the score curve, the filmstrip."""
from __future__ import annotations

import gradio as gr

from ..clicks import Clicks
from ..projects import Answer, View
from .page import Page
from .sidebar import Wiring


def viewer_panel(page: Page) -> Wiring:
    """The picture, the slider and the transport bar (the correction tools sit right below, see ``correct``)."""
    w = page.w
    w.message = gr.Markdown("", elem_id="message")
    w.viewer = gr.Image(label="Frame", interactive=False, format="jpeg", elem_id="viewer", height=470,
                        buttons=["download", "fullscreen"])
    w.frame_slider = gr.Slider(0, 1, value=0, step=1, label="Frame", elem_id="frame_slider")
    with gr.Row(elem_id="transport"):
        prev_frame = gr.Button("◀ Prev (←)", elem_id="prev_frame", min_width=70)
        play = gr.Button("▶ Play (space)", elem_id="play", min_width=70)
        next_frame = gr.Button("Next (→) ▶", elem_id="next_frame", min_width=70)
        reviewed = gr.Button("✓ Reviewed (r)", elem_id="mark_reviewed", variant="primary", min_width=70)
        fix = gr.Button("Needs fixing (f)", elem_id="mark_fix", min_width=70)
        unreviewed = gr.Button("Next unreviewed (u)", elem_id="next_unreviewed", min_width=70)
        low = gr.Button("Next low score (l)", elem_id="next_lowconf", min_width=70)
        undo = gr.Button("Undo (z)", elem_id="undo", min_width=60)
        redo = gr.Button("Redo (y)", elem_id="redo", min_width=60)
    timer = gr.Timer(0.2, active=False)

    def wire() -> None:
        studio = page.studio

        def slider_stays(handler):
            """The slider stays where the user moved it: an answer to an earlier goto, arriving while the keys or
            the pointer move on, must not pull it back (the next step would count from there)."""
            slider = page.screen_outputs().index(w.frame_slider)

            def answer(*args):
                outs = handler(*args)
                outs[slider] = gr.skip()
                return outs
            return answer

        page.wire(w.frame_slider, None, [w.frame_slider], api_name="goto", event="release",
                  trigger_mode="always_last", handler=slider_stays(page.act(studio.goto)))
        page.wire(prev_frame, lambda v: studio.step(v, -1), api_name="prev_frame")
        page.wire(next_frame, lambda v: studio.step(v, 1), api_name="next_frame")
        page.wire(reviewed, lambda v: studio.mark(v, "reviewed"), api_name="mark_reviewed")
        page.wire(fix, lambda v: studio.mark(v, "needs_fixing"), api_name="mark_needs_fixing")
        page.wire(unreviewed, lambda v, thr: studio.jump(v, "unreviewed", thr), [w.display[2]],
                  api_name="next_unreviewed")
        page.wire(low, lambda v, thr: studio.jump(v, "low", thr), [w.display[2]], api_name="next_low_score")
        page.edits += [page.wire(undo, studio.undo, api_name="undo", filmstrip=True),
                       page.wire(redo, studio.redo, api_name="redo", filmstrip=True)]

        def toggle_play(is_playing: bool):
            return (not is_playing, gr.Timer(active=not is_playing),
                    gr.update(value="⏸ Pause (space)" if not is_playing else "▶ Play (space)"))

        play.click(toggle_play, page.playing, [page.playing, timer, play], api_visibility="private")

        def tick(v: View, is_playing: bool, boxes: bool, labels: bool, thr: float):
            if not (is_playing and v.video):
                return [v, False, gr.Timer(active=False), "▶ Play (space)", gr.skip(), gr.skip(), gr.skip()]
            last = v.frame >= studio.project(v).video(v.video).frame_count - 1
            v = v if last else studio.step(v, 1).view
            return [v, not last, gr.Timer(active=not last), "▶ Play (space)" if last else gr.skip(),
                    gr.update(value=v.frame), page.image(studio.frame_image(v, bool(boxes), bool(labels))),
                    studio.status_line(v)]

        timer.tick(tick, [page.view, page.playing, *w.display],
                   [page.view, page.playing, timer, play, w.frame_slider, w.viewer, w.status], show_progress="hidden",
                   api_visibility="private")
    return wire


def review_panel(page: Page) -> Wiring:
    """The status line, the score curve (click to jump), display options and the filmstrip (click to jump)."""
    w = page.w
    w.status = gr.Markdown("", elem_id="status")
    gr.Markdown("**Score of the selected object per frame**: click to jump; red dots: scores below the threshold "
                "(not on frames a person made); band: green reviewed, orange needs fixing", elem_id="confidence_caption")
    w.curve = gr.Image(label="Score per frame", show_label=False, interactive=False, format="png",
                       elem_id="confidence", height=100, buttons=[])
    with gr.Row():
        w.display = [gr.Checkbox(label="Boxes", value=False, elem_id="show_boxes"),
                     gr.Checkbox(label="Labels", value=True, elem_id="show_labels"),
                     gr.Slider(0.05, 0.95, value=0.5, step=0.05, label="Low score below", elem_id="threshold")]
        mark_all = gr.Button("Mark all reviewed", elem_id="mark_all", min_width=80)
    w.filmstrip = gr.Gallery(label="Filmstrip", show_label=False, columns=12, rows=1, height=100,
                             elem_id="filmstrip", allow_preview=False)

    def wire() -> None:
        studio = page.studio
        page.wire(mark_all, lambda v: studio.mark_all(v, "reviewed"), api_name="mark_all_reviewed")

        def filmstrip_clicked(view: View, clicks: Clicks, boxes: bool, labels: bool, thr: float, frames: list[int],
                              evt: gr.SelectData):
            return page.act(lambda v: studio.goto(v, frames[evt.index]))(view, clicks, boxes, labels, thr)

        page.wire(w.filmstrip, None, [page.filmstrip_frames], handler=filmstrip_clicked, event="select",
                  api_visibility="private")

        def curve_clicked(view: View, clicks: Clicks, boxes: bool, labels: bool, thr: float, evt: gr.SelectData):
            return page.act(lambda v: studio.curve_click(v, evt.index[0]))(view, clicks, boxes, labels, thr)

        page.wire(w.curve, None, handler=curve_clicked, event="select", api_visibility="private")
        for box in w.display:
            box.change(page.act(Answer), page.inputs(), page.outputs(),
                       show_progress="hidden", api_visibility="private")
    return wire
