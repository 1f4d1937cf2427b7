"""Uploads that several sessions share: each upload is counted, and the file goes once every import of it is done.

Gradio stores an upload under a folder named by its content, so sessions uploading the same clip get one and the
same path, and an import may still be queued when another has finished with it. :class:`UploadCounts` counts
how many uploads returned each path and how many imports released it; :class:`CountUploads` is the ASGI
middleware that counts every upload the server answers (before the client sees the answer, so an import can
never release a path that is not counted yet).
"""
from __future__ import annotations

import json
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


class UploadCounts:
    """How many uploads of each path are still to be imported (thread-safe)."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def uploaded(self, paths: list[str]) -> None:
        """``paths`` (as the upload answered them) were uploaded once more."""
        with self._lock:
            for path in paths:
                key = str(Path(path).resolve())
                self._counts[key] = self._counts.get(key, 0) + 1

    def pending(self, path: str | Path) -> int:
        with self._lock:
            return self._counts.get(str(Path(path).resolve()), 0)

    def release(self, path: str | Path) -> bool:
        """One import of ``path`` is done: the file (and its folder, when empty) is removed once no other upload of
        it waits; True when it was removed."""
        key = str(Path(path).resolve())
        with self._lock:
            left = self._counts.get(key, 1) - 1
            if left > 0:
                self._counts[key] = left
                return False
            self._counts.pop(key, None)
            file = Path(key)
            file.unlink(missing_ok=True)
            try:
                file.parent.rmdir()
            except OSError:
                pass
            return True


class CountUploads:
    """ASGI middleware: every answered ``POST …/upload`` adds its returned paths to ``counts``."""

    def __init__(self, app: ASGIApp, counts: UploadCounts) -> None:
        self.app = app
        self.counts = counts

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or not scope["path"].endswith("/upload"):
            await self.app(scope, receive, send)
            return
        status, body = 0, bytearray()

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if status == 200 and not message.get("more_body", False):
                    try:
                        paths = json.loads(bytes(body))
                    except ValueError:
                        paths = []
                    if isinstance(paths, list):
                        self.counts.uploaded([p for p in paths if isinstance(p, str)])
            await send(message)

        await self.app(scope, receive, counted)
