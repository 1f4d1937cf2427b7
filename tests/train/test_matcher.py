"""Matcher: exact assignment solver, the five matching costs on hand-worked values, query choice."""
import itertools
import math

import numpy as np
import pytest
import torch

from train.box_ops import box_cxcywh_to_xyxy, box_xyxy_to_cxcywh, generalized_box_iou
from train.matcher import (
    HungarianMatcher,
    box_costs,
    class_cost,
    linear_sum_assignment,
    mask_dice_cost,
    mask_focal_cost,
    prepare_target_masks,
)

LN2 = math.log(2)


def brute_force_min(cost: np.ndarray) -> float:
    n, m = cost.shape
    if n <= m:
        return min(sum(cost[i, p[i]] for i in range(n)) for p in itertools.permutations(range(m), n))
    return min(sum(cost[p[j], j] for j in range(m)) for p in itertools.permutations(range(n), m))


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (4, 4), (5, 5), (2, 5), (5, 2), (3, 6), (6, 4), (1, 4), (4, 1)])
def test_linear_sum_assignment_matches_brute_force(shape):
    rng = np.random.default_rng(sum(shape))
    for trial in range(30):
        # integer costs half of the time, to exercise ties
        cost = rng.integers(0, 4, shape).astype(float) if trial % 2 else rng.normal(size=shape)
        rows, cols = linear_sum_assignment(cost)
        assert len(rows) == len(cols) == min(shape)
        assert list(rows) == sorted(rows)
        assert len(set(rows)) == len(rows) and len(set(cols)) == len(cols)
        assert cost[rows, cols].sum() == pytest.approx(brute_force_min(cost), abs=1e-9)


def test_linear_sum_assignment_hand_worked_and_errors():
    cost = np.array([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]])
    rows, cols = linear_sum_assignment(cost)
    assert rows.tolist() == [0, 1, 2] and cols.tolist() == [1, 0, 2]  # 1 + 2 + 2 = 5
    # a single column is the first arg-min (as torch.min in the reference matcher)
    rows, cols = linear_sum_assignment(np.array([[3.0], [1.0], [1.0]]))
    assert rows.tolist() == [1] and cols.tolist() == [0]
    assert linear_sum_assignment(np.zeros((0, 3)))[0].size == 0
    with pytest.raises(ValueError):
        linear_sum_assignment(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError):
        linear_sum_assignment(np.zeros(3))


def test_box_conversions_and_giou_hand_worked():
    cxcywh = torch.tensor([[0.5, 0.5, 0.2, 0.2]])
    xyxy = box_cxcywh_to_xyxy(cxcywh)
    assert torch.allclose(xyxy, torch.tensor([[0.4, 0.4, 0.6, 0.6]]))
    assert torch.allclose(box_xyxy_to_cxcywh(xyxy), cxcywh)
    others = box_cxcywh_to_xyxy(torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.6, 0.5, 0.2, 0.2], [0.8, 0.5, 0.2, 0.2]]))
    giou = generalized_box_iou(others, xyxy)[:, 0]
    # identical: 1; half overlap: inter .02 / union .06 = 1/3, enclosing = union; disjoint: 0 - (.10 - .08) / .10
    assert giou.tolist() == pytest.approx([1.0, 1 / 3, -0.2], abs=1e-4)
    with pytest.raises(ValueError):
        generalized_box_iou(torch.tensor([[0.5, 0.5, 0.4, 0.6]]), xyxy)


def test_class_cost_hand_worked_binary_and_multiclass():
    # p = 0.5: pos = .25 * .25 * ln2, neg = .75 * .25 * ln2 -> pos - neg = -0.125 ln2
    # p = 0.9: pos = .25 * .01 * -ln .9, neg = .75 * .81 * -ln .1
    prob = torch.tensor([[[0.5], [0.9]], [[0.9], [0.5]]])  # [T=2, Q=2, K=1]
    valid = torch.tensor([1, 0])
    cost = class_cost(prob, torch.tensor([0, 0]), valid, num_classes=1)
    p9 = 0.25 * 0.01 * -math.log(0.9) - 0.75 * 0.81 * -math.log(0.1 + 1e-8)
    assert cost.tolist() == pytest.approx([-0.125 * LN2, p9], rel=1e-5)  # the invalid frame 1 is ignored
    both = class_cost(prob, torch.tensor([0, 0]), torch.tensor([1, 1]), num_classes=1)
    assert both.tolist() == pytest.approx([(-0.125 * LN2 + p9) / 2] * 2, rel=1e-5)
    assert class_cost(prob, torch.tensor([0, 0]), torch.tensor([0, 0]), 1).tolist() == [0.0, 0.0]
    # multi-class: the label's column is used
    prob3 = torch.tensor([[[0.9, 0.5, 0.1]]])  # [T=1, Q=1, K=3]
    assert class_cost(prob3, torch.tensor([1]), torch.tensor([1]), num_classes=3).item() == pytest.approx(
        -0.125 * LN2, rel=1e-5
    )


def test_box_costs_average_over_all_frames():
    tgt = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2]])
    pred = torch.tensor([
        [[0.5, 0.5, 0.2, 0.2], [0.6, 0.5, 0.2, 0.2]],  # frame 0: query 0 exact, query 1 shifted by .1
        [[0.5, 0.5, 0.2, 0.2], [0.8, 0.5, 0.2, 0.2]],  # frame 1: query 0 exact, query 1 disjoint
    ])
    l1, neg_giou = box_costs(pred, tgt)
    assert l1.tolist() == pytest.approx([0.0, (0.1 + 0.3) / 2], abs=1e-6)
    assert neg_giou.tolist() == pytest.approx([-1.0, -(1 / 3 - 0.2) / 2], abs=1e-4)


def test_mask_costs_hand_worked():
    tgt = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    logits = torch.tensor([
        [0.0] * 8,  # p = .5 everywhere
        [20.0, 20.0, -20.0, -20.0, 20.0, 20.0, -20.0, -20.0],  # covers 2 of the 4 target pixels + 2 others
    ])
    focal = mask_focal_cost(logits, tgt)
    assert focal[0].item() == pytest.approx((4 * 0.25 + 4 * 0.75) * 0.25 * LN2 / 8, rel=1e-5)
    # saturated logits: right pixels cost ~0, wrong pixels cost alpha_t * 1 * 20
    assert focal[1].item() == pytest.approx((2 * 0.25 * 20 + 2 * 0.75 * 20) / 8, rel=1e-4)
    dice = mask_dice_cost(logits, tgt)
    assert dice[0].item() == pytest.approx(-(2 * 2 + 1) / (4 + 4 + 1), rel=1e-5)
    assert dice[1].item() == pytest.approx(-(2 * 2 + 1) / (4 + 4 + 1), rel=1e-5)


def test_prepare_target_masks_pads_to_32_and_samples_stride_4():
    a = torch.zeros(2, 40, 33)
    a[0, 2, 6] = 1  # sampled: row 2 -> 0, col 6 -> 1
    a[1, 3, 3] = 1  # not on the sampling grid
    b = torch.zeros(2, 20, 20)
    b[1, 18, 18] = 1  # row 18 -> 4, col 18 -> 4
    out = prepare_target_masks([{"masks": a}, {"masks": b}])
    assert out.shape == (2, 2, 16, 16)  # padded to 64 x 64, then / 4
    assert out.sum().item() == 2
    assert out[0, 0, 0, 1] == 1 and out[1, 1, 4, 4] == 1
    with pytest.raises(ValueError):
        prepare_target_masks([{"masks": a}, {"masks": torch.zeros(3, 20, 20)}])


def _video(n_queries=3, n_frames=2, good=1, size=32):
    """A video whose target sits in the centre; query ``good`` predicts it exactly, the others miss."""
    h = size // 4
    tgt_masks = torch.zeros(n_frames, size, size)
    tgt_masks[:, 8:24, 8:24] = 1
    box = torch.tensor([0.5, 0.5, 0.5, 0.5])
    target = {
        "labels": torch.zeros(n_frames, dtype=torch.int64),
        "boxes": box.repeat(n_frames, 1),
        "masks": tgt_masks,
        "valid": torch.ones(n_frames, dtype=torch.int64),
    }
    logits = torch.zeros(1, n_frames, n_queries, 1)
    boxes = torch.tensor([0.2, 0.2, 0.1, 0.1]).repeat(1, n_frames, n_queries, 1)
    masks = torch.full((1, n_frames, n_queries, h, h), -10.0)
    boxes[0, :, good] = box
    masks[0, :, good] = prepare_target_masks([target])[0] * 20 - 10
    return {"pred_logits": logits, "pred_boxes": boxes, "pred_masks": masks}, target


def test_matcher_picks_the_matching_query_per_video():
    out0, tgt0 = _video(good=2)
    out1, tgt1 = _video(good=0)
    outputs = {k: torch.cat([out0[k], out1[k]]) for k in out0}
    indices = HungarianMatcher()(outputs, [tgt0, tgt1])
    assert [(i.tolist(), j.tolist()) for i, j in indices] == [([2], [0]), ([0], [0])]
    assert all(i.dtype == torch.int64 for pair in indices for i in pair)


def test_matcher_cost_is_the_weighted_sum_of_the_costs():
    outputs, target = _video()
    matcher = HungarianMatcher(cost_class=1, cost_bbox=0, cost_giou=0, cost_mask=0, cost_dice=0)
    prob = outputs["pred_logits"][0].sigmoid()
    expected = class_cost(prob, target["labels"], target["valid"], 1)
    assert torch.allclose(matcher.cost_matrices(outputs, [target])[0][:, 0], expected)
    matcher = HungarianMatcher()  # paper weights 2, 5, 2, 2, 5
    l1, giou = box_costs(outputs["pred_boxes"][0], target["boxes"])
    q_masks = outputs["pred_masks"][0].transpose(0, 1).flatten(1)
    t_mask = prepare_target_masks([target])[0].flatten()
    expected = 2 * expected + 5 * l1 + 2 * giou + 2 * mask_focal_cost(q_masks, t_mask) + 5 * mask_dice_cost(q_masks, t_mask)
    assert torch.allclose(matcher.cost_matrices(outputs, [target])[0][:, 0], expected)


def test_matcher_class_cost_can_decide_and_rejects_bad_input():
    outputs, target = _video(good=1)
    outputs["pred_logits"][0, :, 0] = 8.0  # query 0 is confident
    matcher = HungarianMatcher(cost_class=1, cost_bbox=0, cost_giou=0, cost_mask=0, cost_dice=0)
    assert matcher(outputs, [target])[0][0].tolist() == [0]
    outputs["pred_masks"] = outputs["pred_masks"][..., :4, :4]
    with pytest.raises(ValueError, match="pred_masks"):
        matcher(outputs, [target])
    with pytest.raises(ValueError):
        HungarianMatcher(0, 0, 0, 0, 0)
