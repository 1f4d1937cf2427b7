"""ReferFormer training losses: focal class loss, L1 + GIoU box losses, focal + dice mask losses.

Normalisation follows the ReferFormer training code: every loss is divided by
``num_boxes``, the number of valid (object-present) frames in the batch,
averaged over distributed workers and clamped to at least 1.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from train.box_ops import box_cxcywh_to_xyxy, generalized_box_iou
from train.matcher import HungarianMatcher, prepare_target_masks, sigmoid_focal_terms

LOSS_NAMES = ("loss_ce", "loss_bbox", "loss_giou", "loss_mask", "loss_dice")


def sigmoid_focal_loss(
    inputs: torch.Tensor, targets: torch.Tensor, num_boxes: float, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """RetinaNet focal loss, averaged over dim 1, summed over the rest, divided by ``num_boxes``.

    inputs: logits ``[N, P, ...]``; targets: same shape, in {0, 1}. ``alpha < 0``
    disables the class-balancing factor. Returns a scalar.
    """
    return sigmoid_focal_terms(inputs, targets, alpha, gamma).mean(1).sum() / num_boxes


def dice_loss(inputs: torch.Tensor, targets: torch.Tensor, num_boxes: float) -> torch.Tensor:
    """Smoothed dice loss ``1 - (2|X.Y| + 1) / (|X| + |Y| + 1)`` per row, summed, divided by ``num_boxes``.

    inputs: logits ``[N, ...]`` (flattened per row); targets: ``[N, P]`` in {0, 1}. Returns a scalar.
    """
    prob = inputs.sigmoid().flatten(1)
    targets = targets.flatten(1)
    numerator = 2 * (prob * targets).sum(1)
    denominator = prob.sum(1) + targets.sum(1)
    return (1 - (numerator + 1) / (denominator + 1)).sum() / num_boxes


def build_weight_dict(
    num_decoder_layers: int = 4,
    cls: float = 2.0,
    bbox: float = 5.0,
    giou: float = 2.0,
    mask: float = 2.0,
    dice: float = 5.0,
    aux_loss: bool = True,
) -> dict[str, float]:
    """Loss weights keyed like :class:`SetCriterion`'s output.

    ``loss_ce``, ``loss_bbox``, ``loss_giou``, ``loss_mask``, ``loss_dice`` for the last
    decoder layer and, with ``aux_loss``, the same keys suffixed ``_0`` ..
    ``_{num_decoder_layers - 2}`` for the earlier layers.
    """
    base = dict(zip(LOSS_NAMES, (cls, bbox, giou, mask, dice)))
    weights = dict(base)
    if aux_loss:
        for i in range(num_decoder_layers - 1):
            weights.update({f"{k}_{i}": v for k, v in base.items()})
    return weights


def weighted_total(losses: dict[str, torch.Tensor], weight_dict: dict[str, float]) -> torch.Tensor:
    """Sum of ``losses[k] * weight_dict[k]`` over the keys present in both."""
    return sum(losses[k] * w for k, w in weight_dict.items() if k in losses)


def _num_valid_frames(targets: list[dict[str, torch.Tensor]], device: torch.device) -> float:
    count = torch.as_tensor(
        [float(sum(int(t["valid"].sum()) for t in targets))], dtype=torch.float, device=device
    )
    world = 1
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(count)
        world = dist.get_world_size()
    return max(count.item() / world, 1.0)


def _matched(indices: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    batch = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)])
    query = torch.cat([src for src, _ in indices])
    return batch, query


class SetCriterion(torch.nn.Module):
    """Match with ``matcher`` and compute the five losses on the last layer and on every aux layer.

    ``forward(outputs, targets)`` returns unweighted losses keyed ``loss_ce``,
    ``loss_bbox``, ``loss_giou``, ``loss_mask``, ``loss_dice`` (and ``<key>_<i>`` for
    ``outputs["aux_outputs"][i]``); combine them with :func:`weighted_total` and
    ``self.weight_dict``.

    Conventions of the ReferFormer training code that are kept on purpose:
    the class loss marks the matched query as positive only on valid frames;
    box losses are taken on all T frames (an absent object's target box is all
    zeros); mask losses are over the whole ``T*h*w`` tube.
    """

    def __init__(
        self,
        matcher: HungarianMatcher | None = None,
        num_classes: int = 1,
        weight_dict: dict[str, float] | None = None,
        focal_alpha: float = 0.25,
    ) -> None:
        super().__init__()
        self.matcher = matcher if matcher is not None else HungarianMatcher(num_classes=num_classes)
        self.num_classes = num_classes
        self.weight_dict = weight_dict if weight_dict is not None else build_weight_dict()
        self.focal_alpha = focal_alpha

    def loss_labels(
        self, outputs: dict[str, torch.Tensor], targets: list[dict[str, torch.Tensor]],
        indices: list[tuple[torch.Tensor, torch.Tensor]], num_boxes: float,
    ) -> dict[str, torch.Tensor]:
        """Focal loss over all ``[B, T, Q, K]`` logits; matched query on valid frames is positive."""
        logits = outputs["pred_logits"]
        target = torch.zeros_like(logits)
        for b, ((src, _), tgt) in enumerate(zip(indices, targets)):
            frames = torch.nonzero(tgt["valid"], as_tuple=False).flatten().to(logits.device)
            if frames.numel() == 0:
                continue
            labels = tgt["labels"].to(logits.device)[frames].long()
            cls = torch.zeros_like(labels) if self.num_classes == 1 else labels
            for q in src.tolist():
                target[b, frames, q, cls] = 1.0
        flat_logits = logits.flatten(1, 2)
        loss = sigmoid_focal_loss(flat_logits, target.flatten(1, 2), num_boxes, alpha=self.focal_alpha)
        return {"loss_ce": loss * flat_logits.shape[1]}

    def loss_boxes(
        self, outputs: dict[str, torch.Tensor], targets: list[dict[str, torch.Tensor]],
        indices: list[tuple[torch.Tensor, torch.Tensor]], num_boxes: float,
    ) -> dict[str, torch.Tensor]:
        """L1 and ``1 - GIoU`` between the matched query's boxes and the target boxes, all T frames."""
        batch, query = _matched(indices)
        src = outputs["pred_boxes"].transpose(1, 2)[batch, query].flatten(0, 1)  # [B*T, 4]
        tgt = torch.cat([targets[b]["boxes"] for b in batch.tolist()]).to(src)
        loss_bbox = F.l1_loss(src, tgt, reduction="none").sum() / num_boxes
        giou = torch.diag(generalized_box_iou(box_cxcywh_to_xyxy(src), box_cxcywh_to_xyxy(tgt)))
        return {"loss_bbox": loss_bbox, "loss_giou": (1 - giou).sum() / num_boxes}

    def loss_masks(
        self, outputs: dict[str, torch.Tensor], targets: list[dict[str, torch.Tensor]],
        indices: list[tuple[torch.Tensor, torch.Tensor]], num_boxes: float,
    ) -> dict[str, torch.Tensor]:
        """Focal and dice losses between the matched query's ``[T, h, w]`` mask tube and the target's."""
        pred_masks = outputs["pred_masks"]
        tgt_masks = prepare_target_masks(targets).to(pred_masks)
        if tgt_masks.shape[-2:] != pred_masks.shape[-2:]:
            raise ValueError(
                f"target masks subsample to {tuple(tgt_masks.shape[-2:])} "
                f"but pred_masks are {tuple(pred_masks.shape[-2:])}"
            )
        batch, query = _matched(indices)
        src = pred_masks.transpose(1, 2)[batch, query].flatten(1)  # [B, T*h*w]
        tgt = tgt_masks[batch].flatten(1)
        return {
            "loss_mask": sigmoid_focal_loss(src, tgt, num_boxes, alpha=self.focal_alpha),
            "loss_dice": dice_loss(src, tgt, num_boxes),
        }

    def _layer_losses(
        self, outputs: dict[str, torch.Tensor], targets: list[dict[str, torch.Tensor]], num_boxes: float
    ) -> dict[str, torch.Tensor]:
        indices = self.matcher(outputs, targets)
        losses = self.loss_labels(outputs, targets, indices, num_boxes)
        losses.update(self.loss_boxes(outputs, targets, indices, num_boxes))
        losses.update(self.loss_masks(outputs, targets, indices, num_boxes))
        return losses

    def forward(
        self, outputs: dict[str, torch.Tensor | list], targets: list[dict[str, torch.Tensor]]
    ) -> dict[str, torch.Tensor]:
        """Unweighted losses of the last layer and of each ``aux_outputs`` layer (suffix ``_<i>``)."""
        num_boxes = _num_valid_frames(targets, outputs["pred_logits"].device)
        last = {k: v for k, v in outputs.items() if k != "aux_outputs"}
        losses = self._layer_losses(last, targets, num_boxes)
        for i, aux in enumerate(outputs.get("aux_outputs", [])):
            losses.update({f"{k}_{i}": v for k, v in self._layer_losses(aux, targets, num_boxes).items()})
        return losses
