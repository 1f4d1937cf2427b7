"""Multi-scale deformable attention: the one dispatch point.

``ms_deform_attn`` is what the model calls. It runs the compiled kernel
(``referformer_core._C``, built from ``csrc/`` by ``setup.py``: C++/OpenMP on CPU for
float32/float64/bfloat16, CUDA for float32/float64/float16/bfloat16; reduced precision inputs
are accumulated in float32) when one is available for the tensors' device and dtype, and
otherwise ``ms_deform_attn_pytorch``, the ``grid_sample`` path that is the reference definition
of the operation.

The implementation can be forced per call (``impl="pytorch" | "kernel" | "auto"``) or for the
whole process with the environment variable ``REFERFORMER_MSDA`` (same values; read at each
call, the keyword wins).
"""
from __future__ import annotations

import functools
import logging
import os
from types import ModuleType
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

MSDA_IMPL_ENV = "REFERFORMER_MSDA"
Impl = Literal["auto", "kernel", "pytorch"]
_IMPLS = ("auto", "kernel", "pytorch")
_CUDA_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
# CPU dtypes of a build that predates ``_C.cpu_dtypes()`` (no bfloat16).
_CPU_DTYPES_OF_OLD_BUILDS = ("float32", "float64")

_log = logging.getLogger(__name__)
_notices_given: set[str] = set()


def ms_deform_attn_pytorch(
    value: Tensor,
    spatial_shapes: Tensor,
    level_start_index: Tensor,
    sampling_locations: Tensor,
    attention_weights: Tensor,
) -> Tensor:
    """Reference multi-scale deformable attention built on ``F.grid_sample``.

    Args:
        value: ``[N, S, H, C]`` values of all levels, flattened level after level.
        spatial_shapes: ``[L, 2]`` (h, w) of each level, integer.
        level_start_index: ``[L]`` offset of each level in ``S`` (unused here, kept for the
            common signature with the compiled kernels).
        sampling_locations: ``[N, Lq, H, L, P, 2]`` (x, y) in [0, 1] per level.
        attention_weights: ``[N, Lq, H, L, P]``.

    Returns:
        ``[N, Lq, H * C]``: the attention-weighted sum of bilinear samples (zero outside the
        map, ``align_corners=False``).
    """
    n, _, heads, channels = value.shape
    _, lq, _, levels, points, _ = sampling_locations.shape
    sizes = [int(h) * int(w) for h, w in spatial_shapes.tolist()]
    value_list = value.split(sizes, dim=1)
    sampling_grids = 2 * sampling_locations - 1
    sampled = []
    for lvl, (h, w) in enumerate(spatial_shapes.tolist()):
        value_l = value_list[lvl].flatten(2).transpose(1, 2).reshape(n * heads, channels, int(h), int(w))
        grid_l = sampling_grids[:, :, :, lvl].transpose(1, 2).flatten(0, 1)
        sampled.append(F.grid_sample(value_l, grid_l, mode="bilinear", padding_mode="zeros", align_corners=False))
    weights = attention_weights.transpose(1, 2).reshape(n * heads, 1, lq, levels * points)
    output = (torch.stack(sampled, dim=-2).flatten(-2) * weights).sum(-1).view(n, heads * channels, lq)
    return output.transpose(1, 2).contiguous()


@functools.cache
def _extension() -> tuple[ModuleType | None, str]:
    """The compiled module and ``""``, or ``None`` and why it could not be imported."""
    try:
        from referformer_core import _C
    except ImportError as exc:
        return None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return _C, ""


def kernel_supports(device: torch.device | str, dtype: torch.dtype) -> bool:
    """Whether the compiled kernel is importable and handles tensors of this device and dtype."""
    ext, _ = _extension()
    device = torch.device(device)
    if ext is None:
        return False
    if device.type == "cpu":
        names = ext.cpu_dtypes() if hasattr(ext, "cpu_dtypes") else _CPU_DTYPES_OF_OLD_BUILDS
        return dtype in {getattr(torch, name) for name in names}
    return device.type == "cuda" and dtype in _CUDA_DTYPES and bool(ext.has_cuda())


def _autocast_kernel_dtypes(value: Tensor) -> tuple[torch.dtype, torch.dtype]:
    """``(value dtype, locations/weights dtype)`` for the kernel under autocast: float32 sums, as on the
    reference path; a bfloat16 ``value`` (the autocast value projection's) is read as is where the kernel takes
    it next to float32 locations and weights (CPU), sparing its float32 copy."""
    if value.device.type == "cpu" and value.dtype == torch.bfloat16 and kernel_supports("cpu", torch.bfloat16):
        return torch.bfloat16, torch.float32
    return torch.float32, torch.float32


def _why_no_kernel(device: torch.device, dtype: torch.dtype) -> str:
    """One line saying why ``kernel_supports(device, dtype)`` is false."""
    ext, error = _extension()
    if ext is None:
        return f"the MSDA kernels are not built ({error}); build them with `pip install --no-build-isolation -e .`"
    if device.type == "cuda" and not ext.has_cuda():
        return "referformer_core._C was built without CUDA (no nvcc at build time)"
    return f"the MSDA kernel has no {device.type} implementation for {dtype}"


def _notice_once(reason: str) -> None:
    """Log ``reason`` (one line) the first time it causes a fallback to the PyTorch path."""
    if reason not in _notices_given:
        _notices_given.add(reason)
        _log.warning("referformer_core.msda: %s; using the pure-PyTorch path", reason)


def _check_inputs(
    value: Tensor,
    spatial_shapes: Tensor,
    level_start_index: Tensor,
    sampling_locations: Tensor,
    attention_weights: Tensor,
    mixed_dtypes: bool = False,
) -> None:
    """Raise ``TypeError``/``ValueError`` (one line) unless the inputs fit ``ms_deform_attn``.

    Checks ranks, matching N/H/L/P, floating value/locations/weights of one dtype (any
    floating dtypes when ``mixed_dtypes``, as under autocast), integer level tables, one
    device, ``spatial_shapes`` positive and covering exactly S positions, and
    ``level_start_index`` equal to the running sum of the level sizes.
    """
    named = {
        "value": value,
        "spatial_shapes": spatial_shapes,
        "level_start_index": level_start_index,
        "sampling_locations": sampling_locations,
        "attention_weights": attention_weights,
    }
    for name, t in named.items():
        if not isinstance(t, Tensor):
            raise TypeError(f"ms_deform_attn: {name} must be a torch.Tensor, got {type(t).__name__}")
    for name in ("value", "sampling_locations", "attention_weights"):
        if not named[name].dtype.is_floating_point:
            raise TypeError(f"ms_deform_attn: {name} must be floating point, got {named[name].dtype}")
    for name in ("sampling_locations", "attention_weights"):
        if named[name].dtype != value.dtype and not mixed_dtypes:
            raise TypeError(f"ms_deform_attn: {name} is {named[name].dtype} but value is {value.dtype}")
    for name in ("spatial_shapes", "level_start_index"):
        if named[name].dtype.is_floating_point or named[name].dtype.is_complex or named[name].dtype == torch.bool:
            raise TypeError(f"ms_deform_attn: {name} must be an integer tensor, got {named[name].dtype}")
    for name in ("sampling_locations", "attention_weights"):
        if named[name].device != value.device:
            raise ValueError(f"ms_deform_attn: {name} is on {named[name].device} but value is on {value.device}")
    if value.dim() != 4:
        raise ValueError(f"ms_deform_attn: value must be [N, S, H, C], got shape {tuple(value.shape)}")
    if sampling_locations.dim() != 6 or sampling_locations.shape[-1] != 2:
        raise ValueError(
            f"ms_deform_attn: sampling_locations must be [N, Lq, H, L, P, 2], got shape {tuple(sampling_locations.shape)}"
        )
    if spatial_shapes.dim() != 2 or spatial_shapes.shape[1] != 2:
        raise ValueError(f"ms_deform_attn: spatial_shapes must be [L, 2], got shape {tuple(spatial_shapes.shape)}")
    n, s, heads, _ = value.shape
    n_l, _, h_l, levels, _, _ = sampling_locations.shape
    if (n_l, h_l, levels) != (n, heads, spatial_shapes.shape[0]):
        raise ValueError(
            f"ms_deform_attn: sampling_locations {tuple(sampling_locations.shape)} does not match "
            f"value {tuple(value.shape)} (N, H) and spatial_shapes (L={spatial_shapes.shape[0]})"
        )
    if attention_weights.shape != sampling_locations.shape[:-1]:
        raise ValueError(
            f"ms_deform_attn: attention_weights must be {tuple(sampling_locations.shape[:-1])}, "
            f"got {tuple(attention_weights.shape)}"
        )
    if level_start_index.shape != (levels,):
        raise ValueError(f"ms_deform_attn: level_start_index must be [{levels}], got shape {tuple(level_start_index.shape)}")
    shapes = spatial_shapes.tolist()
    if any(h <= 0 or w <= 0 for h, w in shapes):
        raise ValueError(f"ms_deform_attn: spatial_shapes must be positive, got {shapes}")
    sizes = [h * w for h, w in shapes]
    if sum(sizes) != s:
        raise ValueError(f"ms_deform_attn: spatial_shapes {shapes} cover {sum(sizes)} positions but value has S={s}")
    expected_starts = [sum(sizes[:i]) for i in range(levels)]
    if level_start_index.tolist() != expected_starts:
        raise ValueError(
            f"ms_deform_attn: level_start_index is {level_start_index.tolist()}, expected {expected_starts}"
        )


class _MSDAKernel(torch.autograd.Function):
    """Autograd wrapper of the compiled forward/backward (first derivatives only)."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        value: Tensor,
        spatial_shapes: Tensor,
        level_start_index: Tensor,
        sampling_locations: Tensor,
        attention_weights: Tensor,
    ) -> Tensor:
        """``[N, Lq, H * C]`` from contiguous inputs with int64 level tables on value's device."""
        ext, _ = _extension()
        ctx.save_for_backward(value, spatial_shapes, level_start_index, sampling_locations, attention_weights)
        return ext.forward(value, spatial_shapes, level_start_index, sampling_locations, attention_weights)

    @staticmethod
    @once_differentiable
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad_output: Tensor
    ) -> tuple[Tensor, None, None, Tensor, Tensor]:
        """Gradients for value ``[N, S, H, C]``, locations and weights; none for the tables."""
        ext, _ = _extension()
        value, spatial_shapes, level_start_index, sampling_locations, attention_weights = ctx.saved_tensors
        grad_value, grad_locations, grad_weights = ext.backward(
            value, spatial_shapes, level_start_index, sampling_locations, attention_weights, grad_output.contiguous()
        )
        return grad_value, None, None, grad_locations, grad_weights


def ms_deform_attn(
    value: Tensor,
    spatial_shapes: Tensor,
    level_start_index: Tensor,
    sampling_locations: Tensor,
    attention_weights: Tensor,
    *,
    impl: Impl | None = None,
) -> Tensor:
    """Multi-scale deformable attention, ``[N, Lq, H * C]``; see ``ms_deform_attn_pytorch``.

    Args:
        value, spatial_shapes, level_start_index, sampling_locations, attention_weights: as in
            ``ms_deform_attn_pytorch``; ``level_start_index`` must be the running sum of the
            level sizes.
        impl: ``"auto"`` (the kernel when it supports the device and dtype, else the PyTorch
            path, with a one-line notice once), ``"kernel"`` (error if unsupported) or
            ``"pytorch"``. ``None`` reads ``$REFERFORMER_MSDA``, default ``"auto"``.

    Under autocast for value's device, the inputs may have different floating dtypes and the
    result is float32, as on the reference path (``grid_sample`` autocasts to float32): the
    kernel then sums in float32, reading a bfloat16 ``value`` as is on CPU. Outside autocast a
    bfloat16 input (CPU or CUDA) or float16 input (CUDA) gives a result of that dtype, summed in
    float32 by the kernel.

    Raises:
        TypeError, ValueError: inputs of the wrong type, dtype, device or shape.
        RuntimeError: ``impl="kernel"`` when the kernel cannot run these tensors.
    """
    choice = impl if impl is not None else os.environ.get(MSDA_IMPL_ENV, "auto").strip().lower() or "auto"
    if choice not in _IMPLS:
        source = "impl" if impl is not None else f"${MSDA_IMPL_ENV}"
        raise ValueError(f"ms_deform_attn: {source} must be one of {', '.join(_IMPLS)}, got {choice!r}")
    autocast = isinstance(value, Tensor) and torch.is_autocast_enabled(value.device.type)
    _check_inputs(value, spatial_shapes, level_start_index, sampling_locations, attention_weights, autocast)
    if choice != "pytorch":
        dtype, weight_dtype = _autocast_kernel_dtypes(value) if autocast else (value.dtype, value.dtype)
        if kernel_supports(value.device, dtype):
            tables = {"device": value.device, "dtype": torch.long}
            return _MSDAKernel.apply(
                value.to(dtype).contiguous(),
                spatial_shapes.to(**tables).contiguous(),
                level_start_index.to(**tables).contiguous(),
                sampling_locations.to(weight_dtype).contiguous(),
                attention_weights.to(weight_dtype).contiguous(),
            )
        reason = _why_no_kernel(value.device, dtype)
        if choice == "kernel":
            raise RuntimeError(f"ms_deform_attn: impl='kernel' requested but {reason}")
        _notice_once(reason)
    return ms_deform_attn_pytorch(value, spatial_shapes, level_start_index, sampling_locations, attention_weights)
