"""Fixtures of the training tests: a generated tiny dataset, its tokenizer, and a tiny-model ``TrainConfig``."""
from pathlib import Path

import pytest

from train.config import TrainConfig
from train.synthetic import generate_dataset, write_tokenizer


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    """A byte-level BPE RoBERTa tokenizer for the synthetic expressions (ids < 1000, the tiny model's vocab)."""
    return write_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """Two videos of three 64x96 frames, two referred shapes each (four expressions)."""
    return generate_dataset(tmp_path_factory.mktemp("synthetic"), num_videos=2, num_frames=3, seed=1)


@pytest.fixture
def tiny_config(tiny_data: Path, tokenizer_dir: Path, tmp_path: Path) -> TrainConfig:
    """The tiny model on ``tiny_data``, 3-frame clips at 64x96, no workers, no validation, no progress bar."""
    return TrainConfig(data=str(tiny_data), out=str(tmp_path / "run"), val_fraction=0.0, config="tiny",
                       text_encoder=str(tokenizer_dir), imagenet_backbone=False, epochs=1, batch_size=2,
                       num_frames=3, augment=False,
                       train_scales=(64,), max_size=96, crop_scales=(72, 80), crop_min_size=48, crop_max_size=64,
                       eval_short_side=64, lr_drop=(), num_workers=0, progress=False,
                       log_every_steps=1)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Training tests run on one thread: the CI machine is small and shared, and results stay bit-reproducible."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
