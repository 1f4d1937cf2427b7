"""``bench_model.py``'s device matrix: frames/s per backbone and precision, mask agreement, peak GPU memory, and a
long video end to end through ``segment_video`` with its decode and resize time apart.

Each backbone is built with seeded random weights (the speed does not depend on the weights) and runs
``pipeline.forward_window``, the step every window of a user's run takes, over a generated clip (a textured square
crossing a textured background) resized to the working size, for one and for several expressions. On CUDA the
times come from CUDA events after warm-up; on the CPU from ``time.perf_counter``. Precisions:

- ``fp32``: no autocast; on CUDA with TF32 off for matrix products and convolutions (the reference),
- ``tf32`` (CUDA): fp32 with TF32 matrix products and convolutions,
- ``fp16`` (CUDA) and ``bf16``: autocast (on CUDA with TF32 off for what stays in fp32).

Each one's binary masks (all queries, ``[t, Q, h/4, w/4]`` logits > 0) are compared with fp32's
(:func:`~referformer_core.precision.mask_agreement`) and judged by the precision rule
(:func:`~referformer_core.precision.meets_agreement_rule`).
"""
from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from referformer_core import pipeline, prefetch
from referformer_core.config import TINY_ROBERTA, get_config
from referformer_core.pipeline import encode_texts, forward_window, prepare_frames, segment_video
from referformer_core.precision import mask_agreement, meets_agreement_rule, resolve_precision
from referformer_core.referformer import ReferFormer
from referformer_core.settings import RunSettings
from referformer_core.video import resize_frame

BACKBONES = ("resnet50", "swin_l_p4w7", "video_swin_b_p4w7")
QUICK_BACKBONES = ("resnet50", "swin_t_p4w7", "video_swin_t_p4w7")
"""``--quick``: the smallest variant of each family, with the ``tiny`` transformer and text encoder."""
CUDA_PRECISIONS = ("fp32", "tf32", "fp16", "bf16")
CPU_PRECISIONS = ("fp32", "bf16")
AUTOCAST = {"fp16": torch.float16, "bf16": torch.bfloat16}
EXPRESSIONS = ("the bright square", "the dark background", "the lower left corner")


@dataclass(frozen=True)
class MatrixSizes:
    """What the matrix runs: working ``short_side``, ``window`` frames a forward, ``expressions`` for the
    multi-object row, ``repeats`` timed after ``warmup`` untimed; the end-to-end video's ``e2e_frames`` at
    ``e2e_size`` (h, w), windows of ``e2e_window``, serial and prefetched runs alternated ``e2e_repeats`` times
    (median)."""

    short_side: int = pipeline.SHORT_SIDE
    window: int = pipeline.WINDOW
    expressions: int = 3
    repeats: int = 3
    warmup: int = 2
    e2e_frames: int = 300
    e2e_size: tuple[int, int] = (720, 1280)
    e2e_window: int = pipeline.WINDOW
    e2e_repeats: int = 2


QUICK_SIZES = MatrixSizes(short_side=32, window=2, expressions=2, repeats=1, warmup=1, e2e_frames=4,
                          e2e_size=(72, 128), e2e_window=2, e2e_repeats=1)


class FixedTokenizer:
    """Stands in for a tokenizer: the same token ids for any text (no vocabulary exists offline)."""

    def __call__(self, texts, **kwargs):
        ids = torch.tensor([[0, 11, 12, 13, 14, 2]] * len(texts))
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def build_model(backbone: str, quick: bool, device: torch.device) -> ReferFormer:
    """ReferFormer with ``backbone`` (official sizes, or the ``tiny`` config's with ``quick``), seeded weights."""
    config = get_config(backbone)
    if quick:
        tiny = get_config("tiny")
        config = tiny.replace(backbone=backbone, text_encoder=dict(TINY_ROBERTA))
    torch.manual_seed(0)
    return ReferFormer(config).eval().to(device)


def generated_frames(num_frames: int, h: int, w: int) -> Iterator[np.ndarray]:
    """``[h, w, 3]`` uint8 frames: a textured square crossing a textured background."""
    rng = np.random.default_rng(0)
    background = rng.integers(0, 120, (h, w, 3), dtype=np.uint8)
    side = max(2, h // 3)
    square = rng.integers(150, 255, (side, side, 3), dtype=np.uint8)
    for t in range(num_frames):
        frame = background.copy()
        x = int((w - side) * t / max(1, num_frames - 1))
        frame[h // 3: h // 3 + side, x: x + side] = square
        yield frame


def working_clip(sizes: MatrixSizes) -> torch.Tensor:
    """``[window, 3, h, w]`` uint8 at the working size (16:9 source frames)."""
    h = sizes.short_side
    w = h * 16 // 9
    return torch.stack([resize_frame(f, sizes.short_side) for f in generated_frames(sizes.window, h, w)])


@contextlib.contextmanager
def fp32_mode(tf32: bool) -> Iterator[None]:
    """TF32 on or off for CUDA matrix products and convolutions, restored after."""
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    before = (matmul.fp32_precision, conv.fp32_precision)
    matmul.fp32_precision = conv.fp32_precision = "tf32" if tf32 else "ieee"
    try:
        yield
    finally:
        matmul.fp32_precision, conv.fp32_precision = before


def precision_mode(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """What runs under ``precision`` on ``device`` besides autocast: the TF32 switch on CUDA."""
    if device.type == "cuda":
        return fp32_mode(precision == "tf32")
    return contextlib.nullcontext()


def timer(device: torch.device) -> Callable[[Callable[[], object]], float]:
    """``measure(fn)`` -> seconds of one ``fn()``: CUDA events on CUDA, ``perf_counter`` elsewhere."""
    if device.type == "cuda":
        def measure(fn: Callable[[], object]) -> float:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            return start.elapsed_time(end) / 1000
        return measure

    def measure_cpu(fn: Callable[[], object]) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    return measure_cpu


def compiled(model: ReferFormer, mode: str | None) -> ReferFormer:
    """``model`` with ``encode_frames`` (the backbone, the fixed-shape part of a window) under ``torch.compile``
    (``mode``: ``"default"``, or ``"reduce-overhead"`` for CUDA graphs); ``None`` leaves it as it is."""
    if mode:
        model.encode_frames = torch.compile(model.encode_frames, mode=mode, dynamic=False)
    return model


@dataclass
class BackboneResult:
    """One backbone's figures: frames/s per precision for one and for several expressions, agreement with fp32."""

    fps: dict[str, float] = field(default_factory=dict)
    fps_multi: dict[str, float] = field(default_factory=dict)
    agreement: dict[str, float] = field(default_factory=dict)
    peak_gpu_gb: float | None = None


def run_backbone(model: ReferFormer, device: torch.device, precisions: tuple[str, ...], sizes: MatrixSizes,
                 compile_mode: str | None = None) -> BackboneResult:
    """Time ``model`` (on ``device``) at each precision on the generated window; agreement of each with fp32's
    masks; on CUDA the peak memory allocated while it ran."""
    model = compiled(model, compile_mode)
    clip = working_clip(sizes).to(device)
    tokenizer = FixedTokenizer()
    measure = timer(device)
    result = BackboneResult()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    reference = None
    for precision in precisions:
        autocast = AUTOCAST.get(precision)
        with precision_mode(precision, device):
            for n, fps in ((1, result.fps), (sizes.expressions, result.fps_multi)):
                text = encode_texts(model, tokenizer, list(EXPRESSIONS[:n]), device, autocast)

                def window(text=text) -> list:
                    return forward_window(model, clip, text, device, autocast)

                if n == 1:  # warm-up, whose masks are compared; the backbone is then warm for ``expressions``
                    for _ in range(max(1, sizes.warmup)):
                        outputs = window()
                    masks = outputs[0][0].mask_logits > 0
                    reference = masks if precision == "fp32" else reference
                    if reference is not None:
                        result.agreement[precision] = mask_agreement(reference, masks)
                seconds = statistics.median(measure(window) for _ in range(sizes.repeats))
                fps[precision] = sizes.window / seconds
    if device.type == "cuda":
        result.peak_gpu_gb = torch.cuda.max_memory_allocated(device) / 1024 ** 3
    return result


@dataclass
class EndToEnd:
    """A generated video through ``segment_video`` (decode included): seconds serial and with prefetch, and the
    decode + resize time alone."""

    frames: int
    size: tuple[int, int]
    precision: str
    decode_resize_s: float
    serial_s: float
    prefetch_s: float
    default_prefetch: bool
    """Whether the device prefetches by default (:func:`referformer_core.prefetch.wanted`)."""

    @property
    def default_s(self) -> float:
        """The time of the device's default setting."""
        return self.prefetch_s if self.default_prefetch else self.serial_s

    @property
    def decode_share(self) -> float:
        """Fraction of the serial run spent decoding and resizing: time the model would wait without prefetch."""
        return self.decode_resize_s / self.serial_s


def run_end_to_end(model: ReferFormer, device: torch.device, sizes: MatrixSizes) -> EndToEnd:
    """``model`` (ResNet-50) at its default precision for ``device`` over ``sizes.e2e_frames`` generated frames at
    ``sizes.e2e_size``, written as an mp4 and read back: a warm-up on a few frames, then decode + resize alone, then
    ``segment_video`` serial and with prefetch alternated (one expression, median of ``sizes.e2e_repeats``)."""
    from referformer_core.overlay import write_video

    precision = resolve_precision(None, device, model.config.backbone)
    options = RunSettings(device=str(device), short_side=sizes.short_side, window=sizes.e2e_window or 0,
                          max_memory=0, precision=precision)
    tokenizer = FixedTokenizer()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    with tempfile.TemporaryDirectory(prefix="bench_model_") as tmp:
        path = Path(tmp) / "long.mp4"
        write_video(path, generated_frames(sizes.e2e_frames, *sizes.e2e_size), fps=30)
        warm = np.stack(list(generated_frames(min(4, sizes.e2e_frames), *sizes.e2e_size)))
        segment_video(model, tokenizer, warm, [EXPRESSIONS[0]], options)
        sync()
        start = time.perf_counter()
        prepare_frames(path, sizes.short_side)
        decode = time.perf_counter() - start
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(sizes.e2e_repeats):
            for fed in (False, True):
                run = replace(options, prefetch=fed)
                start = time.perf_counter()
                masks = segment_video(model, tokenizer, path, [EXPRESSIONS[0]], run)
                sync()
                times[fed].append(time.perf_counter() - start)
                assert masks.shape == (1, sizes.e2e_frames, *sizes.e2e_size)
    return EndToEnd(sizes.e2e_frames, sizes.e2e_size, precision, decode, statistics.median(times[False]),
                    statistics.median(times[True]), prefetch.wanted(None, device))


def matrix_report(results: dict[str, BackboneResult], e2e: EndToEnd | None, sizes: MatrixSizes
                  ) -> dict[str, object]:
    """The json keys: ``fps_360p.<backbone>.<precision>`` (one expression), ``fps_360p_multi`` (``expressions``),
    ``mask_agreement.<backbone>.<precision>``, ``meets_rule`` likewise, ``peak_gpu_gb`` (largest over the
    backbones; ``None`` off CUDA), ``e2e_300f_720p_s`` and ``decode_share`` (``None`` when not run)."""
    peaks = [r.peak_gpu_gb for r in results.values() if r.peak_gpu_gb is not None]
    report: dict[str, object] = {
        "fps_360p": {b: r.fps for b, r in results.items()},
        "fps_360p_multi": {b: r.fps_multi for b, r in results.items()},
        "mask_agreement": {b: r.agreement for b, r in results.items()},
        "meets_rule": {b: {p: meets_agreement_rule(a) for p, a in r.agreement.items() if p != "fp32"}
                       for b, r in results.items()},
        "peak_gpu_gb": max(peaks) if peaks else None,
        "peak_gpu_gb_by_backbone": {b: r.peak_gpu_gb for b, r in results.items()},
        "working_short_side": sizes.short_side, "window": sizes.window, "multi_expressions": sizes.expressions,
        "e2e_300f_720p_s": e2e.default_s if e2e else None,
        "decode_share": e2e.decode_share if e2e else None,
    }
    if e2e:
        report.update(e2e_default_prefetch=e2e.default_prefetch, e2e_frames=e2e.frames, e2e_size=list(e2e.size),
                      e2e_precision=e2e.precision, e2e_serial_s=e2e.serial_s, e2e_prefetch_s=e2e.prefetch_s,
                      decode_resize_s=e2e.decode_resize_s)
    return report


def matrix_rows(results: dict[str, BackboneResult], e2e: EndToEnd | None, sizes: MatrixSizes
                ) -> list[tuple[str, str, str]]:
    """The table's rows for :func:`matrix_report`'s figures."""
    rows = []
    for backbone, r in results.items():
        for precision, fps in r.fps.items():
            agreement = r.agreement.get(precision)
            note = f"{sizes.expressions} expr. {r.fps_multi[precision]:.1f} frames/s"
            if agreement is not None and precision != "fp32":
                verdict = "meets" if meets_agreement_rule(agreement) else "below"
                note += f"; masks = fp32 on {agreement:.4f} ({verdict} the rule)"
            rows.append((f"{backbone} {precision}", f"{fps:.1f} fr/s", note))
        if r.peak_gpu_gb is not None:
            rows.append((f"{backbone} peak GPU", f"{r.peak_gpu_gb:.2f} GB", "max_memory_allocated"))
    if e2e:
        h, w = e2e.size
        rows += [(f"{e2e.frames} frames {h}p e2e", f"{e2e.default_s:.2f} s",
                  f"resnet50 {e2e.precision}, segment_video from the mp4; serial {e2e.serial_s:.2f} s, "
                  f"prefetch {e2e.prefetch_s:.2f} s (default {'prefetch' if e2e.default_prefetch else 'serial'})"),
                 ("decode + resize alone", f"{e2e.decode_resize_s:.2f} s",
                  f"decode_share {e2e.decode_share:.2f} of the serial run")]
    return rows
