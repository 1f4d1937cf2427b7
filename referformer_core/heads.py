"""Small heads: the MLP used for boxes and dynamic-filter generation, the text feature resizer,
and the dynamic mask head with relative coordinates."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MLP(nn.Module):
    """``num_layers`` linear layers with ReLU between them."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        self.num_layers = num_layers
        h = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in zip([input_dim] + h, h + [output_dim]))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < self.num_layers - 1 else layer(x)
        return x


class FeatureResizer(nn.Module):
    """Linear projection of text features to the model width, then LayerNorm (eps 1e-12) and dropout."""

    def __init__(self, input_feat_size: int, output_feat_size: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.fc = nn.Linear(input_feat_size, output_feat_size, bias=True)
        self.layer_norm = nn.LayerNorm(output_feat_size, eps=1e-12)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """``[..., C_text]`` -> ``[..., C]``."""
        return self.dropout(self.layer_norm(self.fc(x)))


def dynamic_params_sizes(in_channels: int, channels: int, num_layers: int, rel_coord: bool) -> tuple[list[int], list[int]]:
    """Number of generated weights and biases per dynamic conv layer."""
    weight_nums, bias_nums = [], []
    for layer in range(num_layers):
        if layer == 0:
            weight_nums.append((in_channels + 2 if rel_coord else in_channels) * channels)
            bias_nums.append(channels)
        elif layer == num_layers - 1:
            weight_nums.append(channels)
            bias_nums.append(1)
        else:
            weight_nums.append(channels * channels)
            bias_nums.append(channels)
    return weight_nums, bias_nums


def compute_locations(h: int, w: int, stride: int, device: torch.device) -> Tensor:
    """Pixel centres of an ``h x w`` map at ``stride``, in input pixels: ``[h * w, 2]`` (x, y)."""
    shifts_x = torch.arange(0, w * stride, step=stride, dtype=torch.float32, device=device)
    shifts_y = torch.arange(0, h * stride, step=stride, dtype=torch.float32, device=device)
    shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
    return torch.stack((shift_x.reshape(-1), shift_y.reshape(-1)), dim=1) + stride // 2


def dynamic_mask_logits(
    mask_features: Tensor,
    params: Tensor,
    reference_points: Tensor,
    image_sizes: Tensor,
    weight_nums: list[int],
    bias_nums: list[int],
    channels: int,
    rel_coord: bool,
    feature_stride: int = 4,
) -> Tensor:
    """Per-query masks from generated 1x1 conv filters over the shared mask features.

    The official code repeats the features for every query and runs one grouped convolution; the same
    per-pixel dot products are computed here as batched matrix products, without the repeated copy.

    Args:
        mask_features: ``[B, T, C, h, w]`` at ``feature_stride``.
        params: ``[B, T * Q, P]`` generated filter parameters.
        reference_points: ``[B, T * Q, 2]`` box centres (x, y) in [0, 1] of the input size.
        image_sizes: ``[B, 2]`` input (h, w) of each clip, used to scale the reference points.

    Returns:
        ``[B, T * Q, h, w]`` mask logits.
    """
    b, t, c, h, w = mask_features.shape
    num_queries = reference_points.shape[1]
    q = num_queries // t
    num_layers = len(weight_nums)
    splits = torch.split_with_sizes(params.reshape(b, t, q, -1), weight_nums + bias_nums, dim=-1)
    weight0 = splits[0].reshape(b, t, q * channels, -1)
    feats = mask_features.reshape(b, t, c, h * w)
    x = torch.matmul(weight0[..., :c], feats).view(b, t, q, channels, h * w)
    if rel_coord:
        scale = torch.stack([image_sizes[:, 1], image_sizes[:, 0]], dim=1)
        points = (reference_points * scale[:, None, :]).reshape(b, t, q, 2, 1)
        locations = compute_locations(h, w, feature_stride, mask_features.device).t()
        rel = (points - locations).to(x.dtype)
        x = x + torch.matmul(weight0[..., c:].reshape(b, t, q, channels, 2), rel)
    x = x + splits[num_layers].reshape(b, t, q, channels, 1)
    for layer in range(1, num_layers):
        x = F.relu(x)
        out_ch = channels if layer < num_layers - 1 else 1
        weight = splits[layer].reshape(b, t, q, out_ch, channels)
        x = torch.matmul(weight, x) + splits[num_layers + layer].reshape(b, t, q, out_ch, 1)
    return x.reshape(b, num_queries, h, w)
