"""One entry point per direction over the three formats, for the UI: export a subset, import a dataset."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from .coco import export_coco, import_coco
from .errors import AnnotationError
from .model import Dataset
from .store import Project
from .ytvis import export_ytvis, import_ytvis
from .ytvos import export_ytvos, import_ytvos

EXPORTERS: dict[str, Callable[[Dataset, Path], None]] = {
    "ytvos": export_ytvos,
    "ytvis": export_ytvis,
    "coco": export_coco,
}


def export_project(
    project: Project,
    fmt: str,
    out_dir: str | Path,
    *,
    videos: Iterable[str] | None = None,
    objects: Iterable[tuple[str, int]] | None = None,
    reviewed_only: bool = False,
) -> Path:
    """Export (a subset of) ``project`` as ``fmt`` (``ytvos``, ``ytvis`` or ``coco``) into ``out_dir``.

    See :meth:`Project.dataset` for the subset arguments.  Returns ``out_dir``.
    """
    if fmt not in EXPORTERS:
        raise AnnotationError(f"unknown export format {fmt!r}; choose one of {sorted(EXPORTERS)}")
    out = Path(out_dir)
    EXPORTERS[fmt](project.dataset(videos, objects, reviewed_only), out)
    return out


def import_into(project: Project, fmt: str, path: str | Path) -> list[str]:
    """Import a dataset into ``project``; ``path`` is the Ref-Youtube-VOS root folder (``ytvos``) or
    the JSON file (``ytvis``, ``coco``, images in ``JPEGImages/`` beside it).  Returns the new video names.
    """
    if fmt == "ytvos":
        return import_ytvos(project, path)
    if fmt == "ytvis":
        return import_ytvis(project, path)
    if fmt == "coco":
        return import_coco(project, path)
    raise AnnotationError(f"unknown import format {fmt!r}; choose one of {sorted(EXPORTERS)}")
