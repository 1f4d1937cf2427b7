"""Resume: a run stopped after N steps and resumed ends with exactly the weights of an uninterrupted run;
checkpoints are in the official layout and load safely."""
import argparse
import warnings

import pytest
import torch

from referformer_core.checkpoint import load_checkpoint, save_checkpoint
from referformer_core.config import get_config
from referformer_core.errors import CheckpointError
from referformer_core.referformer import ReferFormer
from train.trainer import fit


def _fit_quietly(config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fit(config)


def _load(path):
    with torch.serialization.safe_globals([argparse.Namespace]):
        return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture
def resume_config(tiny_config):
    """Two epochs of two steps, augmentation on, dropout active, an lr drop after epoch 0."""
    return tiny_config.replace(epochs=2, augment=True, train_scales=(64, 72), max_size=112, lr_drop=(1,), lr=3e-4)


def test_stop_and_resume_reaches_the_uninterrupted_weights(resume_config, tmp_path):
    full = _fit_quietly(resume_config.replace(out=str(tmp_path / "full")))
    assert full.global_step == 4 and not full.stopped_early

    stopped = _fit_quietly(resume_config.replace(out=str(tmp_path / "split"), max_steps=3))
    assert stopped.stopped_early and stopped.global_step == 3
    mid = _load(tmp_path / "split" / "checkpoint.pth")
    assert (mid["epoch"], mid["next_step"], mid["global_step"]) == (0, 1, 3)

    resumed = _fit_quietly(resume_config.replace(out=str(tmp_path / "split"),
                                                 resume=str(tmp_path / "split" / "checkpoint.pth")))
    assert resumed.global_step == 4 and not resumed.stopped_early
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history[3:]]

    a, b = _load(tmp_path / "full" / "checkpoint.pth"), _load(tmp_path / "split" / "checkpoint.pth")
    assert a["model"].keys() == b["model"].keys()
    different = [k for k in a["model"] if not torch.equal(a["model"][k], b["model"][k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a["lr_scheduler"] == b["lr_scheduler"] and a["epoch"] == b["epoch"] == 1
    assert [g["lr"] for g in a["optimizer"]["param_groups"]] == pytest.approx([3e-5, 5e-6, 1e-6, 3e-5])


def test_checkpoint_has_the_official_layout_and_starts_a_new_run(resume_config, tmp_path):
    run = resume_config.replace(out=str(tmp_path / "a"), epochs=1)
    _fit_quietly(run)
    data = _load(tmp_path / "a" / "checkpoint.pth")
    assert {"model", "optimizer", "lr_scheduler", "epoch", "args"} <= data.keys()
    assert isinstance(data["args"], argparse.Namespace) and data["args"].lr == 3e-4
    assert len(data["optimizer"]["param_groups"]) == 4
    model = load_checkpoint(tmp_path / "a" / "checkpoint.pth")
    assert model.config.hidden_dim == 64

    again = _fit_quietly(resume_config.replace(out=str(tmp_path / "b"), epochs=1,
                                               pretrained=str(tmp_path / "a" / "checkpoint.pth")))
    assert again.global_step == 2


def test_resume_from_weights_only_file_is_one_readable_error(resume_config, tmp_path):
    save_checkpoint(ReferFormer(get_config("tiny")), tmp_path / "weights.pth")
    with pytest.raises(CheckpointError, match="cannot be resumed.*use --pretrained"):
        _fit_quietly(resume_config.replace(resume=str(tmp_path / "weights.pth")))
