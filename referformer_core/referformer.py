"""ReferFormer: the assembled model, with the official checkpoints' parameter names."""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .backbones import build_backbone
from .config import ReferFormerConfig
from .fpn import CrossModalFPNDecoder
from .fusion import VisionLanguageFusionModule
from .heads import MLP, FeatureResizer, dynamic_mask_logits, dynamic_params_sizes
from .position import PositionEmbeddingSine1D, PositionEmbeddingSine2D
from .candidate_ranker import SIGNAL_DIM, CandidateRanker, appearance_dim
from .sentence_refiner import SentenceRefiner
from .text import build_text_encoder
from .transformer import DeformableTransformer, inverse_sigmoid


class Joiner(nn.Sequential):
    """``backbone.0`` the visual network, ``backbone.1`` its 2-D position encoding (official layout)."""

    def __init__(self, backbone: nn.Module, position_embedding: PositionEmbeddingSine2D) -> None:
        super().__init__(backbone, position_embedding)


@dataclass
class TextFeatures:
    """Resized text encoder outputs: words ``[B, Lt, C]``, padding mask ``[B, Lt]``, sentence ``[B, C]``; and the
    encoder's own word features before resizing, ``encoder_words [B, Lt, C_text]`` (what the candidate ranker
    reads: the resizer, trained for the per-frame decoder, brings "up" and "down" closer together)."""

    words: Tensor
    mask: Tensor
    sentence: Tensor
    encoder_words: Tensor

    def __len__(self) -> int:
        return self.sentence.shape[0]

    def select(self, index: int) -> "TextFeatures":
        """The features of expression ``index`` alone (batch of one)."""
        one = slice(index, index + 1)
        return TextFeatures(self.words[one], self.mask[one], self.sentence[one], self.encoder_words[one])


@dataclass
class VisualFeatures:
    """Text-independent features of ``batch`` clips of ``num_frames`` frames; tensors are ``[batch*T, ...]``.

    ``features``: backbone outputs at strides 4-32 with their padding ``feature_masks`` and encodings ``poses``;
    ``projections``: the input projections feeding the transformer levels (strides 8-64), with their masks/poses;
    ``mask``: the input padding mask ``[batch*T, H, W]``.
    """

    batch: int
    num_frames: int
    mask: Tensor
    features: list[Tensor]
    feature_masks: list[Tensor]
    poses: list[Tensor]
    projections: list[Tensor]
    proj_masks: list[Tensor]
    proj_poses: list[Tensor]

    def repeat(self, n: int) -> "VisualFeatures":
        """The single clip repeated for ``n`` expressions."""
        def rep(x: Tensor) -> Tensor:
            return x.unsqueeze(0).expand(n, *x.shape).flatten(0, 1)

        lists = [[rep(x) for x in xs] for xs in (self.features, self.feature_masks, self.poses, self.projections,
                                                 self.proj_masks, self.proj_poses)]
        return VisualFeatures(n, self.num_frames, rep(self.mask), *lists)


class ReferFormer(nn.Module):
    """Referring video object segmentation: video ``[B, T, 3, H, W]`` + expression -> per-frame boxes and masks."""

    def __init__(self, config: ReferFormerConfig) -> None:
        super().__init__()
        self.config = config
        hidden = config.hidden_dim
        self.num_queries = config.num_queries
        self.num_feature_levels = config.num_feature_levels
        self.transformer = DeformableTransformer(
            d_model=hidden, nhead=config.nheads, num_encoder_layers=config.enc_layers,
            num_decoder_layers=config.dec_layers, dim_feedforward=config.dim_feedforward, dropout=0.1,
            num_feature_levels=config.num_feature_levels, dec_n_points=config.dec_n_points,
            enc_n_points=config.enc_n_points)
        num_pred = config.dec_layers
        class_embed = nn.Linear(hidden, config.num_classes)
        bbox_embed = MLP(hidden, hidden, 4, 3)
        prior_prob = 0.01
        class_embed.bias.data = torch.ones(config.num_classes) * -math.log((1 - prior_prob) / prior_prob)
        nn.init.zeros_(bbox_embed.layers[-1].weight)
        nn.init.zeros_(bbox_embed.layers[-1].bias)
        self.class_embed = nn.ModuleList(copy.deepcopy(class_embed) for _ in range(num_pred))
        self.bbox_embed = nn.ModuleList(copy.deepcopy(bbox_embed) for _ in range(num_pred))
        nn.init.constant_(self.bbox_embed[0].layers[-1].bias.data[2:], -2.0)
        self.transformer.decoder.bbox_embed = self.bbox_embed
        self.query_embed = nn.Embedding(config.num_queries, hidden)

        backbone = build_backbone(config.backbone)
        in_channels = backbone.num_channels[-3:]
        projs = [nn.Sequential(nn.Conv2d(c, hidden, kernel_size=1), nn.GroupNorm(32, hidden)) for c in in_channels]
        c = in_channels[-1]
        for _ in range(config.num_feature_levels - len(in_channels)):
            projs.append(nn.Sequential(nn.Conv2d(c, hidden, kernel_size=3, stride=2, padding=1), nn.GroupNorm(32, hidden)))
            c = hidden
        self.input_proj = nn.ModuleList(projs)
        for proj in self.input_proj:
            nn.init.xavier_uniform_(proj[0].weight, gain=1)
            nn.init.zeros_(proj[0].bias)
        self.backbone = Joiner(backbone, PositionEmbeddingSine2D(hidden // 2))

        self.text_encoder = build_text_encoder(config.text_encoder)
        self.resizer = FeatureResizer(config.text_hidden_size, hidden, dropout=0.1)
        self.sentence_refiner = None
        if config.sentence_refiner_layers:
            self.add_sentence_refiner()
        self.candidate_ranker = None
        if config.candidate_ranker_layers:
            self.add_candidate_ranker()
        self.fusion_module = VisionLanguageFusionModule(d_model=hidden, nhead=8)
        self.text_pos = PositionEmbeddingSine1D(hidden)

        feature_channels = [backbone.num_channels[0]] + 3 * [hidden]
        self.pixel_decoder = CrossModalFPNDecoder(feature_channels, conv_dim=hidden, mask_dim=config.mask_dim,
                                                  dim_feedforward=config.dim_feedforward)
        self.weight_nums, self.bias_nums = dynamic_params_sizes(config.mask_dim, config.dynamic_mask_channels,
                                                                config.controller_layers, config.rel_coord)
        self.controller = MLP(hidden, hidden, sum(self.weight_nums) + sum(self.bias_nums), 3)
        for layer in self.controller.layers:
            nn.init.zeros_(layer.bias)
            nn.init.xavier_uniform_(layer.weight)

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor) -> TextFeatures:
        """Token ids ``[B, Lt]`` and attention mask ``[B, Lt]`` (1 on tokens) -> resized text features."""
        out = self.text_encoder(input_ids=input_ids, attention_mask=attention_mask)
        sentence = self.resizer(out.pooler_output)
        if self.sentence_refiner is not None:
            sentence = sentence + self.sentence_refiner(out.last_hidden_state, attention_mask)
        return TextFeatures(words=self.resizer(out.last_hidden_state), mask=attention_mask.ne(1), sentence=sentence,
                            encoder_words=out.last_hidden_state)

    def add_sentence_refiner(self, num_layers: int | None = None) -> None:
        """Give the model a fresh ``SentenceRefiner`` (``num_layers`` or the config's); its zero output leaves what
        the model computes unchanged until it is trained."""
        layers = num_layers or self.config.sentence_refiner_layers
        if layers < 1:
            raise ValueError(f"a sentence refiner needs at least one layer, got {layers}")
        self.config = self.config.replace(sentence_refiner_layers=layers)
        self.sentence_refiner = SentenceRefiner(self.config.text_hidden_size, self.config.hidden_dim,
                                                self.config.sentence_refiner_dim, layers)

    def add_candidate_ranker(self, num_layers: int | None = None) -> None:
        """Give the model a fresh ``CandidateRanker`` (``num_layers`` or the config's) that chooses its track."""
        layers = num_layers or self.config.candidate_ranker_layers
        if layers < 1:
            raise ValueError(f"a candidate ranker needs at least one layer, got {layers}")
        self.config = self.config.replace(candidate_ranker_layers=layers)
        appearance = appearance_dim(self.backbone[0].num_channels, self.config.hidden_dim)
        self.candidate_ranker = CandidateRanker(appearance, SIGNAL_DIM, self.config.text_hidden_size,
                                                self.config.candidate_ranker_dim, layers)

    def encode_frames(self, frames: Tensor, padding_mask: Tensor | None = None) -> VisualFeatures:
        """The text-independent part: backbone features, their masks and encodings, input projections.

        ``frames [B, T, 3, H, W]`` normalised, ``padding_mask [B, T, H, W]`` (True on padding) or None.
        """
        b, t = frames.shape[:2]
        images = frames.flatten(0, 1)
        if padding_mask is None:
            mask = torch.zeros(images.shape[0], *images.shape[-2:], dtype=torch.bool, device=images.device)
        else:
            mask = padding_mask.flatten(0, 1)
        backbone, pos_embed = self.backbone[0], self.backbone[1]
        features = backbone(images, t)
        feature_masks = [F.interpolate(mask[None].float(), size=f.shape[-2:]).to(torch.bool)[0] for f in features]
        poses = [pos_embed(m).to(f.dtype) for f, m in zip(features, feature_masks)]
        projections = [self.input_proj[lvl](features[lvl + 1]) for lvl in range(3)]
        proj_masks, proj_poses = feature_masks[1:], poses[1:]
        if self.num_feature_levels > 3:
            src = self.input_proj[3](features[-1])
            m = F.interpolate(mask[None].float(), size=src.shape[-2:]).to(torch.bool)[0]
            projections.append(src)
            proj_masks.append(m)
            proj_poses.append(pos_embed(m).to(src.dtype))
        return VisualFeatures(b, t, mask, features, feature_masks, poses, projections, proj_masks, proj_poses)

    def forward(self, frames: Tensor, text: TextFeatures, image_sizes: Tensor, padding_mask: Tensor | None = None,
                all_layers: bool = False) -> dict[str, Tensor | list]:
        """
        Args:
            frames: ``[B, T, 3, H, W]`` normalised clips (padded to a common size).
            text: one expression per clip, from ``encode_text``.
            image_sizes: ``[B, 2]`` (h, w) of the (unpadded) input, used for the relative coordinates.
            padding_mask: ``[B, T, H, W]`` True on padding; None when nothing is padded.
            all_layers: also compute masks for the auxiliary decoder layers (``aux_outputs``), for training.

        Returns:
            ``pred_logits [B, T, Q, K]``, ``pred_boxes [B, T, Q, 4]`` (cx, cy, w, h in [0, 1]),
            ``pred_masks [B, T, Q, H/4, W/4]`` logits, ``reference_points [B, T, Q, 2]``, ``query_features
            [B, T, Q, D]`` (the last decoder layer's output),
            and ``aux_outputs`` (list of dicts of the first three) when ``all_layers``.
        """
        return self.decode(self.encode_frames(frames, padding_mask), text, image_sizes, all_layers)

    def decode_each(self, visual: VisualFeatures, text: TextFeatures, image_sizes: Tensor) -> list[dict[str, Tensor | list]]:
        """``decode`` for each of ``N`` expressions in turn over one clip's shared visual features.

        Everything after the backbone depends on the text, so several objects cost one backbone pass plus
        ``N`` text-conditioned passes; one at a time keeps the memory of a single expression.
        """
        return [self.decode(visual, text.select(i), image_sizes) for i in range(len(text))]

    def decode(self, visual: VisualFeatures, text: TextFeatures, image_sizes: Tensor,
               all_layers: bool = False) -> dict[str, Tensor | list]:
        """Everything that depends on the text, for ``N`` expressions.

        ``visual`` holds either ``N`` clips (one per expression) or one clip shared by all ``N`` expressions
        (the backbone then runs once for several objects). ``image_sizes [N or 1, 2]``. Outputs as ``forward``.
        """
        n = text.sentence.shape[0]
        if visual.batch != n:
            if visual.batch != 1:
                raise ValueError(f"{visual.batch} clips for {n} expressions: give one clip, or one per expression")
            visual = visual.repeat(n)
            image_sizes = image_sizes.expand(n, -1)
        b, t = n, visual.num_frames
        text_pos = self.text_pos(text.mask).permute(2, 0, 1)
        words = text.words.permute(1, 0, 2)

        srcs, masks, pos_list = [], [], []
        for lvl in range(self.num_feature_levels):
            if lvl < len(visual.projections):
                src, m, p = visual.projections[lvl], visual.proj_masks[lvl], visual.proj_poses[lvl]
            else:
                src = self.input_proj[lvl](srcs[-1])
                m = F.interpolate(visual.mask[None].float(), size=src.shape[-2:]).to(torch.bool)[0]
                p = self.backbone[1](m).to(src.dtype)
            h, w = src.shape[-2:]
            fused = self.fusion_module(rearrange(src, "(b t) c h w -> (t h w) b c", b=b, t=t), words, text.mask, text_pos)
            srcs.append(rearrange(fused, "(t h w) b c -> (b t) c h w", t=t, h=h, w=w))
            masks.append(m)
            pos_list.append(p)

        tgt = text.sentence[:, None, None, :].expand(b, t, self.num_queries, -1).flatten(0, 1)
        hs, memory, init_reference, inter_references = self.transformer(srcs, tgt, masks, pos_list, self.query_embed.weight)

        num_layers = hs.shape[0]
        layers = range(num_layers) if all_layers else [num_layers - 1]
        classes, coords = [], []
        for lvl in layers:
            reference = inverse_sigmoid(init_reference if lvl == 0 else inter_references[lvl - 1])
            tmp = self.bbox_embed[lvl](hs[lvl])
            if reference.shape[-1] == 4:
                tmp = tmp + reference
            else:
                tmp = torch.cat([tmp[..., :2] + reference, tmp[..., 2:]], -1)
            classes.append(rearrange(self.class_embed[lvl](hs[lvl]), "(b t) q k -> b t q k", b=b, t=t))
            coords.append(rearrange(tmp.sigmoid(), "(b t) q n -> b t q n", b=b, t=t))

        mask_features = self.pixel_decoder(visual.features, visual.feature_masks, visual.poses, memory,
                                           text.words, text.mask, t)
        mask_features = rearrange(mask_features, "(b t) c h w -> b t c h w", b=b, t=t)
        seg_masks = []
        for lvl in layers:
            params = rearrange(self.controller(hs[lvl]), "(b t) q n -> b (t q) n", b=b, t=t)
            refs = rearrange(inter_references[lvl, ..., :2], "(b t) q n -> b (t q) n", b=b, t=t)
            logits = dynamic_mask_logits(mask_features, params, refs, image_sizes, self.weight_nums, self.bias_nums,
                                         self.config.dynamic_mask_channels, self.config.rel_coord)
            seg_masks.append(rearrange(logits, "b (t q) h w -> b t q h w", t=t))

        out: dict[str, Tensor | list] = {
            "pred_logits": classes[-1],
            "pred_boxes": coords[-1],
            "pred_masks": seg_masks[-1],
            "reference_points": rearrange(inter_references[-2, :, :, :2], "(b t) q n -> b t q n", b=b, t=t),
            "query_features": rearrange(hs[-1], "(b t) q d -> b t q d", b=b, t=t),
        }
        if all_layers:
            out["aux_outputs"] = [{"pred_logits": a, "pred_boxes": c, "pred_masks": m}
                                  for a, c, m in zip(classes[:-1], coords[:-1], seg_masks[:-1])]
        return out
