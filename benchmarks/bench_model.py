"""Model speed and memory on CPU: ResNet-50 ReferFormer at 360x640, against the same-run GEMM peak.

    python benchmarks/bench_model.py [--json] [--long-frames 300] [--repeats 3]

Prints a table; with ``--json`` one last line of json holding ``t5_360x640_s``, ``t1_360x640_s``,
``gemm_peak_gflops``, ``t5_fraction_of_peak``, ``peak_rss_gb_300f``, ``peak_rss_gb_36f``, ``t5_3obj_over_1obj``.
The model does 920 GFLOPs at T=5 (183 at T=1), as the official code; the fractions of the same-run GEMM peak say
how well this machine is used. No ratio against the official code is printed: one is valid only when both ran on
the same machine in the same run.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODEL_GFLOP = {1: 183.0, 5: 920.0}
H, W = 360, 640


def gemm_peak_gflops(threads: int) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(4096, 4096), torch.randn(4096, 4096)
    a @ b
    times = []
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * 4096 ** 3 / min(times) / 1e9


def build_model():
    from referformer_core.config import get_config
    from referformer_core.referformer import ReferFormer

    torch.manual_seed(0)
    return ReferFormer(get_config("resnet50")).eval()


def time_forward(model, t: int, num_expressions: int, repeats: int) -> float:
    frames = torch.randn(1, t, 3, H, W)
    ids = torch.randint(3, 1000, (num_expressions, 12))
    ids[:, 0], ids[:, -1] = 0, 2
    sizes = torch.tensor([[H, W]])

    def once() -> float:
        start = time.perf_counter()
        with torch.inference_mode():
            model.decode_each(model.encode_frames(frames), model.encode_text(ids, torch.ones_like(ids)), sizes)
        return time.perf_counter() - start

    once()
    return statistics.median(once() for _ in range(repeats))


def peak_rss_child(num_frames: int) -> None:
    """Segment a generated ``num_frames`` video at 360x640 with the predictor; print peak RSS in GB."""
    import numpy as np

    from referformer_core.predictor import VideoPredictor

    torch.set_num_threads(2)

    class Tokenizer:
        def __call__(self, texts, **kwargs):
            ids = torch.tensor([[0, 11, 12, 13, 2]] * len(texts))
            return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def frames():
        rng = np.random.default_rng(0)
        base = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
        for i in range(num_frames):
            yield np.roll(base, i, axis=1)

    predictor = VideoPredictor(build_model(), Tokenizer(), short_side=H, window=36)
    state = predictor.init_state(frames())
    predictor.add_expression(state, 1, "the object")
    for _ in predictor.propagate_in_video(state):
        pass
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2)


def peak_rss_gb(num_frames: int) -> float:
    out = subprocess.run([sys.executable, __file__, "--rss-child", str(num_frames)], check=True,
                         capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--long-frames", type=int, default=300)
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        peak_rss_child(args.rss_child)
        return

    from referformer_core.msda import ms_deform_attn  # noqa: F401  (the kernel notice, if any, comes first)

    peak = gemm_peak_gflops(args.threads)
    model = build_model()
    t1 = time_forward(model, 1, 1, args.repeats)
    t5 = time_forward(model, 5, 1, args.repeats)
    t5_3 = time_forward(model, 5, 3, args.repeats)
    rss36 = peak_rss_gb(36)
    rss_long = peak_rss_gb(args.long_frames)
    frac1 = MODEL_GFLOP[1] / t1 / peak
    frac5 = MODEL_GFLOP[5] / t5 / peak
    rows = [
        ("GEMM peak, 4096^3 fp32", f"{peak:.1f} GFLOP/s", ""),
        ("T=1 forward, 360x640", f"{t1:.2f} s", f"fraction of the GEMM peak {frac1:.2f}"),
        ("T=5 forward, 360x640", f"{t5:.2f} s", f"fraction of the GEMM peak {frac5:.2f}"),
        ("T=5, 3 expressions", f"{t5_3:.2f} s", f"{t5_3 / t5:.2f}x one expression"),
        ("peak RSS, 36 frames", f"{rss36:.2f} GB", "predictor, window 36"),
        (f"peak RSS, {args.long_frames} frames", f"{rss_long:.2f} GB", "predictor, window 36"),
    ]
    print(f"ReferFormer ResNet-50, CPU, {args.threads} threads, median of {args.repeats}")
    print(f"{'measure':<28}{'value':>16}  note")
    for name, value, note in rows:
        print(f"{name:<28}{value:>16}  {note}")
    if args.json:
        print(json.dumps({
            "t1_360x640_s": t1, "t5_360x640_s": t5, "gemm_peak_gflops": peak, "t5_fraction_of_peak": frac5,
            "t1_fraction_of_peak": frac1, "t5_3obj_over_1obj": t5_3 / t5, "peak_rss_gb_36f": rss36,
            f"peak_rss_gb_{args.long_frames}f": rss_long,
        }))


if __name__ == "__main__":
    main()
