"""Fixtures of the studio tests: a tiny ReferFormer checkpoint + tokenizer, sample videos, a project library."""
from pathlib import Path

import numpy as np
import pytest

from referformer_core.settings import RunSettings
from studio.projects import ProjectLibrary
from studio.session import Studio, StudioConfig


def moving_square_frames(t: int = 8, h: int = 72, w: int = 128, seed: int = 0) -> np.ndarray:
    """``[t, h, w, 3]`` uint8: a red square moving right over a noisy grey background."""
    rng = np.random.default_rng(seed)
    frames = np.clip(rng.normal(110, 12, size=(t, h, w, 3)), 0, 255).astype(np.uint8)
    side = h // 3
    for i in range(t):
        x = 4 + i * (w - side - 8) // max(t - 1, 1)
        frames[i, h // 3:h // 3 + side, x:x + side] = (220, 40, 40)
    return frames


def write_mp4(path: Path, frames: np.ndarray, fps: float = 10.0) -> Path:
    from referformer_core.overlay import write_video

    return write_video(path, iter(frames), fps=fps)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> tuple[Path, Path]:
    """``(checkpoint, tokenizer_dir)`` of a randomly initialised tiny ReferFormer and a small tokenizer."""
    import torch

    from referformer_core.checkpoint import save_checkpoint
    from referformer_core.config import get_config
    from referformer_core.referformer import ReferFormer
    from train.synthetic import write_tokenizer

    out = tmp_path_factory.mktemp("tiny_model")
    torch.manual_seed(0)
    save_checkpoint(ReferFormer(get_config("tiny")).eval(), out / "tiny.pth")
    return out / "tiny.pth", write_tokenizer(out / "tokenizer")


@pytest.fixture(scope="session")
def sample_video(tmp_path_factory) -> Path:
    """An 8-frame 128x72 mp4 of a moving red square."""
    return write_mp4(tmp_path_factory.mktemp("media") / "square.mp4", moving_square_frames())


@pytest.fixture
def library(tmp_path) -> ProjectLibrary:
    return ProjectLibrary(tmp_path / "projects")


@pytest.fixture
def studio(tmp_path, tiny_model) -> Studio:
    """A studio on the tiny model: frames at a 64-pixel short side, windows of 3 frames after a first one of 1."""
    checkpoint, tokenizer = tiny_model
    spec = RunSettings(str(checkpoint), str(tokenizer), short_side=64, window=3, first_window=1)
    s = Studio(StudioConfig(tmp_path / "projects", tmp_path / "downloads", spec))
    yield s
    s.close()
