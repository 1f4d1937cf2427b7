"""``kill -9`` of a real ``python app.py`` during a segmentation, an export and an import, then a restart.

After each kill the project opens (directly and through a restarted server), every acknowledged edit is there
(the object, the reviewed frame, the masks of every window the segmentation had reported), no half-written
export is visible under a final name, and an interrupted import leaves no video and no frames behind.
"""
from __future__ import annotations

import errno
import re
import time
import zipfile
from pathlib import Path

import pytest

from annotations import Project
from tests.studio.app_server import AppServer, start_app
from tests.studio.conftest import moving_square_frames, write_mp4

DISPLAY = (False, True, 0.5)
STATUS, MESSAGE = 8, 9
PROJECT = "crash"


def client_of(server: AppServer, folder: Path):
    from gradio_client import Client

    return Client(server.url, verbose=False, download_files=str(folder))


def screen(client, api_name: str, *args) -> tuple[str, str]:
    result = client.predict(*DISPLAY, *args, api_name=api_name)
    return result[STATUS], result[MESSAGE]


def wait_for(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def kill(server: AppServer) -> None:
    server.process.kill()  # SIGKILL: no clean-up of any kind runs
    server.process.wait(timeout=30)


def reopened(server_root: Path, model, video: Path, tmp: Path) -> tuple[AppServer, object]:
    """A new server over the same folders, and a client that has opened the project."""
    server = start_app(server_root, *model, video)
    client = client_of(server, tmp)
    status, message = screen(client, "/open_project", PROJECT)
    assert not message.startswith("⚠️") and status.startswith("long · frame"), (status, message)
    return server, client


def big_video(path: Path, frames: int = 600) -> Path:
    """A 640x360 clip long enough for its import to be caught half-way (a textured background rolling by)."""
    import numpy as np

    from referformer_core.overlay import write_video

    texture = np.random.default_rng(0).integers(0, 255, (360, 640, 3), dtype=np.uint8)
    return write_video(path, (np.roll(texture, 7 * t, axis=1) for t in range(frames)), fps=24.0)


@pytest.mark.slow
def test_kill_during_segment_export_and_import(tiny_model, tmp_path):
    from gradio_client import handle_file

    long = write_mp4(tmp_path / "long.mp4", moving_square_frames(t=96))
    big = big_video(tmp_path / "big.mp4")
    root = tmp_path / "server"
    server = start_app(root, *tiny_model, long)
    project_dir = server.projects_dir / PROJECT
    try:
        client = client_of(server, tmp_path / "c1")
        screen(client, "/create_project", PROJECT)
        assert screen(client, "/import_video", handle_file(str(long)))[1].startswith("imported long: 96 frames")
        assert screen(client, "/add_object", "the red square", "others")[1].startswith("added object 1")
        assert screen(client, "/mark_reviewed")[1] == "frame 0 marked reviewed"

        # 1. during a segmentation: killed once a window's masks were reported
        job = client.submit(*DISPLAY, False, api_name="/segment")
        wait_for(lambda: any(re.match(r"segmented \d+/96", str(o[MESSAGE])) for o in job.outputs()),
                 "the first window")
        kill(server)
        reported = [int(m.group(1)) for o in job.outputs() if (m := re.match(r"segmented (\d+)/96", str(o[MESSAGE])))]
        with Project.open(project_dir) as project:
            [video] = project.videos()
            assert [o.expressions for o in project.objects("long")] == [("the red square",)]
            assert project.review_states("long")[0].value == "reviewed"
            assert len(project.mask_infos("long", 1)) >= max(reported), (len(project.mask_infos("long", 1)), reported)

        # 2. during an export: killed while the zip is being written
        server, client = reopened(root, tiny_model, long, tmp_path / "c2")
        downloads = server.temp_dir / "downloads"
        job = client.submit("Ref-Youtube-VOS", False, api_name="/export")
        wait_for(lambda: any(downloads.iterdir()), "the export to start writing")
        kill(server)
        for path in downloads.iterdir():  # partial files only, or a zip that was complete before the kill
            if not path.name.startswith(".partial-"):
                with zipfile.ZipFile(path) as zf:
                    assert zf.testzip() is None, f"a half-written download under its final name: {path}"

        # 3. during an import: killed while frames are being written
        server, client = reopened(root, tiny_model, long, tmp_path / "c3")
        assert not any(downloads.iterdir()), "partial downloads are removed at start"
        frames_root = project_dir / "frames"
        before = {p.name for p in frames_root.iterdir()}
        job = client.submit(*DISPLAY, handle_file(str(big)), 1, 2000, 360, api_name="/import_video")
        wait_for(lambda: any(len(list(p.glob("*.jpg"))) > 5 for p in frames_root.iterdir() if p.name not in before),
                 "the import to write frames")
        kill(server)
        with Project.open(project_dir) as project:
            assert [v.name for v in project.videos()] == ["long"]
            assert len(project.mask_infos("long", 1)) >= max(reported)
        assert {p.name for p in frames_root.iterdir()} == before, "the interrupted import left frames behind"

        server, client = reopened(root, tiny_model, long, tmp_path / "c4")
        status, message = screen(client, "/goto", 0)
        assert "1/96 frames reviewed" in status and "object 1" in status, status
        path, message = client.predict("COCO", False, api_name="/export")
        assert message.startswith("✅ exported 1 video(s), 96 frames") and zipfile.is_zipfile(path), message
    finally:
        server.stop()


# ---------------------------------------------------------------- a full disk (the write fails with ENOSPC)
def no_space_after(monkeypatch, owner, name: str, allowed: int) -> None:
    """``owner.name`` (a write method) fails with ENOSPC after ``allowed`` calls."""
    real, calls = getattr(owner, name), []

    def write(*args, **kwargs):
        calls.append(1)
        if len(calls) > allowed:
            raise OSError(errno.ENOSPC, "No space left on device", str(args[1] if len(args) > 1 else ""))
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, write)


def one_line(message: str) -> None:
    assert message.startswith("the disk is full") and "\n" not in message and len(message) < 300, message


def project_with_work(studio, sample_video):
    from studio.media import ImportOptions

    view = studio.create_project("full").view
    view = studio.import_file(view, sample_video, ImportOptions()).view
    view = studio.add_object(view, "the red square", "others").view
    view = studio.mark(view, "reviewed", advance=False).view
    return view


def still_there(studio, view, masks: int = 0) -> None:
    from annotations import Project

    studio.close()
    with Project.open(studio.config.projects_dir / view.project) as project:
        assert [v.name for v in project.videos()] == ["square"]
        assert [o.expressions for o in project.objects("square")] == [("the red square",)]
        assert project.review_states("square")[0].value == "reviewed"
        assert len(project.mask_infos("square", 1)) >= masks
        assert len(list((project.folder / "frames").iterdir())) == 1, "frames of a failed import were left"


def test_disk_full_during_import(studio, sample_video, monkeypatch):
    from studio.errors import user_message
    from studio.media import ImportOptions

    view = project_with_work(studio, sample_video)
    no_space_after(monkeypatch, Path, "write_bytes", 3)
    with pytest.raises(OSError) as failed:
        studio.import_file(view, sample_video, ImportOptions())
    one_line(user_message(failed.value))
    monkeypatch.undo()
    still_there(studio, view)


def test_disk_full_during_export(studio, sample_video, monkeypatch):
    from studio.errors import user_message

    view = project_with_work(studio, sample_video)
    no_space_after(monkeypatch, zipfile.ZipFile, "write", 1)
    with pytest.raises(OSError) as failed:
        studio.export(view, "Ref-Youtube-VOS")
    one_line(user_message(failed.value))
    assert not list(studio.config.downloads_dir.iterdir()), "a partial export was left"
    monkeypatch.undo()
    still_there(studio, view)


def test_disk_full_during_segmentation(studio, sample_video):
    """The database cannot grow after the first window: the run stops with one line, that window's masks and every
    earlier edit are kept."""
    from studio.errors import user_message

    view = project_with_work(studio, sample_video)
    steps = studio.segment(view)
    first = next(steps)
    db = studio.project(view)._db  # the store's connection: cap its file at the pages it has now
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
    with pytest.raises(Exception) as failed:
        for _ in steps:
            pass
    one_line(user_message(failed.value))
    still_there(studio, view, masks=first.done)
