"""Losses on hand-worked values: focal, dice, and the criterion's five losses, normalisation and aux layers."""
import math

import pytest
import torch

from train.losses import SetCriterion, build_weight_dict, dice_loss, sigmoid_focal_loss, weighted_total
from train.matcher import HungarianMatcher

LN2 = math.log(2)
POS = 0.25 * 0.25 * LN2  # focal loss of a logit 0 on a positive: alpha * (1 - .5)^2 * ln 2
NEG = 0.75 * 0.25 * LN2  # ... on a negative


def test_sigmoid_focal_loss_hand_worked():
    logits = torch.zeros(2, 2)
    targets = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    # row means: (POS + NEG) / 2 and NEG; summed, divided by num_boxes = 2
    assert sigmoid_focal_loss(logits, targets, 2).item() == pytest.approx(((POS + NEG) / 2 + NEG) / 2, rel=1e-6)
    # alpha < 0: no class balancing, plain (1 - p_t)^2 * CE
    assert sigmoid_focal_loss(logits, targets, 1, alpha=-1).item() == pytest.approx(2 * 0.25 * LN2, rel=1e-6)
    # confident and right costs ~0
    assert sigmoid_focal_loss(torch.tensor([[20.0, -20.0]]), torch.tensor([[1.0, 0.0]]), 1).item() < 1e-12


def test_dice_loss_hand_worked():
    targets = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    logits = torch.tensor([[20.0, -20.0, 20.0, -20.0], [-20.0, -20.0, -20.0, -20.0]])
    # row 0: 1 - (2*1 + 1) / (2 + 2 + 1) = 0.4; row 1 (both empty): 1 - 1/1 = 0
    assert dice_loss(logits, targets, 1).item() == pytest.approx(0.4, abs=1e-6)
    assert dice_loss(logits, targets, 2).item() == pytest.approx(0.2, abs=1e-6)
    assert dice_loss(torch.zeros(1, 4), targets[:1], 1).item() == pytest.approx(1 - 3 / 5, abs=1e-6)


def _example(n_classes=1, label=0):
    """One 32x32 video of 2 frames; the object is on frame 0 only (4 pixels after stride-4 sampling).

    Query 0 is right on frame 0 (box) with all-zero mask/class logits; query 1 is far off.
    """
    masks = torch.zeros(2, 32, 32)
    for y in (2, 6):
        for x in (2, 6):
            masks[0, y, x] = 1
    target = {
        "labels": torch.full((2,), label, dtype=torch.int64),
        "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.0, 0.0, 0.0, 0.0]]),
        "masks": masks,
        "valid": torch.tensor([1, 0]),
    }
    boxes = torch.zeros(1, 2, 2, 4)
    boxes[0, :, 0] = torch.tensor([0.5, 0.5, 0.2, 0.2])
    boxes[0, :, 1] = torch.tensor([0.2, 0.2, 0.1, 0.1])
    mask_logits = torch.zeros(1, 2, 2, 8, 8)
    mask_logits[0, :, 1] = 5.0
    outputs = {"pred_logits": torch.zeros(1, 2, 2, n_classes), "pred_boxes": boxes, "pred_masks": mask_logits}
    return outputs, target


EXPECTED = {
    # 4 class logits (T=2 x Q=2), one positive: matched query on the valid frame
    "loss_ce": POS + 3 * NEG,
    # frame 0 exact; frame 1: |(.5,.5,.2,.2) - 0| = 1.4 (boxes count on every frame)
    "loss_bbox": 1.4,
    # frame 1: GIoU(box (.4,.4)-(.6,.6), zero box) = ~0 - (.36 - .04) / .36
    "loss_giou": 1 + 8 / 9,
    # 128 mask logits of 0, 4 positive
    "loss_mask": (4 * POS + 124 * NEG) / 128,
    # 1 - (2 * .5 * 4 + 1) / (.5 * 128 + 4 + 1)
    "loss_dice": 1 - 5 / 69,
}


def test_criterion_hand_worked_single_video():
    outputs, target = _example()
    criterion = SetCriterion(HungarianMatcher())
    assert criterion.matcher(outputs, [target])[0][0].tolist() == [0]
    losses = criterion(outputs, [target])
    assert set(losses) == set(EXPECTED)
    for key, value in EXPECTED.items():
        assert losses[key].item() == pytest.approx(value, abs=1e-4), key


def test_criterion_normalises_by_valid_frames_of_the_batch():
    outputs, target = _example()
    batch = {k: torch.cat([v, v]) for k, v in outputs.items()}
    losses = SetCriterion()(batch, [target, target])  # twice the sums, num_boxes = 2
    for key, value in EXPECTED.items():
        assert losses[key].item() == pytest.approx(value, abs=1e-4), key
    all_valid = dict(target, valid=torch.tensor([1, 1]))
    losses = SetCriterion()(outputs, [all_valid])  # num_boxes = 2, one more positive class logit
    assert losses["loss_bbox"].item() == pytest.approx(0.7, abs=1e-5)
    assert losses["loss_ce"].item() == pytest.approx((2 * POS + 2 * NEG) / 2, rel=1e-5)
    no_valid = dict(target, valid=torch.tensor([0, 0]))
    losses = SetCriterion()(outputs, [no_valid])  # num_boxes clamped to 1, no positive
    assert losses["loss_ce"].item() == pytest.approx(4 * NEG, rel=1e-5)


def test_criterion_multiclass_uses_the_label_column():
    outputs, target = _example(n_classes=5, label=3)
    losses = SetCriterion(HungarianMatcher(num_classes=5), num_classes=5)(outputs, [target])
    assert losses["loss_ce"].item() == pytest.approx(POS + 19 * NEG, rel=1e-5)
    outputs["pred_logits"][0, 0, 0, 3] = 20.0  # the positive becomes ~free
    losses = SetCriterion(HungarianMatcher(num_classes=5), num_classes=5)(outputs, [target])
    assert losses["loss_ce"].item() == pytest.approx(19 * NEG, rel=1e-5)


def test_aux_layers_are_matched_and_suffixed():
    outputs, target = _example()
    swapped = {k: v.flip(2) for k, v in outputs.items()}  # good query is now query 1
    outputs["aux_outputs"] = [dict(outputs), swapped]
    losses = SetCriterion()(outputs, [target])
    assert len(losses) == 15
    for key, value in EXPECTED.items():
        for suffix in ("", "_0", "_1"):
            assert losses[key + suffix].item() == pytest.approx(value, abs=1e-4), key + suffix


def test_weight_dict_and_weighted_total():
    weights = build_weight_dict(num_decoder_layers=4)
    assert {k: weights[k] for k in EXPECTED} == {
        "loss_ce": 2, "loss_bbox": 5, "loss_giou": 2, "loss_mask": 2, "loss_dice": 5,
    }
    assert len(weights) == 20 and weights["loss_dice_2"] == 5 and "loss_ce_3" not in weights
    assert build_weight_dict(4, aux_loss=False) == {k: weights[k] for k in EXPECTED}
    losses = {"loss_ce": torch.tensor(1.0), "loss_bbox": torch.tensor(2.0), "loss_ce_0": torch.tensor(3.0)}
    assert weighted_total(losses, weights).item() == pytest.approx(2 * 1 + 5 * 2 + 2 * 3)


def test_gradients_reach_only_the_matched_query_boxes_and_masks():
    outputs, target = _example()
    outputs = {k: v.clone().requires_grad_(True) for k, v in outputs.items()}
    criterion = SetCriterion()
    weighted_total(criterion(outputs, [target]), criterion.weight_dict).backward()
    assert outputs["pred_logits"].grad.abs().sum() > 0
    assert outputs["pred_boxes"].grad[0, :, 0].abs().sum() > 0
    assert outputs["pred_boxes"].grad[0, :, 1].abs().sum() == 0
    assert outputs["pred_masks"].grad[0, :, 0].abs().sum() > 0
    assert outputs["pred_masks"].grad[0, :, 1].abs().sum() == 0
