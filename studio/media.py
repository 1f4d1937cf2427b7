"""Bring a video into a project: a video file (upload or under ``--media-dir``) or a zip of frames.

Frames are decoded one at a time (PyAV for videos, one zip entry at a time for zips), turned upright,
resized to the working size with the model's own resize, and written by ``Project.add_video``: a whole
video never sits in memory at full size.
"""
from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from annotations import Project, VideoInfo
from referformer_core.errors import VideoError
from referformer_core.settings import SHORT_SIDE
from referformer_core.video import check_frame, iter_video_frames, probe_video, resize_frame

from .errors import StudioError

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".avi", ".mkv", ".m4v")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MAX_ZIP_ENTRY_BYTES = 64 * 1024 * 1024
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ImportOptions:
    """How frames are taken from the source: every ``stride``-th frame, at most ``max_frames`` of them,
    resized so the shorter side is ``short_side`` (never enlarged)."""

    stride: int = 1
    max_frames: int = 2000
    short_side: int = SHORT_SIDE

    def checked(self) -> "ImportOptions":
        if not 1 <= int(self.stride) <= 1000:
            raise StudioError(f"frame stride must be between 1 and 1000, got {self.stride}")
        if not 1 <= int(self.max_frames) <= 20000:
            raise StudioError(f"max frames must be between 1 and 20000, got {self.max_frames}")
        if not 64 <= int(self.short_side) <= 2160:
            raise StudioError(f"working short side must be between 64 and 2160 pixels, got {self.short_side}")
        return ImportOptions(int(self.stride), int(self.max_frames), int(self.short_side))


def import_media(project: Project, source: str | Path, options: ImportOptions = ImportOptions(),
                 name: str | None = None, progress: Progress | None = None) -> VideoInfo:
    """Add the video or zip of frames at ``source`` to ``project`` as video ``name`` (default: the file's stem).

    ``progress(done, total)`` is called as frames are written (``total`` is an estimate for videos).
    Raises ``StudioError``/``VideoError`` with one readable line; the project is unchanged on failure.
    """
    options = options.checked()
    source = Path(source)
    if not source.is_file():
        raise StudioError(f"{source.name or source}: file not found")
    if source.stat().st_size == 0:
        raise StudioError(f"{source.name}: the file is empty")
    suffix = source.suffix.lower()
    video_name = unique_video_name(project, name or source.stem)
    if suffix == ".zip":
        frames, total, fps = _zip_frames(source, options), None, None
    elif suffix in VIDEO_SUFFIXES:
        info = probe_video(source)
        fps = info.fps / options.stride if info.fps else None
        total = info.num_frames
        frames = _video_frames(source, options)
    else:
        raise StudioError(f"{source.name}: not a supported file; upload a video ({', '.join(VIDEO_SUFFIXES)}) "
                          f"or a .zip of JPEG/PNG frames")
    total = min(options.max_frames, -(-total // options.stride)) if total else options.max_frames
    sampling = {"stride": options.stride, "max_frames": options.max_frames, "short_side": options.short_side}
    return project.add_video(video_name, _counted(frames, total, progress), fps=fps, source_path=source.name,
                             source_indices=None, sampling=sampling)


def _video_frames(path: Path, options: ImportOptions) -> Iterator[np.ndarray]:
    frames = iter_video_frames(path, stride=options.stride, max_frames=options.max_frames + 1)
    for frame in islice(frames, options.max_frames):
        yield working_size(frame, options.short_side)


def _zip_frames(path: Path, options: ImportOptions) -> Iterator[np.ndarray]:
    """Frames of a zip of images, in natural order of their names, decoded one entry at a time."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise StudioError(f"{path.name}: not a readable zip file ({exc})") from None
    with archive:
        entries = zip_image_entries(archive, path.name)
        size = None
        for index, entry in enumerate(islice(entries[::options.stride], options.max_frames)):
            try:
                data = archive.read(entry)
            except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
                raise StudioError(f"{path.name}: {entry.filename} cannot be read ({exc})") from None
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                raise StudioError(f"{path.name}: {entry.filename} is not a readable JPEG/PNG image")
            frame = check_frame(image[:, :, ::-1], index, size)
            size = frame.shape[:2]
            yield working_size(frame, options.short_side)


def zip_image_entries(archive: zipfile.ZipFile, label: str) -> list[zipfile.ZipInfo]:
    """The image entries of ``archive`` in natural order; refuses paths that leave the archive and huge entries."""
    images = []
    for entry in archive.infolist():
        parts = PurePosixPath(entry.filename.replace("\\", "/")).parts
        if entry.filename.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", entry.filename) or ".." in parts:
            raise StudioError(f"{label}: refusing the zip: entry {entry.filename[:80]!r} points outside the archive")
        if entry.is_dir() or parts[0] == "__MACOSX" or parts[-1].startswith("."):
            continue
        if PurePosixPath(entry.filename).suffix.lower() in IMAGE_SUFFIXES:
            if entry.file_size > MAX_ZIP_ENTRY_BYTES:
                raise StudioError(f"{label}: {entry.filename} is larger than {MAX_ZIP_ENTRY_BYTES >> 20} MB")
            images.append(entry)
    if not images:
        raise StudioError(f"{label}: the zip holds no JPEG or PNG frames")
    return sorted(images, key=lambda e: natural_key(e.filename))


def natural_key(text: str) -> list:
    """Sort key in which ``frame2`` comes before ``frame10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def working_size(frame: np.ndarray, short_side: int) -> np.ndarray:
    """``[H, W, 3]`` uint8 resized (the model's resize) so its shorter side is ``short_side``; never enlarged."""
    if min(frame.shape[:2]) <= short_side:
        return frame
    return resize_frame(frame, short_side).permute(1, 2, 0).numpy()


def unique_video_name(project: Project, wanted: str) -> str:
    """A safe video name from ``wanted`` that is not yet in ``project`` (``clip``, ``clip-2``, ...)."""
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", wanted).strip("._-")[:60] or "video"
    taken = {v.name for v in project.videos()}
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


def resolve_media_path(text: str, media_dirs: Sequence[str | Path]) -> Path:
    """The video file ``text`` names, if it lies inside one of ``media_dirs`` (after resolving links)."""
    if not media_dirs:
        raise StudioError("opening videos by path is off; start the studio with --media-dir FOLDER")
    text = (text or "").strip()
    if not text:
        raise StudioError("type the path of a video under the media folders")
    roots = [Path(d).expanduser().resolve() for d in media_dirs]
    candidate = Path(text).expanduser()
    paths = [candidate] if candidate.is_absolute() else [root / candidate for root in roots]
    for path in paths:
        resolved = path.resolve()
        if any(resolved.is_relative_to(root) for root in roots):
            if not resolved.is_file():
                raise StudioError(f"{text}: no such file under the media folders")
            return resolved
    raise StudioError(f"{text}: outside the media folders ({', '.join(str(r) for r in roots)})")


def list_media(media_dirs: Sequence[str | Path], limit: int = 500) -> list[str]:
    """Videos and frame zips under ``media_dirs`` (relative to their folder when there is one folder)."""
    found: list[str] = []
    for root in (Path(d).expanduser().resolve() for d in media_dirs):
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*"), key=lambda p: natural_key(str(p))):
            if path.suffix.lower() in VIDEO_SUFFIXES + (".zip",) and path.is_file():
                found.append(str(path.relative_to(root)) if len(media_dirs) == 1 else str(path))
                if len(found) >= limit:
                    return found
    return found


def _counted(frames: Iterator[np.ndarray], total: int, progress: Progress | None) -> Iterator[np.ndarray]:
    count = 0
    try:
        for count, frame in enumerate(frames, start=1):
            if progress is not None:
                progress(count, max(total, count))
            yield frame
    except VideoError as exc:
        raise StudioError(str(exc)) from None
    if count == 0:
        raise StudioError("the video contains no frames")
