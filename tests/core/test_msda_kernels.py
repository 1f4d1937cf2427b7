"""The compiled MSDA kernels (csrc/) against the pure-PyTorch reference, and the dispatch."""
from __future__ import annotations

import logging
import os
import shutil

import pytest
import torch
from torch import Tensor

from referformer_core import msda
from referformer_core.msda import ms_deform_attn, ms_deform_attn_pytorch

try:
    from referformer_core import _C
except ImportError:
    _C = None

needs_ext = pytest.mark.skipif(_C is None, reason="referformer_core._C not built (see test_extension_is_built)")
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def make_inputs(
    n: int,
    shapes: list[tuple[int, int]],
    heads: int,
    channels: int,
    queries: int,
    points: int,
    dtype: torch.dtype = torch.float64,
    device: str = "cpu",
    spread: float = 1.6,
    seed: int = 0,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Random MSDA inputs; locations uniform in [0.5 - spread/2, 0.5 + spread/2] (partly outside [0, 1])."""
    gen = torch.Generator().manual_seed(seed)
    shapes_t = torch.tensor(shapes, dtype=torch.long)
    sizes = shapes_t.prod(1)
    starts = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])
    levels = len(shapes)
    value = torch.randn(n, int(sizes.sum()), heads, channels, generator=gen, dtype=torch.float64)
    loc = (torch.rand(n, queries, heads, levels, points, 2, generator=gen, dtype=torch.float64) - 0.5) * spread + 0.5
    weights = torch.rand(n, queries, heads, levels, points, generator=gen, dtype=torch.float64)
    return tuple(t.to(device=device, dtype=dtype) if t.is_floating_point() else t.to(device) for t in (value, shapes_t, starts, loc, weights))


# (N, level shapes, heads, channels, queries, points): odd sizes, 1x1 and 1xW levels, batch > 1,
# many levels and points.
CASES = [
    (1, [(1, 1)], 1, 1, 1, 1),
    (2, [(5, 7), (3, 4), (1, 1), (2, 9)], 3, 5, 11, 3),
    (3, [(13, 1), (1, 17)], 2, 7, 6, 5),
    (2, [(9, 11), (5, 6), (3, 3), (2, 2), (1, 2), (1, 1)], 4, 8, 9, 8),
    (1, [(45, 80), (23, 40), (12, 20), (6, 10)], 8, 32, 40, 4),
]


def relative_error(got: Tensor, want: Tensor) -> float:
    """max |got - want| / max |want| (max |want| floored at 1e-30)."""
    got, want = got.detach().double(), want.detach().double()
    return float((got - want).abs().max() / want.abs().max().clamp_min(1e-30))


def test_extension_is_built() -> None:
    assert _C is not None, "referformer_core._C is missing: run `pip install --no-build-isolation -e .` or `python setup.py build_ext --inplace`"
    assert msda.kernel_supports("cpu", torch.float32) and msda.kernel_supports("cpu", torch.float64)


def test_cuda_kernel_compiled_when_nvcc_present() -> None:
    """CI has nvcc but no GPU: the install must still have compiled csrc/msda_cuda.cu."""
    has_nvcc = shutil.which("nvcc") is not None or os.path.isfile("/usr/local/cuda/bin/nvcc")
    if not has_nvcc or torch.version.cuda is None or os.environ.get("FORCE_CUDA") == "0":
        pytest.skip("no nvcc (or a CPU-only torch, or FORCE_CUDA=0): the CUDA kernel is not built")
    assert _C is not None, "referformer_core._C is not built"
    assert _C.has_cuda(), "nvcc is present but referformer_core._C was built without the CUDA kernel"


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_forward_matches_reference(case: int, dtype: torch.dtype, tol: float, device: str) -> None:
    args = make_inputs(*CASES[case], dtype=dtype, device=device, seed=case)
    want = ms_deform_attn_pytorch(*args)
    got = ms_deform_attn(*args, impl="kernel")
    assert got.shape == want.shape and got.dtype == dtype and got.device == want.device
    assert relative_error(got, want) <= tol


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
def test_forward_far_outside_and_pixel_centres(device: str) -> None:
    """Points far outside the map give exactly zero; a point at a pixel centre gives that pixel."""
    value, shapes, starts, loc, weights = make_inputs(2, [(4, 6), (3, 3)], 2, 3, 5, 2, device=device)
    loc[:, 0] = 1e6
    loc[:, 1] = -1e6
    loc[:, 2, :, 0, 0] = torch.tensor([(3 + 0.5) / 6, (2 + 0.5) / 4], dtype=loc.dtype)
    got = ms_deform_attn(value, shapes, starts, loc, weights, impl="kernel")
    assert torch.equal(got[:, :2], torch.zeros_like(got[:, :2]))
    assert relative_error(got, ms_deform_attn_pytorch(value, shapes, starts, loc, weights)) <= 1e-12
    only_centre = torch.zeros_like(weights)
    only_centre[:, 2, :, 0, 0] = 1
    got = ms_deform_attn(value, shapes, starts, loc, only_centre, impl="kernel")
    pixel = value[:, 2 * 6 + 3].reshape(2, -1)
    assert torch.allclose(got[:, 2], pixel, rtol=0, atol=1e-15)


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", range(4))
def test_gradcheck_float64(case: int, device: str) -> None:
    n, shapes, heads, channels, queries, points = CASES[case]
    value, shapes_t, starts, loc, weights = make_inputs(n, shapes, heads, channels, min(queries, 4), points, device=device, seed=10 + case)
    inputs = tuple(t.requires_grad_() for t in (value, loc, weights))

    def fn(v: Tensor, l: Tensor, w: Tensor) -> Tensor:
        return ms_deform_attn(v, shapes_t, starts, l, w, impl="kernel")

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_backward_matches_reference(dtype: torch.dtype, tol: float, device: str) -> None:
    args = make_inputs(*CASES[4], dtype=dtype, device=device, seed=3)
    leaves = [t.requires_grad_() for t in (args[0], args[3], args[4])]
    out = ms_deform_attn(*args, impl="kernel")
    grad_out = torch.randn_like(out)
    got = torch.autograd.grad(out, leaves, grad_out)
    want = torch.autograd.grad(ms_deform_attn_pytorch(*args), leaves, grad_out)
    for name, g, w in zip(("value", "locations", "weights"), got, want):
        assert relative_error(g, w) <= tol, name


@needs_ext
def test_non_contiguous_inputs_and_int32_tables() -> None:
    value, shapes, starts, loc, weights = make_inputs(2, [(5, 7), (3, 4)], 3, 4, 6, 2)
    value_t = value.transpose(0, 1).contiguous().transpose(0, 1)
    loc_t = loc.transpose(1, 2).contiguous().transpose(1, 2)
    assert not value_t.is_contiguous() and not loc_t.is_contiguous()
    got = ms_deform_attn(value_t, shapes.int(), starts.int(), loc_t, weights, impl="kernel")
    assert relative_error(got, ms_deform_attn_pytorch(value, shapes, starts, loc, weights)) <= 1e-12


@needs_ext
def test_dispatch_auto_uses_kernel_and_pytorch_is_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(msda.MSDA_IMPL_ENV, raising=False)
    args = make_inputs(*CASES[1])
    args[0].requires_grad_()
    assert type(ms_deform_attn(*args).grad_fn).__name__ == "_MSDAKernelBackward"
    assert type(ms_deform_attn(*args, impl="pytorch").grad_fn).__name__ != "_MSDAKernelBackward"
    assert torch.equal(ms_deform_attn(*args, impl="pytorch"), ms_deform_attn_pytorch(*args))
    with pytest.raises(ValueError, match="impl must be one of"):
        ms_deform_attn(*args, impl="fast")


@needs_ext
def test_env_var_selects_implementation(monkeypatch: pytest.MonkeyPatch) -> None:
    args = make_inputs(*CASES[1])
    args[0].requires_grad_()
    monkeypatch.setenv(msda.MSDA_IMPL_ENV, "pytorch")
    assert type(ms_deform_attn(*args).grad_fn).__name__ != "_MSDAKernelBackward"
    assert type(ms_deform_attn(*args, impl="kernel").grad_fn).__name__ == "_MSDAKernelBackward"
    monkeypatch.setenv(msda.MSDA_IMPL_ENV, "kernel")
    assert type(ms_deform_attn(*args).grad_fn).__name__ == "_MSDAKernelBackward"
    monkeypatch.setenv(msda.MSDA_IMPL_ENV, "fast")
    with pytest.raises(ValueError, match="REFERFORMER_MSDA"):
        ms_deform_attn(*args)


@needs_ext
def test_kernel_forced_on_unsupported_dtype_raises() -> None:
    args = make_inputs(*CASES[1], dtype=torch.float16)
    with pytest.raises(RuntimeError, match="no cpu implementation"):
        ms_deform_attn(*args, impl="kernel")


def test_fallback_without_extension_gives_one_notice(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(msda, "_extension", lambda: (None, "No module named 'referformer_core._C'"))
    monkeypatch.setattr(msda, "_notices_given", set())
    monkeypatch.delenv(msda.MSDA_IMPL_ENV, raising=False)
    args = make_inputs(*CASES[1])
    with caplog.at_level(logging.WARNING, logger="referformer_core.msda"):
        first = ms_deform_attn(*args)
        second = ms_deform_attn(*args)
    assert torch.equal(first, ms_deform_attn_pytorch(*args)) and torch.equal(second, first)
    notices = [r for r in caplog.records if r.name == "referformer_core.msda"]
    assert len(notices) == 1
    assert "not built" in notices[0].getMessage() and "\n" not in notices[0].getMessage()
    with pytest.raises(RuntimeError, match="not built"):
        ms_deform_attn(*args, impl="kernel")


def _replace(args: tuple, index: int, new: object) -> tuple:
    return tuple(new if i == index else a for i, a in enumerate(args))


@pytest.mark.parametrize("impl", ["pytorch", "kernel"])
@pytest.mark.parametrize(
    "mutate,error,match",
    [
        (lambda a: _replace(a, 3, a[3].float()), TypeError, "sampling_locations is torch.float32"),
        (lambda a: _replace(a, 4, a[4].float()), TypeError, "attention_weights is torch.float32"),
        (lambda a: _replace(a, 0, a[0].long()), TypeError, "value must be floating point"),
        (lambda a: _replace(a, 4, a[4].long()), TypeError, "attention_weights must be floating point"),
        (lambda a: _replace(a, 1, a[1].double()), TypeError, "spatial_shapes must be an integer"),
        (lambda a: _replace(a, 0, a[0].numpy()), TypeError, "value must be a torch.Tensor"),
        (lambda a: _replace(a, 3, a[3].to("meta")), ValueError, "sampling_locations is on meta"),
        (lambda a: _replace(a, 0, a[0][0]), ValueError, r"value must be \[N, S, H, C\]"),
        (lambda a: _replace(a, 0, a[0][:, :-1]), ValueError, "cover 66 positions but value has S=65"),
        (lambda a: _replace(a, 1, a[1] + 1), ValueError, "cover"),
        (lambda a: _replace(a, 2, a[2] + 1), ValueError, "level_start_index is"),
        (lambda a: _replace(a, 3, a[3][..., :1]), ValueError, "sampling_locations must be"),
        (lambda a: _replace(a, 3, a[3][:, :, :2]), ValueError, "does not match value"),
        (lambda a: _replace(a, 4, a[4][..., :1]), ValueError, "attention_weights must be"),
        (lambda a: _replace(a, 1, a[1][:3]), ValueError, "does not match value"),
        (lambda a: _replace(a, 1, -a[1]), ValueError, "must be positive"),
    ],
)
def test_bad_input_raises_clear_error(mutate, error: type[Exception], match: str, impl: str) -> None:
    args = mutate(make_inputs(*CASES[1]))
    with pytest.raises(error, match=match):
        ms_deform_attn(*args, impl=impl)


@needs_ext
def test_extension_guards_against_out_of_bounds() -> None:
    """Called directly (bypassing the Python checks), the C++ side still refuses bad tables."""
    value, shapes, starts, loc, weights = make_inputs(*CASES[1])
    taller_last_level = shapes.clone()
    taller_last_level[-1, 0] += 1
    with pytest.raises(RuntimeError, match="cover 75 positions but value has S=66"):
        _C.forward(value, taller_last_level, starts, loc, weights)
    with pytest.raises(RuntimeError, match="level_start_index"):
        _C.forward(value, shapes, starts + 5, loc, weights)
    with pytest.raises(RuntimeError, match="contiguous"):
        _C.forward(value, shapes, starts, loc.transpose(0, 1).contiguous().transpose(0, 1), weights)
    with pytest.raises(RuntimeError, match="grad_output"):
        _C.backward(value, shapes, starts, loc, weights, torch.zeros(1, dtype=value.dtype))


@needs_ext
def test_autocast_mixed_dtypes_run_the_kernel_in_float32() -> None:
    """As the training loop does: bf16 value, float32 locations and weights under autocast."""
    value, shapes, starts, loc, weights = make_inputs(*CASES[1], dtype=torch.float32)
    value = value.bfloat16().requires_grad_()
    loc.requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = ms_deform_attn(value, shapes, starts, loc, weights, impl="kernel")
        want = ms_deform_attn_pytorch(value, shapes, starts, loc, weights)
    assert got.dtype == want.dtype == torch.float32
    assert type(got.grad_fn).__name__ == "_MSDAKernelBackward"
    assert relative_error(got, want) <= 1e-5
    grad_value, grad_loc = torch.autograd.grad(got.sum(), (value, loc))
    assert grad_value.dtype == torch.bfloat16 and grad_loc.dtype == torch.float32
    with pytest.raises(TypeError, match="sampling_locations is torch.float32 but value is torch.bfloat16"):
        ms_deform_attn(value, shapes, starts, loc, weights, impl="kernel")


@needs_ext
def test_empty_queries() -> None:
    value, shapes, starts, loc, weights = make_inputs(2, [(3, 4)], 2, 3, 0, 2)
    out = ms_deform_attn(value.requires_grad_(), shapes, starts, loc, weights, impl="kernel")
    assert out.shape == (2, 0, 6)
    out.sum().backward()
    assert torch.equal(value.grad, torch.zeros_like(value))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
@needs_ext
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_half_precision_close_to_float32(dtype: torch.dtype) -> None:
    """fp16/bf16 inputs, fp32 accumulation: the kernel's output is the fp32 reference on the same (rounded) inputs,
    up to rounding the output itself. (Against the unrounded fp32 inputs the error is dominated by rounding the
    sampling locations: 0.12 of the largest output in bf16 on the H200, not a property of the kernel.)"""
    args = make_inputs(*CASES[4], dtype=torch.float32, device="cuda")
    low = tuple(t.to(dtype) if t.is_floating_point() else t for t in args)
    want = ms_deform_attn_pytorch(*(t.float() if t.is_floating_point() else t for t in low))
    got = ms_deform_attn(*low, impl="kernel")
    assert got.dtype == dtype
    assert relative_error(got, want) <= (1e-3 if dtype == torch.float16 else 8e-3)
    leaves = [t.requires_grad_() for t in (low[0], low[3], low[4])]
    grads = torch.autograd.grad(ms_deform_attn(*low, impl="kernel").float().sum(), leaves)
    assert all(g.dtype == dtype and torch.isfinite(g).all() for g in grads)


@pytest.mark.slow
def test_benchmark_reports_cpu_speedup(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import bench_msda

    bench_msda.main(["--repeat", "1", "--devices", "cpu", "--json"])
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["cpu_forward_speedup_encoder"] >= 3


def rounded_to(args: tuple, dtype: torch.dtype) -> tuple:
    """The floating tensors of ``args`` rounded to ``dtype``."""
    return tuple(t.to(dtype) if t.is_floating_point() else t for t in args)


def assert_within_bf16_rounding(got: Tensor, want: Tensor, atol_rel: float = 1e-5) -> None:
    """Elementwise: ``got`` is ``want`` rounded once to bfloat16 (half an ulp: at most 2**-8 relative), up to
    float32 summation differences (``atol_rel * max|want|``). Sums carried in bfloat16 would miss this by far."""
    got, want = got.detach().double(), want.detach().double()
    bound = 2.0**-8 * want.abs() + atol_rel * want.abs().max()
    excess = ((got - want).abs() - bound).max().item()
    assert excess <= 0, f"off by {excess:.3e} beyond one bf16 rounding"


@needs_ext
def test_cpu_kernel_supports_bfloat16_but_not_float16() -> None:
    assert msda.kernel_supports("cpu", torch.bfloat16)
    assert not msda.kernel_supports("cpu", torch.float16)
    assert "bfloat16" in _C.cpu_dtypes()


@needs_ext
@pytest.mark.parametrize("case", range(len(CASES)))
def test_cpu_bfloat16_forward_is_the_float32_result_rounded_once(case: int) -> None:
    """bf16 inputs, fp32 sums: the float32 reference on the same bf16-rounded inputs, rounded to bf16."""
    low = rounded_to(make_inputs(*CASES[case], dtype=torch.float32, seed=20 + case), torch.bfloat16)
    want = ms_deform_attn_pytorch(*rounded_to(low, torch.float32))
    got = ms_deform_attn(*low, impl="kernel")
    assert got.dtype == torch.bfloat16 and got.shape == want.shape
    assert_within_bf16_rounding(got, want)


@needs_ext
def test_cpu_bfloat16_backward_matches_float32_reference_on_rounded_inputs() -> None:
    low = rounded_to(make_inputs(*CASES[4], dtype=torch.float32, seed=5), torch.bfloat16)
    grad_out = torch.randn(1, 40, 8 * 32, generator=torch.Generator().manual_seed(6)).bfloat16()
    low_leaves = [t.requires_grad_() for t in (low[0], low[3], low[4])]
    got = torch.autograd.grad(ms_deform_attn(*low, impl="kernel"), low_leaves, grad_out)
    value, shapes, starts, loc, weights = rounded_to(low, torch.float32)
    leaves = [t.detach().requires_grad_() for t in (value, loc, weights)]
    want = torch.autograd.grad(ms_deform_attn_pytorch(leaves[0], shapes, starts, leaves[1], leaves[2]), leaves,
                               grad_out.float())
    for name, g, w in zip(("value", "locations", "weights"), got, want):
        assert g.dtype == torch.bfloat16, name
        assert_within_bf16_rounding(g, w, atol_rel=1e-4)


@needs_ext
def test_cpu_bfloat16_value_with_float32_locations_and_weights() -> None:
    """The autocast layout, called directly: a bf16 value read as is, float32 output and location/weight gradients
    equal to the float32 kernel's on the upcast value (only summation order differs)."""
    value, shapes, starts, loc, weights = make_inputs(*CASES[4], dtype=torch.float32, seed=7)
    value = value.bfloat16()
    out = _C.forward(value, shapes, starts, loc, weights)
    want = _C.forward(value.float(), shapes, starts, loc, weights)
    assert out.dtype == torch.float32 and relative_error(out, want) <= 1e-6
    grad_out = torch.randn_like(out)
    grads = _C.backward(value, shapes, starts, loc, weights, grad_out)
    want_grads = _C.backward(value.float(), shapes, starts, loc, weights, grad_out)
    assert [g.dtype for g in grads] == [torch.bfloat16, torch.float32, torch.float32]
    assert_within_bf16_rounding(grads[0], want_grads[0])
    assert relative_error(grads[1], want_grads[1]) <= 1e-5 and relative_error(grads[2], want_grads[2]) <= 1e-5
    with pytest.raises(RuntimeError, match="must share value's dtype, or be float32"):
        _C.forward(value.float(), shapes, starts, loc.bfloat16(), weights.bfloat16())
    with pytest.raises(RuntimeError, match="must share value's dtype, or be float32"):
        _C.forward(value, shapes, starts, loc.double(), weights.double())
    with pytest.raises(RuntimeError, match="grad_output"):
        _C.backward(value, shapes, starts, loc, weights, grad_out.bfloat16())


class _SpyExtension:
    """Wraps ``referformer_core._C`` and records the dtypes each ``forward`` call receives."""

    def __init__(self) -> None:
        self.calls: list[tuple[torch.dtype, torch.dtype, torch.dtype]] = []

    def __getattr__(self, name: str) -> object:
        return getattr(_C, name)

    def forward(self, value: Tensor, shapes: Tensor, starts: Tensor, loc: Tensor, weights: Tensor) -> Tensor:
        self.calls.append((value.dtype, loc.dtype, weights.dtype))
        return _C.forward(value, shapes, starts, loc, weights)


@needs_ext
def test_cpu_autocast_hands_the_bfloat16_value_to_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = _SpyExtension()
    monkeypatch.setattr(msda, "_extension", lambda: (spy, ""))
    monkeypatch.delenv(msda.MSDA_IMPL_ENV, raising=False)
    value, shapes, starts, loc, weights = make_inputs(*CASES[2], dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = ms_deform_attn(value.bfloat16(), shapes, starts, loc, weights.bfloat16())
    assert spy.calls == [(torch.bfloat16, torch.float32, torch.float32)]
    assert out.dtype == torch.float32
    assert relative_error(out, ms_deform_attn_pytorch(value.bfloat16().float(), shapes, starts, loc,
                                                      weights.bfloat16().float())) <= 1e-5
    spy.calls.clear()
    bf16 = rounded_to((value, shapes, starts, loc, weights), torch.bfloat16)
    assert ms_deform_attn(*bf16).dtype == torch.bfloat16
    assert spy.calls == [(torch.bfloat16,) * 3]
