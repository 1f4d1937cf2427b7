"""Inputs of ``referformer annotate``: the videos (files or frame folders), the expressions, the shares per process.

    sources = list_videos("videos/")                  # a folder of video files / frame folders, or a .txt list
    objects = read_object_specs("meta_expressions.json")   # {video: [ObjectSpec]}; also json/csv records
    shares = balance(jobs, world_size)                # by frame count, largest first onto the lightest process

A video is a file PyAV reads (its frames decoded as a stream) or a folder of images (Ref-Youtube-VOS
``JPEGImages/<video>/``, frame names kept). ``working_frames`` decodes either at the working size the model
runs at; the batch run and the merge into the project call it, so both see the same frames.
"""
from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from annotations.checks import expressions_field, load_json
from annotations.errors import EditError, FormatError
from annotations.store import safe_frame_name
from annotations.ytvos import read_meta_expressions
from referformer_core.errors import ReferFormerError, VideoError
from referformer_core.video import iter_frames, iter_video_frames, probe_video, resize_frame

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class BatchInputError(ReferFormerError):
    """The ``--videos`` or ``--expressions`` argument cannot be used as a whole."""


@dataclass(frozen=True)
class VideoSource:
    """A video to annotate: ``kind`` is ``file`` (PyAV) or ``frames`` (a folder of images)."""

    name: str
    path: str
    kind: str

    def frame_files(self, stride: int = 1) -> list[Path]:
        """Image files of a ``frames`` video, sorted by name, every ``stride``-th."""
        files = sorted(p for p in Path(self.path).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        return files[::stride]

    def count_frames(self, stride: int = 1) -> int:
        """Frames kept with ``stride`` (container metadata, else packets counted; no decoding)."""
        if self.kind == "frames":
            count = len(self.frame_files(stride))
            if count == 0:
                raise VideoError(f"{self.name}: the folder {self.path} holds no images")
            return count
        total = probe_video(self.path).num_frames or _count_packets(self.path)
        if not total:
            raise VideoError(f"{self.name}: {Path(self.path).name} contains no frames")
        return -(-total // stride)

    def fps(self, stride: int = 1) -> float | None:
        """Frames per second of the kept frames (None for image folders)."""
        if self.kind == "frames":
            return None
        rate = probe_video(self.path).fps
        return rate / stride if rate else None

    def frame_names(self, stride: int = 1) -> list[str] | None:
        """Names of the kept frames for image folders (kept in the project), None for files (00000, ...)."""
        return [p.stem for p in self.frame_files(stride)] if self.kind == "frames" else None


@dataclass(frozen=True)
class ObjectSpec:
    """One object of a video to pre-annotate: its id, category and referring expressions."""

    obj_id: int
    category: str
    expressions: tuple[str, ...]


def working_frames(source: VideoSource, short_side: int, stride: int = 1) -> Iterator[np.ndarray]:
    """Kept frames of ``source`` resized to the working size: ``[h, w, 3]`` uint8 RGB, shorter side ``short_side``."""
    if source.kind == "frames":
        raw: Iterator[np.ndarray] = (_read_image(p) for p in source.frame_files(stride))
    else:
        raw = iter_video_frames(source.path, stride=stride)
    for frame in iter_frames(raw):
        yield resize_frame(frame, short_side).permute(1, 2, 0).numpy()


def list_videos(arg: str | Path) -> list[VideoSource]:
    """Videos named by ``--videos``: a folder (video files and image folders in it) or a text file listing them.

    A list file has one path a line (relative to the list's folder; ``#`` starts a comment). Names are the file
    stem or folder name and must be unique.
    """
    path = Path(arg)
    if path.is_dir():
        entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
        candidates = [p for p in entries if p.is_dir() or p.suffix.lower() in VIDEO_SUFFIXES]
    elif path.is_file():
        lines = [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
        candidates = [(path.parent / line) for line in lines if line]
    else:
        raise BatchInputError(f"--videos {arg}: no such folder or list file")
    sources: dict[str, VideoSource] = {}
    for p in candidates:
        name = p.stem if p.is_file() or p.suffix.lower() in VIDEO_SUFFIXES else p.name
        try:
            safe_frame_name(name, name)
        except EditError as e:
            raise BatchInputError(f"--videos {arg}: {e}") from None
        if name in sources:
            raise BatchInputError(f"--videos {arg}: two videos are named {name!r} ({sources[name].path} and {p})")
        sources[name] = VideoSource(name, str(p), "frames" if p.is_dir() else "file")
    if not sources:
        raise BatchInputError(f"--videos {arg}: no video files or frame folders found")
    return list(sources.values())


def read_object_specs(path: str | Path) -> dict[str, list[ObjectSpec]]:
    """``{video: [ObjectSpec]}`` from a Ref-Youtube-VOS ``meta_expressions.json``, a json list of records, or a csv.

    Records (json objects or csv rows with a header) have ``video, obj_id, expression[, category]``; an object's
    expressions are gathered in file order.
    """
    path = Path(path)
    if not path.is_file():
        raise BatchInputError(f"--expressions {path}: no such file")
    if path.suffix.lower() == ".csv":
        records = _csv_records(path)
    else:
        data = load_json(path)
        if isinstance(data, dict) and isinstance(data.get("videos"), dict):
            records = _meta_records(path)
        elif isinstance(data, dict) and isinstance(data.get("annotations"), list):
            records = data["annotations"]
        elif isinstance(data, list):
            records = data
        else:
            raise FormatError(path, "(top level)", "expected {\"videos\": ...} (meta_expressions.json) or a list")
    return _group(path, records)


def balance(frame_counts: dict[str, int], parts: int) -> list[list[str]]:
    """Split videos into ``parts`` shares of about equal frame count (longest first onto the lightest share).

    Each share is sorted by name; the split is deterministic.
    """
    shares: list[list[str]] = [[] for _ in range(parts)]
    load = [0] * parts
    for name in sorted(frame_counts, key=lambda n: (-frame_counts[n], n)):
        lightest = min(range(parts), key=lambda i: (load[i], i))
        shares[lightest].append(name)
        load[lightest] += frame_counts[name]
    return [sorted(share) for share in shares]


def _meta_records(path: Path) -> list[dict]:
    """Records of a Ref-Youtube-VOS ``meta_expressions.json``, read by the annotations package's reader."""
    return [{"video": video.name, "obj_id": exp.obj_id, "expression": exp.text}
            for video in read_meta_expressions(path) for exp in video.expressions]


def _csv_records(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    if "video" in header and "expression" in header:
        columns, rows = header, rows[1:]
    else:
        columns = ["video", "obj_id", "expression", "category"]
    return [dict(zip(columns, (cell.strip() for cell in row))) for row in rows]


def _group(path: Path, records: list) -> dict[str, list[ObjectSpec]]:
    gathered: dict[str, dict[int, tuple[str, list[str]]]] = {}
    for i, record in enumerate(records):
        where = f"record {i + 1}"
        if not isinstance(record, dict):
            raise FormatError(path, where, "not an object with video, obj_id, expression")
        video, text = record.get("video"), record.get("expression")
        if not isinstance(video, str) or not video:
            raise FormatError(path, f"{where}.video", f"expected a video name, got {video!r}")
        try:
            obj_id = int(record.get("obj_id"))
        except (TypeError, ValueError):
            obj_id = 0
        if obj_id <= 0:
            raise FormatError(path, f"{where}.obj_id", f"expected a positive integer, got {record.get('obj_id')!r}")
        text = expressions_field(path, [text], f"{where}.expression")[0]
        category = record.get("category") or "object"
        known = gathered.setdefault(video, {}).setdefault(obj_id, (str(category), []))
        known[1].append(text)
    return {video: [ObjectSpec(o, cat, tuple(texts)) for o, (cat, texts) in sorted(objects.items())]
            for video, objects in gathered.items()}


def _read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise VideoError(f"{path.parent.name}/{path.name} is not a readable image")
    return image[:, :, ::-1]


def _count_packets(path: str) -> int:
    import av

    try:
        with av.open(path) as container:
            return sum(1 for packet in container.demux(video=0) if packet.size)
    except av.error.FFmpegError as e:
        raise VideoError(f"{Path(path).name} is not a readable video ({str(e).splitlines()[0][:200]})") from e
