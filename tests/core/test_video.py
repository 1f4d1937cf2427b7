"""Video files: streamed decoding with PyAV, frame sampling, and clear errors for bad files."""
import av
import numpy as np
import pytest
import torch

from referformer_core.checkpoint import save_checkpoint
from referformer_core.errors import VideoError
from referformer_core.predictor import VideoPredictor
from referformer_core.video import iter_video_frames, probe_video, resize_frame, resized_size


def write_video(path, frames, fps=10, codec="mpeg4"):
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="module")
def video_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("videos") / "clip.mp4"
    frames = np.zeros((6, 48, 64, 3), np.uint8)
    for i in range(6):
        frames[i, :, i * 8:(i + 1) * 8] = 255
    write_video(path, frames)
    return path


def test_decodes_every_frame_and_probes(video_file):
    info = probe_video(video_file)
    assert (info.width, info.height) == (64, 48) and info.fps == pytest.approx(10)
    frames = list(iter_video_frames(video_file))
    assert len(frames) == 6 and frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8
    assert frames[2][:, 16:24].mean() > 200 and frames[2][:, 40:].mean() < 40


def test_stride_and_frame_limit(video_file):
    assert len(list(iter_video_frames(video_file, stride=2))) == 3
    with pytest.raises(VideoError, match="more than 4 frames"):
        list(iter_video_frames(video_file, max_frames=4))


def test_missing_empty_corrupt_and_truncated_files(tmp_path, video_file):
    with pytest.raises(VideoError, match="does not exist"):
        list(iter_video_frames(tmp_path / "none.mp4"))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match="not a readable video"):
        list(iter_video_frames(empty))
    text = tmp_path / "text.mp4"
    text.write_text("this is not a video at all" * 50)
    with pytest.raises(VideoError, match="not a readable video"):
        list(iter_video_frames(text))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(video_file.read_bytes()[:300])
    with pytest.raises(VideoError):
        list(iter_video_frames(cut))


def test_resize_follows_torchvision_rounding():
    assert resized_size(720, 1280, 360) == (360, 640)
    assert resized_size(1080, 1440, 360) == (360, 480)
    assert resized_size(500, 333, 360) == (540, 360)
    frame = np.full((72, 96, 3), 200, np.uint8)
    out = resize_frame(frame, 36)
    assert out.shape == (3, 36, 48) and out.dtype == torch.uint8 and int(out.min()) == 200 == int(out.max())


def test_predictor_from_checkpoint_on_a_video_file(recipe_model, tokenizer_dir, tmp_path, video_file):
    path = tmp_path / "model.pth"
    save_checkpoint(recipe_model, path)
    predictor = VideoPredictor.from_checkpoint(path, text_encoder=str(tokenizer_dir), short_side=48)
    masks = predictor.predict(video_file, "the white cat")
    assert masks.shape == (6, 48, 64) and masks.dtype == bool


def test_frame_buffer_keeps_frames_on_disk_and_returns_windows():
    from referformer_core.video import FrameBuffer

    buffer = FrameBuffer()
    frames = [torch.full((3, 4, 5), i, dtype=torch.uint8) for i in range(7)]
    for f in frames:
        buffer.append(f)
    assert len(buffer) == 7 and buffer.shape == (7, 3, 4, 5)
    window = buffer[2:5]
    assert window.shape == (3, 3, 4, 5) and [int(w[0, 0, 0]) for w in window] == [2, 3, 4]
    window[0] += 1
    assert int(buffer[2:3][0, 0, 0, 0]) == 2
    with pytest.raises(RuntimeError):
        buffer.append(frames[0])
    other = FrameBuffer()
    other.append(frames[0])
    with pytest.raises(VideoError, match="resized to"):
        other.append(torch.zeros(3, 4, 6, dtype=torch.uint8))
    with pytest.raises(VideoError, match="zero frames"):
        FrameBuffer()[0:1]
