"""Downloads: a project (or its reviewed frames) as a zipped dataset, and an mp4 preview with the overlays.

Every download is written under a hidden partial name and renamed when complete, so a crash or a full disk never
leaves a half-written file under its final name; :func:`clear_old_downloads` removes such leftovers at start.
"""
from __future__ import annotations

import shutil
import tempfile
import time
import zipfile
from pathlib import Path

from annotations import Project, export_project
from annotations.ytvos import unofficial_categories
from referformer_core.overlay import write_video

from .errors import StudioError
from .render import render_frame

FORMATS = {"Ref-Youtube-VOS": "ytvos", "YouTube-VIS": "ytvis", "COCO": "coco"}
PARTIAL = ".partial-"
"""Name prefix of downloads still being written."""


def export_zip(project: Project, fmt: str, out_dir: str | Path, reviewed_only: bool = False) -> tuple[Path, str]:
    """Export ``project`` as ``fmt`` (a key or value of :data:`FORMATS`) into a zip under ``out_dir``.

    Returns the zip's path and a one-line summary (with a note when categories were written as ``others``).
    """
    code = FORMATS.get(fmt, fmt)
    if code not in FORMATS.values():
        raise StudioError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    dataset = project.dataset(reviewed_only=reviewed_only)
    if not dataset.videos:
        raise StudioError("nothing to export: no reviewed frames yet" if reviewed_only else
                          "nothing to export: the project has no video")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    archive = out_dir / f"{project.folder.name}-{code}{'-reviewed' if reviewed_only else ''}-{stamp}.zip"
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=PARTIAL) as tmp:
        export_project(project, code, Path(tmp) / "dataset", reviewed_only=reviewed_only)
        _zip_folder(Path(tmp) / "dataset", archive)
    frames = sum(len(v.frames) for v in dataset.videos)
    objects = sum(len(v.objects) for v in dataset.videos)
    summary = f"exported {len(dataset.videos)} video(s), {frames} frames, {objects} object(s) as {fmt}"
    others = unofficial_categories(dataset) if code == "ytvos" else []
    if others:
        summary += (f"; categories {', '.join(others)} are not Ref-Youtube-VOS categories and are written as "
                    f"'others' (the typed names are kept in studio_category)")
    return archive, summary


def export_preview(project: Project, video: str, out_dir: str | Path, show_boxes: bool = False) -> Path:
    """An mp4 of ``video`` with every object's mask drawn over it, at the video's frame rate."""
    info = project.video(video)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{video}-preview-{time.strftime('%Y%m%d-%H%M%S')}.mp4"
    partial = out_dir / f"{PARTIAL}{path.name}"
    frames = (render_frame(project, video, t, show_boxes=show_boxes) for t in range(info.frame_count))
    try:
        write_video(partial, frames, fps=info.fps or 24.0)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _zip_folder(folder: Path, archive: Path) -> None:
    """Zip ``folder``'s content (paths relative to it) into ``archive``, written atomically."""
    partial = archive.with_name(f"{PARTIAL}{archive.name}")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    stored = zipfile.ZIP_STORED if path.suffix.lower() in (".jpg", ".png") else zipfile.ZIP_DEFLATED
                    zf.write(path, path.relative_to(folder).as_posix(), compress_type=stored)
        partial.replace(archive)
    finally:
        if partial.exists():
            partial.unlink()


def clear_old_downloads(out_dir: str | Path, max_age_s: float = 24 * 3600) -> None:
    """Remove downloads older than ``max_age_s`` and every partial one (left by a crash) from ``out_dir`` (the
    studio's download folder; called at start, when nothing is being written)."""
    now = time.time()
    for path in Path(out_dir).glob("*"):
        stale = path.name.startswith(PARTIAL) or now - path.stat().st_mtime > max_age_s
        if stale and path.is_file():
            path.unlink(missing_ok=True)
        elif stale and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
