"""load_checkpoint: official layouts, strict matching, config inference, and clear errors."""
import argparse
import json
from pathlib import Path

import pytest
import torch

from referformer_core.checkpoint import infer_config, load_checkpoint, save_checkpoint
from referformer_core.config import get_config
from referformer_core.errors import CheckpointError
from referformer_core.parity import Fixture, apply_recipe
from referformer_core.referformer import ReferFormer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    model = ReferFormer(Fixture.load(FIXTURES / "fixture_resnet50.pt").config()).eval()
    apply_recipe(model)
    return model


def official_layout(model, position_ids=True):
    state = dict(model.state_dict())
    if position_ids:
        state["text_encoder.embeddings.position_ids"] = torch.arange(514).expand(1, -1)
    return {"model": state, "optimizer": {"state": {}, "param_groups": []}, "lr_scheduler": {"last_epoch": 3},
            "epoch": 5, "args": argparse.Namespace(backbone="resnet50", num_queries=5)}


def test_official_layout_loads_strictly_and_computes_the_same(small_model, tmp_path):
    path = tmp_path / "r50_official.pth"
    torch.save(official_layout(small_model), path)
    loaded = load_checkpoint(path)
    assert loaded.config.backbone == "resnet50"
    assert loaded.config.text_encoder["num_hidden_layers"] == 2
    assert loaded.config.text_encoder["vocab_size"] == 1000
    for (k, a), (k2, b) in zip(small_model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    frames = torch.randn(1, 2, 3, 64, 96)
    ids = torch.tensor([[0, 5, 7, 2]])
    with torch.inference_mode():
        a = small_model(frames, small_model.encode_text(ids, torch.ones_like(ids)), torch.tensor([[64, 96]]))
        b = loaded(frames, loaded.encode_text(ids, torch.ones_like(ids)), torch.tensor([[64, 96]]))
    assert torch.equal(a["pred_masks"], b["pred_masks"])


def test_our_checkpoint_round_trips_its_config(small_model, tmp_path):
    path = tmp_path / "ours.pth"
    save_checkpoint(small_model, path, epoch=1)
    assert load_checkpoint(path).config == small_model.config


def test_config_is_inferred_from_official_manifests():
    for backbone in ("resnet50", "resnet101", "swin_t_p4w7", "swin_l_p4w7", "video_swin_t_p4w7", "video_swin_b_p4w7"):
        manifest = json.loads((FIXTURES / f"keys_{backbone}.json").read_text())
        state = {k["key"]: torch.empty(k["shape"], device="meta") for k in manifest["keys"]}
        config = infer_config(state)
        assert config.backbone == backbone
        assert config.text_encoder["vocab_size"] == 50265
        assert config.text_encoder["num_hidden_layers"] == 12
        assert config.replace(backbone="resnet50") == get_config("resnet50")


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pth")


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("hello, this is text")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint or is truncated"):
        load_checkpoint(path)


def test_truncated_checkpoint(small_model, tmp_path):
    path = tmp_path / "full.pth"
    torch.save(official_layout(small_model), path)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(cut)


def test_arbitrary_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {"transformer.x": torch.zeros(1)}, "hook": Path("/etc/passwd")}, path)
    with pytest.raises(CheckpointError, match="not allowed"):
        load_checkpoint(path)


def test_another_models_checkpoint(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(10, 2048)}, path)
    with pytest.raises(CheckpointError, match="not a ReferFormer checkpoint"):
        load_checkpoint(path)


def test_mismatching_keys_are_listed(small_model, tmp_path):
    data = official_layout(small_model)
    del data["model"]["controller.layers.0.weight"]
    data["model"]["extra.head.weight"] = torch.zeros(3)
    data["model"]["resizer.fc.bias"] = torch.zeros(7)
    path = tmp_path / "broken.pth"
    torch.save(data, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message
    assert "1 missing: controller.layers.0.weight" in message
    assert "1 unexpected: extra.head.weight" in message
    assert "resizer.fc.bias (7,) vs model (256,)" in message


def test_small_and_tiny_configs_round_trip_through_plain_state_dicts(tmp_path):
    for name in ("tiny",):
        model = ReferFormer(get_config(name)).eval()
        path = tmp_path / f"{name}.pth"
        torch.save(model.state_dict(), path)
        config = infer_config(torch.load(path, weights_only=True), text_spec=get_config(name).text_encoder)
        assert config.backbone == "efficientnet_lite0"
        assert config.hidden_dim == 64 and config.enc_layers == 1 and config.dec_layers == 2
