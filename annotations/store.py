"""The annotation project store: one folder = one SQLite database (WAL) + the decoded JPEG frames.

Layout of a project folder::

    project.sqlite            videos, frames, objects, expressions, masks (COCO RLE), review, history
    frames/<video>-<token>/<frame>.jpg

Every edit runs in one ``BEGIN IMMEDIATE`` transaction, so killing the process leaves the last
committed edit on disk and a valid database; SQLite serialises writers and WAL lets readers in other
processes read while one process writes.  Every edit (adding, importing and removing videos included)
is recorded in a linear undo/redo history (:mod:`annotations.history`); frame folders stay on disk
while the history can bring their video back, and orphaned ones are removed on open
(:mod:`annotations.frames`).  Videos are identified by name and objects by ``(video name, obj_id)``,
``obj_id`` being the per-video id (1, 2, ...) used in the exports.  Tables: :mod:`annotations.schema`;
records handed out: :mod:`annotations.records`. :meth:`Project.dataset` and :meth:`Project.import_dataset`
turn a project into a :class:`~annotations.model.Dataset` and back, for the exchange formats; an import is one
transaction and one undoable edit, its frame folders removed again if anything fails.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import cv2
import numpy as np

from . import history as history_mod
from . import rle as rle_mod
from .atomic import fsync_tree
from .errors import EditError, ProjectError
from .frames import new_frames_dir, sweep_orphans
from .model import Dataset, Frame, Origin, ReviewState, Track, VideoData
from .records import (HistoryEntry, MaskInfo, ObjectInfo, VideoInfo, clean_expressions, mask_row, safe_frame_name,
                      to_origin, to_review_state)
from .schema import DB_NAME, create_database, open_database

JPEG_QUALITY = 95

__all__ = ["HistoryEntry", "MaskInfo", "ObjectInfo", "Project", "VideoInfo", "safe_frame_name"]


class Project:
    """An open annotation project.  Use :meth:`create` or :meth:`open`; close it (or use ``with``)."""

    def __init__(self, folder: Path, connection: sqlite3.Connection) -> None:
        self.folder = folder
        self._db = connection
        self._lock = threading.RLock()

    # ---------------------------------------------------------------- lifecycle
    @classmethod
    def create(cls, folder: str | Path) -> "Project":
        """Create a new project in ``folder`` (which must not exist or be empty)."""
        folder = Path(folder)
        if folder.exists() and any(folder.iterdir()):
            raise ProjectError(f"{folder}: cannot create a project in a folder that is not empty")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "frames").mkdir()
        return cls(folder, create_database(folder / DB_NAME))

    @classmethod
    def open(cls, folder: str | Path) -> "Project":
        """Open an existing project; refuses folders that are not projects or use another schema.

        Frame folders that nothing names any more (e.g. left by a crash while adding a video) are removed.
        """
        folder = Path(folder)
        path = folder / DB_NAME
        if not path.is_file():
            raise ProjectError(f"{folder}: not an annotation project (no {DB_NAME})")
        project = cls(folder, open_database(path))
        project._sweep_frames()
        return project

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "Project":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- videos
    def add_video(
        self,
        name: str,
        frames: Iterable[np.ndarray],
        *,
        fps: float | None = None,
        source_path: str = "",
        frame_names: list[str] | None = None,
        source_indices: list[int] | None = None,
        sampling: Mapping[str, Any] | None = None,
    ) -> VideoInfo:
        """Add a video from decoded frames (each ``[H, W, 3]`` uint8 RGB, all the same size).

        Frames are written as JPEG under the project folder.  ``frame_names`` default to
        ``00000, 00001, ...``; ``source_indices`` (index of each frame in the source video) default to
        ``0, 1, ...``; ``sampling`` is stored as given (e.g. ``{"stride": 5}``).
        """
        with self._lock:
            if self._db.execute("SELECT 1 FROM videos WHERE name = ?", (name,)).fetchone():
                raise EditError(f"video {name!r} is already in the project")
        safe_frame_name(name, name)
        with new_frames_dir(self.folder / "frames", name) as folder:
            count = 0
            size: tuple[int, int] | None = None
            for i, frame in enumerate(frames):
                if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                    raise EditError(f"video {name!r}: frame {i}: must be [H, W, 3] uint8, got {frame.shape} {frame.dtype}")
                if size is None:
                    size = frame.shape[:2]
                elif frame.shape[:2] != size:
                    raise EditError(f"video {name!r}: frame {i}: size {frame.shape[:2]} differs from frame 0 {size}")
                fname = frame_names[i] if frame_names is not None and i < len(frame_names) else f"{i:05d}"
                ok, data = cv2.imencode(".jpg", frame[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                if not ok:
                    raise EditError(f"video {name!r}: frame {i}: JPEG encoding failed")
                (folder / f"{safe_frame_name(name, fname)}.jpg").write_bytes(data.tobytes())
                count += 1
            if size is None:
                raise EditError(f"video {name!r}: has no frames")
            if frame_names is not None and len(frame_names) != count:
                raise EditError(f"video {name!r}: {len(frame_names)} frame names for {count} frames")
            names = frame_names if frame_names is not None else [f"{i:05d}" for i in range(count)]
            fsync_tree(folder)
            with self._lock, self._edit(f"add video {name}") as edit:
                if self._db.execute("SELECT 1 FROM videos WHERE name = ?", (name,)).fetchone():
                    raise EditError(f"video {name!r} is already in the project")
                self._put_video(edit, name, folder, names, size[0], size[1], fps, source_path, source_indices,
                                dict(sampling or {}))
        return self.video(name)

    def remove_video(self, name: str) -> None:
        """Delete a video with its objects, masks and review states (undoable).

        Its frames stay on disk while the removal can be undone; :meth:`clear_history` frees them.
        """
        with self._lock, self._edit(f"remove video {name}") as edit:
            vid = self._video_row(name, "id")[0]
            for (key,) in self._db.execute("SELECT id FROM objects WHERE video_id = ?", (vid,)).fetchall():
                self._delete_object_rows(edit, key)
            for table in ("reviews", "frames"):
                for (f,) in self._db.execute(f"SELECT frame_index FROM {table} WHERE video_id = ?", (vid,)).fetchall():
                    edit.delete(table, {"video_id": vid, "frame_index": f})
            edit.delete("videos", {"id": vid})

    def videos(self) -> list[VideoInfo]:
        """All videos, in the order they were added."""
        with self._lock:
            rows = self._db.execute(
                "SELECT name, source_path, fps, width, height, frame_count, sampling FROM videos ORDER BY id"
            ).fetchall()
        return [VideoInfo(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in rows]

    def video(self, name: str) -> VideoInfo:
        with self._lock:
            row = self._video_row(name, "name, source_path, fps, width, height, frame_count, sampling")
        return VideoInfo(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]))

    def frame_names(self, video: str) -> list[str]:
        """Frame names in display order (index = position)."""
        with self._lock:
            vid = self._video_row(video, "id")[0]
            return [r[0] for r in self._db.execute(
                "SELECT name FROM frames WHERE video_id = ? ORDER BY frame_index", (vid,))]

    def source_indices(self, video: str) -> list[int]:
        """Index in the source video of each frame."""
        with self._lock:
            vid = self._video_row(video, "id")[0]
            return [r[0] for r in self._db.execute(
                "SELECT source_index FROM frames WHERE video_id = ? ORDER BY frame_index", (vid,))]

    def frame_path(self, video: str, frame: int) -> Path:
        """Path of the JPEG of frame ``frame`` (0-based position)."""
        with self._lock:
            vid, frames_dir = self._video_row(video, "id, frames_dir")
            row = self._db.execute(
                "SELECT name FROM frames WHERE video_id = ? AND frame_index = ?", (vid, frame)).fetchone()
        if row is None:
            raise EditError(f"video {video!r}: no frame {frame}")
        return self.folder / "frames" / frames_dir / f"{row[0]}.jpg"

    def read_frame(self, video: str, frame: int) -> np.ndarray:
        """Decoded frame ``[H, W, 3]`` uint8 RGB."""
        image = cv2.imread(str(self.frame_path(video, frame)), cv2.IMREAD_COLOR)
        if image is None:
            raise ProjectError(f"{self.frame_path(video, frame)}: frame file missing or unreadable")
        return image[:, :, ::-1].copy()

    # ---------------------------------------------------------------- objects
    def add_object(
        self, video: str, expressions: Iterable[str] = (), *, category: str = "object", obj_id: int | None = None
    ) -> ObjectInfo:
        """Add an object to ``video``; ``obj_id`` defaults to one more than the largest in the video."""
        exps = clean_expressions(expressions)
        with self._lock, self._edit(f"add object to {video}") as edit:
            vid = self._video_row(video, "id")[0]
            if obj_id is None:
                obj_id = self._db.execute(
                    "SELECT COALESCE(MAX(obj_id), 0) + 1 FROM objects WHERE video_id = ?", (vid,)).fetchone()[0]
            elif not isinstance(obj_id, int) or obj_id <= 0:
                raise EditError(f"video {video!r}: obj_id must be a positive integer, got {obj_id!r}")
            elif self._object_row(vid, obj_id) is not None:
                raise EditError(f"video {video!r}: object {obj_id} already exists")
            key = self._db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM objects").fetchone()[0]
            edit.put("objects", {"id": key, "video_id": vid, "obj_id": obj_id, "category": category})
            for pos, text in enumerate(exps):
                edit.put("expressions", {"object_id": key, "position": pos, "text": text})
        return self.object(video, obj_id)

    def remove_object(self, video: str, obj_id: int) -> None:
        """Delete an object with its expressions and masks (undoable)."""
        with self._lock, self._edit(f"remove object {obj_id} of {video}") as edit:
            self._delete_object_rows(edit, self._object_key(video, obj_id))

    def set_expressions(self, video: str, obj_id: int, expressions: Iterable[str]) -> None:
        """Replace the referring expressions of an object (undoable)."""
        exps = clean_expressions(expressions)
        with self._lock, self._edit(f"edit expressions of object {obj_id} of {video}") as edit:
            key = self._object_key(video, obj_id)
            old = self._db.execute("SELECT COUNT(*) FROM expressions WHERE object_id = ?", (key,)).fetchone()[0]
            for pos in range(len(exps), old):
                edit.delete("expressions", {"object_id": key, "position": pos})
            for pos, text in enumerate(exps):
                edit.put("expressions", {"object_id": key, "position": pos, "text": text})

    def set_category(self, video: str, obj_id: int, category: str) -> None:
        """Change the category of an object (undoable)."""
        with self._lock, self._edit(f"set category of object {obj_id} of {video}") as edit:
            key = self._object_key(video, obj_id)
            edit.put("objects", {"id": key, "video_id": self._video_row(video, "id")[0],
                                 "obj_id": obj_id, "category": category})

    def objects(self, video: str) -> list[ObjectInfo]:
        """Objects of ``video`` ordered by obj_id."""
        with self._lock:
            vid = self._video_row(video, "id")[0]
            rows = self._db.execute(
                "SELECT id, obj_id, category FROM objects WHERE video_id = ? ORDER BY obj_id", (vid,)).fetchall()
            return [ObjectInfo(video, r[1], r[2], self._expressions_of(r[0])) for r in rows]

    def object(self, video: str, obj_id: int) -> ObjectInfo:
        with self._lock:
            key = self._object_key(video, obj_id)
            category = self._db.execute("SELECT category FROM objects WHERE id = ?", (key,)).fetchone()[0]
            return ObjectInfo(video, obj_id, category, self._expressions_of(key))

    # ---------------------------------------------------------------- masks
    def set_mask(
        self, video: str, obj_id: int, frame: int, mask: np.ndarray, origin: Origin | str, score: float | None = None
    ) -> None:
        """Store the ``[H, W]`` bool mask of an object on one frame (one undoable edit)."""
        self.set_masks(video, obj_id, {frame: mask}, origin, None if score is None else {frame: score})

    def set_masks(
        self,
        video: str,
        obj_id: int,
        masks: Mapping[int, np.ndarray],
        origin: Origin | str,
        scores: Mapping[int, float] | None = None,
    ) -> None:
        """Store masks ``{frame: [H, W] bool}`` of one object as a single undoable edit (e.g. propagation)."""
        origin = to_origin(origin)
        with self._lock:
            info = self.video(video)
            encoded = {}
            for frame, mask in masks.items():
                self._check_frame(info, frame)
                if mask.shape != (info.height, info.width):
                    raise EditError(f"video {video!r}: frame {frame}: mask shape {mask.shape} is not "
                                    f"({info.height}, {info.width})")
                encoded[frame] = rle_mod.encode(mask)
            with self._edit(f"{origin} masks of object {obj_id} of {video}") as edit:
                key = self._object_key(video, obj_id)
                for frame, rle in encoded.items():
                    score = None if scores is None or frame not in scores else float(scores[frame])
                    edit.put("masks", mask_row(key, frame, rle, origin, score))

    def clear_mask(self, video: str, obj_id: int, frame: int) -> None:
        """Remove the stored mask of an object on a frame (it becomes unannotated; undoable)."""
        with self._lock, self._edit(f"clear mask of object {obj_id} of {video} at {frame}") as edit:
            edit.delete("masks", {"object_id": self._object_key(video, obj_id), "frame_index": frame})

    def get_mask(self, video: str, obj_id: int, frame: int) -> np.ndarray | None:
        """The ``[H, W]`` bool mask stored for an object on a frame, or None if unannotated."""
        with self._lock:
            info = self.video(video)
            self._check_frame(info, frame)
            row = self._db.execute(
                "SELECT counts FROM masks WHERE object_id = ? AND frame_index = ?",
                (self._object_key(video, obj_id), frame)).fetchone()
        return None if row is None else rle_mod.decode({"size": [info.height, info.width], "counts": row[0]})

    def get_masks(self, video: str, obj_id: int) -> np.ndarray:
        """All masks of an object as ``[T, H, W]`` bool; unannotated frames are all False."""
        with self._lock:
            info = self.video(video)
            rows = self._db.execute(
                "SELECT frame_index, counts FROM masks WHERE object_id = ?",
                (self._object_key(video, obj_id),)).fetchall()
        out = np.zeros((info.frame_count, info.height, info.width), dtype=bool)
        for frame, counts in rows:
            out[frame] = rle_mod.decode({"size": [info.height, info.width], "counts": counts})
        return out

    def mask_infos(self, video: str, obj_id: int | None = None) -> list[MaskInfo]:
        """Metadata (origin, score, area, bbox) of the stored masks of a video or one object, by frame."""
        with self._lock:
            vid = self._video_row(video, "id")[0]
            sql = ("SELECT o.obj_id, m.frame_index, m.origin, m.score, m.area, m.bbox FROM masks m "
                   "JOIN objects o ON o.id = m.object_id WHERE o.video_id = ?")
            args: tuple[Any, ...] = (vid,)
            if obj_id is not None:
                self._object_key(video, obj_id)
                sql += " AND o.obj_id = ?"
                args += (obj_id,)
            rows = self._db.execute(sql + " ORDER BY m.frame_index, o.obj_id", args).fetchall()
        return [MaskInfo(video, r[0], r[1], Origin(r[2]), r[3], r[4], tuple(json.loads(r[5]))) for r in rows]

    # ---------------------------------------------------------------- review
    def set_review(self, video: str, frames: int | Iterable[int], state: ReviewState | str) -> None:
        """Set the review state of one or several frames (one undoable edit)."""
        state = to_review_state(state)
        frame_list = [frames] if isinstance(frames, int) else list(frames)
        with self._lock:
            info = self.video(video)
            for frame in frame_list:
                self._check_frame(info, frame)
            with self._edit(f"mark {len(frame_list)} frame(s) of {video} {state}") as edit:
                vid = self._video_row(video, "id")[0]
                for frame in frame_list:
                    edit.put("reviews", {"video_id": vid, "frame_index": frame, "state": str(state)})

    def review_states(self, video: str) -> list[ReviewState]:
        """Review state of every frame, in frame order."""
        with self._lock:
            vid = self._video_row(video, "id")[0]
            return [ReviewState(r[0]) for r in self._db.execute(
                "SELECT state FROM reviews WHERE video_id = ? ORDER BY frame_index", (vid,))]

    def frames_in_state(self, video: str, state: ReviewState | str) -> list[int]:
        """Frames of ``video`` whose review state is ``state``."""
        state = to_review_state(state)
        return [i for i, s in enumerate(self.review_states(video)) if s == state]

    # ---------------------------------------------------------------- history
    def undo(self) -> str | None:
        """Undo the latest edit; returns its description, or None when there is nothing to undo."""
        with self._lock, self._write():
            return history_mod.undo(self._db)

    def redo(self) -> str | None:
        """Redo the latest undone edit; returns its description, or None when there is nothing to redo."""
        with self._lock, self._write():
            return history_mod.redo(self._db)

    def history(self) -> list[HistoryEntry]:
        """All recorded edits, oldest first; undone ones can be redone."""
        with self._lock:
            return history_mod.entries(self._db)

    def clear_history(self) -> None:
        """Forget every edit (nothing can be undone or redone) and delete the frames of removed videos."""
        with self._lock:
            with self._write():
                self._db.execute("DELETE FROM history")
            self._sweep_frames()

    # ---------------------------------------------------------------- export / import
    def dataset(
        self,
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
        with self._lock:
            names = [v.name for v in self.videos()] if videos is None else list(videos)
            wanted = None if objects is None else set(objects)
            if wanted is not None:
                for video, obj_id in sorted(wanted):
                    self._object_key(video, obj_id)
            out = Dataset()
            for name in names:
                info = self.video(name)
                frames_dir = self._video_row(name, "frames_dir")[0]
                frame_names = self.frame_names(name)
                keep = (self.frames_in_state(name, ReviewState.REVIEWED) if reviewed_only
                        else list(range(len(frame_names))))
                position = {f: p for p, f in enumerate(keep)}
                folder = self.folder / "frames" / frames_dir
                data = VideoData(name, info.width, info.height,
                                 [Frame(frame_names[f], folder / f"{frame_names[f]}.jpg") for f in keep],
                                 fps=info.fps, source_path=info.source_path)
                for obj in self.objects(name):
                    if wanted is not None and (name, obj.obj_id) not in wanted:
                        continue
                    key = self._object_key(name, obj.obj_id)
                    track = Track(obj.obj_id, obj.category, list(obj.expressions))
                    for frame, counts, origin, score in self._db.execute(
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

    def import_dataset(self, dataset: Dataset) -> None:
        """Add every video of ``dataset`` (frames copied) all-or-nothing, as one undoable edit.

        Masks keep the origin and score the dataset carries (``imported`` / none where it has none).
        Raises EditError if a video name is already in the self.
        """
        with self._lock:
            existing = {v.name for v in self.videos()}
            seen: set[str] = set()
            for video in dataset.videos:
                safe_frame_name(video.name, video.name)
                if video.name in existing or video.name in seen:
                    raise EditError(f"video {video.name!r} is already in the project")
                seen.add(video.name)
            with contextlib.ExitStack() as folders:
                copied: list[Path] = []
                for video in dataset.videos:
                    folder = folders.enter_context(new_frames_dir(self.folder / "frames", video.name))
                    for frame in video.frames:
                        shutil.copyfile(frame.image, folder / f"{frame.name}.jpg")
                    fsync_tree(folder)
                    copied.append(folder)
                names = ", ".join(v.name for v in dataset.videos)
                with self._edit(f"import {len(dataset.videos)} video(s): {names}") as edit:
                    for video, folder in zip(dataset.videos, copied):
                        vid = self._put_video(
                            edit, video.name, folder, [f.name for f in video.frames], video.height, video.width,
                            video.fps, video.source_path, None, {"imported_from": str(video.frames[0].image.parent)})
                        for track in video.objects:
                            self._put_track(edit, vid, track)

    # ---------------------------------------------------------------- internals
    def _put_track(self, edit: history_mod.Edit, vid: int, track: Track) -> None:
        key = self._db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM objects").fetchone()[0]
        edit.put("objects", {"id": key, "video_id": vid, "obj_id": track.obj_id, "category": track.category})
        for position, text in enumerate(track.expressions):
            edit.put("expressions", {"object_id": key, "position": position, "text": text})
        for frame, rle in track.masks.items():
            edit.put("masks", mask_row(key, frame, rle, track.origins.get(frame, Origin.IMPORTED), track.scores.get(frame)))

    @contextmanager
    def _write(self) -> Iterator[None]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise ProjectError(f"{self.folder / DB_NAME}: cannot start a write ({exc})") from None
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:  # SQLite has rolled back already on a full disk (SQLITE_FULL)
                self._db.execute("ROLLBACK")
            raise

    @contextmanager
    def _edit(self, description: str) -> Iterator[history_mod.Edit]:
        """One undoable edit in one transaction; frame folders its new entry makes unreachable are removed."""
        with self._write():
            edit = history_mod.Edit(self._db)
            yield edit
            dropped = history_mod.record(self._db, description, edit)
        if dropped:
            self._sweep_frames()

    def _sweep_frames(self) -> None:
        def named(folder: str) -> bool:
            with self._lock:
                in_use = self._db.execute("SELECT 1 FROM videos WHERE frames_dir = ?", (folder,)).fetchone()
                return in_use is not None or history_mod.mentions(self._db, folder)

        sweep_orphans(self.folder / "frames", named)

    def _put_video(self, edit: history_mod.Edit, name: str, folder: Path, names: list[str], height: int, width: int,
                   fps: float | None, source_path: str, source_indices: list[int] | None,
                   sampling: dict[str, Any]) -> int:
        """Record the rows of a new video (videos, frames, reviews); returns its row id."""
        if len(set(names)) != len(names):
            raise EditError(f"video {name!r}: frame names are not unique")
        indices = list(range(len(names))) if source_indices is None else list(source_indices)
        if len(indices) != len(names):
            raise EditError(f"video {name!r}: {len(indices)} source indices for {len(names)} frames")
        vid = self._db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM videos").fetchone()[0]
        edit.put("videos", {"id": vid, "name": name, "frames_dir": folder.name, "source_path": source_path,
                            "fps": fps, "width": width, "height": height, "frame_count": len(names),
                            "sampling": json.dumps(sampling)})
        for i, (frame, source) in enumerate(zip(names, indices)):
            edit.put("frames", {"video_id": vid, "frame_index": i, "name": frame, "source_index": source})
        for i in range(len(names)):
            edit.put("reviews", {"video_id": vid, "frame_index": i, "state": str(ReviewState.UNREVIEWED)})
        return vid

    def _delete_object_rows(self, edit: history_mod.Edit, key: int) -> None:
        """Record the deletion of object row ``key`` with its masks and expressions."""
        for table, col in (("masks", "frame_index"), ("expressions", "position")):
            for (k,) in self._db.execute(f"SELECT {col} FROM {table} WHERE object_id = ?", (key,)).fetchall():
                edit.delete(table, {"object_id": key, col: k})
        edit.delete("objects", {"id": key})

    def _video_row(self, name: str, columns: str) -> tuple[Any, ...]:
        row = self._db.execute(f"SELECT {columns} FROM videos WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise EditError(f"no video named {name!r} in the project")
        return row

    def _object_row(self, vid: int, obj_id: int) -> tuple[Any, ...] | None:
        return self._db.execute("SELECT id FROM objects WHERE video_id = ? AND obj_id = ?", (vid, obj_id)).fetchone()

    def _object_key(self, video: str, obj_id: int) -> int:
        row = self._object_row(self._video_row(video, "id")[0], obj_id)
        if row is None:
            raise EditError(f"video {video!r}: no object {obj_id}")
        return row[0]

    def _expressions_of(self, key: int) -> tuple[str, ...]:
        return tuple(r[0] for r in self._db.execute(
            "SELECT text FROM expressions WHERE object_id = ? ORDER BY position", (key,)))

    @staticmethod
    def _check_frame(info: VideoInfo, frame: int) -> None:
        if not isinstance(frame, (int, np.integer)) or not 0 <= frame < info.frame_count:
            raise EditError(f"video {info.name!r}: frame {frame!r} out of range 0..{info.frame_count - 1}")
