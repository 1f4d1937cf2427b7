"""Choosing the inference precision (referformer_core.precision): the rule, on every machine (the measured bf16
mask agreements behind it are in benchmarks/bench_precision.py)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from referformer_core import precision
from referformer_core.precision import (BF16_VERIFIED_BACKBONES, check_precision, cpu_flags, default_precision,
                                        mask_agreement, native_bf16_cpu, resolve_precision)

REPO = Path(__file__).resolve().parents[2]


def cpuinfo(*flag_lines: str) -> str:
    """``/proc/cpuinfo`` text with one processor block per flags line."""
    return "\n".join(f"processor\t: {i}\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU\nflags\t\t: {flags}\n"
                     for i, flags in enumerate(flag_lines))


AVX2 = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi2"
SAPPHIRE_RAPIDS = AVX2 + " avx512f avx512bw avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8"
COOPER_LAKE = AVX2 + " avx512f avx512bw avx512_vnni avx512_bf16"
AMX_ONLY = AVX2 + " avx512f amx_bf16 amx_tile"
ARM = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 bf16 i8mm\n"


@pytest.mark.parametrize("text,native", [
    (cpuinfo(SAPPHIRE_RAPIDS, SAPPHIRE_RAPIDS), True),
    (cpuinfo(COOPER_LAKE), True),
    (cpuinfo(AMX_ONLY, AMX_ONLY), True),
    (cpuinfo(AVX2, AVX2), False),
    (cpuinfo(SAPPHIRE_RAPIDS, AVX2), False),  # every processor must have it
    (cpuinfo(AVX2.replace("avx2", "avx512_bf16x")), False),  # whole flags only
    (ARM, False),
    ("", False),
])
def test_native_bf16_cpu_reads_cpuinfo_flags(text: str, native: bool) -> None:
    assert native_bf16_cpu(text) is native


def test_cpu_flags_are_those_every_processor_has() -> None:
    assert cpu_flags(cpuinfo("a b c", "b c d")) == {"b", "c"}
    assert cpu_flags(ARM) == set()


def test_native_bf16_cpu_reads_this_machine_only_on_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "_read_proc_cpuinfo", lambda: cpuinfo(SAPPHIRE_RAPIDS))
    monkeypatch.setattr(sys, "platform", "linux")
    assert native_bf16_cpu()
    monkeypatch.setattr(sys, "platform", "darwin")
    assert not native_bf16_cpu()
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(precision, "_read_proc_cpuinfo", lambda: cpuinfo(AVX2))
    assert not native_bf16_cpu()


def test_this_machine_is_read_without_error() -> None:
    assert isinstance(native_bf16_cpu(), bool)


def test_default_precision_is_bf16_only_on_native_bf16_cpus_for_verified_backbones() -> None:
    assert default_precision(torch.device("cpu"), "efficientnet_lite0", native_bf16=True) == "bf16"
    assert default_precision("cpu", "efficientnet_lite0", native_bf16=False) == "fp32"
    assert default_precision("cpu", "resnet50", native_bf16=True) == "fp32"
    assert default_precision("cpu", "swin_t_p4w7", native_bf16=True) == "fp32"
    assert default_precision("cuda", "efficientnet_lite0", native_bf16=True) == "fp32"
    assert default_precision("cuda:0", "resnet50", native_bf16=False) == "fp32"


def test_default_precision_asks_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(precision, "_read_proc_cpuinfo", lambda: cpuinfo(AVX2, AVX2))
    assert default_precision("cpu", "efficientnet_lite0") == "fp32"
    assert resolve_precision(None, "cpu", "efficientnet_lite0") == "fp32"
    monkeypatch.setattr(precision, "_read_proc_cpuinfo", lambda: cpuinfo(SAPPHIRE_RAPIDS, SAPPHIRE_RAPIDS))
    assert default_precision("cpu", "efficientnet_lite0") == "bf16"
    assert resolve_precision(None, "cpu", "efficientnet_lite0") == "bf16"


def test_requested_precision_overrides_the_default() -> None:
    assert resolve_precision("fp32", "cpu", "resnet50") == "fp32"
    assert resolve_precision("bf16", "cpu", "swin_t_p4w7") == "bf16"
    assert resolve_precision("fp16", "cuda", "resnet50") == "fp16"
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", "cpu", "resnet50")


def test_check_precision_names_the_problem_in_one_line() -> None:
    assert check_precision("bf16", "cpu") == "bf16" and check_precision("fp16", torch.device("cuda", 0)) == "fp16"
    with pytest.raises(ValueError, match="precision fp16 needs a CUDA device, not cpu; use bf16 or fp32"):
        check_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="must be one of fp32, bf16, fp16, got 'fp8'"):
        check_precision("fp8", "cpu")


def test_mask_agreement_is_the_fraction_of_equal_pixels() -> None:
    a = np.zeros((2, 4, 5), dtype=bool)
    b = a.copy()
    assert mask_agreement(a, b) == 1.0
    b[0, 0, :3] = True
    b[1, 3, 4] = True
    assert mask_agreement(a, b) == pytest.approx(1 - 4 / 40)
    assert mask_agreement(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(0.9)
    assert mask_agreement(np.zeros((0, 3), dtype=bool), np.zeros((0, 3), dtype=bool)) == 1.0
    with pytest.raises(ValueError, match=r"shapes \(2, 4, 5\) and \(4, 5\)"):
        mask_agreement(a, b[0])


def test_resnet50_stays_fp32_by_default_because_it_misses_the_agreement_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    """The decision, on every machine: ResNet-50's bf16 masks miss ``BF16_MIN_MASK_AGREEMENT`` on some inputs and
    CPUs (benchmarks/bench_precision.py keeps the figures), so even a native-bf16 CPU runs it in fp32 unless asked."""
    assert "resnet50" not in BF16_VERIFIED_BACKBONES
    monkeypatch.setattr(precision, "native_bf16_cpu", lambda cpuinfo=None: True)
    assert resolve_precision(None, "cpu", "resnet50") == "fp32"
    assert resolve_precision("bf16", "cpu", "resnet50") == "bf16"


def test_verified_backbones_are_those_with_a_bf16_check() -> None:
    """Every backbone given bf16 by default has its agreement measured in bench_precision.py: today only the
    bundled model's."""
    from referformer_core.config import get_config

    assert BF16_VERIFIED_BACKBONES == {get_config("small").backbone}


def test_bf16_runs_the_bundled_model_on_a_generated_video(monkeypatch: pytest.MonkeyPatch) -> None:
    """bf16 autocast gives masks of the fp32 shape on the bundled model; how many pixels agree is measured, not
    asserted (it depends on the CPU's bf16 kernels): bench_precision.py."""
    monkeypatch.syspath_prepend(str(REPO))
    from referformer_core.predictor import VideoPredictor
    from train.bundled.world import render_video, video_spec

    frames, _labels, expressions = render_video(video_spec("heldout", 7, 0, 4, 120, 160))
    bf16 = VideoPredictor.from_checkpoint(precision="bf16")
    assert bf16.autocast_dtype == torch.bfloat16
    assert bf16.model.config.backbone in BF16_VERIFIED_BACKBONES
    masks = bf16.predict(frames, expressions[0]["exp"])
    assert masks.shape == (4, 120, 160) and masks.dtype == bool


def test_precision_benchmark_reports_each_input_against_the_bar(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import bench_precision

    monkeypatch.setattr(bench_precision, "fixture_agreement", lambda backbone: 0.9933)
    monkeypatch.setattr(bench_precision, "bundled_agreement", lambda: ("efficientnet_lite0", 0.9999))
    report = bench_precision.main(["--quick", "--json"])
    assert report["bf16_agreement_resnet50"] == 0.9933 and report["bf16_agreement_bundled"] == 0.9999
    lines = capsys.readouterr().out.splitlines()
    assert json.loads(lines[-1]) == report
    resnet = next(line for line in lines if line.startswith("resnet50 fixture"))
    assert resnet.split()[-2:] == ["False", "False"]


def test_from_checkpoint_picks_the_precision_for_the_cpu_and_backbone(monkeypatch):
    """The bundled model (EfficientNet-Lite0, bf16-verified): fp32 without native bf16, bf16 with it, and an explicit
    precision or autocast wins; fp16 on a CPU is one readable error."""
    from referformer_core.errors import ReferFormerError
    from referformer_core.predictor import VideoPredictor

    monkeypatch.setattr(precision, "native_bf16_cpu", lambda cpuinfo=None: False)
    assert VideoPredictor.from_checkpoint().autocast_dtype is None
    monkeypatch.setattr(precision, "native_bf16_cpu", lambda cpuinfo=None: True)
    assert VideoPredictor.from_checkpoint().autocast_dtype == torch.bfloat16
    assert VideoPredictor.from_checkpoint(precision="fp32").autocast_dtype is None
    assert VideoPredictor.from_checkpoint(autocast=None).autocast_dtype is None
    with pytest.raises(ReferFormerError, match="fp16 needs a CUDA device"):
        VideoPredictor.from_checkpoint(precision="fp16")


def test_cli_takes_precision_and_max_memory():
    from referformer_core.cli import build_parser

    parser = build_parser()
    seg = parser.parse_args(["segment", "v.mp4", "the red circle", "--precision", "bf16", "--max-memory", "2"])
    assert (seg.precision, seg.max_memory) == ("bf16", 2.0)
    with pytest.raises(SystemExit):
        parser.parse_args(["segment", "v.mp4", "x", "--precision", "fp8"])


def test_cuda_defaults_come_from_the_verified_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """No backbone is verified on CUDA yet (no GPU measurement): fp32 everywhere; once listed, fp16 before bf16."""
    assert all(not precision.VERIFIED_AUTOCAST[("cuda", p)] for p in ("fp16", "bf16"))
    assert default_precision("cuda", "resnet50") == "fp32"
    table = dict(precision.VERIFIED_AUTOCAST)
    table[("cuda", "bf16")] = frozenset({"resnet50", "swin_l_p4w7"})
    monkeypatch.setattr(precision, "VERIFIED_AUTOCAST", table)
    assert default_precision("cuda:0", "swin_l_p4w7") == "bf16"
    table[("cuda", "fp16")] = frozenset({"resnet50"})
    assert default_precision("cuda", "resnet50") == "fp16"
    assert default_precision("cuda", "video_swin_b_p4w7") == "fp32"
    assert default_precision("cpu", "resnet50", native_bf16=True) == "fp32", "a CUDA entry decides nothing on a CPU"


def test_the_agreement_rule_is_at_least_the_threshold() -> None:
    assert precision.meets_agreement_rule(precision.BF16_MIN_MASK_AGREEMENT)
    assert not precision.meets_agreement_rule(precision.BF16_MIN_MASK_AGREEMENT - 1e-4)
