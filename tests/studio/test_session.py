"""The studio's API end to end without a browser: projects, objects, segmenting into the store, review, export."""
import json
import zipfile
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from pycocotools.coco import COCO

from annotations import Origin, read_ytvos
from referformer_core.errors import ExpressionError
from studio.errors import StudioError, user_message
from studio.media import ImportOptions
from referformer_core.settings import RunSettings
from studio.projects import Answer, View
from studio.session import Studio, StudioConfig


@pytest.fixture
def loaded(studio, sample_video):
    view = studio.create_project("demo").view
    answer = studio.import_file(view, sample_video, ImportOptions())
    view, message = answer.view, answer.message
    assert message.startswith("imported square: 8 frames of 128x72")
    return view


def test_objects_keep_their_ids_and_colours_when_others_change(studio, loaded):
    v1 = studio.add_object(loaded, "the red square", "box").view
    v2 = studio.add_object(v1, "the grey background", "").view
    v3 = studio.add_object(v2, "the left edge", "person").view
    assert [o.obj_id for o in studio.objects(v3)] == [1, 2, 3]
    view = studio.delete_object(studio.select_object(v3, 2).view).view
    assert [o.obj_id for o in studio.objects(view)] == [1, 3]
    view = studio.add_object(view, "another one").view
    assert [o.obj_id for o in studio.objects(view)] == [1, 3, 4]
    view = studio.update_object(studio.select_object(view, 1).view, "the red box", "others").view
    obj = studio.current_object(view)
    assert obj.expressions == ("the red box",) and obj.category == "others"
    assert studio.project(view).object("square", 3).expressions == ("the left edge",)
    assert studio.project(view).object("square", 2 + 1).category == "person"


@pytest.mark.parametrize("text, error", [("", "empty"), ("   ", "empty"), ("x" * 10_000, "characters long"),
                                         ("!!!", "no letters")])
def test_bad_expressions_are_refused_in_one_line(studio, loaded, text, error):
    with pytest.raises(ExpressionError, match=error) as caught:
        studio.add_object(loaded, text)
    assert len(user_message(caught.value)) <= 300 and "\n" not in user_message(caught.value)
    assert studio.objects(loaded) == []


def test_segment_writes_model_masks_window_by_window(studio, loaded):
    view = studio.add_object(loaded, "the red square", "box").view
    steps = []
    stored_after_first = None
    for step in studio.segment(view):
        steps.append(step)
        if stored_after_first is None:
            stored_after_first = len(studio.project(view).mask_infos("square", 1))
    first_pass = [s for s in steps if not s.final]
    assert [s.last_frames for s in first_pass] == [range(0, 1), range(1, 4), range(4, 7), range(7, 8)]
    assert stored_after_first == 1, "the first window's mask must be in the store before the rest is done"
    assert first_pass[-1].done == 8 and first_pass[-1].total == 8
    infos = studio.project(view).mask_infos("square", 1)
    assert [m.frame for m in infos] == list(range(8))
    assert all(m.origin == Origin.MODEL and 0 <= m.score <= 1 for m in infos)
    assert "frames/s" in first_pass[0].describe()


def test_segment_keeps_hand_edits_unless_asked(studio, loaded):
    view = studio.add_object(loaded, "the red square").view
    project = studio.project(view)
    hand = np.zeros((72, 128), bool)
    hand[10:20, 10:20] = True
    project.set_mask("square", 1, 3, hand, Origin.HAND)
    project.set_mask("square", 1, 5, hand, Origin.PROPAGATED)
    list(studio.segment(view))
    assert np.array_equal(project.get_mask("square", 1, 3), hand)
    origins = {m.frame: m.origin for m in project.mask_infos("square", 1)}
    assert origins[3] == Origin.HAND and origins[5] == Origin.PROPAGATED and origins[4] == Origin.MODEL
    list(studio.segment(view, overwrite_edits=True))
    assert {m.origin for m in project.mask_infos("square", 1)} == {Origin.MODEL}


def test_segment_needs_an_object_with_an_expression_and_a_model(studio, loaded, tmp_path):
    with pytest.raises(StudioError, match="object"):
        list(studio.segment(loaded))
    with pytest.raises(StudioError, match="nothing to segment"):
        list(studio.segment(loaded, all_objects=True))
    nomodel = Studio(StudioConfig(tmp_path / "projects", tmp_path / "dl", RunSettings()))
    view = nomodel.add_object(nomodel.open_project("demo").view, "the red square").view
    with pytest.raises(StudioError, match="--checkpoint"):
        list(nomodel.segment(view))
    nomodel.close()


def test_review_navigation_marks_and_undo(studio, loaded):
    view = studio.add_object(loaded, "the red square").view
    list(studio.segment(view))
    view = studio.goto(view, 2).view
    answer = studio.mark(view, "reviewed")
    view, message = answer.view, answer.message
    assert view.frame == 3 and message == "frame 2 marked reviewed"
    assert studio.jump(studio.goto(view, 1).view, "unreviewed").view.frame == 3
    assert "1/8 frames reviewed" in studio.status_line(view)
    scores = [m.score for m in studio.project(view).mask_infos("square", 1)]
    low = studio.jump(studio.goto(view, 7).view, "low", threshold=1.0).view
    assert low.frame == 0 and scores[0] < 1.0
    with pytest.raises(StudioError, match="no frame scores below"):
        studio.jump(view, "low", threshold=0.0)
    assert studio.undo(view).message.startswith("undid: mark")
    assert "0/8 frames reviewed" in studio.status_line(view)
    assert studio.redo(view).message.startswith("redid")
    studio.mark_all(view, "reviewed")
    with pytest.raises(StudioError, match="every frame is reviewed"):
        studio.jump(view, "unreviewed")
    assert studio.step(studio.goto(view, 7).view, 1).view.frame == 0
    assert studio.goto(view, 99).view.frame == 7


def test_reopening_resumes_where_the_user_was(studio, loaded, tmp_path, tiny_model):
    view = studio.add_object(loaded, "the red square").view
    view = studio.add_object(view, "the background").view
    view = studio.goto(studio.select_object(view, 1).view, 5).view
    other = Studio(studio.config)
    assert other.open_project("demo").view == View("demo", "square", 5, 1)
    (studio.library.folder("demo") / "studio.json").write_text("{not json")
    assert other.open_project("demo").view == View("demo", "square", 0, 1)
    other.close()


def test_two_tabs_on_one_project_see_each_others_edits(studio, loaded):
    tab_a = loaded
    tab_b = studio.open_project("demo").view
    tab_a = studio.add_object(tab_a, "the red square").view
    tab_b = studio.add_object(tab_b, "the background").view
    assert [o.obj_id for o in studio.objects(tab_a)] == [1, 2]
    second = Studio(studio.config)  # another process would open its own connection
    view = second.add_object(second.open_project("demo").view, "a third thing").view
    assert [o.obj_id for o in studio.objects(tab_a)] == [1, 2, 3]
    second.close()


def test_projects_are_listed_and_names_checked(studio, loaded):
    studio.create_project("second")
    assert set(studio.library.names()) == {"demo", "second"}
    for bad in ("", "../x", "a/b", ".hidden"):
        with pytest.raises(StudioError, match="project names"):
            studio.create_project(bad)
    with pytest.raises(StudioError, match="already exists"):
        studio.create_project("demo")
    with pytest.raises(StudioError, match="no project named"):
        studio.open_project("missing")


def test_export_each_format_as_a_zip(studio, loaded, tmp_path):
    view = studio.add_object(loaded, "the red square", "box").view
    project = studio.project(view)
    truth = np.zeros((72, 128), bool)
    truth[24:48, 4:28] = True
    project.set_masks("square", 1, {t: truth for t in range(8)}, Origin.HAND)
    studio.mark(studio.goto(view, 2).view, "reviewed")
    answer = studio.export(view, "Ref-Youtube-VOS")
    path, note = answer.file, answer.message
    assert "'others'" in note and "box" in note
    out = tmp_path / "ytvos"
    zipfile.ZipFile(path).extractall(out)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["videos"]["square"]["objects"]["1"]["category"] == "others"
    dataset = read_ytvos(out)
    track = dataset.videos[0].objects[0]
    assert (track.category, track.expressions, len(dataset.videos[0].frames)) == ("box", ["the red square"], 8)
    answer = studio.export(view, "COCO", reviewed_only=True)
    path, note = answer.file, answer.message
    zipfile.ZipFile(path).extractall(tmp_path / "coco")
    coco_json = next((tmp_path / "coco").rglob("*.json"))
    coco = COCO(str(coco_json))
    assert len(coco.getImgIds()) == 1 and note.startswith("exported 1 video(s), 1 frames")
    ann = coco.loadAnns(coco.getAnnIds())[0]
    assert np.array_equal(coco.annToMask(ann).astype(bool), truth)
    path = studio.export(view, "YouTube-VIS").file
    assert zipfile.ZipFile(path).testzip() is None
    with pytest.raises(StudioError, match="unknown export format"):
        studio.export(view, "VOC")


def test_export_with_nothing_reviewed_says_so(studio, loaded):
    with pytest.raises(StudioError, match="no reviewed frames"):
        studio.export(loaded, "COCO", reviewed_only=True)


def test_preview_mp4_has_every_frame(studio, loaded):
    import av

    view = studio.add_object(loaded, "the red square").view
    path = studio.preview(view).file
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 8


def test_pictures(studio, loaded):
    view = studio.add_object(loaded, "the red square").view
    mask = np.zeros((72, 128), bool)
    mask[30:40, 50:70] = True
    studio.project(view).set_mask("square", 1, 0, mask, Origin.HAND, 0.2)
    plain = studio.project(view).read_frame("square", 0)
    image = studio.frame_image(view, show_boxes=True, show_labels=True)
    assert image.shape == plain.shape
    assert np.abs(image[35, 60].astype(int) - plain[35, 60]).sum() > 30, "the mask must be drawn"
    assert np.array_equal(image[5, 5], plain[5, 5]) or np.abs(image[5, 5].astype(int) - plain[5, 5]).sum() < 5
    curve = studio.curve_image(view)
    assert curve.shape == (110, 900, 3)
    assert studio.curve_click(view, 899).view.frame == 7 and studio.curve_click(view, 0).view.frame == 0
    strip = studio.filmstrip(view)
    assert [t for _, t in strip] == list(range(8))


def test_each_project_can_choose_its_checkpoint(studio, loaded, tmp_path, tiny_model):
    other = tmp_path / "finetuned.pth"
    other.write_bytes(tiny_model[0].read_bytes())
    answer = studio.select_model(loaded, str(other))
    view, message = answer.view, answer.message
    assert studio.model_settings(view).checkpoint == str(other) and "finetuned.pth" in message
    second = studio.create_project("second").view
    assert studio.model_settings(second).checkpoint == str(tiny_model[0])
    view = studio.select_model(view, None).view
    assert studio.model_settings(view).checkpoint == str(tiny_model[0])
    with pytest.raises(StudioError, match="does not exist"):
        studio.select_model(view, str(tmp_path / "missing.pth"))


def test_finetuning_from_the_studio_says_what_it_needs(studio, loaded):
    with pytest.raises(StudioError, match="no reviewed frames"):
        studio.finetune_start(loaded)
    assert studio.finetune_status(loaded) is None
    with pytest.raises(StudioError, match="no fine-tuning run"):
        studio.finetune_cancel(loaded)
    choices = studio.model_choices(loaded)
    assert choices[0][1] == studio.config.model.checkpoint and len(choices) == 1


QUERIES = {"project", "objects", "current_object", "candidates", "brush_start", "frame_image", "curve_image",
           "filmstrip", "status_line", "finetune_status", "model_choices", "model_settings", "tracker", "tracker_line",
           "use_tracker", "segment", "track", "close"}


def test_every_action_returns_an_answer(studio, loaded, sample_video, monkeypatch):
    """One shape for the UI: every public method that is not a query returns an ``Answer`` with a one-line
    message, and only export and preview name a file."""
    from studio import finetune

    monkeypatch.setattr(finetune, "start_run", lambda *args, **kwargs: "run-1")  # no training process in this test
    monkeypatch.setattr(finetune, "list_runs", lambda project: [SimpleNamespace(run_id="run-1", state="running")])
    monkeypatch.setattr(finetune, "cancel_run", lambda project, run_id: SimpleNamespace(message=f"cancelled {run_id}"))
    studio.config.media_dirs = (sample_video.parent,)
    view = studio.add_object(loaded, "the red square").view
    list(studio.segment(view))
    predictor, state = studio._model_state(view, create=False)
    median = float(state.results[1].mask_logits[0].sigmoid().median())  # random weights: candidates cover half
    predictor.settings = replace(predictor.settings, threshold=median)
    queries = range(len(predictor.query_scores(state, 1)))
    covered = np.argwhere(np.any([predictor.query_masks(state, 1, q, range(0, 1))[0][0] for q in queries], 0))
    y, x = covered[len(covered) // 2]
    project = studio.project(view)
    frames = [project.read_frame("square", t) for t in range(8)]
    red = {t: (f[..., 0] > 150) & (f[..., 1] < 100) for t, f in enumerate(frames)}  # what refine tracks: the square
    assert all(mask.sum() > 200 for mask in red.values())
    project.set_masks("square", 1, red, Origin.MODEL, {t: 0.5 for t in red})
    layer = np.zeros((72, 128, 4), np.uint8)
    layer[24:48, 4:28, 3] = 255
    calls = [
        (studio.goto, (view, 3)), (studio.step, (view, 1)), (studio.jump, (view, "low", 1.0)),
        (studio.curve_click, (view, 450.0)), (studio.click, (view, (), (2, 20, 30, 50))), (studio.refine, (view,)),
        (studio.pick_candidate, (view, 0)), (studio.pick_at, (view, float(x), float(y))),
        (studio.brush_save, (view, {"layers": [layer]})), (studio.propagate, (view, "forward", 2)),
        (studio.mark, (view, "reviewed")), (studio.mark_all, (view, "reviewed")), (studio.undo, (view,)),
        (studio.redo, (view,)), (studio.export, (view, "COCO")), (studio.preview, (view,)),
        (studio.finetune_start, (view,)), (studio.finetune_cancel, (view,)), (studio.select_model, (view, None)),
        (studio.add_object, (view, "the grey background")), (studio.select_object, (view, 2)),
        (studio.update_object, (replace(view, obj_id=2), "the grey box", "box")),
        (studio.delete_object, (replace(view, obj_id=2),)),
        (studio.import_file, (view, sample_video, ImportOptions())),
        (studio.import_media_path, (view, sample_video.name, ImportOptions())),
        (studio.select_video, (view, "square")), (studio.remove_video, (View("demo", "square-2"),)),
        (studio.create_project, ("other",)), (studio.open_project, ("demo",)), (studio.resume, (View(),)),
        (studio.open_sample, ("sample_1",)),
    ]
    for method, args in calls:
        answer = method(*args)
        assert isinstance(answer, Answer) and isinstance(answer.view, View), (method.__name__, answer)
        assert "\n" not in answer.message, (method.__name__, answer.message)
        makes_file = method.__name__ in ("export", "preview")
        assert (answer.file is not None) == makes_file, (method.__name__, answer.file)
        assert not makes_file or answer.file.is_file()
    actions = {name for name in dir(Studio) if not name.startswith("_") and callable(getattr(Studio, name))} - QUERIES
    assert actions == {method.__name__ for method, _ in calls}, "a new action of Studio belongs in this list"
