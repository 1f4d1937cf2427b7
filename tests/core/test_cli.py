"""The ``referformer segment`` command end to end (masks, preview mp4, scores json), and its one-line errors."""
import json

import av
import cv2
import numpy as np

from referformer_core.checkpoint import save_checkpoint
from referformer_core.cli import main


def test_segment_writes_one_png_per_frame(recipe_model, tokenizer_dir, tmp_path, capsys):
    ckpt = tmp_path / "m.pth"
    save_checkpoint(recipe_model, ckpt)
    frames = np.random.default_rng(1).integers(0, 255, (3, 40, 56, 3), dtype=np.uint8)
    from tests.core.test_video import write_video

    video = tmp_path / "v.mp4"
    write_video(video, frames)
    out = tmp_path / "masks"
    code = main(["segment", str(video), "the dog", "--checkpoint", str(ckpt), "--text-encoder", str(tokenizer_dir),
                 "--out", str(out), "--short-side", "40"])
    assert code == 0
    files = sorted(out.glob("*.png"))
    assert [f.name for f in files] == ["00000.png", "00001.png", "00002.png"]
    mask = cv2.imread(str(files[0]), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (40, 56) and set(np.unique(mask)) <= {0, 255}
    captured = capsys.readouterr()
    assert "3 masks written" in captured.out
    assert captured.err == "segmenting: window 1/1\n"  # not a terminal: a line per window, no carriage returns
    scores = json.loads((out / "scores.json").read_text())
    assert scores["expression"] == "the dog" and len(scores["scores"]) == 3
    assert abs(scores["mean"] - sum(scores["scores"]) / 3) < 1e-5
    with av.open(str(out / "preview.mp4")) as container:
        preview = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(preview) == 3 and preview[0].shape == (40, 56, 3)


def test_segment_without_a_checkpoint_uses_the_bundled_model(tmp_path, capsys):
    code = main(["segment", str(tmp_path / "x.mp4"), "the dog"])  # the model loads; the missing video is the error
    err = capsys.readouterr().err
    assert code == 2 and "x.mp4" in err and err.count("\n") == 1


def test_segment_without_a_checkpoint_or_bundled_model_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    from referformer_core import bundled

    monkeypatch.setattr(bundled, "BUNDLED_CHECKPOINT", tmp_path / "gone.pth")
    code = main(["segment", "x.mp4", "the dog"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: the bundled model") and "--checkpoint" in err
    assert err.count("\n") == 1


def test_segment_reports_a_bad_checkpoint_in_one_line(tmp_path, tokenizer_dir, capsys):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"garbage")
    code = main(["segment", "x.mp4", "the dog", "--checkpoint", str(bad), "--text-encoder", str(tokenizer_dir)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
