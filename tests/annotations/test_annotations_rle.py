import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as mask_utils

from annotations import rle


def test_encode_decode_area_bbox_of_a_box():
    mask = np.zeros((10, 12), dtype=bool)
    mask[2:5, 3:9] = True
    encoded = rle.encode(mask)
    assert encoded["size"] == [10, 12]
    assert isinstance(encoded["counts"], str)
    assert np.array_equal(rle.decode(encoded), mask)
    assert rle.area(encoded) == 18
    assert rle.bbox(encoded) == [3.0, 2.0, 6.0, 3.0]


def test_empty_mask_has_zero_area_and_box():
    encoded = rle.encode(np.zeros((4, 5), dtype=bool))
    assert rle.area(encoded) == 0
    assert rle.bbox(encoded) == [0.0, 0.0, 0.0, 0.0]


def test_encode_refuses_a_stack():
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        rle.encode(np.zeros((2, 4, 5), dtype=bool))


def test_encode_labels_matches_per_id_masks():
    labels = np.array([[0, 1, 1], [2, 2, 0], [1, 0, 2]], dtype=np.uint8)
    out = rle.encode_labels(labels, [1, 2])
    assert np.array_equal(rle.decode(out[1]), labels == 1)
    assert np.array_equal(rle.decode(out[2]), labels == 2)


def test_uncompressed_and_polygon_segmentations_are_normalised():
    mask = np.zeros((6, 7), dtype=bool)
    mask[1:4, 2:6] = True
    flat = mask.flatten(order="F")
    counts, value, run = [], False, 0
    for pixel in flat:
        if pixel != value:
            counts.append(run)
            value, run = pixel, 0
        run += 1
    counts.append(run)
    from_list = rle.from_coco_segmentation({"size": [6, 7], "counts": counts}, 6, 7)
    assert np.array_equal(rle.decode(from_list), mask)
    polygon = rle.from_coco_segmentation([[2.0, 1.0, 6.0, 1.0, 6.0, 4.0, 2.0, 4.0]], 6, 7)
    assert rle.area(polygon) > 0
    assert rle.decode(polygon)[2, 3]


@pytest.mark.parametrize("segmentation, message", [
    ({"size": [6, 7], "counts": [5, 5]}, "sum to 42"),
    ({"size": [5, 7], "counts": "0"}, "does not match"),
    ({"size": [6, 7], "counts": "\x7f\x7f"}, "not a valid compressed RLE"),
    ({"size": [6, 7], "counts": "1"}, "not a valid compressed RLE"),
    ({"size": [6, 7]}, "RLE"),
    ("nonsense", "RLE"),
    ([[1, 2, 3]], "polygons"),
])
def test_bad_segmentations_are_refused_before_pycocotools_sees_them(segmentation, message):
    with pytest.raises(ValueError, match=message):
        rle.from_coco_segmentation(segmentation, 6, 7)


@settings(max_examples=60, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 17), st.integers(1, 19))))
def test_random_masks_round_trip_and_match_pycocotools(mask):
    encoded = rle.encode(mask)
    assert np.array_equal(rle.decode(encoded), mask)
    assert rle.area(encoded) == int(mask.sum())
    assert rle.from_coco_segmentation(encoded, *mask.shape) == encoded
    reference = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    assert reference["counts"].decode("ascii") == encoded["counts"]
    if mask.any():
        ys, xs = np.nonzero(mask)
        assert rle.bbox(encoded) == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
