"""Peak memory (RSS) of segmenting a video on the CPU, and the longest window a memory budget allows.

The peak RSS of a run is the sum of three parts; only the last grows with the window:

    fixed    RUNTIME_BYTES (Python, torch, transformers, timm, PyAV, OpenCV loaded) + the model's weights
    video    per frame of the whole video: its resized uint8 frame (the frame buffer's pages, once read) and, per
             object, the outputs kept for every frame (mask logits ``[Q, h/4, w/4]``, class logits, boxes; float32)
    window   per frame of one forward pass: its activations, freed before the next window starts

One frame's activations at a working size ``h x w`` are estimated as

    4 bytes x h x w x max(BACKBONE_FLOATS, sum_l C_l / s_l^2 + DECODER_MAPS x hidden / 16)

The first term is the backbone pass (convolution workspaces at strides 2 and 4, whatever the widths); the second
is the decoder's peak: the four backbone outputs ``C_l`` at strides ``s_l`` = 4, 8, 16, 32 that the whole decode
holds, plus ``DECODER_MAPS`` maps ``hidden`` wide at stride 4 (the cross-modal FPN's finest level with its position
encodings, attention inputs and residuals; the projections and encoder memory at strides 8-64 are folded in).

The two constants are calibrated with :func:`calibrate` (the growth of the peak RSS, ``VmHWM``, between two window
lengths, one child process per measurement) on the backbones' decoder and backbone peaks, and rounded up so that the
estimate errs on the large side: ``DECODER_MAPS = 15``, ``BACKBONE_FLOATS = 110``. The measurements behind them are
in ``benchmarks/bench_window.py``. Other backbones (Swin, Video Swin) use the same formula uncalibrated; more
threads add per-thread workspaces to the fixed part. "GB" in this project's budgets means GiB (2^30 bytes).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import multiprocessing
import queue
import time
from collections.abc import Callable
from typing import Any

import torch

from .config import ReferFormerConfig
from .settings import DEFAULT_MAX_MEMORY  # noqa: F401  (the default budget, GiB; defined with the run settings)

GIB = 1 << 30
RUNTIME_BYTES = 860 << 20
"""RSS before any weights: 744 MiB measured after importing the predictor, transformers, timm, PyAV and OpenCV on
this project's CPU machine, plus the window-independent part of a forward pass (66-105 MiB for ResNet-50)."""
BACKBONE_FLOATS = 110.0
"""float32 values per input pixel of one frame at the backbone pass's peak (calibrated, see the module doc)."""
DECODER_MAPS = 15.0
"""Maps ``hidden`` wide at stride 4 alive at the decoder's peak, per frame (calibrated, see the module doc)."""
FLOAT_BYTES = 4
MASK_STRIDE = 4
FEATURE_STRIDES = (4, 8, 16, 32)


@functools.lru_cache(maxsize=None)
def backbone_channels(backbone: str) -> tuple[int, ...]:
    """Channels of the backbone's four outputs (strides 4, 8, 16, 32), read from a weightless (meta) build."""
    from .backbones import build_backbone

    with torch.device("meta"):
        return tuple(build_backbone(backbone).num_channels)


def activation_floats_per_pixel(config: ReferFormerConfig) -> float:
    """float32 values one frame's forward pass holds at its peak, per input pixel (see the module doc)."""
    held = sum(c / s ** 2 for c, s in zip(backbone_channels(config.backbone), FEATURE_STRIDES))
    decoder = held + DECODER_MAPS * config.hidden_dim / MASK_STRIDE ** 2
    return max(BACKBONE_FLOATS, decoder)


def window_frame_bytes(config: ReferFormerConfig, size: tuple[int, int]) -> int:
    """Bytes one more frame in a window adds to the peak: activations of a ``size = (h, w)`` working-size frame."""
    return int(FLOAT_BYTES * size[0] * size[1] * activation_floats_per_pixel(config))


def video_frame_bytes(config: ReferFormerConfig, size: tuple[int, int], num_objects: int = 1) -> int:
    """Bytes every frame of the video keeps until the end of a run: its resized ``[3, h, w]`` uint8 frame and,
    per object, mask logits ``[Q, h/4, w/4]``, class logits ``[Q]`` and boxes ``[Q, 4]`` (float32)."""
    mask_pixels = -(-size[0] // MASK_STRIDE) * -(-size[1] // MASK_STRIDE)
    outputs = FLOAT_BYTES * config.num_queries * (mask_pixels + 5)
    return 3 * size[0] * size[1] + num_objects * outputs


def weight_bytes(model: torch.nn.Module) -> int:
    """Bytes of the model's parameters and buffers."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def window_for_budget(budget_bytes: int, per_frame_bytes: int, fixed_bytes: int, max_window: int) -> int:
    """The longest window (frames per forward pass) whose peak ``fixed + window x per_frame`` fits the budget,
    at most ``max_window`` and at least 1 (a budget smaller than one frame still runs, one frame at a time)."""
    if per_frame_bytes <= 0:
        raise ValueError(f"per_frame_bytes must be positive, got {per_frame_bytes}")
    fitting = (budget_bytes - fixed_bytes) // per_frame_bytes
    return int(max(1, min(max_window, fitting)))


def budget_window(model: torch.nn.Module, size: tuple[int, int], num_frames: int, num_objects: int,
                  max_memory: float, max_window: int) -> int:
    """The window for ``num_frames`` frames of working size ``size = (h, w)`` and ``num_objects`` expressions so
    that the peak RSS stays within ``max_memory`` GB (GiB), at most ``max_window``; ``model`` is a ``ReferFormer``."""
    config = model.config
    fixed = RUNTIME_BYTES + weight_bytes(model) + num_frames * video_frame_bytes(config, size, num_objects)
    return window_for_budget(int(max_memory * GIB), window_frame_bytes(config, size), fixed, max_window)


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
"""glibc ``mallopt`` parameters (``malloc.h``)."""
KEEP_BYTES = (1 << 31) - 1
"""Both thresholds set by :func:`reuse_freed_memory`: every allocation comes from the heap, none is given back
unasked."""


@functools.lru_cache(maxsize=1)
def reuse_freed_memory() -> bool:
    """Make glibc keep freed memory for the next allocation instead of giving it back to the system (the mmap and
    trim thresholds raised to 2 GiB); True where it took effect (glibc), False elsewhere. Once per process.

    A forward pass allocates and frees hundreds of tensors of tens of MB; by default each comes from a fresh
    ``mmap`` whose pages fault in on first touch: 0.5-1.1 million page faults per T=5 ResNet-50 forward at 360x640,
    about 1.5 s of its 9.5 s on 2 CPU threads (``benchmarks/bench_model.py``). The memory freed is given back
    between windows by :func:`release_memory`, so the peak RSS stays where the budget put it.
    """
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, KEEP_BYTES)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEEP_BYTES))


def release_memory() -> None:
    """Give freed heap memory back to the system (glibc ``malloc_trim``; nothing elsewhere).

    Between windows this keeps the next window's peak at the first one's: without it, glibc keeps the freed
    activations in fragmented heap pages and the second window of the small model peaked 190 MB higher (8 frames).
    """
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far (``VmHWM`` of ``/proc/self/status``; Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("/proc/self/status has no VmHWM line")


def _child(results: Any, fn: Callable[..., Any], args: tuple) -> None:
    try:
        results.put((True, fn(*args), peak_rss_bytes()))
    except BaseException as e:  # reported to the parent, which raises it
        results.put((False, f"{type(e).__name__}: {e}", 0))


def measure_peak_rss(fn: Callable[..., Any], *args: Any, timeout: float = 600.0) -> tuple[int, Any]:
    """Run ``fn(*args)`` in a fresh (spawned) Python process; its peak RSS in bytes and what it returned.

    ``fn`` must be importable by name (a module-level function) and its result picklable.
    """
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=_child, args=(results, fn, args))
    process.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                ok, value, peak = results.get(timeout=1.0)
                break
            except queue.Empty:
                if not process.is_alive() and results.empty():
                    raise RuntimeError(f"the measured process died (exit code {process.exitcode})") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the measured process ran past {timeout:.0f} s") from None
    finally:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
    if not ok:
        raise RuntimeError(f"the measured process failed: {value}")
    return peak, value


def forward_peak(config: dict[str, Any], frames: int, size: tuple[int, int], threads: int = 2) -> int:
    """Build a ReferFormer from ``config`` (a ``ReferFormerConfig`` as a dict, random weights), run one window of
    ``frames`` random ``size`` frames and one expression; the peak RSS it added over the built model, in bytes."""
    from .referformer import ReferFormer

    torch.set_num_threads(threads)
    reuse_freed_memory()  # as the pipeline runs on the CPU
    torch.manual_seed(0)
    model = ReferFormer(ReferFormerConfig(**config)).eval()
    ids = torch.tensor([[0, 11, 12, 13, 14, 2]])
    x = torch.randn(1, frames, 3, *size)
    before = peak_rss_bytes()
    with torch.inference_mode():
        model.decode_each(model.encode_frames(x), model.encode_text(ids, torch.ones_like(ids)), torch.tensor([size]))
    return peak_rss_bytes() - before


def calibrate(config: ReferFormerConfig, size: tuple[int, int], windows: tuple[int, int] = (4, 8),
              threads: int = 2) -> tuple[int, int]:
    """Measure ``(per_frame_bytes, intercept_bytes)`` of one forward pass at working size ``size``: the peak RSS
    growth at two window lengths (one child process each), its slope per frame and its value at zero frames."""
    small, large = windows
    grown = [measure_peak_rss(forward_peak, config.to_dict(), t, tuple(size), threads)[1] for t in (small, large)]
    per_frame = (grown[1] - grown[0]) // (large - small)
    return per_frame, grown[0] - small * per_frame
