"""The benchmarks run at tiny sizes (``--device cpu --quick``) so they never rot; their CUDA paths need a GPU.

Each run checks the shape and sense of its json (keys, positive times, agreements as fractions), never a measured
figure: those depend on the machine.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks import bench_model, bench_window, model_matrix
from benchmarks.model_matrix import BackboneResult, EndToEnd, MatrixSizes, matrix_report, matrix_rows
from referformer_core.precision import BF16_MIN_MASK_AGREEMENT

REPO = Path(__file__).resolve().parents[1]
CUDA = torch.cuda.is_available()


def run_benchmark(name: str, *args: str, timeout: float = 120) -> tuple[dict, list[str]]:
    """Run ``benchmarks/<name>`` with ``args``; its json (the last line) and the lines before it."""
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / name), *args, "--json"],
                            capture_output=True, text=True, timeout=timeout, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    return json.loads(lines[-1]), lines[:-1]


def run_in_process(main, capsys, *args: str) -> tuple[dict, list[str]]:
    """``main([*args, "--json"])`` in this process (no second start-up of torch); its json and table lines. The
    benchmark's thread count is undone after."""
    threads = torch.get_num_threads()
    try:
        assert main([*args, "--json"]) == 0
    finally:
        torch.set_num_threads(threads)
    lines = capsys.readouterr().out.strip().splitlines()
    return json.loads(lines[-1]), lines[:-1]


def check_matrix(report: dict, backbones: tuple[str, ...], precisions: tuple[str, ...]) -> None:
    for key in ("fps_360p", "fps_360p_multi", "mask_agreement"):
        assert set(report[key]) == set(backbones), key
        for backbone in backbones:
            assert set(report[key][backbone]) == set(precisions), (key, backbone)
    for backbone in backbones:
        assert all(v > 0 for v in report["fps_360p"][backbone].values())
        agreement = report["mask_agreement"][backbone]
        assert agreement["fp32"] == 1.0 and all(0 <= a <= 1 for a in agreement.values())
        assert report["meets_rule"][backbone] == {p: agreement[p] >= BF16_MIN_MASK_AGREEMENT
                                                  for p in precisions if p != "fp32"}
    assert report["e2e_300f_720p_s"] > 0 and 0 < report["decode_share"] < 1
    assert report["e2e_serial_s"] > report["decode_resize_s"] > 0


def test_bench_model_quick_on_the_cpu_reports_every_backbone_and_precision(capsys):
    report, table = run_in_process(bench_model.main, capsys, "--device", "cpu", "--quick")
    check_matrix(report, model_matrix.QUICK_BACKBONES, model_matrix.CPU_PRECISIONS)
    assert report["device"] == "cpu" and report["quick"] and report["peak_gpu_gb"] is None
    assert report["e2e_frames"] == model_matrix.QUICK_SIZES.e2e_frames and report["e2e_precision"] == "fp32"
    assert report["e2e_default_prefetch"] is False and report["e2e_300f_720p_s"] == report["e2e_serial_s"]
    assert any(line.startswith("resnet50 bf16") and "the rule" in line for line in table), "the table is printed"
    assert any("decode_share" in line for line in table)


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_bench_model_quick_on_cuda_times_every_precision_and_the_gpu_memory():
    report, _ = run_benchmark("bench_model.py", "--device", "cuda", "--quick", timeout=300)
    check_matrix(report, model_matrix.QUICK_BACKBONES, model_matrix.CUDA_PRECISIONS)
    assert report["peak_gpu_gb"] > 0 and report["gpu"]


def test_bench_model_refuses_what_cannot_run_in_one_line(capsys):
    assert bench_model.main(["--quick", "--precisions", "fp32,fp16"]) == 2
    assert "fp16 cannot run on cpu" in capsys.readouterr().err
    assert bench_model.main(["--quick", "--precisions", "bf16"]) == 2
    assert "must include fp32" in capsys.readouterr().err
    assert bench_model.main(["--quick", "--backbones", "resnet5"]) == 2
    assert "unknown resnet5" in capsys.readouterr().err
    if not CUDA:
        assert bench_model.main(["--device", "cuda"]) == 2
        assert "no CUDA GPU" in capsys.readouterr().err


def test_the_matrix_report_nests_figures_by_backbone_and_precision():
    results = {"resnet50": BackboneResult({"fp32": 100.0, "fp16": 180.0}, {"fp32": 60.0, "fp16": 90.0},
                                          {"fp32": 1.0, "fp16": 0.9991}, 3.5),
               "swin_l_p4w7": BackboneResult({"fp32": 20.0, "fp16": 41.0}, {"fp32": 12.0, "fp16": 25.0},
                                             {"fp32": 1.0, "fp16": 0.990}, 9.25)}
    e2e = EndToEnd(300, (720, 1280), "fp32", decode_resize_s=2.0, serial_s=8.0, prefetch_s=6.5, default_prefetch=True)
    report = matrix_report(results, e2e, MatrixSizes())
    assert report["fps_360p"]["resnet50"]["fp16"] == 180.0 and report["fps_360p_multi"]["swin_l_p4w7"]["fp32"] == 12.0
    assert report["meets_rule"] == {"resnet50": {"fp16": True}, "swin_l_p4w7": {"fp16": False}}
    assert report["peak_gpu_gb"] == 9.25 and report["decode_share"] == 0.25
    assert report["e2e_300f_720p_s"] == 6.5 and report["e2e_serial_s"] == 8.0
    rows = {name: (value, note) for name, value, note in matrix_rows(results, e2e, MatrixSizes())}
    assert "below the rule" in rows["swin_l_p4w7 fp16"][1] and rows["resnet50 peak GPU"][0] == "3.50 GB"
    assert matrix_report(results, None, MatrixSizes())["decode_share"] is None
    serial_default = EndToEnd(300, (720, 1280), "fp32", 2.0, 8.0, 6.5, default_prefetch=False)
    assert matrix_report(results, serial_default, MatrixSizes())["e2e_300f_720p_s"] == 8.0


def test_tf32_switch_is_restored():
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    before = (matmul.fp32_precision, conv.fp32_precision)
    with model_matrix.fp32_mode(tf32=True):
        assert (matmul.fp32_precision, conv.fp32_precision) == ("tf32", "tf32")
    with model_matrix.fp32_mode(tf32=False):
        assert (matmul.fp32_precision, conv.fp32_precision) == ("ieee", "ieee")
    assert (matmul.fp32_precision, conv.fp32_precision) == before


def test_bench_annotate_quick_reports_frames_per_second():
    report, table = run_benchmark("bench_annotate.py", "--device", "cpu", "--quick")
    assert report["device"] == "cpu" and report["videos"] == 2 and report["frames_per_video"] == 3
    [one] = report["runs"]
    assert one["frames"] == 6 and report["fps_1"] == one["fps"] > 0 and report["fps_2"] is None
    assert any(line.split()[:2] == ["1", "6"] for line in table), "the table is printed"


def test_bench_window_quick_compares_windows_with_one_pass(capsys):
    report, table = run_in_process(bench_window.main, capsys, "--device", "cpu", "--quick")
    assert report["one_pass"]["mean_iou"] == 1.0 and report["one_pass"]["pixels_differing"] == 0.0
    for key in ("window_2", "window_3", "default_budget"):
        assert 0 <= report[key]["mean_iou"] <= 1 and 0 <= report[key]["pixels_differing"] <= 1
    assert report["window_8f"] >= 1 and report["seconds_8f"] > 0 and 0.05 < report["peak_rss_gb_8f"] < 16
    assert any(line.startswith("window 2") for line in table)
