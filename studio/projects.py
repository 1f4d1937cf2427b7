"""Projects of the studio: one ``annotations.Project`` folder each under a root, and where the user was.

The view state (video, frame, object) is kept in ``studio.json`` inside the project folder, written
atomically, so reopening a project resumes exactly where the user left it.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from annotations import Project
from annotations.atomic import write_bytes_atomic
from annotations.errors import ProjectError

from .errors import StudioError

VIEW_FILE = "studio.json"
SETTINGS_FILE = "settings.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")


@dataclass
class View:
    """What one browser tab is looking at: all of it can be rebuilt from the store plus these four fields."""

    project: str | None = None
    video: str | None = None
    frame: int = 0
    obj_id: int | None = None


@dataclass(frozen=True)
class Answer:
    """What every action of ``Studio`` returns, so the UI handles one shape and one error path.

    ``view``: what the tab shows next; ``message``: one line saying what happened ("" when the screen says it
    all, e.g. after a step); ``file``: the file to download (export, preview), else None. Long work (``segment``,
    ``track``) is not an action: it yields its progress objects instead.
    """

    view: View
    message: str = ""
    file: Path | None = None


class ProjectLibrary:
    """The folder holding the user's projects (``--projects-dir``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        self.root.mkdir(parents=True, exist_ok=True)

    def names(self) -> list[str]:
        """Project names, most recently used first."""
        found = [p for p in self.root.iterdir() if (p / "project.sqlite").is_file()]
        found.sort(key=lambda p: _last_used(p), reverse=True)
        return [p.name for p in found]

    def folder(self, name: str) -> Path:
        return self.root / check_project_name(name)

    def create(self, name: str) -> Project:
        """A new empty project ``name``; refuses names in use or unsafe as a folder name."""
        folder = self.folder(name)
        if folder.exists():
            raise StudioError(f"a project named {name!r} already exists")
        return Project.create(folder)

    def open(self, name: str) -> Project:
        folder = self.folder(name)
        if not folder.exists():
            raise StudioError(f"no project named {name!r}")
        try:
            return Project.open(folder)
        except ProjectError as exc:
            raise StudioError(f"project {name!r} cannot be opened: {exc}") from None

    def load_view(self, name: str) -> View:
        """Where the user was in project ``name`` (defaults when never saved or unreadable)."""
        path = self.folder(name) / VIEW_FILE
        try:
            data = json.loads(path.read_text())
            return View(project=name, video=data.get("video"), frame=int(data.get("frame", 0)),
                        obj_id=data.get("obj_id"))
        except (OSError, ValueError, TypeError, AttributeError):
            return View(project=name)

    def save_view(self, view: View) -> None:
        """Remember ``view`` for its project (atomic write; a crash leaves the previous one)."""
        if view.project is None:
            return
        data = {k: v for k, v in asdict(view).items() if k != "project"}
        write_bytes_atomic(self.folder(view.project) / VIEW_FILE, json.dumps(data).encode())

    def load_settings(self, name: str) -> dict:
        """Project settings (``settings.json``: e.g. the checkpoint chosen for it); empty when none."""
        try:
            data = json.loads((self.folder(name) / SETTINGS_FILE).read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def save_settings(self, name: str, settings: dict) -> None:
        write_bytes_atomic(self.folder(name) / SETTINGS_FILE, json.dumps(settings).encode())


def check_project_name(name: str) -> str:
    """``name`` stripped, if it is a usable project (folder) name; ``StudioError`` otherwise."""
    name = (name or "").strip()
    if not _NAME.match(name) or name in (".", ".."):
        raise StudioError("project names are 1-64 letters, digits, spaces, '_', '-' or '.', "
                          "starting with a letter or digit")
    return name


def _last_used(folder: Path) -> float:
    view = folder / VIEW_FILE
    return (view if view.exists() else folder / "project.sqlite").stat().st_mtime
