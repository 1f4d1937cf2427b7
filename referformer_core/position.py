"""Sine position encodings: 2-D for feature maps, 1-D for text tokens (as DETR / ReferFormer)."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def _sine_dim_t(num_pos_feats: int, temperature: float, device: torch.device) -> Tensor:
    dim_t = torch.arange(num_pos_feats, dtype=torch.float32, device=device)
    return temperature ** (2 * (dim_t // 2) / num_pos_feats)


def _interleave_sin_cos(pos: Tensor) -> Tensor:
    """``[..., D]`` -> ``[..., D]`` with sin of even and cos of odd features, interleaved pairwise."""
    return torch.stack((pos[..., 0::2].sin(), pos[..., 1::2].cos()), dim=pos.dim()).flatten(pos.dim() - 1)


class PositionEmbeddingSine2D(nn.Module):
    """Normalised 2-D sine encoding of a feature map, aware of the padding mask."""

    def __init__(self, num_pos_feats: int = 128, temperature: float = 10000.0) -> None:
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.scale = 2 * math.pi

    def forward(self, mask: Tensor) -> Tensor:
        """``mask [N, H, W]`` (True on padding) -> position encoding ``[N, 2 * num_pos_feats, H, W]``."""
        not_mask = ~mask
        y_embed = not_mask.cumsum(1, dtype=torch.float32)
        x_embed = not_mask.cumsum(2, dtype=torch.float32)
        eps = 1e-6
        y_embed = (y_embed - 0.5) / (y_embed[:, -1:, :] + eps) * self.scale
        x_embed = (x_embed - 0.5) / (x_embed[:, :, -1:] + eps) * self.scale
        dim_t = _sine_dim_t(self.num_pos_feats, self.temperature, mask.device)
        pos_x = _interleave_sin_cos(x_embed[:, :, :, None] / dim_t)
        pos_y = _interleave_sin_cos(y_embed[:, :, :, None] / dim_t)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)


class PositionEmbeddingSine1D(nn.Module):
    """Normalised 1-D sine encoding of a token sequence, aware of the padding mask."""

    def __init__(self, num_pos_feats: int = 256, temperature: float = 10000.0) -> None:
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.scale = 2 * math.pi

    def forward(self, mask: Tensor) -> Tensor:
        """``mask [B, L]`` (True on padding) -> position encoding ``[B, num_pos_feats, L]``."""
        not_mask = ~mask
        x_embed = not_mask.cumsum(1, dtype=torch.float32)
        eps = 1e-6
        x_embed = x_embed / (x_embed[:, -1:] + eps) * self.scale
        dim_t = _sine_dim_t(self.num_pos_feats, self.temperature, mask.device)
        pos_x = _interleave_sin_cos(x_embed[:, :, None] / dim_t)
        return pos_x.permute(0, 2, 1)
