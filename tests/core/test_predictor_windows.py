"""VideoPredictor streams masks window by window, and the last masks of each frame are the official ones."""
import numpy as np
import pytest

from referformer_core import pipeline
from referformer_core.errors import ExpressionError
from referformer_core.predictor import VideoPredictor
from referformer_core.text import load_tokenizer


def make_video(t=5, h=48, w=64, seed=3):
    return np.random.default_rng(seed).integers(0, 256, size=(t, h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def windowed(recipe_model, tokenizer_dir):
    return VideoPredictor(recipe_model, load_tokenizer(str(tokenizer_dir)), short_side=48, window=2)


def test_windows_arrive_one_by_one_and_end_on_the_final_query(windowed):
    state = windowed.init_state(make_video())
    windowed.add_expression(state, 1, "the brown dog")
    windowed.add_expression(state, 4, "a red car")
    seen_results = []
    last: dict[int, np.ndarray] = {}
    windows = []
    for window in windowed.iter_windows(state):
        seen_results.append(set(state.results))
        windows.append((window.frames, window.final))
        assert window.masks.shape == (2, len(window.frames), 48, 64) and window.scores.shape == (2, len(window.frames))
        for i, t in enumerate(window.frames):
            last[t] = window.masks[:, i]
    first_pass = [w for w, final in windows if not final]
    assert first_pass == [range(0, 2), range(2, 4), range(4, 5)]
    assert seen_results[0] == set(), "the first window must be yielded before the whole video is done"
    assert all(final for _, final in windows[3:])
    best = {o: state.results[o].best_query for o in (1, 4)}
    for o_index, o in enumerate((1, 4)):
        expected = pipeline.upsample_masks(state.results[o].mask_logits[:, best[o]], (48, 64))
        assert np.array_equal(np.stack([last[t][o_index] for t in range(5)]), expected)
    assert np.array_equal(windowed.frame_scores(state, 4),
                          state.results[4].logits[:, best[4]].sigmoid().numpy())


def test_predict_keeps_the_last_masks_of_each_frame(windowed):
    video = make_video(seed=4)
    masks = windowed.predict(video, "the white cat")
    state = windowed.init_state(video)
    windowed.add_expression(state, 1, "the white cat")
    windowed.run(state)
    result = state.results[1]
    assert np.array_equal(masks, pipeline.upsample_masks(result.mask_logits[:, result.best_query], (48, 64)))


def test_no_expression_is_an_error_before_any_work(windowed):
    with pytest.raises(ExpressionError):
        next(windowed.iter_windows(windowed.init_state(make_video(t=2))))


def test_a_short_first_window_then_full_windows(recipe_model, windowed):
    predictor = VideoPredictor(recipe_model, windowed.tokenizer, short_side=48, window=2, first_window=1)
    assert predictor._windows(predictor.init_state(make_video(t=5))) == [(0, 1), (1, 3), (3, 5)]
    assert predictor._windows(predictor.init_state(make_video(t=1))) == [(0, 1)]
    whole = VideoPredictor(recipe_model, windowed.tokenizer, short_side=48, window=None, first_window=3)
    assert whole._windows(whole.init_state(make_video(t=7))) == [(0, 3), (3, 7)]
    state = predictor.init_state(make_video())
    predictor.add_expression(state, 1, "the brown dog")
    assert [w.frames for w in predictor.iter_windows(state) if not w.final] == [range(0, 1), range(1, 3), range(3, 5)]


def test_query_masks_on_demand_match_the_candidate_tracks(windowed):
    state = windowed.init_state(make_video(t=4))
    windowed.add_expression(state, 2, "a red car")
    tracks = windowed.candidate_tracks(state, 2)
    scores = windowed.query_scores(state, 2)
    assert int(scores.argmax()) == tracks[0].query and scores.shape == (5,)
    runner_up = tracks[1]
    masks, frame_scores = windowed.query_masks(state, 2, runner_up.query, range(1, 3))
    assert np.array_equal(masks, runner_up.masks[1:3]) and np.allclose(frame_scores, runner_up.scores[1:3])
    with pytest.raises(ExpressionError, match="query 9"):
        windowed.query_masks(state, 2, 9, range(0, 1))


def test_refined_masks_are_the_same_through_windows_predict_and_query_masks(recipe_model, tokenizer_dir):
    refining = VideoPredictor(recipe_model, load_tokenizer(str(tokenizer_dir)), short_side=48, window=2,
                              refine_masks=True)
    video = make_video(seed=5)
    state = refining.init_state(video)
    refining.add_expression(state, 1, "the white cat")
    last = {}
    for window in refining.iter_windows(state):
        for i, t in enumerate(window.frames):
            last[t] = window.masks[0, i]
    result = state.results[1]
    logits = result.mask_logits[:, result.best_query]
    expected = pipeline.upsample_masks(logits, (48, 64), guides=state.frames[0:5])
    assert not np.array_equal(expected, pipeline.upsample_masks(logits, (48, 64)))  # the refinement changes masks
    assert np.array_equal(np.stack([last[t] for t in range(5)]), expected)
    assert np.array_equal(refining.predict(video, "the white cat"), expected)
    assert np.array_equal(refining.query_masks(state, 1, result.best_query, range(2, 4))[0], expected[2:4])
    assert np.array_equal(refining.candidate_tracks(state, 1)[0].masks, expected)
