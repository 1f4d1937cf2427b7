"""Pictures handed to the browser as files: each under a name of its own, written whole before it is visible.

Gradio names the files it makes from pictures by their content and rewrites such a file in place when the same
picture is shown again, so a client still reading it gets fewer bytes than announced. Here every picture gets a
new name, is written to a hidden file and renamed into place (readers see all of it or nothing), and files
older than ``max_age_s`` or beyond the newest ``max_files`` are removed, so the folder stays bounded however
long a session runs.
"""
from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

import cv2
import numpy as np

from .errors import StudioError

_EXTENSIONS = {"jpeg": ".jpg", "png": ".png"}


class ServedImages:
    """Writes ``[H, W, 3]`` RGB uint8 pictures under ``folder`` and keeps that folder bounded."""

    def __init__(self, folder: str | Path, max_age_s: float = 900.0, max_files: int = 4000,
                 sweep_every: int = 200) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_age_s, self.max_files, self.sweep_every = max_age_s, max_files, sweep_every
        self._written = 0
        self._lock = threading.Lock()

    def save(self, image: np.ndarray | None, fmt: str = "jpeg") -> str | None:
        """The path of a new file holding ``image`` (None for None); ``fmt`` is ``jpeg`` or ``png``."""
        if image is None:
            return None
        suffix = _EXTENSIONS[fmt]
        params = [cv2.IMWRITE_JPEG_QUALITY, 90] if fmt == "jpeg" else [cv2.IMWRITE_PNG_COMPRESSION, 1]
        ok, data = cv2.imencode(suffix, np.ascontiguousarray(image[..., ::-1]), params)
        if not ok:
            raise StudioError(f"could not encode a {image.shape} picture as {fmt}")
        name = uuid.uuid4().hex
        final, partial = self.folder / f"{name}{suffix}", self.folder / f".{name}{suffix}.part"
        try:
            partial.write_bytes(data.tobytes())
            os.replace(partial, final)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise StudioError(f"cannot write a picture to {self.folder} ({exc.strerror or exc})") from None
        with self._lock:
            self._written += 1
            due = self._written % self.sweep_every == 0
        if due:
            self.sweep()
        return str(final)

    def sweep(self, now: float | None = None) -> int:
        """Remove files older than ``max_age_s`` and all but the newest ``max_files``; how many were removed."""
        now = time.time() if now is None else now
        entries = []
        for entry in os.scandir(self.folder):
            try:
                entries.append((entry.stat().st_mtime, entry.path))
            except FileNotFoundError:
                continue
        entries.sort(reverse=True)
        removed = 0
        for rank, (mtime, path) in enumerate(entries):
            if rank >= self.max_files or now - mtime > self.max_age_s:
                try:
                    os.unlink(path)
                    removed += 1
                except FileNotFoundError:
                    pass
        return removed
