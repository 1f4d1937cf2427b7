"""``studio.finetune``: real ``python -m train`` runs of the tiny model on a project's reviewed frames."""
from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from annotations import Project, ReviewState, import_into
from referformer_core.checkpoint import load_checkpoint, read_checkpoint
from studio import finetune
from studio.errors import StudioError
from studio.finetune import FinetuneOptions, RunStatus
from studio.projects import ProjectLibrary
from train.synthetic import generate_dataset

TINY = FinetuneOptions(epochs=2, num_frames=3, lr=1e-4, lr_backbone=1e-5,
                       extra=("--train-scales", "64", "--max-size", "96", "--eval-short-side", "64",
                              "--no-augment", "--num-workers", "0"))


@pytest.fixture(autouse=True)
def one_thread_children(monkeypatch):
    """The training processes use one thread each: the test machine is small and shared."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")


@pytest.fixture
def project(library: ProjectLibrary, tmp_path: Path) -> Project:
    """Two synthetic videos of three 64x96 frames (two referred shapes each), not yet reviewed."""
    project = library.create("shapes")
    import_into(project, "ytvos", generate_dataset(tmp_path / "synthetic", num_videos=2, num_frames=3, seed=1))
    return project


def review_all(project: Project, videos: list[str] | None = None) -> None:
    for info in project.videos():
        if videos is None or info.name in videos:
            project.set_review(info.name, range(info.frame_count), ReviewState.REVIEWED)


def wait_until(project: Project, run_id: str, done, timeout: float = 120.0) -> RunStatus:
    deadline = time.monotonic() + timeout
    while True:
        status = finetune.run_status(project, run_id)
        if done(status) or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def test_run_trains_scores_and_offers_its_checkpoint(project, tiny_model, tmp_path):
    """One real run to the end; meanwhile a second start on the device is refused and a broken run (elsewhere:
    other locks) fails with one line; then a run is cancelled and the device is free again."""
    checkpoint, tokenizer = tiny_model
    review_all(project)
    locks = tmp_path / "locks"
    run_id = finetune.start_run(project, checkpoint, str(tokenizer), "cpu", TINY, locks_dir=locks)

    first = finetune.run_status(project, run_id)
    assert first.state == "running" and first.total_steps == 4     # 1 video x 2 expressions x 1 clip, 2 epochs
    with pytest.raises(StudioError, match="already active on cpu"):
        finetune.start_run(project, checkpoint, str(tokenizer), "cpu", TINY, locks_dir=locks)
    broken = replace(TINY, extra=(*TINY.extra, "--no-such-option"))
    bad_id = finetune.start_run(project, checkpoint, str(tokenizer), "cpu", broken, locks_dir=tmp_path / "other")

    seen: list[float] = []
    status = wait_until(project, run_id, lambda s: seen.append(s.progress) or s.state != "running")
    assert status.state == "finished", status.log_tail
    assert any(0 < p < 1 for p in seen), seen
    assert status.step == 4 and status.progress == 1.0 and status.epoch == 2
    assert 0 <= status.start_jf <= 1 and 0 <= status.best_jf <= 1 and status.best_jf >= status.start_jf
    assert "finished" in status.message and "\n" not in status.message
    failed = wait_until(project, bad_id, lambda s: s.state != "running")
    assert failed.state == "failed" and failed.checkpoint is None and "\n" not in failed.message
    assert failed.message.startswith(f"run {bad_id} failed: ") and "--no-such-option" in failed.message
    assert "$ " in status.log_tail and "best:" in status.log_tail

    info = finetune._read_json(project.folder / "runs" / run_id / "run.json")
    assert len(info["held_out_videos"]) == 1 and len(info["train_videos"]) == 1
    assert not set(info["held_out_videos"]) & set(info["train_videos"])
    assert status.held_out_videos == tuple(info["held_out_videos"])

    model = load_checkpoint(status.checkpoint)
    assert sum(p.numel() for p in model.parameters()) > 0
    start = read_checkpoint(checkpoint)["model"]
    latest = read_checkpoint(project.folder / "runs" / run_id / "checkpoint.pth")["model"]
    assert any(not torch.equal(start[k], latest[k]) for k in start if k.startswith("transformer."))

    choices = finetune.model_choices(project, str(checkpoint))
    assert choices[0] == (f"{checkpoint.name} (studio start-up model)", str(checkpoint))
    assert choices[1][1] == str(status.checkpoint) and run_id in choices[1][0]
    assert {s.run_id for s in finetune.list_runs(project)} == {run_id, bad_id}

    again = finetune.start_run(project, status.checkpoint, str(tokenizer), "cpu", TINY, locks_dir=locks)
    gone = finetune.cancel_run(project, again)
    assert gone.state == "cancelled" and "cancelled" in gone.message
    pid = finetune._read_json(project.folder / "runs" / again / "run.json")["pid"]
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert [c[1] for c in finetune.model_choices(project, None)] == [str(status.checkpoint)]
    third = finetune.start_run(project, checkpoint, str(tokenizer), "cpu", TINY, locks_dir=locks)
    assert finetune.cancel_run(project, third).state == "cancelled"


def test_refusals(project, tiny_model, tmp_path):
    checkpoint, tokenizer = tiny_model
    locks = tmp_path / "locks"
    with pytest.raises(StudioError, match="no reviewed frames"):
        finetune.start_run(project, checkpoint, str(tokenizer), "cpu", TINY, locks_dir=locks)
    review_all(project, ["video000"])
    with pytest.raises(StudioError, match="at least 2 videos"):
        finetune.start_run(project, checkpoint, str(tokenizer), "cpu", TINY, locks_dir=locks)
    review_all(project)
    with pytest.raises(StudioError, match="does not exist"):
        finetune.start_run(project, tmp_path / "missing.pth", str(tokenizer), "cpu", TINY, locks_dir=locks)
    with pytest.raises(StudioError, match="no fine-tune run"):
        finetune.run_status(project, "../etc")
    assert finetune.list_runs(project) == [] and not (project.folder / "runs").exists()


def test_objects_without_masks_are_refused_before_any_work(library, tiny_model, tmp_path):
    import numpy as np

    checkpoint, tokenizer = tiny_model
    project = library.create("unmasked")
    for name in ("a", "b"):
        project.add_video(name, iter(np.zeros((3, 64, 96, 3), np.uint8)))
        project.add_object(name, ["the thing"])
        project.set_masks(name, 1, {t: np.zeros((64, 96), bool) for t in range(3)}, "model")
    review_all(project)
    with pytest.raises(StudioError, match="no mask on the reviewed frames"):
        finetune.start_run(project, checkpoint, str(tokenizer), "cpu", TINY, locks_dir=tmp_path / "locks")
    assert finetune.list_runs(project) == []


def test_the_reason_of_a_failed_run_is_the_real_error():
    from studio.finetune import _last_error

    log = ("error: Caught TrainingDataError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
           '  File "x.py", line 1, in f\ntrain.data.TrainingDataError: /data: no clip shows its object; are the masks empty?\n')
    assert _last_error(log) == "/data: no clip shows its object; are the masks empty?"
    assert _last_error("step 1\nerror: checkpoint x.pth is truncated\n") == "checkpoint x.pth is truncated"


def test_the_bundled_model_fine_tunes_at_its_working_size_from_the_studio(tmp_path):
    """Studio on the bundled model (frozen packaged MiniLM, 192-pixel working size): a two-step run trains at that
    size, and its checkpoint stays weights-plus-encoder-name and loads for segmenting."""
    from referformer_core.bundled import BUNDLED_CHECKPOINT
    from referformer_core.predictor import VideoPredictor
    from studio.model import startup_settings
    from studio.session import Studio, StudioConfig, View

    spec = startup_settings(None, None, "cpu", None)
    assert spec.checkpoint == str(BUNDLED_CHECKPOINT) and spec.short_side == 192 and spec.refine
    studio = Studio(StudioConfig(tmp_path / "projects", tmp_path / "downloads", spec))
    try:
        project = studio.library.create("shapes")
        import_into(project, "ytvos", generate_dataset(tmp_path / "synthetic", num_videos=2, num_frames=2, seed=1))
        review_all(project)
        options = FinetuneOptions(epochs=1, max_steps=2, num_frames=2, extra=("--no-augment", "--num-workers", "0"))
        message = studio.finetune_start(View(project="shapes"), options).message
        run_id = message.split("run ")[1].rstrip(")")
        status = wait_until(project, run_id, lambda s: s.state != "running", timeout=300)
        assert status.state == "finished", status.log_tail
        command = status.log_tail.split("\n", 1)[0]
        assert "--train-scales 192 --max-size 342 --eval-short-side 192" in command
        assert "--freeze-text-encoder" in command and "all-minilm-l6-v2" in command
        latest = project.folder / "runs" / run_id / "checkpoint.pth"
        data = read_checkpoint(latest)
        assert data["text_encoder_weights"] == "all-minilm-l6-v2"
        assert not any(k.startswith("text_encoder.") for k in data["model"])
        start = read_checkpoint(BUNDLED_CHECKPOINT)["model"]
        assert any(not torch.equal(start[k], data["model"][k]) for k in start if k.startswith("transformer."))
        predictor = VideoPredictor.from_checkpoint(str(latest))
        masks = predictor.predict(np.zeros((2, 64, 96, 3), np.uint8), "the red circle")
        assert masks.shape == (2, 64, 96)
        studio.select_model(View(project="shapes"), str(latest))  # the fine-tuned model keeps the refinement
        assert studio.models.get(studio.model_settings(View(project="shapes"))).settings.refine
    finally:
        studio.close()
