"""The tracker after ReferFormer on the command line (``referformer segment / annotate --tracker NAME``) on the
bundled model: the model's masks re-drawn, its scores kept; a tracker that cannot load stops before the model."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from annotations import Origin, Project
from referformer_cli import main
from studio import batch, tracking
from studio.errors import StudioError
from studio.tracker import Frames, TrackerSettings, load_engine

from .conftest import moving_square_frames, write_mp4
from .tracker_models import save_tiny_sam2

T = 6
SHORT_SIDE = 48  # the model at 48x85: annotate's project holds the frames and masks at that size
NOT_CACHED = "tiny-org/sam2.1-not-downloaded"


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_mp4(tmp_path_factory.mktemp("videos") / "square.mp4", moving_square_frames(T))


@pytest.fixture(scope="module")
def expressions(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("expressions") / "expressions.csv"
    path.write_text("video,obj_id,expression,category\nsquare,1,the red square,shape\n"
                    "square,2,the square on the left,shape\n")
    return path


@pytest.fixture(scope="module")
def sam2_folder(tmp_path_factory) -> Path:
    return save_tiny_sam2(tmp_path_factory.mktemp("sam2") / "tiny-sam2")


def annotate_args(video: Path, expressions: Path, out: Path, *extra: str) -> list[str]:
    return ["annotate", "--videos", str(video.parent), "--expressions", str(expressions), "--out", str(out),
            "--short-side", str(SHORT_SIDE), "--device", "cpu", "--no-progress", *extra]


def segment_args(video: Path, out: Path, *extra: str) -> list[str]:
    return ["segment", str(video), "the red square", "--out", str(out), "--short-side", str(SHORT_SIDE), *extra]


def project_masks(folder: Path) -> tuple[dict, list]:
    """``{obj_id: [T, H, W] bool}`` and every mask's ``(obj_id, frame, origin, score)`` of the project's video."""
    with Project.open(folder) as project:
        masks = {o.obj_id: project.get_masks("square", o.obj_id) for o in project.objects("square")}
        infos = [(m.obj_id, m.frame, m.origin, m.score) for m in project.mask_infos("square")]
    return masks, infos


def read_pngs(folder: Path) -> np.ndarray:
    return np.stack([cv2.imread(str(folder / f"{t:05d}.png"), cv2.IMREAD_GRAYSCALE) > 0 for t in range(T)])


@pytest.fixture(scope="module")
def plain(video, expressions, tmp_path_factory) -> tuple[dict, list]:
    out = tmp_path_factory.mktemp("plain") / "project"
    assert main(annotate_args(video, expressions, out)) == 0
    return project_masks(out)


def test_annotate_with_the_tracker_redraws_every_object_and_keeps_the_scores(video, expressions, plain, sam2_folder,
                                                                          tmp_path, monkeypatch, capsys):
    plain_masks, plain_infos = plain
    assert all(m.any() for m in plain_masks.values())
    assert {origin for _, _, origin, _ in plain_infos} == {Origin.MODEL} and len(plain_infos) == 2 * T
    runs = []
    real_load = batch.load_engine

    def recording_load(settings):
        engine = real_load(settings)
        real_track = engine.track
        engine.track = lambda frames, conditioning, *rest: (runs.append((settings.name, dict(conditioning))),
                                                            real_track(frames, conditioning, *rest))[1]
        return engine

    monkeypatch.setattr(batch, "load_engine", recording_load)
    for name, k in (("grabcut", 3), (str(sam2_folder), 2)):
        out = tmp_path / Path(name).name
        assert main(annotate_args(video, expressions, out, "--tracker", name, "--refine-frames", str(k))) == 0
        masks, infos = project_masks(out)
        assert infos == plain_infos  # the same frames, all the model's, with ReferFormer's scores
        assert any(not np.array_equal(masks[o], plain_masks[o]) for o in masks), name
        assert all(masks[o].shape == plain_masks[o].shape for o in masks)
        [(used, conditioning)] = [r for r in runs if r[0] == name]  # one run for both objects
        assert {o for frame in conditioning.values() for o in frame} == {1, 2}
        assert all(sum(o in frame for frame in conditioning.values()) == k for o in (1, 2))
    assert f"annotated 1 videos, {T} frames" in capsys.readouterr().out


def test_refine_masks_keeps_a_persons_frames_and_conditions_on_them():
    n = 8
    frames_array = moving_square_frames(n)
    frames = Frames(("squares",), n, 72, 128, lambda t: frames_array[t])
    truth = {t: (frames_array[t, :, :, 0] > 200) & (frames_array[t, :, :, 1] < 80) for t in range(n)}
    hand = np.zeros((72, 128), bool)
    hand[30:40, 60:70] = True
    masks = {1: {**truth, 5: hand}}
    scores = {1: np.array([0.2, 0.9, 0.3, 0.8, 0.1, 0.99, 0.4, 0.7])}  # frame 5 is a person's: not a model best
    given = []
    engine = load_engine(TrackerSettings())
    real_track = engine.track
    engine.track = lambda frames, conditioning, *rest: (given.append((dict(conditioning), rest)),
                                                        real_track(frames, conditioning, *rest))[1]
    made = tracking.refine_masks(frames, masks, scores, engine, k=2, keep={1: {5}})
    [(conditioning, rest)] = given
    assert sorted(conditioning) == [1, 3, 5] and rest == (1, "both", n)
    assert np.array_equal(conditioning[5][1], hand)
    assert sorted(made[1]) == [0, 1, 2, 3, 4, 6, 7]  # every model frame, the person's frame 5 left out
    empty = {1: {t: np.zeros((72, 128), bool) for t in range(n)}}
    with pytest.raises(tracking.NothingToRefine):
        tracking.refine_masks(frames, empty, scores, engine)


def test_segment_with_the_tracker_writes_its_masks_and_referformers_scores(video, sam2_folder, tmp_path, capsys):
    assert main(segment_args(video, tmp_path / "plain")) == 0
    assert main(segment_args(video, tmp_path / "refined", "--tracker", str(sam2_folder))) == 0
    assert f"{T} masks written" in capsys.readouterr().out
    assert (tmp_path / "refined" / "scores.json").read_bytes() == (tmp_path / "plain" / "scores.json").read_bytes()
    assert (tmp_path / "refined" / "preview.mp4").is_file()
    before, after = read_pngs(tmp_path / "plain"), read_pngs(tmp_path / "refined")
    scores = np.array(json.loads((tmp_path / "plain" / "scores.json").read_text())["scores"])
    expected = tracking.refine_masks(tracking.file_frames(video), {1: dict(enumerate(before))}, {1: scores},
                                     load_engine(TrackerSettings(str(sam2_folder))))[1]
    np.testing.assert_array_equal(after, np.stack([expected[t] for t in range(T)]))
    assert not np.array_equal(after, before)


@pytest.mark.parametrize("name, text", [("what/is/this", "unknown tracker 'what/is/this'"),
                                        (NOT_CACHED, f"run `referformer download {NOT_CACHED}`")])
def test_a_tracker_that_cannot_load_is_one_line_before_any_model_work(video, expressions, run_settings, tmp_path,
                                                                      capsys, name, text):
    out = tmp_path / "project"
    for args in (annotate_args(video, expressions, out, "--tracker", name),
                 segment_args(video, tmp_path / "masks", "--tracker", name)):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and text in err and err.count("\n") == 1
    assert run_settings == [] and not out.exists() and not (tmp_path / "masks").exists()


def test_refine_frames_must_be_at_least_one(video, capsys):
    with pytest.raises(SystemExit) as done:
        main(segment_args(video, Path("unused"), "--tracker", "grabcut", "--refine-frames", "0"))
    assert done.value.code == 2 and "must be a whole number >= 1" in capsys.readouterr().err


def test_refine_masks_needs_one_frame(video):
    with pytest.raises(StudioError, match="at least one frame"):
        tracking.refine_masks(tracking.file_frames(video), {1: {}}, {1: []}, load_engine(TrackerSettings()), k=0)
