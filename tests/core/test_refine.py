"""Mask refinement with a guided filter: the closed form matches a per-pixel solve, edges snap to the frame's."""
import cv2
import numpy as np
import pytest
import torch

from referformer_core.pipeline import upsample_masks
from referformer_core.refine import SUPPORT, guided_filter, guided_radius


def reference_guided_filter(guide: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s colour guided filter written plainly: a 3x3 solve per pixel."""
    def box(x):
        return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), normalize=True, borderType=cv2.BORDER_REFLECT)
    image = guide.astype(np.float64) / 255
    mean_i, mean_p = box(image), box(p.astype(np.float64))
    cov = box(image * p[..., None]) - mean_i * mean_p[..., None]
    var = np.stack([np.stack([box(image[..., i] * image[..., j]) - mean_i[..., i] * mean_i[..., j]
                              for j in range(3)], -1) for i in range(3)], -2) + eps * np.eye(3)
    a = np.linalg.solve(var, cov[..., None])[..., 0]
    b = mean_p - (a * mean_i).sum(-1)
    return (box(a) * image).sum(-1) + box(b)


def test_the_closed_form_matches_a_solve_per_pixel():
    rng = np.random.default_rng(0)
    guide = cv2.GaussianBlur(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8), (5, 5), 0)
    p = rng.random((40, 56)).astype(np.float32)
    np.testing.assert_allclose(guided_filter(guide, p, 3, 0.01), reference_guided_filter(guide, p, 3, 0.01),
                               atol=2e-4)


def test_a_blurred_shifted_mask_snaps_to_the_frame_edge():
    guide = np.zeros((60, 80, 3), np.uint8)
    guide[:, 40:] = (200, 120, 40)                                    # the object: x >= 40
    x = np.arange(80, dtype=np.float32)
    coarse = np.tile(1 / (1 + np.exp(-(x - 35) / 3)), (60, 1))       # blurred, its edge 5 px off
    truth = np.zeros((60, 80), bool)
    truth[:, 40:] = True
    before = coarse > 0.5
    after = guided_filter(guide, coarse, 8) > 0.5
    iou = lambda m: (m & truth).sum() / (m | truth).sum()  # noqa: E731
    assert iou(after) > 0.97 and iou(after) > iou(before) + 0.05


def test_a_flat_frame_leaves_a_flat_mask_alone_and_sizes_must_match():
    guide = np.full((30, 30, 3), 90, np.uint8)
    np.testing.assert_allclose(guided_filter(guide, np.full((30, 30), 0.7, np.float32)), 0.7, atol=1e-5)
    assert guided_radius(240, 320) == 8 and guided_radius(10, 10) == 1
    with pytest.raises(ValueError, match="differ in size"):
        guided_filter(guide, np.zeros((30, 31), np.float32))


def test_upsample_masks_refines_at_the_working_size_then_resizes():
    x = torch.arange(40, dtype=torch.float32)
    logits = ((x - 9.0) / 1.5).expand(2, 30, 40).contiguous()        # coarse, blurred: edge at 37 of 160 working
    guides = torch.zeros((2, 3, 120, 160), dtype=torch.uint8)
    guides[:, :, :, 40:] = 255                                         # the frames' edge: 40 of 160
    plain = upsample_masks(logits, (240, 320))
    refined = upsample_masks(logits, (240, 320), guides=guides)
    assert plain.shape == refined.shape == (2, 240, 320) and refined.dtype == bool
    edge = lambda m: int(np.argmax(m[0, 120]))  # noqa: E731  first masked column at the original size
    assert abs(edge(refined) - 80) < abs(edge(plain) - 80) - 2, (edge(plain), edge(refined))


def test_only_the_box_around_the_mask_is_filtered_with_the_whole_frame_s_result():
    rng = np.random.default_rng(1)
    guide = cv2.GaussianBlur(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8), (7, 7), 0)
    yy, xx = np.mgrid[:96, :128]
    logits = 6 - np.hypot(yy - 30, xx - 90) / 2                      # a blob of radius 12 at (90, 30), far from 0
    probs = (1 / (1 + np.exp(-logits))).astype(np.float32)
    full = reference_guided_filter(guide, probs, 4, 0.01)  # the whole frame
    cropped = guided_filter(guide, probs, 4, 0.01)
    assert (probs > SUPPORT).mean() < 0.2                                # the box is a small part of the frame
    np.testing.assert_allclose(cropped, full, atol=1e-5)  # 7e-7 here; a margin of two radii would leave 3e-5
    assert np.array_equal(cropped > 0.5, full > 0.5)
    assert cropped[95, 0] == probs[95, 0] != full[95, 0]                  # far from the blob: not filtered
    empty = np.full((96, 128), SUPPORT / 2, np.float32)
    np.testing.assert_array_equal(guided_filter(guide, empty, 4), empty)  # nothing to refine: returned as it came
