"""``CandidateRanker``: which of the model's candidate tracks the expression names, judged over the whole video.

ReferFormer keeps the query with the best mean class score. Each score is made on one frame and then averaged;
queries meet only within a frame (the decoder's self-attention), so nothing compares whole tracks with one
another, which is what "the object left of the star", "the biggest" or "the one moving up" ask for. The ranker
(ours, absent in the official models) looks at every candidate track at once, with the expression's words, and
scores them against each other:

    per frame t and query q (:func:`pool_descriptors`): a descriptor [C] = the query's decoder output [D] ++
        the backbone features pooled under its mask at strides 8, 16 and 32 (text-independent appearance)
    per frame t and query q (:func:`describe_tracks`): where its box and mask are, how big and how oriented
        the mask is, its score, and how much its descriptor and its mask's shape changed
    per query, over the frames (:func:`track_features`): the mean descriptor ++ the mean shape of its mask ++
        statistics of those per-frame signals (mean, spread, start, end, their difference, mean step)
    a transformer over the Q candidate tokens and the expression's word tokens -> a correction per candidate,
        added to the logit of its mean score (zero at first: an untrained ranker keeps the official choice)

The candidate features come from the pipeline's per-frame outputs, so they are the same whether a video ran in
one window or several, and at training time (``python -m train.bundled.ranker``) and in use.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

POOLED_LEVELS = (1, 2, 3)
"""Backbone levels pooled under each mask: strides 8, 16 and 32."""
FRAME_SIGNALS = 13
"""Per frame (:func:`describe_tracks`): box cx, cy, w, h; mask area, centroid x, y; orientation (two terms);
score logit / 10; descriptor change since the previous and the first frame; mask shape change since the
previous frame (position and size factored out)."""
TRACK_STATS = 6
"""Per signal over the frames: mean, standard deviation, first-third mean, last-third mean, their difference,
mean absolute step."""
SHAPE_GRID = 12
"""Side of the object-centred, size-normalised mask sample: compared between frames, and averaged over them."""


def descriptor_dim(backbone_channels: list[int], hidden_dim: int) -> int:
    """Channels ``C`` of a per-frame candidate descriptor."""
    return hidden_dim + sum(backbone_channels[i] for i in POOLED_LEVELS)


def appearance_dim(backbone_channels: list[int], hidden_dim: int) -> int:
    """Appearance features ``A`` of one candidate track (:func:`describe_tracks`)."""
    return descriptor_dim(backbone_channels, hidden_dim) + SHAPE_GRID ** 2


SIGNAL_DIM = FRAME_SIGNALS * TRACK_STATS
"""Signal statistics of one candidate track (:func:`track_features`); ``F = A + SIGNAL_DIM``."""


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


def _shape_samples(weights: Tensor, centre: Tensor, spread: Tensor) -> Tensor:
    """Each mask ``weights [T, Q, h, w]`` sampled on a ``SHAPE_GRID``-square grid around its centroid
    (``centre [T, Q, 2]``, pixels), two radii of gyration ``spread [T, Q]`` (pixels) each way: ``[T, Q, G, G]``."""
    t, q, h, w = weights.shape
    axis = torch.linspace(-2.0, 2.0, SHAPE_GRID)
    offsets = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1)            # [G, G, 2] (x, y)
    points = centre[:, :, None, None] + offsets * spread[:, :, None, None, None]     # pixels
    grid = torch.stack([points[..., 0] / w * 2 - 1, points[..., 1] / h * 2 - 1], -1)
    return F.grid_sample(weights.reshape(t * q, 1, h, w), grid.reshape(t * q, SHAPE_GRID, SHAPE_GRID, 2),
                         align_corners=False).reshape(t, q, SHAPE_GRID, SHAPE_GRID)


def _frame_geometry(weights: Tensor, boxes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Of binary masks ``weights [t, Q, h, w]``: area fraction ``[t, Q]``, centroid x, y ``[t, Q]`` (short-side
    units; the box centre when the mask is empty), orientation ``[t, Q, 2]``, the centred, size-normalised
    samples ``[t, Q, G, G]`` and which masks are empty ``[t, Q]``."""
    h, w = weights.shape[-2:]
    scale = float(min(h, w))
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / scale
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / scale
    mass = weights.sum((-2, -1))
    total = mass.clamp_min(1.0)
    cx = (weights.sum(-2) * xs).sum(-1) / total
    cy = (weights.sum(-1) * ys).sum(-1) / total
    empty = mass == 0
    cx = torch.where(empty, boxes[..., 0].float() * w / scale, cx)
    cy = torch.where(empty, boxes[..., 1].float() * h / scale, cy)
    dx, dy = xs - cx[..., None], ys - cy[..., None]
    mxx = (weights.sum(-2) * dx ** 2).sum(-1) / total
    myy = (weights.sum(-1) * dy ** 2).sum(-1) / total
    mxy = (weights * dy[..., :, None] * dx[..., None, :]).sum((-2, -1)) / total
    spread = (mxx + myy).clamp_min(1e-6)
    orientation = torch.stack([(mxx - myy) / spread, 2 * mxy / spread], -1)
    shapes = _shape_samples(weights, torch.stack([cx, cy], -1) * scale, spread.sqrt() * scale)
    return mass / (h * w), cx, cy, orientation, shapes, empty


class TrackDescription:
    """The description of Q candidate tracks over the frames added so far, window by window (:meth:`add`).

    Each frame is described once, so a run of W windows costs what one pass over its frames does, and the
    result is :func:`describe_tracks` over all those frames at once: ``appearance [Q, A]`` (the mean descriptor
    ++ the mean shape of the mask over the frames where it is there) and ``signals [T, Q, FRAME_SIGNALS]``.
    """

    def __init__(self) -> None:
        self._signals: list[Tensor] = []
        self._descriptor_sum: Tensor | None = None
        self._shape_sum: Tensor | None = None
        self._present: Tensor | None = None
        self._first: Tensor | None = None
        self._last: tuple[Tensor, Tensor] | None = None
        self.num_frames = 0

    def add(self, logits: Tensor, boxes: Tensor, mask_logits: Tensor, descriptors: Tensor) -> None:
        """Describe the next ``t`` frames: ``logits [t, Q]`` class logits, ``boxes [t, Q, 4]`` (cx, cy, w, h in
        [0, 1]), ``mask_logits [t, Q, h, w]``, ``descriptors [t, Q, C]`` (:func:`pool_descriptors`)."""
        if logits.shape[0] == 0:
            return
        descriptors = descriptors.float()
        area, cx, cy, orientation, shapes, empty = _frame_geometry((mask_logits.float() > 0).float(), boxes)
        last_descriptor, last_shape = self._last if self._last is not None else (descriptors[0], shapes[0])
        first = descriptors[0] if self._first is None else self._first
        before = torch.cat([last_descriptor[None], descriptors[:-1]])
        size = descriptors.norm(dim=-1).clamp_min(1e-6)
        step = (descriptors - before).norm(dim=-1) / size
        from_first = (descriptors - first).norm(dim=-1) / size
        shapes_before = torch.cat([last_shape[None], shapes[:-1]])
        shape_change = ((shapes - shapes_before).abs().sum((-2, -1))
                        / (shapes + shapes_before).sum((-2, -1)).clamp_min(1e-6))
        self._signals.append(torch.cat([boxes.float(), area[..., None], cx[..., None], cy[..., None], orientation,
                                        logits.float()[..., None] / 10, step[..., None], from_first[..., None],
                                        shape_change[..., None]], -1))
        present = (~empty).float()
        shape_sum = (shapes.flatten(2) * present[..., None]).sum(0)
        if self._first is None:
            self._first, self._descriptor_sum = first, descriptors.sum(0)
            self._shape_sum, self._present = shape_sum, present.sum(0)
        else:
            self._descriptor_sum = self._descriptor_sum + descriptors.sum(0)
            self._shape_sum, self._present = self._shape_sum + shape_sum, self._present + present.sum(0)
        self._last = (descriptors[-1], shapes[-1])
        self.num_frames += logits.shape[0]

    @property
    def appearance(self) -> Tensor:
        """``[Q, A]``: the mean descriptor ++ the mean shape sample over the frames where the mask is there."""
        if self._descriptor_sum is None:
            raise ValueError("no frames described yet")
        shape = self._shape_sum / self._present.clamp_min(1.0)[:, None]
        return torch.cat([self._descriptor_sum / self.num_frames, shape], -1)

    @property
    def signals(self) -> Tensor:
        """``[T, Q, FRAME_SIGNALS]`` per-frame signals (see :data:`FRAME_SIGNALS`)."""
        if len(self._signals) > 1:
            self._signals = [torch.cat(self._signals)]
        return self._signals[0]

    def features(self) -> Tensor:
        """``[Q, F]`` the ranker's input (:func:`track_features`)."""
        return track_features(self.appearance, self.signals)


def describe_tracks(logits: Tensor, boxes: Tensor, mask_logits: Tensor, descriptors: Tensor
                    ) -> tuple[Tensor, Tensor]:
    """What each candidate looks like, ``appearance [Q, C + SHAPE_GRID ** 2]`` (its mean descriptor ++ the mean
    of its centred, size-normalised mask samples over the frames where it is there), and its per-frame
    ``signals [T, Q, FRAME_SIGNALS]`` (see :data:`FRAME_SIGNALS`; positions in units of the short side).

    ``logits [T, Q]`` class logits, ``boxes [T, Q, 4]`` (cx, cy, w, h in [0, 1]), ``mask_logits [T, Q, h, w]``,
    ``descriptors [T, Q, C]`` from :func:`pool_descriptors`. The same as :class:`TrackDescription` fed all frames.
    """
    description = TrackDescription()
    description.add(logits, boxes, mask_logits, descriptors)
    return description.appearance, description.signals


def _thirds(x: Tensor) -> tuple[Tensor, Tensor]:
    """Means of the first and last third of ``x [T, ...]`` over frames (the whole when T < 3)."""
    n = max(x.shape[0] // 3, 1)
    return x[:n].mean(0), x[-n:].mean(0)


def track_features(appearance: Tensor, signals: Tensor) -> Tensor:
    """``[Q, F]``: ``appearance [Q, A]`` ++ the statistics of the per-frame ``signals [T, Q, S]``
    (:func:`describe_tracks`)."""
    first, last = _thirds(signals)
    steps = (signals[1:] - signals[:-1]).abs().mean(0) if signals.shape[0] > 1 else torch.zeros_like(first)
    stats = torch.stack([signals.mean(0), signals.std(0, unbiased=False), first, last, last - first, steps], -1)
    return torch.cat([appearance.float(), stats.flatten(1)], -1)


def candidate_features(logits: Tensor, boxes: Tensor, mask_logits: Tensor, descriptors: Tensor) -> Tensor:
    """One feature vector per candidate track: ``[Q, F]``, from the arguments of :func:`describe_tracks`."""
    return track_features(*describe_tracks(logits, boxes, mask_logits, descriptors))


def mean_scores(logits: Tensor) -> Tensor:
    """``[Q]`` each query's mean score over frames, from class ``logits [T, Q]``: the official rule for which query
    is the object (the best mean score over the whole video)."""
    return logits.float().sigmoid().mean(0)


def mean_score_logits(logits: Tensor) -> Tensor:
    """``[Q]`` the logit of each query's mean score (:func:`mean_scores`): the official choice's order."""
    return torch.logit(mean_scores(logits), eps=1e-6)


class CandidateRanker(nn.Module):
    """Candidates ``[N, Q, F]``, word features ``[N, L, D_text]`` and the model's own mean-score logits ``[N, Q]``
    -> one logit per candidate ``[N, Q]``.

    Candidate features (``F = appearance_dim + signal_dim``: :func:`track_features`) are standardised with
    statistics of the training examples (``fit_normalisation``); the appearance and the signal statistics each
    go through their own projection (so the few signal statistics are not drowned among the appearance
    features), summed into one token per candidate; then ``num_layers`` pre-norm transformer layers of width ``dim``
    run over the Q candidate tokens and the L word tokens (padding words masked); each candidate's output token
    gives a correction added to the model's own logit. The correction starts at zero, so an untrained ranker keeps
    the official choice.
    """

    def __init__(self, appearance_dim: int, signal_dim: int, text_dim: int, dim: int = 128, num_layers: int = 2,
                 nhead: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        self.appearance_dim = appearance_dim
        self.register_buffer("feature_mean", torch.zeros(appearance_dim + signal_dim))
        self.register_buffer("feature_std", torch.ones(appearance_dim + signal_dim))
        self.candidate_proj = nn.Sequential(nn.Linear(appearance_dim, dim), nn.GELU(), nn.Dropout(dropout),
                                            nn.Linear(dim, dim))
        self.signal_proj = nn.Sequential(nn.Linear(signal_dim, dim), nn.GELU(), nn.Linear(dim, dim))
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
        appearance, signals = standard[..., :self.appearance_dim], standard[..., self.appearance_dim:]
        tokens = torch.cat([self.candidate_proj(appearance) + self.signal_proj(signals) + self.token_type.weight[0],
                            self.word_proj(words) + self.token_type.weight[1]], 1)
        padding = torch.cat([word_padding.new_zeros(word_padding.shape[0], q), word_padding], 1)
        out = self.layers(tokens, src_key_padding_mask=padding)
        return prior + self.score(self.norm(out[:, :q]))[..., 0]
