"""``SentenceRefiner``: trainable layers over a frozen text encoder's word features, pooled into the sentence.

Ours, not in the official models (``ReferFormerConfig.sentence_refiner_layers`` is 0 there). The queries of
ReferFormer come from one sentence feature; a frozen sentence encoder's pooled output (MiniLM's) hardly tells
"the square left of the star" from "the star left of the square" (``python -m train.bundled.text_probe``). The refiner
reads the word features in order and learns which words name the target; its output is added to the pooled
sentence feature. The last projection starts at zero, so a model that gains a refiner computes what it did
before, until training moves it.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .position import PositionEmbeddingSine1D


class SentenceRefiner(nn.Module):
    """Word features ``[B, L, C_text]`` -> a residual for the sentence feature ``[B, C]``."""

    def __init__(self, text_dim: int, out_dim: int, width: int, num_layers: int, nhead: int = 4,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.input_proj = nn.Linear(text_dim, width)
        self.position = PositionEmbeddingSine1D(width)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(width, nhead, dim_feedforward=2 * width, dropout=dropout, batch_first=True,
                                       norm_first=True)
            for _ in range(num_layers))
        self.norm = nn.LayerNorm(width)
        self.pool_score = nn.Linear(width, 1)
        self.output_proj = nn.Linear(width, out_dim)
        nn.init.zeros_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def forward(self, words: Tensor, attention_mask: Tensor) -> Tensor:
        """``words [B, L, C_text]``, ``attention_mask [B, L]`` (1 on tokens) -> ``[B, out_dim]``."""
        padding = attention_mask.eq(0)
        x = self.input_proj(words) + self.position(padding).transpose(1, 2).to(words.dtype)
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=padding)
        x = self.norm(x)
        scores = self.pool_score(x).squeeze(-1).float().masked_fill(padding, float("-inf"))
        weights = torch.softmax(scores, dim=1).to(x.dtype)
        return self.output_proj(torch.einsum("bl,blc->bc", weights, x))
