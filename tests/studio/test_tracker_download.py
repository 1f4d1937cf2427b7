"""``referformer download NAME`` for real against a loopback server standing in for the hub, then the tracker
loaded from the cache with no network, as real weights are; offline without the cache: one line."""
import socket

import numpy as np
import pytest

from studio.download import cached_snapshot, download, main
from studio.errors import StudioError
from studio.tracker import Frames, Prompt, TrackerSettings, load_engine

from .conftest import moving_square_frames
from .hub_server import FakeHub
from .tracker_models import save_tiny_sam2

NAME = "tiny-org/sam2.1-hiera-micro"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_tiny_sam2(tmp_path_factory.mktemp("weights") / "model")


def closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_download_then_load_from_the_cache_offline(folder, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    with pytest.raises(StudioError, match=f"run `referformer download {NAME}`"):
        load_engine(TrackerSettings(NAME, cache_dir=str(cache)))
    with FakeHub({NAME: folder}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)  # read at each call, not at import
        assert main([NAME, "--cache-dir", str(cache), "--timeout", "5"]) == 0
        assert any(r.endswith("/model.safetensors") for r in hub.requests)
    assert f"{NAME} is in" in capsys.readouterr().out
    snapshot = cached_snapshot(NAME, str(cache))
    assert sorted(p.name for p in snapshot.iterdir()) == sorted(p.name for p in folder.iterdir())
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())
    assert download(NAME, cache, timeout=2) == snapshot  # offline, already cached: the cached copy
    frames = moving_square_frames(4, 72, 96)
    video = Frames(("v",), 4, 72, 96, lambda t: frames[t])
    cached = load_engine(TrackerSettings(NAME, cache_dir=str(cache))).segment(video, 1, Prompt(((30.0, 30.0),), (1,)))
    local = load_engine(TrackerSettings(str(folder))).segment(video, 1, Prompt(((30.0, 30.0),), (1,)))
    np.testing.assert_array_equal(cached, local)


def test_offline_and_not_cached_or_unknown_give_one_line(folder, tmp_path, monkeypatch, capsys):
    with pytest.raises(StudioError, match="not reachable and it is not in the cache"):
        download(NAME, tmp_path / "cache", endpoint=closed_port_url(), timeout=2)
    with FakeHub({NAME: folder}) as hub:
        with pytest.raises(StudioError, match="is not a model on"):
            download("someone/else", tmp_path / "cache", endpoint=hub.url, timeout=5)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        assert main(["someone/else", "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
