"""``CandidateRanker``: candidate features, the ranker itself, and the predictor choosing the track it ranks first."""
import copy
import dataclasses
import math

import numpy as np
import pytest
import torch

from referformer_core import pipeline
from referformer_core.candidate_ranker import (FRAME_SIGNALS, SHAPE_GRID, SIGNAL_DIM, CandidateRanker,
                                               TrackDescription, appearance_dim, candidate_features,
                                               describe_tracks, descriptor_dim, mean_score_logits, pool_descriptors,
                                               track_features)
from referformer_core.checkpoint import load_checkpoint, save_checkpoint
from referformer_core.config import get_config
from referformer_core.predictor import VideoPredictor
from referformer_core.referformer import ReferFormer
from referformer_core.text import load_tokenizer

CHANNELS = [4, 6, 8, 10]


def test_descriptors_pool_each_level_under_the_mask():
    t, q, d = 2, 3, 5
    features = [torch.zeros(t, c, 16 // 2 ** i, 16 // 2 ** i) for i, c in enumerate(CHANNELS)]
    for level in (1, 2, 3):
        size = features[level].shape[-1]
        features[level][:, :, : size // 2] = 1.0   # top half 1, bottom half 0
        features[level][:, :, size // 2:] = 3.0
    mask_logits = torch.full((t, q, 16, 16), -30.0)
    mask_logits[:, 0, :8] = 30.0                      # query 0 covers the top half
    mask_logits[:, 1, 8:] = 30.0                      # query 1 the bottom half
    query_features = torch.randn(t, q, d)
    out = pool_descriptors(features, query_features, mask_logits)
    assert out.shape == (t, q, descriptor_dim(CHANNELS, d))
    assert torch.equal(out[..., :d], query_features)
    assert torch.allclose(out[:, 0, d:], torch.ones(t, 24), atol=1e-4)
    assert torch.allclose(out[:, 1, d:], torch.full((t, 24), 3.0), atol=1e-4)


def _track(t: int = 6, q: int = 4, c: int = 7) -> tuple[torch.Tensor, ...]:
    """Four candidates on a 60x80 mask grid: a square turning in place, a disk moving right, a disk growing,
    and one that is never there."""
    torch.manual_seed(0)
    ys, xs = torch.meshgrid(torch.arange(60) + 0.5, torch.arange(80) + 0.5, indexing="ij")
    mask_logits = torch.full((t, q, 60, 80), -5.0)
    for i in range(t):
        a = i * math.pi / 12
        u = (xs - 40) * math.cos(a) + (ys - 30) * math.sin(a)
        v = (ys - 30) * math.cos(a) - (xs - 40) * math.sin(a)
        mask_logits[i, 0][(u.abs() < 8) & (v.abs() < 8)] = 5.0
        mask_logits[i, 1][(xs - 20 - 6 * i) ** 2 + (ys - 20) ** 2 < 49] = 5.0
        mask_logits[i, 2][(xs - 60) ** 2 + (ys - 45) ** 2 < (4 + 2 * i) ** 2] = 5.0
    boxes = torch.full((t, q, 4), 0.5)
    return torch.randn(t, q), boxes, mask_logits, torch.randn(t, q, c)


def test_track_descriptions_say_where_a_track_is_how_big_what_shape_and_whether_it_turns():
    logits, boxes, mask_logits, descriptors = _track()
    appearance, signals = describe_tracks(logits, boxes, mask_logits, descriptors)
    assert signals.shape == (6, 4, FRAME_SIGNALS) and appearance.shape == (4, 7 + SHAPE_GRID ** 2)
    assert torch.allclose(appearance[:, :7], descriptors.mean(0))
    shape = appearance[:, 7:].reshape(4, SHAPE_GRID, SHAPE_GRID)
    assert shape[3].eq(0).all() and torch.allclose(shape[1], shape[1].T, atol=0.05)      # a disk: symmetric
    assert shape[1, SHAPE_GRID // 2, SHAPE_GRID // 2] > 0.9 and shape[1, 0, 0] < 0.1
    area, cx, cy, shape_change = signals[..., 4], signals[..., 5], signals[..., 6], signals[..., 12]
    assert torch.allclose(cx[:, 1], (20 + 6 * torch.arange(6.0)) / 60, atol=0.01)   # centroid, short-side units
    assert torch.allclose(cy[:, 1], torch.full((6,), 20 / 60), atol=0.01)
    assert (area[1:, 2] > area[:-1, 2]).all() and area[:, 3].eq(0).all()
    assert torch.allclose(cx[:, 3], torch.full((6,), 0.5 * 80 / 60))                   # empty: the box centre
    assert shape_change[0].eq(0).all()
    assert shape_change[1:, 0].mean() > 3 * shape_change[1:, 1:3].mean()              # turning, not moving or growing
    assert torch.isclose(signals[0, 0, 9], logits[0, 0] / 10)


def test_candidate_features_describe_where_a_track_goes():
    logits, boxes, mask_logits, descriptors = _track()
    features = candidate_features(logits, boxes, mask_logits, descriptors)
    assert features.shape == (4, appearance_dim(CHANNELS, 7) - sum(CHANNELS[1:]) + SIGNAL_DIM)
    assert torch.allclose(features[:, :7], descriptors.mean(0))
    # signal x (mean, std, first third, last third, last - first, mean step)
    stats = features[:, 7 + SHAPE_GRID ** 2:].reshape(4, FRAME_SIGNALS, 6)
    cx = stats[:, 5]
    assert cx[1, 4] > 0.3 and torch.isclose(cx[1, 4], cx[1, 3] - cx[1, 2])
    assert torch.isclose(cx[1, 5], torch.tensor(0.1), atol=0.01) and cx[0, 4].abs() < 0.01
    one_frame = candidate_features(*(x[:1] for x in _track()))
    assert torch.isfinite(one_frame).all()
    assert torch.equal(track_features(*describe_tracks(logits, boxes, mask_logits, descriptors)), features)


@pytest.mark.parametrize("sizes", [(6,), (1, 1, 1, 1, 1, 1), (2, 0, 3, 1)])
def test_a_description_grown_window_by_window_is_the_description_of_all_frames(sizes):
    """Each frame's changes since the previous and the first frame carry across windows; a window of no frames
    adds nothing."""
    track = _track()
    track[3][2:4, 1] = 0.0                                     # a descriptor that vanishes for two frames
    appearance, signals = describe_tracks(*track)
    description, start = TrackDescription(), 0
    for size in sizes:
        description.add(*(x[start:start + size] for x in track))
        start += size
        assert description.num_frames == start and description.signals.shape[0] == start
    assert torch.allclose(description.appearance, appearance, atol=1e-6)
    assert torch.equal(description.signals, signals)
    assert torch.allclose(description.features(), candidate_features(*track), atol=1e-6)
    with pytest.raises(ValueError, match="no frames"):
        TrackDescription().appearance


@pytest.fixture(scope="module")
def ranker() -> CandidateRanker:
    """A ranker as if trained: its correction no longer zero, its standardisation fitted."""
    torch.manual_seed(0)
    ranker = CandidateRanker(appearance_dim=8, signal_dim=4, text_dim=16, dim=32, num_layers=2)
    torch.nn.init.normal_(ranker.score.weight)
    ranker.fit_normalisation(3 + 2 * torch.randn(40, 5, 12))
    return ranker.eval()


def test_a_fresh_ranker_keeps_the_official_choice_and_learns():
    ranker = CandidateRanker(appearance_dim=8, signal_dim=4, text_dim=16, dim=32, num_layers=1)
    prior = torch.randn(2, 5)
    out = ranker(torch.randn(2, 5, 12), torch.randn(2, 6, 16), torch.zeros(2, 6, dtype=torch.bool), prior)
    assert torch.equal(out, prior)
    out.sum().backward()
    assert ranker.score.weight.grad.abs().sum() > 0
    assert mean_score_logits(torch.tensor([[4.0, -4.0], [-4.0, 0.0]])).argmax() == 0
    assert torch.allclose(mean_score_logits(torch.zeros(3, 2)), torch.zeros(2), atol=1e-6)


def test_the_ranker_ignores_padding_words_and_follows_its_candidates(ranker):
    """Word order is not the ranker's business: its words come contextualised by the text encoder."""
    torch.manual_seed(1)
    candidates, words, prior = torch.randn(2, 5, 12), torch.randn(2, 6, 16), torch.randn(2, 5)
    padding = torch.zeros(2, 6, dtype=torch.bool)
    padding[1, 3:] = True
    with torch.no_grad():
        out = ranker(candidates, words, padding, prior)
        noisy = words.clone()
        noisy[1, 3:] = 40.0
        assert torch.allclose(ranker(candidates, noisy, padding, prior), out, atol=1e-5)
        order = torch.tensor([3, 0, 4, 1, 2])
        assert torch.allclose(ranker(candidates[:, order], words, padding, prior[:, order]), out[:, order],
                              atol=1e-5)
        assert not torch.allclose(ranker(candidates, torch.randn(2, 6, 16), padding, prior)[0], out[0], atol=1e-4)
        for part in (slice(0, 8), slice(8, 12)):                # appearance, then the signal statistics
            changed = candidates.clone()
            changed[..., part] += torch.randn(2, 5, part.stop - part.start)
            assert not torch.allclose(ranker(changed, words, padding, prior), out, atol=1e-4)
        assert torch.allclose(ranker(candidates, words, padding, prior + 1.5), out + 1.5, atol=1e-5)
    assert out.shape == (2, 5)


@pytest.fixture(scope="module")
def ranked_predictor(tokenizer_dir) -> VideoPredictor:
    torch.manual_seed(0)
    model = ReferFormer(get_config("tiny").replace(candidate_ranker_layers=1)).eval()
    return VideoPredictor(model, load_tokenizer(str(tokenizer_dir)), short_side=64, window=2)


def _prefer(predictor: VideoPredictor, query: int, monkeypatch) -> None:
    """Make the ranker's logits favour ``query`` whatever the candidates are."""
    ranker = predictor.model.candidate_ranker
    original = ranker.forward

    def forward(candidates, words, padding, prior):
        bias = torch.zeros(candidates.shape[:2])
        bias[:, query] = 100.0
        return original(candidates, words, padding, prior) + bias

    monkeypatch.setattr(ranker, "forward", forward)


def test_the_predictor_keeps_the_track_the_ranker_puts_first(ranked_predictor, monkeypatch):
    video = np.random.default_rng(0).integers(0, 256, size=(5, 48, 64, 3), dtype=np.uint8)
    for query in (3, 1):
        _prefer(ranked_predictor, query, monkeypatch)
        state = ranked_predictor.init_state(video)
        ranked_predictor.add_expression(state, 1, "the brown dog")
        final, final_scores = {}, {}
        for window in ranked_predictor.iter_windows(state):
            final.update({f: window.masks[0, i] for i, f in enumerate(window.frames)})
            final_scores.update({f: window.scores[0, i] for i, f in enumerate(window.frames)})
        result = state.results[1]
        scores = ranked_predictor.frame_scores(state, 1)
        assert np.allclose([final_scores[f] for f in range(5)], scores, atol=0.01)
        assert (scores > result.logits[:, query].sigmoid().numpy()).all()    # the ranker's +100 lifts every frame
        assert result.description.signals.shape[:2] == (5, 5) and result.best_query == query
        assert ranked_predictor.candidate_tracks(state, 1)[0].query == query
        assert ranked_predictor.query_scores(state, 1).argmax() == query
        expected = pipeline.upsample_masks(result.mask_logits[:, query], state.orig_size)
        assert np.array_equal(np.stack([final[f] for f in range(5)]), expected)
        assert np.array_equal(ranked_predictor.predict(video, "the brown dog"), expected)
        monkeypatch.undo()


def test_frame_scores_carry_the_rankers_correction_of_the_track():
    logits = torch.tensor([[2.0, -1.0, 0.0], [0.0, -3.0, 1.0]])
    result = pipeline.ObjectResult(logits, torch.zeros(2, 3, 4), torch.zeros(2, 3, 4, 4))
    assert torch.equal(result.score_logits, logits)
    prior = mean_score_logits(logits)
    result.ranking = prior + torch.tensor([-2.0, 3.0, 0.0])
    assert result.best_query == 1
    assert torch.allclose(result.score_logits, logits + torch.tensor([-2.0, 3.0, 0.0]))


def test_windows_come_again_when_the_end_of_the_run_changes_their_scores(ranked_predictor, monkeypatch):
    """The ranker keeps query 2 first but rates it higher with each window: the earlier windows are sent again
    with the final scores, so the last scores sent for a frame are the final ones."""
    def rank(model, features, logits, text):
        ranking = torch.full((logits.shape[1],), -50.0)
        ranking[2] = 2.0 * logits.shape[0] - 8.0
        return ranking

    monkeypatch.setattr(pipeline, "rank_candidates", rank)
    video = np.random.default_rng(2).integers(0, 256, size=(5, 48, 64, 3), dtype=np.uint8)
    state = ranked_predictor.init_state(video)
    ranked_predictor.add_expression(state, 1, "the small blue ball")
    windows = list(ranked_predictor.iter_windows(state))
    assert [w.final for w in windows] == [False, False, False, True, True]
    assert all(w.queries == [2] for w in windows)
    last = {f: w.scores[0, i] for w in windows for i, f in enumerate(w.frames)}
    logits = state.results[1].logits[:, 2]
    expected = (logits + 2.0 - mean_score_logits(logits[:, None])[0]).sigmoid().numpy()
    assert np.allclose([last[f] for f in range(5)], expected, atol=1e-6)
    assert np.allclose(ranked_predictor.frame_scores(state, 1), expected, atol=1e-6)


def test_the_ranking_covers_every_window(ranked_predictor):
    """Two windows of 2 frames and one of 1: the description of the candidates and the ranking span all five
    frames, in order."""
    video = np.random.default_rng(1).integers(0, 256, size=(5, 48, 64, 3), dtype=np.uint8)
    state = ranked_predictor.init_state(video)
    ranked_predictor.add_expression(state, 1, "a red car")
    ranked_predictor.run(state)
    result = state.results[1]
    model = ranked_predictor.model
    text = model.encode_text(*pipeline.tokenize(ranked_predictor.tokenizer, ["a red car"]))
    signals = result.description.signals
    assert result.description.num_frames == 5 and signals.shape == (5, result.logits.shape[1], FRAME_SIGNALS)
    assert torch.equal(signals[..., :4], result.boxes) and torch.allclose(signals[..., 9], result.logits / 10)
    features = result.description.features()
    assert torch.allclose(result.ranking, pipeline.rank_candidates(model, features, result.logits, text), atol=1e-5)
    assert torch.allclose(result.query_scores.sum(), torch.tensor(1.0))


def test_a_model_with_a_ranker_round_trips_through_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = ReferFormer(get_config("tiny")).eval()
    model.add_candidate_ranker(2)
    path = tmp_path / "ranked.pth"
    save_checkpoint(model, path)
    loaded = load_checkpoint(path)
    assert loaded.config.candidate_ranker_layers == 2 and len(loaded.candidate_ranker.layers.layers) == 2
    state, loaded_state = model.state_dict(), loaded.state_dict()
    assert state.keys() == loaded_state.keys() and any(k.startswith("candidate_ranker.") for k in state)
    assert all(torch.equal(state[k], loaded_state[k]) for k in state)
    assert ReferFormer(get_config("tiny")).candidate_ranker is None
    with pytest.raises(ValueError, match="at least one layer"):
        ReferFormer(get_config("tiny")).add_candidate_ranker(0)


def test_an_untrained_ranker_chooses_what_the_official_rule_chooses(ranked_predictor):
    plain = ReferFormer(ranked_predictor.model.config.replace(candidate_ranker_layers=0)).eval()
    plain.load_state_dict({k: v for k, v in ranked_predictor.model.state_dict().items()
                           if not k.startswith("candidate_ranker.")})
    official = VideoPredictor(plain, ranked_predictor.tokenizer, short_side=64, window=2)
    video = np.random.default_rng(2).integers(0, 256, size=(5, 48, 64, 3), dtype=np.uint8)
    for text in ("a red car", "the white cat", "the brown dog"):
        ranked, plain_result = (p.init_state(video) for p in (ranked_predictor, official))
        for predictor, state in ((ranked_predictor, ranked), (official, plain_result)):
            predictor.add_expression(state, 1, text)
            predictor.run(state)
        assert ranked.results[1].ranking is not None and plain_result.results[1].ranking is None
        assert ranked.results[1].best_query == plain_result.results[1].best_query
        assert np.array_equal(ranked_predictor.predict(video, text), official.predict(video, text))


def test_the_ranker_reads_the_text_encoders_own_word_features(ranked_predictor):
    """Not the resized words the decoder reads: ranking changes with ``encoder_words`` and ignores ``words``."""
    model = copy.deepcopy(ranked_predictor.model)  # its ranker is changed below; the shared fixture stays as it is
    ids, attention = pipeline.tokenize(ranked_predictor.tokenizer, ["the object moving up"])
    with torch.inference_mode():
        text = model.encode_text(ids, attention)
        own = model.text_encoder(input_ids=ids, attention_mask=attention).last_hidden_state
    assert torch.equal(text.encoder_words, own) and model.candidate_ranker.word_proj.in_features == own.shape[-1]
    assert torch.equal(text.select(0).encoder_words, own[:1])
    torch.manual_seed(1)
    for p in model.candidate_ranker.score.parameters():  # a ranker whose words matter (the score starts at zero)
        torch.nn.init.normal_(p)
    features = torch.randn(model.config.num_queries, model.candidate_ranker.feature_mean.shape[0])
    logits = torch.randn(3, model.config.num_queries)
    ranking = pipeline.rank_candidates(model, features, logits, text)
    resized = dataclasses.replace(text, words=torch.randn_like(text.words))
    assert torch.equal(pipeline.rank_candidates(model, features, logits, resized), ranking)
    other = dataclasses.replace(text, encoder_words=torch.randn_like(text.encoder_words))
    assert not torch.allclose(pipeline.rank_candidates(model, features, logits, other), ranking)
