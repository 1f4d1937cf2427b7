"""The backbone registry (as timm's ``register_model``): each family file declares its variants once, and
the list of names, building by name, the named model configs and checkpoint inference all derive from it.

A family gives, for each variant name, a config; how to build a variant; and a *signature*: what the weights
tell about a variant (e.g. ResNet: the number of blocks in ``layer3``), computed from a config and from a
checkpoint's state dict alike, so a checkpoint is recognised by comparing the two. Adding a variant is one
entry in its family's table.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from ..errors import ConfigError

Signature = tuple[tuple[str, Any], ...]
"""``(("what", value), ...)``: readable in messages (``embed dim=96, blocks in stage 3=6``)."""


@dataclass(frozen=True)
class BackboneFamily:
    """One backbone family.

    ``variants``: name -> config (the names are the official ``--backbone`` names); ``build(name)`` makes the
    module; ``config_signature(config)`` and ``weights_signature(state)`` (None when the weights are not of
    this family) must agree for the variant that produced the weights; ``official``: whether ReferFormer
    released models with this family (each variant then gets a named model config of the same name).
    """

    name: str
    variants: Mapping[str, Any]
    build: Callable[[str], nn.Module]
    config_signature: Callable[[Any], Signature]
    weights_signature: Callable[[Mapping[str, Tensor]], Signature | None]
    official: bool = True


FAMILIES: list[BackboneFamily] = []


def register_family(family: BackboneFamily) -> BackboneFamily:
    """Add ``family`` to the registry; its variant names must be new."""
    taken = set(backbone_names()) & set(family.variants)
    if taken:
        raise ValueError(f"backbone names {sorted(taken)} are already registered")
    FAMILIES.append(family)
    return family


def backbone_names(official_only: bool = False) -> list[str]:
    """Every registered variant name (in registration order); ``official_only``: the official families'."""
    return [name for f in FAMILIES if f.official or not official_only for name in f.variants]


def family_of(name: str) -> BackboneFamily:
    """The family declaring variant ``name``; ``ConfigError`` for unknown names."""
    for family in FAMILIES:
        if name in family.variants:
            return family
    raise ConfigError(f"unknown backbone {name!r}; known: {', '.join(backbone_names())}")


def build_backbone(name: str) -> nn.Module:
    """The backbone module for an official ``--backbone`` name (``resnet50``, ``swin_t_p4w7``, ...)."""
    return family_of(name).build(name)


def backbone_from_weights(state: Mapping[str, Tensor]) -> str:
    """The variant name whose weights these are (``backbone.0.body.*`` keys and shapes).

    Raises ``LookupError`` with a readable description when no family or no variant matches.
    """
    for family in FAMILIES:
        signature = family.weights_signature(state)
        if signature is None:
            continue
        for name, config in family.variants.items():
            if family.config_signature(config) == signature:
                return name
        raise LookupError(f"{family.name} with " + ", ".join(f"{what}={value}" for what, value in signature))
    raise LookupError("no backbone.0.body weights of a known family")


def count_indices(state: Mapping[str, Tensor], prefix: str) -> int:
    """How many distinct ``<prefix><i>.`` indices the keys of ``state`` use (e.g. blocks of a stage)."""
    return len({key[len(prefix):].split(".", 1)[0] for key in state if key.startswith(prefix)})
