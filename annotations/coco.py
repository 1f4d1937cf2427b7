"""COCO image JSON: one image per annotated frame, one instance annotation per visible object.

::

    <root>/annotations.json
    <root>/JPEGImages/<video>/<frame>.jpg

``images``: ``{id, file_name, width, height}``; ``annotations``: ``{id, image_id, category_id,
segmentation (compressed RLE), area, bbox, iscrowd}``; ``categories``.  A frame is included when at
least one exported object has a stored mask on it (an empty stored mask makes a negative image).
Extra keys, ignored by COCO tools, keep the video structure for re-import: ``video`` and
``frame_index`` on images, ``obj_id``, ``origin`` and ``score`` on annotations, and a top-level ``objects`` list
``{video, obj_id, category_id, expressions}``.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from . import rle as rle_mod
from .atomic import atomic_directory
from .checks import expressions_field, field, load_json, positive_int, safe_name
from .cocojson import (category_table, mask_extras, read_categories, read_mask_extras, read_segmentation,
                       split_file_name, unique_ids, write_json)
from .errors import FormatError
from .images import check_frames
from .model import Dataset, Frame, Track, VideoData
from .store import Project

JSON_NAME = "annotations.json"


def to_coco(dataset: Dataset) -> tuple[dict[str, Any], list[tuple[Path, str]]]:
    """The COCO document of ``dataset`` and the ``(source JPEG, file_name)`` pairs it references (pure)."""
    categories, category_ids = category_table(dataset)
    images, annotations, objects, files = [], [], [], []
    for video in dataset.videos:
        tracks = sorted(video.objects, key=lambda t: t.obj_id)
        objects += [{"video": video.name, "obj_id": t.obj_id, "category_id": category_ids[t.category],
                     "expressions": list(t.expressions)} for t in tracks]
        for position, frame in enumerate(video.frames):
            stored = [(t, t.masks[position]) for t in tracks if position in t.masks]
            if not stored:
                continue
            image_id = len(images) + 1
            file_name = f"{video.name}/{frame.name}.jpg"
            images.append({"id": image_id, "file_name": file_name, "width": video.width, "height": video.height,
                           "video": video.name, "frame_index": position})
            files.append((frame.image, file_name))
            for track, rle in stored:
                area = rle_mod.area(rle)
                if area:
                    annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                        "category_id": category_ids[track.category], "segmentation": rle,
                                        "area": area, "bbox": rle_mod.bbox(rle), "iscrowd": 0,
                                        "obj_id": track.obj_id, **mask_extras(track, position)})
    document = {"info": {"description": "ReferFormer Studio export"}, "licenses": [], "images": images,
                "annotations": annotations, "categories": categories, "objects": objects}
    return document, files


def export_coco(dataset: Dataset, out_dir: str | Path) -> None:
    """Write ``annotations.json`` and the referenced ``JPEGImages/`` to ``out_dir`` (atomically)."""
    document, files = to_coco(dataset)
    with atomic_directory(out_dir) as tmp:
        for source, file_name in files:
            target = tmp / "JPEGImages" / file_name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        write_json(tmp / JSON_NAME, document)


def read_coco(json_file: str | Path, images_dir: str | Path | None = None) -> Dataset:
    """Read and fully validate a COCO image JSON file; nothing is written.

    Images are grouped into videos by their ``video`` key, else by the folder of ``file_name``, else
    (plain ``<frame>.jpg`` names) into one video named after the JSON file; frames are ordered by
    ``frame_index`` when present, else by file name.  Annotations with the same ``obj_id`` in a video
    form one object; annotations without ``obj_id`` each become a new object.
    """
    file = Path(json_file)
    images_root = Path(images_dir) if images_dir is not None else file.parent / "JPEGImages"
    data = load_json(file)
    categories = read_categories(file, data)
    groups: dict[str, list[tuple[Any, int, str, tuple[int, int, str]]]] = {}
    for iid, item in unique_ids(file, field(file, data, "images", list, ""), "images").items():
        where = f"images[id={iid}]"
        file_name = field(file, item, "file_name", str, where)
        folder, frame_name = split_file_name(file, f"{where}.file_name", file_name)
        video = item["video"] if "video" in item else folder or file.stem
        safe_name(file, f"{where}.video", video)
        if "frame_index" in item:
            index = field(file, item, "frame_index", int, where)
            if index < 0:
                raise FormatError(file, f"{where}.frame_index", f"must not be negative, got {index}")
            order: tuple[int, int, str] = (0, index, "")
        else:
            order = (1, 0, file_name)
        groups.setdefault(video, []).append((item, iid, frame_name, order))
    videos: dict[str, VideoData] = {}
    frame_of: dict[int, tuple[VideoData, int]] = {}
    for name, members in groups.items():
        members.sort(key=lambda m: m[3])
        sizes = {(positive_int(file, m[0], "height", f"images[id={m[1]}]"),
                  positive_int(file, m[0], "width", f"images[id={m[1]}]")) for m in members}
        if len(sizes) != 1:
            raise FormatError(file, "images", f"images of video {name!r} have different sizes {sorted(sizes)}")
        frame_names = [m[2] for m in members]
        if len(set(frame_names)) != len(frame_names):
            raise FormatError(file, "images", f"video {name!r} has two images with the same frame name")
        height, width = sizes.pop()
        video = VideoData(name, width, height,
                          [Frame(m[2], images_root / m[0]["file_name"]) for m in members])
        check_frames(file, "images", video)
        videos[name] = video
        for position, m in enumerate(members):
            frame_of[m[1]] = (video, position)
    objects = _read_objects(file, data, categories, videos)
    annotations = field(file, data, "annotations", list, "")
    unique_ids(file, annotations, "annotations")
    for i, ann in enumerate(annotations):
        where = f"annotations[{i}]"
        image_id = positive_int(file, ann, "image_id", where)
        if image_id not in frame_of:
            raise FormatError(file, f"{where}.image_id", f"unknown image id {image_id}")
        video, position = frame_of[image_id]
        category_id = positive_int(file, ann, "category_id", where)
        if category_id not in categories:
            raise FormatError(file, f"{where}.category_id", f"unknown category id {category_id}")
        rle = read_segmentation(file, f"{where}.segmentation", field(file, ann, "segmentation", (dict, list), where),
                                video.height, video.width)
        if "obj_id" in ann:
            obj_id = positive_int(file, ann, "obj_id", where)
        else:
            obj_id = max([t.obj_id for t in objects[video.name].values()], default=0) + 1
        track = objects[video.name].setdefault(obj_id, Track(obj_id, categories[category_id]))
        if position in track.masks:
            raise FormatError(file, f"{where}.obj_id", f"object {obj_id} has two annotations on image {image_id}")
        if rle is not None:
            track.masks[position] = rle
            read_mask_extras(file, where, ann.get("origin"), ann.get("score"), track, position)
    for name, video in videos.items():
        video.objects = sorted(objects[name].values(), key=lambda t: t.obj_id)
    return Dataset(list(videos.values()))


def import_coco(project: Project, json_file: str | Path, images_dir: str | Path | None = None) -> list[str]:
    """Validate a COCO image JSON file and add its videos to ``project`` (all or nothing); returns their names."""
    dataset = read_coco(json_file, images_dir)
    project.import_dataset(dataset)
    return [v.name for v in dataset.videos]


def _read_objects(file: Path, data: Any, categories: dict[int, str],
                  videos: dict[str, VideoData]) -> dict[str, dict[int, Track]]:
    """The optional top-level ``objects`` list (video, obj_id, category, expressions)."""
    out: dict[str, dict[int, Track]] = {name: {} for name in videos}
    for i, item in enumerate(field(file, data, "objects", list, "") if "objects" in data else []):
        where = f"objects[{i}]"
        video = field(file, item, "video", str, where)
        if video not in out:
            raise FormatError(file, f"{where}.video", f"unknown video {video!r}")
        obj_id = positive_int(file, item, "obj_id", where)
        if obj_id in out[video]:
            raise FormatError(file, f"{where}.obj_id", f"duplicate obj_id {obj_id} in video {video!r}")
        category_id = positive_int(file, item, "category_id", where)
        if category_id not in categories:
            raise FormatError(file, f"{where}.category_id", f"unknown category id {category_id}")
        exps = expressions_field(file, field(file, item, "expressions", list, where), f"{where}.expressions")
        out[video][obj_id] = Track(obj_id, categories[category_id], exps)
    return out
