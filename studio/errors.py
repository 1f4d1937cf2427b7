"""The studio's user-facing error and the one-line message every error shows in the UI."""
from __future__ import annotations

import logging

from referformer_core.errors import ReferFormerError

log = logging.getLogger("studio")


class StudioError(ReferFormerError):
    """Something the user asked for cannot be done (bad upload, unknown project, no model loaded)."""


def user_message(exc: BaseException) -> str:
    """One readable line for ``exc``: its own message for user errors, a generic line (logged) for bugs."""
    if isinstance(exc, ReferFormerError):
        text = " ".join(str(exc).split()) or type(exc).__name__
        return text if len(text) <= 300 else text[:297] + "..."
    if isinstance(exc, MemoryError):
        return "out of memory: use a smaller working size or fewer frames"
    log.exception("unexpected error", exc_info=exc)
    return f"internal error ({type(exc).__name__}); the details are in the studio's log"
