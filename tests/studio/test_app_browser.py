"""The studio in a real browser: ``python app.py`` driven by Playwright through Debian's Chromium.

One server (tiny random model) for the module; each test gets a fresh browser page.  Screenshots of the main
screens go to each test's ``tmp_path/screens`` (not asserted; for looking at the page when a test fails).
"""
from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path

import pytest

from tests.studio.app_server import start_app, write_bad_uploads

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 60_000
SEGMENT_TIMEOUT_MS = 240_000
EXPRESSION = "the red square"


def require_browser() -> None:
    """Chromium and Playwright, or a clear failure (a skip only off CI when Chromium is not installed)."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Playwright for Python is not installed (pip install playwright)")
    if missing:
        message = "browser end-to-end test cannot run: " + "; ".join(missing)
        if not CHROMIUM.exists() and not os.environ.get("CI"):
            pytest.skip(message)
        pytest.fail(message)


@pytest.fixture(scope="module")
def browser():
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(browser, tiny_model, sample_video, tmp_path_factory):
    checkpoint, tokenizer = tiny_model
    app = start_app(tmp_path_factory.mktemp("app_browser"), checkpoint, tokenizer, sample_video)
    yield app
    app.stop()


@pytest.fixture
def page(browser, server, tmp_path):
    context = browser.new_context(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url)
    wait_loaded(page)
    page.screens = tmp_path / "screens"
    page.screens.mkdir()
    yield page
    context.close()
    assert server.alive(), f"the server died:\n{server.log_tail()}"
    assert not errors, f"uncaught errors in the page: {errors}"


# ---------------------------------------------------------------------------------------------------- helpers
def text_of(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id}").inner_text().strip()


def wait_text(page, elem_id: str, needle: str, timeout: float = TIMEOUT_MS) -> str:
    """Wait until element ``elem_id``'s text contains ``needle``; its text (a readable error when it never does)."""
    try:
        page.wait_for_function(
            "([id, needle]) => { const e = document.getElementById(id); return !!e && e.innerText.includes(needle); }",
            arg=[elem_id, needle], timeout=timeout)
    except Exception as exc:
        raise AssertionError(f"#{elem_id} never showed {needle!r}; it shows {text_of(page, elem_id)!r}") from exc
    return text_of(page, elem_id)


def wait_error(page, needle: str) -> str:
    """Wait for a ⚠️ message containing ``needle`` and check it is one readable line."""
    message = wait_text(page, "message", needle)
    assert message.startswith("⚠️"), message
    assert "\n" not in message and len(message) <= 320, f"not one short line: {message!r}"
    assert "Traceback" not in message and "Error:" not in message.split(":", 1)[0], message
    return message


def wait_loaded(page) -> str:
    """Wait for the page's first screen (a new tab shows the most recently used project, or how to start)."""
    page.wait_for_function("() => { const e = document.getElementById('status');"
                           " return !!e && /create a project|project |frame \\d+ \\(/.test(e.innerText); }")
    return text_of(page, "status")


def frame_shown(page) -> int:
    found = re.search(r"frame (\d+) \(0–(\d+)\)", text_of(page, "status"))
    assert found, text_of(page, "status")
    return int(found.group(1))


def wait_frame(page, frame: int) -> None:
    wait_text(page, "status", f"frame {frame} (")


def textbox(page, elem_id: str):
    return page.locator(f"#{elem_id}").get_by_role("textbox")


def create_project(page, name: str) -> None:
    textbox(page, "project_name").fill(name)
    page.click("#project_create")
    wait_text(page, "message", f"created project {name}")
    wait_text(page, "status", f"project {name}: add a video")


def upload(page, path: Path) -> None:
    page.set_input_files("#upload input[type=file]", str(path))


def import_video(page, path: Path, name: str) -> None:
    upload(page, path)
    wait_text(page, "message", f"imported {name}: 8 frames of 128x72")
    wait_text(page, "status", f"{name} · frame 0 (0–7) · 0/8 frames reviewed")


def add_object(page, expression: str) -> None:
    textbox(page, "obj_expression").fill(expression)
    page.click("#obj_add")


def open_export(page) -> None:
    if not page.locator("#export_btn").is_visible():
        page.get_by_text("Export", exact=True).click()
        page.wait_for_selector("#export_btn", state="visible")


def export(page, fmt: str, code: str, out: Path) -> Path:
    """Export ``fmt`` through the page and download the zip from the ``#export_file`` link into ``out``."""
    open_export(page)
    page.locator("#export_format label", has_text=fmt).click()
    page.click("#export_btn")
    message = wait_text(page, "message", f"as {fmt}")
    assert message.startswith("✅ exported 1 video(s), 8 frames, 1 object(s)"), message
    link = page.locator(f"#export_file a[download*='-{code}-']")
    link.wait_for()
    with page.expect_download() as info:
        link.click()
    path = out / info.value.suggested_filename
    info.value.save_as(path)
    assert zipfile.is_zipfile(path), path
    return path


def extract(archive: Path) -> Path:
    folder = archive.with_suffix("")
    with zipfile.ZipFile(archive) as zf:
        for name in zf.namelist():
            assert not name.startswith("/") and ".." not in Path(name).parts, name
        zf.extractall(folder)
    return folder


def check_ytvos(archive: Path, reviewed_frames: int | None = None) -> None:
    from annotations import read_ytvos

    dataset = read_ytvos(extract(archive))
    assert [v.name for v in dataset.videos] == ["square"]
    video = dataset.videos[0]
    assert len(video.frames) == 8 and (video.width, video.height) == (128, 72)
    assert [(o.obj_id, o.expressions) for o in video.objects] == [(1, [EXPRESSION])]


def check_ytvis(archive: Path) -> None:
    from annotations import read_ytvis

    data = json.loads((extract(archive) / "instances.json").read_text())
    assert [len(v["file_names"]) for v in data["videos"]] == [8]
    dataset = read_ytvis(archive.with_suffix("") / "instances.json")
    assert [len(v.frames) for v in dataset.videos] == [8]
    assert [o.obj_id for o in dataset.videos[0].objects] == [1]


def check_coco(archive: Path) -> None:
    from pycocotools.coco import COCO

    coco = COCO(str(extract(archive) / "annotations.json"))
    assert len(coco.getImgIds()) == 8
    for ann in coco.loadAnns(coco.getAnnIds()):
        mask = coco.annToMask(ann)
        assert mask.shape == (72, 128)
        assert int(mask.sum()) == pytest.approx(ann["area"], abs=1)


# ---------------------------------------------------------------------------------------------------- tests
def test_create_upload_segment_review_export(page, server, sample_video, tmp_path):
    page.screenshot(path=str(page.screens / "1-start.png"), full_page=True)
    assert page.locator("#media_path input").input_value() == "", "the media-folder choice starts empty"
    create_project(page, "browser")
    assert textbox(page, "project_name").input_value() == "", "Create clears the name box"
    import_video(page, sample_video, "square")
    page.screenshot(path=str(page.screens / "2-imported.png"), full_page=True)
    assert page.locator("#filmstrip img").count() == 8

    add_object(page, EXPRESSION)
    wait_text(page, "message", f"added object 1: “{EXPRESSION}”")
    wait_text(page, "status", "object 1: no mask on this frame")

    page.click("#segment_obj")
    done = wait_text(page, "message", "✅ done", timeout=SEGMENT_TIMEOUT_MS)
    status = text_of(page, "status")
    assert done == "✅ done: 8 frames segmented" and "(model)" in status and "object 1 score" in status, (done, status)
    page.wait_for_function("() => [...document.querySelectorAll('#filmstrip .caption-label')].map(e => e.innerText)"
                           ".join(',') === '0,1,2,3,4,5,6,7'")  # drawn again with the masks, whole frame numbers
    page.screenshot(path=str(page.screens / "3-segmented.png"), full_page=True)
    caption, curve = page.locator("#confidence_caption").bounding_box(), page.locator("#confidence img").bounding_box()
    assert caption["y"] + caption["height"] <= curve["y"] + 1, (caption, curve)  # nothing covers a score near 1

    # step through the frames: keyboard and buttons (focus on a button, not in a text box)
    start = frame_shown(page)
    page.locator("#next_frame").focus()
    page.keyboard.press("ArrowRight")
    wait_frame(page, (start + 1) % 8)
    page.click("#next_frame")
    wait_frame(page, (start + 2) % 8)
    page.click("#prev_frame")
    wait_frame(page, (start + 1) % 8)
    for _ in range(3):  # quick presses add up (the frame is asked for when the keys pause), wrapping around
        page.keyboard.press("a")
    wait_frame(page, (start + 6) % 8)
    for _ in range(5):  # presses paced just over the pause: each asks for its frame while the last is answered
        page.keyboard.press("d")
        page.wait_for_timeout(200)
    wait_frame(page, (start + 11) % 8)
    for _ in range((5 - start) % 8 or 8):  # to frame 0, wrapping around the end
        page.keyboard.press("ArrowRight")
    wait_frame(page, 0)
    assert "object 1 score" in text_of(page, "status") and "(model)" in text_of(page, "status")

    page.keyboard.press("r")
    wait_text(page, "message", "frame 0 marked reviewed")
    wait_text(page, "status", "frame 1 (0–7) · 1/8 frames reviewed")
    page.keyboard.press("r")
    wait_text(page, "status", "frame 2 (0–7) · 2/8 frames reviewed")
    page.keyboard.press("ArrowRight")  # counts from where the marks moved the frame, not from the last step
    wait_frame(page, 3)
    page.keyboard.press("ArrowLeft")
    wait_frame(page, 2)
    page.screenshot(path=str(page.screens / "4-reviewed.png"), full_page=True)

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    check_ytvos(export(page, "Ref-Youtube-VOS", "ytvos", downloads))
    check_ytvis(export(page, "YouTube-VIS", "ytvis", downloads))
    check_coco(export(page, "COCO", "coco", downloads))
    page.screenshot(path=str(page.screens / "5-exported.png"), full_page=True)

    # a reload keeps the tab's place; a new tab opens the most recent project where it was left
    page.reload()
    wait_text(page, "status", "square · frame 2 (0–7) · 2/8 frames reviewed")
    page = page.context.browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
    page.goto(server.url)
    wait_text(page, "status", "square · frame 2 (0–7) · 2/8 frames reviewed · object 1 score")
    # another project, then back to this one through the project list
    create_project(page, "other")
    page.locator("#project_select input").click()
    page.get_by_role("option", name="browser", exact=True).click()
    wait_text(page, "status", "square · frame 2 (0–7) · 2/8 frames reviewed · object 1 score")
    assert textbox(page, "obj_expression").input_value() == EXPRESSION
    page.screenshot(path=str(tmp_path / "screens" / "6-reopened.png"), full_page=True)
    page.context.close()


def test_bad_input_gives_one_line_and_keeps_the_project(page, server, sample_video, tmp_path):
    create_project(page, "bad-input")
    import_video(page, sample_video, "square")
    add_object(page, EXPRESSION)
    wait_text(page, "message", "added object 1")
    status = text_of(page, "status")

    def still_working(frame: int) -> None:
        """The page still answers (a frame step) and shows the same project, video and object."""
        page.click("#next_frame")
        wait_frame(page, frame)
        assert text_of(page, "status").startswith("square · frame") and "object 1" in text_of(page, "status")
        assert textbox(page, "obj_expression").input_value() == EXPRESSION

    bad = write_bad_uploads(tmp_path / "bad")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "square.mp4").write_bytes(sample_video.read_bytes())

    frame = 0
    for name, needle in [("corrupt.mp4", "corrupt.mp4"), ("empty.mp4", "empty.mp4: the file is empty"),
                         ("notes.mp4", "notes.mp4"), ("escape.zip", "escape.zip: refusing the zip")]:
        upload(page, bad / name)
        message = wait_error(page, needle)
        assert str(server.temp_dir) not in message, f"the server's temp folder is shown: {message}"
        frame += 1
        still_working(frame)
    page.screenshot(path=str(page.screens / "1-bad-upload.png"), full_page=True)

    add_object(page, "")
    wait_error(page, "expression is empty")
    frame += 1
    still_working(frame)
    add_object(page, "x" * 10_000)
    wait_error(page, "expression is 10000 characters long")
    frame += 1
    still_working(frame)

    for typed in [str(outside / "square.mp4"), "../" * 3 + str(outside / "square.mp4").lstrip("/")]:
        path_box = page.locator("#media_path input")
        path_box.fill(typed)
        path_box.press("Enter")
        page.click("#media_open")
        wait_error(page, "outside the media folders")
        frame += 1
        still_working(frame % 8)
    page.screenshot(path=str(page.screens / "2-bad-path.png"), full_page=True)

    # nothing was added or changed: the export holds the one video and its one object
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    check_ytvos(export(page, "Ref-Youtube-VOS", "ytvos", downloads))
    assert status.split(" · ")[0] == text_of(page, "status").split(" · ")[0] == "square"

    # and a video from the media folder (typed relative to it) still imports
    path_box = page.locator("#media_path input")
    path_box.fill("square.mp4")
    path_box.press("Enter")
    page.click("#media_open")
    wait_text(page, "message", "imported square-2: 8 frames")
    wait_text(page, "status", "square-2 · frame 0 (0–7)")
