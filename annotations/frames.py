"""The frame folders of a project (``frames/<video>-<token>/<frame>.jpg``): made while a video is added,
removed once nothing can name them.

A folder belongs to the project while a ``videos`` row or a history entry names it: removing a video
keeps its frames on disk so that the removal can be undone, and undoing an import keeps them so that
it can be redone.  A folder that nothing names (a crash in ``add_video``, a discarded redo, a cleared
history) is an orphan and :func:`sweep_orphans` deletes it.  A folder being written holds an exclusive
``flock`` on its ``.incomplete`` marker, so a sweep in another process or thread never deletes it; it
is locked under a ``.staging-`` name, which sweeps skip, before it gets its name.
"""
from __future__ import annotations

import contextlib
import fcntl
import secrets
import shutil
from pathlib import Path
from typing import Callable, Iterator

MARKER = ".incomplete"
STAGING = ".staging-"


@contextlib.contextmanager
def new_frames_dir(root: Path, video: str) -> Iterator[Path]:
    """Yield a new empty folder ``root/<video>-<token>``, marked as being written.

    If the body raises, the folder is deleted; otherwise (the body has committed the rows naming it)
    the marker is removed.
    """
    token = secrets.token_hex(4)
    staging = root / f"{STAGING}{token}"
    staging.mkdir(parents=True)
    with open(staging / MARKER, "w") as marker:
        fcntl.flock(marker, fcntl.LOCK_EX)
        folder = root / f"{video}-{token}"
        staging.rename(folder)
        try:
            yield folder
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        (folder / MARKER).unlink()


def sweep_orphans(root: Path, is_named: Callable[[str], bool]) -> list[str]:
    """Delete the folders under ``root`` that ``is_named`` (by folder name) says nothing names; their names.

    Folders being written are skipped; ``is_named`` is asked again once a folder's marker is locked,
    so a video committed while sweeping is never deleted.
    """
    removed = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        if folder.name.startswith(STAGING) or is_named(folder.name):
            continue
        with _locked(folder) as free:
            if free and not is_named(folder.name):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder.name)
    return removed


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[bool]:
    """True when no one is writing ``folder`` (its marker is absent or its lock was free)."""
    try:
        marker = open(folder / MARKER, "r")
    except FileNotFoundError:
        yield True
        return
    with marker:
        try:
            fcntl.flock(marker, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
