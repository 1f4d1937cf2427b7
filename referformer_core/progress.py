"""Progress lines of the command-line tools: one line rewritten in place on a terminal, a line per update in a log
(carriage returns in a log file run every update together into one unreadable line)."""
from __future__ import annotations

import sys
from typing import TextIO


def show_progress(text: str, stream: TextIO | None = None) -> None:
    """Show ``text`` as the current progress on ``stream`` (default: stderr)."""
    stream = stream or sys.stderr
    stream.write(f"\r{text}" if stream.isatty() else f"{text}\n")
    stream.flush()


def end_progress(stream: TextIO | None = None) -> None:
    """End the progress line (a newline on a terminal; nothing in a log, where every update ended its line)."""
    stream = stream or sys.stderr
    if stream.isatty():
        stream.write("\n")
        stream.flush()
