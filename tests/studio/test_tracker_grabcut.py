"""GrabCut, the offline engine: a box or clicks on a generated shape over texture, and flow tracking across."""
import cv2
import numpy as np
import pytest

from studio.errors import StudioError
from studio.grabcut import GrabCutEngine, grabcut_mask
from studio.tracker import Frames, Prompt
from train.metrics import region_similarity


def textured_scene(h=180, w=240, seed=0):
    """``[h, w, 3]`` uint8 grey-green texture with an orange ellipse and a second orange disc; their masks."""
    rng = np.random.default_rng(seed)
    image = np.clip(rng.normal((90, 120, 90), 25, size=(h, w, 3)), 0, 255).astype(np.uint8)
    ellipse = np.zeros((h, w), np.uint8)
    cv2.ellipse(ellipse, (80, 90), (45, 30), 20, 0, 360, 1, -1)
    disc = np.zeros((h, w), np.uint8)
    cv2.circle(disc, (180, 80), 22, 1, -1)
    for shape in (ellipse, disc):
        image[shape > 0] = np.clip(rng.normal((230, 140, 40), 12, size=(int(shape.sum()), 3)), 0, 255)
    return image, ellipse > 0, disc > 0


def test_box_around_a_shape_finds_it():
    image, ellipse, _ = textured_scene()
    mask = grabcut_mask(image, Prompt(box=(25, 50, 135, 130)))
    assert region_similarity(mask, ellipse) >= 0.9


def test_negative_click_inside_a_second_shape_leaves_it_out():
    image, ellipse, disc = textured_scene()
    box = (25, 40, 215, 130)  # around both shapes
    both = grabcut_mask(image, Prompt(box=box))
    assert (both & disc).sum() > 0.5 * disc.sum()
    mask = grabcut_mask(image, Prompt(((180.0, 80.0), (80.0, 90.0)), (0, 1), box))
    assert (mask & disc).sum() < 0.05 * disc.sum()
    assert region_similarity(mask, ellipse) >= 0.9


def test_clicks_refine_the_current_mask():
    image, ellipse, disc = textured_scene()
    current = ellipse | disc
    mask = grabcut_mask(image, Prompt(((180.0, 80.0),), (0,)), current)
    assert region_similarity(mask, ellipse) >= 0.9


def test_points_alone_and_nothing_to_go_on():
    image, ellipse, _ = textured_scene()
    assert region_similarity(grabcut_mask(image, Prompt(((80.0, 90.0), (60.0, 85.0)), (1, 1))), ellipse) >= 0.8
    with pytest.raises(StudioError, match="click on the object"):
        grabcut_mask(image, Prompt(((80.0, 90.0),), (0,)))


def test_track_follows_a_moving_shape_and_restarts_at_conditioning_frames():
    image, ellipse, _ = textured_scene()
    frames = np.stack([np.roll(image, 3 * t, axis=1) for t in range(6)])
    truth = [np.roll(ellipse, 3 * t, axis=1) for t in range(6)]
    video = Frames(("roll",), 6, *image.shape[:2], lambda t: frames[t])
    correction = np.zeros_like(ellipse)
    correction[5:15, 5:15] = True
    out = dict(GrabCutEngine().track(video, {1: {1: truth[1]}, 4: {1: correction}}, 1, "both", 6))
    assert sorted(out) == [0, 1, 2, 3, 4, 5]
    assert region_similarity(out[3][1], truth[3]) >= 0.9
    assert region_similarity(out[0][1], truth[0]) >= 0.9
    assert np.array_equal(out[4][1], correction)  # a conditioning frame is taken as given


def test_track_keeps_an_object_moving_by_half_its_size_per_frame():
    from tests.studio.conftest import moving_square_frames

    frames = moving_square_frames()  # a 24-pixel square moving 13 pixels per frame
    truth = [(f[..., 0] > 150) & (f[..., 1] < 100) for f in frames]
    video = Frames(("fast",), len(frames), *frames.shape[1:3], lambda t: frames[t])
    out = dict(GrabCutEngine().track(video, {0: {1: truth[0]}}, 0, "forward", 7))
    assert min(region_similarity(out[t][1], truth[t]) for t in range(1, 8)) >= 0.8
    back = dict(GrabCutEngine().track(video, {7: {1: truth[7]}}, 7, "backward", 7))
    assert min(region_similarity(back[t][1], truth[t]) for t in range(7)) >= 0.8
