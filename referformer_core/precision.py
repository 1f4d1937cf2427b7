"""Numeric precision of inference: which one to use by default, and how to name it to the predictor.

Precisions are ``"fp32"`` (no autocast), ``"bf16"`` (bfloat16 autocast, CPU or CUDA) and ``"fp16"`` (float16
autocast, CUDA only). Under bf16 autocast the matrix products and convolutions run in bfloat16 and the
deformable-attention kernel reads the bfloat16 values as they are, summing in float32.

The default is fp32, except where ``VERIFIED_AUTOCAST`` lists the backbone for the device: its binary masks under
that autocast agree with fp32's on at least ``BF16_MIN_MASK_AGREEMENT`` of the pixels, on its parity fixture and on
a generated video. On a CPU, bf16 counts only where the CPU computes bfloat16 natively (``avx512_bf16`` or
``amx_bf16``; elsewhere it is emulated and slower than fp32): today only the bundled model's backbone
(``benchmarks/bench_precision.py`` measures it). On CUDA the same rule picks fp16, else bf16, once measured
(``benchmarks/bench_model.py --device cuda`` prints each backbone's agreement and whether it meets the rule).

A run names its precision in its settings (``RunSettings(precision="bf16")``; ``None``: the default), which
:func:`~referformer_core.settings.resolve_settings` resolves with :func:`resolve_precision` for the device and the
checkpoint's backbone.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Literal, cast

import numpy as np
import torch
from torch import Tensor

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16", "fp16")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
"""``/proc/cpuinfo`` flags of x86 processors with bfloat16 arithmetic (Cooper Lake and Sapphire Rapids on)."""
BF16_MIN_MASK_AGREEMENT = 0.995
"""Least fraction of mask pixels on which bf16 must agree with fp32 for bf16 to be a default."""
BF16_VERIFIED_BACKBONES = frozenset({"efficientnet_lite0"})
"""Backbones whose bf16 masks were measured to agree with fp32's on the parity fixture and a generated video (CPU,
bf16 autocast, torch 2.14): the bundled EfficientNet-Lite0 model, 0.9999 on a generated video (it has no official
fixture). Left out: ResNet-50, 0.9958 on its fixture but 0.9906 on ``bench_model.py``'s T=5 360x640 input; Video
Swin-T, 0.9974 on its fixture, not measured on a video; Swin-T, 0.985 on its fixture; the rest, not measured."""
VERIFIED_AUTOCAST: dict[tuple[str, Precision], frozenset[str]] = {
    ("cpu", "bf16"): BF16_VERIFIED_BACKBONES,
    ("cuda", "fp16"): frozenset(),
    ("cuda", "bf16"): frozenset(),
}
"""``(device type, precision)`` -> the backbones that run it by default there (the rule above). CUDA: none yet, as no
agreement has been measured on a GPU; a backbone goes in after ``bench_model.py --device cuda`` and its parity
fixture show at least ``BF16_MIN_MASK_AGREEMENT`` for it."""
CUDA_PREFERENCE: tuple[Precision, ...] = ("fp16", "bf16")
"""On CUDA, the first verified of these is the default: fp16 keeps more mantissa bits, so its masks sit closer to
fp32's; both run on the same tensor cores."""
PROC_CPUINFO = Path("/proc/cpuinfo")


@functools.cache
def _read_proc_cpuinfo() -> str:
    """``/proc/cpuinfo``'s text, or ``""`` where it cannot be read."""
    try:
        return PROC_CPUINFO.read_text(errors="replace")
    except OSError:
        return ""


def cpu_flags(cpuinfo: str) -> set[str]:
    """The flags every processor listed in ``cpuinfo`` (``/proc/cpuinfo`` text) has; empty when none is listed."""
    per_cpu = [set(line.partition(":")[2].split()) for line in cpuinfo.splitlines()
               if line.partition(":")[0].strip() == "flags"]
    return set.intersection(*per_cpu) if per_cpu else set()


def native_bf16_cpu(cpuinfo: str | None = None) -> bool:
    """Whether the CPU computes bfloat16 natively: every processor has ``avx512_bf16`` or ``amx_bf16``.

    Args:
        cpuinfo: ``/proc/cpuinfo``-format text to judge; ``None`` reads this machine's on Linux (and answers
            ``False`` on other systems, or when it cannot be read).
    """
    if cpuinfo is None:
        if not sys.platform.startswith("linux"):
            return False
        cpuinfo = _read_proc_cpuinfo()
    return any(flag in cpu_flags(cpuinfo) for flag in NATIVE_BF16_FLAGS)


def _device_type(device: torch.device | str) -> str:
    """``"cpu"``, ``"cuda"``, ... of ``device``."""
    return torch.device(device).type


def default_precision(device: torch.device | str, backbone: str, native_bf16: bool | None = None) -> Precision:
    """The precision ``VERIFIED_AUTOCAST`` gives ``backbone`` on ``device``: on a CPU, ``"bf16"`` where listed and
    the CPU has native bfloat16; on CUDA, the first listed of ``CUDA_PREFERENCE``; else ``"fp32"``.

    Args:
        device: where the model runs.
        backbone: the model's backbone name (``model.config.backbone``).
        native_bf16: whether the CPU computes bfloat16 natively; ``None`` asks :func:`native_bf16_cpu`.
    """
    kind = _device_type(device)
    if kind == "cuda":
        return next((p for p in CUDA_PREFERENCE if backbone in VERIFIED_AUTOCAST[("cuda", p)]), "fp32")
    if kind != "cpu" or backbone not in VERIFIED_AUTOCAST[("cpu", "bf16")]:
        return "fp32"
    native = native_bf16_cpu() if native_bf16 is None else native_bf16
    return "bf16" if native else "fp32"


def meets_agreement_rule(agreement: float) -> bool:
    """Whether a measured mask agreement with fp32 (:func:`mask_agreement`) allows a precision as a default."""
    return agreement >= BF16_MIN_MASK_AGREEMENT


def check_precision(precision: str, device: torch.device | str) -> Precision:
    """``precision`` when it is one of ``PRECISIONS`` and runs on ``device``; ``ValueError`` (one line) otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and _device_type(device) != "cuda":
        raise ValueError(f"precision fp16 needs a CUDA device, not {torch.device(device)}; use bf16 or fp32")
    return cast(Precision, precision)


def resolve_precision(requested: str | None, device: torch.device | str, backbone: str) -> Precision:
    """The precision to run: ``requested`` (checked by :func:`check_precision`) or, when ``None``,
    :func:`default_precision` for ``device`` and ``backbone``."""
    return default_precision(device, backbone) if requested is None else check_precision(requested, device)


def mask_agreement(a: np.ndarray | Tensor, b: np.ndarray | Tensor) -> float:
    """Fraction of pixels on which two boolean masks (arrays or CPU tensors) of one shape, e.g. ``[T, H, W]``,
    are equal.

    ``1.0`` for empty masks. ``ValueError`` when the shapes differ.
    """
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"mask_agreement: the masks have shapes {a.shape} and {b.shape}")
    return float((a == b).mean()) if a.size else 1.0
