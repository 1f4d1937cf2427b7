"""Clicks and tracking in a real browser (the offline tracker, GrabCut + flow): click mode on the frame, a box, a
negative click, track forward and backward, undo; and the layout on an annotator's 1920x1080 screen."""
from __future__ import annotations

import numpy as np

from annotations import Origin, Project

from .test_app_browser import (EXPRESSION, add_object, browser, create_project, import_video, server,  # noqa: F401
                               text_of, wait_error, wait_frame, wait_loaded, wait_text)

SCREEN = {"width": 1920, "height": 1080}


def frame_point(page, fx: float, fy: float) -> tuple[float, float]:
    """Page coordinates of the point at fractions ``(fx, fy)`` of the shown frame (the picture is letterboxed),
    once the picture has loaded (a new frame's picture has no size until then)."""
    page.wait_for_function("() => { const img = document.querySelector('#viewer img');"
                           " return !!img && img.complete && img.naturalWidth > 0; }")
    return page.evaluate(
        "([fx, fy]) => { const img = document.querySelector('#viewer img'); const r = img.getBoundingClientRect();"
        " const s = Math.min(r.width / img.naturalWidth, r.height / img.naturalHeight);"
        " return [r.left + (r.width - img.naturalWidth * s) / 2 + fx * img.naturalWidth * s,"
        "         r.top + (r.height - img.naturalHeight * s) / 2 + fy * img.naturalHeight * s]; }", [fx, fy])


def square_box(frame: np.ndarray) -> tuple[float, float, float, float]:
    """The red square's box in fractions of the frame ``[H, W, 3]``, a little enlarged."""
    red = (frame[..., 0] > 150) & (frame[..., 1] < 100) & (frame[..., 2] < 100)
    ys, xs = np.nonzero(red)
    h, w = red.shape
    return ((xs.min() - 3) / w, (ys.min() - 3) / h, (xs.max() + 4) / w, (ys.max() + 4) / h)


def test_layout_click_box_track_undo(browser, server, sample_video, tmp_path):  # noqa: F811
    context = browser.new_context(viewport=SCREEN)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url)
    wait_loaded(page)
    screens = tmp_path / "screens"
    screens.mkdir()
    try:
        create_project(page, "clicks")
        import_video(page, server.media_dir / sample_video.name, "square")
        add_object(page, EXPRESSION)
        wait_text(page, "message", "added object 1")

        for elem_id in ("viewer", "transport", "obj_select", "correct_tools", "track_fwd", "click_mode", "status"):
            box = page.locator(f"#{elem_id}").bounding_box()
            assert box and box["y"] >= 0 and box["y"] + box["height"] <= SCREEN["height"], \
                f"#{elem_id} is not on the first 1920x1080 screen: {box}"
        assert not page.locator("#brush").is_visible() and not page.locator("#candidates").is_visible(), \
            "the brush and the candidates open only when used"

        page.keyboard.press("k")
        page.wait_for_function("() => document.querySelector('#click_mode input').checked")
        project = Project.open(server.projects_dir / "clicks")
        try:
            x0, y0, x1, y1 = square_box(project.read_frame("square", 0))
            start, end = frame_point(page, x0, y0), frame_point(page, x1, y1)
            page.mouse.move(*start)
            page.mouse.down()
            page.mouse.move(*end, steps=8)
            page.mouse.up()
            wait_text(page, "message", "pixels from the tracker")
            wait_text(page, "message", "a box")
            wait_text(page, "status", "(hand)")
            boxed = project.get_mask("square", 1, 0)
            assert boxed is not None and boxed.any()

            page.keyboard.down("Shift")
            page.mouse.click(*frame_point(page, 0.03, 0.05))
            page.keyboard.up("Shift")
            wait_text(page, "message", "0 positive, 1 negative click(s), a box")
            page.screenshot(path=str(screens / "clicked.png"))

            page.mouse.click(*frame_point(page, 1.15, 0.5))  # beside the picture, in its letterbox: one line
            wait_error(page, "outside the frame")

            strip = "() => [...document.querySelectorAll('#filmstrip img')].map(i => i.src).join(' ')"
            before = page.evaluate(strip)
            page.keyboard.press("t")
            tracked = wait_text(page, "message", "tracked ")
            assert "tracked 7 frame(s)" in tracked, tracked
            page.wait_for_function(f"before => ({strip})() !== before", arg=before)  # redrawn: masks on the strip
            origins = {m.frame: m.origin for m in project.mask_infos("square", 1)}
            assert origins[0] == Origin.HAND and all(origins[t] == Origin.TRACKED for t in range(1, 8)), origins
            page.keyboard.press("ArrowRight")
            wait_frame(page, 1)
            wait_text(page, "status", "(tracked)")
            page.screenshot(path=str(screens / "tracked.png"))

            page.keyboard.press("z")
            wait_text(page, "message", "undid: ")
            assert {m.frame for m in project.mask_infos("square", 1)} == {0}, "undo removes the whole track"

            page.keyboard.press("Shift+T")
            wait_error(page, "frame")  # frame 1 has no mask to track backward from: one line
        finally:
            project.close()
        page.keyboard.press("k")
        page.wait_for_function("() => !document.querySelector('#click_mode input').checked")
        page.screenshot(path=str(screens / "screen_1920.png"))
        assert not errors, errors
    finally:
        context.close()
    assert server.alive(), server.log_tail()
