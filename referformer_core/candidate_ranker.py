"""``CandidateRanker``: which of the model's candidate tracks the expression names, judged over the whole video.

ReferFormer keeps the query with the best mean class score. Each score is made on one frame and then averaged;
queries meet only within a frame (the decoder's self-attention), so nothing compares whole tracks with one
another, which is what "the object left of the star", "the biggest" or "the one moving up" ask for. The ranker (ours, absent in the official
models) looks at every candidate track at once, with the expression's words, and scores them against each other:

    per frame t and query q (:func:`pool_descriptors`): a descriptor [C] = the query's decoder output [D] ++
        the backbone features pooled under its mask at strides 8, 16 and 32 (text-independent appearance)
    per query, over the frames (:func:`candidate_features`): the mean descriptor ++ how its box, mask area,
        score and descriptor move
    a transformer over the Q candidate tokens and the expression's word tokens -> a correction per candidate,
        added to the logit of its mean score (zero at first: an untrained ranker keeps the official choice)

The candidate features come from the pipeline's per-frame outputs, so they are the same whether a video ran in
one window or several, and at training time (``python -m train.ranker``) and in use.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

POOLED_LEVELS = (1, 2, 3)
"""Backbone levels pooled under each mask: strides 8, 16 and 32."""
TRACK_SIGNALS = 7
"""Per frame: box cx, cy, w, h, mask area, score logit / 10, descriptor change."""
TRACK_STATS = 4
"""Per signal: mean, standard deviation, mean of the first third, mean of the last third."""


def descriptor_dim(backbone_channels: list[int], hidden_dim: int) -> int:
    """Channels ``C`` of a per-frame candidate descriptor."""
    return hidden_dim + sum(backbone_channels[i] for i in POOLED_LEVELS)


def candidate_dim(backbone_channels: list[int], hidden_dim: int) -> int:
    """Features ``F`` of one candidate track."""
    return descriptor_dim(backbone_channels, hidden_dim) + TRACK_SIGNALS * TRACK_STATS


def pool_descriptors(features: list[Tensor], query_features: Tensor, mask_logits: Tensor) -> Tensor:
    """Per-frame candidate descriptors ``[t, Q, C]``.

    ``features``: the backbone's levels, each ``[t, C_l, h_l, w_l]``; ``query_features [t, Q, D]`` the decoder's
    last output; ``mask_logits [t, Q, h, w]``. Each level is averaged under the query's mask probabilities.
    """
    probs = mask_logits.float().sigmoid()
    pooled = [query_features.float()]
    for level in POOLED_LEVELS:
        feature = features[level].float()
        weights = F.adaptive_avg_pool2d(probs, feature.shape[-2:])
        total = weights.sum((-2, -1))[..., None].clamp_min(1e-4)
        pooled.append(torch.einsum("tqhw,tchw->tqc", weights, feature) / total)
    return torch.cat(pooled, -1)


def _thirds(x: Tensor) -> tuple[Tensor, Tensor]:
    """Means of the first and last third of ``x [T, ...]`` over frames (the whole when T < 3)."""
    n = max(x.shape[0] // 3, 1)
    return x[:n].mean(0), x[-n:].mean(0)


def candidate_features(logits: Tensor, boxes: Tensor, mask_logits: Tensor, descriptors: Tensor) -> Tensor:
    """One feature vector per candidate track: ``[Q, F]``.

    ``logits [T, Q]`` class logits, ``boxes [T, Q, 4]`` (cx, cy, w, h in [0, 1]), ``mask_logits [T, Q, h, w]``,
    ``descriptors [T, Q, C]`` from :func:`pool_descriptors`.
    """
    descriptors = descriptors.float()
    area = (mask_logits > 0).float().mean((-2, -1))
    change = torch.zeros_like(area)
    if descriptors.shape[0] > 1:
        step = (descriptors[1:] - descriptors[:-1]).norm(dim=-1) / descriptors[1:].norm(dim=-1).clamp_min(1e-6)
        change[1:] = step
    signals = torch.cat([boxes.float(), area[..., None], logits.float()[..., None] / 10, change[..., None]], -1)
    first, last = _thirds(signals)
    std = signals.std(0, unbiased=False)
    stats = torch.stack([signals.mean(0), std, first, last], -1).flatten(1)
    return torch.cat([descriptors.mean(0), stats], -1)


def mean_score_logits(logits: Tensor) -> Tensor:
    """``[Q]`` the logit of each query's mean score over frames (``logits [T, Q]``): the official choice's order."""
    return torch.logit(logits.float().sigmoid().mean(0), eps=1e-6)


class CandidateRanker(nn.Module):
    """Candidates ``[N, Q, F]``, word features ``[N, L, D_text]`` and the model's own mean-score logits ``[N, Q]``
    -> one logit per candidate ``[N, Q]``.

    Candidate features are standardised with statistics of the training examples (``fit_normalisation``), then
    ``num_layers`` pre-norm transformer layers of width ``dim`` run over the Q candidate tokens and the L word
    tokens (padding words masked); each candidate's output token gives a correction added to the model's own
    logit. The correction starts at zero, so an untrained ranker keeps the official choice.
    """

    def __init__(self, candidate_dim: int, text_dim: int, dim: int = 128, num_layers: int = 2, nhead: int = 4,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(candidate_dim))
        self.register_buffer("feature_std", torch.ones(candidate_dim))
        self.candidate_proj = nn.Sequential(nn.Linear(candidate_dim, dim), nn.GELU(), nn.Dropout(dropout),
                                            nn.Linear(dim, dim))
        self.word_proj = nn.Linear(text_dim, dim)
        self.token_type = nn.Embedding(2, dim)
        layer = nn.TransformerEncoderLayer(dim, nhead, dim * 4, dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.layers = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.score = nn.Linear(dim, 1)
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)

    @torch.no_grad()
    def fit_normalisation(self, candidates: Tensor) -> None:
        """Set the standardisation from training candidates ``[N, Q, F]``."""
        flat = candidates.reshape(-1, candidates.shape[-1]).float()
        self.feature_mean.copy_(flat.mean(0))
        self.feature_std.copy_(flat.std(0).clamp_min(1e-3))

    def forward(self, candidates: Tensor, words: Tensor, word_padding: Tensor, prior: Tensor) -> Tensor:
        """``candidates [N, Q, F]``, ``words [N, L, D_text]``, ``word_padding [N, L]`` (True on padding),
        ``prior [N, Q]`` (:func:`mean_score_logits`) -> ``[N, Q]`` logits."""
        q = candidates.shape[1]
        standard = (candidates - self.feature_mean) / self.feature_std
        tokens = torch.cat([self.candidate_proj(standard) + self.token_type.weight[0],
                            self.word_proj(words) + self.token_type.weight[1]], 1)
        padding = torch.cat([word_padding.new_zeros(word_padding.shape[0], q), word_padding], 1)
        out = self.layers(tokens, src_key_padding_mask=padding)
        return prior + self.score(self.norm(out[:, :q]))[..., 0]
