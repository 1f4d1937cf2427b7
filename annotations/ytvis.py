"""YouTube-VIS / COCO-video JSON, as the pycocotools-style YouTube-VIS API (``YTVOS`` class) reads it.

::

    <root>/instances.json
    <root>/JPEGImages/<video>/<frame>.jpg

``videos``: ``{id, file_names, width, height, length}``; ``annotations``: ``{id, video_id, category_id,
segmentations, areas, bboxes, iscrowd, height, width}`` with one compressed RLE or null per frame
(null where the object is not visible); ``categories``: ``{id, name, supercategory}``.  Extra
annotation keys, ignored by other tools, keep the project's identity: ``obj_id``, ``expressions``, and per
frame ``origins`` (``model``, ``hand``, ``propagated``, ``imported``) and ``scores`` (null where none).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from . import rle as rle_mod
from .atomic import atomic_directory
from .checks import expressions_field, field, load_json, positive_int, safe_name
from .cocojson import (category_table, mask_extras, read_categories, read_mask_extras, read_segmentation,
                       split_file_name, unique_ids, write_json)
from .errors import FormatError
from .images import check_frames, copy_frames
from .model import Dataset, Frame, Track, VideoData
from .store import Project

JSON_NAME = "instances.json"


def to_ytvis(dataset: Dataset) -> dict[str, Any]:
    """The YouTube-VIS JSON document of ``dataset`` (pure; file names relative to JPEGImages/)."""
    categories, category_ids = category_table(dataset)
    videos, annotations = [], []
    for vid, video in enumerate(dataset.videos, start=1):
        videos.append({"id": vid, "file_names": [f"{video.name}/{f.name}.jpg" for f in video.frames],
                       "width": video.width, "height": video.height, "length": len(video.frames)})
        for track in sorted(video.objects, key=lambda t: t.obj_id):
            segmentations, areas, bboxes, origins, scores = [], [], [], [], []
            for position in range(len(video.frames)):
                rle = track.masks.get(position)
                area = rle_mod.area(rle) if rle is not None else 0
                extras = mask_extras(track, position) if area else {"origin": None, "score": None}
                segmentations.append(rle if area else None)
                areas.append(area if area else None)
                bboxes.append(rle_mod.bbox(rle) if area else None)
                origins.append(extras["origin"])
                scores.append(extras["score"])
            annotations.append({
                "id": len(annotations) + 1, "video_id": vid, "category_id": category_ids[track.category],
                "segmentations": segmentations, "areas": areas, "bboxes": bboxes, "iscrowd": 0,
                "height": video.height, "width": video.width,
                "obj_id": track.obj_id, "expressions": list(track.expressions),
                "origins": origins, "scores": scores,
            })
    return {"info": {"description": "ReferFormer Studio export"}, "licenses": [], "videos": videos,
            "annotations": annotations, "categories": categories}


def export_ytvis(dataset: Dataset, out_dir: str | Path) -> None:
    """Write ``instances.json`` and ``JPEGImages/`` for ``dataset`` to ``out_dir`` (atomically)."""
    document = to_ytvis(dataset)
    with atomic_directory(out_dir) as tmp:
        for video in dataset.videos:
            copy_frames(video, tmp / "JPEGImages" / video.name)
        write_json(tmp / JSON_NAME, document)


def read_ytvis(json_file: str | Path, images_dir: str | Path | None = None) -> Dataset:
    """Read and fully validate a YouTube-VIS JSON file; nothing is written.

    ``images_dir`` (holding the ``file_names``) defaults to ``JPEGImages/`` next to the JSON file.
    Objects are the annotations; their ``obj_id`` is kept when present, otherwise numbered after the
    largest one of the video.
    """
    file = Path(json_file)
    images = Path(images_dir) if images_dir is not None else file.parent / "JPEGImages"
    data = load_json(file)
    categories = read_categories(file, data)
    videos: dict[int, VideoData] = {}
    for vid, item in unique_ids(file, field(file, data, "videos", list, ""), "videos").items():
        videos[vid] = _read_video(file, images, vid, item)
    names = [v.name for v in videos.values()]
    if len(set(names)) != len(names):
        raise FormatError(file, "videos", "two videos use the same image folder")
    pending: dict[int, list[Track]] = {vid: [] for vid in videos}
    annotations = field(file, data, "annotations", list, "")
    unique_ids(file, annotations, "annotations")
    for i, ann in enumerate(annotations):
        where = f"annotations[{i}]"
        vid = positive_int(file, ann, "video_id", where)
        if vid not in videos:
            raise FormatError(file, f"{where}.video_id", f"unknown video id {vid}")
        video = videos[vid]
        category_id = positive_int(file, ann, "category_id", where)
        if category_id not in categories:
            raise FormatError(file, f"{where}.category_id", f"unknown category id {category_id}")
        segmentations = field(file, ann, "segmentations", list, where)
        if len(segmentations) != len(video.frames):
            raise FormatError(file, f"{where}.segmentations",
                              f"has {len(segmentations)} entries for a video of {len(video.frames)} frames")
        track = Track(positive_int(file, ann, "obj_id", where) if "obj_id" in ann else 0, categories[category_id],
                      _expressions(file, ann, where))
        origins = _per_frame(file, ann, "origins", where, len(segmentations))
        scores = _per_frame(file, ann, "scores", where, len(segmentations))
        for t, segmentation in enumerate(segmentations):
            rle = read_segmentation(file, f"{where}.segmentations[{t}]", segmentation, video.height, video.width)
            if rle is not None:
                track.masks[t] = rle
                read_mask_extras(file, f"{where}[{t}]", origins[t], scores[t], track, t)
        if track.obj_id and any(o.obj_id == track.obj_id for o in video.objects):
            raise FormatError(file, f"{where}.obj_id", f"duplicate obj_id {track.obj_id} in video {video.name!r}")
        (video.objects if track.obj_id else pending[vid]).append(track)
    for vid, tracks in pending.items():
        next_id = max((o.obj_id for o in videos[vid].objects), default=0) + 1
        for track in tracks:
            track.obj_id = next_id
            next_id += 1
            videos[vid].objects.append(track)
    for video in videos.values():
        video.objects.sort(key=lambda o: o.obj_id)
    return Dataset(list(videos.values()))


def import_ytvis(project: Project, json_file: str | Path, images_dir: str | Path | None = None) -> list[str]:
    """Validate a YouTube-VIS JSON file and add its videos to ``project`` (all or nothing); returns their names."""
    dataset = read_ytvis(json_file, images_dir)
    project.import_dataset(dataset)
    return [v.name for v in dataset.videos]


def _read_video(file: Path, images: Path, vid: int, item: Any) -> VideoData:
    where = f"videos[id={vid}]"
    width = positive_int(file, item, "width", where)
    height = positive_int(file, item, "height", where)
    file_names = field(file, item, "file_names", list, where)
    if not file_names:
        raise FormatError(file, f"{where}.file_names", "is empty")
    if "length" in item and item["length"] != len(file_names):
        raise FormatError(file, f"{where}.length", f"is {item['length']!r} but file_names has {len(file_names)}")
    parts = [split_file_name(file, f"{where}.file_names[{t}]", n) for t, n in enumerate(file_names)]
    folders = {p[0] for p in parts}
    if len(folders) != 1 or None in folders:
        raise FormatError(file, f"{where}.file_names", "all frames must be <video>/<frame>.jpg in one folder")
    name = safe_name(file, f"{where}.file_names", folders.pop())
    frame_names = [p[1] for p in parts]
    if len(set(frame_names)) != len(frame_names):
        raise FormatError(file, f"{where}.file_names", "has duplicate frames")
    video = VideoData(name, width, height, [Frame(f, images / n) for f, n in zip(frame_names, file_names)])
    check_frames(file, f"{where}.file_names", video)
    return video


def _per_frame(file: Path, ann: Any, key: str, where: str, length: int) -> list[Any]:
    """The optional per-frame list ``ann[key]`` (all None when absent), checked to have ``length`` entries."""
    if key not in ann:
        return [None] * length
    values = field(file, ann, key, list, where)
    if len(values) != length:
        raise FormatError(file, f"{where}.{key}", f"has {len(values)} entries for a video of {length} frames")
    return values


def _expressions(file: Path, ann: Any, where: str) -> list[str]:
    if "expressions" not in ann:
        return []
    return expressions_field(file, field(file, ann, "expressions", list, where), f"{where}.expressions")
