"""Progress lines: rewritten in place on a terminal, one line per update in a log."""
import io

from referformer_core.progress import end_progress, show_progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_a_line_per_update_and_a_terminal_one_rewritten_line():
    log, terminal = io.StringIO(), Terminal()
    for stream in (log, terminal):
        show_progress("video 1/2", stream)
        show_progress("video 2/2", stream)
        end_progress(stream)
    assert log.getvalue() == "video 1/2\nvideo 2/2\n"
    assert terminal.getvalue() == "\rvideo 1/2\rvideo 2/2\n"
