"""Benchmark multi-scale deformable attention: compiled kernel vs the pure-PyTorch path.

Shapes are ReferFormer's: hidden 256 (8 heads x 32 channels), 4 levels (strides 8..64 of a
360x640 frame: 45x80, 23x40, 12x20, 6x10), 4 points, 5 frames as the batch. ``encoder``: every
position queries (Lq = S = 4820 per frame); ``decoder``: 5 queries per frame.

For every available device and implementation it times the forward pass (under no_grad) and
forward+backward (gradients for value, locations and weights), prints a table with the ratio
``pytorch time / this time`` (higher is faster), and with ``--json`` a last line holding the
figures, including ``cpu_forward_speedup_encoder``.

Usage: python benchmarks/bench_msda.py [--repeat 5] [--devices cpu,cuda] [--threads N] [--json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor

from referformer_core.msda import kernel_supports, ms_deform_attn

LEVEL_SHAPES = [(45, 80), (23, 40), (12, 20), (6, 10)]
HEADS, CHANNELS, POINTS, FRAMES = 8, 32, 4, 5
SCENARIOS = {"encoder": None, "decoder": 5}  # queries per frame (None: one per position)


def make_inputs(queries: int | None, device: str, dtype: torch.dtype, seed: int = 0) -> tuple[Tensor, ...]:
    """ReferFormer-shaped inputs: value [5, S, 8, 32], locations [5, Lq, 8, 4, 4, 2], weights softmaxed."""
    gen = torch.Generator().manual_seed(seed)
    shapes = torch.tensor(LEVEL_SHAPES, dtype=torch.long)
    sizes = shapes.prod(1)
    starts = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])
    s = int(sizes.sum())
    lq = s if queries is None else queries
    levels = len(LEVEL_SHAPES)
    value = torch.randn(FRAMES, s, HEADS, CHANNELS, generator=gen, dtype=dtype)
    # Reference points spread over the map plus small offsets, a few of them outside [0, 1].
    locations = (torch.rand(FRAMES, lq, HEADS, 1, 1, 2, generator=gen, dtype=dtype)
                 + 0.05 * torch.randn(FRAMES, lq, HEADS, levels, POINTS, 2, generator=gen, dtype=dtype))
    weights = torch.randn(FRAMES, lq, HEADS, levels * POINTS, generator=gen, dtype=dtype).softmax(-1)
    weights = weights.view(FRAMES, lq, HEADS, levels, POINTS)
    return tuple(t.to(device) for t in (value, shapes, starts, locations, weights))


def timed(fn: Callable[[], object], device: str, repeat: int) -> float:
    """Median wall time of ``fn`` in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def bench_one(inputs: tuple[Tensor, ...], impl: str, device: str, repeat: int) -> tuple[float, float]:
    """(forward ms, forward+backward ms) of one implementation on one set of inputs."""
    value, shapes, starts, locations, weights = inputs

    def forward() -> Tensor:
        with torch.no_grad():
            return ms_deform_attn(value, shapes, starts, locations, weights, impl=impl)

    leaves = [t.detach().clone().requires_grad_() for t in (value, locations, weights)]
    grad_out = torch.randn_like(forward())

    def forward_backward() -> None:
        out = ms_deform_attn(leaves[0], shapes, starts, leaves[1], leaves[2], impl=impl)
        torch.autograd.grad(out, leaves, grad_out)

    return timed(forward, device, repeat), timed(forward_backward, device, repeat)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print the table (and the json line with ``--json``); return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per measurement (median)")
    parser.add_argument("--devices", default="cpu,cuda", help="comma-separated; cuda is skipped without a GPU")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64", "float16", "bfloat16"])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's default)")
    parser.add_argument("--json", action="store_true", help="print a last line with the figures as json")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    devices = [d for d in args.devices.split(",") if d == "cpu" or (d == "cuda" and torch.cuda.is_available())]

    rows = []
    print(f"MSDA benchmark: {FRAMES} frames, levels {LEVEL_SHAPES}, {HEADS} heads x {CHANNELS} ch, "
          f"{POINTS} points, {args.dtype}, torch threads {torch.get_num_threads()}, median of {args.repeat}")
    header = f"{'device':<6} {'shape':<8} {'Lq':>6} {'impl':<8} {'fwd ms':>10} {'fwd x':>7} {'fwd+bwd ms':>11} {'f+b x':>7}"
    print(header)
    print("-" * len(header))
    for device in devices:
        impls = ["pytorch"] + (["kernel"] if kernel_supports(device, dtype) else [])
        for scenario, queries in SCENARIOS.items():
            inputs = make_inputs(queries, device, dtype)
            base = None
            for impl in impls:
                fwd, fwd_bwd = bench_one(inputs, impl, device, args.repeat)
                base = base or (fwd, fwd_bwd)
                row = {"device": device, "shape": scenario, "queries": inputs[3].shape[1], "impl": impl,
                       "forward_ms": fwd, "forward_backward_ms": fwd_bwd,
                       "forward_speedup": base[0] / fwd, "forward_backward_speedup": base[1] / fwd_bwd}
                rows.append(row)
                print(f"{device:<6} {scenario:<8} {row['queries']:>6} {impl:<8} {fwd:>10.2f} {row['forward_speedup']:>6.2f}x "
                      f"{fwd_bwd:>11.2f} {row['forward_backward_speedup']:>6.2f}x")
    figures: dict = {"dtype": args.dtype, "threads": torch.get_num_threads(), "rows": rows}
    for row in rows:
        if row["impl"] == "kernel":
            key = f"{row['device']}_{{}}_speedup_{row['shape']}"
            figures[key.format("forward")] = row["forward_speedup"]
            figures[key.format("forward_backward")] = row["forward_backward_speedup"]
    if args.json:
        print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
