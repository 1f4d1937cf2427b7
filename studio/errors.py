"""The studio's user-facing error and the one-line message every error shows in the UI."""
from __future__ import annotations

import errno
import logging
import sqlite3

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
    if disk_full(exc):
        return ("the disk is full: this step was not saved (everything saved before it is kept); free some space "
                "and try again")
    log.exception("unexpected error", exc_info=exc)
    return f"internal error ({type(exc).__name__}); the details are in the studio's log"


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says a write failed for want of space (or over a file-size limit)."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    return isinstance(exc, sqlite3.Error) and "disk is full" in str(exc)
