"""Multi-head attention with ``nn.MultiheadAttention``'s parameters, computed by ``scaled_dot_product_attention``.

The official model calls ``nn.MultiheadAttention`` with ``need_weights=True``, which materialises the
``[B*heads, Lq, Lk]`` weights; the cross-modal FPN attends over all frames' tokens, so that grows with the
square of the frame count. This computes the same function with fused attention (memory linear in length).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def multihead_attention(mha: nn.MultiheadAttention, query: Tensor, key: Tensor, value: Tensor,
                        key_padding_mask: Tensor | None = None) -> Tensor:
    """``query [Lq, B, C]``, ``key, value [Lk, B, C]``, ``key_padding_mask [B, Lk]`` (True = ignore) -> ``[Lq, B, C]``."""
    lq, b, c = query.shape
    lk = key.shape[0]
    heads = mha.num_heads
    w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
    b_q, b_k, b_v = mha.in_proj_bias.chunk(3)
    q = F.linear(query, w_q, b_q).view(lq, b * heads, c // heads).transpose(0, 1)
    k = F.linear(key, w_k, b_k).view(lk, b * heads, c // heads).transpose(0, 1)
    v = F.linear(value, w_v, b_v).view(lk, b * heads, c // heads).transpose(0, 1)
    q, k, v = (x.view(b, heads, -1, c // heads) for x in (q, k, v))
    mask = None
    if key_padding_mask is not None and bool(key_padding_mask.any()):
        mask = ~key_padding_mask.view(b, 1, 1, lk)
    dropout = mha.dropout if mha.training else 0.0
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
    out = out.permute(2, 0, 1, 3).reshape(lq, b, c)
    return F.linear(out, mha.out_proj.weight, mha.out_proj.bias)
