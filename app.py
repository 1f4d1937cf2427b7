"""ReferFormer Studio in the browser: ``python app.py`` then open http://127.0.0.1:7860.

Flags and Gradio wiring only: every button calls one method of ``studio.session.Studio``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("GRADIO_TEMP_DIR", os.path.join(tempfile.gettempdir(), "referformer-studio"))

import gradio as gr  # noqa: E402  (the environment above must be set before gradio is imported)
from starlette.middleware import Middleware  # noqa: E402

from annotations.categories import YTVOS_CATEGORIES  # noqa: E402
from referformer_core.cli import gigabytes  # noqa: E402
from referformer_core.overlay import object_colour  # noqa: E402
from referformer_core.settings import DEFAULT_MAX_MEMORY  # noqa: E402
from studio.corrections import SCOPES  # noqa: E402
from studio.errors import user_message  # noqa: E402
from studio.export import FORMATS, clear_old_downloads  # noqa: E402
from studio.finetune import FinetuneOptions  # noqa: E402
from studio.media import VIDEO_SUFFIXES, ImportOptions, list_media  # noqa: E402
from studio.model import describe, startup_settings  # noqa: E402
from studio.projects import Answer, View  # noqa: E402
from studio.samples import list_samples  # noqa: E402
from studio.screen import Display, Screen, build_screen  # noqa: E402
from studio.served import ServedImages  # noqa: E402
from studio.session import Studio, StudioConfig  # noqa: E402
from studio import tracker as tracker_flags  # noqa: E402
from studio.ui_assets import CSS, HELP, SHORTCUTS_JS  # noqa: E402
from studio.uploads import CountUploads, UploadCounts  # noqa: E402

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python app.py", description="ReferFormer Studio: segment what you describe")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--checkpoint", help="ReferFormer checkpoint (.pth): an official one or one of ours "
                                             "(default: the bundled small model, which knows generated shapes only)")
    parser.add_argument("--text-encoder", help="tokenizer folder, packaged name or cached model id (default: the "
                                               "checkpoint's own, else roberta-base)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--model-short-side", type=int, help="frames are resized to this for the model (default: the "
                                                             "checkpoint's working size, else 360)")
    parser.add_argument("--max-memory", type=gigabytes, metavar="GB", default=DEFAULT_MAX_MEMORY,
                        help=f"peak memory (RSS, GiB) a segmentation on the CPU keeps to by choosing how many frames "
                             f"go through the model at once (default {DEFAULT_MAX_MEMORY:g}; 0: no budget)")
    parser.add_argument("--projects-dir", default="~/.referformer/projects", help="where projects are kept")
    parser.add_argument("--media-dir", action="append", default=[], help="folder whose videos can be opened by path")
    parser.add_argument("--auth", help="USER:PASS required to use the studio")
    parser.add_argument("--max-upload", default="2gb", help="largest upload (e.g. 500mb, 2gb)")
    parser.add_argument("--inbrowser", action="store_true", help="open the studio in the default browser")
    tracker_flags.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.auth and ":" not in args.auth:
        parser.error("--auth takes USER:PASS")
    return args


def build_app(studio: Studio, uploads: UploadCounts | None = None, served: ServedImages | None = None) -> gr.Blocks:
    """The studio's page; each handler is a thin call of ``studio``.

    ``uploads`` counts uploads (an upload is removed once every import of it is done); ``served`` writes the
    pictures the page shows (default: ``$GRADIO_TEMP_DIR/served``).
    """
    display_inputs: list[gr.components.Component] = []
    uploads = uploads or UploadCounts()
    served = served or ServedImages(Path(os.environ["GRADIO_TEMP_DIR"]) / "served")

    def gallery(items: list[tuple]) -> list[tuple[str, str]]:
        return [(served.save(image, "jpeg"), caption) for image, caption in items]

    def display(show_boxes: bool, show_labels: bool, threshold: float) -> Display:
        return Display(bool(show_boxes), bool(show_labels), float(threshold))

    with gr.Blocks(title="ReferFormer Studio", delete_cache=(3600, 24 * 3600)) as demo:
        view_state = gr.State(View())
        playing = gr.State(False)
        candidates_shown = gr.State(False)  # the candidates gallery is filled (and follows the view)
        with gr.Row(elem_id="header"):
            gr.Markdown("## ReferFormer Studio")
            gr.Markdown(f"start-up model: {describe(studio.config.model)} · {studio.tracker_line()}",
                        elem_id="model_line")
        with gr.Row():
            with gr.Column(scale=1, min_width=320, elem_id="sidebar"):
                with gr.Accordion("Project", open=True):
                    project_select = gr.Dropdown(label="Open project", choices=[], elem_id="project_select",
                                                 allow_custom_value=True)
                    with gr.Row():
                        project_name = gr.Textbox(label="New project", placeholder="name", elem_id="project_name",
                                                  scale=3)
                        project_create = gr.Button("Create", elem_id="project_create", scale=1, min_width=80)
                    samples = list_samples()
                    if samples:
                        sample_select = gr.Dropdown(label="Or try a sample video", elem_id="sample_select",
                                                    choices=[(s.title, s.name) for s in samples],
                                                    value=samples[0].name)
                        sample_open = gr.Button("Open sample", elem_id="sample_open")
                with gr.Accordion("Add a video", open=True):
                    with gr.Row():
                        stride = gr.Number(label="Every n-th frame", value=1, precision=0, minimum=1,
                                           elem_id="stride", min_width=90)
                        max_frames = gr.Number(label="Max frames", value=2000, precision=0, minimum=1,
                                               elem_id="max_frames", min_width=90)
                        short_side = gr.Number(label="Short side (px)", value=360, precision=0, minimum=64,
                                               elem_id="short_side", min_width=90)
                    upload = gr.File(label=f"Upload a video ({', '.join(VIDEO_SUFFIXES)}) or a zip of frames",
                                     file_types=list(VIDEO_SUFFIXES) + [".zip"], type="filepath", elem_id="upload")
                    with gr.Row(visible=bool(studio.config.media_dirs)):
                        media_path = gr.Dropdown(label="Or open from the media folder", allow_custom_value=True,
                                                 choices=list_media(studio.config.media_dirs), value=None,
                                                 elem_id="media_path", scale=3)
                        media_open = gr.Button("Open", elem_id="media_open", scale=1, min_width=80)
                    video_select = gr.Dropdown(label="Video", choices=[], elem_id="video_select",
                                               allow_custom_value=True)
                with gr.Accordion("Objects", open=True):
                    obj_select = gr.Dropdown(label="Object", choices=[], elem_id="obj_select", allow_custom_value=True)
                    expression = gr.Textbox(label="Referring expression", placeholder="e.g. the dog jumping over "
                                            "the fence", elem_id="obj_expression", max_lines=2)
                    category = gr.Dropdown(label="Category", choices=list(YTVOS_CATEGORIES), value="others",
                                           allow_custom_value=True, elem_id="obj_category")
                    with gr.Row():
                        obj_add = gr.Button("Add object", elem_id="obj_add", variant="primary", min_width=80)
                        obj_update = gr.Button("Save", elem_id="obj_update", min_width=60)
                        obj_delete = gr.Button("Delete", elem_id="obj_delete", variant="stop", min_width=60)
                with gr.Accordion("Segment", open=True):
                    overwrite = gr.Checkbox(label="Also replace hand-corrected frames", value=False,
                                            elem_id="overwrite_edits")
                    with gr.Row():
                        segment_obj = gr.Button("Segment object (s)", elem_id="segment_obj", variant="primary")
                        segment_all = gr.Button("Segment all", elem_id="segment_all")
                        segment_cancel = gr.Button("Stop", elem_id="segment_cancel", variant="stop", min_width=60)
                with gr.Accordion("Export", open=False):
                    export_format = gr.Radio(list(FORMATS), value="Ref-Youtube-VOS", label="Format",
                                             elem_id="export_format")
                    export_reviewed = gr.Checkbox(label="Reviewed frames only", value=False, elem_id="export_reviewed")
                    with gr.Row():
                        export_btn = gr.Button("Export zip", elem_id="export_btn")
                        preview_btn = gr.Button("Preview mp4", elem_id="preview_btn")
                    export_file = gr.File(label="Download", elem_id="export_file", interactive=False)
                with gr.Accordion("Fine-tune the model", open=False) as finetune_panel:
                    gr.Markdown("Train on this project's reviewed frames (whole videos are held out to measure "
                                "J&F), in the background; then choose the new model below.")
                    with gr.Row():
                        finetune_epochs = gr.Number(label="Epochs", value=4, precision=0, minimum=1, maximum=100,
                                                    elem_id="finetune_epochs", min_width=80)
                        finetune_start = gr.Button("Start", elem_id="finetune_start", variant="primary")
                        finetune_cancel = gr.Button("Cancel", elem_id="finetune_cancel", variant="stop")
                    finetune_status = gr.Markdown("", elem_id="finetune_status")
                    finetune_log = gr.Textbox(label="Training log", lines=5, max_lines=10, interactive=False,
                                              elem_id="finetune_log")
                    with gr.Row():
                        model_select = gr.Dropdown(label="Model for this project", choices=[],
                                                   elem_id="model_select", scale=3)
                        model_use = gr.Button("Use", elem_id="model_use", min_width=60)
            with gr.Column(scale=3):
                message = gr.Markdown("", elem_id="message")
                viewer = gr.Image(label="Frame", interactive=False, format="jpeg", elem_id="viewer", height=460,
                                  buttons=["download", "fullscreen"])
                frame_slider = gr.Slider(0, 1, value=0, step=1, label="Frame", elem_id="frame_slider")
                with gr.Row(elem_id="transport"):
                    prev_frame = gr.Button("◀ Prev (←)", elem_id="prev_frame", min_width=70)
                    play = gr.Button("▶ Play (space)", elem_id="play", min_width=70)
                    next_frame = gr.Button("Next (→) ▶", elem_id="next_frame", min_width=70)
                    mark_reviewed = gr.Button("✓ Reviewed (r)", elem_id="mark_reviewed", variant="primary",
                                              min_width=70)
                    mark_fix = gr.Button("Needs fixing (f)", elem_id="mark_fix", min_width=70)
                    next_unreviewed = gr.Button("Next unreviewed (u)", elem_id="next_unreviewed", min_width=70)
                    next_low = gr.Button("Next low score (l)", elem_id="next_lowconf", min_width=70)
                    undo = gr.Button("Undo (z)", elem_id="undo", min_width=60)
                    redo = gr.Button("Redo (y)", elem_id="redo", min_width=60)
                status = gr.Markdown("", elem_id="status")
                gr.Markdown("**Score of the selected object per frame**: click to jump; red dots: scores below "
                            "the threshold (not on frames a person chose); band: green reviewed, orange needs fixing",
                            elem_id="confidence_caption")
                curve = gr.Image(label="Score per frame", show_label=False, interactive=False, format="png",
                                 elem_id="confidence", height=130, buttons=[])
                with gr.Row():
                    show_boxes = gr.Checkbox(label="Boxes", value=False, elem_id="show_boxes")
                    show_labels = gr.Checkbox(label="Labels", value=True, elem_id="show_labels")
                    threshold = gr.Slider(0.05, 0.95, value=0.5, step=0.05, label="Low score below",
                                          elem_id="threshold")
                    mark_all = gr.Button("Mark all reviewed", elem_id="mark_all", min_width=80)
                filmstrip = gr.Gallery(label="Filmstrip", show_label=False, columns=12, rows=1, height=110,
                                       elem_id="filmstrip", allow_preview=False)
                with gr.Accordion("Correct the selected object", open=True, elem_id="correct"):
                    with gr.Row():
                        show_candidates = gr.Button("Model's candidates (c)", elem_id="show_candidates",
                                                    min_width=80)
                        pick_scope = gr.Radio(list(SCOPES), value=SCOPES[0], label="A pick applies to",
                                              elem_id="pick_scope", scale=2)
                        pick_until = gr.Number(label="…up to frame", value=None, precision=0, minimum=0,
                                               elem_id="pick_until", min_width=90)
                        click_picks = gr.Checkbox(label="Clicking the frame picks the candidate under it",
                                                  value=True, elem_id="click_picks")
                    gr.Markdown("**Candidates** (click one to use it): query · score over the video · score on "
                                "this frame · ✓ the one in use", elem_id="candidates_caption")
                    candidate_gallery = gr.Gallery(label="Candidates", show_label=False, columns=5, rows=1,
                                                   height=200, allow_preview=False, object_fit="contain",
                                                   elem_id="candidates")
                    brush = gr.ImageEditor(label="Brush / eraser (paint the object; ✓ or m saves)", type="numpy",
                                           sources=[], transforms=[], layers=False, elem_id="brush", height=420,
                                           brush=gr.Brush(default_size=12, colors=[("#e69f00", 0.55)],
                                                          color_mode="fixed"),
                                           eraser=gr.Eraser(default_size=12))
                    with gr.Row():
                        brush_load = gr.Button("Edit this frame (e)", elem_id="brush_load", min_width=80)
                        brush_save = gr.Button("Save painted mask (m)", elem_id="brush_save", variant="primary",
                                               min_width=80)
                        direction = gr.Radio(["forward", "backward", "both"], value="forward", label="Propagate",
                                             elem_id="propagate_direction", scale=2)
                        propagate_frames = gr.Number(label="frames", value=30, precision=0, minimum=1,
                                                     elem_id="propagate_frames", min_width=80)
                        propagate_btn = gr.Button("Propagate (p)", elem_id="propagate", min_width=80)
                with gr.Accordion("Keyboard shortcuts", open=False, elem_id="help"):
                    gr.Markdown(HELP)
        timer = gr.Timer(0.2, active=False)
        display_inputs = [show_boxes, show_labels, threshold]

        screen_outputs = [view_state, project_select, video_select, obj_select, expression, category, frame_slider,
                          viewer, curve, status]

        def show(screen: Screen) -> list:
            v = screen.view
            return [v, gr.update(choices=screen.projects, value=v.project),
                    gr.update(choices=screen.videos, value=v.video),
                    gr.update(choices=screen.objects, value=v.obj_id),
                    screen.expression, screen.category,
                    gr.update(maximum=max(screen.frame_count - 1, 1), value=v.frame),
                    served.save(screen.image, "jpeg"), served.save(screen.curve, "png"), screen.status]

        def refresh(view: View, boxes: bool, labels: bool, thr: float) -> list:
            return show(build_screen(studio, view, display(boxes, labels, thr)))

        def failed(exc: Exception) -> str:
            """The one error path: a toast and the message line both say ``exc`` in one line."""
            gr.Warning(user_message(exc))
            return "⚠️ " + user_message(exc)

        def act(fn, *, filmstrip_too: bool = False):
            """Handler: ``fn(view, *args) -> Answer``; errors become one line, nothing breaks."""
            def handler(view: View, boxes: bool, labels: bool, thr: float, *args):
                try:
                    answer = fn(view, *args)
                    view, note = answer.view, answer.message
                    screen = build_screen(studio, view, display(boxes, labels, thr), with_filmstrip=filmstrip_too)
                except Exception as exc:  # every failure is shown as one line; the page keeps working
                    note = failed(exc)
                    try:
                        screen = build_screen(studio, view, display(boxes, labels, thr), with_filmstrip=filmstrip_too)
                    except Exception as again:
                        screen = build_screen(studio, View(), display(boxes, labels, thr))
                        note += " · " + user_message(again)
                outs = show(screen) + [note]
                if filmstrip_too:
                    outs.append(gallery(screen.filmstrip))
                return outs
            return handler

        def wire(button, fn, inputs=(), *, filmstrip_too=False, api_name=None, event="click", handler=None,
                 **kwargs):
            """``button.<event>`` calls ``fn`` through :func:`act` (or the given ``handler``, for handlers that
            need Gradio's progress or event data) with the view, the display options and ``inputs``."""
            outputs = screen_outputs + [message] + ([filmstrip] if filmstrip_too else [])
            kwargs.setdefault("show_progress", "hidden")
            return getattr(button, event)(handler or act(fn, filmstrip_too=filmstrip_too),
                                          [view_state, *display_inputs, *inputs], outputs, api_name=api_name,
                                          **kwargs)

        # projects
        def create_project(view: View, boxes: bool, labels: bool, thr: float, name: str) -> list:
            outs = act(lambda v, n: studio.create_project(n), filmstrip_too=True)(view, boxes, labels, thr, name)
            return outs + ["" if outs[0].project != view.project else name]  # the name box clears once created

        project_create.click(create_project, [view_state, *display_inputs, project_name],
                             screen_outputs + [message, filmstrip, project_name], api_name="create_project",
                             show_progress="hidden")
        if samples:
            wire(sample_open, lambda v, name: studio.open_sample(name), [sample_select], filmstrip_too=True,
                 api_name="open_sample")
        wire(project_select, lambda v, name: Answer(v) if name == v.project else studio.open_project(name),
             [project_select], filmstrip_too=True, api_name="open_project", event="input")
        wire(video_select, lambda v, name: Answer(v) if name == v.video else studio.select_video(v, name),
             [video_select], filmstrip_too=True, api_name="select_video", event="input")

        # media
        def import_upload(view: View, boxes: bool, labels: bool, thr: float, path, n: int, most: int, side: int,
                          progress=gr.Progress()):
            def run(v: View):
                if not path:
                    return Answer(v)
                try:
                    return studio.import_file(v, path, ImportOptions(n, most, side),
                                              progress=lambda d, t: progress((d, t), desc="importing frames"))
                finally:
                    uploads.release(path)
            return act(run, filmstrip_too=True)(view, boxes, labels, thr)

        wire(upload, None, [upload, stride, max_frames, short_side], filmstrip_too=True, handler=import_upload,
             api_name="import_video", event="upload", concurrency_id="import", show_progress="full",
             show_progress_on=[message]).then(lambda: None, None, upload, api_visibility="private")
        wire(media_open, lambda v, p, n, most, side: studio.import_media_path(v, p, ImportOptions(n, most, side)),
             [media_path, stride, max_frames, short_side], filmstrip_too=True, api_name="import_path",
             concurrency_id="import")

        # objects
        wire(obj_add, studio.add_object, [expression, category], api_name="add_object")
        wire(obj_update, studio.update_object, [expression, category], api_name="update_object")
        wire(obj_delete, studio.delete_object, api_name="delete_object")
        wire(obj_select, studio.select_object, [obj_select], api_name="select_object", event="input")

        # model
        def run_segment(all_objects: bool):
            def handler(view: View, boxes: bool, labels: bool, thr: float, overwrite_edits: bool,
                        progress=gr.Progress()):
                opts = display(boxes, labels, thr)
                try:
                    progress((0, 1), desc="loading the model and frames")
                    start_frame = view.frame
                    done = 0
                    for step in studio.segment(view, all_objects, overwrite_edits):
                        if not step.final:  # follow the masks as they arrive
                            view = studio.goto(view, step.last_frames.start).view
                        done = step.total
                        progress((step.done, step.total), desc=step.describe())
                        yield show(build_screen(studio, view, opts)) + [step.describe(), [], False, gr.skip()]
                    view = studio.goto(view, start_frame).view
                    screen = build_screen(studio, view, opts, with_filmstrip=True)
                    yield show(screen) + [f"✅ done: {done} frame{'s' if done != 1 else ''} segmented", [], False,
                                          gallery(screen.filmstrip)]
                except Exception as exc:
                    note = failed(exc)
                    screen = build_screen(studio, view, opts, with_filmstrip=True)
                    yield show(screen) + [note, [], False, gallery(screen.filmstrip)]
            return handler

        seg_inputs = [view_state, *display_inputs, overwrite]
        seg_outputs = screen_outputs + [message, candidate_gallery, candidates_shown, filmstrip]  # outdates candidates
        seg_one = segment_obj.click(run_segment(False), seg_inputs, seg_outputs, api_name="segment",
                                    concurrency_id="model", concurrency_limit=1, show_progress="full",
                                    show_progress_on=[message])
        seg_many = segment_all.click(run_segment(True), seg_inputs, seg_outputs, api_name="segment_all",
                                     concurrency_id="model", concurrency_limit=1, show_progress="full",
                                     show_progress_on=[message])
        segment_cancel.click(lambda: "stopped: the frames done so far are kept", None, message,
                             cancels=[seg_one, seg_many], api_name="stop")

        # review
        def slider_stays(handler):
            """The slider stays where the user moved it: an answer to an earlier goto, arriving while the keys or the
            pointer move on, must not pull it back (the next step would count from there)."""
            def answer(*args):
                outs = handler(*args)
                outs[screen_outputs.index(frame_slider)] = gr.skip()
                return outs
            return answer

        wire(frame_slider, None, [frame_slider], api_name="goto", event="release", trigger_mode="always_last",
             handler=slider_stays(act(studio.goto)))  # a release while one is answered is kept
        wire(prev_frame, lambda v: studio.step(v, -1), api_name="prev_frame")
        wire(next_frame, lambda v: studio.step(v, 1), api_name="next_frame")
        wire(mark_reviewed, lambda v: studio.mark(v, "reviewed"), api_name="mark_reviewed")
        wire(mark_fix, lambda v: studio.mark(v, "needs_fixing"), api_name="mark_needs_fixing")
        wire(mark_all, lambda v: studio.mark_all(v, "reviewed"), api_name="mark_all_reviewed")
        wire(next_unreviewed, lambda v, thr: studio.jump(v, "unreviewed", thr), [threshold],
             api_name="next_unreviewed")
        wire(next_low, lambda v, thr: studio.jump(v, "low", thr), [threshold], api_name="next_low_score")
        def filmstrip_clicked(view: View, boxes: bool, labels: bool, thr: float, evt: gr.SelectData):
            return act(lambda v: studio.goto(v, int(str(evt.value["caption"]))))(view, boxes, labels, thr)

        wire(filmstrip, None, handler=filmstrip_clicked, event="select", api_visibility="private")
        mask_edits = [wire(undo, studio.undo, api_name="undo", filmstrip_too=True),
                      wire(redo, studio.redo, api_name="redo", filmstrip_too=True)]
        for box in display_inputs:
            box.change(refresh, [view_state, *display_inputs], screen_outputs, show_progress="hidden",
                       api_visibility="private")

        def curve_clicked(view: View, boxes: bool, labels: bool, thr: float, evt: gr.SelectData):
            return act(lambda v: studio.curve_click(v, evt.index[0]))(view, boxes, labels, thr)

        wire(curve, None, handler=curve_clicked, event="select", api_visibility="private")

        def toggle_play(is_playing: bool):
            return (not is_playing, gr.Timer(active=not is_playing),
                    gr.update(value="⏸ Pause (space)" if not is_playing else "▶ Play (space)"))

        play.click(toggle_play, playing, [playing, timer, play], api_visibility="private")

        def tick(v: View, is_playing: bool, boxes: bool, labels: bool, thr: float):
            if not (is_playing and v.video):
                return [v, False, gr.Timer(active=False), "▶ Play (space)", gr.skip(), gr.skip(), gr.skip()]
            last = v.frame >= studio.project(v).video(v.video).frame_count - 1
            v = v if last else studio.step(v, 1).view
            opts = display(boxes, labels, thr)
            return [v, not last, gr.Timer(active=not last), "▶ Play (space)" if last else gr.skip(),
                    gr.update(value=v.frame), served.save(studio.frame_image(v, opts.show_boxes, opts.show_labels)),
                    studio.status_line(v)]

        timer.tick(tick, [view_state, playing, *display_inputs],
                   [view_state, playing, timer, play, frame_slider, viewer, status], show_progress="hidden",
                   api_visibility="private")

        # corrections
        def list_candidates(v: View):
            try:
                found = studio.candidates(v)
                return (gallery([(c.thumbnail, c.caption) for c in found]),
                        f"{len(found)} candidates for object {v.obj_id} on frame {v.frame}", True)
            except Exception as exc:
                return [], failed(exc), False

        show_candidates.click(list_candidates, view_state, [candidate_gallery, message, candidates_shown],
                              api_name="candidates", concurrency_id="model")

        def follow_candidates(v: View, shown: bool, is_playing: bool):
            """Shown candidates follow the frame, the object and picks (not every frame of a playback)."""
            if not shown or is_playing:
                return gr.skip(), gr.skip()
            try:
                return gallery([(c.thumbnail, c.caption) for c in studio.candidates(v)]), True
            except Exception:  # e.g. another object, not segmented yet: nothing to show, no message to replace
                return [], False

        follow = dict(fn=follow_candidates, inputs=[view_state, candidates_shown, playing],
                      outputs=[candidate_gallery, candidates_shown], show_progress="hidden", concurrency_id="model")
        view_state.change(**follow, api_visibility="private")

        def candidate_clicked(view: View, boxes: bool, labels: bool, thr: float, scope: str, until,
                              evt: gr.SelectData):
            query = int(str(evt.value["caption"]).split()[1])
            return act(lambda v: studio.pick_candidate(v, query, scope, until))(view, boxes, labels, thr)

        mask_edits.append(wire(candidate_gallery, None, [pick_scope, pick_until], handler=candidate_clicked,
                               event="select", api_visibility="private"))

        def viewer_clicked(view: View, boxes: bool, labels: bool, thr: float, enabled: bool, scope: str, until,
                           evt: gr.SelectData):
            if not enabled:
                return act(Answer)(view, boxes, labels, thr)
            x, y = evt.index
            return act(lambda v: studio.pick_at(v, x, y, scope, until))(view, boxes, labels, thr)

        mask_edits.append(wire(viewer, None, [click_picks, pick_scope, pick_until], handler=viewer_clicked,
                               event="select", api_visibility="private"))

        def load_brush(v: View):
            try:
                colour = "#%02x%02x%02x" % object_colour(v.obj_id or 1)
                editor = gr.ImageEditor(value=studio.brush_start(v), brush=gr.Brush(
                    default_size=12, colors=[(colour, 0.55)], color_mode="fixed"))
                return editor, f"editing object {v.obj_id} on frame {v.frame}: paint or erase, then save (m)"
            except Exception as exc:
                return None, failed(exc)

        brush_load.click(load_brush, view_state, [brush, message], api_name="brush_start")
        mask_edits += [
            wire(brush_save, studio.brush_save, [brush], api_name="brush_save"),
            wire(brush, studio.brush_save, [brush], event="apply", api_visibility="private"),
            wire(propagate_btn, studio.propagate, [direction, propagate_frames], api_name="propagate",
                 filmstrip_too=True)]
        for edit in mask_edits:  # the frame's mask changed, not the view: the ✓ of shown candidates may move
            edit.then(**follow, api_visibility="private")

        # fine-tuning
        finetune_timer = gr.Timer(2.0, active=False)

        def finetune_panel_state(v: View):
            status = studio.finetune_status(v)
            spec = studio.model_settings(v)
            choices = studio.model_choices(v)
            running = status is not None and status.state == "running"
            text = "" if status is None else f"**{status.state}** · {status.progress:.0%} · {status.message}"
            return (text, "" if status is None else status.log_tail,
                    gr.update(choices=[(label, path) for label, path in choices], value=spec.checkpoint),
                    gr.Timer(active=running))

        finetune_outputs = [finetune_status, finetune_log, model_select, finetune_timer]

        def start_finetune(v: View, epochs: float):
            try:
                note = studio.finetune_start(v, FinetuneOptions(epochs=int(epochs or 1))).message
            except Exception as exc:
                note = failed(exc)
            return [*finetune_panel_state(v), note]

        def cancel_finetune(v: View):
            try:
                note = studio.finetune_cancel(v).message
            except Exception as exc:
                note = failed(exc)
            return [*finetune_panel_state(v), note]

        finetune_start.click(start_finetune, [view_state, finetune_epochs], finetune_outputs + [message],
                             api_name="finetune_start", concurrency_id="finetune")
        finetune_cancel.click(cancel_finetune, view_state, finetune_outputs + [message], api_name="finetune_cancel")
        finetune_timer.tick(finetune_panel_state, view_state, finetune_outputs, show_progress="hidden",
                            api_visibility="private")
        finetune_panel.expand(finetune_panel_state, view_state, finetune_outputs, show_progress="hidden",
                              api_name="finetune_status")
        wire(model_use, studio.select_model, [model_select], api_name="select_model")

        # export
        def download(fn):
            """Handler of a button that writes a file: ``fn(view, *args) -> Answer`` with its ``file``."""
            def handler(v: View, *args):
                try:
                    answer = fn(v, *args)
                    return str(answer.file), "✅ " + answer.message
                except Exception as exc:
                    return None, failed(exc)
            return handler

        def do_export(v: View, fmt: str, reviewed: bool):
            return download(studio.export)(v, fmt, bool(reviewed))

        def do_preview(v: View, boxes: bool):
            return download(studio.preview)(v, bool(boxes))

        export_btn.click(do_export, [view_state, export_format, export_reviewed], [export_file, message],
                         api_name="export", concurrency_id="export")
        preview_btn.click(do_preview, [view_state, show_boxes], [export_file, message], api_name="preview",
                          concurrency_id="export")

        demo.load(act(studio.resume, filmstrip_too=True), [view_state, *display_inputs],
                  screen_outputs + [message, filmstrip], api_visibility="private")
    return demo


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    projects_dir = Path(args.projects_dir).expanduser()
    downloads = Path(os.environ["GRADIO_TEMP_DIR"]) / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    clear_old_downloads(downloads)
    spec = startup_settings(args.checkpoint, args.text_encoder, args.device, args.model_short_side, args.max_memory)
    studio = Studio(StudioConfig(projects_dir, downloads, spec, tuple(Path(d) for d in args.media_dir)))
    try:
        print(studio.use_tracker(tracker_flags.settings_from_args(args, args.device)), file=sys.stderr)
    except Exception as exc:  # a tracker that cannot load leaves GrabCut active; everything else keeps working
        print(f"warning: {user_message(exc)}; using GrabCut instead", file=sys.stderr)
    if args.host not in LOOPBACK and not args.auth:
        print(f"warning: serving on {args.host} without --auth: anyone who can reach this machine can read and "
              f"change your projects", file=sys.stderr)
    auth = tuple(args.auth.split(":", 1)) if args.auth else None
    uploads = UploadCounts()
    demo = build_app(studio, uploads)
    demo.queue(default_concurrency_limit=4)
    demo.launch(server_name=args.host, server_port=args.port, auth=auth, inbrowser=args.inbrowser,
                max_file_size=args.max_upload, allowed_paths=[str(downloads)], footer_links=["api"],
                theme=gr.themes.Soft(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]),
                css=CSS, js=SHORTCUTS_JS, show_error=False,
                app_kwargs={"middleware": [Middleware(CountUploads, counts=uploads)]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
