"""Cross-modal FPN: top-down feature pyramid whose every level first runs a vision-language block
(spatially reduced self-attention over all frames' tokens, cross-attention to the words, FFN)."""
from __future__ import annotations

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .attention import multihead_attention
from .position import PositionEmbeddingSine1D
from .transformer import feed_forward


class ConvNormAct(nn.Conv2d):
    """Conv2d followed by an optional norm and activation; parameters named ``weight``, ``bias``, ``norm.*``."""

    def __init__(self, *args, norm: nn.Module | None = None, relu: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.norm = norm
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        x = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        if self.norm is not None:
            x = self.norm(x)
        return F.relu(x) if self.relu else x


class VisionLanguageBlock(nn.Module):
    """Self-attention over ``T*h*w`` visual tokens (downsampled by ``sr_ratio``), cross-attention to text, FFN."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1, sr_ratio: int = 1) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.sr_ratio = sr_ratio

    def forward(self, tgt: Tensor, memory: Tensor, t: int, h: int, w: int, tgt_key_padding_mask: Tensor,
                memory_key_padding_mask: Tensor, pos: Tensor, query_pos: Tensor) -> Tensor:
        """``tgt, query_pos [T*h*w, B, C]``, masks ``[B, T*h*w]`` / ``[B, Lt]``, ``memory, pos [Lt, B, C]``."""
        b = tgt.size(1)
        if self.sr_ratio > 1:
            new_h, new_w = int(h * 1.0 / self.sr_ratio), int(w * 1.0 / self.sr_ratio)
            v, pos_small = (
                rearrange(
                    F.interpolate(rearrange(x, "(t h w) b c -> (b t) c h w", t=t, h=h, w=w), size=(new_h, new_w), mode="nearest"),
                    "(b t) c h w -> (t h w) b c", t=t,
                )
                for x in (tgt, query_pos)
            )
            q = k = v + pos_small  # nearest downsampling picks tokens, so it commutes with the sum
            mask = tgt_key_padding_mask.reshape(b * t, h, w)
            mask = F.interpolate(mask[None].float(), size=(new_h, new_w), mode="nearest").bool()[0]
            key_padding_mask = mask.reshape(b, t, new_h, new_w).flatten(1)
        else:
            q = k = tgt + query_pos
            v = tgt
            key_padding_mask = tgt_key_padding_mask
        tgt2 = multihead_attention(self.self_attn, q, k, v, key_padding_mask)
        if self.sr_ratio > 1:
            tgt2 = rearrange(tgt2, "(t h w) b c -> (b t) c h w", t=t, h=new_h, w=new_w)
            tgt2 = F.interpolate(tgt2, size=(h, w), mode="bilinear", align_corners=False)
            tgt2 = rearrange(tgt2, "(b t) c h w -> (t h w) b c", t=t)
        tgt = self.norm1(tgt + self.dropout1(tgt2))
        tgt2 = multihead_attention(self.multihead_attn, tgt + query_pos, memory + pos, memory, memory_key_padding_mask)
        tgt = self.norm2(tgt + self.dropout2(tgt2))
        tgt2 = feed_forward(tgt, self.linear1, self.linear2, self.dropout)
        return self.norm3(tgt + self.dropout3(tgt2))


class CrossModalFPNDecoder(nn.Module):
    """Mask features at stride 4 from backbone stride-4 features and encoder memory at strides 8-32."""

    SR_RATIOS = (8, 4, 2, 1)

    def __init__(self, feature_channels: list[int], conv_dim: int, mask_dim: int, dim_feedforward: int = 2048, nhead: int = 8) -> None:
        super().__init__()
        for idx, in_channels in enumerate(feature_channels):
            stage = idx + 1
            self.add_module(f"adapter_{stage}", ConvNormAct(in_channels, conv_dim, kernel_size=1, bias=False,
                                                             norm=nn.GroupNorm(8, conv_dim)))
            self.add_module(f"layer_{stage}", ConvNormAct(conv_dim, conv_dim, kernel_size=3, stride=1, padding=1,
                                                           bias=False, norm=nn.GroupNorm(8, conv_dim), relu=True))
        self.mask_features = ConvNormAct(conv_dim, mask_dim, kernel_size=3, stride=1, padding=1)
        self.text_pos = PositionEmbeddingSine1D(conv_dim)
        for idx in range(len(feature_channels)):
            block = VisionLanguageBlock(conv_dim, nhead, dim_feedforward=dim_feedforward, sr_ratio=self.SR_RATIOS[idx])
            self.add_module(f"cross_attn_{idx + 1}", block)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        for name, module in self.named_children():
            if isinstance(module, ConvNormAct):
                nn.init.kaiming_uniform_(module.weight, a=1)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, VisionLanguageBlock):
                for p in module.parameters():
                    if p.dim() > 1:
                        nn.init.xavier_uniform_(p)

    def _level(self, stage: int) -> tuple[ConvNormAct, ConvNormAct, VisionLanguageBlock]:
        return getattr(self, f"adapter_{stage}"), getattr(self, f"layer_{stage}"), getattr(self, f"cross_attn_{stage}")

    def forward(self, features: list[Tensor], feature_masks: list[Tensor], poses: list[Tensor], memory: list[Tensor],
                text: Tensor, text_mask: Tensor, num_frames: int) -> Tensor:
        """
        Args:
            features: backbone features ``[B*T, C_l, H_l, W_l]``, strides 4 → 32 (only stride 4 is used as input).
            feature_masks: padding masks ``[B*T, H_l, W_l]`` of those levels; poses: their encodings ``[B*T, C, H_l, W_l]``.
            memory: encoder output at strides 8, 16, 32, ``[B*T, C, H_l, W_l]``.
            text: ``[B, Lt, C]`` word features; text_mask ``[B, Lt]`` True on padding.

        Returns:
            ``[B*T, mask_dim, H/4, W/4]`` mask features.
        """
        t = num_frames
        text_pos = self.text_pos(text_mask).permute(2, 0, 1)
        text_seq = text.permute(1, 0, 2)
        inputs = list(memory[::-1]) + [features[0]]
        stages = [4, 3, 2, 1]
        y = None
        for idx, (x, stage) in enumerate(zip(inputs, stages)):
            lateral_conv, output_conv, cross_attn = self._level(stage)
            level = stage - 1
            pos, x_mask = poses[level], feature_masks[level]
            n, _, h, w = pos.shape
            b = n // t
            vision = rearrange(lateral_conv(x), "(b t) c h w -> (t h w) b c", b=b, t=t)
            vision_pos = rearrange(pos, "(b t) c h w -> (t h w) b c", b=b, t=t)
            vision_mask = rearrange(x_mask, "(b t) h w -> b (t h w)", b=b, t=t)
            cur = cross_attn(tgt=vision, memory=text_seq, t=t, h=h, w=w, tgt_key_padding_mask=vision_mask,
                             memory_key_padding_mask=text_mask, pos=text_pos, query_pos=vision_pos)
            cur = rearrange(cur, "(t h w) b c -> (b t) c h w", t=t, h=h, w=w)
            y = output_conv(cur) if y is None else output_conv(cur + F.interpolate(y, size=cur.shape[-2:], mode="nearest"))
        return self.mask_features(y)
