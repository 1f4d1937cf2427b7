"""Run settings (referformer_core.settings): one frozen value, filled from the checkpoint's keys plus overrides."""
from dataclasses import FrozenInstanceError

import pytest
import torch

from referformer_core.errors import ConfigError, ReferFormerError
from referformer_core.settings import (DEFAULT_MAX_MEMORY, SHORT_SIDE, WINDOW, RunSettings, resolve_settings,
                                       settings_from_flags, with_options)


def test_settings_are_frozen_and_hashable_so_a_model_cache_can_key_on_them():
    settings = RunSettings("a.pth", device="cpu", window=12)
    with pytest.raises(FrozenInstanceError):
        settings.window = 3
    assert {settings: 1}[RunSettings("a.pth", window=12)] == 1
    assert RunSettings("a.pth", window=12) != RunSettings("a.pth", window=13)


def test_resolving_fills_only_what_was_left_open():
    data = {"short_side": 192, "window": 8, "refine_masks": True, "text_encoder_weights": "all-minilm-l6-v2"}
    filled = resolve_settings(RunSettings("m.pth"), data, "resnet50")
    assert (filled.text_encoder, filled.short_side, filled.window, filled.refine, filled.precision) == \
        ("all-minilm-l6-v2", 192, 8, True, "fp32")
    assert filled.resolved and filled.max_memory == DEFAULT_MAX_MEMORY
    kept = resolve_settings(RunSettings("m.pth", "tok", short_side=300, window=0, refine=False, precision="bf16"),
                            data, "resnet50")
    assert (kept.text_encoder, kept.short_side, kept.window, kept.refine, kept.precision) == \
        ("tok", 300, 0, False, "bf16")
    assert kept.frames_per_pass is None and kept.autocast_dtype == torch.bfloat16
    official = resolve_settings(RunSettings("m.pth"), {}, "resnet50")
    assert (official.text_encoder, official.short_side, official.window, official.refine) == \
        ("roberta-base", SHORT_SIDE, WINDOW, False)


def test_a_precision_the_device_cannot_run_is_one_readable_error():
    with pytest.raises(ReferFormerError, match="fp16 needs a CUDA device"):
        resolve_settings(RunSettings(precision="fp16"), {}, "resnet50")


def test_flags_map_onto_settings_in_one_place():
    assert settings_from_flags().budget == DEFAULT_MAX_MEMORY and settings_from_flags().window is None
    assert settings_from_flags(max_memory=0).budget is None
    assert settings_from_flags(max_memory=2.5).budget == 2.5
    explicit = settings_from_flags(window=4, max_memory=1)
    assert (explicit.window, explicit.budget) == (4, None)  # an explicit window wins over the budget
    assert settings_from_flags(window=0).frames_per_pass is None


def test_the_predictors_keyword_names_map_onto_settings():
    base = RunSettings()
    assert with_options(base) == base
    assert (with_options(base, window=None).window, with_options(base, window=None).budget) == (0, None)
    assert (with_options(base, window=5).window, with_options(base, window=5).budget) == (5, None)
    assert with_options(base, max_window=7).window == 7 and with_options(base, max_window=7).budget == DEFAULT_MAX_MEMORY
    assert with_options(base, max_memory=None).budget is None
    assert with_options(base, autocast=None).precision == "fp32"
    assert with_options(base, autocast="bf16").precision == "bf16"
    assert with_options(base, refine_masks=True).refine is True
    assert with_options(base, device=torch.device("cpu"), short_side=64).device == "cpu"
    with pytest.raises(ValueError, match="window"):
        with_options(base, window="budget")
    with pytest.raises(ValueError, match="max_memory"):
        with_options(base, max_memory=0)
    with pytest.raises(TypeError, match="unknown run setting"):
        with_options(base, colour="red")


@pytest.mark.parametrize("fields, message", [
    ({"short_side": 0}, "short_side"), ({"window": -1}, "window"), ({"max_memory": -1.0}, "max_memory"),
    ({"threshold": 1.5}, "threshold"), ({"first_window": 0}, "first_window"),
])
def test_unusable_settings_are_refused(fields, message):
    with pytest.raises(ConfigError, match=message):
        RunSettings(**fields)
