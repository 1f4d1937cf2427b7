"""Corrections in a real browser: pick another candidate, paint, propagate, undo/redo, export the correction."""
from __future__ import annotations

import numpy as np
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from annotations import Origin, Project, read_ytvos

from .test_app_browser import (EXPRESSION, SEGMENT_TIMEOUT_MS, add_object, browser, create_project, export,  # noqa: F401
                               extract, import_video, page, server, text_of, wait_frame, wait_text)


def wait_in_use(page, index: int) -> None:
    """Wait until the candidate marked ✓ (its mask is the frame's) is the ``index``-th thumbnail, and only it."""
    try:
        page.wait_for_function(
            "i => { const c = [...document.querySelectorAll('#candidates .caption-label')].map(e => e.innerText);"
            " return c.length === 5 && c.filter(t => t.endsWith('✓')).length === 1 && c[i].endsWith('✓'); }",
            arg=index, timeout=30000)
    except PlaywrightTimeout:
        captions = page.locator("#candidates .caption-label").all_inner_texts()
        raise AssertionError(f"✓ not on candidate {index}: {captions} ({text_of(page, 'status')})") from None


def test_pick_paint_propagate_undo_redo_export(page, server, sample_video, tmp_path):
    create_project(page, "fix")
    import_video(page, server.media_dir / sample_video.name, "square")
    add_object(page, EXPRESSION)
    wait_text(page, "message", "added object 1")
    page.keyboard.press("s")
    wait_text(page, "message", "✅ done", timeout=SEGMENT_TIMEOUT_MS)

    page.keyboard.press("c")
    wait_text(page, "message", "5 candidates for object 1 on frame 0")
    wait_in_use(page, 0)  # the model's choice is what the run stored
    thumbs = page.locator("#candidates button.thumbnail-item, #candidates .thumbnail-item")
    thumbs.nth(1).click()
    wait_text(page, "message", "picked for 1 frame(s)")
    wait_text(page, "status", "(hand)")
    wait_in_use(page, 1)  # the gallery follows the pick
    page.screenshot(path=str(page.screens / "picked.png"), full_page=True)
    page.keyboard.press("ArrowRight")
    wait_frame(page, 1)
    wait_in_use(page, 0)  # ... and the frame: frame 1 still holds the model's choice
    page.keyboard.press("ArrowLeft")
    wait_frame(page, 0)
    wait_in_use(page, 1)

    page.keyboard.press("e")
    wait_text(page, "message", "editing object 1 on frame 0")
    page.wait_for_selector("#brush canvas", state="visible")  # the brush panel opens when used
    page.keyboard.press("b")
    page.keyboard.press("]")
    page.keyboard.press("]")
    page.wait_for_function("() => { const r = document.querySelector('#brush input[type=range]');"
                           " return !!r && +r.value === 20; }")
    page.keyboard.press("x")
    page.wait_for_selector("#brush button[aria-label='Erase'].highlight")
    page.keyboard.press("]")  # a size key and at once a tool key: the tool stays the one asked for
    page.keyboard.press("b")
    page.wait_for_selector("#brush button[aria-label='Brush'].highlight")
    page.wait_for_timeout(1000)
    assert page.locator("#brush button[aria-label='Brush'].highlight").count() == 1, "the brush must stay selected"
    canvas = page.locator("#brush canvas").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.35, box["y"] + box["height"] * 0.45)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.55, steps=12)
    page.mouse.up()
    page.click("#brush_save")
    saved = wait_text(page, "message", "saved on frame 0")
    painted_pixels = int(saved.split("(")[1].split()[0])
    assert painted_pixels > 50, saved
    page.screenshot(path=str(page.screens / "painted.png"), full_page=True)

    project = Project.open(server.projects_dir / "fix")
    try:
        hand = project.get_mask("square", 1, 0)
        before = {t: project.get_mask("square", 1, t) for t in range(1, 8)}
        page.keyboard.press("p")
        propagated = wait_text(page, "message", "propagated to")
        count = int(propagated.split("propagated to ")[1].split()[0])
        assert count >= 1, propagated
        changed = [t for t in range(1, count + 1) if not np.array_equal(project.get_mask("square", 1, t), before[t])]
        assert changed == list(range(1, count + 1)), "propagation must visibly change the following frames"
        page.keyboard.press("ArrowRight")
        wait_frame(page, 1)
        wait_text(page, "status", "(propagated)")

        page.keyboard.press("z")
        wait_text(page, "message", "undid: propagated")
        assert np.array_equal(project.get_mask("square", 1, 1), before[1])
        page.keyboard.press("y")
        wait_text(page, "message", "redid: propagated")
        assert {m.origin for m in project.mask_infos("square", 1) if 1 <= m.frame <= count} == {Origin.PROPAGATED}

        archive = export(page, "Ref-Youtube-VOS", "ytvos", tmp_path)
        exported = read_ytvos(extract(archive)).videos[0].objects[0]
        from annotations import rle

        assert np.array_equal(rle.decode(exported.masks[0]), hand), "the export must hold the painted mask"
        assert np.array_equal(rle.decode(exported.masks[1]), project.get_mask("square", 1, 1))
    finally:
        project.close()
    assert "frame 1" in text_of(page, "status")
