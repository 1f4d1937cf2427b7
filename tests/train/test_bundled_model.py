"""The bundled model: small, strictly loadable, and right on the shipped samples against their generated truth."""
import json

import numpy as np
import pytest

from referformer_core.bundled import bundled_checkpoint
from referformer_core.settings import RunSettings, read_settings
from referformer_core.checkpoint import load_checkpoint, read_checkpoint
from referformer_core.config import get_config
from referformer_core.predictor import VideoPredictor
from studio.samples import list_samples
from train import metrics
from train.bundled.text_probe import feature_distance
from train.bundled.text_probe import main as text_probe_main
from train.bundled.world import render_video, video_spec

MEASURED_SAMPLE_J_AND_F = {"sample_1": 0.980, "sample_2": 0.730, "sample_3": 0.920}
"""J&F of the shipped weights (with their candidate ranker and mask refinement) on each sample (see the model
card): the mean, 0.877, is above the issue's 0.85; sample 2 is below it."""
MIN_MEAN_J_AND_F = 0.85
"""The mean over the samples must stay near the measured 0.877 (the ranker shipped before, reading the resized
word features, trained on 1,500 videos: 0.842; on 1,000 videos: 0.712; without a ranker 0.561; random weights
0.03)."""


@pytest.fixture(scope="module")
def predictor() -> VideoPredictor:
    return VideoPredictor.from_checkpoint()  # no path: the bundled model


def test_bundled_checkpoint_is_small_weights_only_and_loads_strictly():
    path = bundled_checkpoint()
    assert path.stat().st_size <= 30 * 2**20
    data = read_checkpoint(path)
    assert set(data) == {"model", "referformer_config", "text_encoder_weights", "short_side", "window",
                         "refine_masks"}  # no optimiser
    assert not any(k.startswith("text_encoder.") for k in data["model"])
    model = load_checkpoint(path)
    small = get_config("small")
    assert (model.config.hidden_dim, model.config.enc_layers, model.config.dec_layers) == \
        (small.hidden_dim, small.enc_layers, small.dec_layers)
    settings = read_settings(RunSettings(), mmap=True)[0]
    assert settings.checkpoint == str(bundled_checkpoint())
    assert settings.text_encoder == "all-minilm-l6-v2" and settings.short_side == data["short_side"]
    assert settings.refine and data["refine_masks"] is True  # its masks follow the frames' colour edges


def sample_j_and_f(predictor: VideoPredictor, sample) -> float:
    """J&F (DAVIS means over the sample's expressions) of the predictor on the shipped mp4 vs the generated truth."""
    _frames, labels, _ = render_video(video_spec(sample.split, sample.seed, sample.index, sample.num_frames,
                                                 sample.height, sample.width))
    state = predictor.init_state(sample.file)
    for k, (text, _obj) in enumerate(sample.expressions, 1):
        predictor.add_expression(state, k, text)
    masks: dict[int, np.ndarray] = {}
    for t, _ids, frame_masks in predictor.propagate_in_video(state):
        masks[t] = frame_masks
    pred = np.stack([masks[t] for t in range(len(masks))])  # [T, N, H, W]
    results = [metrics.j_and_f(pred[:, k], labels == obj) for k, (_text, obj) in enumerate(sample.expressions)]
    return metrics.summarize_j_and_f(results)["J&F"]


def test_bundled_model_segments_the_samples_as_measured(predictor):
    scores = {sample.name: sample_j_and_f(predictor, sample) for sample in list_samples()}
    assert set(scores) == set(MEASURED_SAMPLE_J_AND_F)
    for name, score in scores.items():
        assert score >= MEASURED_SAMPLE_J_AND_F[name] - 0.05, (name, score)
    assert float(np.mean(list(scores.values()))) >= MIN_MEAN_J_AND_F, scores


def test_text_probe_shows_the_queries_hardly_tell_a_relation_from_its_swap(predictor, capsys):
    same = feature_distance(predictor.model, predictor.tokenizer, "the red star", "the red star")
    assert same == {"sentence": 0.0, "words": 0.0}
    kind = feature_distance(predictor.model, predictor.tokenizer, "the star", "the square")
    swap = feature_distance(predictor.model, predictor.tokenizer, "the red square left of the star",
                            "the star left of the red square")
    assert 0 < swap["sentence"] < kind["sentence"] / 3  # the limit the model card explains: 0.05 vs 0.32
    assert text_probe_main(["the star", "the square", "--json"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["sentence", "words", "pair"]
    row = json.loads(out[-1])["pairs"][0]
    assert row["first"] == "the star" and row["sentence"] == pytest.approx(kind["sentence"], abs=1e-4)
    with pytest.raises(SystemExit) as exit_info:
        text_probe_main(["just one"])
    assert exit_info.value.code == 2
    assert text_probe_main(["a", "b", "--checkpoint", "/nonexistent.pth"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == "error: checkpoint /nonexistent.pth does not exist"
