"""ResNet-50/101 with frozen BatchNorm: strides 4, 8, 16, 32 as features (the official DETR-style body)."""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
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

    def scale_shift(self) -> tuple[Tensor, Tensor]:
        """The affine map this layer applies per channel: ``scale [C]``, ``shift [C]``."""
        scale = self.weight * (self.running_var + 1e-5).rsqrt()
        return scale, self.bias - self.running_mean * scale

    def forward(self, x: Tensor) -> Tensor:
        """``x [N, C, H, W]`` -> same shape."""
        scale, shift = self.scale_shift()
        return torch.addcmul(shift.reshape(1, -1, 1, 1), x, scale.reshape(1, -1, 1, 1))


def conv_frozen_bn(x: Tensor, conv: nn.Conv2d, bn: FrozenBatchNorm2d) -> Tensor:
    """``bn(conv(x))`` as one convolution: the frozen scale folded into the weights, the shift as its bias."""
    scale, shift = bn.scale_shift()
    weight = conv.weight * scale.reshape(-1, 1, 1, 1)
    if conv.bias is not None:
        shift = shift + conv.bias * scale
    return F.conv2d(x, weight, shift, conv.stride, conv.padding, conv.dilation, conv.groups)


def bottleneck_folded(block: nn.Module, x: Tensor) -> Tensor:
    """A torchvision ``Bottleneck`` with every frozen BatchNorm folded into its convolution (same function)."""
    out = F.relu(conv_frozen_bn(x, block.conv1, block.bn1), inplace=True)
    out = F.relu(conv_frozen_bn(out, block.conv2, block.bn2), inplace=True)
    out = conv_frozen_bn(out, block.conv3, block.bn3)
    identity = x if block.downsample is None else conv_frozen_bn(x, block.downsample[0], block.downsample[1])
    return out.add_(identity).relu_()


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
        which oneDNN convolutions run faster on CPU).

        Without autograd or autocast the frozen BatchNorms are folded into their convolutions (one pass over each
        activation fewer; the same function up to float rounding)."""
        b = self.body
        x = images.contiguous(memory_format=torch.channels_last)
        if torch.is_grad_enabled() or torch.is_autocast_enabled(x.device.type):
            x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
            run_block = nn.Module.__call__
        else:
            x = b.maxpool(F.relu(conv_frozen_bn(x, b.conv1, b.bn1), inplace=True))
            run_block = bottleneck_folded
        outs = []
        for layer in (b.layer1, b.layer2, b.layer3, b.layer4):
            for block in layer:
                x = run_block(block, x)
            outs.append(x)
        return outs


def _weights_signature(state: Mapping[str, Tensor]) -> Signature | None:
    if "backbone.0.body.layer1.0.conv1.weight" not in state:
        return None
    return (("blocks in layer3", count_indices(state, "backbone.0.body.layer3.")),)


FAMILY = register_family(BackboneFamily(
    "ResNet", RESNET_CONFIGS, ResNetBackbone, lambda cfg: (("blocks in layer3", cfg["layer3_blocks"]),),
    _weights_signature))
