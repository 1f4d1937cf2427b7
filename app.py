"""ReferFormer Studio in the browser: ``python app.py`` then open http://127.0.0.1:7860.

Flags, settings and launch only: the page is ``studio.ui.build_app``, every control one call of
``studio.session.Studio``.
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

from referformer_core.cli import gigabytes  # noqa: E402
from referformer_core.settings import DEFAULT_MAX_MEMORY  # noqa: E402
from studio import tracker as tracker_flags  # noqa: E402
from studio.errors import user_message  # noqa: E402
from studio.export import clear_old_downloads  # noqa: E402
from studio.model import startup_settings  # noqa: E402
from studio.session import Studio, StudioConfig  # noqa: E402
from studio.ui import CSS, PAGE_JS, build_app  # noqa: E402
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
                css=CSS, js=PAGE_JS, show_error=False,
                app_kwargs={"middleware": [Middleware(CountUploads, counts=uploads)]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
