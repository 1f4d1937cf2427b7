"""Bringing videos into a project: files, zips of frames, paths under --media-dir, and every kind of bad input."""
import zipfile

import av
import cv2
import numpy as np
import pytest

from referformer_core.errors import ReferFormerError
from studio.errors import StudioError
from studio.media import (ImportOptions, import_media, list_media, natural_key, resolve_media_path,
                          unique_video_name)

from .conftest import moving_square_frames, write_mp4


@pytest.fixture
def project(library):
    return library.create("p")


def test_video_is_imported_at_the_working_size_with_stride_and_cap(project, tmp_path):
    video = write_mp4(tmp_path / "clip.mp4", moving_square_frames(t=9, h=144, w=256), fps=12)
    info = import_media(project, video, ImportOptions(stride=2, max_frames=4, short_side=72))
    assert (info.name, info.frame_count, info.height, info.width) == ("clip", 4, 72, 128)
    assert info.fps == pytest.approx(6.0)
    assert info.sampling == {"stride": 2, "max_frames": 4, "short_side": 72}
    frame = project.read_frame("clip", 1)
    assert frame.shape == (72, 128, 3)
    again = import_media(project, video, ImportOptions(short_side=360))
    assert again.name == "clip-2" and again.frame_count == 9 and (again.height, again.width) == (144, 256)


def test_a_4k_video_is_decoded_at_the_working_size(project, tmp_path):
    frames = np.zeros((2, 2160, 3840, 3), np.uint8)
    frames[:, 1000:1200, 1000:1400] = 200
    info = import_media(project, write_mp4(tmp_path / "big.mp4", frames), ImportOptions(short_side=360))
    assert (info.height, info.width, info.frame_count) == (360, 640, 2)


def test_phone_rotation_metadata_is_applied(project, tmp_path):
    path = tmp_path / "phone.mp4"
    image = np.zeros((32, 64, 3), np.uint8)
    image[:, :8] = 255
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(90)
        for _ in range(2):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    info = import_media(project, path)
    assert (info.height, info.width) == (64, 32)
    frame = project.read_frame(info.name, 0)
    assert frame[-4:].mean() > 200 and frame[:8].mean() < 30, "the stripe on the left must end up at the bottom"


def test_zip_of_frames_in_natural_order(project, tmp_path):
    archive = tmp_path / "frames.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in (10, 2, 1):
            image = np.full((40, 60, 3), i * 20, np.uint8)
            ok, data = cv2.imencode(".png" if i == 2 else ".jpg", image)
            zf.writestr(f"clip/frame{i}.{'png' if i == 2 else 'jpg'}", data.tobytes())
        zf.writestr("clip/notes.txt", "not a frame")
        zf.writestr("__MACOSX/clip/._frame1.jpg", "junk")
    info = import_media(project, archive)
    assert info.frame_count == 3
    means = [project.read_frame(info.name, t).mean() for t in range(3)]
    assert means == sorted(means) and abs(means[0] - 20) < 3 and abs(means[2] - 200) < 3


@pytest.mark.parametrize("entry", ["../evil.jpg", "/etc/evil.jpg", "a/../../evil.jpg", "C:/evil.jpg"])
def test_zip_with_paths_leaving_the_archive_is_refused(project, tmp_path, entry):
    archive = tmp_path / "evil.zip"
    ok, data = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.jpg", data.tobytes())
        zf.writestr(entry, data.tobytes())
    with pytest.raises(StudioError, match="outside the archive"):
        import_media(project, archive)
    assert project.videos() == []
    assert not (tmp_path.parent / "evil.jpg").exists()


@pytest.mark.parametrize("content, name, message", [
    (b"", "empty.mp4", "empty"),
    (b"hello, I am a text file\n" * 20, "notes.mp4", "not a readable video"),
    (bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)), "noise.mp4", "not a readable video"),
    (b"PK\x03\x04 broken", "broken.zip", "not a readable zip"),
    (b"GIF89a", "anim.gif", "not a supported file"),
])
def test_bad_files_are_one_readable_line_and_leave_the_project_unchanged(project, tmp_path, content, name, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ReferFormerError, match=message) as caught:
        import_media(project, path)
    assert "\n" not in str(caught.value)
    assert project.videos() == []
    assert list((project.folder / "frames").iterdir()) == []


def test_truncated_video_keeps_nothing(project, tmp_path):
    video = write_mp4(tmp_path / "cut.mp4", moving_square_frames(t=30))
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 3])
    try:
        info = import_media(project, video)
    except ReferFormerError as exc:
        assert "\n" not in str(exc) and project.videos() == []
    else:
        assert 0 < info.frame_count < 30


def test_options_are_checked():
    with pytest.raises(StudioError, match="stride"):
        ImportOptions(stride=0).checked()
    with pytest.raises(StudioError, match="short side"):
        ImportOptions(short_side=10).checked()


def test_media_paths_must_stay_inside_the_media_folders(tmp_path):
    media = tmp_path / "media"
    (media / "sub").mkdir(parents=True)
    inside = write_mp4(media / "sub" / "a.mp4", moving_square_frames(t=2))
    outside = write_mp4(tmp_path / "secret.mp4", moving_square_frames(t=2))
    (media / "link.mp4").symlink_to(outside)
    assert resolve_media_path("sub/a.mp4", [media]) == inside.resolve()
    assert resolve_media_path(str(inside), [media]) == inside.resolve()
    for bad in ("../secret.mp4", str(outside), "link.mp4", "/etc/passwd"):
        with pytest.raises(StudioError, match="outside the media folders"):
            resolve_media_path(bad, [media])
    with pytest.raises(StudioError, match="no such file"):
        resolve_media_path("sub/missing.mp4", [media])
    with pytest.raises(StudioError, match="--media-dir"):
        resolve_media_path("sub/a.mp4", [])
    assert list_media([media]) == ["link.mp4", "sub/a.mp4"]


def test_names():
    assert sorted(["f10", "f2", "f1"], key=natural_key) == ["f1", "f2", "f10"]


def test_unique_names_are_safe(project):
    assert unique_video_name(project, "../My clip (1)") == "My_clip_1"
    assert unique_video_name(project, "...") == "video"
