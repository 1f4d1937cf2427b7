"""The Fine-tune panel through the running app's API: start on a project's reviewed frames, follow the run,
read the held-out J&F before and after, switch the project to the new checkpoint and segment with it."""
from __future__ import annotations

import time

import pytest

from annotations import Project, ReviewState, import_into
from tests.studio.app_server import start_app
from train.synthetic import generate_dataset

DISPLAY = (False, True, 0.5)
STATUS, MESSAGE = 8, 9


@pytest.fixture(scope="module")
def server(tiny_model, sample_video, tmp_path_factory):
    pytest.importorskip("gradio_client")
    checkpoint, tokenizer = tiny_model
    root = tmp_path_factory.mktemp("app_finetune")
    project = Project.create(root / "projects" / "shapes")  # made before the studio starts, as by `annotate`
    import_into(project, "ytvos", generate_dataset(root / "synthetic", num_videos=2, num_frames=3, seed=1))
    for info in project.videos():
        project.set_review(info.name, range(info.frame_count), ReviewState.REVIEWED)
    project.close()
    app = start_app(root, checkpoint, tokenizer, sample_video)
    yield app
    app.stop()


@pytest.mark.slow  # a real training run at the panel's default sizes: minutes on 2 CPU cores
def test_finetune_panel_runs_reports_and_switches_the_model(server):
    from gradio_client import Client

    client = Client(server.url, verbose=False)
    opened = client.predict(*DISPLAY, "shapes", api_name="/open_project")
    assert opened[STATUS].startswith("video000 · frame 0"), opened[STATUS]
    status, log, models, _timer, note = client.predict(1, api_name="/finetune_start")
    assert note.startswith("fine-tuning started (run "), note
    run_id = note.split("run ")[1].rstrip(")")
    refused = client.predict(1, api_name="/finetune_start")[4]
    assert refused.startswith("⚠️") and "already" in refused, refused
    deadline = time.monotonic() + 300
    seen_running = "running" in status
    while time.monotonic() < deadline:
        status, log, models, _timer = client.predict(api_name="/finetune_status")
        seen_running |= "running" in status
        if "finished" in status or "failed" in status:
            break
        time.sleep(1)
    assert "finished" in status, (status, log[-2000:])
    assert seen_running and run_id in status and "held-out J&F" in status, status
    assert "python -m train" in log or "-m train" in log
    checkpoint = f"{server.projects_dir}/shapes/runs/{run_id}/checkpoint_best.pth"
    switched = client.predict(*DISPLAY, checkpoint, api_name="/select_model")
    assert "checkpoint_best.pth" in switched[MESSAGE], switched[MESSAGE]
    client.predict(*DISPLAY, "shapes", api_name="/open_project")
    for update in client.submit(*DISPLAY, False, api_name="/segment"):
        pass
    done = client.predict(*DISPLAY, api_name="/next_frame")
    assert "score" in done[STATUS] and "(model)" in done[STATUS], done[STATUS]
