"""Training a ``SentenceRefiner``: added to a pretrained model, in its own optimiser group, kept by checkpoints."""
import pytest
import torch

from referformer_core.checkpoint import load_checkpoint, save_checkpoint
from referformer_core.config import get_config
from referformer_core.referformer import ReferFormer
from train.__main__ import main as train_main
from train.engine import PARAM_GROUPS, REFINER_GROUP, build_optimizer
from train.trainer import build_model, fit


@pytest.fixture
def pretrained(tmp_path) -> str:
    torch.manual_seed(0)
    path = tmp_path / "pretrained.pth"
    save_checkpoint(ReferFormer(get_config("tiny")), path)
    return str(path)


def test_a_pretrained_model_gains_a_refiner_in_a_fifth_optimiser_group(tiny_config, pretrained):
    plain = build_model(tiny_config.replace(pretrained=pretrained))
    assert plain.sentence_refiner is None
    assert len(build_optimizer(plain, tiny_config).param_groups) == len(PARAM_GROUPS)

    config = tiny_config.replace(pretrained=pretrained, sentence_refiner_layers=2, lr_sentence_refiner=3e-4)
    model = build_model(config)
    assert model.config.sentence_refiner_layers == 2 and len(model.sentence_refiner.layers) == 2
    groups = build_optimizer(model, config).param_groups
    assert len(groups) == len(PARAM_GROUPS) + 1 and groups[-1]["lr"] == 3e-4
    refiner_ids = {id(p) for p in model.sentence_refiner.parameters()}
    assert {id(p) for p in groups[-1]["params"]} == refiner_ids
    assert not refiner_ids & {id(p) for g in groups[:-1] for p in g["params"]}
    assert REFINER_GROUP == "sentence_refiner"


def test_training_moves_the_refiner_and_its_checkpoint_keeps_it(tiny_config, pretrained):
    config = tiny_config.replace(pretrained=pretrained, sentence_refiner_layers=1, max_steps=2)
    report = fit(config)
    trained = load_checkpoint(report.checkpoint)
    assert trained.config.sentence_refiner_layers == 1
    assert trained.sentence_refiner.output_proj.weight.abs().sum() > 0  # zero at the start


def test_from_scratch_the_option_sets_the_config(tiny_config):
    model = build_model(tiny_config.replace(sentence_refiner_layers=1))
    assert model.config.sentence_refiner_layers == 1 and model.sentence_refiner is not None


def test_an_out_of_range_depth_is_a_usage_error(tiny_config, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_main(["--data", tiny_config.data, "--out", tiny_config.out, "--sentence-refiner-layers", "12"])
    assert exit_info.value.code == 2
    assert "--sentence-refiner-layers" in capsys.readouterr().err
