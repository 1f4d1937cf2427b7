"""Ref-COCO data (the official converted COCO-format json + train2014 images) as one-frame clips, mixed with the
Ref-Youtube-VOS data in training, and the one-line errors for bad input."""
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as coco_mask

from train.__main__ import main
from train.data import ClipDataset, ConcatClipDatasets, TrainingDataError, read_expressions
from train.refcoco import RefExpDataset, decode_mask, default_image_folder, read_refexp
from train.transforms import AugmentOptions

H, W = 64, 96
OPTIONS = AugmentOptions(scales=(64,), max_size=96, crop_scales=(72, 80), crop_min_size=40, crop_max_size=64)


def _square() -> np.ndarray:
    """The polygon [10, 10, 40, 10, 40, 30, 10, 30]: columns 10..39, rows 10..29."""
    mask = np.zeros((H, W), bool)
    mask[10:30, 10:40] = True
    return mask


def _disc() -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return (yy - 32) ** 2 + (xx - 70) ** 2 <= 12 ** 2


def _bar() -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[40:60, 5:25] = True
    return mask


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE: run lengths over the column-major pixels, starting with a run of zeros."""
    flat = mask.flatten(order="F").astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    return {"counts": ([0] if flat[0] else []) + runs, "size": [H, W]}


def _write_refcoco(coco: Path) -> Path:
    """``coco/train2014`` with two 64x96 images and ``coco/refcoco/instances_refcoco_train.json`` with four
    expressions: a polygon, a compressed RLE, an uncompressed RLE (next to a crowd annotation), two polygons."""
    (coco / "train2014").mkdir(parents=True)
    (coco / "refcoco").mkdir()
    scene = np.full((H, W, 3), 90, np.uint8)
    scene[_square()] = (220, 40, 40)
    scene[_disc()] = (50, 80, 230)
    Image.fromarray(scene).save(coco / "train2014" / "COCO_train2014_000000000001.jpg", quality=95)
    other = np.full((H, W, 3), 120, np.uint8)
    other[_bar()] = (40, 200, 60)
    Image.fromarray(other).save(coco / "train2014" / "COCO_train2014_000000000002.jpg", quality=95)

    compressed = coco_mask.encode(np.asfortranarray(_disc().astype(np.uint8)))
    compressed["counts"] = compressed["counts"].decode("ascii")
    files = ["COCO_train2014_000000000001.jpg"] * 3 + ["COCO_train2014_000000000002.jpg"]
    captions = ["The red square on the LEFT", "blue disc on the right", "the  blue disc", "green bar"]
    segmentations = [[[10, 10, 40, 10, 40, 30, 10, 30]], compressed, _uncompressed_rle(_disc()),
                     [[5, 40, 15, 40, 15, 60, 5, 60], [15, 40, 25, 40, 25, 60, 15, 60]]]
    images = [{"id": i + 1, "file_name": f, "height": H, "width": W, "caption": c, "original_id": 1 + (i == 3),
               "dataset_name": "refcoco"} for i, (f, c) in enumerate(zip(files, captions))]
    annotations = [{"id": i + 1, "image_id": i + 1, "segmentation": s, "bbox": [0, 0, 1, 1], "area": 1.0,
                    "iscrowd": 0, "category_id": 1} for i, s in enumerate(segmentations)]
    annotations.append({"id": 5, "image_id": 3, "segmentation": _uncompressed_rle(_square()), "bbox": [0, 0, 1, 1],
                        "area": 1.0, "iscrowd": 1, "category_id": 1})
    path = coco / "refcoco" / "instances_refcoco_train.json"
    path.write_text(json.dumps({"info": {}, "licenses": [], "categories": [{"id": 1, "name": "thing"}],
                                "images": images, "annotations": annotations}))
    return path


@pytest.fixture
def refcoco_json(tmp_path) -> Path:
    return _write_refcoco(tmp_path / "coco")


def test_reads_polygons_and_rles_of_the_converted_format(refcoco_json):
    images = default_image_folder(refcoco_json)
    assert images == refcoco_json.parent.parent.resolve() / "train2014"
    records = read_refexp(refcoco_json, images)
    assert [r.expression for r in records] == ["the red square on the left", "blue disc on the right",
                                               "the blue disc", "green bar"]
    assert [r.image_id for r in records] == [1, 2, 3, 4] and records[3].file_name.endswith("02.jpg")
    expected = [_square(), _disc(), _disc(), _bar()]  # record 3's crowd annotation (the square) is ignored
    for record, mask in zip(records, expected):
        assert np.array_equal(decode_mask(record), mask), record.expression


def test_clips_repeat_the_image_with_its_mask_and_box(refcoco_json):
    records = read_refexp(refcoco_json, default_image_folder(refcoco_json))
    dataset = RefExpDataset(default_image_folder(refcoco_json), records, 3, OPTIONS, False, seed=0)
    assert len(dataset) == 4
    frames, target = dataset[0]
    assert frames.shape == (3, 3, H, W) and torch.equal(frames[0], frames[1]) and torch.equal(frames[0], frames[2])
    assert frames[0, 0, 20, 25] > frames[0, 0, 50, 60]  # red object brighter in R than the grey background
    assert target["caption"] == "the red square on the left"
    assert torch.equal(target["masks"], torch.from_numpy(np.stack([_square()] * 3).astype(np.float32)))
    assert torch.allclose(target["boxes"], torch.tensor([[25 / W, 20 / H, 30 / W, 20 / H]] * 3))
    assert target["valid"].tolist() == [1, 1, 1] and target["labels"].tolist() == [0, 0, 0]

    augmented = RefExpDataset(default_image_folder(refcoco_json), records, 3, OPTIONS, True, seed=0)
    for index in range(len(augmented)):
        frames, target = augmented[index]
        assert frames.shape[:2] == (3, 3) and target["masks"].shape == (3, *frames.shape[-2:])
        assert target["valid"].tolist() == [1, 1, 1]
        assert torch.equal(target["masks"][0], target["masks"][1]) and torch.equal(target["masks"][0], target["masks"][2])
        again = augmented[index]
        assert torch.equal(frames, again[0]) and target["caption"] == again[1]["caption"]
    captions = set()
    for epoch in range(8):
        augmented.set_epoch(epoch)
        captions.add(augmented[0][1]["caption"])
    assert captions == {"the red square on the left", "the red square on the right"}  # flipped in some epochs


def test_concatenated_datasets_share_the_epoch(refcoco_json, tiny_data):
    video = ClipDataset(tiny_data, read_expressions(tiny_data), 3, 3, OPTIONS, True, seed=0)
    images = default_image_folder(refcoco_json)
    refcoco = RefExpDataset(images, read_refexp(refcoco_json, images), 3, OPTIONS, True, seed=0)
    mixed = ConcatClipDatasets([video, refcoco])
    assert len(mixed) == 4 + 4
    assert mixed[4][1]["caption"] in ("the red square on the left", "the red square on the right")
    mixed.set_epoch(3)
    assert video.epoch == refcoco.epoch == 3


def test_one_training_step_mixes_videos_and_refcoco(refcoco_json, tiny_data, tokenizer_dir, tmp_path, capsys):
    """8 clips in one batch: the 4 video clips alone would be fewer than one batch (an error)."""
    args = ["--data", str(tiny_data), "--refcoco", str(refcoco_json), "--out", str(tmp_path / "run"), "--config",
            "tiny", "--text-encoder", str(tokenizer_dir), "--num-frames", "3", "--train-scales", "64", "--max-size",
            "96", "--num-workers", "0", "--val-fraction", "0", "--batch-size", "8", "--epochs", "1",
            "--no-augment", "--no-progress", "--log-every-steps", "1"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "only 2 training videos"
        assert main(args) == 0
    assert "(1 epochs, 1 steps)" in capsys.readouterr().out
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert logged[0]["kind"] == "train" and math.isfinite(logged[0]["loss"]) and logged[0]["loss"] > 0


def _drop_segmentation(data):
    del data["annotations"][1]["segmentation"]


def _empty_segmentation(data):
    data["annotations"][0]["segmentation"] = []


def _orphan_image(data):
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] != 4]


def _short_polygon(data):
    data["annotations"][3]["segmentation"][1] = [15, 40, 25, 40]


def _no_caption(data):
    del data["images"][2]["caption"]


@pytest.mark.parametrize("damage, message", [
    (_drop_segmentation, r"annotation 2 \(image 2\) has no segmentation"),
    (_empty_segmentation, r"annotation 1 \(image 1\) has no segmentation"),
    (_orphan_image, "image 4 .* has no non-crowd annotation"),
    (_short_polygon, "annotation 4 .* a segmentation polygon needs at least 3"),
    (_no_caption, "every image needs .* a 'caption'"),
])
def test_bad_annotations_give_one_line(refcoco_json, damage, message):
    data = json.loads(refcoco_json.read_text())
    damage(data)
    refcoco_json.write_text(json.dumps(data))
    with pytest.raises(TrainingDataError, match=message) as error:
        read_refexp(refcoco_json, default_image_folder(refcoco_json))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("damage, message", [
    (lambda path: path.unlink(), "Ref-COCO annotation file .* not found"),
    (lambda path: path.write_text("{not json"), "cannot read"),
    (lambda path: path.write_text('{"images": {}}'), "is not COCO-format"),
    (lambda path: (path.parent.parent / "train2014" / "COCO_train2014_000000000002.jpg").unlink(),
     "COCO_train2014_000000000002.jpg listed in instances_refcoco_train.json does not exist"),
])
def test_bad_files_give_one_line(refcoco_json, damage, message):
    damage(refcoco_json)
    with pytest.raises(TrainingDataError, match=message) as error:
        read_refexp(refcoco_json, default_image_folder(refcoco_json))
    assert "\n" not in str(error.value)


def test_bad_refcoco_input_is_one_line_from_the_cli(refcoco_json, tiny_data, tmp_path, capsys):
    missing = tmp_path / "elsewhere"
    args = ["--data", str(tiny_data), "--refcoco", str(refcoco_json), "--refcoco-images", str(missing),
            "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(args) == 2
    assert capsys.readouterr().err.strip() == f"error: Ref-COCO image folder {missing} does not exist"
