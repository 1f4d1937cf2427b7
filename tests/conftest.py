"""Fixtures shared by the test packages."""
from __future__ import annotations

import pytest

from referformer_core.errors import ReferFormerError
from referformer_core.predictor import VideoPredictor


@pytest.fixture
def run_settings(monkeypatch):
    """The run settings a command gives ``VideoPredictor.from_settings``, which then stops the command."""
    seen = []

    def from_settings(settings):
        seen.append(settings)
        raise ReferFormerError("stop here")

    monkeypatch.setattr(VideoPredictor, "from_settings", from_settings)
    return seen
