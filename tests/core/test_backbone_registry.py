"""The backbone registry: names, named configs and checkpoint inference all come from the family files."""
import pytest
import torch

from referformer_core.backbones import FAMILIES, backbone_from_weights, backbone_names, build_backbone
from referformer_core.checkpoint import infer_backbone
from referformer_core.config import MODEL_CONFIGS, ReferFormerConfig, get_config
from referformer_core.errors import CheckpointError, ConfigError, ReferFormerError


def _weights(name: str) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        module = build_backbone(name)
    return {f"backbone.0.{k}": v for k, v in module.state_dict().items()}


@pytest.mark.parametrize("name", backbone_names())
def test_every_registered_variant_is_recognised_from_its_own_weights(name):
    assert infer_backbone(_weights(name)) == name


def test_names_and_named_configs_derive_from_the_families():
    official = [n for f in FAMILIES if f.official for n in f.variants]
    assert official == backbone_names(official_only=True)
    assert [n for n in MODEL_CONFIGS if n not in ("small", "small_official_widths", "tiny")] == official
    assert all(get_config(n).backbone == n for n in official)
    assert set(backbone_names()) == set(official) | {"efficientnet_lite0"}


def test_small_official_widths_changes_only_the_sizes_small_shrank():
    small, wide, official = get_config("small"), get_config("small_official_widths"), ReferFormerConfig()
    shrunk = ("hidden_dim", "nheads", "enc_layers", "dec_layers", "dim_feedforward", "mask_dim")
    assert all(getattr(wide, k) == getattr(official, k) != getattr(small, k) for k in shrunk)
    assert wide.replace(**{k: getattr(small, k) for k in shrunk}) == small


def test_unknown_names_and_variants_are_one_line_errors():
    with pytest.raises(ConfigError, match="unknown backbone 'resnet18'") as error:
        build_backbone("resnet18")
    assert isinstance(error.value, (ReferFormerError, ValueError))
    with pytest.raises(ConfigError, match="unknown model config"):
        get_config("nope")
    state = {k: v for k, v in _weights("resnet50").items() if not k.startswith("backbone.0.body.layer3.5.")}
    with pytest.raises(CheckpointError, match="ResNet with blocks in layer3=5"):
        infer_backbone(state)
    with pytest.raises(LookupError, match="no backbone.0.body weights"):
        backbone_from_weights({"transformer.level_embed": torch.zeros(4, 256)})
