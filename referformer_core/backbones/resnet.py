"""ResNet-50/101 with frozen BatchNorm: strides 4, 8, 16, 32 as features (the official DETR-style body)."""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torchvision
from torch import Tensor, nn

from .registry import BackboneFamily, Signature, count_indices, register_family

RESNET_CONFIGS: dict[str, dict] = {
    "resnet50": {"builder": "resnet50", "num_channels": [256, 512, 1024, 2048], "layer3_blocks": 6},
    "resnet101": {"builder": "resnet101", "num_channels": [256, 512, 1024, 2048], "layer3_blocks": 23},
}


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters, all kept as buffers (eps 1e-5)."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

    def forward(self, x: Tensor) -> Tensor:
        """``x [N, C, H, W]`` -> same shape."""
        w = self.weight.reshape(1, -1, 1, 1)
        b = self.bias.reshape(1, -1, 1, 1)
        rv = self.running_var.reshape(1, -1, 1, 1)
        rm = self.running_mean.reshape(1, -1, 1, 1)
        scale = w * (rv + 1e-5).rsqrt()
        bias = b - rm * scale
        return torch.addcmul(bias, x, scale)


class ResNetBackbone(nn.Module):
    """Torchvision ResNet body (``conv1`` … ``layer4``, no pooling/fc) returning the four stage outputs."""

    def __init__(self, name: str) -> None:
        super().__init__()
        cfg = RESNET_CONFIGS[name]
        body = getattr(torchvision.models, cfg["builder"])(weights=None, norm_layer=FrozenBatchNorm2d)
        del body.avgpool, body.fc
        self.body = body
        self.num_channels: list[int] = list(cfg["num_channels"])

    def forward(self, images: Tensor, num_frames: int) -> list[Tensor]:
        """``images [B*T, 3, H, W]`` -> ``[B*T, C_l, H/s_l, W/s_l]`` for strides 4, 8, 16, 32 (channels-last memory,
        which oneDNN convolutions run faster on CPU)."""
        b = self.body
        x = images.contiguous(memory_format=torch.channels_last)
        x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        outs = []
        for layer in (b.layer1, b.layer2, b.layer3, b.layer4):
            x = layer(x)
            outs.append(x)
        return outs


def _weights_signature(state: Mapping[str, Tensor]) -> Signature | None:
    if "backbone.0.body.layer1.0.conv1.weight" not in state:
        return None
    return (("blocks in layer3", count_indices(state, "backbone.0.body.layer3.")),)


FAMILY = register_family(BackboneFamily(
    "ResNet", RESNET_CONFIGS, ResNetBackbone, lambda cfg: (("blocks in layer3", cfg["layer3_blocks"]),),
    _weights_signature))
