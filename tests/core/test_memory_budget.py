"""Memory budget: the window chosen from a peak-RSS budget, the estimate it rests on, and what a budget changes."""
import numpy as np
import pytest
import torch

from referformer_core import memory, pipeline
from referformer_core.checkpoint import save_checkpoint
from referformer_core.cli import build_parser, main
from referformer_core.config import get_config
from referformer_core.errors import ReferFormerError
from referformer_core.memory import GIB, window_for_budget
from referformer_core.predictor import VideoPredictor
from referformer_core.text import load_tokenizer

WIDE_TINY = get_config("tiny").replace(hidden_dim=256)
"""EfficientNet-Lite0 with the official width 256: the decoder holds the peak, as in the official models."""
MB = 1_000_000


def make_video(t=5, h=48, w=64, seed=5):
    return np.random.default_rng(seed).integers(0, 256, size=(t, h, w, 3), dtype=np.uint8)


def budget_for(predictor, state, window):
    """GB (GiB) in which the estimate fits ``window`` frames per pass and a half, not ``window + 1``."""
    size = tuple(state.frames.shape[-2:])
    config = predictor.model.config
    fixed = memory.RUNTIME_BYTES + memory.weight_bytes(predictor.model)
    fixed += state.num_frames * memory.video_frame_bytes(config, size, len(state.expressions))
    return (fixed + (window + 0.5) * memory.window_frame_bytes(config, size)) / GIB


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    return load_tokenizer(str(tokenizer_dir))


def test_window_for_budget():
    assert window_for_budget(10 * GIB, GIB, 2 * GIB, max_window=36) == 8
    assert window_for_budget(100 * GIB, GIB, 0, max_window=36) == 36
    assert window_for_budget(5 * GIB + 3 * 7, 7, 5 * GIB, max_window=36) == 3
    assert window_for_budget(5 * GIB + 3 * 7 - 1, 7, 5 * GIB, max_window=36) == 2
    assert window_for_budget(GIB, GIB, 2 * GIB, max_window=36) == 1, "below the fixed part: one frame at a time"
    with pytest.raises(ValueError):
        window_for_budget(GIB, 0, 0, max_window=36)


def test_the_estimate_covers_the_calibration_measurements():
    resnet = memory.window_frame_bytes(get_config("resnet50"), (360, 640))
    assert 211 * MB <= resnet <= 1.5 * 190 * MB, "ResNet-50 at 360x640 measured 190-211 MB per frame"
    small = memory.window_frame_bytes(get_config("small"), (360, 640))
    assert 100 * MB <= small <= 2 * 62 * MB, "the small model at 360x640 measured 62-100 MB per frame"
    assert memory.window_frame_bytes(get_config("resnet50"), (720, 1280)) == pytest.approx(4 * resnet, rel=1e-6)


def test_video_frame_bytes_match_what_a_run_keeps(recipe_model, tokenizer):
    predictor = VideoPredictor(recipe_model, tokenizer, short_side=40, window=None)
    state = predictor.init_state(make_video(t=2, h=40, w=58))
    predictor.add_expression(state, 1, "the dog")
    predictor.add_expression(state, 2, "a red car")
    predictor.run(state)
    kept = sum(t[0].numel() * t.element_size() for r in state.results.values()
               for t in (r.logits, r.boxes, r.mask_logits))
    frame = state.frames[0:1]
    size = tuple(frame.shape[-2:])
    assert memory.video_frame_bytes(recipe_model.config, size, 2) == frame.numel() + kept


def run(predictor, video, text="the brown dog"):
    state = predictor.init_state(video)
    predictor.add_expression(state, 1, text)
    predictor.run(state)
    return state


def test_a_small_budget_picks_a_smaller_window_and_gives_that_windows_masks(recipe_model, tokenizer):
    video = make_video(t=4)
    roomy = VideoPredictor(recipe_model, tokenizer, short_side=48)
    state = roomy.init_state(video)
    roomy.add_expression(state, 1, "the brown dog")
    assert roomy.window_for(state) == pipeline.WINDOW, "48x64 frames fit the longest window in 4 GB"

    tight = VideoPredictor(recipe_model, tokenizer, short_side=48, max_memory=budget_for(roomy, state, 2))
    assert tight.window_for(state) == 2
    tight.run(state)
    explicit = run(VideoPredictor(recipe_model, tokenizer, short_side=48, window=2), video).results[1]
    assert torch.equal(state.results[1].mask_logits, explicit.mask_logits)
    expected = pipeline.upsample_masks(explicit.mask_logits[:, explicit.best_query], (48, 64))
    assert np.array_equal(tight.predict(video, "the brown dog"), expected)
    whole = run(VideoPredictor(recipe_model, tokenizer, short_side=48, window=None), video).results[1]
    assert not torch.allclose(whole.mask_logits, explicit.mask_logits), "the window must matter on this video"


def test_an_explicit_window_wins_and_no_budget_gives_the_longest(recipe_model, tokenizer):
    state = VideoPredictor(recipe_model, tokenizer, short_side=48).init_state(make_video(t=6))
    assert VideoPredictor(recipe_model, tokenizer, short_side=48, window=3, max_memory=0.01).window_for(state) == 3
    whole = VideoPredictor(recipe_model, tokenizer, short_side=48, window=None, max_memory=0.01)
    assert whole.window_for(state) is None
    assert VideoPredictor(recipe_model, tokenizer, short_side=48, max_memory=0.01).window_for(state) == 1
    assert VideoPredictor(recipe_model, tokenizer, max_memory=None, max_window=4).window_for(state) == 4
    with pytest.raises(ValueError, match="window"):
        VideoPredictor(recipe_model, tokenizer, window="budget")
    with pytest.raises(ValueError, match="max_memory"):
        VideoPredictor(recipe_model, tokenizer, max_memory=0)


def test_the_checkpoints_window_bounds_the_budget_window(recipe_model, tokenizer_dir, tmp_path):
    path = tmp_path / "windowed.pth"
    save_checkpoint(recipe_model, path, window=3)
    state = VideoPredictor(recipe_model, None, short_side=48).init_state(make_video(t=8))
    loaded = VideoPredictor.from_checkpoint(path, text_encoder=str(tokenizer_dir), short_side=48)
    assert loaded.window_for(state) == 3 and loaded.settings.max_memory == memory.DEFAULT_MAX_MEMORY
    explicit = VideoPredictor.from_checkpoint(path, text_encoder=str(tokenizer_dir), short_side=48, window=5)
    assert explicit.window_for(state) == 5 and explicit.settings.budget is None


@pytest.mark.parametrize("flags, window, budget", [
    ([], None, memory.DEFAULT_MAX_MEMORY),
    (["--max-memory", "2.5"], None, 2.5),
    (["--max-memory", "0"], None, None),
    (["--max-memory", "1", "--window", "4"], 4, None),  # an explicit window wins over the budget
])
def test_segment_passes_max_memory_on(run_settings, capsys, flags, window, budget):
    assert main(["segment", "v.mp4", "x", *flags]) == 2 and "stop here" in capsys.readouterr().err
    assert (run_settings[0].window, run_settings[0].budget) == (window, budget)


def test_segment_rejects_a_negative_budget(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["segment", "v.mp4", "x", "--max-memory", "-1"])
    assert "--max-memory" in capsys.readouterr().err


def test_segment_under_a_tiny_budget_runs_one_frame_at_a_time(recipe_model, tokenizer_dir, tmp_path, capsys):
    ckpt = tmp_path / "m.pth"
    save_checkpoint(recipe_model, ckpt)
    video = tmp_path / "v.mp4"
    from tests.core.test_video import write_video

    write_video(video, make_video(t=3, h=40, w=56))
    common = [str(video), "the dog", "--checkpoint", str(ckpt), "--text-encoder", str(tokenizer_dir),
              "--short-side", "40", "--no-preview"]
    assert main(["segment", *common, "--out", str(tmp_path / "a"), "--max-memory", "0.01"]) == 0
    assert "window 3/3" in capsys.readouterr().err, "a budget below the model's own size runs one frame at a time"
    assert len(list((tmp_path / "a").glob("*.png"))) == 3


class FixedTokenizer:
    """The same token ids for any text (the child processes need no tokenizer files)."""

    def __call__(self, texts, **kwargs):
        ids = torch.tensor([[0, 11, 12, 13, 14, 2]] * len(texts))
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def segment_in_child(max_memory, num_frames):
    """Child process: segment a ``num_frames`` video at 128x224 with ``WIDE_TINY`` under ``max_memory`` GB (None:
    one window for the whole video); the window it used."""
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = memory_model()
    window = "auto" if max_memory else num_frames
    predictor = VideoPredictor(model, FixedTokenizer(), short_side=128, window=window, max_memory=max_memory)
    state = predictor.init_state(make_video(t=num_frames, h=128, w=224))
    predictor.add_expression(state, 1, "the square")
    used = predictor.window_for(state)
    predictor.run(state)
    return used


def memory_model():
    from referformer_core.referformer import ReferFormer

    return ReferFormer(WIDE_TINY).eval()


def allocate(megabytes):
    """Child process: touch ``megabytes`` MB (fails on a negative size)."""
    if megabytes < 0:
        raise ValueError("a negative size")
    return int(np.ones(megabytes * MB, dtype=np.uint8).sum())


@pytest.mark.slow
def test_measure_peak_rss_sees_what_a_child_allocates():
    base, _ = memory.measure_peak_rss(allocate, 0)
    peak, touched = memory.measure_peak_rss(allocate, 300)
    assert touched == 300 * MB and 290 * MB <= peak - base <= 400 * MB
    with pytest.raises(RuntimeError, match="a negative size"):
        memory.measure_peak_rss(allocate, -1)


@pytest.mark.slow
def test_the_peak_rss_stays_within_a_tight_budget():
    frames = 16
    probe = VideoPredictor(memory_model(), FixedTokenizer(), short_side=128)
    state = probe.init_state(make_video(t=frames, h=128, w=224))
    probe.add_expression(state, 1, "the square")
    budget = budget_for(probe, state, 2)
    unbounded, used = memory.measure_peak_rss(segment_in_child, None, frames)
    bounded, used_bounded = memory.measure_peak_rss(segment_in_child, budget, frames)
    assert used == frames and used_bounded == 2
    assert bounded <= budget * GIB, f"peak {bounded / MB:.0f} MB over the budget {budget * GIB / MB:.0f} MB"
    assert bounded + 150 * MB < unbounded, f"{bounded / MB:.0f} MB with the budget, {unbounded / MB:.0f} without"


@pytest.mark.slow
def test_the_estimate_against_a_measurement():
    size = (128, 224)
    measured, _ = memory.calibrate(WIDE_TINY, size, windows=(2, 6))
    estimate = memory.window_frame_bytes(WIDE_TINY, size)
    message = f"estimate {estimate / MB:.1f} MB per frame, measured {measured / MB:.1f} MB"
    assert 0.9 * measured <= estimate <= 1.6 * measured, message
