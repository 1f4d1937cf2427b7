"""The studio under concurrent sessions: ``gradio_client`` sessions against one real ``python app.py``.

Identical uploads from several sessions at once all import (Gradio stores uploads by content, so they share one
path), served pictures are never rewritten in place while a client may be reading them, and a soak loop (open
sample, import, add object, segment, step, edit, undo, redo, export) runs with no error, no truncated response,
each project holding only its own objects and edits, and bounded server memory and temp folder.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.studio.app_server import start_app
from tests.studio.conftest import moving_square_frames, write_mp4

DISPLAY = (False, True, 0.5)
STATUS, MESSAGE = 8, 9
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".webp")


@pytest.fixture(scope="module")
def server(tiny_model, sample_video, tmp_path_factory):
    pytest.importorskip("gradio_client")
    checkpoint, tokenizer = tiny_model
    app = start_app(tmp_path_factory.mktemp("soak"), checkpoint, tokenizer, sample_video)
    yield app
    app.stop()


def new_client(server, folder: Path):
    from gradio_client import Client

    return Client(server.url, verbose=False, download_files=str(folder))


def screen(client, api_name: str, *args) -> tuple[str, str]:
    result = client.predict(*DISPLAY, *args, api_name=api_name)
    return result[STATUS], result[MESSAGE]


def served_images(folder: Path) -> dict[Path, tuple[int, int, int]]:
    """Every picture file under ``folder`` with its (inode, mtime in ns, size)."""
    found = {}
    for path in folder.rglob("*"):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            found[path] = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    return found


def test_identical_concurrent_uploads_all_import(server, tmp_path):
    """Six sessions upload the same clip at once (more than the four imports that run together): every one is
    imported into its own project, and nothing of the upload is left in the temp folder afterwards."""
    from gradio_client import handle_file

    video = write_mp4(tmp_path / "same.mp4", moving_square_frames(t=40))
    clients = [new_client(server, tmp_path / f"c{i}") for i in range(6)]
    for i, client in enumerate(clients):
        assert screen(client, "/create_project", f"same-{i}")[1] == f"created project same-{i}"
    start = threading.Barrier(len(clients))

    def upload(client):
        start.wait()
        return screen(client, "/import_video", handle_file(str(video)))

    with ThreadPoolExecutor(len(clients)) as pool:
        results = list(pool.map(upload, clients))
    for status, message in results:
        assert message.startswith("imported same: 40 frames of 128x72"), message
        assert status.startswith("same · frame 0 (0–39)"), status
    assert not list(server.temp_dir.rglob("same.mp4")), "an upload was left in the temp folder"
    assert server.alive(), server.log_tail()


def test_served_images_are_never_rewritten_in_place(server, sample_video, tmp_path):
    """A second session showing the same frame (the same pictures, drawn again) writes new files: the file a
    first client was given is never rewritten while it may be read."""
    from gradio_client import handle_file

    first, second = new_client(server, tmp_path / "a"), new_client(server, tmp_path / "b")
    screen(first, "/create_project", "same-pictures")
    assert screen(first, "/import_video", handle_file(str(sample_video)))[1].startswith("imported square")
    screen(first, "/goto", 0)
    before = served_images(server.temp_dir)
    assert before, "no picture was served"
    screen(second, "/open_project", "same-pictures")
    screen(second, "/goto", 0)
    screen(first, "/next_frame")
    screen(first, "/prev_frame")
    after = served_images(server.temp_dir)
    rewritten = sorted(str(p) for p in before if p in after and after[p] != before[p])
    assert not rewritten, f"served pictures rewritten in place: {rewritten}"


def check_soak(report, server, max_temp_mb: float) -> None:
    summary = report.summary()
    print("soak:", summary)
    assert not report.errors, report.errors[:10]
    assert not report.truncated, report.truncated[:10]
    assert report.loops_done >= report.sessions and summary["requests"] >= 10 * report.loops_done, summary
    assert report.server_peak_rss_gb < 6, summary
    assert report.temp_mb_after < max_temp_mb, summary
    assert server.alive(), server.log_tail()
    assert "Traceback" not in server.log.read_text(errors="replace"), server.log_tail()


def test_two_sessions_soak(server, sample_video, tmp_path):
    """Two sessions, two loops each over the whole studio: no error, no truncated picture, own projects."""
    from tests.studio.soak_sessions import run_soak

    report = run_soak(server, sample_video, tmp_path, sessions=2, loops=2, max_seconds=40)
    check_soak(report, server, max_temp_mb=50)


@pytest.mark.slow
def test_eight_sessions_soak(tiny_model, sample_video, tmp_path):
    """Eight sessions for up to five minutes against a server of their own."""
    from tests.studio.soak_sessions import run_soak

    checkpoint, tokenizer = tiny_model
    app = start_app(tmp_path / "server", checkpoint, tokenizer, sample_video)
    try:
        report = run_soak(app, sample_video, tmp_path / "clients", sessions=8, loops=6, max_seconds=300)
        check_soak(report, app, max_temp_mb=200)
    finally:
        app.stop()


def test_served_images_are_whole_files_and_bounded(tmp_path):
    import cv2
    import numpy as np

    from studio.served import ServedImages

    served = ServedImages(tmp_path / "served", max_age_s=60, max_files=5, sweep_every=4)
    image = np.zeros((20, 30, 3), np.uint8)
    image[:, :, 0] = 200
    paths = [served.save(image, "png") for _ in range(12)]
    assert len(set(paths)) == 12, "every picture gets a name of its own"
    assert served.save(None) is None
    left = sorted((tmp_path / "served").iterdir())
    assert len(left) <= 5 + 3 and not any(p.name.endswith(".part") for p in left), left
    assert (cv2.imread(paths[-1])[..., ::-1] == image).all()
    count = len(left)
    assert served.sweep(now=time.time() + 120) == count and not list((tmp_path / "served").iterdir())


def test_an_upload_goes_once_every_import_of_it_is_done(tmp_path):
    from studio.uploads import UploadCounts

    upload = tmp_path / "abc123" / "clip.mp4"
    upload.parent.mkdir()
    upload.write_bytes(b"x")
    counts = UploadCounts()
    counts.uploaded([str(upload), str(upload)])
    assert not counts.release(upload) and upload.exists() and counts.pending(upload) == 1
    assert counts.release(upload) and not upload.parent.exists()
