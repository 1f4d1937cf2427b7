"""The studio through its API: ``gradio_client`` against a running ``python app.py`` (tiny random model).

The server is started with ``--max-upload 100kb`` so that one server covers both the normal loop (the sample
video is ~15 KB) and an upload over the limit.  Each ``Client`` is its own session (its own ``View``).
Outputs of the screen endpoints: ``[..., status, message]`` at indexes 8 and 9 (``STATUS``, ``MESSAGE``).
"""
from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path

import pytest

from tests.studio.app_server import start_app, write_bad_uploads

EXPRESSION = "the red square"
STATUS, MESSAGE, FRAME_SLIDER = 8, 9, 5
DISPLAY = (False, True, 0.5)  # boxes, labels, low-score threshold: the first inputs of every screen endpoint
ENDPOINTS = ("/create_project", "/open_project", "/import_video", "/import_path", "/add_object", "/segment",
             "/next_frame", "/prev_frame", "/mark_reviewed", "/export")


@pytest.fixture(scope="module")
def server(tiny_model, sample_video, tmp_path_factory):
    pytest.importorskip("gradio_client")
    checkpoint, tokenizer = tiny_model
    app = start_app(tmp_path_factory.mktemp("app_client"), checkpoint, tokenizer, sample_video,
                    "--max-upload", "100kb")
    yield app
    app.stop()


@pytest.fixture
def client(server, tmp_path):
    from gradio_client import Client

    yield Client(server.url, verbose=False, download_files=str(tmp_path / "client_files"))
    assert server.alive(), f"the server died:\n{server.log_tail()}"


def call(client, api_name: str, *args, **kwargs):
    return client.predict(*args, api_name=api_name, **kwargs)


def screen(client, api_name: str, *args, **kwargs) -> tuple[str, str]:
    """Call a screen endpoint with the default display options; its ``(status, message)``."""
    result = call(client, api_name, *DISPLAY, *args, **kwargs)
    return result[STATUS], result[MESSAGE]


def one_line_error(message: str, needle: str) -> None:
    assert message.startswith("⚠️") and needle in message, message
    assert "\n" not in message.strip() and len(message) <= 320 and "Traceback" not in message, message


def frame_of(status: str) -> int:
    found = re.search(r"frame (\d+) \(0–7\)", status)
    assert found, status
    return int(found.group(1))


def new_project_with_video(client, name: str, video: Path) -> str:
    from gradio_client import handle_file

    status, message = screen(client, "/create_project", name)
    assert message == f"created project {name}" and status == f"project {name}: add a video", (status, message)
    status, message = screen(client, "/import_video", handle_file(str(video)))
    assert message.startswith(f"imported {video.stem}: 8 frames of 128x72"), message
    assert status.startswith(f"{video.stem} · frame 0 (0–7) · 0/8 frames reviewed"), status
    return status


def extract(archive: Path, out: Path) -> Path:
    with zipfile.ZipFile(archive) as zf:
        for name in zf.namelist():
            assert not name.startswith("/") and ".." not in Path(name).parts, name
        zf.extractall(out)
    return out


def test_the_api_lists_the_studio_endpoints(client):
    api = client.view_api(print_info=False, return_format="dict")
    named = api["named_endpoints"]
    assert set(ENDPOINTS) <= set(named), sorted(named)
    assert [p["parameter_name"] for p in named["/import_video"]["parameters"]][3:] == ["path", "n", "most", "side"]
    assert [p["parameter_name"] for p in named["/export"]["parameters"]] == ["fmt", "reviewed"]
    assert named["/export"]["parameters"][0]["python_type"]["type"] == "Literal['Ref-Youtube-VOS', 'YouTube-VIS', " \
                                                                        "'COCO']"


def test_create_upload_segment_review_export(client, sample_video, tmp_path):
    from annotations import read_ytvis, read_ytvos
    from pycocotools.coco import COCO

    new_project_with_video(client, "api", sample_video)
    status, message = screen(client, "/add_object", EXPRESSION, "others")
    assert message == f"added object 1: “{EXPRESSION}”", message
    assert "object 1: no mask on this frame" in status

    # the segment endpoint streams one screen per window, then a final one
    job = client.submit(*DISPLAY, False, api_name="/segment")
    final = job.result(timeout=180)
    messages = [out[MESSAGE] for out in job.outputs()]
    assert final[MESSAGE] == "✅ done: 8 frames segmented", messages  # the status line is shown once, below
    strip = final[-1]  # the filmstrip is drawn again with the new masks, captioned by frame number
    assert [item["caption"] for item in strip] == [str(t) for t in range(8)], strip
    assert any(re.match(r"segmented \d/8 frames", m) for m in messages), messages
    assert "object 1 score" in final[STATUS] and "(model)" in final[STATUS], final[STATUS]

    frame = frame_of(final[STATUS])
    status, _ = screen(client, "/next_frame")
    assert frame_of(status) == (frame + 1) % 8
    status, _ = screen(client, "/prev_frame")
    assert frame_of(status) == frame
    status, _ = screen(client, "/goto", 0)
    assert frame_of(status) == 0
    status, message = screen(client, "/mark_reviewed")
    assert message == "frame 0 marked reviewed" and frame_of(status) == 1 and "1/8 frames reviewed" in status
    status, message = screen(client, "/mark_reviewed")
    assert "2/8 frames reviewed" in status

    zips = {}
    for fmt in ("Ref-Youtube-VOS", "YouTube-VIS", "COCO"):
        path, message = call(client, "/export", fmt=fmt, reviewed=False)
        assert message == f"✅ exported 1 video(s), 8 frames, 1 object(s) as {fmt}", message
        assert zipfile.is_zipfile(path), path
        zips[fmt] = extract(Path(path), tmp_path / fmt)

    dataset = read_ytvos(zips["Ref-Youtube-VOS"])
    assert [(v.name, len(v.frames)) for v in dataset.videos] == [("square", 8)]
    assert [(o.obj_id, o.expressions) for o in dataset.videos[0].objects] == [(1, [EXPRESSION])]

    vis = read_ytvis(zips["YouTube-VIS"] / "instances.json")
    assert [(len(v.frames), [o.obj_id for o in v.objects]) for v in vis.videos] == [(8, [1])]

    coco = COCO(str(zips["COCO"] / "annotations.json"))
    assert len(coco.getImgIds()) == 8
    for ann in coco.loadAnns(coco.getAnnIds()):
        assert coco.annToMask(ann).shape == (72, 128)

    # only the reviewed frames
    path, message = call(client, "/export", fmt="COCO", reviewed=True)
    assert message.startswith("✅ exported 1 video(s), 2 frames"), message
    reviewed = json.loads(zipfile.ZipFile(path).read("annotations.json"))
    assert len(reviewed["images"]) == 2


def test_bad_input_gives_one_line_and_keeps_the_project(client, server, sample_video, tmp_path):
    from gradio_client import handle_file

    new_project_with_video(client, "api-bad", sample_video)
    status, message = screen(client, "/add_object", EXPRESSION, "others")
    assert message.startswith("added object 1")
    before = status

    bad = write_bad_uploads(tmp_path / "bad")
    for name, needle in [("corrupt.mp4", "corrupt.mp4"), ("empty.mp4", "empty.mp4: the file is empty"),
                         ("notes.mp4", "notes.mp4"), ("escape.zip", "refusing the zip")]:
        status, message = screen(client, "/import_video", handle_file(str(bad / name)))
        one_line_error(message, needle)
        assert str(server.temp_dir) not in message, f"the server's temp folder is shown: {message}"
        assert status == before

    for text, needle in [("", "expression is empty"), ("x" * 10_000, "expression is 10000 characters long"),
                         ("   \n\t ", "expression is empty")]:
        status, message = screen(client, "/add_object", text, "others")
        one_line_error(message, needle)
        assert status == before

    outside = tmp_path / "outside" / "square.mp4"
    outside.parent.mkdir()
    outside.write_bytes(sample_video.read_bytes())
    for typed in [str(outside), "../" * 8 + str(outside).lstrip("/"), "/etc/passwd"]:
        status, message = screen(client, "/import_path", typed, 1, 2000, 360)
        one_line_error(message, "outside the media folders")
        assert status == before

    # still working, nothing was added: one video with its one object; a media-folder video still imports
    status, message = screen(client, "/next_frame")
    assert frame_of(status) == 1 and message == ""
    path, message = call(client, "/export", fmt="YouTube-VIS", reviewed=False)
    assert message == "✅ exported 1 video(s), 8 frames, 1 object(s) as YouTube-VIS", message
    status, message = screen(client, "/import_path", "square.mp4", 1, 2000, 360)
    assert message.startswith("imported square-2: 8 frames"), message


def test_create_clears_the_name_and_a_one_frame_video_says_so(client, server, tmp_path):
    import cv2
    import numpy as np
    from gradio_client import handle_file

    result = call(client, "/create_project", *DISPLAY, "api-still")
    assert result[MESSAGE] == "created project api-still" and result[-1] == "", "the name box clears once created"
    result = call(client, "/create_project", *DISPLAY, "api-still")
    assert result[MESSAGE].startswith("⚠️") and result[-1] == "api-still", "a refused name stays to be corrected"
    still = tmp_path / "still.mp4"
    cv2.imwrite(str(tmp_path / "still.png"), np.full((20, 20, 3), 90, np.uint8))
    still.write_bytes((tmp_path / "still.png").read_bytes())
    status, message = screen(client, "/import_video", handle_file(str(still)))
    assert message == "imported still: 1 frame of 20x20; still.mp4 holds a single frame (a still image?)", message
    assert status.startswith("still · frame 0 (0–0)"), status


def test_the_media_folder_choice_starts_empty(server):
    import urllib.request

    with urllib.request.urlopen(server.url + "config", timeout=30) as answer:
        config = json.loads(answer.read())
    [media] = [c["props"] for c in config["components"] if c.get("props", {}).get("elem_id") == "media_path"]
    assert media["choices"] and media.get("value") in (None, "", []), media


def test_upload_over_the_limit_is_refused_readably(client, sample_video, tmp_path):
    from gradio_client import handle_file

    before = new_project_with_video(client, "api-big", sample_video)
    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(300_000))
    with pytest.raises(Exception) as refused:
        screen(client, "/import_video", handle_file(str(big)))
    text = str(refused.value)
    response = getattr(refused.value, "response", None)
    assert response is None or response.status_code == 413, text
    assert re.search(r"(?i)(too large|exceeds|maximum|limit)", text) and len(text) < 400, text
    # the app and the project still work: the same screen, one video, and the next upload is taken
    status, message = screen(client, "/next_frame")
    assert status.startswith("square · frame 1 (0–7)") and before.startswith("square · frame 0"), status
    status, message = screen(client, "/import_video", handle_file(str(sample_video)))
    assert message.startswith("imported square-2: 8 frames"), message


def test_a_new_client_opens_an_existing_project(server, sample_video, tmp_path):
    """A script (a new API session) opens a project made earlier and picks its video and object."""
    from gradio_client import Client

    first = Client(server.url, verbose=False, download_files=str(tmp_path / "first"))
    new_project_with_video(first, "api-reopen", sample_video)
    assert screen(first, "/add_object", EXPRESSION, "others")[1].startswith("added object 1")

    second = Client(server.url, verbose=False, download_files=str(tmp_path / "second"))
    status, message = screen(second, "/open_project", "api-reopen")
    assert status.startswith("square · frame 0 (0–7)") and "object 1" in status, (status, message)
    status, message = screen(second, "/select_video", "square")
    assert status.startswith("square · frame 0"), (status, message)
    status, message = screen(second, "/select_object", 1)
    assert "object 1" in status, (status, message)


def test_auth_refuses_the_page_and_the_api_without_credentials(tiny_model, sample_video, tmp_path):
    """``--auth``: without credentials the page shows only the login form and every endpoint refuses; with them the
    studio works."""
    import urllib.error
    import urllib.request

    from gradio_client import Client

    app = start_app(tmp_path / "auth", *tiny_model, sample_video, "--auth", "ann:secret-word")
    try:
        with urllib.request.urlopen(app.url, timeout=30) as page:
            html = page.read().decode("utf-8", "replace")
        assert '"auth_required":true' in html.replace(" ", ""), html[:500]
        assert "project_create" not in html, "the studio's page is served without credentials"
        for path, body in [("gradio_api/info", None), ("config", None),
                           ("gradio_api/call/create_project", b'{"data": [false, true, 0.5, "intruder"]}'),
                           ("gradio_api/upload", b"")]:
            request = urllib.request.Request(app.url + path, data=body, headers={"Content-Type": "application/json"})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=30)
            assert refused.value.code in (401, 403), (path, refused.value.code)
        with pytest.raises(Exception):
            Client(app.url, verbose=False).predict(*DISPLAY, "intruder", api_name="/create_project")
        with pytest.raises(Exception):
            Client(app.url, auth=("ann", "wrong"), verbose=False)
        assert not (app.projects_dir / "intruder").exists()

        client = Client(app.url, auth=("ann", "secret-word"), verbose=False, download_files=str(tmp_path / "files"))
        status, message = screen(client, "/create_project", "with-auth")
        assert message == "created project with-auth" and status == "project with-auth: add a video", message
        assert app.alive(), app.log_tail()
    finally:
        app.stop()
