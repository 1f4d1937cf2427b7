"""Swin and Video-Swin backbones: official names and shapes, official numbers, padding and frame handling."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from referformer_core.backbones.swin import SWIN_CONFIGS, SwinBackbone, shifted_window_mask
from referformer_core.backbones.video_swin import (
    VIDEO_SWIN_CONFIGS,
    VideoSwinBackbone,
    clamp_window,
    shifted_window_mask_3d,
)
from referformer_core.parity import recipe_tensor

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
STRIDES = (4, 8, 16, 32)


def build(name: str) -> nn.Module:
    return VideoSwinBackbone(name) if name.startswith("video_swin") else SwinBackbone(name)


def with_recipe_weights(backbone: nn.Module) -> nn.Module:
    """Fill the backbone as the fixtures' recipe fills it inside the whole model (names ``backbone.0.*``)."""
    state = backbone.state_dict()
    backbone.load_state_dict({k: recipe_tensor("backbone.0." + k, t) for k, t in state.items()}, strict=True)
    return backbone.eval()


def frames(n: int, h: int, w: int, seed: int) -> Tensor:
    return torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def swin_t() -> nn.Module:
    return with_recipe_weights(SwinBackbone("swin_t_p4w7"))


@pytest.fixture(scope="module")
def video_swin_t() -> nn.Module:
    return with_recipe_weights(VideoSwinBackbone("video_swin_t_p4w7"))


@pytest.mark.parametrize("name", ["swin_t_p4w7", "swin_l_p4w7", "video_swin_t_p4w7", "video_swin_b_p4w7"])
def test_state_dict_is_the_official_backbone_entries_in_order(name: str) -> None:
    manifest = json.loads((FIXTURES / f"keys_{name}.json").read_text())["keys"]
    expected = [(e["key"], e["shape"], e["dtype"], e["buffer"]) for e in manifest if e["key"].startswith("backbone.0.")]
    with torch.device("meta"):
        backbone = build(name)
    buffers = {k for k, _ in backbone.named_buffers()}
    ours = [("backbone.0." + k, list(t.shape), str(t.dtype).removeprefix("torch."), k in buffers)
            for k, t in backbone.state_dict().items()]
    assert ours == expected


@pytest.mark.parametrize("name", list(SWIN_CONFIGS) + list(VIDEO_SWIN_CONFIGS))
def test_num_channels_double_per_stage_from_embed_dim(name: str) -> None:
    with torch.device("meta"):
        backbone = build(name)
    embed = backbone.body.patch_embed.proj.out_channels
    assert backbone.num_channels == [embed, 2 * embed, 4 * embed, 8 * embed]
    assert backbone.strides == list(STRIDES)


def check_against_official(backbone: nn.Module, fixture: dict, case: str) -> None:
    """Compare our outputs with the official summaries stored in ``fixture`` for one input case."""
    recorded = fixture["cases"][case]
    n, _, h, w = recorded["input_shape"]
    x = frames(n, h, w, recorded["input_seed"])
    assert torch.equal(x.flatten()[:8], recorded["input_head"]), "torch's random generator changed"
    with torch.no_grad():
        levels = backbone(x, recorded["num_frames"])
    assert len(levels) == 4
    for level, stride, official in zip(levels, STRIDES, recorded["levels"]):
        assert level.shape[2:] == (math.ceil(h / stride), math.ceil(w / stride))
        # float32 vs float64 of these outputs differ by < 1e-5, so other CPUs stay well inside this
        atol = 2e-5 + 2e-6 * official["abs_max"].item()
        ours = {
            "channel_mean": level.mean(dim=(0, 2, 3)),
            "frame_norm": level.flatten(1).norm(dim=1),
            "top_left": level[:, :8, :3, :3],
            "bottom_right": level[:, -8:, -3:, -3:],
            "abs_max": level.abs().max(),
        }
        for key, value in ours.items():
            torch.testing.assert_close(value, official[key], rtol=1e-5, atol=atol, msg=lambda m: f"{key}: {m}")


@pytest.mark.parametrize("case", ["t3_128x160", "odd_2clips_37x51"])
def test_swin_t_matches_official_outputs(swin_t: nn.Module, case: str) -> None:
    check_against_official(swin_t, torch.load(FIXTURES / "backbones" / "swin_t_p4w7.pt"), case)


@pytest.mark.parametrize("case", ["t3_128x160", "odd_2clips_37x51"])
def test_video_swin_t_matches_official_outputs(video_swin_t: nn.Module, case: str) -> None:
    check_against_official(video_swin_t, torch.load(FIXTURES / "backbones" / "video_swin_t_p4w7.pt"), case)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["swin_l_p4w7", "video_swin_b_p4w7"])
def test_large_backbones_match_official_outputs(name: str) -> None:
    backbone = with_recipe_weights(build(name))
    check_against_official(backbone, torch.load(FIXTURES / "backbones" / f"{name}.pt"), "t3_128x160")


@pytest.mark.parametrize("h,w", [(37, 51), (5, 9), (64, 33)])
def test_output_sizes_are_ceil_of_input_over_stride(swin_t: nn.Module, video_swin_t: nn.Module, h: int, w: int) -> None:
    x = frames(2, h, w, seed=3)
    for backbone in (swin_t, video_swin_t):
        with torch.no_grad():
            levels = backbone(x, 2)
        assert [tuple(level.shape) for level in levels] == [
            (2, c, math.ceil(h / s), math.ceil(w / s)) for c, s in zip(backbone.num_channels, STRIDES)
        ]


def test_input_is_zero_padded_to_the_patch_size(swin_t: nn.Module, video_swin_t: nn.Module) -> None:
    """A 126x157 input gives exactly the features of the same frames zero-padded to 128x160."""
    x = frames(2, 126, 157, seed=4)
    padded = F.pad(x, (0, 3, 0, 2))
    for backbone in (swin_t, video_swin_t):
        with torch.no_grad():
            for a, b in zip(backbone(x, 2), backbone(padded, 2)):
                assert torch.equal(a, b)


def test_swin_encodes_frames_independently(swin_t: nn.Module) -> None:
    x = frames(3, 64, 96, seed=5)
    changed = x.clone()
    changed[2] = frames(1, 64, 96, seed=6)[0]
    with torch.no_grad():
        out, out_changed, first_alone = swin_t(x, 3), swin_t(changed, 3), swin_t(x[:1], 1)
    for a, b, c in zip(out, out_changed, first_alone):
        torch.testing.assert_close(a[:2], b[:2], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(a[:1], c, rtol=1e-5, atol=1e-5)
        assert not torch.allclose(a[2], b[2])


def test_video_swin_mixes_frames_within_a_clip_only(video_swin_t: nn.Module) -> None:
    """Two 3-frame clips in one batch: changing frame 2 changes frames 0-1 of its clip, not the other clip."""
    x = frames(6, 64, 96, seed=7)
    changed = x.clone()
    changed[2] = frames(1, 64, 96, seed=8)[0]
    with torch.no_grad():
        out, out_changed, second_clip_alone = video_swin_t(x, 3), video_swin_t(changed, 3), video_swin_t(x[3:], 3)
    for a, b, c in zip(out, out_changed, second_clip_alone):
        assert not torch.allclose(a[0], b[0], atol=1e-4)
        torch.testing.assert_close(a[3:], b[3:], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(a[3:], c, rtol=1e-5, atol=1e-5)


def test_video_swin_rejects_a_batch_that_is_not_whole_clips(video_swin_t: nn.Module) -> None:
    with pytest.raises(ValueError, match="3-frame clips"):
        video_swin_t(frames(4, 32, 32, seed=0), 3)


@pytest.mark.parametrize("cls,name", [(SwinBackbone, "video_swin_t_p4w7"), (VideoSwinBackbone, "swin_t_p4w7")])
def test_unknown_names_are_rejected(cls: type[nn.Module], name: str) -> None:
    with pytest.raises(ValueError, match="unknown"):
        cls(name)


def test_drop_path_is_active_in_training_and_off_in_eval() -> None:
    backbone = with_recipe_weights(SwinBackbone("swin_t_p4w7"))
    x = frames(2, 32, 32, seed=9)
    with torch.no_grad():
        backbone.train()
        torch.manual_seed(0)
        first = backbone(x, 2)[3]
        second = backbone(x, 2)[3]
        backbone.eval()
        evaluated = [backbone(x, 2)[3] for _ in range(2)]
    assert not torch.equal(first, second)
    assert torch.equal(evaluated[0], evaluated[1])


def test_shift_mask_separates_wrapped_regions() -> None:
    """14x14 tokens, window 7, shift 3: the top-left window is one region; the last window mixes 4 regions."""
    mask = shifted_window_mask(14, 14, window_size=7, shift_size=3, device=torch.device("cpu"))
    assert mask.shape == (4, 49, 49)
    assert set(mask.unique().tolist()) == {0.0, -100.0}
    assert torch.equal(mask, mask.transpose(1, 2))
    assert (mask[0] == 0).all()
    blocked_per_token = (mask[3] != 0).sum(dim=1)
    assert blocked_per_token[0].item() == 49 - 16  # token (0, 0) of the last window shares a 4x4 region


def test_video_window_is_clamped_to_small_dimensions() -> None:
    assert clamp_window((3, 16, 20), (8, 7, 7), (4, 3, 3)) == ((3, 7, 7), (0, 3, 3))
    assert clamp_window((9, 4, 7), (8, 7, 7), (4, 3, 3)) == ((8, 4, 7), (4, 0, 0))
    mask = shifted_window_mask_3d((3, 14, 14), (3, 7, 7), (0, 3, 3), torch.device("cpu"))
    assert mask.shape == (4, 147, 147)
    assert (mask[0] == 0).all()
