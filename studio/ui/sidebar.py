"""The sidebar's panels: project, video, objects, segment, export, fine-tune. Each makes its widgets and returns
the function that wires them (called once every widget of the page exists)."""
from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from annotations.categories import YTVOS_CATEGORIES

from ..clicks import Clicks
from ..export import FORMATS
from ..finetune import FinetuneOptions
from ..media import VIDEO_SUFFIXES, ImportOptions, list_media
from ..projects import Answer, View
from ..samples import list_samples
from .page import Page

Wiring = Callable[[], None]


def project_panel(page: Page) -> Wiring:
    studio = page.studio
    with gr.Accordion("Project and video", open=True):
        with gr.Row():
            page.w.project_select = gr.Dropdown(label="Open project", choices=[], elem_id="project_select",
                                                allow_custom_value=True, scale=3)
            name = gr.Textbox(label="New project", placeholder="name", elem_id="project_name", scale=2)
            create = gr.Button("Create", elem_id="project_create", scale=1, min_width=70)
        samples = list_samples()
        with gr.Row(visible=bool(samples)):
            sample = gr.Dropdown(label="Or try a sample video", elem_id="sample_select", scale=3,
                                 choices=[(s.title, s.name) for s in samples],
                                 value=samples[0].name if samples else None)
            sample_open = gr.Button("Open sample", elem_id="sample_open", scale=1, min_width=70)
        with gr.Row():
            page.w.video_select = gr.Dropdown(label="Video", choices=[], elem_id="video_select",
                                              allow_custom_value=True, scale=3)
            remove = gr.Button("Remove video", elem_id="video_remove", variant="stop", scale=1, min_width=70)

    def wire() -> None:
        def create_project(view: View, clicks: Clicks, boxes: bool, labels: bool, thr: float, text: str) -> list:
            outs = page.act(lambda v, n: studio.create_project(n), filmstrip=True)(view, clicks, boxes, labels, thr,
                                                                                    text)
            return outs + ["" if outs[0].project != view.project else text]  # the name box clears once created

        create.click(create_project, page.inputs(name), page.outputs(True) + [name], api_name="create_project",
                     show_progress="hidden")
        page.wire(sample_open, lambda v, n: studio.open_sample(n), [sample], filmstrip=True, api_name="open_sample")
        page.wire(page.w.project_select, lambda v, n: Answer(v) if n == v.project else studio.open_project(n),
                  [page.w.project_select], filmstrip=True, api_name="open_project", event="input")
        page.wire(page.w.video_select, lambda v, n: Answer(v) if n == v.video else studio.select_video(v, n),
                  [page.w.video_select], filmstrip=True, api_name="select_video", event="input")
        page.wire(remove, studio.remove_video, filmstrip=True, api_name="remove_video")
    return wire


def video_panel(page: Page) -> Wiring:
    """Import a video: upload, or open one from the media folders."""
    studio = page.studio
    with gr.Accordion("Add a video", open=True, elem_id="add_video"):
        with gr.Row():
            stride = gr.Number(label="Every n-th frame", value=1, precision=0, minimum=1, elem_id="stride",
                               min_width=80)
            max_frames = gr.Number(label="Max frames", value=2000, precision=0, minimum=1, elem_id="max_frames",
                                   min_width=80)
            short_side = gr.Number(label="Short side (px)", value=ImportOptions().short_side, precision=0,
                                   minimum=64, elem_id="short_side", min_width=80)
        upload = gr.File(label=f"Upload a video ({', '.join(VIDEO_SUFFIXES)}) or a zip of frames", height=90,
                         file_types=list(VIDEO_SUFFIXES) + [".zip"], type="filepath", elem_id="upload")
        with gr.Row(visible=bool(studio.config.media_dirs)):
            media_path = gr.Dropdown(label="Or open from the media folder", allow_custom_value=True,
                                     choices=list_media(studio.config.media_dirs), value=None,
                                     elem_id="media_path", scale=3)
            media_open = gr.Button("Open", elem_id="media_open", scale=1, min_width=70)

    def wire() -> None:
        def import_upload(view: View, clicks: Clicks, boxes: bool, labels: bool, thr: float, path, n: int, most: int,
                          side: int, progress=gr.Progress()):
            def run(v: View) -> Answer:
                if not path:
                    return Answer(v)
                try:
                    return studio.import_file(v, path, ImportOptions(n, most, side),
                                              progress=lambda d, t: progress((d, t), desc="importing frames"))
                finally:
                    page.uploads.release(path)
            return page.act(run, filmstrip=True)(view, clicks, boxes, labels, thr)

        page.wire(upload, None, [upload, stride, max_frames, short_side], filmstrip=True, handler=import_upload,
                  api_name="import_video", event="upload", concurrency_id="import", show_progress="full",
                  show_progress_on=[page.w.message]).then(lambda: None, None, upload, api_visibility="private")
        page.wire(media_open, lambda v, p, n, most, side: studio.import_media_path(v, p, ImportOptions(n, most, side)),
                  [media_path, stride, max_frames, short_side], filmstrip=True, api_name="import_path",
                  concurrency_id="import")
    return wire


def objects_panel(page: Page) -> Wiring:
    studio = page.studio
    with gr.Accordion("Objects", open=True):
        page.w.obj_select = gr.Dropdown(label="Object", choices=[], elem_id="obj_select", allow_custom_value=True)
        with gr.Row():
            page.w.expression = gr.Textbox(label="Referring expression", placeholder="e.g. the dog jumping over the "
                                           "fence", elem_id="obj_expression", max_lines=2, scale=3)
            page.w.category = gr.Dropdown(label="Category", choices=list(YTVOS_CATEGORIES), value="others",
                                          allow_custom_value=True, elem_id="obj_category", scale=2, min_width=100)
        with gr.Row():
            add = gr.Button("Add object", elem_id="obj_add", variant="primary", min_width=80)
            update = gr.Button("Save", elem_id="obj_update", min_width=60)
            delete = gr.Button("Delete", elem_id="obj_delete", variant="stop", min_width=60)

    def wire() -> None:
        fields = [page.w.expression, page.w.category]
        page.wire(add, lambda v, text, cat: studio.add_object(v, text, cat), fields, api_name="add_object")
        page.wire(update, lambda v, text, cat: studio.update_object(v, text, cat), fields, api_name="update_object")
        page.wire(delete, studio.delete_object, api_name="delete_object")
        page.wire(page.w.obj_select, studio.select_object, [page.w.obj_select], api_name="select_object",
                  event="input")
    return wire


def segment_panel(page: Page) -> Wiring:
    """Segment with ReferFormer, then (optionally) let the tracker re-draw the model's frames."""
    studio = page.studio
    with gr.Accordion("Segment", open=True):
        with gr.Row():
            overwrite = gr.Checkbox(label="Also replace hand-corrected frames", value=False, elem_id="overwrite_edits")
            refine = gr.Checkbox(label="Then refine with the tracker", value=False, elem_id="refine_with_tracker")
        with gr.Row():
            one = gr.Button("Segment object (s)", elem_id="segment_obj", variant="primary")
            many = gr.Button("Segment all", elem_id="segment_all")
            stop = gr.Button("Stop", elem_id="segment_cancel", variant="stop", min_width=60)

    def wire() -> None:
        def run(all_objects: bool):
            def handler(view: View, clicks: Clicks, boxes: bool, labels: bool, thr: float, overwrite_edits: bool,
                        refine_after: bool, progress=gr.Progress()):
                display = page.display(boxes, labels, thr)
                no_candidates = [[], gr.skip()]
                try:
                    progress((0, 1), desc="loading the model and frames")
                    start, done = view.frame, 0
                    for step in studio.segment(view, all_objects, overwrite_edits):
                        if not step.final:  # follow the masks as they arrive
                            view = studio.goto(view, step.last_frames.start).view
                        done = step.total
                        progress((step.done, step.total), desc=step.describe())
                        yield page.show(page.build(view, display)) + [step.describe(), *no_candidates, gr.skip(),
                                                                      gr.skip()]
                    note = f"✅ done: {done} frame{'s' if done != 1 else ''} segmented"
                    view = studio.goto(view, start).view
                    if refine_after:
                        progress((0, 1), desc="refining with the tracker")
                        note += " · " + studio.refine(view, all_objects).message
                except Exception as exc:
                    note = "⚠️ " + page.warn(exc)
                screen = page.build(view, display, filmstrip=True)
                yield page.show(screen) + [note, *no_candidates, *page.filmstrip_values(screen)]
            return handler

        inputs = page.inputs(overwrite, refine)
        outputs = page.screen_outputs() + [page.w.message, page.w.candidates, page.candidate_queries, page.w.filmstrip,
                                           page.filmstrip_frames]  # a run outdates shown candidates
        common = dict(concurrency_id="model", concurrency_limit=1, show_progress="full",
                      show_progress_on=[page.w.message])
        runs = [one.click(run(False), inputs, outputs, api_name="segment", **common),
                many.click(run(True), inputs, outputs, api_name="segment_all", **common)]
        stop.click(lambda: "stopped: the frames done so far are kept", None, page.w.message, cancels=runs,
                   api_name="stop")
    return wire


def export_panel(page: Page) -> Wiring:
    studio = page.studio
    with gr.Accordion("Export", open=False):
        fmt = gr.Radio(list(FORMATS), value="Ref-Youtube-VOS", label="Format", elem_id="export_format")
        reviewed = gr.Checkbox(label="Reviewed frames only", value=False, elem_id="export_reviewed")
        with gr.Row():
            export = gr.Button("Export zip", elem_id="export_btn")
            preview = gr.Button("Preview mp4", elem_id="preview_btn")
        file = gr.File(label="Download", elem_id="export_file", interactive=False)

    def wire() -> None:
        def download(run: Callable[[], Answer]) -> tuple[str | None, str]:
            try:
                answer = run()
                return str(answer.file), "✅ " + answer.message
            except Exception as exc:
                return None, "⚠️ " + page.warn(exc)

        def export_zip(view: View, fmt: str, reviewed: bool):
            return download(lambda: studio.export(view, fmt, bool(reviewed)))

        def preview_mp4(view: View, boxes: bool):
            return download(lambda: studio.preview(view, bool(boxes)))

        export.click(export_zip, [page.view, fmt, reviewed], [file, page.w.message], api_name="export",
                     concurrency_id="export")
        preview.click(preview_mp4, [page.view, page.w.display[0]], [file, page.w.message], api_name="preview",
                      concurrency_id="export")
    return wire


def finetune_panel(page: Page) -> Wiring:
    studio = page.studio
    with gr.Accordion("Fine-tune the model", open=False) as panel:
        gr.Markdown("Train on this project's reviewed frames (whole videos are held out to measure J&F), in the "
                    "background; then choose the new model below.")
        with gr.Row():
            epochs = gr.Number(label="Epochs", value=4, precision=0, minimum=1, maximum=100, elem_id="finetune_epochs",
                               min_width=80)
            start = gr.Button("Start", elem_id="finetune_start", variant="primary")
            cancel = gr.Button("Cancel", elem_id="finetune_cancel", variant="stop")
        status = gr.Markdown("", elem_id="finetune_status")
        log = gr.Textbox(label="Training log", lines=5, max_lines=10, interactive=False, elem_id="finetune_log")
        with gr.Row():
            model = gr.Dropdown(label="Model for this project", choices=[], elem_id="model_select", scale=3)
            use = gr.Button("Use", elem_id="model_use", min_width=60)
    timer = gr.Timer(2.0, active=False)

    def wire() -> None:
        def state(v: View):
            run = studio.finetune_status(v)
            running = run is not None and run.state == "running"
            text = "" if run is None else f"**{run.state}** · {run.progress:.0%} · {run.message}"
            choices = [(label, path) for label, path in studio.model_choices(v)]
            return (text, "" if run is None else run.log_tail,
                    gr.update(choices=choices, value=studio.model_settings(v).checkpoint), gr.Timer(active=running))

        def then_state(fn: Callable[..., Answer]) -> Callable:
            def handler(v: View, *args):
                try:
                    note = fn(v, *args).message
                except Exception as exc:
                    note = "⚠️ " + page.warn(exc)
                return [*state(v), note]
            return handler

        outputs = [status, log, model, timer]
        start.click(then_state(lambda v, n: studio.finetune_start(v, FinetuneOptions(epochs=int(n or 1)))),
                    [page.view, epochs], outputs + [page.w.message], api_name="finetune_start",
                    concurrency_id="finetune")
        cancel.click(then_state(studio.finetune_cancel), page.view, outputs + [page.w.message],
                     api_name="finetune_cancel")
        timer.tick(state, page.view, outputs, show_progress="hidden", api_visibility="private")
        panel.expand(state, page.view, outputs, show_progress="hidden", api_name="finetune_status")
        page.wire(use, studio.select_model, [model], api_name="select_model")
    return wire
