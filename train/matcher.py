"""Instance-sequence matching between ReferFormer queries and the referred object.

Each video of the batch has one referred object, annotated on each of its T
frames. A query is a sequence of T per-frame predictions; the matcher picks,
per video, the query whose whole sequence costs least against the object:

    C = w_class * focal class cost (mean over valid frames)
      + w_bbox  * L1 box cost       (mean over all frames)
      + w_giou  * -GIoU             (mean over all frames)
      + w_mask  * mask focal cost   (mean over all T*h*w pixels)
      + w_dice  * -dice coefficient (over all T*h*w pixels)

and solves the assignment with :func:`linear_sum_assignment` (an exact
Hungarian method; with one object per video it is the arg-min over queries).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from train.box_ops import box_cxcywh_to_xyxy, generalized_box_iou

MASK_OUT_STRIDE = 4
SIZE_DIVISIBILITY = 32


def linear_sum_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost assignment of a rectangular ``[N, M]`` cost matrix.

    Returns ``(rows, cols)``, each of length ``min(N, M)``, rows ascending,
    such that ``cost[rows, cols].sum()`` is minimal over all matchings that
    use every row (if N <= M) or every column (if N > M). Same contract as
    ``scipy.optimize.linear_sum_assignment``. Shortest augmenting path
    Hungarian method with potentials, O(min(N, M)^2 * max(N, M)).
    With a single column the result is the first arg-min row.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f"cost must be 2-D, got shape {cost.shape}")
    if not np.isfinite(cost).all():
        raise ValueError("cost contains NaN or infinite entries")
    n_rows, n_cols = cost.shape
    if n_rows == 0 or n_cols == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if n_cols == 1:
        return np.array([int(np.argmin(cost[:, 0]))]), np.array([0])
    transposed = n_rows > n_cols
    a = cost.T if transposed else cost
    n, m = a.shape
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    owner = np.zeros(m + 1, dtype=np.int64)  # owner[j]: 1-based row assigned to column j (0 = free)
    way = np.zeros(m + 1, dtype=np.int64)
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = owner[j0]
            free = ~used[1:]
            reduced = a[i0 - 1] - u[i0] - v[1:]
            improve = free & (reduced < minv[1:])
            minv[1:][improve] = reduced[improve]
            way[1:][improve] = j0
            candidates = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            u[owner[used]] += delta
            v[used] -= delta
            minv[~used] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    cols = np.nonzero(owner[1:])[0]
    rows = owner[1:][cols] - 1
    if transposed:
        rows, cols = cols, rows
    order = np.argsort(rows)
    return rows[order].astype(np.int64), cols[order].astype(np.int64)


def prepare_target_masks(
    targets: list[dict[str, torch.Tensor]],
    stride: int = MASK_OUT_STRIDE,
    size_divisibility: int = SIZE_DIVISIBILITY,
) -> torch.Tensor:
    """Pad and subsample the targets' masks to the resolution of ``pred_masks``.

    Each ``targets[b]["masks"]`` is ``[T, H_b, W_b]``. They are zero-padded at the
    bottom/right to a common ``[Hp, Wp]`` (the batch maximum rounded up to
    ``size_divisibility``, as the model pads its input frames) and sampled every
    ``stride`` pixels starting at ``stride // 2``. Returns ``[B, T, Hp/stride, Wp/stride]``.
    """
    masks = [t["masks"] for t in targets]
    n_frames = {m.shape[0] for m in masks}
    if len(n_frames) != 1:
        raise ValueError(f"all targets must have the same number of frames, got {sorted(n_frames)}")
    height = max(m.shape[-2] for m in masks)
    width = max(m.shape[-1] for m in masks)
    height = -(-height // size_divisibility) * size_divisibility
    width = -(-width // size_divisibility) * size_divisibility
    padded = masks[0].new_zeros((len(masks), masks[0].shape[0], height, width))
    for out, m in zip(padded, masks):
        out[:, : m.shape[-2], : m.shape[-1]] = m
    start = stride // 2
    return padded[:, :, start::stride, start::stride]


def class_cost(
    prob: torch.Tensor,
    labels: torch.Tensor,
    valid: torch.Tensor,
    num_classes: int,
    alpha: float = 0.25,
    gamma: float = 2.0,
) -> torch.Tensor:
    """Focal classification cost per query, averaged over the valid frames.

    prob: ``[T, Q, K]`` sigmoid scores; labels, valid: ``[T]``. With
    ``num_classes == 1`` (binary "is referred") column 0 is used, otherwise
    column ``labels[t]``. Returns ``[Q]`` (zeros if no frame is valid).
    """
    frames = torch.nonzero(valid, as_tuple=False).flatten()
    if frames.numel() == 0:
        return prob.new_zeros(prob.shape[1])
    p = prob[frames]  # [V, Q, K]
    cls = torch.zeros_like(labels[frames]) if num_classes == 1 else labels[frames]
    p = p.gather(2, cls.view(-1, 1, 1).expand(-1, p.shape[1], 1).long()).squeeze(2)  # [V, Q]
    neg = (1 - alpha) * p.pow(gamma) * -(1 - p + 1e-8).log()
    pos = alpha * (1 - p).pow(gamma) * -(p + 1e-8).log()
    return (pos - neg).mean(0)


def box_costs(pred_boxes: torch.Tensor, tgt_boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """L1 and negative-GIoU box costs per query, averaged over all T frames.

    pred_boxes: ``[T, Q, 4]``, tgt_boxes: ``[T, 4]``, both normalised cxcywh.
    Returns ``(l1 [Q], neg_giou [Q])``.
    """
    l1 = (pred_boxes - tgt_boxes[:, None, :]).abs().sum(-1).mean(0)
    giou = torch.stack(
        [
            generalized_box_iou(box_cxcywh_to_xyxy(pred_boxes[t]), box_cxcywh_to_xyxy(tgt_boxes[t : t + 1]))[:, 0]
            for t in range(pred_boxes.shape[0])
        ]
    ).mean(0)
    return l1, -giou


def sigmoid_focal_terms(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
                        ) -> torch.Tensor:
    """Element-wise RetinaNet focal loss of ``logits`` against ``targets`` in {0, 1} (same shape).

    ``alpha < 0`` disables the class-balancing factor. Shared by the mask focal cost and loss.
    """
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t).pow(gamma)
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


def mask_focal_cost(
    pred_masks: torch.Tensor, tgt_mask: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Sigmoid focal loss per query, averaged over pixels.

    pred_masks: ``[Q, P]`` logits, tgt_mask: ``[P]`` in {0, 1}. Returns ``[Q]``.
    """
    target = tgt_mask[None, :].expand_as(pred_masks)
    return sigmoid_focal_terms(pred_masks, target, alpha, gamma).mean(1)


def mask_dice_cost(pred_masks: torch.Tensor, tgt_mask: torch.Tensor) -> torch.Tensor:
    """Negative smoothed dice coefficient ``-(2|X.Y| + 1) / (|X| + |Y| + 1)`` per query.

    pred_masks: ``[Q, P]`` logits, tgt_mask: ``[P]``. Returns ``[Q]``.
    """
    prob = pred_masks.sigmoid()
    numerator = 2 * (prob * tgt_mask[None, :]).sum(1)
    denominator = prob.sum(1) + tgt_mask.sum()
    return -(numerator + 1) / (denominator + 1)


class HungarianMatcher:
    """Match each video's referred object to one query sequence.

    Defaults are the paper's matching weights (class 2, L1 5, GIoU 2, mask 2,
    dice 5). ``num_classes == 1`` is the binary "referred" setting.
    """

    def __init__(
        self,
        cost_class: float = 2.0,
        cost_bbox: float = 5.0,
        cost_giou: float = 2.0,
        cost_mask: float = 2.0,
        cost_dice: float = 5.0,
        num_classes: int = 1,
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
    ) -> None:
        if not any((cost_class, cost_bbox, cost_giou, cost_mask, cost_dice)):
            raise ValueError("all matching costs are 0")
        self.cost_class = cost_class
        self.cost_bbox = cost_bbox
        self.cost_giou = cost_giou
        self.cost_mask = cost_mask
        self.cost_dice = cost_dice
        self.num_classes = num_classes
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma

    @torch.no_grad()
    def cost_matrices(
        self, outputs: dict[str, torch.Tensor], targets: list[dict[str, torch.Tensor]]
    ) -> list[torch.Tensor]:
        """Per-video cost matrices ``[Q, 1]`` (queries x the referred object).

        outputs: ``pred_logits [B, T, Q, K]``, ``pred_boxes [B, T, Q, 4]``,
        ``pred_masks [B, T, Q, h, w]``; targets: B dicts with ``labels [T]``,
        ``boxes [T, 4]``, ``masks [T, H, W]``, ``valid [T]``.
        """
        pred_masks = outputs["pred_masks"]
        bs, n_frames, n_queries, h, w = pred_masks.shape
        tgt_masks = prepare_target_masks(targets).to(pred_masks)
        if tgt_masks.shape[-2:] != (h, w):
            raise ValueError(
                f"target masks subsample to {tuple(tgt_masks.shape[-2:])} but pred_masks are {(h, w)}"
            )
        costs = []
        for i in range(bs):
            tgt = targets[i]
            c_class = class_cost(
                outputs["pred_logits"][i].sigmoid(), tgt["labels"], tgt["valid"],
                self.num_classes, self.focal_alpha, self.focal_gamma,
            )
            c_l1, c_giou = box_costs(outputs["pred_boxes"][i], tgt["boxes"].to(outputs["pred_boxes"]))
            query_masks = pred_masks[i].transpose(0, 1).flatten(1)  # [Q, T*h*w]
            tgt_mask = tgt_masks[i].flatten()
            c_mask = mask_focal_cost(query_masks, tgt_mask, self.focal_alpha, self.focal_gamma)
            c_dice = mask_dice_cost(query_masks, tgt_mask)
            total = (
                self.cost_class * c_class + self.cost_bbox * c_l1 + self.cost_giou * c_giou
                + self.cost_mask * c_mask + self.cost_dice * c_dice
            )
            costs.append(total[:, None])
        return costs

    @torch.no_grad()
    def __call__(
        self, outputs: dict[str, torch.Tensor], targets: list[dict[str, torch.Tensor]]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Return, per video, ``(query_indices, target_indices)`` int64 tensors of length 1."""
        indices = []
        for cost in self.cost_matrices(outputs, targets):
            rows, cols = linear_sum_assignment(cost.float().cpu().numpy())
            device = cost.device
            indices.append((torch.as_tensor(rows, dtype=torch.int64, device=device),
                            torch.as_tensor(cols, dtype=torch.int64, device=device)))
        return indices
