"""Our state dict must have exactly the official checkpoints' keys, shapes and buffer flags."""
import json
from pathlib import Path

import pytest
import torch

from referformer_core.config import get_config
from referformer_core.referformer import ReferFormer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def state_manifest(model: torch.nn.Module) -> list[tuple[str, list[int], bool]]:
    buffers = {name for name, _ in model.named_buffers()}
    return [(k, list(v.shape), k in buffers) for k, v in model.state_dict().items()]


@pytest.mark.parametrize("backbone", ["resnet50", "resnet101", "swin_t_p4w7", "swin_l_p4w7", "video_swin_t_p4w7", "video_swin_b_p4w7"])
def test_state_dict_matches_official_manifest(backbone):
    manifest = json.loads((FIXTURES / f"keys_{backbone}.json").read_text())
    with torch.device("meta"):
        model = ReferFormer(get_config(backbone))
    ours = state_manifest(model)
    official = [(k["key"], k["shape"], k["buffer"]) for k in manifest["keys"]]
    assert sorted(ours) == sorted(official)
    assert [k for k, _, _ in ours] == [k for k, _, _ in official]
