"""Corrections through the studio's API: candidates on demand, pick by thumbnail or click, brush, propagate."""
from dataclasses import replace

import numpy as np
import pytest

from annotations import Origin
from referformer_core.overlay import object_colour
from studio.corrections import SCOPES, mask_from_editor
from studio.errors import StudioError
from studio.render import candidate_thumbnail
from studio.media import ImportOptions


@pytest.fixture
def segmented(studio, sample_video):
    view = studio.create_project("demo").view
    view = studio.import_file(view, sample_video, ImportOptions()).view
    view = studio.add_object(view, "the red square").view
    list(studio.segment(view))
    return view


def test_candidates_are_every_query_best_first(studio, segmented):
    found = studio.candidates(studio.goto(segmented, 3).view)
    assert len(found) == 5
    assert [c.video_score for c in found] == sorted((c.video_score for c in found), reverse=True)
    assert [c.in_use for c in found] == [True] + [False] * 4  # the model's choice is what a run stored
    assert found[0].thumbnail.shape[0] == 96 and found[0].caption.endswith(" ✓")
    predictor, state = studio._model_state(segmented, create=False)
    for c in found:
        assert c.caption.startswith(f"query {c.query} · {c.video_score:.2f} · ")
        assert c.frame_score == pytest.approx(float(predictor.query_masks(state, 1, c.query, range(3, 4))[1][0]))


def test_the_candidate_in_use_follows_a_pick(studio, segmented):
    view = studio.goto(segmented, 3).view
    runner_up = studio.candidates(view)[1].query
    view = studio.pick_candidate(view, runner_up).view
    assert [c.query for c in studio.candidates(view) if c.in_use] == [runner_up]
    assert [c.in_use for c in studio.candidates(studio.goto(view, 2).view)] == [True] + [False] * 4


def test_picking_a_candidate_for_a_range_stores_its_masks_as_hand(studio, segmented):
    view = studio.goto(segmented, 2).view
    predictor, state = studio._model_state(view, create=False)
    runner_up = [c.query for c in studio.candidates(view)][1]
    message = studio.pick_candidate(view, runner_up, SCOPES[1], until=5).message
    assert message == f"candidate {runner_up} picked for 4 frame(s)"
    expected, _ = predictor.query_masks(state, 1, runner_up, range(2, 6))
    project = studio.project(view)
    for i, t in enumerate(range(2, 6)):
        assert np.array_equal(project.get_mask("square", 1, t), expected[i])
    origins = {m.frame: m.origin for m in project.mask_infos("square", 1)}
    assert [origins[t] for t in range(8)] == [Origin.MODEL] * 2 + [Origin.HAND] * 4 + [Origin.MODEL] * 2
    studio.pick_candidate(view, runner_up, SCOPES[2])
    assert {m.origin for m in project.mask_infos("square", 1)} == {Origin.HAND}


def test_a_picked_candidate_is_not_a_low_score_frame(studio, segmented):
    view = studio.goto(segmented, 2).view
    least = min(studio.candidates(view), key=lambda c: c.video_score).query
    low = studio.jump(studio.goto(view, 7).view, "low", threshold=1.0).view
    assert low.frame == 0  # the model's masks: all below 1
    view = studio.pick_candidate(view, least, SCOPES[1], until=5).view
    assert all(m.score is not None for m in studio.project(view).mask_infos("square", 1))  # the pick keeps its scores
    low = studio.jump(studio.goto(view, 1).view, "low", threshold=1.0).view
    assert low.frame == 6  # frames 2-5: chosen by a person
    curve = studio.curve_image(view, threshold=1.0)
    red = (curve[..., 0] > 200) & (curve[..., 1] < 60) & (curve[..., 2] < 60)
    columns = np.flatnonzero(red.any(0))
    width = curve.shape[1]
    assert columns.size and not ((columns > width * 2 / 8) & (columns < width * 6 / 8)).any()


def test_a_click_picks_the_best_candidate_covering_it(studio, segmented):
    view = studio.goto(segmented, 1).view
    predictor, state = studio._model_state(view, create=False)
    # random weights: put the threshold mid-way through this frame's mask probabilities so candidates differ
    median = float(state.results[1].mask_logits[1].sigmoid().median())
    predictor.settings = replace(predictor.settings, threshold=median)
    scores = predictor.query_scores(state, 1)
    masks = {q: predictor.query_masks(state, 1, q, range(1, 2))[0][0] for q in range(5)}
    covered = np.argwhere(np.any(np.stack(list(masks.values())), 0))
    assert len(covered) > 0
    y, x = covered[len(covered) // 2]
    expected = max((q for q in masks if masks[q][y, x]), key=lambda q: scores[q])
    message = studio.pick_at(view, float(x), float(y)).message
    assert message == f"candidate {expected} picked for 1 frame(s)"
    empty = np.argwhere(~np.any(np.stack(list(masks.values())), 0))
    assert len(empty) > 0
    with pytest.raises(StudioError, match="none of the model's candidates covers"):
        studio.pick_at(view, float(empty[0][1]), float(empty[0][0]))


def test_candidates_need_a_run_with_the_current_expression(studio, segmented):
    view = studio.update_object(segmented, "the grey background").view
    with pytest.raises(StudioError, match="segment object 1 with its current expression first"):
        studio.candidates(view)


def test_brush_replaces_the_frame_mask_at_full_resolution(studio, segmented):
    view = studio.goto(segmented, 4).view
    value = studio.brush_start(view)
    assert value["background"].shape == (72, 128, 3) and value["layers"][0].shape == (72, 128, 4)
    layer = np.zeros((72, 128, 4), np.uint8)
    layer[10:30, 40:90] = (*object_colour(1), 140)
    layer[15:20, 50:60, 3] = 0  # erased
    value["layers"] = [layer]
    message = studio.brush_save(view, value).message
    stored = studio.project(view).get_mask("square", 1, 4)
    expected = layer[..., 3] > 0
    assert np.array_equal(stored, expected) and "saved on frame 4" in message
    assert [m.origin for m in studio.project(view).mask_infos("square", 1) if m.frame == 4] == [Origin.HAND]
    small = np.zeros((36, 64, 4), np.uint8)
    small[5:15, 20:45, 3] = 255
    assert mask_from_editor({"layers": [small]}, (72, 128)).sum() == 20 * 50
    with pytest.raises(StudioError, match="nothing painted"):
        studio.brush_save(view, {"background": None, "layers": [], "composite": None})


def test_a_later_model_run_keeps_the_correction_and_propagation_changes_the_next_frames(studio, segmented):
    view = studio.goto(segmented, 0).view
    truth = np.zeros((72, 128), bool)
    truth[24:48, 4:28] = True
    studio.brush_save(view, {"layers": [np.dstack([np.zeros((72, 128, 3), np.uint8), truth.astype(np.uint8) * 255])]})
    project = studio.project(view)
    before = {t: project.get_mask("square", 1, t).copy() for t in range(1, 4)}
    message = studio.propagate(view, "forward", 3).message
    assert message.startswith("propagated to 3 frame(s)")
    for t in range(1, 4):
        after = project.get_mask("square", 1, t)
        assert not np.array_equal(after, before[t]) and after.sum() > 0.5 * truth.sum()
    list(studio.segment(view))
    assert np.array_equal(project.get_mask("square", 1, 0), truth)
    assert {m.origin for m in project.mask_infos("square", 1) if m.frame < 4} == {Origin.HAND, Origin.PROPAGATED}
    assert studio.undo(view).message.startswith("undid")


def test_a_candidate_thumbnail_lights_its_mask_and_dims_the_rest():
    image = np.full((120, 160, 3), 200, np.uint8)
    mask = np.zeros((120, 160), bool)
    mask[30:90, 40:100] = True
    colour = object_colour(1)
    thumb = candidate_thumbnail(image, mask, colour, height=60)
    assert thumb.shape == (60, 80, 3)
    assert (thumb[5, 5] == 60).all()                                 # outside: dimmed to 30 %
    inside = thumb[30, 35].astype(int)
    assert inside.sum() > 3 * 120 and inside[2] < 200                # inside: lit, tinted by the object colour
    assert (thumb[15, 35] == colour).all() or (thumb[14, 35] == colour).all()  # outline at the mask's top edge
    assert (candidate_thumbnail(image, np.zeros_like(mask), colour, 60) == 60).all()
