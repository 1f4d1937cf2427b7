"""The studio's page in Gradio: panels over one ``Studio``, each control one call of it.

:func:`build_app` lays the page out for an annotator's screen (at 1920x1080 the frame, the transport bar, the
object list and the correction tools show without scrolling; the candidates and the brush open when used).
"""
from __future__ import annotations

import os
from pathlib import Path

import gradio as gr

from ..model import describe
from ..projects import Answer
from ..served import ServedImages
from ..session import Studio
from ..uploads import UploadCounts
from .assets import CSS, HELP, PAGE_JS
from .correct import brush_panel, candidates_panel, correct_tools
from .page import Page
from .sidebar import export_panel, finetune_panel, objects_panel, project_panel, segment_panel, video_panel
from .viewer import review_panel, viewer_panel

__all__ = ["CSS", "PAGE_JS", "build_app"]


def build_app(studio: Studio, uploads: UploadCounts | None = None, served: ServedImages | None = None) -> gr.Blocks:
    """The studio's page; each handler is a thin call of ``studio``.

    ``uploads`` counts uploads (an upload is removed once every import of it is done); ``served`` writes the
    pictures the page shows (default: ``$GRADIO_TEMP_DIR/served``).
    """
    uploads = uploads or UploadCounts()
    served = served or ServedImages(Path(os.environ["GRADIO_TEMP_DIR"]) / "served")
    with gr.Blocks(title="ReferFormer Studio", delete_cache=(3600, 24 * 3600)) as demo:
        page = Page(studio, uploads, served)
        with gr.Row(elem_id="header"):
            gr.Markdown("## ReferFormer Studio")
            gr.Markdown(f"model: {describe(studio.config.model)} · {studio.tracker_line()}", elem_id="model_line")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=340, elem_id="sidebar"):
                wirings = [project_panel(page), objects_panel(page), video_panel(page), segment_panel(page),
                           export_panel(page), finetune_panel(page)]
            with gr.Column(scale=3):
                wirings += [viewer_panel(page), correct_tools(page), review_panel(page), brush_panel(page),
                            candidates_panel(page)]  # the candidates wire last: they follow every mask edit
                with gr.Accordion("Keyboard shortcuts", open=False, elem_id="help"):
                    gr.Markdown(HELP)
        for wire in wirings:
            wire()
        demo.load(page.act(studio.resume, filmstrip=True), page.inputs(), page.outputs(True),
                  api_visibility="private")
    return demo
