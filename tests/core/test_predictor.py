"""VideoPredictor: the SAM 2-shaped API, official post-processing, and clear errors for bad input."""
import numpy as np
import pytest
import torch

from referformer_core.errors import ExpressionError, TextEncoderNotFoundError, VideoError
from referformer_core.parity import postprocess
from referformer_core.predictor import VideoPredictor
from referformer_core.text import load_tokenizer, normalize_expression, text_spec_from_pretrained, tokenize
from referformer_core.video import normalize_frames, resize_frame


def make_video(t=4, h=72, w=96, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(t, h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def predictor(recipe_model, tokenizer_dir):
    return VideoPredictor(recipe_model, load_tokenizer(str(tokenizer_dir)), short_side=64, window=None)


def test_masks_follow_the_official_postprocessing(predictor):
    video = make_video()
    state = predictor.init_state(video)
    assert tuple(state.frames.shape) == (4, 3, 64, 85)
    predictor.add_expression(state, 7, "the brown dog")
    outputs = list(predictor.propagate_in_video(state))
    assert [o[0] for o in outputs] == [0, 1, 2, 3]
    assert all(o[1] == [7] for o in outputs)
    masks = np.stack([o[2][0] for o in outputs])
    assert masks.shape == (4, 72, 96) and masks.dtype == bool

    ids, attn = tokenize(predictor.tokenizer, ["the brown dog"])
    frames = torch.stack([resize_frame(f, 64) for f in video])
    with torch.inference_mode():
        out = predictor.model(normalize_frames(frames)[None], predictor.model.encode_text(ids, attn), torch.tensor([[64, 85]]))
    expected = postprocess(out["pred_logits"][0], out["pred_masks"][0], (72, 96))
    assert np.array_equal(masks, expected["post_binary"].numpy())
    assert state.results[7].best_query == int(expected["post_best_query"])


def test_several_objects_candidates_scores_and_boxes(predictor):
    state = predictor.init_state(iter(make_video(t=3)))
    predictor.add_expression(state, 1, "a red car")
    predictor.add_expression(state, 2, "the white cat")
    frame_idx, obj_ids, masks = next(iter(predictor.propagate_in_video(state)))
    assert frame_idx == 0 and obj_ids == [1, 2] and masks.shape == (2, 72, 96)
    tracks = predictor.candidate_tracks(state, 2)
    assert len(tracks) == 5
    assert [t.mean_score for t in tracks] == sorted((t.mean_score for t in tracks), reverse=True)
    assert tracks[0].query == state.results[2].best_query
    assert tracks[0].masks.shape == (3, 72, 96)
    assert np.array_equal(predictor.frame_scores(state, 2), tracks[0].scores)
    boxes = predictor.frame_boxes(state, 2)
    assert boxes.shape == (3, 4) and np.all(boxes[:, 2] >= boxes[:, 0])


def test_windowed_run_matches_single_pass_when_window_covers_video(recipe_model, tokenizer_dir, predictor):
    windowed = VideoPredictor(recipe_model, predictor.tokenizer, short_side=64, window=4)
    video = make_video()
    assert np.array_equal(windowed.predict(video, "the brown dog"), predictor.predict(video, "the brown dog"))


def test_progress_is_reported(predictor):
    calls = []
    small = VideoPredictor(predictor.model, predictor.tokenizer, short_side=64, window=2)
    state = small.init_state(make_video(t=3))
    small.add_expression(state, 1, "the dog")
    small.run(state, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 2), (2, 2)]


@pytest.mark.parametrize("text", ["", "   ", "!!!", "x" * 2000])
def test_bad_expressions(predictor, text):
    state = predictor.init_state(make_video(t=1))
    with pytest.raises(ExpressionError):
        predictor.add_expression(state, 1, text)


def test_a_capitalised_oddly_spaced_expression_gives_the_masks_of_its_normalised_form(predictor):
    """Checkpoints are trained on lower-case text: the model reads "The  Red   Car" as "the red car"."""
    video = make_video(t=3)
    assert normalize_expression("  The  Red\t  Car ") == "the red car"
    assert np.array_equal(predictor.predict(video, "The  Red   Car"), predictor.predict(video, "the red car"))
    state = predictor.init_state(video)
    predictor.add_expression(state, 1, "The  Red   Car")
    assert state.expressions[1] == "The Red Car"
    ids, _ = tokenize(predictor.tokenizer, ["The  Red   Car"])
    assert torch.equal(ids, tokenize(predictor.tokenizer, ["the red car"])[0])
    lower_ids = predictor.tokenizer(["the red car"], return_tensors="pt")["input_ids"]
    assert not torch.equal(predictor.tokenizer(["The Red Car"], return_tensors="pt")["input_ids"], lower_ids)


def test_propagate_without_objects(predictor):
    state = predictor.init_state(make_video(t=1))
    with pytest.raises(ExpressionError, match="add an expression"):
        next(iter(predictor.propagate_in_video(state)))


@pytest.mark.parametrize("video, message", [
    (np.zeros((0, 8, 8, 3), np.uint8), "zero frames"),
    ([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8)], "same size"),
    (np.zeros((2, 8, 8, 3), np.float32), "uint8"),
    (np.zeros((2, 8, 8), np.uint8), "shape"),
    (42, "cannot read a video"),
])
def test_bad_videos(predictor, video, message):
    with pytest.raises(VideoError, match=message):
        predictor.init_state(video)


def test_missing_text_encoder(tmp_path):
    with pytest.raises(TextEncoderNotFoundError, match="not found"):
        load_tokenizer(str(tmp_path / "no-such-encoder"))
    with pytest.raises(TextEncoderNotFoundError):
        load_tokenizer("surely-not-a-cached-model-id-xyz")


def test_text_spec_from_a_local_directory(tokenizer_dir):
    spec = text_spec_from_pretrained(str(tokenizer_dir))
    assert spec["model_type"] == "roberta" and spec["num_hidden_layers"] == 2 and spec["vocab_size"] == 1000


def test_objects_batched_together_match_each_run_alone(predictor):
    video = make_video(t=3)
    texts = {1: "a red car", 2: "the man in a black shirt holding a surfboard", 3: "the cat"}
    together = predictor.init_state(video)
    for obj_id, text in texts.items():
        predictor.add_expression(together, obj_id, text)
    predictor.run(together)
    for obj_id, text in texts.items():
        alone = predictor.init_state(video)
        predictor.add_expression(alone, obj_id, text)
        predictor.run(alone)
        a, b = together.results[obj_id], alone.results[obj_id]
        scale = b.mask_logits.abs().max().item()
        assert (a.mask_logits - b.mask_logits).abs().max().item() <= 1e-4 + 1e-5 * scale
        assert (a.logits - b.logits).abs().max().item() <= 1e-4
        assert a.best_query == b.best_query


def test_the_test_tokenizer_really_tokenizes(tokenizer_dir):
    tokenizer = load_tokenizer(str(tokenizer_dir))
    ids, mask = tokenize(tokenizer, ["the brown dog jumping over the fence"])
    assert ids[0, 0].item() == 0 and ids[0, -1].item() == 2 and ids.shape[1] > 4
    assert tokenizer.decode(ids[0], skip_special_tokens=True) == "the brown dog jumping over the fence"
    assert int(ids.max()) < 1000


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error(recipe_model, tokenizer_dir):
    from referformer_core.errors import ReferFormerError

    with pytest.raises(ReferFormerError, match="no CUDA GPU"):
        VideoPredictor(recipe_model, load_tokenizer(str(tokenizer_dir)), device="cuda")
