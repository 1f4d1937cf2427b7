"""The held-out J&F training reports is the J&F a user gets: the predictor's masks, scored by ``train.evaluate``."""
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from referformer_core.checkpoint import load_checkpoint
from referformer_core.predictor import VideoPredictor
from referformer_core.text import load_tokenizer
from train import evaluate
from train.data import read_expressions, read_frame
from train.trainer import fit


def test_reported_held_out_score_equals_train_evaluate_on_predictor_masks(tiny_config, tiny_data, tmp_path):
    config = tiny_config.replace(val=str(tiny_data), epochs=3, lr=1e-3, lr_backbone=1e-3, lr_text_encoder=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "only 2 training videos"
        report = fit(config)
    assert report.best_score["J&F"] > 0.05, "a score worth comparing"

    # float32, as training evaluates (on a CPU with native bf16 the predictor's own default would be bf16 here)
    predictor = VideoPredictor(load_checkpoint(Path(config.out) / "checkpoint_best.pth"),
                               load_tokenizer(config.text_encoder), short_side=config.eval_short_side,
                               precision="fp32")
    pred_dir = tmp_path / "pred"
    for record in read_expressions(tiny_data):
        frames = [read_frame(tiny_data / "JPEGImages" / record.video / f"{f}.jpg") for f in record.frames]
        masks = predictor.predict(np.stack(frames), record.expression)
        folder = pred_dir / record.video / record.exp_id
        folder.mkdir(parents=True)
        for name, mask in zip(record.frames, masks):
            Image.fromarray(mask.astype(np.uint8) * 255).save(folder / f"{name}.png")

    assert evaluate.main(["--pred", str(pred_dir), "--gt", str(tiny_data), "--out", str(tmp_path / "e.json")]) == 0
    scored = evaluate.evaluate(pred_dir, tiny_data)["summary"]
    assert scored["J&F"] == pytest.approx(report.best_score["J&F"], abs=1e-9)
    assert scored["J"] == pytest.approx(report.best_score["J"], abs=1e-9)
