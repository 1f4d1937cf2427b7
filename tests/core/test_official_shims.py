"""The official ReferFormer code run through ``benchmarks/official_shims.py``, and ``bench_model``'s report.

The official checkout is never part of this project: the tests that need it look for it in
``$REFERFORMER_OFFICIAL_DIR`` or ``/tmp/official_referformer`` and are skipped when it is absent.
"""
import json
import statistics
import sys
from pathlib import Path

import pytest
import torch

from benchmarks import bench_model
from benchmarks.official_shims import (
    VERSION_FOR_OFFICIAL_CHECK, FixedTokenizer, OfficialCodeError, build_official_model, check_official_dir,
    copy_weights, find_official_dir, max_abs_diff, run_official, run_ours)
from referformer_core.parity import Fixture

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
OFFICIAL = find_official_dir()
needs_official = pytest.mark.skipif(OFFICIAL is None, reason="no official ReferFormer checkout "
                                    "(set REFERFORMER_OFFICIAL_DIR or extract it to /tmp/official_referformer)")


@pytest.fixture(scope="module")
def official_and_fixture(recipe_model):
    """The shimmed official model holding the recipe model's weights, and the ResNet-50 parity fixture."""
    fixture = Fixture.load(FIXTURES / "fixture_resnet50.pt")
    official = build_official_model(OFFICIAL, "resnet50", fixture.config().text_encoder)
    copy_weights(recipe_model, official)
    return official, fixture


def fixture_input(fixture: Fixture) -> tuple[torch.Tensor, torch.Tensor]:
    meta = fixture.meta
    frames = torch.randn(meta["T"], 3, meta["H"], meta["W"], generator=torch.Generator().manual_seed(0))
    return frames, fixture.data["input_tokens"].view(1, -1)


@needs_official
def test_shimmed_official_model_agrees_with_ours_and_with_the_stored_official_outputs(official_and_fixture,
                                                                                        recipe_model):
    official, fixture = official_and_fixture
    frames, ids = fixture_input(fixture)
    theirs = run_official(official, frames, ids)
    ours = run_ours(recipe_model, frames, ids)
    assert theirs["pred_masks"].shape == ours["pred_masks"].shape == fixture.data["pred_masks"].shape
    diffs = max_abs_diff(ours, theirs)
    for key, diff in diffs.items():
        assert diff <= 1e-4 + 1e-5 * theirs[key].abs().max().item(), (key, diffs)
    stored = {k: fixture.data[k] for k in ("pred_logits", "pred_boxes", "pred_masks")}
    for key, diff in max_abs_diff(theirs, stored).items():
        assert diff <= 1e-4 + 1e-5 * stored[key].abs().max().item(), key
    other_ids = ids.clone()
    other_ids[0, 1:-1] = torch.arange(3, 3 + ids.shape[1] - 2)
    assert max_abs_diff(run_official(official, frames, other_ids), theirs)["pred_logits"] > 1e-4, \
        "the official model reads the token ids it is given"


@needs_official
def test_official_packages_do_not_stay_in_sys_modules(official_and_fixture):
    for name in ("models", "util", "opts", "MultiScaleDeformableAttention"):
        module = sys.modules.get(name)
        assert module is None or not str(getattr(module, "__file__", "") or "").startswith(str(OFFICIAL)), name
    assert str(OFFICIAL) not in sys.path
    import torchvision

    assert torchvision.__version__ != VERSION_FOR_OFFICIAL_CHECK, "the version shim is undone after the build"


def test_a_directory_without_the_official_code_is_refused(tmp_path, capsys):
    with pytest.raises(OfficialCodeError, match="not a checkout"):
        check_official_dir(tmp_path)
    assert bench_model.main(["--official", str(tmp_path)]) == 2
    assert "not a checkout" in capsys.readouterr().err


def test_fixed_tokenizer_returns_the_given_ids_for_as_many_captions():
    ids = torch.tensor([[0, 5, 6, 2]])
    encoded = FixedTokenizer(ids).batch_encode_plus(["a caption"], padding="longest", return_tensors="pt")
    assert torch.equal(encoded["input_ids"], ids) and torch.equal(encoded.attention_mask, torch.ones_like(ids))
    with pytest.raises(OfficialCodeError):
        FixedTokenizer(ids).batch_encode_plus(["one", "two"])


@pytest.fixture
def fast_measures(monkeypatch):
    """bench_model with its measurements replaced by fixed numbers (the real ones take minutes)."""
    times = {(1, 1, None): 2.0, (5, 1, None): 10.0, (5, 3, None): 25.0, (5, 1, torch.bfloat16): 5.0}
    monkeypatch.setattr(bench_model, "gemm_peak_gflops", lambda threads: 100.0)
    monkeypatch.setattr(bench_model, "build_model", lambda: None)
    monkeypatch.setattr(bench_model, "time_forward", lambda model, t, n, repeats, autocast=None: times[(t, n, autocast)])
    monkeypatch.setattr(bench_model, "bf16_mask_agreement", lambda model: 0.998)
    monkeypatch.setattr(bench_model, "peak_rss_gb", lambda frames, window: (3.0 if window == "36" else 5.0) + frames * 0)
    calls = []

    def fake_fresh(which, official_dir, threads, out_path):
        calls.append(which)
        torch.save({"pred_masks": torch.full((1, 5, 5, 4, 4), 50.0 + (which == "official") * 2e-4)}, out_path)
        return {"ours": 9.0, "official": 18.0, "official-reuse": 11.0, "ours-bf16": 4.0}[which] + len(calls) * 0.01

    monkeypatch.setattr(bench_model, "fresh_process_t5", fake_fresh)
    return calls


def test_without_official_no_ratio_is_printed_and_the_json_line_parses(fast_measures, capsys):
    assert bench_model.main(["--json", "--long-frames", "40"]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    report = json.loads(lines[-1])
    assert report["t5_360x640_s"] == 10.0 and report["t1_360x640_s"] == 2.0
    assert report["t5_fraction_of_peak"] == pytest.approx(920 / 10 / 100)
    assert report["t5_3obj_over_1obj"] == 2.5
    assert report["peak_rss_gb_36f"] == 3.0 and report["peak_rss_gb_40f"] == 5.0
    assert report["t5_bf16_s"] == 5.0 and report["bf16_mask_agreement"] == 0.998
    assert not [k for k in report if "official" in k or "speedup" in k]
    table = "\n".join(lines[:-1]).lower()
    assert "official" not in table and "speedup" not in table
    assert fast_measures == [], "no official process is started"


@pytest.fixture
def fake_official(tmp_path) -> Path:
    """A folder with the files ``check_official_dir`` looks for (the fresh processes are stubbed)."""
    fake = tmp_path / "official"
    for rel in ("models/referformer.py", "models/ops/functions/ms_deform_attn_func.py", "opts.py", "util/misc.py"):
        (fake / rel).parent.mkdir(parents=True, exist_ok=True)
        (fake / rel).write_text("")
    return fake


def test_with_official_the_ratio_comes_from_alternating_fresh_processes(fast_measures, capsys, fake_official,
                                                                         monkeypatch):
    monkeypatch.setattr(bench_model, "native_bf16_cpu", lambda: False)
    assert bench_model.main(["--json", "--official", str(fake_official), "--skip-memory", "--repeats", "3"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out.strip().splitlines()[-1])
    assert fast_measures == ["ours", "official", "official-reuse"] * 3
    assert report["t5_fresh_process_s"] == pytest.approx(9.04)
    assert report["official_t5_s"] == pytest.approx(18.05)
    assert report["t5_fresh_process_runs_s"] == pytest.approx([9.01, 9.04, 9.07])
    assert report["official_t5_runs_s"] == pytest.approx([18.02, 18.05, 18.08])
    assert report["official_reuse_t5_runs_s"] == pytest.approx([11.03, 11.06, 11.09])
    assert report["official_reuse_t5_s"] == pytest.approx(11.06)
    assert report["speedup_vs_official"] == pytest.approx(18.05 / 9.04)
    assert report["official_pred_masks_max_abs_diff"] == pytest.approx(2e-4, rel=0.05)
    assert report["t5_360x640_s"] == 10.0 and "peak_rss_gb_36f" not in report
    assert "speedup vs official" in out and "within the parity tolerance" in out
    assert not [k for k in report if "bf16_fresh" in k or "bf16_speedup" in k], "bf16 is not timed where emulated"


def test_with_official_on_a_native_bf16_cpu_bf16_is_timed_in_the_same_rounds(fast_measures, capsys, fake_official,
                                                                             monkeypatch):
    monkeypatch.setattr(bench_model, "native_bf16_cpu", lambda: True)
    assert bench_model.main(["--json", "--official", str(fake_official), "--comparison-only", "--repeats", "2"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out.strip().splitlines()[-1])
    assert fast_measures == ["ours", "official", "official-reuse", "ours-bf16"] * 2
    assert report["t5_bf16_fresh_process_runs_s"] == pytest.approx([4.04, 4.08])
    assert report["bf16_speedup_vs_official"] == pytest.approx(statistics.median([18.02, 18.06]) / 4.06)
    assert report["bf16_fresh_mask_agreement"] == 1.0
    assert "bf16 speedup vs official" in out
