"""``ReferFormerConfig``: every size of the model in one dataclass, and a registry of named configs."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .backbones import backbone_names
from .errors import ConfigError

ROBERTA_BASE: dict[str, Any] = {
    "model_type": "roberta",
    "vocab_size": 50265,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "layer_norm_eps": 1e-5,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
}


@dataclass(frozen=True)
class ReferFormerConfig:
    """Sizes of ReferFormer; the defaults are the official Ref-Youtube-VOS inference options.

    Named configs: the official backbones (``resnet50`` … ``video_swin_b_p4w7``), ``small`` (EfficientNet-Lite0 +
    MiniLM-L6, the light model whose pretrained parts ship offline) and ``tiny`` (for tests and overfitting runs).

    ``text_encoder`` holds the keyword arguments of a ``transformers`` config (``model_type`` included),
    so the model can be built without any file; weights come from the checkpoint.
    ``sentence_refiner_layers`` (ours, 0 in the official models): transformer layers of width
    ``sentence_refiner_dim`` over the word features whose pooled output is added to the sentence feature
    (``sentence_refiner.py``). ``candidate_ranker_layers`` (ours, 0 in the official models): transformer layers
    of width ``candidate_ranker_dim`` that choose among the candidate tracks (``candidate_ranker.py``); without
    one the query with the best mean score is kept, as the official code does.
    """

    backbone: str = "resnet50"
    text_encoder: dict[str, Any] = field(default_factory=lambda: dict(ROBERTA_BASE))
    hidden_dim: int = 256
    nheads: int = 8
    enc_layers: int = 4
    dec_layers: int = 4
    dim_feedforward: int = 2048
    num_queries: int = 5
    num_feature_levels: int = 4
    enc_n_points: int = 4
    dec_n_points: int = 4
    num_classes: int = 1
    mask_dim: int = 256
    controller_layers: int = 3
    dynamic_mask_channels: int = 8
    rel_coord: bool = True
    sentence_refiner_layers: int = 0
    sentence_refiner_dim: int = 192
    candidate_ranker_layers: int = 0
    candidate_ranker_dim: int = 128

    @property
    def text_hidden_size(self) -> int:
        return int(self.text_encoder["hidden_size"])

    def replace(self, **changes: Any) -> "ReferFormerConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


TINY_ROBERTA: dict[str, Any] = {
    **ROBERTA_BASE,
    "vocab_size": 1000,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "max_position_embeddings": 130,
}

MINILM_L6: dict[str, Any] = {
    "model_type": "bert",
    "vocab_size": 30522,
    "hidden_size": 384,
    "num_hidden_layers": 6,
    "num_attention_heads": 12,
    "intermediate_size": 1536,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
    "hidden_act": "gelu",
}


MODEL_CONFIGS: dict[str, ReferFormerConfig] = {
    name: ReferFormerConfig(backbone=name) for name in backbone_names(official_only=True)
}
"""Named configs: one per variant of the official backbone families (from the backbone registry), plus ours."""
MODEL_CONFIGS["small"] = ReferFormerConfig(backbone="efficientnet_lite0", text_encoder=dict(MINILM_L6), hidden_dim=96,
                                           nheads=4, enc_layers=1, dec_layers=3, dim_feedforward=384, mask_dim=48)
"""The bundled model's sizes: the official widths (256 wide, 4+4 layers, FFN 2048) ran at 1.6 fps at 240x320 on 2
CPU cores; these run at about 9 fps there, mostly in EfficientNet-Lite0 (see the model card)."""
MODEL_CONFIGS["small_official_widths"] = ReferFormerConfig(backbone="efficientnet_lite0", text_encoder=dict(MINILM_L6))
"""``small``'s backbone and text encoder with the official transformer and FPN sizes (256 wide, 8 heads, 4+4
layers, FFN 2048, mask features 256): trained beside ``small`` for the same CPU time, it prices the sizing (model
card)."""
MODEL_CONFIGS["tiny"] = ReferFormerConfig(backbone="efficientnet_lite0", text_encoder=dict(TINY_ROBERTA), hidden_dim=64,
                                          enc_layers=1, dec_layers=2, dim_feedforward=128, mask_dim=64)


def get_config(name: str) -> ReferFormerConfig:
    """The named config (the official ``--backbone`` names)."""
    try:
        return MODEL_CONFIGS[name]
    except KeyError:
        raise ConfigError(f"unknown model config {name!r}; known: {', '.join(MODEL_CONFIGS)}") from None
