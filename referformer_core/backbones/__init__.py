"""Visual backbones, one file per family; ``build_backbone(name)`` picks by the official ``--backbone`` name.

Every backbone module has ``body`` (official parameter names), ``num_channels`` (4 levels, strides
4/8/16/32) and ``forward(images [B*T, 3, H, W], num_frames) -> list of 4 [B*T, C_l, H_l, W_l]``.
"""
from __future__ import annotations

from torch import nn

from .resnet import RESNET_CONFIGS, ResNetBackbone


def backbone_names() -> list[str]:
    """Every backbone name ``build_backbone`` accepts."""
    names = list(RESNET_CONFIGS)
    try:
        from .swin import SWIN_CONFIGS
        from .video_swin import VIDEO_SWIN_CONFIGS
    except ImportError:
        return names
    return names + list(SWIN_CONFIGS) + list(VIDEO_SWIN_CONFIGS)


def build_backbone(name: str) -> nn.Module:
    """The backbone module for an official ``--backbone`` name (``resnet50``, ``swin_t_p4w7``, ...)."""
    if name in RESNET_CONFIGS:
        return ResNetBackbone(name)
    if name.startswith("video_swin"):
        from .video_swin import VideoSwinBackbone

        return VideoSwinBackbone(name)
    if name.startswith("swin"):
        from .swin import SwinBackbone

        return SwinBackbone(name)
    raise ValueError(f"unknown backbone {name!r}; known: {', '.join(backbone_names())}")
