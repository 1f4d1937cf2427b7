"""The studio's tracker calls end to end over a project: click/box -> hand mask, track -> tracked frames (a
person's frames kept and conditioning the tracker), one undo, refine after a model run, one-line errors."""
import numpy as np
import pytest

from annotations import Origin
from studio import tracking
from studio.errors import StudioError, user_message
from studio.media import ImportOptions
from studio.tracker import TrackerSettings, load_engine
from train.metrics import region_similarity

from .conftest import moving_square_frames, write_mp4
from .tracker_models import save_tiny_sam2

T = 16
BOX = (0, 20, 34, 52)  # around the square of frame 0 (x 4..28, y 24..48); it moves 6 pixels a frame


@pytest.fixture(scope="module")
def slow_video(tmp_path_factory):
    return write_mp4(tmp_path_factory.mktemp("media") / "slow.mp4", moving_square_frames(T))


@pytest.fixture
def view(studio, slow_video):
    view = studio.create_project("clicks").view
    view = studio.import_file(view, slow_video, ImportOptions()).view
    view = studio.add_object(view, "the red square").view
    return view


@pytest.fixture(scope="module")
def sam2_folder(tmp_path_factory):
    return save_tiny_sam2(tmp_path_factory.mktemp("sam2") / "tiny-sam2")


def origins(studio, view):
    return {m.frame: m.origin for m in studio.project(view).mask_infos(view.video, view.obj_id)}


def truth(t):
    frames = moving_square_frames(T)
    return (frames[t, :, :, 0] > 200) & (frames[t, :, :, 1] < 80)


def test_box_then_click_gives_a_hand_mask(studio, view):
    assert studio.tracker_line().startswith("tracker: GrabCut")
    message = studio.click(view, box=BOX).message
    assert "pixels from the tracker" in message
    mask = studio.project(view).get_mask(view.video, view.obj_id, 0)
    assert origins(studio, view) == {0: Origin.HAND}
    assert region_similarity(mask, truth(0)) >= 0.8
    studio.click(view, [(16, 36, True), (2, 2, False)])  # a further click refines the stored mask
    assert region_similarity(studio.project(view).get_mask(view.video, view.obj_id, 0), truth(0)) >= 0.8


def test_track_forward_then_backward_with_undo(studio, view):
    view = studio.click(view, box=BOX).view
    steps = list(studio.track(view, "forward", 4))
    assert steps[-1].stored == 4 and "tracked 4 frame(s)" in steps[-1].describe()
    assert origins(studio, view) == {0: Origin.HAND, **{t: Origin.TRACKED for t in range(1, 5)}}
    assert region_similarity(studio.project(view).get_mask(view.video, view.obj_id, 3), truth(3)) >= 0.6
    assert studio.undo(view).message.startswith("undid")
    assert origins(studio, view) == {0: Origin.HAND}
    back = studio.goto(view, T - 1).view
    studio.click(back, box=(84, 20, 128, 52))
    list(studio.track(back, "backward", 6))
    assert {t for t, o in origins(studio, view).items() if o == Origin.TRACKED} == set(range(T - 7, T - 1))
    assert region_similarity(studio.project(view).get_mask(view.video, view.obj_id, T - 5), truth(T - 5)) >= 0.6


def test_tracking_stops_at_the_next_hand_frame_and_keeps_it(studio, view):
    project = studio.project(view)
    studio.click(view, box=BOX)
    correction = np.zeros((72, 128), bool)
    correction[30:40, 60:70] = True
    project.set_mask(view.video, view.obj_id, 5, correction, Origin.HAND)
    steps = list(studio.track(view, "forward"))
    assert steps[-1].stored == 4
    assert np.array_equal(project.get_mask(view.video, view.obj_id, 5), correction)
    assert origins(studio, view) == {0: Origin.HAND, 1: Origin.TRACKED, 2: Origin.TRACKED, 3: Origin.TRACKED,
                                     4: Origin.TRACKED, 5: Origin.HAND}
    middle = studio.goto(view, 10).view
    project.set_mask(view.video, view.obj_id, 10, truth(10), Origin.HAND)
    list(studio.track(middle, "both", 3))  # back to frame 7, on to 13
    assert {t for t, o in origins(studio, view).items() if o == Origin.TRACKED} == {1, 2, 3, 4, 7, 8, 9, 11, 12, 13}


def test_stopping_keeps_the_frames_done_as_one_edit(studio, view):
    studio.click(view, box=BOX)
    run = studio.track(view, "forward")
    next(run), next(run)
    run.close()
    assert origins(studio, view) == {0: Origin.HAND, 1: Origin.TRACKED, 2: Origin.TRACKED}
    studio.undo(view)
    assert origins(studio, view) == {0: Origin.HAND}


def test_sam2_track_in_the_studio_is_the_engine_conditioned_on_hand_frames(studio, view, sam2_folder):
    assert "SAM 2" in studio.use_tracker(str(sam2_folder))
    project = studio.project(view)
    for t in (1, 4, 9):
        project.set_mask(view.video, view.obj_id, t, truth(t), Origin.HAND)
    engine = studio.tracker()[1]
    given = []
    real_track = engine.track
    engine.track = lambda frames, conditioning, *rest: (given.append((dict(conditioning), rest)),
                                                        real_track(frames, conditioning, *rest))[1]
    list(studio.track(studio.goto(view, 1).view, "forward", 6))  # stops at the hand frame 4, which conditions it
    [(conditioning, rest)] = given
    assert sorted(conditioning) == [1, 4] and rest == (1, "forward", 3)
    assert all(np.array_equal(conditioning[t][1], truth(t)) for t in (1, 4))
    fresh = load_engine(TrackerSettings(str(sam2_folder)))
    expected = dict(fresh.track(tracking.video_frames(project, view.video), conditioning, 1, "forward", 3))
    assert {t for t, o in origins(studio, view).items() if o == Origin.TRACKED} == {2, 3}
    for t in (2, 3):
        np.testing.assert_array_equal(project.get_mask(view.video, view.obj_id, t), expected[t][1])
    assert np.array_equal(project.get_mask(view.video, view.obj_id, 4), truth(4))


def test_refine_after_segment_changes_model_frames_only(studio, view, sam2_folder):
    studio.use_tracker(str(sam2_folder))
    list(studio.segment(view))
    project = studio.project(view)
    hand = truth(2)
    project.set_mask(view.video, view.obj_id, 2, hand, Origin.HAND)
    before = {m.frame: m for m in project.mask_infos(view.video, view.obj_id)}
    masks_before = {t: project.get_mask(view.video, view.obj_id, t) for t in before}
    message = studio.refine(view).message
    after = {m.frame: m for m in project.mask_infos(view.video, view.obj_id)}
    assert message.startswith("refined")
    assert np.array_equal(project.get_mask(view.video, view.obj_id, 2), hand) and after[2].origin == Origin.HAND
    changed = [t for t in after if not np.array_equal(project.get_mask(view.video, view.obj_id, t), masks_before[t])]
    assert changed and 2 not in changed
    for t in after:
        assert after[t].origin == before[t].origin and after[t].score == before[t].score  # ReferFormer's scores


def test_bad_inputs_give_one_line(studio, view, tmp_path):
    cases = [
        (lambda: studio.click(view, [(500, 10, True)]), "outside the 128x72 frame"),
        (lambda: studio.click(view, box=(10, 10, 10, 40)), "no area"),
        (lambda: studio.click(view), "click on the object"),
        (lambda: studio.click(studio.select_object(view, None).view, [(5, 5, True)]), "add or choose an object"),
        (lambda: list(studio.track(view, "forward")), "no mask on frame 0"),
        (lambda: list(studio.track(view, "sideways")), "direction must be"),
        (lambda: studio.use_tracker("what/is/this"), "unknown tracker"),
        (lambda: studio.use_tracker(TrackerSettings("facebook/sam2.1-hiera-tiny", cache_dir=str(tmp_path))),
         "run `referformer download facebook/sam2.1-hiera-tiny`"),
        (lambda: studio.refine(view), "nothing to refine"),
    ]
    for call, text in cases:
        with pytest.raises(StudioError) as caught:
            call()
        line = user_message(caught.value)
        assert text in line and "\n" not in line
    assert studio.tracker_line().startswith("tracker: GrabCut")  # a failed load keeps the working tracker


def test_tracker_flags_make_the_settings():
    import argparse

    from studio.tracker import add_arguments, describe, settings_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    settings = settings_from_args(parser.parse_args(["--tracker", "yonigozlan/EdgeTAM-hf", "--tracker-precision",
                                                     "bf16"]), "cuda")
    assert settings == TrackerSettings("yonigozlan/EdgeTAM-hf", "cuda", "bf16")
    assert describe(settings) == "EdgeTAM (yonigozlan/EdgeTAM-hf, bf16 on cuda)"
    assert settings_from_args(parser.parse_args([])).name == "grabcut"
    with pytest.raises(StudioError, match="precision"):
        TrackerSettings("grabcut", precision="fp8")


def test_refine_tracks_several_objects_in_one_run(studio, view, sam2_folder):
    studio.use_tracker(str(sam2_folder))
    view = studio.add_object(view, "the grey background").view
    list(studio.segment(view, all_objects=True))
    project = studio.project(view)
    before = {o.obj_id: project.get_masks(view.video, o.obj_id) for o in studio.objects(view)}
    engine = studio.tracker()[1]
    runs = []
    real_track = engine.track
    engine.track = lambda frames, conditioning, *rest: (runs.append(dict(conditioning)),
                                                        real_track(frames, conditioning, *rest))[1]
    message = studio.refine(view, all_objects=True, k=2).message
    [conditioning] = runs
    assert {o for masks in conditioning.values() for o in masks} == {1, 2}
    assert all(1 <= sum(o in masks for masks in conditioning.values()) <= 2 for o in (1, 2))  # k=2, non-empty
    assert any(not np.array_equal(project.get_masks(view.video, o), before[o]) for o in before)
    assert all(m.origin == Origin.MODEL for m in project.mask_infos(view.video))
