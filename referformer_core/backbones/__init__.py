"""Visual backbones, one file per family, each declaring its variants in the registry
(:mod:`referformer_core.backbones.registry`); ``build_backbone(name)`` builds by the official ``--backbone`` name.

Every backbone module has ``body`` (official parameter names), ``num_channels`` (4 levels, strides
4/8/16/32) and ``forward(images [B*T, 3, H, W], num_frames) -> list of 4 [B*T, C_l, H_l, W_l]``.
"""
from __future__ import annotations

from . import resnet, swin, video_swin  # noqa: F401,I001  (each registers its family, in this order)
from . import efficientnet  # noqa: F401,E402
from .registry import FAMILIES, backbone_from_weights, backbone_names, build_backbone, family_of

__all__ = ["FAMILIES", "backbone_from_weights", "backbone_names", "build_backbone", "family_of"]
