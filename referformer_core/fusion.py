"""Vision-language early fusion: every visual token attends to the words and is gated by the result."""
from __future__ import annotations

from torch import Tensor, nn

from .attention import multihead_attention


class VisionLanguageFusionModule(nn.Module):
    """``visual * attention(visual -> words)`` (no residual, no norm), as in the official model."""

    def __init__(self, d_model: int, nhead: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)

    def forward(self, tgt: Tensor, memory: Tensor, memory_key_padding_mask: Tensor | None, pos: Tensor | None) -> Tensor:
        """``tgt [Lv, B, C]`` visual tokens, ``memory [Lt, B, C]`` words, ``pos [Lt, B, C]`` -> ``[Lv, B, C]``."""
        key = memory if pos is None else memory + pos
        tgt2 = multihead_attention(self.multihead_attn, tgt, key, memory, memory_key_padding_mask)
        return tgt * tgt2
