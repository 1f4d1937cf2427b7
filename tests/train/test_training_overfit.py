"""Overfitting the tiny model on the tiny generated dataset: the loss falls and held-out J&F rises clearly."""
import json
import warnings
from pathlib import Path

import numpy as np

import pytest
import torch

from referformer_core.checkpoint import load_checkpoint
from referformer_core.text import load_tokenizer
from train.data import read_expressions
from train.engine import evaluate_held_out
from train.trainer import fit


def test_tiny_model_overfits_tiny_dataset(tiny_config, tiny_data):
    config = tiny_config.replace(val=str(tiny_data), epochs=20, lr=1e-3, lr_backbone=1e-3, lr_text_encoder=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "only 2 training videos"
        report = fit(config)

    losses = np.array([h["loss"] for h in report.history])
    assert report.global_step == len(losses) == 40  # 4 clips / batch 2 x 20 epochs
    first, last = losses[:5].mean(), losses[-5:].mean()
    print(f"loss {first:.2f} -> {last:.2f}; J&F {report.start_score['J&F']:.3f} -> {report.best_score['J&F']:.3f}")
    assert last < 0.5 * first
    assert report.start_score["J&F"] < 0.15
    assert report.best_score["J&F"] > report.start_score["J&F"] + 0.2
    assert report.best_epoch is not None

    out = tiny_config.out
    saved = json.loads((Path(out) / "report.json").read_text())
    assert saved["best_score"] == report.best_score and saved["start_score"] == report.start_score
    records = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert len(epochs) == 20 and max(e["J&F"] for e in epochs) == report.best_score["J&F"]

    best = load_checkpoint(Path(out) / "checkpoint_best.pth")
    rescored = evaluate_held_out(best, load_tokenizer(config.text_encoder), tiny_data, read_expressions(tiny_data),
                                 config, torch.device("cpu"))
    assert rescored["J&F"] == pytest.approx(report.best_score["J&F"], abs=1e-6)


def test_without_improvement_the_starting_weights_stay_best(tiny_config, tiny_data, tmp_path):
    start = tmp_path / "start.pth"
    frozen = tiny_config.replace(val=str(tiny_data), pretrained=str(start), lr=0.0, lr_backbone=0.0,
                                 lr_text_encoder=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fit(tiny_config.replace(out=str(tmp_path / "pre"), max_steps=1))
        (tmp_path / "pre" / "checkpoint.pth").rename(start)
        report = fit(frozen)
    assert report.best_epoch is None and report.best_score == report.start_score
    best = load_checkpoint(Path(frozen.out) / "checkpoint_best.pth").state_dict()
    assert all(torch.equal(v, best[k]) for k, v in load_checkpoint(start).state_dict().items())
