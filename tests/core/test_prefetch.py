"""The background decode and window prefetch (referformer_core.prefetch) give the serial path's frames and masks."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from referformer_core import prefetch
from referformer_core.config import get_config
from referformer_core.errors import VideoError
from referformer_core.overlay import write_video
from referformer_core.pipeline import prepare_frames, run_windows, segment_video, window_bounds
from referformer_core.predictor import VideoPredictor
from referformer_core.prefetch import FrameCountChanged, StreamedFrames, count_frames, prefetch_windows, stream_frames
from referformer_core.referformer import ReferFormer
from referformer_core.settings import RunSettings


class FixedTokenizer:
    """The same token ids for any text (the tiny model's vocabulary has no words)."""

    def __call__(self, texts, **kwargs):
        ids = torch.tensor([[0, 11, 12, 13, 2]] * len(texts))
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def make_video(t: int = 7, h: int = 40, w: int = 56, seed: int = 0) -> np.ndarray:
    """``[t, h, w, 3]`` uint8: a bright square moving over noise."""
    rng = np.random.default_rng(seed)
    video = rng.integers(0, 120, (t, h, w, 3), dtype=np.uint8)
    for i in range(t):
        video[i, 10:26, 4 + 4 * i:20 + 4 * i] = 230
    return video


@pytest.fixture(scope="module")
def tiny_model() -> ReferFormer:
    torch.manual_seed(0)
    return ReferFormer(get_config("tiny")).eval()


@pytest.fixture(scope="module")
def video_file(tmp_path_factory) -> tuple[str, np.ndarray]:
    path = tmp_path_factory.mktemp("prefetch") / "clip.mp4"
    write_video(path, make_video(9), fps=10)
    return str(path), make_video(9)


def test_streamed_frames_are_the_serial_frames_for_arrays_and_files(video_file):
    path, _ = video_file
    for video, stride in ((make_video(), 1), (make_video(), 2), (path, 1), (path, 3)):
        serial, orig = prepare_frames(video, 24, stride)
        streamed, streamed_orig = stream_frames(video, 24, stride)
        assert streamed_orig == orig and len(streamed) == len(serial) and streamed.shape == serial.shape
        assert torch.equal(streamed[0:len(serial)], serial[0:len(serial)])
        assert torch.equal(streamed[1:3], serial[1:3])
        streamed.close()


def test_frame_counts_are_known_before_decoding_only_for_arrays_and_files(video_file):
    path, _ = video_file
    assert count_frames(make_video(7)) == 7 and count_frames(make_video(7), stride=3) == 3
    assert count_frames(path) == 9 and count_frames(path, stride=2) == 5
    assert count_frames(iter(make_video(3))) is None
    assert count_frames("/nonexistent/clip.mp4") is None
    assert stream_frames(list(make_video(3)), 24) is None


def test_a_wrong_count_raises_before_the_last_window_is_read():
    more = StreamedFrames(make_video(5), 4, 24)   # the video has one frame more than counted
    assert more[0:2].shape == (2, 3, 24, 33)
    with pytest.raises(FrameCountChanged, match="more than the 4 frames"):
        more[2:4]
    fewer = StreamedFrames(make_video(3), 4, 24)
    with pytest.raises(FrameCountChanged, match="3 frames, not the 4 counted|ended after 3 frames"):
        fewer[2:4]
    for frames in (more, fewer):
        frames.close()


def test_decoding_errors_reach_the_reader():
    bad = make_video(4)
    with pytest.raises(VideoError, match="frame 0 has dtype"):
        StreamedFrames(bad.astype(np.float32), 4, 24).wait_first()


@pytest.mark.parametrize("depth", [1, 3])
def test_prefetched_windows_are_the_slices_in_order(depth):
    frames = torch.arange(10 * 3 * 2 * 2, dtype=torch.int64).view(10, 3, 2, 2).to(torch.uint8)
    bounds = window_bounds(10, 4, first_window=1)
    got = list(prefetch_windows(frames, bounds, torch.device("cpu"), depth=depth))
    assert [tuple(g.shape) for g in got] == [(1, 3, 2, 2), (4, 3, 2, 2), (4, 3, 2, 2), (1, 3, 2, 2)]
    assert all(torch.equal(g, frames[s:e]) for g, (s, e) in zip(got, bounds))


def test_a_reading_error_is_raised_to_the_consumer_and_an_early_stop_ends_the_thread():
    class Failing:
        def __getitem__(self, index):
            if index.start >= 2:
                raise VideoError("frame 2 is corrupt")
            return torch.zeros(index.stop - index.start, 3, 2, 2, dtype=torch.uint8)

    windows = prefetch_windows(Failing(), [(0, 2), (2, 4)], torch.device("cpu"))
    assert next(windows).shape == (2, 3, 2, 2)
    with pytest.raises(VideoError, match="frame 2 is corrupt"):
        next(windows)
    before = threading.active_count()
    early = prefetch_windows(torch.zeros(50, 3, 2, 2), [(i, i + 1) for i in range(50)], torch.device("cpu"))
    next(early)
    early.close()
    assert threading.active_count() <= before


def test_run_windows_outputs_are_identical_with_and_without_prefetch(tiny_model):
    frames, _ = prepare_frames(make_video(8), 32)
    bounds = window_bounds(8, 3, first_window=2)
    args = (tiny_model, FixedTokenizer(), frames, ["the square", "the noise"], bounds, torch.device("cpu"))
    serial = list(run_windows(*args, prefetch=False))
    fed = list(run_windows(*args, prefetch=True))
    assert [(s, e) for s, e, _ in fed] == bounds
    for (_, _, a), (_, _, b) in zip(serial, fed):
        for x, y in zip(a, b):
            assert torch.equal(x.logits, y.logits) and torch.equal(x.mask_logits, y.mask_logits)


@pytest.mark.parametrize("source", ["array", "file"])
def test_segment_video_masks_are_identical_with_and_without_prefetch(tiny_model, video_file, source):
    video = make_video(9) if source == "array" else video_file[0]
    cases = [(["the bright square", "the background"], dict(window=4 if source == "array" else 0)),
             (["the bright square"], dict(window=2, first_window=1, refine=source == "file"))]
    for texts, settings in cases:
        serial = segment_video(tiny_model, FixedTokenizer(), video, texts,
                               RunSettings(short_side=32, max_memory=0, prefetch=False, **settings))
        fed = segment_video(tiny_model, FixedTokenizer(), video, texts,
                            RunSettings(short_side=32, max_memory=0, prefetch=True, **settings))
        assert fed.shape == serial.shape == (len(texts), 9, 40, 56)
        assert serial.any() and np.array_equal(fed, serial)


def test_a_miscounted_video_is_decoded_again_serially(tiny_model, video_file, monkeypatch):
    path, _ = video_file
    options = RunSettings(short_side=32, window=4, max_memory=0, prefetch=True)
    serial = segment_video(tiny_model, FixedTokenizer(), path, ["the square"],
                           RunSettings(short_side=32, window=4, max_memory=0, prefetch=False))
    for wrong in (8, 10):
        monkeypatch.setattr(prefetch, "count_frames", lambda video, stride=1, wrong=wrong: wrong)
        assert np.array_equal(segment_video(tiny_model, FixedTokenizer(), path, ["the square"], options), serial)


def test_predictor_masks_are_identical_with_and_without_prefetch(tiny_model):
    video = make_video(7)
    masks = []
    for fed in (False, True):
        predictor = VideoPredictor(tiny_model, FixedTokenizer(), short_side=32, window=3, prefetch=fed)
        state = predictor.init_state(video)
        predictor.add_expression(state, 1, "the square")
        last = {}
        for frame_idx, _ids, frame_masks in predictor.propagate_in_video(state):
            last[frame_idx] = frame_masks
        masks.append(np.stack([last[i] for i in range(7)]))
    assert np.array_equal(masks[0], masks[1])


def test_prefetch_is_on_by_default_only_on_cuda(tiny_model, monkeypatch):
    assert prefetch.wanted(None, "cuda:0") and not prefetch.wanted(None, torch.device("cpu"))
    assert prefetch.wanted(True, "cpu") and not prefetch.wanted(False, "cuda")
    streamed = []
    monkeypatch.setattr(prefetch, "stream_frames", lambda *a, **k: streamed.append(a) or None)
    segment_video(tiny_model, FixedTokenizer(), make_video(2), ["x"], RunSettings(short_side=32))
    assert streamed == [], "the CPU decodes serially by default"
