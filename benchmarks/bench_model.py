"""Model speed and memory: per backbone and precision on CUDA or the CPU; ResNet-50 on the CPU against its GEMM peak.

    python benchmarks/bench_model.py [--device cuda|cpu] [--quick] [--backbones B,...] [--precisions P,...]
                                     [--compile MODE] [--json] [--long-frames 300] [--repeats 3] [--skip-memory]
                                     [--official DIR [--comparison-only]]

The device matrix (``benchmarks/model_matrix.py``) runs with ``--device cuda``, with ``--quick`` (tiny sizes, seconds
on a CPU) or with ``--backbones``: frames/s of ResNet-50, Swin-L and Video-Swin-B at the 360-pixel working size,
windows of 36 frames, for 1 and 3 expressions; fp32 (on CUDA with TF32 off, and ``tf32`` with it on), fp16 (CUDA)
and bf16 autocast, each with its binary-mask agreement against fp32 and whether that meets the precision rule
(``referformer_core.precision``); CUDA events after warm-up; peak GPU memory; and a 300-frame 720p mp4 end to end
through ``segment_video`` (decode included), serial and with prefetch, with the decode + resize time apart. The json
then holds ``fps_360p.<backbone>.<precision>`` (nested objects), ``fps_360p_multi``, ``mask_agreement``,
``meets_rule``, ``peak_gpu_gb``, ``e2e_300f_720p_s`` and ``decode_share`` (decode + resize over the serial run).
``--compile default|reduce-overhead`` (CUDA graphs) puts the backbone under ``torch.compile`` for the matrix; off
by default and not yet measured on a GPU.

On the CPU without ``--quick`` it measures what follows (the matrix at full size takes hours there: ResNet-50 runs
at about 0.3 frames/s at 360p on 2 cores), then, with ``--backbones``, the matrix.

Prints a table; with ``--json`` one last line of json holding ``t5_360x640_s``, ``t1_360x640_s``,
``gemm_peak_gflops``, ``t5_fraction_of_peak``, ``peak_rss_gb_300f`` (window from the default memory budget),
``peak_rss_gb_36f`` (one 36-frame window), ``t5_3obj_over_1obj``, ``t5_bf16_s`` (bf16 autocast; emulated, so slower,
on CPUs without native bf16) and ``bf16_mask_agreement`` (fraction of T=5 mask pixels where bf16 agrees with fp32).
The model does 920 GFLOPs at T=5 (183 at T=1), as the official code; the fractions of the same-run GEMM peak say
how well this machine is used.

``--official DIR`` (a checkout of wjn922/ReferFormer outside this project, imported at run time through
``benchmarks/official_shims.py``, never copied) adds the comparison in the same run: T=5, one expression, in fresh
processes alternating ours and the official (``--repeats`` each, median; each process warms up once and times one
forward), both models holding the same weights (ours, copied into the official model) and the same input. The json
then also holds ``t5_fresh_process_s`` (ours), ``official_t5_s``, ``speedup_vs_official`` (official / ours),
``official_pred_masks_max_abs_diff`` (the agreement check) and the single runs (``t5_fresh_process_runs_s``,
``official_t5_runs_s``). Ours runs with freed memory kept for reuse, as our pipeline sets it on the CPU; the
official code with the default allocator, as it runs; ``official_reuse_t5_s`` (and ``_runs_s``) times the official
code with our setting too, to show how much of the ratio that setting makes. On a CPU with native bf16 each round
also times ours under bf16 autocast (``t5_bf16_fresh_process_s`` and ``_runs_s``, ``bf16_speedup_vs_official``, and
``bf16_fresh_mask_agreement``: its binary masks against our fp32 ones); elsewhere bf16 is emulated and not timed.
``--comparison-only`` leaves out our in-process rows and the memory rows. Without ``--official`` no ratio against
the official code is printed: one is valid only when both ran on the same machine in the same run.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from referformer_core.memory import DEFAULT_MAX_MEMORY, reuse_freed_memory  # noqa: E402
from referformer_core.precision import mask_agreement, native_bf16_cpu  # noqa: E402

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


def time_forward(model, t: int, num_expressions: int, repeats: int, autocast: torch.dtype | None = None) -> float:
    """Median seconds of one forward over ``[1, t, 3, H, W]`` frames and ``num_expressions`` expressions (``autocast``:
    a CPU autocast dtype, e.g. bf16)."""
    frames = torch.randn(1, t, 3, H, W)
    ids = torch.randint(3, 1000, (num_expressions, 12))
    ids[:, 0], ids[:, -1] = 0, 2
    sizes = torch.tensor([[H, W]])

    def once() -> float:
        start = time.perf_counter()
        with torch.inference_mode(), torch.autocast("cpu", autocast or torch.bfloat16, enabled=autocast is not None):
            model.decode_each(model.encode_frames(frames), model.encode_text(ids, torch.ones_like(ids)), sizes)
        return time.perf_counter() - start

    once()
    return statistics.median(once() for _ in range(repeats))


def peak_rss_child(num_frames: int, window: str) -> None:
    """Segment a generated ``num_frames`` video at 360x640 with the predictor, ``window`` frames per pass (``auto``:
    the default memory budget's choice); print peak RSS in GB."""
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

    predictor = VideoPredictor(build_model(), Tokenizer(), short_side=H,
                               window="auto" if window == "auto" else int(window))
    state = predictor.init_state(frames())
    predictor.add_expression(state, 1, "the object")
    for _ in predictor.propagate_in_video(state):
        pass
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2)


def peak_rss_gb(num_frames: int, window: str) -> float:
    out = subprocess.run([sys.executable, __file__, "--rss-child", str(num_frames), "--rss-window", window], check=True,
                         capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def clip_input(t: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """The comparison's fixed input: frames ``[T, 3, H, W]`` and one expression's token ids ``[1, 12]``."""
    g = torch.Generator().manual_seed(0)
    frames = torch.randn(t, 3, H, W, generator=g)
    ids = torch.randint(3, 1000, (1, 12), generator=g)
    ids[:, 0], ids[:, -1] = 0, 2
    return frames, ids


def time_child(which: str, official_dir: str | None, threads: int, out_path: str) -> None:
    """In a fresh process: build ``which`` (``ours``, ``ours-bf16`` (bf16 autocast); ``official`` or
    ``official-reuse``, with our weights), warm up once on the T=5 input, time one forward; save its
    ``pred_masks`` (float32) to ``out_path`` and print the seconds.

    Ours keeps freed memory for reuse as our pipeline does on the CPU (``reuse_freed_memory``); ``official`` runs
    with the process's default allocator, as the official code does; ``official-reuse`` is the official code given
    our allocator setting (how much of the ratio that setting makes)."""
    torch.set_num_threads(threads)
    if which in ("ours", "ours-bf16", "official-reuse"):
        reuse_freed_memory()
    model = build_model()
    frames, ids = clip_input()
    if which.startswith("official"):
        from benchmarks.official_shims import build_official_model, copy_weights, run_official

        official = build_official_model(official_dir, "resnet50", model.config.text_encoder)
        copy_weights(model, official)
        del model

        def forward() -> dict:
            return run_official(official, frames, ids)
    else:
        from benchmarks.official_shims import run_ours

        def forward() -> dict:
            with torch.autocast("cpu", torch.bfloat16, enabled=which == "ours-bf16"):
                return run_ours(model, frames, ids)

    forward()
    start = time.perf_counter()
    out = forward()
    elapsed = time.perf_counter() - start
    torch.save({"pred_masks": out["pred_masks"].float().clone()}, out_path)
    print(elapsed)


def fresh_process_t5(which: str, official_dir: str | None, threads: int, out_path: Path) -> float:
    """Seconds of one T=5 forward of ``which`` timed in a fresh process (see :func:`time_child`)."""
    cmd = [sys.executable, __file__, "--time-child", which, "--threads", str(threads), "--child-out", str(out_path)]
    if official_dir:
        cmd += ["--official", official_dir]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"the {which} timing process failed:\n{out.stderr[-3000:]}")
    return float(out.stdout.strip().splitlines()[-1])


@dataclass
class OfficialComparison:
    """Same-run T=5 times (seconds, one per fresh process) and the agreement of the two models' mask logits."""

    ours: list[float]
    official: list[float]
    official_reuse: list[float]
    pred_masks_max_abs_diff: float
    pred_masks_max_abs: float
    ours_bf16: list[float]
    """Ours under bf16 autocast; empty where the CPU has no native bf16."""
    bf16_mask_agreement: float | None
    """Fraction of pixels where the first round's bf16 binary masks equal our fp32 ones (``None``: not timed)."""

    @property
    def ours_t5(self) -> float:
        return statistics.median(self.ours)

    @property
    def official_t5(self) -> float:
        return statistics.median(self.official)

    @property
    def official_reuse_t5(self) -> float:
        return statistics.median(self.official_reuse)

    @property
    def speedup(self) -> float:
        return self.official_t5 / self.ours_t5

    @property
    def ours_bf16_t5(self) -> float:
        return statistics.median(self.ours_bf16)

    @property
    def bf16_speedup(self) -> float:
        return self.official_t5 / self.ours_bf16_t5

    @property
    def agrees(self) -> bool:
        """Within the parity tolerance (``referformer_core.parity``): ``1e-4 + 1e-5 * max |official|``."""
        return self.pred_masks_max_abs_diff <= 1e-4 + 1e-5 * self.pred_masks_max_abs


def compare_with_official(official_dir: str, threads: int, repeats: int, bf16: bool) -> OfficialComparison:
    """``repeats`` rounds of fresh processes: ours, the official, the official with our allocator setting, and
    (``bf16``) ours under bf16 autocast; masks compared on the first round."""
    ours, official, official_reuse, ours_bf16 = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            ours.append(fresh_process_t5("ours", None, threads, Path(tmp) / f"ours{i}.pt"))
            official.append(fresh_process_t5("official", official_dir, threads, Path(tmp) / f"official{i}.pt"))
            official_reuse.append(fresh_process_t5("official-reuse", official_dir, threads, Path(tmp) / f"r{i}.pt"))
            if bf16:
                ours_bf16.append(fresh_process_t5("ours-bf16", None, threads, Path(tmp) / f"bf16_{i}.pt"))
        a = torch.load(Path(tmp) / "ours0.pt", weights_only=True)["pred_masks"]
        b = torch.load(Path(tmp) / "official0.pt", weights_only=True)["pred_masks"]
        agreement = None
        if bf16:
            c = torch.load(Path(tmp) / "bf16_0.pt", weights_only=True)["pred_masks"]
            agreement = mask_agreement(a > 0, c > 0)
    return OfficialComparison(ours, official, official_reuse, (a - b).abs().max().item(), b.abs().max().item(),
                              ours_bf16, agreement)


def in_process_rows(repeats: int, peak: float, report: dict[str, float | list[float]],
                    rows: list[tuple[str, str, str]]) -> None:
    """Our T=1, T=5 and T=5 x 3 expressions times in this process, added to ``report`` and ``rows``."""
    reuse_freed_memory()
    model = build_model()
    t1 = time_forward(model, 1, 1, repeats)
    t5 = time_forward(model, 5, 1, repeats)
    t5_3 = time_forward(model, 5, 3, repeats)
    frac1 = MODEL_GFLOP[1] / t1 / peak
    frac5 = MODEL_GFLOP[5] / t5 / peak
    report.update({"t1_360x640_s": t1, "t5_360x640_s": t5, "t5_fraction_of_peak": frac5,
                   "t1_fraction_of_peak": frac1, "t5_3obj_over_1obj": t5_3 / t5})
    rows += [
        ("T=1 forward, 360x640", f"{t1:.2f} s", f"fraction of the GEMM peak {frac1:.2f}"),
        ("T=5 forward, 360x640", f"{t5:.2f} s", f"fraction of the GEMM peak {frac5:.2f}"),
        ("T=5, 3 expressions", f"{t5_3:.2f} s", f"{t5_3 / t5:.2f}x one expression"),
    ]
    t5_bf16 = time_forward(model, 5, 1, repeats, torch.bfloat16)
    agreement = bf16_mask_agreement(model)
    native = "native bf16" if native_bf16_cpu() else "no native bf16 here: emulated, slower"
    report.update({"t5_bf16_s": t5_bf16, "bf16_mask_agreement": agreement})
    rows += [("T=5 forward, bf16 autocast", f"{t5_bf16:.2f} s", f"{t5 / t5_bf16:.2f}x fp32 ({native})"),
             ("bf16 vs fp32 binary masks", f"{agreement:.4f}", "fraction of equal pixels, T=5")]


def bf16_mask_agreement(model) -> float:
    """Fraction of the T=5 clip's mask pixels (logit > 0) on which bf16 autocast agrees with fp32."""
    frames, ids = clip_input()
    masks = []
    for dtype in (None, torch.bfloat16):
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=dtype is not None):
            out = model.decode_each(model.encode_frames(frames[None]), model.encode_text(ids, torch.ones_like(ids)),
                                    torch.tensor([[H, W]]))[0]
        masks.append(out["pred_masks"].float() > 0)
    return mask_agreement(masks[0], masks[1])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--device", default="cpu", help="cuda or cpu (default)")
    parser.add_argument("--quick", action="store_true", help="the device matrix only, at tiny sizes (seconds)")
    parser.add_argument("--backbones", help="comma-separated backbones for the device matrix (default: "
                        "resnet50, swin_l_p4w7, video_swin_b_p4w7; with --quick their smallest variants)")
    parser.add_argument("--precisions", help="comma-separated precisions (default: fp32, tf32, fp16, bf16 on CUDA; "
                        "fp32, bf16 on the CPU)")
    parser.add_argument("--no-e2e", action="store_true", help="leave out the end-to-end video")
    parser.add_argument("--compile", choices=["default", "reduce-overhead"],
                        help="torch.compile the backbone in the device matrix (off by default; unmeasured)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--long-frames", type=int, default=300)
    parser.add_argument("--official", metavar="DIR",
                        help="a checkout of the official ReferFormer code (outside this project) to compare with")
    parser.add_argument("--skip-memory", action="store_true", help="no peak-RSS measurements (rows and keys)")
    parser.add_argument("--comparison-only", action="store_true",
                        help="with --official: only the GEMM peak and the fresh-process comparison")
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rss-window", default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--time-child", choices=["ours", "ours-bf16", "official", "official-reuse"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def device_matrix(args: argparse.Namespace, device: torch.device) -> tuple[dict, list[tuple[str, str, str]]]:
    """The json keys and table rows of the device matrix (:mod:`benchmarks.model_matrix`)."""
    from benchmarks import model_matrix as mm

    sizes = mm.QUICK_SIZES if args.quick else mm.MatrixSizes(repeats=args.repeats, e2e_frames=args.long_frames)
    requested = (args.backbones.split(",") if args.backbones
                 else mm.QUICK_BACKBONES if args.quick else mm.BACKBONES)
    backbones = list(requested)
    chosen = (args.precisions.split(",") if args.precisions
              else mm.CUDA_PRECISIONS if device.type == "cuda" else mm.CPU_PRECISIONS)
    precisions = ("fp32", *(p for p in chosen if p != "fp32"))  # the reference first
    results, e2e = {}, None
    if not args.no_e2e and "resnet50" not in backbones:
        backbones.insert(0, "resnet50")
    for backbone in backbones:
        model = mm.build_model(backbone, args.quick, device)
        if backbone == "resnet50" and not args.no_e2e:
            e2e = mm.run_end_to_end(model, device, sizes)  # before the matrix compiles the model
            if backbone not in requested:
                continue
        results[backbone] = mm.run_backbone(model, device, precisions, sizes, args.compile)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    report = mm.matrix_report(results, e2e, sizes)
    report.update(device=str(device), quick=args.quick, compile=args.compile)
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(device)
    return report, mm.matrix_rows(results, e2e, sizes)


def check_matrix_args(args: argparse.Namespace) -> str | None:
    """One line naming what is wrong with the device-matrix arguments, or ``None``."""
    from benchmarks import model_matrix as mm

    device = torch.device(args.device)
    if device.type not in ("cpu", "cuda"):
        return f"--device must be cuda or cpu, got {args.device!r}"
    if device.type == "cuda" and not torch.cuda.is_available():
        return "--device cuda: no CUDA GPU is available here"
    from referformer_core.backbones import backbone_names

    unknown = [b for b in (args.backbones or "").split(",") if b and b not in backbone_names()]
    if unknown:
        return f"--backbones: unknown {', '.join(unknown)}; known: {', '.join(backbone_names())}"
    allowed = mm.CUDA_PRECISIONS if device.type == "cuda" else mm.CPU_PRECISIONS
    bad = [p for p in (args.precisions or "").split(",") if p and p not in allowed]
    if bad:
        return f"--precisions: {', '.join(bad)} cannot run on {device.type}; choose from {', '.join(allowed)}"
    if args.precisions and "fp32" not in args.precisions.split(","):
        return "--precisions must include fp32, the reference of the mask agreement"
    if args.official and device.type != "cpu":
        return "--official compares on the CPU only"
    return None


def print_table(rows: list[tuple[str, str, str]], report: dict, as_json: bool) -> int:
    """The ``measure / value / note`` table, then (``--json``) the report as one last line; exit code 0."""
    print(f"{'measure':<28}{'value':>16}  note")
    for name, value, note in rows:
        print(f"{name:<28}{value:>16}  {note}")
    if as_json:
        print(json.dumps(report))
    return 0


def run_matrix_only(args: argparse.Namespace) -> int:
    """``--device cuda`` or ``--quick``: the device matrix, its table and json."""
    device = torch.device(args.device)
    report, rows = device_matrix(args, device)
    where = report.get("gpu") or f"CPU, {torch.get_num_threads()} threads"
    size = "tiny sizes (--quick)" if args.quick else f"{report['working_short_side']}p working size"
    print(f"ReferFormer on {device.type} ({where}), {size}, window {report['window']}, "
          f"median of {1 if args.quick else args.repeats}")
    return print_table(rows, report, args.json)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problem = None if args.rss_child or args.time_child else check_matrix_args(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.device != "cpu" or args.quick:
        return run_matrix_only(args)
    if args.rss_child:
        peak_rss_child(args.rss_child, args.rss_window)
        return 0
    if args.time_child:
        time_child(args.time_child, args.official, args.threads, args.child_out)
        return 0
    if args.comparison_only and not args.official:
        print("error: --comparison-only needs --official DIR", file=sys.stderr)
        return 2
    if args.official:
        from benchmarks.official_shims import OfficialCodeError, check_official_dir

        try:
            args.official = str(check_official_dir(args.official))
        except OfficialCodeError as e:
            print(f"error: --official: {e}", file=sys.stderr)
            return 2

    from referformer_core.msda import ms_deform_attn  # noqa: F401  (the kernel notice, if any, comes first)

    peak = gemm_peak_gflops(args.threads)
    report: dict[str, float | list[float]] = {"gemm_peak_gflops": peak}
    rows = [("GEMM peak, 4096^3 fp32", f"{peak:.1f} GFLOP/s", "")]
    if not args.comparison_only:
        in_process_rows(args.repeats, peak, report, rows)
    if args.backbones and not args.comparison_only:
        matrix_report, matrix_rows = device_matrix(args, torch.device("cpu"))
        report.update(matrix_report)
        rows += matrix_rows
    if not (args.skip_memory or args.comparison_only):
        rss36 = peak_rss_gb(36, "36")
        rss_long = peak_rss_gb(args.long_frames, "auto")
        report.update({"peak_rss_gb_36f": rss36, f"peak_rss_gb_{args.long_frames}f": rss_long})
        rows += [("peak RSS, 36 frames", f"{rss36:.2f} GB", "predictor, window 36"),
                 (f"peak RSS, {args.long_frames} frames", f"{rss_long:.2f} GB",
                  f"predictor, window from the default {DEFAULT_MAX_MEMORY:g} GB budget")]
    if args.official:
        cmp = compare_with_official(args.official, args.threads, args.repeats, native_bf16_cpu())
        report.update({"t5_fresh_process_s": cmp.ours_t5, "official_t5_s": cmp.official_t5,
                       "speedup_vs_official": cmp.speedup,
                       "official_pred_masks_max_abs_diff": cmp.pred_masks_max_abs_diff,
                       "t5_fresh_process_runs_s": cmp.ours, "official_t5_runs_s": cmp.official,
                       "official_reuse_t5_s": cmp.official_reuse_t5, "official_reuse_t5_runs_s": cmp.official_reuse})
        rows += [
            ("T=5, fresh processes", f"{cmp.ours_t5:.2f} s",
             f"ours, fraction of the GEMM peak {MODEL_GFLOP[5] / cmp.ours_t5 / peak:.2f}; runs "
             + ", ".join(f"{t:.2f}" for t in cmp.ours)),
            ("official T=5, fresh proc.", f"{cmp.official_t5:.2f} s",
             f"fraction of the GEMM peak {MODEL_GFLOP[5] / cmp.official_t5 / peak:.2f}; runs "
             + ", ".join(f"{t:.2f}" for t in cmp.official)),
            ("official, our allocator", f"{cmp.official_reuse_t5:.2f} s",
             f"freed memory reused as our pipeline does; {cmp.official_reuse_t5 / cmp.ours_t5:.2f}x ours; runs "
             + ", ".join(f"{t:.2f}" for t in cmp.official_reuse)),
            ("speedup vs official", f"{cmp.speedup:.2f}x", "official / ours, same run, weights and input"),
            ("pred_masks max |diff|", f"{cmp.pred_masks_max_abs_diff:.2e}",
             f"ours vs official, max |official| {cmp.pred_masks_max_abs:.1f}, "
             f"{'within' if cmp.agrees else 'OUTSIDE'} the parity tolerance"),
        ]
        if cmp.ours_bf16:
            report.update({"t5_bf16_fresh_process_s": cmp.ours_bf16_t5, "t5_bf16_fresh_process_runs_s": cmp.ours_bf16,
                           "bf16_speedup_vs_official": cmp.bf16_speedup,
                           "bf16_fresh_mask_agreement": cmp.bf16_mask_agreement})
            rows += [("T=5 bf16, fresh processes", f"{cmp.ours_bf16_t5:.2f} s",
                      "ours, bf16 autocast (native bf16); runs " + ", ".join(f"{t:.2f}" for t in cmp.ours_bf16)),
                     ("bf16 speedup vs official", f"{cmp.bf16_speedup:.2f}x",
                      f"official fp32 / ours bf16, same run; masks agree with our fp32 on "
                      f"{cmp.bf16_mask_agreement:.4f} of pixels")]
        if not cmp.agrees:
            print("warning: the two models disagree; the comparison is not of the same computation", file=sys.stderr)
    print(f"ReferFormer ResNet-50, CPU, {args.threads} threads, median of {args.repeats}")
    if args.official:
        bf16 = " / ours in bf16" if native_bf16_cpu() else ""
        print(f"official code: {args.official} (fresh processes alternating ours / official / official with our "
              f"allocator{bf16})")
    return print_table(rows, report, args.json)


if __name__ == "__main__":
    sys.exit(main())
