"""The one place that makes writes atomic: a file or a whole folder appears complete or not at all.

Data is fsynced (files, then their folders) before each rename and the parent folder after it, so a
completed write survives power loss, not only a crash of the process.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename it in place."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_directory(target: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``target``; on success it replaces ``target``.

    If the body raises, the temporary folder is removed and ``target`` is untouched.  An existing
    ``target`` is first renamed aside and only deleted once the new folder is in place, so at every
    instant a complete export exists (under ``target`` or, for a crash between the two renames,
    under the ``.<name>.old-*`` folder next to it).  Every file and folder of the new tree is fsynced
    before the rename and the parent folder after it, so this also holds after a power loss.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        fsync_tree(tmp)
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.rename(target, old / target.name)
        try:
            os.rename(tmp, target)
        except BaseException:
            if old is not None:
                os.rename(old / target.name, target)
            raise
        fsync_dir(target.parent)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise



def fsync_dir(folder: str | Path) -> None:
    """Flush a folder's entries (new, renamed, deleted names) to disk."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: str | Path) -> None:
    """Flush every file under ``root``, then every folder (deepest first), to disk."""
    for folder, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(folder)
