"""Referring-segmentation metrics over numpy masks.

* J (region similarity), F (boundary F-measure) and their per-object
  statistics as the DAVIS 2017 toolkit computes them; Ref-Youtube-VOS and
  Ref-DAVIS report the means over objects (here: over expressions).
* Overall IoU, mean IoU, precision@K and COCO-style mAP@0.5:0.95 as the
  A2D-Sentences / JHMDB-Sentences evaluation computes them.

All functions are pure; masks are boolean (or 0/1) arrays.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

BOUND_TH = 0.008
PRECISION_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
COCO_IOU_THRESHOLDS = tuple(np.linspace(0.5, 0.95, 10).tolist())  # pycocotools' exact values
_A2D_EPS = 1e-6


def _check_shapes(pred: np.ndarray, gt: np.ndarray) -> None:
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} does not match ground truth shape {gt.shape}")


def region_similarity(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Jaccard index per frame: ``|P & G| / |P | G|``, and 1 where both masks are empty.

    pred, gt: ``[..., H, W]`` (e.g. ``[T, H, W]``). Returns float ``[...]`` (``[T]``).
    """
    _check_shapes(pred, gt)
    pred = pred.astype(bool)
    gt = gt.astype(bool)
    inter = np.sum(pred & gt, axis=(-2, -1)).astype(np.float64)
    union = np.sum(pred | gt, axis=(-2, -1)).astype(np.float64)
    return np.divide(inter, union, out=np.ones_like(inter), where=union > 0)


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide boundary of a ``[H, W]`` mask, as the DAVIS ``seg2bmap``.

    A pixel is on the boundary if it differs from its east, south or
    south-east neighbour; on the last row only the east neighbour, on the last
    column only the south neighbour counts, and the bottom-right pixel is never
    a boundary. Returns bool ``[H, W]``.
    """
    seg = mask.astype(bool)
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    south_east = np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    bmap = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    bmap[-1, :] = seg[-1, :] ^ east[-1, :]
    bmap[:, -1] = seg[:, -1] ^ south[:, -1]
    bmap[-1, -1] = False
    return bmap


def disk(radius: int) -> np.ndarray:
    """Disk structuring element ``x^2 + y^2 <= radius^2``, uint8 ``[2r+1, 2r+1]``."""
    offsets = np.arange(-radius, radius + 1)
    x, y = np.meshgrid(offsets, offsets)
    return (x**2 + y**2 <= radius**2).astype(np.uint8)


def boundary_tolerance(height: int, width: int, bound_th: float = BOUND_TH) -> int:
    """Dilation radius in pixels: ``bound_th`` itself if >= 1, else ``ceil(bound_th * diagonal)``."""
    if bound_th >= 1:
        return int(bound_th)
    return int(np.ceil(bound_th * np.hypot(height, width)))


def _f_measure_frame(pred: np.ndarray, gt: np.ndarray, bound_th: float) -> float:
    pred_b = boundary_map(pred)
    gt_b = boundary_map(gt)
    n_pred = int(pred_b.sum())
    n_gt = int(gt_b.sum())
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0
    kernel = disk(boundary_tolerance(*pred.shape, bound_th=bound_th))
    pred_dil = cv2.dilate(pred_b.astype(np.uint8), kernel).astype(bool)
    gt_dil = cv2.dilate(gt_b.astype(np.uint8), kernel).astype(bool)
    precision = np.sum(pred_b & gt_dil) / n_pred
    recall = np.sum(gt_b & pred_dil) / n_gt
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def boundary_f_measure(pred: np.ndarray, gt: np.ndarray, bound_th: float = BOUND_TH) -> np.ndarray:
    """DAVIS boundary F-measure per frame.

    Boundaries (:func:`boundary_map`) are matched within a disk of radius
    :func:`boundary_tolerance` (``ceil(0.008 * image diagonal)`` by default).
    Both boundaries empty gives 1, exactly one empty gives 0.
    pred, gt: ``[T, H, W]`` or ``[H, W]``. Returns float ``[T]`` (or a 0-d array).
    """
    _check_shapes(pred, gt)
    if pred.ndim == 2:
        return np.asarray(_f_measure_frame(pred, gt, bound_th))
    if pred.ndim != 3:
        raise ValueError(f"expected [T, H, W] or [H, W] masks, got {pred.ndim} dimensions")
    return np.array([_f_measure_frame(p, g, bound_th) for p, g in zip(pred, gt)], dtype=np.float64)


@dataclass(frozen=True)
class SequenceStats:
    """DAVIS statistics of per-frame values: mean, recall (fraction > 0.5) and decay."""

    mean: float
    recall: float
    decay: float


def sequence_statistics(per_frame: np.ndarray) -> SequenceStats:
    """Mean, recall and decay of ``[T]`` per-frame values (NaNs ignored), as DAVIS ``db_statistics``.

    Decay is the mean of the first quarter of the frames minus the mean of the
    last quarter, with the DAVIS bin edges ``round(linspace(1, T, 5)) - 1`` (each bin
    includes its right edge).
    """
    values = np.asarray(per_frame, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"expected a non-empty [T] array, got shape {values.shape}")
    valid = ~np.isnan(values)
    mean = float(values[valid].mean()) if valid.any() else float("nan")
    recall = float((values[valid] > 0.5).mean()) if valid.any() else float("nan")
    edges = (np.round(np.linspace(1, values.size, 5) + 1e-10) - 1).astype(np.int64)
    first = values[edges[0] : edges[1] + 1]
    last = values[edges[3] : edges[4] + 1]
    decay = _nanmean(first) - _nanmean(last)
    return SequenceStats(mean, recall, decay)


def _nanmean(values: np.ndarray) -> float:
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if kept.size else float("nan")


@dataclass(frozen=True)
class JFResult:
    """J and F of one object over its frames: per-frame values ``[T]`` and their statistics."""

    j_frames: np.ndarray
    f_frames: np.ndarray
    j: SequenceStats
    f: SequenceStats

    @property
    def j_and_f(self) -> float:
        """``(J-mean + F-mean) / 2``."""
        return (self.j.mean + self.f.mean) / 2


def j_and_f(pred: np.ndarray, gt: np.ndarray, bound_th: float = BOUND_TH) -> JFResult:
    """J and F of one object. pred, gt: ``[T, H, W]`` masks."""
    if pred.ndim != 3:
        raise ValueError(f"expected [T, H, W] masks, got shape {pred.shape}")
    j_frames = region_similarity(pred, gt)
    f_frames = boundary_f_measure(pred, gt, bound_th)
    return JFResult(j_frames, f_frames, sequence_statistics(j_frames), sequence_statistics(f_frames))


def summarize_j_and_f(results: list[JFResult]) -> dict[str, float]:
    """Dataset J&F as DAVIS / Ref-Youtube-VOS report it: means over objects of the per-object statistics.

    Returns ``J&F``, ``J``, ``J-Recall``, ``J-Decay``, ``F``, ``F-Recall``, ``F-Decay``.
    """
    if not results:
        raise ValueError("no objects to summarise")
    j = float(np.mean([r.j.mean for r in results]))
    f = float(np.mean([r.f.mean for r in results]))
    return {
        "J&F": (j + f) / 2,
        "J": j,
        "J-Recall": float(np.mean([r.j.recall for r in results])),
        "J-Decay": float(np.mean([r.j.decay for r in results])),
        "F": f,
        "F-Recall": float(np.mean([r.f.recall for r in results])),
        "F-Decay": float(np.mean([r.f.decay for r in results])),
    }


def intersection_union(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel counts of ``P & G`` and ``P | G`` per mask. pred, gt: ``[..., H, W]`` -> two int ``[...]``."""
    _check_shapes(pred, gt)
    pred = pred.astype(bool)
    gt = gt.astype(bool)
    return np.sum(pred & gt, axis=(-2, -1)), np.sum(pred | gt, axis=(-2, -1))


def sample_iou(intersection: np.ndarray, union: np.ndarray) -> np.ndarray:
    """A2D per-sample IoU ``(I + 1e-6) / (U + 1e-6)`` (1 when both masks are empty). ``[N]`` -> ``[N]``."""
    return (np.asarray(intersection, np.float64) + _A2D_EPS) / (np.asarray(union, np.float64) + _A2D_EPS)


def overall_iou(intersection: np.ndarray, union: np.ndarray) -> float:
    """Cumulative IoU ``sum(I) / sum(U)`` over ``[N]`` samples; 1 if every mask is empty."""
    total_union = float(np.sum(union))
    return float(np.sum(intersection)) / total_union if total_union > 0 else 1.0


def mean_iou(intersection: np.ndarray, union: np.ndarray) -> float:
    """Mean over ``[N]`` samples of :func:`sample_iou`."""
    if np.size(intersection) == 0:
        raise ValueError("no samples")
    return float(np.mean(sample_iou(intersection, union)))


def precision_at(ious: np.ndarray, thresholds: tuple[float, ...] = PRECISION_THRESHOLDS) -> dict[float, float]:
    """Fraction of samples whose IoU is strictly above each threshold. ``[N]`` -> ``{threshold: fraction}``."""
    ious = np.asarray(ious, dtype=np.float64)
    if ious.size == 0:
        raise ValueError("no samples")
    return {t: float(np.mean(ious > t)) for t in thresholds}


def average_precision(
    ious: list[np.ndarray],
    scores: list[np.ndarray],
    iou_thresholds: tuple[float, ...] = COCO_IOU_THRESHOLDS,
    max_detections: int = 100,
) -> dict[float, float]:
    """COCO-style class-agnostic AP where every sample has exactly one ground-truth object.

    ``ious[i]`` and ``scores[i]`` are ``[N_i]``: the IoU with the ground truth and
    the confidence of each of sample ``i``'s candidate masks. As pycocotools'
    ``COCOeval`` (``useCats=0``, area "all"): per sample the ``max_detections``
    best-scored candidates are kept and the first one (by score) with IoU >= t
    is the true positive; candidates of all samples are then ranked by score,
    precision is made monotone and read at 101 recall points.
    Returns ``{round(t, 2): AP_t}`` for each threshold; the mAP is their mean
    (:func:`mean_average_precision`).
    """
    if len(ious) != len(scores):
        raise ValueError("ious and scores must have one entry per sample")
    if not ious:
        raise ValueError("no samples")
    kept_scores, kept_ious = [], []
    for iou, score in zip(ious, scores):
        iou = np.asarray(iou, np.float64).reshape(-1)
        score = np.asarray(score, np.float64).reshape(-1)
        if iou.shape != score.shape:
            raise ValueError(f"ious {iou.shape} and scores {score.shape} differ in length")
        order = np.argsort(-score, kind="mergesort")[:max_detections]
        kept_scores.append(score[order])
        kept_ious.append(iou[order])
    all_scores = np.concatenate(kept_scores)
    rank = np.argsort(-all_scores, kind="mergesort")
    n_samples = len(ious)
    recall_points = np.linspace(0.0, 1.0, 101)
    result = {}
    for t in iou_thresholds:
        threshold = min(t, 1 - 1e-10)
        matched = []
        for iou in kept_ious:
            hit = np.zeros(iou.shape, dtype=bool)
            above = np.nonzero(iou >= threshold)[0]
            if above.size:
                hit[above[0]] = True
            matched.append(hit)
        tp = np.concatenate(matched)[rank] if rank.size else np.zeros(0, dtype=bool)
        tp_sum = np.cumsum(tp, dtype=np.float64)
        fp_sum = np.cumsum(~tp, dtype=np.float64)
        recall = tp_sum / n_samples
        precision = tp_sum / (tp_sum + fp_sum + np.spacing(1))
        precision = np.maximum.accumulate(precision[::-1])[::-1]
        idx = np.searchsorted(recall, recall_points, side="left")
        reached = idx < precision.size
        sampled = np.zeros_like(recall_points)
        sampled[reached] = precision[idx[reached]]
        result[round(float(t), 2)] = float(sampled.mean())
    return result


def mean_average_precision(ap_per_threshold: dict[float, float]) -> float:
    """Mean of :func:`average_precision`'s values: mAP@0.5:0.95 with the default thresholds."""
    return float(np.mean(list(ap_per_threshold.values())))
