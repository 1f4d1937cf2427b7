"""Visual backbones, one file per family; ``build_backbone(name)`` picks by the official ``--backbone`` name.

Every backbone module has ``body`` (official parameter names), ``num_channels`` (4 levels, strides
4/8/16/32) and ``forward(images [B*T, 3, H, W], num_frames) -> list of 4 [B*T, C_l, H_l, W_l]``.
"""
from __future__ import annotations

from torch import nn

from ..errors import ConfigError

from .efficientnet import EFFICIENTNET_CONFIGS, EfficientNetBackbone
from .resnet import RESNET_CONFIGS, ResNetBackbone
from .swin import SWIN_CONFIGS, SwinBackbone
from .video_swin import VIDEO_SWIN_CONFIGS, VideoSwinBackbone


def backbone_names() -> list[str]:
    """Every backbone name ``build_backbone`` accepts."""
    return [*RESNET_CONFIGS, *SWIN_CONFIGS, *VIDEO_SWIN_CONFIGS, *EFFICIENTNET_CONFIGS]


def build_backbone(name: str) -> nn.Module:
    """The backbone module for an official ``--backbone`` name (``resnet50``, ``swin_t_p4w7``, ...)."""
    if name in RESNET_CONFIGS:
        return ResNetBackbone(name)
    if name in SWIN_CONFIGS:
        return SwinBackbone(name)
    if name in VIDEO_SWIN_CONFIGS:
        return VideoSwinBackbone(name)
    if name in EFFICIENTNET_CONFIGS:
        return EfficientNetBackbone(name)
    raise ConfigError(f"unknown backbone {name!r}; known: {', '.join(backbone_names())}")
