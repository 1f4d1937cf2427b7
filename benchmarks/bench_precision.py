"""How far bf16 autocast moves the binary masks from fp32's, per backbone: the measurements behind
``referformer_core.precision.BF16_VERIFIED_BACKBONES``.

    python benchmarks/bench_precision.py [--quick] [--json]

For each parity fixture (``tests/fixtures/fixture_*.pt``, the official recipe weights) and for the bundled model on
a generated video (as ``bench_bundled.py`` renders it), this runs fp32 and bf16 autocast on the same input and
prints the fraction of mask pixels on which they agree, against the bar ``BF16_MIN_MASK_AGREEMENT`` (0.995) a
backbone must clear to get bf16 by default. ``--quick`` measures the ResNet-50 fixture and the bundled model only.
``--json`` prints one last line mapping ``bf16_agreement_<name>`` to each figure, plus ``native_bf16_cpu``.

The figure depends on the CPU: where bfloat16 is native (``avx512_bf16``/``amx_bf16``) the kernels round
differently from where it is emulated, so a backbone near the bar can pass on one machine and miss on another.
That is why tests check the decision (which backbones are verified) and this benchmark keeps the measurement.

Measured with torch 2.14, CPU, bf16 autocast:

=====================  =====================  =================  ====================
input                  emulated bf16 (AVX2)   native bf16 (EPYC)  default precision
=====================  =====================  =================  ====================
ResNet-50 fixture      0.9961                 0.9933             fp32 (misses on T=5
                                                                 360x640: 0.9906)
Swin-T fixture         0.985                  --                 fp32
Video Swin-T fixture   0.9974                 --                 fp32 (no video run)
bundled, generated     0.9999                 --                 bf16 where native
=====================  =====================  =================  ====================
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from referformer_core.parity import Fixture, run_fixture  # noqa: E402
from referformer_core.precision import (BF16_MIN_MASK_AGREEMENT, BF16_VERIFIED_BACKBONES,  # noqa: E402
                                        mask_agreement, native_bf16_cpu)

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
FIXTURE_BACKBONES = ("resnet50", "swin_t_p4w7", "video_swin_t_p4w7")
QUICK_BACKBONES = ("resnet50",)


def fixture_agreement(backbone: str) -> float:
    """bf16 vs fp32 agreement of the post-processed binary masks ``[T, H, W]`` on ``backbone``'s parity fixture."""
    fixture = Fixture.load(FIXTURES / f"fixture_{backbone}.pt")
    return mask_agreement(run_fixture(fixture)["post_binary"], run_fixture(fixture, autocast="bf16")["post_binary"])


def bundled_agreement() -> tuple[str, float]:
    """The bundled model's backbone and its bf16 vs fp32 agreement on a generated held-out video ``[6, 240, 320]``."""
    from referformer_core.predictor import VideoPredictor
    from train.bundled.world import render_video, video_spec

    frames, _labels, expressions = render_video(video_spec("heldout", 7, 0, 6, 240, 320))
    fp32 = VideoPredictor.from_checkpoint(precision="fp32")
    bf16 = VideoPredictor.from_checkpoint(precision="bf16")
    text = expressions[0]["exp"]
    return fp32.model.config.backbone, mask_agreement(fp32.predict(frames, text), bf16.predict(frames, text))


def measure(backbones: tuple[str, ...]) -> list[tuple[str, str, float]]:
    """``(input, backbone, agreement)`` rows: one per fixture backbone, then the bundled model's."""
    rows = [(f"{b} fixture", b, fixture_agreement(b)) for b in backbones]
    backbone, agreement = bundled_agreement()
    return rows + [("bundled, generated video", backbone, agreement)]


def main(argv: list[str] | None = None) -> dict[str, float | bool]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the ResNet-50 fixture and the bundled model only")
    parser.add_argument("--json", action="store_true", help="print one last line of json")
    args = parser.parse_args(argv)
    rows = measure(QUICK_BACKBONES if args.quick else FIXTURE_BACKBONES)
    native = native_bf16_cpu()
    print(f"bf16 vs fp32 mask agreement (bar {BF16_MIN_MASK_AGREEMENT}; bf16 {'native' if native else 'emulated'})")
    print(f"{'input':<28} {'agreement':>9}  {'clears bar':>10}  {'bf16 by default':>15}")
    for name, backbone, agreement in rows:
        print(f"{name:<28} {agreement:>9.4f}  {str(agreement >= BF16_MIN_MASK_AGREEMENT):>10}  "
              f"{str(backbone in BF16_VERIFIED_BACKBONES):>15}")
    report: dict[str, float | bool] = {"native_bf16_cpu": native}
    report.update({f"bf16_agreement_{name.split()[0].rstrip(',')}": round(a, 5) for name, _b, a in rows})
    if args.json:
        print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
