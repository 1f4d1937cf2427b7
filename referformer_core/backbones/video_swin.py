"""Video Swin Transformer backbone as used by ReferFormer (Video-Swin-T/S/B, patch 1x4x4, window 8x7x7).

The clip's frames are encoded jointly by 3-D (time x height x width) window attention; time is never
downsampled, so every stage gives one feature map per frame. As in the official ReferFormer wrapper,
the outputs are the stage outputs *before* patch merging, with no output norm, and the patch
mergings live in ``downsamples.0..2`` (not inside the stages). Parameter and buffer names follow the
official checkpoints; the computation follows the official code operation by operation, including
its window clamping (a dimension no larger than the window uses one window over its whole extent and
no shift, with the bias index cropped to the first ``N`` rows and columns) and the -100 shift mask.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from operator import mul

import torch
import torch.nn.functional as F
from einops import rearrange
from timm.layers import DropPath
from torch import Tensor, nn

from ..errors import ConfigError
from .registry import BackboneFamily, register_family
from .swin import (ATTENTION_MASK_VALUE, Mlp, WindowAttention, stochastic_depth_rates, swin_signature,
                   swin_weights_signature)

Size3 = tuple[int, int, int]


@dataclass(frozen=True)
class VideoSwinConfig:
    """Architecture of one Video Swin variant (the official ReferFormer ``configs`` entry)."""

    embed_dim: int
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    drop_path_rate: float = 0.2
    window_size: Size3 = (8, 7, 7)
    patch_size: Size3 = (1, 4, 4)
    mlp_ratio: float = 4.0

    @property
    def stage_channels(self) -> list[int]:
        return [self.embed_dim * 2**i for i in range(len(self.depths))]


VIDEO_SWIN_CONFIGS: dict[str, VideoSwinConfig] = {
    "video_swin_t_p4w7": VideoSwinConfig(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    "video_swin_s_p4w7": VideoSwinConfig(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    "video_swin_b_p4w7": VideoSwinConfig(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
}


def window_partition_3d(x: Tensor, window_size: Size3) -> Tensor:
    """``[B, D, H, W, C]`` (sizes multiples of the window) -> ``[B*nW, Wd*Wh*Ww, C]``."""
    B, D, H, W, C = x.shape
    wd, wh, ww = window_size
    x = x.view(B, D // wd, wd, H // wh, wh, W // ww, ww, C)
    return x.permute(0, 1, 3, 5, 2, 4, 6, 7).contiguous().view(-1, reduce(mul, window_size), C)


def window_reverse_3d(windows: Tensor, window_size: Size3, B: int, D: int, H: int, W: int) -> Tensor:
    """``[B*nW, Wd, Wh, Ww, C]`` -> ``[B, D, H, W, C]`` (inverse of :func:`window_partition_3d`)."""
    wd, wh, ww = window_size
    x = windows.view(B, D // wd, H // wh, W // ww, wd, wh, ww, -1)
    return x.permute(0, 1, 4, 2, 5, 3, 6, 7).contiguous().view(B, D, H, W, -1)


def clamp_window(input_size: Size3, window_size: Size3, shift_size: Size3) -> tuple[Size3, Size3]:
    """Window and shift actually used for a ``(D, H, W)`` token volume.

    A dimension no larger than the window gets a window of its own extent and no shift.
    """
    windows, shifts = list(window_size), list(shift_size)
    for i, extent in enumerate(input_size):
        if extent <= window_size[i]:
            windows[i] = extent
            shifts[i] = 0
    return (windows[0], windows[1], windows[2]), (shifts[0], shifts[1], shifts[2])


def relative_position_index_3d(window_size: Size3) -> Tensor:
    """``[N, N]`` int64 (N = Wd*Wh*Ww): row of the bias table for each (query, key) pair of a window."""
    wd, wh, ww = window_size
    coords = torch.stack(torch.meshgrid(torch.arange(wd), torch.arange(wh), torch.arange(ww), indexing="ij"))
    coords_flat = torch.flatten(coords, 1)
    relative = (coords_flat[:, :, None] - coords_flat[:, None, :]).permute(1, 2, 0).contiguous()
    relative[:, :, 0] += wd - 1
    relative[:, :, 1] += wh - 1
    relative[:, :, 2] += ww - 1
    relative[:, :, 0] *= (2 * wh - 1) * (2 * ww - 1)
    relative[:, :, 1] *= 2 * ww - 1
    return relative.sum(-1)


def shifted_window_mask_3d(padded_size: Size3, window_size: Size3, shift_size: Size3,
                           device: torch.device) -> Tensor:
    """Attention mask of the shifted windows for a padded ``(Dp, Hp, Wp)`` token volume.

    Returns ``[nW, N, N]`` float32: 0 between tokens of the same region, -100 otherwise.
    """
    region_ids = torch.zeros((1, *padded_size, 1), device=device)

    def regions(axis: int) -> tuple[slice, slice, slice]:
        window, shift = window_size[axis], shift_size[axis]
        return slice(-window), slice(-window, -shift), slice(-shift, None)

    region = 0
    for d in regions(0):
        for h in regions(1):
            for w in regions(2):
                region_ids[:, d, h, w, :] = region
                region += 1
    windows = window_partition_3d(region_ids, window_size).squeeze(-1)
    mask = windows.unsqueeze(1) - windows.unsqueeze(2)
    return mask.masked_fill(mask != 0, ATTENTION_MASK_VALUE).masked_fill(mask == 0, 0.0)


class SwinBlock3D(nn.Module):
    """(Shifted-)3-D-window attention and MLP, each pre-normed with a residual: ``[B, D, H, W, C]`` in and out."""

    def __init__(self, dim: int, num_heads: int, window_size: Size3, shift_size: Size3, mlp_ratio: float,
                 drop_path: float):
        super().__init__()
        self.window_size = window_size
        self.shift_size = shift_size
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, relative_position_index_3d(window_size),
                                    reduce(mul, (2 * w - 1 for w in window_size)))
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def attend(self, x: Tensor, shift_mask: Tensor) -> Tensor:
        """Norm + (shifted-)window attention: ``[B, D, H, W, C] -> [B, D, H, W, C]``."""
        B, D, H, W, C = x.shape
        window, shift = clamp_window((D, H, W), self.window_size, self.shift_size)
        x = self.norm1(x)
        pad_d = (window[0] - D % window[0]) % window[0]
        pad_b = (window[1] - H % window[1]) % window[1]
        pad_r = (window[2] - W % window[2]) % window[2]
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b, 0, pad_d))
        _, Dp, Hp, Wp, _ = x.shape
        shifted = any(s > 0 for s in shift)
        if shifted:
            x = torch.roll(x, shifts=(-shift[0], -shift[1], -shift[2]), dims=(1, 2, 3))
        windows = self.attn(window_partition_3d(x, window), mask=shift_mask if shifted else None)
        x = window_reverse_3d(windows.view(-1, *window, C), window, B, Dp, Hp, Wp)
        if shifted:
            x = torch.roll(x, shifts=shift, dims=(1, 2, 3))
        if pad_d > 0 or pad_r > 0 or pad_b > 0:
            x = x[:, :D, :H, :W, :].contiguous()
        return x

    def forward(self, x: Tensor, shift_mask: Tensor) -> Tensor:
        """``x [B, D, H, W, C]``; ``shift_mask [nW, N, N]`` for the clamped window (shifted blocks only)."""
        x = x + self.drop_path(self.attend(x, shift_mask))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging3D(nn.Module):
    """Per-frame 2x2 token merge: ``[B, D, H, W, C] -> [B, D, ceil(H/2), ceil(W/2), 2C]``."""

    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: Tensor) -> Tensor:
        _, _, H, W, _ = x.shape
        if H % 2 == 1 or W % 2 == 1:
            x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))
        x = torch.cat([x[:, :, 0::2, 0::2], x[:, :, 1::2, 0::2], x[:, :, 0::2, 1::2], x[:, :, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x))


class VideoSwinStage(nn.Module):
    """Blocks alternating regular and shifted 3-D windows: ``[B, C, D, H, W] -> [B, C, D, H, W]``."""

    def __init__(self, dim: int, depth: int, num_heads: int, window_size: Size3, mlp_ratio: float,
                 drop_paths: list[float]):
        super().__init__()
        self.window_size = window_size
        self.shift_size: Size3 = (window_size[0] // 2, window_size[1] // 2, window_size[2] // 2)
        self.blocks = nn.ModuleList([
            SwinBlock3D(dim, num_heads, window_size, (0, 0, 0) if i % 2 == 0 else self.shift_size, mlp_ratio,
                        drop_paths[i])
            for i in range(depth)
        ])

    def forward(self, x: Tensor) -> Tensor:
        B, C, D, H, W = x.shape
        window, shift = clamp_window((D, H, W), self.window_size, self.shift_size)
        x = rearrange(x, "b c d h w -> b d h w c")
        padded = (-(-D // window[0]) * window[0], -(-H // window[1]) * window[1], -(-W // window[2]) * window[2])
        mask = shifted_window_mask_3d(padded, window, shift, x.device)
        for block in self.blocks:
            x = block(x, mask)
        return rearrange(x.view(B, D, H, W, -1), "b d h w c -> b c d h w")


class PatchEmbed3D(nn.Module):
    """Patch projection + LayerNorm: ``[B, 3, T, H, W] -> [B, C, ceil(T/pt), ceil(H/ph), ceil(W/pw)]``."""

    def __init__(self, patch_size: Size3, embed_dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.proj = nn.Conv3d(3, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        _, _, D, H, W = x.shape
        pd, ph, pw = self.patch_size
        if W % pw != 0:
            x = F.pad(x, (0, pw - W % pw))
        if H % ph != 0:
            x = F.pad(x, (0, 0, 0, ph - H % ph))
        if D % pd != 0:
            x = F.pad(x, (0, 0, 0, 0, 0, pd - D % pd))
        x = self.proj(x)
        D, Wh, Ww = x.shape[2], x.shape[3], x.shape[4]
        x = self.norm(x.flatten(2).transpose(1, 2))
        return x.transpose(1, 2).view(-1, self.embed_dim, D, Wh, Ww)


class VideoSwinTransformer(nn.Module):
    """The Video Swin feature network (``backbone.0.body``): stages ``layers.*``, mergings ``downsamples.*``."""

    def __init__(self, config: VideoSwinConfig):
        super().__init__()
        channels = config.stage_channels
        self.patch_embed = PatchEmbed3D(config.patch_size, config.embed_dim)
        drop_paths = stochastic_depth_rates(config.drop_path_rate, config.depths)
        self.layers = nn.ModuleList([
            VideoSwinStage(channels[i], config.depths[i], config.num_heads[i], config.window_size,
                           config.mlp_ratio, drop_paths[i])
            for i in range(len(config.depths))
        ])
        self.downsamples = nn.ModuleList([PatchMerging3D(c) for c in channels[:-1]])

    def forward(self, clips: Tensor) -> list[Tensor]:
        """``[B, 3, T, H, W]`` -> per stage i, ``[B*T, C_i, ceil(H/2^(i+2)), ceil(W/2^(i+2))]`` (clip by clip, frames in order)."""
        x = self.patch_embed(clips)
        outputs = []
        for i, stage in enumerate(self.layers):
            x = stage(x.contiguous())
            outputs.append(rearrange(x, "b c t h w -> (b t) c h w"))
            if i < len(self.downsamples):
                x = rearrange(x, "b c t h w -> b t h w c")
                x = rearrange(self.downsamples[i](x), "b t h w c -> b c t h w")
        return outputs


class VideoSwinBackbone(nn.Module):
    """ReferFormer's Video Swin backbone: the frames of each clip attend to each other.

    ``body`` holds the official parameter names; ``num_channels`` and ``strides`` describe the 4 outputs.
    """

    def __init__(self, name: str):
        super().__init__()
        if name not in VIDEO_SWIN_CONFIGS:
            raise ConfigError(f"unknown Video Swin backbone {name!r}; expected one of {sorted(VIDEO_SWIN_CONFIGS)}")
        config = VIDEO_SWIN_CONFIGS[name]
        self.body = VideoSwinTransformer(config)
        self.num_channels: list[int] = config.stage_channels
        self.strides: list[int] = [4, 8, 16, 32]

    def forward(self, images: Tensor, num_frames: int) -> list[Tensor]:
        """``images [B*T, 3, H, W]`` (clip-major: the T frames of clip 0 first) with ``num_frames`` = T
        -> 4 maps ``[B*T, C_l, ceil(H/s_l), ceil(W/s_l)]``, s_l = 4, 8, 16, 32, in the same order."""
        if images.shape[0] % num_frames != 0:
            raise ValueError(f"batch of {images.shape[0]} frames is not a whole number of {num_frames}-frame clips")
        clips = rearrange(images, "(b t) c h w -> b c t h w", t=num_frames)
        return self.body(clips)


FAMILY = register_family(BackboneFamily(
    "Video Swin", VIDEO_SWIN_CONFIGS, VideoSwinBackbone, swin_signature,
    lambda state: swin_weights_signature(state, 5)))
