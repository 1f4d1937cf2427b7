"""``referformer annotate``: inputs, the project it writes, resuming after a kill, and 2 gloo processes = 1 process."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from annotations import Project
from referformer_core.checkpoint import save_checkpoint
from referformer_cli import main
from referformer_core.config import get_config
from referformer_core.referformer import ReferFormer
from studio.batch_inputs import balance, list_videos, read_object_specs, working_frames
from train.synthetic import generate_dataset, write_tokenizer

ROOT = Path(__file__).resolve().parents[2]
SHORT_SIDE = 48  # synthetic frames are 64x96: the project holds them at 48x72


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One thread, as each torchrun process runs (OMP_NUM_THREADS=1), so in-process runs compare bit for bit."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> Path:
    return write_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """The tiny config with seeded random weights (what it predicts does not matter, only that runs agree)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    save_checkpoint(ReferFormer(get_config("tiny")).eval(), path)
    return path


def _write_mp4(path: Path, frames: list[np.ndarray]) -> None:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        for f in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        container.mux(stream.encode())


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """4 videos: 2 Ref-Youtube-VOS frame folders (3 and 4 frames), 2 mp4 files (2 and 5 frames), 2 objects each;
    meta_expressions.json for the folders plus a csv covering all four."""
    root = tmp_path_factory.mktemp("inputs")
    data = generate_dataset(root / "data", num_videos=4, num_frames=5, seed=3)
    videos = root / "videos"
    videos.mkdir()
    meta = json.loads((data / "meta_expressions.json").read_text())["videos"]
    rows = ["video,obj_id,expression,category"]
    for i, name in enumerate(sorted(meta)):
        folder = data / "JPEGImages" / name
        files = sorted(folder.glob("*.jpg"))[: (3, 4, 2, 5)[i]]
        if i < 2:
            (videos / name).mkdir()
            for f in files:
                (videos / name / f.name).write_bytes(f.read_bytes())
        else:
            import cv2

            _write_mp4(videos / f"{name}.mp4", [cv2.imread(str(f))[:, :, ::-1].copy() for f in files])
        for exp in meta[name]["expressions"].values():
            rows.append(f"{name},{exp['obj_id']},{exp['exp']},shape")
    (root / "expressions.csv").write_text("\n".join(rows) + "\n")
    return {"videos": videos, "csv": root / "expressions.csv", "meta": data / "meta_expressions.json", "root": root}


def _args(inputs, checkpoint, tokenizer, out, *extra) -> list[str]:
    return ["annotate", "--videos", str(inputs["videos"]), "--expressions", str(inputs["csv"]), "--out", str(out),
            "--checkpoint", str(checkpoint), "--text-encoder", str(tokenizer), "--short-side", str(SHORT_SIDE),
            "--window", "2", "--device", "cpu", "--no-progress", *extra]


def snapshot(folder: Path) -> dict:
    """Everything a project holds about its videos, comparable with ``==`` (frames by JPEG hash)."""
    out = {}
    with Project.open(folder) as project:
        for info in sorted(project.videos(), key=lambda v: v.name):
            name = info.name
            out[name] = {
                "info": info, "frame_names": project.frame_names(name), "source": project.source_indices(name),
                "frames": [hashlib.sha1(project.frame_path(name, t).read_bytes()).hexdigest()
                           for t in range(info.frame_count)],
                "objects": project.objects(name), "mask_infos": project.mask_infos(name),
                "masks": [project.get_masks(name, o.obj_id).tobytes() for o in project.objects(name)]}
    return out


def test_inputs_formats_and_balance(inputs, tmp_path):
    sources = list_videos(inputs["videos"])
    assert [(s.name, s.kind) for s in sources] == [("video000", "frames"), ("video001", "frames"),
                                                   ("video002", "file"), ("video003", "file")]
    assert [s.count_frames() for s in sources] == [3, 4, 2, 5]
    assert sources[3].count_frames(stride=2) == 3
    listing = tmp_path / "list.txt"
    listing.write_text(f"# two of them\n{inputs['videos'] / 'video001'}\n{inputs['videos'] / 'video003.mp4'}\n")
    assert [s.name for s in list_videos(listing)] == ["video001", "video003"]
    from_csv, from_meta = read_object_specs(inputs["csv"]), read_object_specs(inputs["meta"])
    assert set(from_csv) == set(from_meta) == {"video000", "video001", "video002", "video003"}
    assert [(o.obj_id, o.expressions) for o in from_csv["video000"]] == \
        [(o.obj_id, o.expressions) for o in from_meta["video000"]]
    assert from_csv["video000"][0].category == "shape" and from_meta["video000"][0].category == "object"
    records = tmp_path / "records.json"
    records.write_text(json.dumps([{"video": "a", "obj_id": 2, "expression": "the cat"},
                                   {"video": "a", "obj_id": 2, "expression": "a small cat", "category": "cat"}]))
    assert read_object_specs(records)["a"][0].expressions == ("the cat", "a small cat")
    assert balance({"a": 10, "b": 6, "c": 5, "d": 1}, 2) == [["a", "d"], ["b", "c"]]
    frame = next(working_frames(sources[3], SHORT_SIDE))
    assert frame.shape == (48, 72, 3) and frame.dtype == np.uint8


def test_annotate_writes_a_project_the_studio_opens(inputs, checkpoint, tokenizer, tmp_path, capsys):
    out, export = tmp_path / "project", tmp_path / "export"
    assert main(_args(inputs, checkpoint, tokenizer, out, "--export", "ytvos", str(export))) == 0
    printed = capsys.readouterr().out
    assert "annotated 4 videos, 14 frames" in printed and "review first" in printed
    with Project.open(out) as project:
        assert [v.name for v in project.videos()] == ["video000", "video001", "video002", "video003"]
        video = project.video("video000")
        assert (video.height, video.width, video.frame_count) == (48, 72, 3)
        assert project.frame_names("video000") == ["00000", "00005", "00010"]
        assert project.video("video003").frame_count == 5 and project.video("video003").fps == 10.0
        objects = project.objects("video002")
        assert [o.obj_id for o in objects] == [1, 2] and objects[0].category == "shape"
        infos = project.mask_infos("video002")
        assert len(infos) == 4 and {m.origin for m in infos} == {"model"}
        assert all(0.0 <= m.score <= 1.0 for m in infos)
    assert (export / "meta_expressions.json").is_file()
    summary = json.loads((out / ".annotate" / "summary.json").read_text())
    assert summary["videos"] == 4 and summary["frames"] == 14 and summary["fps"] > 0

    assert main(_args(inputs, checkpoint, tokenizer, out)) == 0
    captured = capsys.readouterr()
    assert "annotated 0 videos" in captured.out and "4 video(s) already finished" in captured.err


def test_bad_inputs_are_reported_and_skipped(inputs, checkpoint, tokenizer, tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("video000", "video002.mp4"):
        src = inputs["videos"] / name
        if src.is_dir():
            (videos / name).mkdir()
            for f in src.iterdir():
                (videos / name / f.name).write_bytes(f.read_bytes())
        else:
            (videos / name).write_bytes(src.read_bytes())
    (videos / "video003.mp4").write_bytes(b"not a video at all")
    args = _args(inputs, checkpoint, tokenizer, tmp_path / "project")
    args[args.index("--videos") + 1] = str(videos)
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "expressions for 1 video(s) not found" in captured.err and "video001" in captured.err
    assert "skipped video003" in captured.err and "failed: video003" in captured.out
    with Project.open(tmp_path / "project") as project:
        assert [v.name for v in project.videos()] == ["video000", "video002"]


def test_missing_checkpoint_or_tokenizer_fails_before_any_work(inputs, checkpoint, tokenizer, tmp_path, capsys,
                                                               monkeypatch):
    out = tmp_path / "project"
    for bad in (["--checkpoint", str(tmp_path / "missing.pth")], ["--text-encoder", str(tmp_path / "nothing")]):
        args = _args(inputs, checkpoint, tokenizer, out)
        args[args.index(bad[0]) + 1] = bad[1]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1
        assert not out.exists()
    args = _args(inputs, checkpoint, tokenizer, out)
    del args[args.index("--checkpoint"):args.index("--checkpoint") + 2]
    from referformer_core import bundled

    monkeypatch.setattr(bundled, "BUNDLED_CHECKPOINT", tmp_path / "gone.pth")  # no --checkpoint: the bundled one
    assert main(args) == 2 and "the bundled model" in capsys.readouterr().err
    assert not out.exists()


@pytest.fixture(scope="module")
def reference(inputs, checkpoint, tokenizer, tmp_path_factory) -> Path:
    """One uninterrupted one-process run on one thread (as each torchrun process runs)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("reference") / "project"
    assert main(_args(inputs, checkpoint, tokenizer, out)) == 0
    torch.set_num_threads(before)
    return out


def test_a_half_committed_video_is_redone_and_the_result_is_the_same(inputs, checkpoint, tokenizer, reference,
                                                                     tmp_path, monkeypatch):
    from studio import batch_results

    real_commit = batch_results.commit

    def commit_then_die(project, result):
        real_commit(project, result)
        if result.name == "video001":
            project.remove_object("video001", 2)
            raise KeyboardInterrupt  # killed between the store's edits and the committed marker

    out = tmp_path / "project"
    monkeypatch.setattr(batch_results, "commit", commit_then_die)
    with pytest.raises(KeyboardInterrupt):
        main(_args(inputs, checkpoint, tokenizer, out))
    monkeypatch.setattr(batch_results, "commit", real_commit)
    with Project.open(out) as project:
        assert [o.obj_id for o in project.objects("video001")] == [1]
    assert main(_args(inputs, checkpoint, tokenizer, out)) == 0
    assert snapshot(out) == snapshot(reference)


def _env() -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


@pytest.mark.slow
def test_kill_9_then_rerun_completes_the_project(inputs, checkpoint, tokenizer, reference, tmp_path):
    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "referformer_cli", *_args(inputs, checkpoint, tokenizer, killed)]
    child = subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    committed = killed / ".annotate" / "committed"
    deadline = time.time() + 120
    while not (committed.is_dir() and any(committed.iterdir())) and child.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    child.stderr.close()
    with Project.open(killed) as project:
        assert 1 <= len(project.videos()) < 4
    assert subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, timeout=300).returncode == 0
    assert snapshot(killed) == snapshot(reference)


def test_two_gloo_processes_match_one_process(inputs, checkpoint, tokenizer, reference, tmp_path):
    sharded = tmp_path / "sharded"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "referformer_cli", *_args(inputs, checkpoint, tokenizer, sharded)],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "annotated 4 videos, 14 frames" in done.stdout and "2 process(es)" in done.stdout
    shards = sorted(p.name for p in (sharded / ".annotate").glob("shard-*"))
    assert shards == ["shard-000", "shard-001"]
    assert snapshot(sharded) == snapshot(reference)
