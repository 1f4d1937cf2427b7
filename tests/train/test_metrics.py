"""Metrics against hand-worked values and the empty-mask edge cases."""
import numpy as np
import pytest

from train import metrics as M


def square(size=100, top=10, left=10, side=20, frames=None):
    mask = np.zeros((size, size), dtype=bool)
    mask[top : top + side, left : left + side] = True
    return mask if frames is None else np.stack([mask] * frames)


def test_region_similarity_hand_worked_and_empty_cases():
    gt = np.zeros((4, 4, 4), bool)
    pred = np.zeros((4, 4, 4), bool)
    gt[0, :2, :2] = True
    pred[0, :2, :] = True  # 4 / 8
    gt[1, 0, 0] = True  # pred empty -> 0
    pred[2, 0, 0] = True  # gt empty -> 0
    # frame 3: both empty -> 1
    assert M.region_similarity(pred, gt).tolist() == [0.5, 0.0, 0.0, 1.0]
    assert M.region_similarity(pred[0], gt[0]) == 0.5
    with pytest.raises(ValueError):
        M.region_similarity(pred, gt[:2])


def test_boundary_map_is_the_davis_seg2bmap():
    mask = np.zeros((5, 5), bool)
    mask[1:3, 1:3] = True
    expected = np.array([
        [1, 1, 1, 0, 0],
        [1, 0, 1, 0, 0],
        [1, 1, 1, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ], bool)  # boundary offset half a pixel towards the origin
    assert (M.boundary_map(mask) == expected).all()
    assert not M.boundary_map(np.zeros((5, 5), bool)).any()


def test_disk_and_boundary_tolerance():
    assert M.disk(1).tolist() == [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    assert M.disk(2).tolist() == [
        [0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0],
    ]
    assert M.boundary_tolerance(480, 854) == 8  # ceil(0.008 * 979.7)
    assert M.boundary_tolerance(100, 100) == 2  # ceil(0.008 * 141.4)
    assert M.boundary_tolerance(100, 100, bound_th=3) == 3


def test_boundary_f_measure_hand_worked():
    gt = square()
    assert M.boundary_f_measure(gt, gt) == 1.0
    assert M.boundary_f_measure(square(left=12), gt) == 1.0  # within the 2-pixel tolerance
    # shifted by 10 px: each 80-pixel ring has 13 + 13 + 4 pixels within 2 px of the other ring
    assert M.boundary_f_measure(square(left=20), gt) == pytest.approx(30 / 80)
    # tighter tolerance: 12 + 12 + 2 (pixels at distance <= 1)
    assert M.boundary_f_measure(square(left=20), gt, bound_th=1) == pytest.approx(26 / 80)
    # far apart: no boundary pixel matches
    assert M.boundary_f_measure(square(left=60), gt) == 0.0


def test_boundary_f_measure_empty_cases_and_frames():
    empty = np.zeros((100, 100), bool)
    pred = np.stack([square(), empty, square(), empty])
    gt = np.stack([square(), square(), empty, empty])
    assert M.boundary_f_measure(pred, gt).tolist() == [1.0, 0.0, 0.0, 1.0]
    with pytest.raises(ValueError):
        M.boundary_f_measure(pred[None], gt[None])


def test_sequence_statistics_mean_recall_decay():
    stats = M.sequence_statistics(np.array([1.0, 0.8, 0.6, 0.4, 0.2, 0.0]))
    # bins: round(linspace(1, 6, 5)) - 1 = [0, 1, 3, 4, 5]; first [1, .8], last [.2, 0]
    assert stats.mean == pytest.approx(0.5)
    assert stats.recall == pytest.approx(0.5)  # 1, .8, .6 are > .5
    assert stats.decay == pytest.approx(0.9 - 0.1)
    single = M.sequence_statistics(np.array([0.7]))
    assert (single.mean, single.recall, single.decay) == (0.7, 1.0, 0.0)
    with_nan = M.sequence_statistics(np.array([np.nan, 1.0, 0.0, 1.0]))
    assert with_nan.mean == pytest.approx(2 / 3)
    long = M.sequence_statistics(np.r_[np.ones(300), np.zeros(300)])  # > 255 frames: no uint8 wrap-around
    assert long.decay == pytest.approx(1.0)


def test_j_and_f_per_object_and_summary():
    gt = square(frames=2)
    good = M.j_and_f(gt.copy(), gt)
    assert good.j.mean == 1.0 and good.f.mean == 1.0 and good.j_and_f == 1.0
    shifted = np.stack([square(left=20), np.zeros((100, 100), bool)])
    half = M.j_and_f(shifted, gt)
    # frame 0: 200 / 600 px overlap, F 30/80; frame 1 prediction empty: J = F = 0
    assert half.j_frames.tolist() == pytest.approx([1 / 3, 0.0])
    assert half.f_frames.tolist() == pytest.approx([0.375, 0.0])
    summary = M.summarize_j_and_f([good, half])
    assert summary["J"] == pytest.approx((1 + 1 / 6) / 2)
    assert summary["F"] == pytest.approx((1 + 0.375 / 2) / 2)
    assert summary["J&F"] == pytest.approx((summary["J"] + summary["F"]) / 2)
    assert summary["J-Recall"] == pytest.approx(0.5)
    assert summary["J-Decay"] == pytest.approx((0 + 1 / 3) / 2)
    with pytest.raises(ValueError):
        M.summarize_j_and_f([])


def test_a2d_iou_metrics_hand_worked():
    inter = np.array([1, 3, 0, 0])
    union = np.array([2, 4, 5, 0])  # last sample: both masks empty
    assert M.overall_iou(inter, union) == pytest.approx(4 / 11)
    assert M.sample_iou(inter, union).tolist() == pytest.approx([0.5, 0.75, 0.0, 1.0], abs=1e-6)
    assert M.mean_iou(inter, union) == pytest.approx((0.5 + 0.75 + 0 + 1) / 4, abs=1e-6)
    assert M.overall_iou(np.zeros(2), np.zeros(2)) == 1.0
    pred = np.zeros((2, 3, 3), bool)
    gt = np.zeros((2, 3, 3), bool)
    pred[0, 0, :2] = True
    gt[0, 0, 1:] = True
    i, u = M.intersection_union(pred, gt)
    assert i.tolist() == [1, 0] and u.tolist() == [3, 0]


def test_precision_at_is_strictly_above():
    p = M.precision_at(np.array([0.5, 0.55, 0.95, 0.1]))
    assert p == {0.5: 0.5, 0.6: 0.25, 0.7: 0.25, 0.8: 0.25, 0.9: 0.25}
    # the A2D epsilon puts an exact 1/2 just above 0.5, as the reference evaluation does
    assert M.precision_at(M.sample_iou(np.array([1]), np.array([2])))[0.5] == 1.0
    with pytest.raises(ValueError):
        M.precision_at(np.array([]))


def test_average_precision_hand_worked():
    ious = [np.array([0.3, 0.9]), np.array([0.6])]
    scores = [np.array([0.8, 0.9]), np.array([0.7])]
    ap = M.average_precision(ious, scores)
    assert list(ap) == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
    # t <= .6: ranked TP, FP, TP -> recall .5, .5, 1, interpolated precision 1, 2/3, 2/3
    #   101 recall points: 51 at precision 1, 50 at 2/3
    # .6 < t <= .9: only the .9 candidate is a TP: recall reaches .5 only
    # t = .95: no TP
    for t in (0.5, 0.55, 0.6):
        assert ap[t] == pytest.approx((51 + 50 * 2 / 3) / 101)
    for t in (0.65, 0.7, 0.75, 0.8, 0.85, 0.9):
        assert ap[t] == pytest.approx(51 / 101)
    assert ap[0.95] == 0.0
    assert M.mean_average_precision(ap) == pytest.approx((3 * (51 + 100 / 3) + 6 * 51) / 1010)


def test_average_precision_duplicates_and_limits():
    # a perfect, top-scored candidate per sample: AP 1 at every threshold
    assert M.mean_average_precision(M.average_precision([np.array([1.0])] * 3, [np.array([0.5])] * 3)) == 1.0
    # a second hit on the same object is a false positive
    ap = M.average_precision([np.array([1.0, 1.0]), np.array([1.0])], [np.array([0.9, 0.8]), np.array([0.7])])
    assert ap[0.5] == pytest.approx((51 + 50 * 2 / 3) / 101)
    # a sample without candidates caps recall
    assert M.average_precision([np.array([1.0]), np.array([])], [np.array([1.0]), np.array([])])[0.5] == pytest.approx(
        51 / 101
    )
    # only the best-scored max_detections candidates count
    ap = M.average_precision([np.array([0.0, 1.0])], [np.array([0.9, 0.1])], max_detections=1)
    assert ap[0.5] == 0.0
    with pytest.raises(ValueError):
        M.average_precision([np.array([1.0])], [np.array([1.0, 2.0])])
