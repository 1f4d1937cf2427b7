"""Flow propagation: a corrected mask follows the object, stops where it should, and is stored as 'propagated'."""
import numpy as np
import pytest

from annotations import Origin
from studio.errors import StudioError
from studio.propagate import DriftLimits, object_motion, propagate


def textured_scene(t=12, h=96, w=160, step=3, seed=0):
    """Frames ``[t, h, w, 3]`` of a textured square moving right by ``step`` px per frame, and its masks."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)
    background = np.repeat(np.repeat(background[::4, ::4], 4, 0), 4, 1)[:h, :w]
    patch = rng.integers(0, 255, size=(8, 8, 3), dtype=np.uint8).repeat(4, 0).repeat(4, 1)
    frames, masks = [], []
    for i in range(t):
        frame = background.copy()
        mask = np.zeros((h, w), bool)
        x, y = 20 + i * step, 30
        frame[y:y + 32, x:x + 32] = patch
        mask[y:y + 32, x:x + 32] = True
        frames.append(frame)
        masks.append(mask)
    return np.stack(frames), np.stack(masks)


def iou(a, b):
    return np.logical_and(a, b).sum() / np.logical_or(a, b).sum()


@pytest.fixture
def scene(library):
    frames, truth = textured_scene()
    project = library.create("flow")
    project.add_video("v", iter(frames))
    project.add_object("v", ["the square"])
    return project, truth


def test_corrected_mask_follows_the_object_better_than_leaving_it(scene):
    project, truth = scene
    jpeg_truth = truth  # frames are stored as JPEG; the truth is exact
    project.set_mask("v", 1, 0, truth[0], Origin.HAND)
    result = propagate(project, "v", 1, 0, "forward", max_frames=10)
    assert result.frames == list(range(1, 11)) and result.stops == {"forward": "reached the frame limit"}
    for t in range(1, 11):
        mask = project.get_mask("v", 1, t)
        assert iou(mask, jpeg_truth[t]) > 0.8, t
        assert iou(mask, jpeg_truth[t]) > iou(truth[0], jpeg_truth[t]), t
    infos = {m.frame: m.origin for m in project.mask_infos("v", 1)}
    assert infos[0] == Origin.HAND and all(infos[t] == Origin.PROPAGATED for t in range(1, 11))
    assert project.undo().startswith("propagated")
    assert project.get_mask("v", 1, 5) is None


def test_stops_at_the_next_hand_edit_and_goes_backward(scene):
    project, truth = scene
    project.set_mask("v", 1, 6, truth[6], Origin.HAND)
    project.set_mask("v", 1, 9, truth[9], Origin.HAND)
    result = propagate(project, "v", 1, 6, "both", max_frames=20)
    assert result.frames == [0, 1, 2, 3, 4, 5, 7, 8]
    assert result.stops["forward"] == "frame 9 was edited by hand"
    assert np.array_equal(project.get_mask("v", 1, 9), truth[9])
    assert iou(project.get_mask("v", 1, 2), truth[2]) > 0.8
    assert "propagated to 8 frame(s)" in result.describe()


def test_stops_when_a_confident_model_mask_disagrees(scene):
    project, truth = scene
    project.set_mask("v", 1, 0, truth[0], Origin.HAND)
    elsewhere = np.zeros_like(truth[0])
    elsewhere[70:90, 120:150] = True
    project.set_mask("v", 1, 4, elsewhere, Origin.MODEL, 0.95)
    result = propagate(project, "v", 1, 0, "forward", max_frames=10)
    assert result.frames == [1, 2, 3] and "disagrees at frame 4" in result.stops["forward"]
    unsure = propagate(project, "v", 1, 0, "forward", max_frames=10, limits=DriftLimits(model_score=0.99))
    assert 4 in unsure.frames


def test_needs_a_mask_to_start_from(scene):
    project, _ = scene
    with pytest.raises(StudioError, match="no mask on frame 3"):
        propagate(project, "v", 1, 3)
    with pytest.raises(StudioError, match="direction"):
        propagate(project, "v", 1, 3, "sideways")


def test_a_one_pixel_mask_is_shifted_not_refused():
    rng = np.random.default_rng(1)
    source = rng.integers(0, 255, (40, 60), dtype=np.uint8)
    target = np.roll(source, 2, axis=1)
    mask = np.zeros((40, 60), bool)
    mask[20, 30] = True
    transform = object_motion(mask, source, target)
    assert transform.shape == (2, 3) and np.allclose(transform[:, :2], np.eye(2))
