"""Finished videos of ``referformer annotate``: the per-process shards and their commit into the project.

Layout inside the output project folder (beside the store's own files)::

    .annotate/shard-<rank>/<video>.json    a finished video (masks as RLE, scores), written atomically by one process
    .annotate/shard-<rank>/status.json     that process's progress in the current run, and ``finished``
    .annotate/committed/<video>.json       the video is complete in the project (written after its last edit)

A video reaches the project only through :func:`commit`, run by rank 0 alone: frames, objects, masks (origin
``model`` with per-frame scores) in the store's own transactions, then the ``committed`` marker, then the shard
file is removed. A process killed part-way leaves a shard file and no marker: :meth:`Ledger.recover` removes the
half-written video and the next merge commits it again. Frames are decoded again from the source at commit
(:func:`~studio.batch_inputs.working_frames`), so they are encoded to JPEG once, by the store.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from annotations import Origin, Project
from annotations import rle as rle_mod
from annotations.atomic import write_bytes_atomic
from annotations.errors import ProjectError

from .batch_inputs import VideoSource, working_frames

STATE_DIR = ".annotate"
MASKS_PER_EDIT = 256  # masks decoded and stored per store edit, bounding memory on long videos


@dataclass
class ObjectAnnotation:
    """One object's model pass: the expression used (best mean score of its expressions), per-frame ``scores [T]``
    and ``masks [T]`` as COCO RLE counts at the working size."""

    obj_id: int
    category: str
    expressions: list[str]
    used: int
    scores: list[float]
    masks: list[str]

    @property
    def mean_score(self) -> float:
        return float(np.mean(self.scores)) if self.scores else 0.0


@dataclass
class VideoResult:
    """A finished video: where its frames come from, their working size ``height x width``, and its objects."""

    name: str
    source: dict[str, str]
    stride: int
    short_side: int
    fps: float | None
    height: int
    width: int
    frame_names: list[str] | None
    source_indices: list[int]
    seconds: float
    objects: list[ObjectAnnotation] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return len(self.source_indices)

    @property
    def mean_score(self) -> float:
        return float(np.mean([o.mean_score for o in self.objects])) if self.objects else 0.0

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "VideoResult":
        raw = json.loads(data)
        raw["objects"] = [ObjectAnnotation(**o) for o in raw["objects"]]
        return cls(**raw)


class Ledger:
    """The ``.annotate`` folder of an output project: shard files, per-process status, committed markers."""

    def __init__(self, project_folder: str | Path) -> None:
        self.root = Path(project_folder) / STATE_DIR

    def shard(self, rank: int) -> Path:
        folder = self.root / f"shard-{rank:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def write_result(self, rank: int, result: VideoResult) -> None:
        write_bytes_atomic(self.shard(rank) / f"{result.name}.json", result.to_json())

    def pending(self) -> dict[str, Path]:
        """Shard files of finished videos not yet committed, ``{video: file}``, by name."""
        files = sorted(self.root.glob("shard-*/*.json"))
        return {f.stem: f for f in files if f.name != "status.json"}

    def committed(self) -> dict[str, dict[str, Any]]:
        """``{video: {"frames", "objects", "mean_score", "seconds"}}`` of every video complete in the project."""
        return {f.stem: json.loads(f.read_text()) for f in sorted((self.root / "committed").glob("*.json"))}

    def write_status(self, rank: int, status: dict[str, Any]) -> None:
        write_bytes_atomic(self.shard(rank) / "status.json", json.dumps(status).encode())

    def status(self, rank: int) -> dict[str, Any] | None:
        path = self.root / f"shard-{rank:03d}" / "status.json"
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def recover(self, project: Project) -> list[str]:
        """Remove videos a killed run left half-committed (in the project, a shard file, no marker); their names."""
        done, pending = self.committed(), self.pending()
        broken = [v.name for v in project.videos() if v.name not in done and v.name in pending]
        for name in broken:
            project.remove_video(name)
        return broken

    def merge(self, project: Project) -> list[VideoResult]:
        """Commit every pending shard file to ``project`` (by name); the results committed."""
        done = self.committed()
        merged = []
        for name, path in self.pending().items():
            if name not in done:
                result = VideoResult.from_json(path.read_bytes())
                commit(project, result)
                self._mark(result)
                merged.append(result)
            path.unlink(missing_ok=True)
        return merged

    def _mark(self, result: VideoResult) -> None:
        folder = self.root / "committed"
        folder.mkdir(parents=True, exist_ok=True)
        summary = {"frames": result.num_frames, "objects": len(result.objects), "mean_score": result.mean_score,
                   "seconds": result.seconds}
        write_bytes_atomic(folder / f"{result.name}.json", json.dumps(summary).encode())


def commit(project: Project, result: VideoResult) -> None:
    """Write a finished video into ``project``: frames at the working size, objects, masks (``model``) with scores."""
    source = VideoSource(**result.source)
    info = project.add_video(
        result.name, working_frames(source, result.short_side, result.stride), fps=result.fps,
        source_path=source.path, frame_names=result.frame_names, source_indices=result.source_indices,
        sampling={"stride": result.stride, "short_side": result.short_side, "by": "referformer annotate"})
    if (info.height, info.width, info.frame_count) != (result.height, result.width, result.num_frames):
        project.remove_video(result.name)
        raise ProjectError(f"{result.name}: its frames changed since the model ran ({info.frame_count} frames of "
                           f"{info.width}x{info.height}, expected {result.num_frames} of "
                           f"{result.width}x{result.height})")
    size = [result.height, result.width]
    for obj in result.objects:
        project.add_object(result.name, obj.expressions, category=obj.category, obj_id=obj.obj_id)
        for start in range(0, len(obj.masks), MASKS_PER_EDIT):
            frames = range(start, min(start + MASKS_PER_EDIT, len(obj.masks)))
            masks = {t: rle_mod.decode({"size": size, "counts": obj.masks[t]}) for t in frames}
            project.set_masks(result.name, obj.obj_id, masks, Origin.MODEL, {t: obj.scores[t] for t in frames})
