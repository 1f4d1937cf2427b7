"""Load ReferFormer checkpoints (the authors' model-zoo files, plain state dicts, and our own) safely.

Files are read with ``torch.load(weights_only=True)`` (only ``argparse.Namespace`` is allow-listed, for the
official files' ``args``), the model configuration is inferred from the keys and shapes, and the weights
are loaded with strict key matching.
"""
from __future__ import annotations

import argparse
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .backbones import backbone_from_weights
from .config import ROBERTA_BASE, ReferFormerConfig
from .errors import CheckpointError
from .referformer import ReferFormer

IGNORED_KEYS = ("text_encoder.embeddings.position_ids",)
CONFIG_KEY = "referformer_config"
TEXT_WEIGHTS_KEY = "text_encoder_weights"
"""Set when the checkpoint leaves out a frozen, unchanged text encoder: the name its weights load from."""


def read_checkpoint(path: str | Path, mmap: bool = False) -> dict[str, Any]:
    """The raw checkpoint dict, read without unpickling arbitrary objects; ``mmap``: tensors are mapped from the
    file, not read, so reading only the settings keys and the weights' names and shapes costs little."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes)")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            try:
                data = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
            except RuntimeError:
                if not mmap:
                    raise
                data = torch.load(path, map_location="cpu", weights_only=True)  # a legacy (non-zip) file
    except pickle.UnpicklingError as e:
        message = str(e).splitlines()[0] if "Unsupported global" not in str(e) else _unsupported_global(str(e))
        raise CheckpointError(f"checkpoint {path} cannot be read safely: {message}") from e
    except Exception as e:  # the unpickler raises many types on garbage bytes
        raise CheckpointError(f"checkpoint {path} is not a PyTorch checkpoint or is truncated ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:200]})") from e
    if not isinstance(data, Mapping):
        raise CheckpointError(f"checkpoint {path} holds a {type(data).__name__}, not a dict of weights")
    return dict(data)


def _unsupported_global(message: str) -> str:
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", message)
    name = found.group(1) if found else "an unknown object"
    return f"it contains a pickled {name}, which is not allowed (only tensors and argparse.Namespace are)"


def extract_state_dict(data: Mapping[str, Any], path: str | Path = "checkpoint") -> dict[str, Tensor]:
    """The model weights of an official file (``model``), a ``state_dict`` entry or a plain state dict."""
    for key in ("model", "state_dict"):
        if key in data and isinstance(data[key], Mapping):
            state = dict(data[key])
            break
    else:
        state = dict(data)
    if not state or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path} has no model weights (expected a 'model' dict of tensors or a state dict)")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    for key in IGNORED_KEYS:
        state.pop(key, None)
    if not any(k.startswith("transformer.") for k in state) or not any(k.startswith("backbone.0.") for k in state):
        raise CheckpointError(f"{path} is not a ReferFormer checkpoint (no 'transformer.*' / 'backbone.0.*' weights)")
    return state


def _count(state: Mapping[str, Tensor], pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in state if (m := rx.match(k))})


def infer_backbone(state: Mapping[str, Tensor]) -> str:
    """The official ``--backbone`` name that produced these weights (matched in the backbone registry)."""
    try:
        return backbone_from_weights(state)
    except LookupError as e:
        raise CheckpointError(f"unsupported backbone in checkpoint: {e.args[0]}") from None


def infer_text_spec(state: Mapping[str, Tensor]) -> dict[str, Any]:
    """RoBERTa-style encoder sizes from the ``text_encoder.*`` weights (the official models use RoBERTa)."""
    try:
        words = state["text_encoder.embeddings.word_embeddings.weight"]
        positions = state["text_encoder.embeddings.position_embeddings.weight"]
        token_types = state["text_encoder.embeddings.token_type_embeddings.weight"]
        intermediate = state["text_encoder.encoder.layer.0.intermediate.dense.weight"]
    except KeyError as e:
        raise CheckpointError(f"checkpoint has no text encoder weight {e.args[0]}") from None
    hidden = words.shape[1]
    spec = dict(ROBERTA_BASE)
    spec.update(vocab_size=words.shape[0], hidden_size=hidden, max_position_embeddings=positions.shape[0],
                type_vocab_size=token_types.shape[0], intermediate_size=intermediate.shape[0],
                num_hidden_layers=_count(state, r"text_encoder\.encoder\.layer\.(\d+)\."),
                num_attention_heads=max(1, hidden // 64))
    return spec


def infer_config(state: Mapping[str, Tensor], text_spec: dict[str, Any] | None = None) -> ReferFormerConfig:
    """A ``ReferFormerConfig`` whose model has exactly these keys and shapes (as far as they tell)."""
    try:
        query = state["query_embed.weight"]
        return ReferFormerConfig(
            backbone=infer_backbone(state),
            text_encoder=text_spec or infer_text_spec(state),
            hidden_dim=query.shape[1],
            num_queries=query.shape[0],
            num_classes=state["class_embed.0.weight"].shape[0],
            enc_layers=_count(state, r"transformer\.encoder\.layers\.(\d+)\."),
            dec_layers=_count(state, r"transformer\.decoder\.layers\.(\d+)\."),
            dim_feedforward=state["transformer.encoder.layers.0.linear1.weight"].shape[0],
            num_feature_levels=state["transformer.level_embed"].shape[0],
            mask_dim=state["pixel_decoder.mask_features.weight"].shape[0],
        )
    except KeyError as e:
        raise CheckpointError(f"checkpoint lacks {e.args[0]!r}, which every ReferFormer model has") from None


def check_state_dict(model: torch.nn.Module, state: Mapping[str, Tensor], path: str | Path = "checkpoint") -> None:
    """Raise one readable ``CheckpointError`` listing missing, unexpected and mis-shaped keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} vs model {tuple(v.shape)}" for k, v in expected.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
            if items:
                shown = ", ".join(items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")
                parts.append(f"{len(items)} {label}: {shown}")
        raise CheckpointError(f"{path} does not match the ReferFormer model: " + "; ".join(parts))


def load_checkpoint(path: str | Path, text_spec: dict[str, Any] | None = None) -> ReferFormer:
    """A ``ReferFormer`` in eval mode with the checkpoint's weights, loaded with strict key matching.

    ``text_spec`` (a ``transformers`` config as a dict) overrides the RoBERTa sizes inferred from the keys,
    for checkpoints fine-tuned with another encoder; our own checkpoints store their full config. A checkpoint
    that stores ``text_encoder_weights`` instead of the text encoder's tensors gets them from that name (e.g.
    the packaged ``all-minilm-l6-v2``), and they must fit the stored config exactly.
    """
    return model_from_checkpoint_data(read_checkpoint(path), path, text_spec)


def model_from_checkpoint_data(data: Mapping[str, Any], path: str | Path = "checkpoint",
                               text_spec: dict[str, Any] | None = None) -> ReferFormer:
    """:func:`load_checkpoint` on a checkpoint already read with :func:`read_checkpoint` (``path`` names it in
    errors), for callers that also read its other entries."""
    state = extract_state_dict(data, path)
    stored = data.get(CONFIG_KEY)
    config = ReferFormerConfig(**stored) if isinstance(stored, Mapping) else infer_config(state, text_spec)
    external = data.get(TEXT_WEIGHTS_KEY)
    if external:
        from .text import load_pretrained_text_encoder

        encoder = load_pretrained_text_encoder(str(external))
        state.update({f"text_encoder.{k}": v for k, v in encoder.state_dict().items()
                      if f"text_encoder.{k}" not in IGNORED_KEYS})
    with torch.device("meta"):
        model = ReferFormer(config)
    check_state_dict(model, state, path)
    model.load_state_dict(state, strict=True, assign=True)
    _rebuild_non_persistent_buffers(model)
    return model.eval()


def checkpoint_backbone(data: Mapping[str, Any], path: str | Path = "checkpoint") -> str:
    """The backbone name of a checkpoint already read: its stored config's, else inferred from the weights."""
    stored = data.get(CONFIG_KEY)
    if isinstance(stored, Mapping) and "backbone" in stored:
        return str(stored["backbone"])
    return infer_backbone(extract_state_dict(data, path))


def checkpoint_text_encoder(path: str | Path) -> str | None:
    """The text encoder a checkpoint names for its frozen weights (and tokenizer), or None."""
    name = read_checkpoint(path).get(TEXT_WEIGHTS_KEY)
    return str(name) if name else None


def _rebuild_non_persistent_buffers(model: ReferFormer) -> None:
    """Buffers not in state dicts (e.g. the text encoder's ``position_ids``) are built on CPU afresh."""
    for module_name, module in model.named_modules():
        for name in list(getattr(module, "_non_persistent_buffers_set", ())):
            buf = module._buffers.get(name)
            if buf is not None and buf.is_meta:
                fresh = _fresh_buffer(model, module_name, name, buf)
                module._buffers[name] = fresh


def _fresh_buffer(model: ReferFormer, module_name: str, name: str, meta: Tensor) -> Tensor:
    if name in ("position_ids", "token_type_ids") and meta.dim() == 2:
        n = meta.shape[1]
        return torch.arange(n).expand(1, -1).clone() if name == "position_ids" else torch.zeros(1, n, dtype=torch.long)
    raise CheckpointError(f"cannot rebuild buffer {module_name}.{name} of the model")


def save_checkpoint(model: ReferFormer, path: str | Path, text_encoder_weights: str | None = None,
                    **extra: Any) -> None:
    """Write ``{'model': state_dict, 'referformer_config': ..., **extra}`` (the official layout plus our config).

    With ``text_encoder_weights`` (the name of a frozen, unchanged text encoder), its tensors are left out and
    the name is stored instead; :func:`load_checkpoint` loads them from there.
    """
    state = model.state_dict()
    if text_encoder_weights:
        state = {k: v for k, v in state.items() if not k.startswith("text_encoder.")}
        extra[TEXT_WEIGHTS_KEY] = str(text_encoder_weights)
    torch.save({"model": state, CONFIG_KEY: model.config.to_dict(), **extra}, path)
