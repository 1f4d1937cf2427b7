"""Ref-Youtube-VOS layout, as the official ReferFormer loader and the Ref-YouTube-VOS tools read it.

::

    <root>/JPEGImages/<video>/<frame>.jpg
    <root>/Annotations/<video>/<frame>.png   palette PNG, pixel value = obj_id, 0 = background
    <root>/meta.json              {"videos": {video: {"objects": {"<obj_id>": {"category", "frames"}}}}}
    <root>/meta_expressions.json  {"videos": {video: {"expressions": {"<exp_id>": {"exp", "obj_id"}},
                                                      "frames": [frame, ...]}}}

``obj_id`` and ``exp_id`` are strings of digits, as in the official files.  :func:`read_meta_expressions` is
the one reader of ``meta_expressions.json`` (training and evaluation use it too) and
:func:`annotations.images.read_label_png` the one reader of the PNGs.  Every frame listed in
``frames`` gets a PNG (the loader reads one for each sampled frame).  A PNG holds one id per pixel:
where masks of several objects overlap, the object with the larger ``obj_id`` wins.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import rle as rle_mod
from .atomic import atomic_directory
from .categories import OTHERS, ytvos_category
from .checks import field, load_json, safe_name
from .errors import AnnotationError, FormatError
from .images import check_frames, copy_frames, jpeg_size, read_label_png, write_label_png
from .model import Dataset, Frame, Track, VideoData
from .store import Project

MAX_OBJ_ID = 255
TYPED_CATEGORY = "studio_category"


@dataclass(frozen=True)
class Expression:
    """One referring expression of ``meta_expressions.json``: raw text, and the object it names (None in splits
    released without annotations)."""

    exp_id: str
    text: str
    obj_id: int | None


@dataclass(frozen=True)
class VideoExpressions:
    """One video of ``meta_expressions.json``: its frame names sorted (as the official loader sorts them) and
    its expressions in file order."""

    name: str
    frames: tuple[str, ...]
    expressions: tuple[Expression, ...]


def read_meta_expressions(exp_file: str | Path) -> list[VideoExpressions]:
    """Read and validate a ``meta_expressions.json`` (videos in file order); FormatError names the field."""
    exp_file = Path(exp_file)
    out = []
    for name, data in field(exp_file, load_json(exp_file), "videos", dict, "").items():
        where = f"videos.{name}"
        safe_name(exp_file, where, name)
        frame_names = field(exp_file, data, "frames", list, where)
        if not frame_names:
            raise FormatError(exp_file, f"{where}.frames", "is empty")
        for i, frame in enumerate(frame_names):
            safe_name(exp_file, f"{where}.frames[{i}]", frame)
        if len(set(frame_names)) != len(frame_names):
            raise FormatError(exp_file, f"{where}.frames", "has duplicate frame names")
        expressions = []
        for exp_id, exp in field(exp_file, data, "expressions", dict, where).items():
            ewhere = f"{where}.expressions.{exp_id}"
            text = field(exp_file, exp, "exp", str, ewhere)
            obj_id = _obj_id(exp_file, f"{ewhere}.obj_id", exp["obj_id"]) if "obj_id" in exp else None
            expressions.append(Expression(str(exp_id), text, obj_id))
        out.append(VideoExpressions(name, tuple(sorted(frame_names)), tuple(expressions)))
    return out


def to_ytvos_meta(dataset: Dataset) -> tuple[dict, dict]:
    """The ``meta.json`` and ``meta_expressions.json`` documents of ``dataset`` (pure).

    An object's ``frames`` are those where its mask is non-empty; ``exp_id`` counts from 0 per video.
    """
    meta: dict[str, dict] = {}
    expressions: dict[str, dict] = {}
    for video in dataset.videos:
        tracks = sorted(video.objects, key=lambda t: t.obj_id)
        meta[video.name] = {"objects": {
            str(t.obj_id): {**_category_fields(t.category), "frames": [
                f.name for p, f in enumerate(video.frames) if p in t.masks and rle_mod.area(t.masks[p]) > 0]}
            for t in tracks}}
        exps = [(t.obj_id, text) for t in tracks for text in t.expressions]
        expressions[video.name] = {
            "expressions": {str(i): {"exp": text, "obj_id": str(obj)} for i, (obj, text) in enumerate(exps)},
            "frames": [f.name for f in video.frames],
        }
    return {"videos": meta}, {"videos": expressions}


def export_ytvos(dataset: Dataset, out_dir: str | Path) -> None:
    """Write ``dataset`` to ``out_dir`` in the Ref-Youtube-VOS layout (atomically replacing it).

    Refuses object ids above 255 (they do not fit in a palette PNG) and frame names whose sorted order
    differs from the video order (the official loader sorts them).
    """
    out_dir = Path(out_dir)
    for video in dataset.videos:
        too_big = [t.obj_id for t in video.objects if t.obj_id > MAX_OBJ_ID]
        if too_big:
            raise AnnotationError(f"{out_dir}: video {video.name!r}: object ids {too_big} do not fit in a "
                                  f"palette PNG (at most {MAX_OBJ_ID})")
        names = [f.name for f in video.frames]
        if names != sorted(names):
            raise AnnotationError(f"{out_dir}: video {video.name!r}: frame names are not in sorted order, and "
                                  f"the Ref-Youtube-VOS loader sorts them (rename the frames, e.g. 00000, 00001)")
    meta, expressions = to_ytvos_meta(dataset)
    with atomic_directory(out_dir) as tmp:
        for video in dataset.videos:
            copy_frames(video, tmp / "JPEGImages" / video.name)
            _write_annotations(video, tmp / "Annotations" / video.name)
        (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        (tmp / "meta_expressions.json").write_text(json.dumps(expressions, ensure_ascii=False), encoding="utf-8")


def _write_annotations(video: VideoData, folder: Path) -> None:
    """Write one label PNG per frame (2 threads); larger obj_ids paint over smaller ones."""
    folder.mkdir(parents=True)
    tracks = sorted(video.objects, key=lambda t: t.obj_id)

    def write(position: int) -> None:
        labels = np.zeros((video.height, video.width), dtype=np.uint8)
        for track in tracks:
            rle = track.masks.get(position)
            if rle is None or rle_mod.area(rle) == 0:
                continue
            x, y, w, h = (int(v) for v in rle_mod.bbox(rle))
            window = labels[y:y + h, x:x + w]
            window[rle_mod.decode(rle)[y:y + h, x:x + w]] = track.obj_id
        write_label_png(folder / f"{video.frames[position].name}.png", labels)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(write, range(len(video.frames))))


def read_ytvos(root: str | Path, expressions_file: str | Path | None = None) -> Dataset:
    """Read and fully validate a Ref-Youtube-VOS folder; nothing is written.

    ``expressions_file`` defaults to ``<root>/meta_expressions.json`` (the official release keeps it in
    ``meta_expressions/<split>/``).  Videos are those of the expressions file, frames sorted by name
    as the official loader does.  Masks are stored for frames where the object is visible; a video
    without an ``Annotations/<video>`` folder (e.g. the valid split) is imported without masks.
    Blank expressions are skipped.
    """
    root = Path(root)
    meta_file = root / "meta.json"
    exp_file = Path(expressions_file) if expressions_file is not None else root / "meta_expressions.json"
    meta_videos = field(meta_file, load_json(meta_file), "videos", dict, "")
    return Dataset([_read_video(root, meta_file, exp_file, video, meta_videos)
                    for video in read_meta_expressions(exp_file)])


def import_ytvos(project: Project, root: str | Path, expressions_file: str | Path | None = None) -> list[str]:
    """Validate a Ref-Youtube-VOS folder and add all its videos to ``project`` (all or nothing).

    Returns the names of the imported videos.
    """
    dataset = read_ytvos(root, expressions_file)
    project.import_dataset(dataset)
    return [v.name for v in dataset.videos]


def _read_video(root: Path, meta_file: Path, exp_file: Path, entry: VideoExpressions, meta_videos: dict) -> VideoData:
    name, frame_names = entry.name, list(entry.frames)
    where = f"videos.{name}"
    if name not in meta_videos:
        raise FormatError(meta_file, where, "missing (the video is listed in meta_expressions.json)")
    objects = field(meta_file, meta_videos[name], "objects", dict, where)
    tracks: dict[int, Track] = {}
    for key, obj in objects.items():
        obj_id = _obj_id(meta_file, f"{where}.objects.{key}", key)
        if obj_id in tracks:
            raise FormatError(meta_file, f"{where}.objects.{key}", f"duplicate object id {obj_id}")
        category = field(meta_file, obj, "category", str, f"{where}.objects.{key}")
        if category == OTHERS and isinstance(obj.get(TYPED_CATEGORY), str) and obj[TYPED_CATEGORY].strip():
            category = obj[TYPED_CATEGORY].strip()
        obj_frames = field(meta_file, obj, "frames", list, f"{where}.objects.{key}")
        unknown = sorted(set(map(str, obj_frames)) - set(frame_names))
        if unknown:
            raise FormatError(meta_file, f"{where}.objects.{key}.frames", f"frames {unknown[:3]} are not video frames")
        tracks[obj_id] = Track(obj_id, category)
    for exp in entry.expressions:
        ewhere = f"{where}.expressions.{exp.exp_id}.obj_id"
        if exp.obj_id is None:
            raise FormatError(exp_file, ewhere, "missing")
        if exp.obj_id not in tracks:
            raise FormatError(exp_file, ewhere, f"object {exp.obj_id} is not in meta.json {where}.objects")
        if exp.text.strip():
            tracks[exp.obj_id].expressions.append(exp.text.strip())
    image_dir = root / "JPEGImages" / name
    first = image_dir / f"{frame_names[0]}.jpg"
    height, width = jpeg_size(exp_file, f"{where}.frames[0]", first)
    video = VideoData(name, width, height, [Frame(f, image_dir / f"{f}.jpg") for f in frame_names],
                      sorted(tracks.values(), key=lambda t: t.obj_id))
    check_frames(exp_file, f"{where}.frames", video)
    _read_masks(root / "Annotations" / name, meta_file, video, tracks)
    return video


def _read_masks(folder: Path, meta_file: Path, video: VideoData, tracks: dict[int, Track]) -> None:
    """Read every frame's label PNG (2 threads) into the tracks' masks, checking size and ids."""
    if not folder.is_dir():
        return
    declared = set(tracks)

    def read(frame: Frame) -> dict[int, rle_mod.RLE]:
        png = folder / f"{frame.name}.png"
        labels = read_label_png(png, png, "(image)")
        if labels.shape != (video.height, video.width):
            raise FormatError(png, "(image size)", f"{labels.shape[1]}x{labels.shape[0]} does not match the frame "
                                                   f"size {video.width}x{video.height}")
        present = [int(i) for i in np.flatnonzero(np.bincount(labels.ravel(), minlength=256)) if i != 0]
        undeclared = sorted(set(present) - declared)
        if undeclared:
            raise FormatError(png, "(pixel values)", f"object ids {undeclared} are not in {meta_file} "
                                                     f"videos.{video.name}.objects")
        return rle_mod.encode_labels(labels, present)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for position, encoded in enumerate(pool.map(read, video.frames)):
            for obj_id, rle in encoded.items():
                tracks[obj_id].masks[position] = rle


def _category_fields(category: str) -> dict[str, str]:
    """``{"category"}`` as the official loader needs it (one of its 65, else ``others``), plus the typed name
    under :data:`TYPED_CATEGORY` when it had to be replaced (our reader restores it)."""
    official = ytvos_category(category)
    return {"category": official} if official == category else {"category": official, TYPED_CATEGORY: category}


def unofficial_categories(dataset: Dataset) -> list[str]:
    """Categories of ``dataset`` the official Ref-Youtube-VOS loader does not know (written as ``others``)."""
    return sorted({t.category for v in dataset.videos for t in v.objects if ytvos_category(t.category) != t.category})


def _obj_id(file: Path, where: str, value: object) -> int:
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= MAX_OBJ_ID:
        raise FormatError(file, where, f"object id must be an integer 1..{MAX_OBJ_ID}, got {value!r}")
    return int(text)
