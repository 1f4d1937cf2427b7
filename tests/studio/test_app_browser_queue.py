"""Two browser sessions and one model: the second Segment shows its place in the queue while the first runs, and the
time from a click on Segment to the first mask on screen is recorded (``first_mask_browser_s`` in the output)."""
from __future__ import annotations

import json
import re
import time

import pytest

from tests.studio.conftest import moving_square_frames, write_mp4
from tests.studio.test_app_browser import (CHROMIUM_ARGS, EXPRESSION, SEGMENT_TIMEOUT_MS, TIMEOUT_MS,  # noqa: F401
                                           add_object, browser, create_project, import_video, page, server,
                                           text_of, upload, wait_loaded, wait_text)


def first_overlay_s(page) -> float:
    """Click Segment and wait for the viewer to show a new picture with the first window's masks; the seconds."""
    before = page.locator("#viewer img").get_attribute("src")
    start = time.perf_counter()
    page.click("#segment_obj")
    page.wait_for_function(
        "before => { const m = document.getElementById('message'); const img = document.querySelector('#viewer img');"
        " return !!m && /segmented \\d+\\//.test(m.innerText) && !!img && img.complete && img.src !== before; }",
        arg=before, timeout=SEGMENT_TIMEOUT_MS)
    return time.perf_counter() - start


@pytest.mark.slow
def test_a_second_segment_shows_its_place_in_the_queue(browser, page, server, sample_video, tmp_path):
    """A segments a 150-frame video; B's Segment, clicked meanwhile, says ``queue: 1/1`` (or its place) at once."""
    long = write_mp4(tmp_path / "long.mp4", moving_square_frames(t=150))
    create_project(page, "queue-a")
    upload(page, long)
    wait_text(page, "message", "imported long: 150 frames")
    add_object(page, EXPRESSION)
    wait_text(page, "message", "added object 1")

    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    other = context.new_page()
    other.set_default_timeout(TIMEOUT_MS)
    try:
        other.goto(server.url)
        wait_loaded(other)
        create_project(other, "queue-b")
        import_video(other, sample_video, "square")
        add_object(other, EXPRESSION)
        wait_text(other, "message", "added object 1")

        seconds = first_overlay_s(page)
        print(json.dumps({"first_mask_browser_s": round(seconds, 3)}))
        other.click("#segment_obj")
        queued = wait_text(other, "message", "queue")
        assert re.search(r"queue:?\s*\d+\s*/\s*\d+", queued), queued
        wait_text(page, "message", "✅ done", timeout=SEGMENT_TIMEOUT_MS)
        wait_text(other, "message", "✅ done", timeout=SEGMENT_TIMEOUT_MS)
    finally:
        context.close()
