"""`python -m train.evaluate` on a tiny Ref-Youtube-VOS-layout dataset with hand-worked scores."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from train.evaluate import evaluate, main

SIZE = 40
REPO = Path(__file__).resolve().parents[2]


def box(top, left, side=10):
    mask = np.zeros((SIZE, SIZE), bool)
    mask[top : top + side, left : left + side] = True
    return mask


def save_palette(path, labels):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(labels.astype(np.uint8))
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9))
    assert image.mode == "P"
    image.save(path)


def save_mask(path, mask, rgb=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = mask.astype(np.uint8) * 255
    Image.fromarray(np.stack([arr] * 3, -1) if rgb else arr).save(path)


@pytest.fixture
def dataset(tmp_path):
    """v1: object 1 on both frames, object 2 on frame 0 only; v2: object 1 on its single frame.

    Predictions: v1/0 exact, v1/1 empty (J, F = 0 then 1), v2/0 exact (as an RGB PNG).
    """
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    frame0 = box(5, 5).astype(np.uint8) + 2 * box(20, 20)
    frame1 = box(5, 5).astype(np.uint8)
    save_palette(gt / "Annotations/v1/00000.png", frame0)
    save_palette(gt / "Annotations/v1/00005.png", frame1)
    save_palette(gt / "Annotations/v2/00000.png", box(15, 15).astype(np.uint8))
    meta = {"videos": {
        "v1": {"frames": ["00000", "00005"], "expressions": {
            "0": {"exp": "a red square", "obj_id": "1"}, "1": {"exp": "the other square", "obj_id": "2"}}},
        "v2": {"frames": ["00000"], "expressions": {"0": {"exp": "a square", "obj_id": "1"}}},
    }}
    (gt / "meta_expressions.json").write_text(json.dumps(meta))
    save_mask(pred / "v1/0/00000.png", box(5, 5))
    save_mask(pred / "v1/0/00005.png", box(5, 5))
    save_mask(pred / "v1/1/00000.png", np.zeros((SIZE, SIZE), bool))
    save_mask(pred / "v1/1/00005.png", np.zeros((SIZE, SIZE), bool))
    save_mask(pred / "v2/0/00000.png", box(15, 15), rgb=True)
    return pred, gt


def test_evaluate_hand_worked(dataset):
    pred, gt = dataset
    result = evaluate(pred, gt)
    assert result["counts"] == {"videos": 2, "expressions": 3, "frames": 5}
    assert result["per_expression"] == {
        "v1/0": {"J": 1.0, "F": 1.0, "J&F": 1.0},
        "v1/1": {"J": 0.5, "F": 0.5, "J&F": 0.5},
        "v2/0": {"J": 1.0, "F": 1.0, "J&F": 1.0},
    }
    s = result["summary"]
    assert s["J"] == pytest.approx(5 / 6) and s["F"] == pytest.approx(5 / 6) and s["J&F"] == pytest.approx(5 / 6)
    assert s["J-Recall"] == pytest.approx(5 / 6)  # v1/1 has one of 2 frames above .5
    assert s["J-Decay"] == pytest.approx(-1 / 3)  # v1/1 goes from 0 to 1
    # (expression, frame) pairs: intersections 100, 100, 0, 0, 100; unions 100, 100, 100, 0, 100
    assert s["overall IoU"] == pytest.approx(0.75)
    assert s["mean IoU"] == pytest.approx(0.8, abs=1e-6)
    assert s["P@0.5"] == pytest.approx(0.8) and s["P@0.9"] == pytest.approx(0.8)


def test_map_ranks_the_masks_by_their_scores(dataset, capsys):
    pred, gt = dataset
    # all confidences 1: hits 1, 1, 0, 1, 1 in file order; precision 1, 1, .8, .8, .8 at recall .2 .. .8
    assert evaluate(pred, gt)["summary"]["mAP@0.5:0.95"] == pytest.approx(73 / 101)
    (pred / "v1/1/scores.json").write_text(json.dumps({"scores": [0.1, 0.9]}))
    s = evaluate(pred, gt)["summary"]
    assert s["mAP@0.5:0.95"] == pytest.approx(81 / 101), "the miss (v1/1 frame 0) now ranks last"
    assert s["AP@0.5"] == s["AP@0.75"] == s["mAP@0.5:0.95"]
    assert main(["--pred", str(pred), "--gt", str(gt)]) == 0
    assert any(line.split() == ["mAP@0.5:0.95", "80.20"] for line in capsys.readouterr().out.splitlines())
    assert json.loads((pred / "evaluation.json").read_text())["summary"]["mAP@0.5:0.95"] == pytest.approx(81 / 101)
    (pred / "v1/1/scores.json").write_text(json.dumps({"scores": [0.1]}))
    assert main(["--pred", str(pred), "--gt", str(gt)]) == 2
    assert "must be a list of 2 numbers" in capsys.readouterr().err


def test_cli_prints_table_and_writes_json(dataset, capsys):
    pred, gt = dataset
    assert main(["--pred", str(pred), "--gt", str(gt)]) == 0
    out = capsys.readouterr().out
    assert "2 videos, 3 expressions, 5 frames" in out
    assert any(line.split() == ["J&F", "83.33"] for line in out.splitlines())
    written = json.loads((pred / "evaluation.json").read_text())
    assert written["summary"]["J&F"] == pytest.approx(5 / 6)
    # a second run ignores the json it wrote; --out and --meta elsewhere
    meta = gt.parent / "meta.json"
    (gt / "meta_expressions.json").rename(meta)
    out_file = gt.parent / "res" / "scores.json"
    assert main(["--pred", str(pred), "--gt", str(gt), "--meta", str(meta), "--out", str(out_file)]) == 0
    assert json.loads(out_file.read_text())["counts"]["expressions"] == 3


def test_module_entry_point(dataset):
    pred, gt = dataset
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-m", "train.evaluate", "--pred", str(pred), "--gt", str(gt), "--out", str(gt.parent / "o.json")],
        capture_output=True, text=True, env=env, cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert "J&F" in done.stdout and (gt.parent / "o.json").is_file()


def _error(capsys, pred, gt):
    assert main(["--pred", str(pred), "--gt", str(gt)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    return err


def test_errors_for_missing_folders_and_files(dataset, capsys):
    pred, gt = dataset
    assert "prediction folder not found" in _error(capsys, pred.parent / "nope", gt)
    assert "ground-truth folder not found" in _error(capsys, pred, gt.parent / "nope")
    (pred / "v2/0/00000.png").unlink()
    assert str(Path("v2/0/00000.png")) in _error(capsys, pred, gt)
    (gt / "Annotations").rename(gt / "Ann")
    assert "no Annotations/" in _error(capsys, pred, gt)


def test_errors_for_malformed_inputs(dataset, capsys):
    pred, gt = dataset
    meta_path = gt / "meta_expressions.json"
    meta = json.loads(meta_path.read_text())
    save_mask(pred / "v2/0/00000.png", np.zeros((20, 20), bool))
    assert "differs from ground truth" in _error(capsys, pred, gt)
    del meta["videos"]["v2"]["expressions"]["0"]["obj_id"]
    meta_path.write_text(json.dumps(meta))
    assert "has no obj_id" in _error(capsys, pred, gt)
    meta_path.write_text("{not json")
    assert "invalid JSON" in _error(capsys, pred, gt)
    meta_path.write_text(json.dumps({"videos": {"v1": {"expressions": {}}}}))
    assert "videos.v1.frames: missing" in _error(capsys, pred, gt)
    (gt / "Annotations/v1/00000.png").write_bytes(b"not a png")
    meta_path.write_text(json.dumps({"videos": {"v1": {"frames": ["00000"],
                                                       "expressions": {"0": {"exp": "a", "obj_id": 1}}}}}))
    assert "ground-truth mask: annotation" in _error(capsys, pred, gt)
