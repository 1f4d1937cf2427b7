import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from annotations import AnnotationError, Project, export_project, import_into, read_ytvos
from annotations import images as images_mod
from annotations_testkit import annotations_of, box_mask, frames, make_project

OFFICIAL_ENV = "REFERFORMER_OFFICIAL_DIR"
ENTRY = {"ytvos": "", "ytvis": "instances.json", "coco": "annotations.json"}


@pytest.mark.parametrize("fmt", ["ytvos", "ytvis", "coco"])
def test_round_trip_through_each_format(tmp_path, fmt):
    source = make_project(tmp_path / "src", {"v1": (4, 24, 32), "v2": (3, 20, 18)})
    export_project(source, fmt, tmp_path / "out")
    target = Project.create(tmp_path / "dst")
    assert import_into(target, fmt, tmp_path / "out" / ENTRY[fmt]) == ["v1", "v2"]
    assert annotations_of(target) == annotations_of(source)
    if fmt == "ytvos":
        assert all(i.origin == "imported" and i.score is None for i in target.mask_infos("v1"))
    else:
        def origins_and_scores(project):
            return [(i.obj_id, i.frame, i.origin, i.score) for i in project.mask_infos("v1")]

        assert origins_and_scores(target) == origins_and_scores(source)
        assert {i.origin for i in target.mask_infos("v1")} == {"model", "hand"}
    assert (tmp_path / "out" / "JPEGImages" / "v1" / "00000.jpg").read_bytes() == \
        source.frame_path("v1", 0).read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary folders left"


def test_ytvos_files_read_like_the_ref_youtube_vos_tools_read_them(tmp_path):
    source = make_project(tmp_path / "src")
    export_project(source, "ytvos", tmp_path / "out")
    root = tmp_path / "out"
    meta = json.loads((root / "meta.json").read_text())["videos"]["v1"]["objects"]
    assert meta["1"] == {"category": "dog", "frames": ["00000", "00001", "00002", "00003"]}
    assert meta["2"] == {"category": "cat", "frames": ["00000", "00002"]}
    exps = json.loads((root / "meta_expressions.json").read_text())["videos"]["v1"]
    assert exps["frames"] == ["00000", "00001", "00002", "00003"]
    assert exps["expressions"] == {"0": {"exp": "the brown dog", "obj_id": "1"},
                                   "1": {"exp": "a dog on the left", "obj_id": "1"},
                                   "2": {"exp": "the cat", "obj_id": "2"}}
    png = Image.open(root / "Annotations" / "v1" / "00002.png")
    assert png.mode == "P" and png.getpalette()[:9] == [0, 0, 0, 128, 0, 0, 0, 128, 0]
    labels = np.array(png.convert("P"))
    assert np.array_equal(labels == 1, source.get_mask("v1", 1, 2))
    assert np.array_equal(labels == 2, source.get_mask("v1", 2, 2))
    assert Image.open(root / "JPEGImages" / "v1" / "00002.jpg").size == (32, 24)


def _official_ytvos_module():
    pytest.importorskip("torch")
    if not os.environ.get(OFFICIAL_ENV):
        pytest.skip(f"set {OFFICIAL_ENV} to a checkout of github.com/wjn922/ReferFormer to run the official loader")
    official_dir = Path(os.environ[OFFICIAL_ENV])
    if not (official_dir / "datasets" / "ytvos.py").is_file():
        pytest.skip(f"{OFFICIAL_ENV}={official_dir} has no datasets/ytvos.py (expected a ReferFormer checkout)")
    import importlib

    def official(name):
        return name.split(".")[0] in ("datasets", "util")

    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if official(k)}
    package = types.ModuleType("datasets")
    package.__path__ = [str(official_dir / "datasets")]
    sys.modules["datasets"] = package
    sys.path.insert(0, str(official_dir))
    try:
        return importlib.import_module("datasets.ytvos")
    finally:
        sys.path.remove(str(official_dir))
        for k in [k for k in sys.modules if official(k)]:
            del sys.modules[k]
        sys.modules.update(saved)


def test_the_official_referformer_loader_reads_the_export(tmp_path):
    ytvos = _official_ytvos_module()
    import torch

    source = make_project(tmp_path / "src")
    export_project(source, "ytvos", tmp_path / "out")

    def to_tensors(imgs, target):
        return [torch.as_tensor(np.array(i)) for i in imgs], target

    dataset = ytvos.YTVOSDataset(tmp_path / "out", tmp_path / "out" / "meta_expressions.json", to_tensors,
                                 return_masks=True, num_frames=1, max_skip=3)
    assert [(m["video"], m["obj_id"], m["exp"], m["category"], m["frame_id"]) for m in dataset.metas] == [
        ("v1", obj_id, exp, category, t)
        for obj_id, exp, category in [(1, "the brown dog", "dog"), (1, "a dog on the left", "dog"), (2, "the cat", "cat")]
        for t in range(4)]
    obj_of_caption = {"the brown dog": 1, "a dog on the left": 1, "the cat": 2}
    for index in range(len(dataset.metas)):
        imgs, target = dataset[index]
        frame = int(target["frames_idx"][0])
        expected = source.get_mask("v1", obj_of_caption[target["caption"]], frame)
        assert expected.any() and int(target["valid"][0]) == 1
        assert np.array_equal(target["masks"][0].numpy().astype(bool), expected)
        assert imgs.shape == (1, 24, 32, 3)
        assert np.abs(imgs[0].numpy().astype(int) - source.read_frame("v1", frame)).max() == 0


def test_coco_export_loads_in_pycocotools(tmp_path):
    source = make_project(tmp_path / "src")
    export_project(source, "coco", tmp_path / "out")
    coco = COCO(str(tmp_path / "out" / "annotations.json"))
    assert len(coco.getImgIds()) == 4
    assert {c["name"] for c in coco.loadCats(coco.getCatIds())} == {"cat", "dog"}
    image = coco.loadImgs(coco.getImgIds())[2]
    assert image["file_name"] == "v1/00002.jpg"
    assert (tmp_path / "out" / "JPEGImages" / image["file_name"]).is_file()
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
    by_obj = {a["obj_id"]: a for a in anns}
    assert sorted(by_obj) == [1, 2]
    for obj_id, ann in by_obj.items():
        mask = source.get_mask("v1", obj_id, 2)
        assert np.array_equal(coco.annToMask(ann).astype(bool), mask)
        assert ann["area"] == mask.sum()
        ys, xs = np.nonzero(mask)
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
    assert len(coco.getAnnIds(imgIds=[coco.getImgIds()[1]])) == 1, "frame 1 only has the dog"


def test_ytvis_export_reads_like_the_youtube_vis_api(tmp_path):
    source = make_project(tmp_path / "src")
    export_project(source, "ytvis", tmp_path / "out")
    data = json.loads((tmp_path / "out" / "instances.json").read_text())
    (video,) = data["videos"]
    assert video["file_names"] == [f"v1/0000{i}.jpg" for i in range(4)]
    assert (video["width"], video["height"], video["length"]) == (32, 24, 4)
    cat = {c["id"]: c["name"] for c in data["categories"]}
    for ann in data["annotations"]:
        assert ann["video_id"] == video["id"] and ann["iscrowd"] == 0
        assert len(ann["segmentations"]) == len(ann["areas"]) == len(ann["bboxes"]) == 4
        obj_id = {"dog": 1, "cat": 2}[cat[ann["category_id"]]]
        for t, segm in enumerate(ann["segmentations"]):
            expected = source.get_masks("v1", obj_id)[t]
            if segm is None:
                assert not expected.any() and ann["areas"][t] is None and ann["bboxes"][t] is None
                continue
            rle = segm if isinstance(segm["counts"], str) else mask_utils.frPyObjects(segm, 24, 32)
            assert np.array_equal(mask_utils.decode(rle).astype(bool), expected)
            assert ann["areas"][t] == int(mask_utils.area(rle)) == expected.sum()
    assert [a["segmentations"][1] is None for a in data["annotations"]] == [False, True]


def test_subset_export_of_objects_and_reviewed_frames(tmp_path):
    source = make_project(tmp_path / "src", {"a": (4, 12, 12), "b": (2, 12, 12)})
    source.set_review("a", [1, 2], "reviewed")
    export_project(source, "ytvos", tmp_path / "out", videos=["a"], objects=[("a", 2)], reviewed_only=True)
    exps = json.loads((tmp_path / "out" / "meta_expressions.json").read_text())["videos"]
    assert list(exps) == ["a"] and exps["a"]["frames"] == ["00001", "00002"]
    assert [e["obj_id"] for e in exps["a"]["expressions"].values()] == ["2"]
    assert sorted(p.name for p in (tmp_path / "out" / "Annotations" / "a").iterdir()) == ["00001.png", "00002.png"]
    labels = np.array(Image.open(tmp_path / "out" / "Annotations" / "a" / "00002.png"))
    assert set(np.unique(labels)) == {0, 2}


def test_overlapping_masks_go_to_the_larger_object_id(tmp_path):
    project = make_project(tmp_path / "p", {"v": (1, 8, 8)})
    project.set_mask("v", 1, 0, box_mask(8, 8, 0, 0, 8, 8), "hand")
    export_project(project, "ytvos", tmp_path / "out")
    labels = np.array(Image.open(tmp_path / "out" / "Annotations" / "v" / "00000.png"))
    assert np.array_equal(labels == 2, project.get_mask("v", 2, 0))
    assert np.array_equal(labels == 1, ~project.get_mask("v", 2, 0))


def test_object_ids_above_255_cannot_go_to_ytvos(tmp_path):
    project = make_project(tmp_path / "p", {"v": (1, 8, 8)})
    project.add_object("v", ["big"], obj_id=300)
    with pytest.raises(AnnotationError, match=r"object ids \[300\] do not fit"):
        export_project(project, "ytvos", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    export_project(project, "ytvis", tmp_path / "out")


def test_a_failed_export_leaves_the_previous_one_intact(tmp_path, monkeypatch):
    project = make_project(tmp_path / "p", {"v": (4, 8, 8)})
    export_project(project, "ytvos", tmp_path / "out")
    before = {p.relative_to(tmp_path / "out"): p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    project.set_mask("v", 1, 0, np.ones((8, 8), bool), "hand")
    calls = []

    def crash_on_third(path, labels):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        original(path, labels)

    original = images_mod.write_label_png
    monkeypatch.setattr("annotations.ytvos.write_label_png", crash_on_third)
    with pytest.raises(OSError, match="disk full"):
        export_project(project, "ytvos", tmp_path / "out")
    after = {p.relative_to(tmp_path / "out"): p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "p"]
    monkeypatch.undo()
    export_project(project, "ytvos", tmp_path / "out")
    assert np.array(Image.open(tmp_path / "out" / "Annotations" / "v" / "00000.png")).all()


def test_read_ytvos_accepts_the_official_split_layout_without_annotations(tmp_path):
    source = make_project(tmp_path / "src")
    export_project(source, "ytvos", tmp_path / "out")
    (tmp_path / "meta_expressions" / "valid").mkdir(parents=True)
    (tmp_path / "out" / "meta_expressions.json").rename(tmp_path / "meta_expressions" / "valid" / "m.json")
    for png in (tmp_path / "out" / "Annotations" / "v1").iterdir():
        png.unlink()
    (tmp_path / "out" / "Annotations" / "v1").rmdir()
    data = read_ytvos(tmp_path / "out", tmp_path / "meta_expressions" / "valid" / "m.json")
    assert [t.expressions for t in data.videos[0].objects] == [["the brown dog", "a dog on the left"], ["the cat"]]
    assert all(t.masks == {} for t in data.videos[0].objects)


label_maps = st.integers(1, 3).flatmap(lambda t: st.tuples(st.integers(1, 9), st.integers(1, 11)).flatmap(
    lambda hw: st.lists(st.lists(st.integers(0, 3), min_size=hw[0] * hw[1], max_size=hw[0] * hw[1]),
                        min_size=t, max_size=t).map(lambda maps: np.array(maps, np.uint8).reshape(t, *hw))))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(labels=label_maps, fmt=st.sampled_from(["ytvos", "ytvis", "coco"]))
def test_random_masks_round_trip(tmp_path_factory, labels, fmt):
    """Random label maps [T, H, W] (ids 0..3) -> project -> format -> new project: identical masks."""
    tmp = tmp_path_factory.mktemp("rt")
    t, h, w = labels.shape
    source = Project.create(tmp / "src")
    source.add_video("vid", frames(t, h, w))
    for obj_id in (1, 2, 3):
        source.add_object("vid", [f"object {obj_id}"], category=f"c{obj_id}")
        source.set_masks("vid", obj_id, {i: labels[i] == obj_id for i in range(t)}, "model")
    export_project(source, fmt, tmp / "out")
    target = Project.create(tmp / "dst")
    import_into(target, fmt, tmp / "out" / ENTRY[fmt])
    assert target.frame_names("vid") == source.frame_names("vid")
    assert [(o.obj_id, o.category, o.expressions) for o in target.objects("vid")] == [
        (i, f"c{i}", (f"object {i}",)) for i in (1, 2, 3)]
    for obj_id in (1, 2, 3):
        assert np.array_equal(target.get_masks("vid", obj_id), labels == obj_id)


def test_ytvos_refuses_frame_names_the_official_loader_would_reorder(tmp_path):
    project = Project.create(tmp_path / "p")
    project.add_video("v", frames(3, 8, 8), frame_names=["9", "10", "11"])
    with pytest.raises(AnnotationError, match="frame names are not in sorted order"):
        export_project(project, "ytvos", tmp_path / "out")
    export_project(project, "ytvis", tmp_path / "out")
    target = Project.create(tmp_path / "dst")
    import_into(target, "ytvis", tmp_path / "out" / "instances.json")
    assert target.frame_names("v") == ["9", "10", "11"]


def test_exports_fsync_every_file_and_folder_before_the_rename(tmp_path, monkeypatch):
    from annotations import atomic

    source = make_project(tmp_path / "src", {"v1": (3, 8, 8)})
    synced, renamed = [], []
    real_fsync, real_rename = os.fsync, os.rename
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")),
                                                        real_fsync(fd))[1])
    monkeypatch.setattr(atomic.os, "rename", lambda a, b: (renamed.append((str(a), len(synced))), real_rename(a, b))[1])
    export_project(source, "ytvis", tmp_path / "out")
    (tmp, synced_before), = renamed
    files = [tmp + "/instances.json", tmp + "/JPEGImages", tmp + "/JPEGImages/v1"]
    files += [f"{tmp}/JPEGImages/v1/0000{i}.jpg" for i in range(3)]
    assert set(files + [tmp]) <= set(synced[:synced_before])
    assert synced[synced_before:] == [str(tmp_path)], "the parent folder after the rename"
