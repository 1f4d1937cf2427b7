"""Broken datasets: each import fails with one line naming the file and field, and imports nothing."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotations import FormatError, Project, export_project, import_into
from annotations.images import write_label_png
from annotations_testkit import make_project

VIDEOS = {"v1": (3, 12, 16), "v2": (2, 12, 16)}


@pytest.fixture
def exported(tmp_path):
    """Each format exported from a 2-video project, and a target project that already has one video."""
    source = make_project(tmp_path / "src", VIDEOS)
    for fmt in ("ytvos", "ytvis", "coco"):
        export_project(source, fmt, tmp_path / fmt)
    target = make_project(tmp_path / "dst", {"existing": (2, 8, 8)})
    return tmp_path, target


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def assert_refused(target: Project, fmt: str, path: Path, file: str, field: str, problem: str) -> None:
    before = (target.videos(), sorted(p.name for p in (target.folder / "frames").iterdir()), target.history())
    with pytest.raises(FormatError) as info:
        import_into(target, fmt, path)
    message = str(info.value)
    assert "\n" not in message
    assert Path(info.value.file).name == file, message
    assert info.value.field == field, message
    assert re.search(problem, info.value.problem), message
    assert message.startswith(info.value.file) and field in message
    after = (target.videos(), sorted(p.name for p in (target.folder / "frames").iterdir()), target.history())
    assert after == before, "nothing may be imported"


# ----------------------------------------------------------------------------------------- ytvos
def test_ytvos_truncated_json(exported):
    tmp, target = exported
    path = tmp / "ytvos" / "meta_expressions.json"
    path.write_bytes(path.read_bytes()[:-20])
    assert_refused(target, "ytvos", tmp / "ytvos", "meta_expressions.json", "(json)", "invalid JSON at line 1")


def test_ytvos_json_that_is_not_utf8(exported):
    tmp, target = exported
    path = tmp / "ytvos" / "meta.json"
    path.write_bytes(path.read_bytes().replace(b'"dog"', b'"d\xffg"'))
    assert_refused(target, "ytvos", tmp / "ytvos", "meta.json", "(file)", "not UTF-8")


def test_ytvos_duplicate_expression_ids(exported):
    tmp, target = exported
    path = tmp / "ytvos" / "meta_expressions.json"
    text = path.read_text()
    path.write_text(text.replace('"1": {"exp"', '"0": {"exp"', 1))
    assert_refused(target, "ytvos", tmp / "ytvos", "meta_expressions.json", "0", "duplicate key")


def test_ytvos_png_id_not_in_meta(exported):
    tmp, target = exported
    png = tmp / "ytvos" / "Annotations" / "v2" / "00001.png"
    labels = np.array(Image.open(png))
    labels[0, 0] = 7
    write_label_png(png, labels)
    assert_refused(target, "ytvos", tmp / "ytvos", "00001.png", "(pixel values)", r"object ids \[7\] are not in")


def test_ytvos_png_of_the_wrong_size(exported):
    tmp, target = exported
    write_label_png(tmp / "ytvos" / "Annotations" / "v1" / "00002.png", np.zeros((12, 15), np.uint8))
    assert_refused(target, "ytvos", tmp / "ytvos", "00002.png", "(image size)", "15x12 does not match .* 16x12")


def test_ytvos_missing_png_and_rgb_png(exported):
    tmp, target = exported
    png = tmp / "ytvos" / "Annotations" / "v1" / "00001.png"
    Image.new("RGB", (16, 12)).save(png)
    assert_refused(target, "ytvos", tmp / "ytvos", "00001.png", "(image)", "must be a palette PNG")
    png.unlink()
    assert_refused(target, "ytvos", tmp / "ytvos", "00001.png", "(image)", "not found")


def test_ytvos_missing_jpeg(exported):
    tmp, target = exported
    (tmp / "ytvos" / "JPEGImages" / "v2" / "00001.jpg").unlink()
    assert_refused(target, "ytvos", tmp / "ytvos", "meta_expressions.json", "videos.v2.frames", "00001.jpg not found")


@pytest.mark.parametrize("name, problem", [("../evil", "unsafe name"), ("/abs", "unsafe name"),
                                           ("bad\udcffname", "not valid UTF-8")])
def test_ytvos_unsafe_or_non_utf8_video_names(exported, name, problem):
    tmp, target = exported
    for file in ("meta.json", "meta_expressions.json"):
        edit_json(tmp / "ytvos" / file, lambda d: d["videos"].__setitem__(name, d["videos"].pop("v2")))
    assert_refused(target, "ytvos", tmp / "ytvos", "meta_expressions.json", f"videos.{name}", problem)


def test_ytvos_expression_for_an_unknown_object(exported):
    tmp, target = exported
    edit_json(tmp / "ytvos" / "meta_expressions.json",
              lambda d: d["videos"]["v2"]["expressions"]["2"].__setitem__("obj_id", "5"))
    assert_refused(target, "ytvos", tmp / "ytvos", "meta_expressions.json", "videos.v2.expressions.2.obj_id",
                   "object 5 is not in meta.json")


def test_ytvos_bad_object_id_and_missing_field(exported):
    tmp, target = exported
    edit_json(tmp / "ytvos" / "meta.json",
              lambda d: d["videos"]["v2"]["objects"].__setitem__("x1", d["videos"]["v2"]["objects"].pop("2")))
    assert_refused(target, "ytvos", tmp / "ytvos", "meta.json", "videos.v2.objects.x1", "must be an integer 1..255")
    edit_json(tmp / "ytvos" / "meta.json", lambda d: d["videos"]["v1"].pop("objects"))
    assert_refused(target, "ytvos", tmp / "ytvos", "meta.json", "videos.v1.objects", "missing")


def test_ytvos_video_missing_from_meta(exported):
    tmp, target = exported
    edit_json(tmp / "ytvos" / "meta.json", lambda d: d["videos"].pop("v2"))
    assert_refused(target, "ytvos", tmp / "ytvos", "meta.json", "videos.v2", "missing")


# ----------------------------------------------------------------------------------------- ytvis
def ytvis(tmp: Path) -> Path:
    return tmp / "ytvis" / "instances.json"


def test_ytvis_mask_of_the_wrong_size(exported):
    tmp, target = exported
    edit_json(ytvis(tmp), lambda d: d["annotations"][2]["segmentations"].__setitem__(0, {"size": [12, 15],
                                                                                          "counts": "0"}))
    assert_refused(target, "ytvis", ytvis(tmp), "instances.json", "annotations[2].segmentations[0]",
                   r"mask size \[12, 15\] does not match the frame size \[12, 16\]")


def test_ytvis_corrupt_rle_counts(exported):
    tmp, target = exported
    edit_json(ytvis(tmp), lambda d: d["annotations"][0]["segmentations"][1].__setitem__("counts", "zz~~"))
    assert_refused(target, "ytvis", ytvis(tmp), "instances.json", "annotations[0].segmentations[1]",
                   "not a valid compressed RLE")


@pytest.mark.parametrize("section", ["videos", "annotations", "categories"])
def test_ytvis_duplicate_ids(exported, section):
    tmp, target = exported
    edit_json(ytvis(tmp), lambda d: d[section][1].__setitem__("id", d[section][0]["id"]))
    assert_refused(target, "ytvis", ytvis(tmp), "instances.json", f"{section}[1].id", "duplicate")


@pytest.mark.parametrize("file_name, problem", [("../v1/00000.jpg", "unsafe name"),
                                                ("/etc/v1/00000.jpg", "absolute path"),
                                                ("v\udcff1/00000.jpg", "not valid UTF-8"),
                                                ("a/b/c.jpg", "must be <video>/<frame>.jpg")])
def test_ytvis_unsafe_file_names(exported, file_name, problem):
    tmp, target = exported
    edit_json(ytvis(tmp), lambda d: d["videos"][1]["file_names"].__setitem__(0, file_name))
    assert_refused(target, "ytvis", ytvis(tmp), "instances.json", "videos[id=2].file_names[0]", problem)


@pytest.mark.parametrize("change, field, problem", [
    (lambda d: d["annotations"][1]["segmentations"].pop(), "annotations[1].segmentations",
     "has 2 entries for a video of 3 frames"),
    (lambda d: d["annotations"][1].__setitem__("category_id", 99), "annotations[1].category_id",
     "unknown category id 99"),
    (lambda d: d["annotations"][3].__setitem__("video_id", "2"), "annotations[3].video_id", "must be an integer"),
    (lambda d: d["annotations"][3].__setitem__("video_id", 7), "annotations[3].video_id", "unknown video id 7"),
    (lambda d: d["annotations"][3].__setitem__("obj_id", 1), "annotations[3].obj_id", "duplicate obj_id 1"),
    (lambda d: d["videos"][0].__setitem__("length", 9), "videos[id=1].length", "but file_names has 3"),
    (lambda d: d.pop("videos"), "videos", "missing"),
    (lambda d: d["categories"][0].__setitem__("name", None), "categories[0].name", "must be a string"),
])
def test_ytvis_structure_errors(exported, change, field, problem):
    tmp, target = exported
    edit_json(ytvis(tmp), change)
    assert_refused(target, "ytvis", ytvis(tmp), "instances.json", field, problem)


def test_ytvis_jpeg_of_the_wrong_size(exported):
    tmp, target = exported
    Image.new("RGB", (10, 10)).save(tmp / "ytvis" / "JPEGImages" / "v2" / "00000.jpg")
    assert_refused(target, "ytvis", ytvis(tmp), "instances.json", "videos[id=2].file_names", "is 10x10, expected 16x12")


# ----------------------------------------------------------------------------------------- coco
def coco(tmp: Path) -> Path:
    return tmp / "coco" / "annotations.json"


@pytest.mark.parametrize("section", ["images", "annotations"])
def test_coco_duplicate_ids(exported, section):
    tmp, target = exported
    edit_json(coco(tmp), lambda d: d[section][-1].__setitem__("id", d[section][0]["id"]))
    n = len(json.loads(coco(tmp).read_text())[section]) - 1
    assert_refused(target, "coco", coco(tmp), "annotations.json", f"{section}[{n}].id", "duplicate")


def test_coco_reference_and_size_errors(exported):
    tmp, target = exported
    edit_json(coco(tmp), lambda d: d["annotations"][-1].__setitem__("image_id", 999))
    n = len(json.loads(coco(tmp).read_text())["annotations"]) - 1
    assert_refused(target, "coco", coco(tmp), "annotations.json", f"annotations[{n}].image_id", "unknown image id 999")
    edit_json(coco(tmp), lambda d: d["images"][1].__setitem__("width", 17))
    assert_refused(target, "coco", coco(tmp), "annotations.json", "images", "different sizes")
    edit_json(coco(tmp), lambda d: d["images"][0].__setitem__("file_name", "/abs/00000.jpg"))
    assert_refused(target, "coco", coco(tmp), "annotations.json", "images[id=1].file_name", "absolute path")


def test_coco_two_annotations_of_one_object_on_one_image(exported):
    tmp, target = exported
    edit_json(coco(tmp), lambda d: d["annotations"].append(dict(d["annotations"][0], id=500)))
    n = len(json.loads(coco(tmp).read_text())["annotations"]) - 1
    assert_refused(target, "coco", coco(tmp), "annotations.json", f"annotations[{n}].obj_id", "two annotations")


def test_plain_coco_without_video_keys_is_grouped_by_folder(exported):
    """A generic COCO file (no obj_id/video/frame_index/objects) still imports: one object per annotation."""
    tmp, target = exported

    def strip(d):
        d.pop("objects")
        for image in d["images"]:
            image.pop("video"), image.pop("frame_index")
        for ann in d["annotations"]:
            ann.pop("obj_id")
    edit_json(coco(tmp), strip)
    assert import_into(target, "coco", coco(tmp)) == ["v1", "v2"]
    assert target.frame_names("v1") == ["00000", "00001", "00002"]
    assert len(target.objects("v1")) == 5 and all(o.expressions == () for o in target.objects("v1"))
