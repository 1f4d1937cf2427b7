"""Vision-language early fusion: every visual token attends to the words and is gated by the result."""
from __future__ import annotations

from torch import Tensor, nn


class VisionLanguageFusionModule(nn.Module):
    """``visual * attention(visual -> words)`` (no residual, no norm), as in the official model."""

    def __init__(self, d_model: int, nhead: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)

    def forward(self, tgt: Tensor, memory: Tensor, memory_key_padding_mask: Tensor | None, pos: Tensor | None) -> Tensor:
        """``tgt [Lv, B, C]`` visual tokens, ``memory [Lt, B, C]`` words, ``pos [Lt, B, C]`` -> ``[Lv, B, C]``."""
        key = memory if pos is None else memory + pos
        tgt2 = self.multihead_attn(query=tgt, key=key, value=memory, attn_mask=None,
                                   key_padding_mask=memory_key_padding_mask)[0]
        return tgt * tgt2
