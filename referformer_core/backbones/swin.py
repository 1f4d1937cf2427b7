"""Swin Transformer image backbone as used by ReferFormer (Swin-T/S/B/L, patch 4, window 7).

Frames are encoded independently. Parameter and buffer names follow the official ReferFormer
checkpoints (``backbone.0.body.patch_embed.*``, ``layers.i.blocks.j.*``, ``layers.i.downsample.*``,
``norm0`` .. ``norm3``), and the computation follows the official code operation by operation:
inputs whose size is not a multiple of the patch size are zero-padded at the bottom/right, token
maps are padded to a multiple of the window size inside every block, odd token maps are padded
before patch merging, and shifted windows use the -100 attention mask.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from timm.layers import DropPath
from torch import Tensor, nn

from ..errors import ConfigError
from .registry import BackboneFamily, Signature, count_indices, register_family

ATTENTION_MASK_VALUE = -100.0


@dataclass(frozen=True)
class SwinConfig:
    """Architecture of one Swin variant (the official ReferFormer ``configs`` entry)."""

    embed_dim: int
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    drop_path_rate: float
    window_size: int = 7
    patch_size: int = 4
    mlp_ratio: float = 4.0

    @property
    def stage_channels(self) -> list[int]:
        return [self.embed_dim * 2**i for i in range(len(self.depths))]


SWIN_CONFIGS: dict[str, SwinConfig] = {
    "swin_t_p4w7": SwinConfig(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), drop_path_rate=0.2),
    "swin_s_p4w7": SwinConfig(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24), drop_path_rate=0.2),
    "swin_b_p4w7": SwinConfig(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), drop_path_rate=0.3),
    "swin_l_p4w7": SwinConfig(embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48), drop_path_rate=0.3),
}


def stochastic_depth_rates(drop_path_rate: float, depths: tuple[int, ...]) -> list[list[float]]:
    """Per-stage lists of drop-path rates, rising linearly from 0 over all blocks (official rule)."""
    rates = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()
    starts = [sum(depths[:i]) for i in range(len(depths))]
    return [rates[start:start + depth] for start, depth in zip(starts, depths)]


class Mlp(nn.Module):
    """Two-layer GELU feed-forward network: ``[..., C] -> [..., C]``."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


def window_partition(x: Tensor, window_size: int) -> Tensor:
    """``[B, H, W, C]`` (H, W multiples of the window) -> ``[B*nW, window_size, window_size, C]``."""
    B, H, W, C = x.shape
    x = x.view(B, H // window_size, window_size, W // window_size, window_size, C)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, window_size, window_size, C)


def window_reverse(windows: Tensor, window_size: int, H: int, W: int) -> Tensor:
    """``[B*nW, window_size, window_size, C]`` -> ``[B, H, W, C]`` (inverse of :func:`window_partition`)."""
    B = int(windows.shape[0] / (H * W / window_size / window_size))
    x = windows.view(B, H // window_size, W // window_size, window_size, window_size, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(B, H, W, -1)


def relative_position_index_2d(window_size: int) -> Tensor:
    """``[ws*ws, ws*ws]`` int64: row of the bias table for each (query, key) pair of a window."""
    coords = torch.stack(torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij"))
    coords_flat = torch.flatten(coords, 1)
    relative = (coords_flat[:, :, None] - coords_flat[:, None, :]).permute(1, 2, 0).contiguous()
    relative[:, :, 0] += window_size - 1
    relative[:, :, 1] += window_size - 1
    relative[:, :, 0] *= 2 * window_size - 1
    return relative.sum(-1)


def shifted_window_mask(height: int, width: int, window_size: int, shift_size: int, device: torch.device) -> Tensor:
    """Attention mask of the shifted windows for a padded ``height x width`` token map.

    Returns ``[nW, ws*ws, ws*ws]`` float32: 0 between tokens of the same region, -100 otherwise.
    """
    region_ids = torch.zeros((1, height, width, 1), device=device)
    slices = (slice(0, -window_size), slice(-window_size, -shift_size), slice(-shift_size, None))
    region = 0
    for h in slices:
        for w in slices:
            region_ids[:, h, w, :] = region
            region += 1
    windows = window_partition(region_ids, window_size).view(-1, window_size * window_size)
    mask = windows.unsqueeze(1) - windows.unsqueeze(2)
    return mask.masked_fill(mask != 0, ATTENTION_MASK_VALUE).masked_fill(mask == 0, 0.0)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows, with a learned relative position bias.

    ``relative_position_index [N, N]`` (2-D or 3-D windows of ``N`` tokens) indexes the ``table_size`` biases; windows
    clipped smaller than the configured size use its top-left ``[n, n]`` block, as the official Video Swin.
    """

    def __init__(self, dim: int, num_heads: int, relative_position_index: Tensor, table_size: int):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros(table_size, num_heads))
        self.register_buffer("relative_position_index", relative_position_index)
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """``x [B*nW, N, C]``, ``mask [nW, N, N]`` or None -> ``[B*nW, N, C]``."""
        B_, N, C = x.shape
        qkv = self.qkv(x).reshape(B_, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        q = q * self.scale
        attn = q @ k.transpose(-2, -1)
        index = self.relative_position_index[:N, :N].reshape(-1)
        bias = self.relative_position_bias_table[index].reshape(N, N, -1)
        attn = attn + bias.permute(2, 0, 1).contiguous().unsqueeze(0)
        if mask is not None:
            num_windows = mask.shape[0]
            attn = attn.view(B_ // num_windows, num_windows, self.num_heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.num_heads, N, N)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B_, N, C)
        return self.proj(x)


class SwinBlock(nn.Module):
    """(Shifted-)window attention and MLP, each pre-normed with a residual: ``[B, H*W, C] -> [B, H*W, C]``."""

    def __init__(self, dim: int, num_heads: int, window_size: int, shift_size: int, mlp_ratio: float,
                 drop_path: float):
        super().__init__()
        self.window_size = window_size
        self.shift_size = shift_size
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, relative_position_index_2d(window_size), (2 * window_size - 1) ** 2)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, H: int, W: int, shift_mask: Tensor) -> Tensor:
        """``x [B, H*W, C]``; ``shift_mask [nW, ws*ws, ws*ws]`` (used by shifted blocks only)."""
        B, L, C = x.shape
        ws = self.window_size
        shortcut = x
        x = self.norm1(x).view(B, H, W, C)
        pad_r = (ws - W % ws) % ws
        pad_b = (ws - H % ws) % ws
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        _, Hp, Wp, _ = x.shape
        if self.shift_size > 0:
            x = torch.roll(x, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
        windows = window_partition(x, ws).view(-1, ws * ws, C)
        windows = self.attn(windows, mask=shift_mask if self.shift_size > 0 else None)
        x = window_reverse(windows.view(-1, ws, ws, C), ws, Hp, Wp)
        if self.shift_size > 0:
            x = torch.roll(x, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
        if pad_r > 0 or pad_b > 0:
            x = x[:, :H, :W, :].contiguous()
        x = shortcut + self.drop_path(x.view(B, H * W, C))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """2x2 token merge: ``[B, H*W, C] -> [B, ceil(H/2)*ceil(W/2), 2C]`` (odd sizes zero-padded)."""

    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: Tensor, H: int, W: int) -> Tensor:
        B, L, C = x.shape
        x = x.view(B, H, W, C)
        if H % 2 == 1 or W % 2 == 1:
            x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.view(B, -1, 4 * C)))


class SwinStage(nn.Module):
    """Blocks alternating regular and shifted windows, then an optional patch merging."""

    def __init__(self, dim: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float,
                 drop_paths: list[float], downsample: bool):
        super().__init__()
        self.window_size = window_size
        self.shift_size = window_size // 2
        self.blocks = nn.ModuleList([
            SwinBlock(dim, num_heads, window_size, 0 if i % 2 == 0 else self.shift_size, mlp_ratio, drop_paths[i])
            for i in range(depth)
        ])
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x: Tensor, H: int, W: int) -> tuple[Tensor, Tensor, int, int]:
        """``x [B, H*W, C]`` -> (stage output ``[B, H*W, C]``, next-stage input, its H, its W)."""
        Hp = -(-H // self.window_size) * self.window_size
        Wp = -(-W // self.window_size) * self.window_size
        mask = shifted_window_mask(Hp, Wp, self.window_size, self.shift_size, x.device)
        for block in self.blocks:
            x = block(x, H, W, mask)
        if self.downsample is None:
            return x, x, H, W
        return x, self.downsample(x, H, W), (H + 1) // 2, (W + 1) // 2


class PatchEmbed(nn.Module):
    """Non-overlapping patch projection + LayerNorm: ``[B, 3, H, W] -> [B, C, ceil(H/p), ceil(W/p)]``."""

    def __init__(self, patch_size: int, embed_dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        _, _, H, W = x.shape
        p = self.patch_size
        if W % p != 0:
            x = F.pad(x, (0, p - W % p))
        if H % p != 0:
            x = F.pad(x, (0, 0, 0, p - H % p))
        x = self.proj(x)
        Wh, Ww = x.shape[2], x.shape[3]
        x = self.norm(x.flatten(2).transpose(1, 2))
        return x.transpose(1, 2).view(-1, self.embed_dim, Wh, Ww)


class SwinTransformer(nn.Module):
    """The Swin feature network (``backbone.0.body``): 4 stages, each output LayerNormed by ``norm{i}``."""

    def __init__(self, config: SwinConfig):
        super().__init__()
        self.stage_channels = config.stage_channels
        self.patch_embed = PatchEmbed(config.patch_size, config.embed_dim)
        drop_paths = stochastic_depth_rates(config.drop_path_rate, config.depths)
        num_stages = len(config.depths)
        self.layers = nn.ModuleList([
            SwinStage(self.stage_channels[i], config.depths[i], config.num_heads[i], config.window_size,
                      config.mlp_ratio, drop_paths[i], downsample=i < num_stages - 1)
            for i in range(num_stages)
        ])
        for i, channels in enumerate(self.stage_channels):
            self.add_module(f"norm{i}", nn.LayerNorm(channels))

    def forward(self, images: Tensor) -> list[Tensor]:
        """``[N, 3, H, W]`` -> per stage i, ``[N, C_i, ceil(H/2^(i+2)), ceil(W/2^(i+2))]``."""
        x = self.patch_embed(images)
        H, W = x.shape[2], x.shape[3]
        x = x.flatten(2).transpose(1, 2)
        outputs = []
        for i, stage in enumerate(self.layers):
            stage_out, x, next_H, next_W = stage(x, H, W)
            stage_out = getattr(self, f"norm{i}")(stage_out)
            outputs.append(stage_out.view(-1, H, W, self.stage_channels[i]).permute(0, 3, 1, 2).contiguous())
            H, W = next_H, next_W
        return outputs


class SwinBackbone(nn.Module):
    """ReferFormer's Swin backbone; frames are encoded independently.

    ``body`` holds the official parameter names; ``num_channels`` and ``strides`` describe the 4 outputs.
    """

    def __init__(self, name: str):
        super().__init__()
        if name not in SWIN_CONFIGS:
            raise ConfigError(f"unknown Swin backbone {name!r}; expected one of {sorted(SWIN_CONFIGS)}")
        config = SWIN_CONFIGS[name]
        self.body = SwinTransformer(config)
        self.num_channels: list[int] = config.stage_channels
        self.strides: list[int] = [4, 8, 16, 32]

    def forward(self, images: Tensor, num_frames: int) -> list[Tensor]:
        """``images [B*T, 3, H, W]`` -> 4 maps ``[B*T, C_l, ceil(H/s_l), ceil(W/s_l)]``, s_l = 4, 8, 16, 32.

        ``num_frames`` is part of the shared backbone interface; Swin does not mix frames.
        """
        return self.body(images)


def swin_signature(config: SwinConfig) -> Signature:
    """What the weights of a (Video) Swin variant tell: embed dim and blocks in stage 3."""
    return (("embed dim", config.embed_dim), ("blocks in stage 3", config.depths[2]))


def swin_weights_signature(state: Mapping[str, Tensor], patch_dims: int) -> Signature | None:
    """:func:`swin_signature` from weights whose patch embedding has ``patch_dims`` dims (4: image, 5: video)."""
    patch = state.get("backbone.0.body.patch_embed.proj.weight")
    if patch is None or patch.dim() != patch_dims:
        return None
    return (("embed dim", int(patch.shape[0])),
            ("blocks in stage 3", count_indices(state, "backbone.0.body.layers.2.blocks.")))


FAMILY = register_family(BackboneFamily(
    "Swin", SWIN_CONFIGS, SwinBackbone, swin_signature, lambda state: swin_weights_signature(state, 4)))
