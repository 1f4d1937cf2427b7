"""The bridge between the project store and the exchange formats: a project snapshot as a :class:`Dataset`
for export, and a :class:`Dataset` added to a project on import.

Both run under the project's lock; an import is one transaction and one undoable edit, its frame folders
removed again if anything fails.
"""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from .atomic import fsync_tree
from .errors import EditError
from .frames import new_frames_dir
from .history import Edit
from .model import Dataset, Frame, Origin, ReviewState, Track, VideoData
from .records import mask_row, safe_frame_name

if TYPE_CHECKING:
    from .store import Project


def project_dataset(
    project: Project,
    videos: Iterable[str] | None = None,
    objects: Iterable[tuple[str, int]] | None = None,
    reviewed_only: bool = False,
) -> Dataset:
    """Snapshot of (a subset of) the project for export.

    ``videos``: names to include (default all).  ``objects``: ``(video, obj_id)`` pairs to include
    (default all objects of the chosen videos).  ``reviewed_only``: keep only frames whose review
    state is ``reviewed``; frame positions in the result are renumbered accordingly.  Videos left
    without frames (or, with ``objects``, without objects) are omitted.  Masks keep their origin and score.
    """
    with project._lock:
        names = [v.name for v in project.videos()] if videos is None else list(videos)
        wanted = None if objects is None else set(objects)
        if wanted is not None:
            for video, obj_id in sorted(wanted):
                project._object_key(video, obj_id)
        out = Dataset()
        for name in names:
            info = project.video(name)
            frames_dir = project._video_row(name, "frames_dir")[0]
            frame_names = project.frame_names(name)
            keep = (project.frames_in_state(name, ReviewState.REVIEWED) if reviewed_only
                    else list(range(len(frame_names))))
            position = {f: p for p, f in enumerate(keep)}
            folder = project.folder / "frames" / frames_dir
            data = VideoData(name, info.width, info.height,
                             [Frame(frame_names[f], folder / f"{frame_names[f]}.jpg") for f in keep],
                             fps=info.fps, source_path=info.source_path)
            for obj in project.objects(name):
                if wanted is not None and (name, obj.obj_id) not in wanted:
                    continue
                key = project._object_key(name, obj.obj_id)
                track = Track(obj.obj_id, obj.category, list(obj.expressions))
                for frame, counts, origin, score in project._db.execute(
                        "SELECT frame_index, counts, origin, score FROM masks WHERE object_id = ? "
                        "ORDER BY frame_index", (key,)):
                    if frame in position:
                        p = position[frame]
                        track.masks[p] = {"size": [info.height, info.width], "counts": counts}
                        track.origins[p] = Origin(origin)
                        if score is not None:
                            track.scores[p] = score
                data.objects.append(track)
            if data.frames and (wanted is None or data.objects):
                out.videos.append(data)
        return out


def import_dataset(project: Project, dataset: Dataset) -> None:
    """Add every video of ``dataset`` (frames copied) all-or-nothing, as one undoable edit.

    Masks keep the origin and score the dataset carries (``imported`` / none where it has none).
    Raises EditError if a video name is already in the project.
    """
    with project._lock:
        existing = {v.name for v in project.videos()}
        seen: set[str] = set()
        for video in dataset.videos:
            safe_frame_name(video.name, video.name)
            if video.name in existing or video.name in seen:
                raise EditError(f"video {video.name!r} is already in the project")
            seen.add(video.name)
        with contextlib.ExitStack() as folders:
            copied: list[Path] = []
            for video in dataset.videos:
                folder = folders.enter_context(new_frames_dir(project.folder / "frames", video.name))
                for frame in video.frames:
                    shutil.copyfile(frame.image, folder / f"{frame.name}.jpg")
                fsync_tree(folder)
                copied.append(folder)
            names = ", ".join(v.name for v in dataset.videos)
            with project._edit(f"import {len(dataset.videos)} video(s): {names}") as edit:
                for video, folder in zip(dataset.videos, copied):
                    vid = project._put_video(
                        edit, video.name, folder, [f.name for f in video.frames], video.height, video.width,
                        video.fps, video.source_path, None, {"imported_from": str(video.frames[0].image.parent)})
                    for track in video.objects:
                        _put_track(project, edit, vid, track)


def _put_track(project: Project, edit: Edit, vid: int, track: Track) -> None:
    key = project._db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM objects").fetchone()[0]
    edit.put("objects", {"id": key, "video_id": vid, "obj_id": track.obj_id, "category": track.category})
    for position, text in enumerate(track.expressions):
        edit.put("expressions", {"object_id": key, "position": position, "text": text})
    for frame, rle in track.masks.items():
        edit.put("masks", mask_row(key, frame, rle, track.origins.get(frame, Origin.IMPORTED), track.scores.get(frame)))
