"""Our model reproduces the official ReferFormer outputs stored in the parity fixtures."""
from pathlib import Path

import pytest

from referformer_core.parity import Fixture, compare, main, run_fixture

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.mark.parametrize("backbone", ["resnet50", "swin_t_p4w7", "video_swin_t_p4w7"])
def test_matches_official_outputs(backbone):
    fixture = Fixture.load(FIXTURES / f"fixture_{backbone}.pt")
    ours = run_fixture(fixture)
    rows, ok = compare(ours, fixture.data)
    failing = [r for r in rows if not r[3]]
    assert ok, f"outside tolerance: {failing}"
    assert ours["pred_masks"].shape == fixture.data["pred_masks"].shape


def test_compare_flags_a_perturbed_output():
    fixture = Fixture.load(FIXTURES / "fixture_resnet50.pt")
    ours = {k: v.clone() for k, v in fixture.data.items() if k != "meta"}
    ours["pred_boxes"][0, 0, 0, 0] += 1e-3
    rows, ok = compare(ours, fixture.data)
    assert not ok
    assert [r[0] for r in rows if not r[3]] == ["pred_boxes"]


def test_parity_command_rejects_a_file_that_is_not_a_fixture(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a fixture")
    assert main([str(bad)]) == 2
    assert "cannot read parity fixture" in capsys.readouterr().err


def test_bfloat16_autocast_passes_the_reduced_precision_check_but_not_the_float32_one():
    fixture = Fixture.load(FIXTURES / "fixture_resnet50.pt")
    ours = run_fixture(fixture, autocast="bf16")
    assert compare(ours, fixture.data, reduced_precision=True)[1]
    assert not compare(ours, fixture.data)[1]
