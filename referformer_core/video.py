"""Video input: decode files with PyAV (streamed), accept arrays and frame iterators, resize as the official code."""
from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import VideoError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_MAX_FRAMES = 20_000
DEFAULT_MAX_PIXELS = 4096 * 4096


@dataclass(frozen=True)
class VideoFileInfo:
    """What a video file says about itself before decoding."""

    path: str
    width: int
    height: int
    fps: float
    num_frames: int | None


def probe_video(path: str | Path) -> VideoFileInfo:
    """Size, frame rate and (when the container knows it) frame count of a video file."""
    import av

    path = Path(path)
    if not path.is_file():
        raise VideoError(f"video {path} does not exist")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path.name} has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            return VideoFileInfo(str(path), stream.codec_context.width, stream.codec_context.height,
                             float(rate) if rate else 0.0, stream.frames or None)
    except av.error.FFmpegError as e:
        raise VideoError(f"{path.name} is not a readable video ({_first_line(e)})") from e


def iter_video_frames(path: str | Path, stride: int = 1, max_frames: int = DEFAULT_MAX_FRAMES) -> Iterator[np.ndarray]:
    """Decode a video file frame by frame: RGB ``[H, W, 3]`` uint8, every ``stride``-th frame.

    Raises ``VideoError`` when the file is unreadable, has no frames, or more than ``max_frames`` kept frames.
    """
    import av

    if stride < 1:
        raise VideoError(f"frame stride must be >= 1, got {stride}")
    info = probe_video(path)
    _check_size(info.height, info.width, Path(path).name)
    kept = 0
    try:
        with av.open(str(path)) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index % stride:
                    continue
                if kept >= max_frames:
                    raise VideoError(f"{Path(path).name} has more than {max_frames} frames; "
                                     f"sample it (a larger frame stride) or raise the limit")
                kept += 1
                yield upright(frame.to_ndarray(format="rgb24"), getattr(frame, "rotation", 0) or 0)
    except av.error.FFmpegError as e:
        raise VideoError(f"{Path(path).name} is corrupt at frame {kept} ({_first_line(e)})") from e
    if kept == 0:
        raise VideoError(f"{Path(path).name} contains no decodable frames")


def upright(frame: np.ndarray, rotation: float) -> np.ndarray:
    """``[H, W, 3]`` as it should be shown: turned by ``rotation`` degrees counter-clockwise (the display matrix
    of phone videos, as PyAV's ``VideoFrame.rotation``), rounded to quarter turns."""
    quarter_turns = int(round(rotation / 90)) % 4
    return np.ascontiguousarray(np.rot90(frame, k=quarter_turns)) if quarter_turns else frame


def _first_line(e: BaseException) -> str:
    """FFmpeg's own words (``strerror``, without the errno and the file path PyAV appends), else the first line."""
    reason = getattr(e, "strerror", None)
    return (reason if isinstance(reason, str) and reason else (str(e).splitlines() or [type(e).__name__])[0])[:200]


def _check_size(h: int, w: int, name: str) -> None:
    if h <= 0 or w <= 0:
        raise VideoError(f"{name}: frames have no pixels ({w}x{h})")
    if h * w > DEFAULT_MAX_PIXELS:
        raise VideoError(f"{name}: frames of {w}x{h} are larger than the supported {DEFAULT_MAX_PIXELS} pixels")


def check_frame(frame: object, index: int, size: tuple[int, int] | None) -> np.ndarray:
    """A frame as ``[H, W, 3]`` uint8, of ``size`` (h, w) when given; ``VideoError`` otherwise."""
    array = np.asarray(frame)
    if array.ndim != 3 or array.shape[2] != 3:
        raise VideoError(f"frame {index} has shape {array.shape}; expected [H, W, 3] RGB")
    if array.dtype != np.uint8:
        raise VideoError(f"frame {index} has dtype {array.dtype}; expected uint8")
    _check_size(array.shape[0], array.shape[1], f"frame {index}")
    if size is not None and array.shape[:2] != size:
        raise VideoError(f"frame {index} is {array.shape[1]}x{array.shape[0]} but earlier frames are "
                         f"{size[1]}x{size[0]}: all frames must have the same size")
    return array


def iter_frames(video: str | Path | np.ndarray | Iterable, stride: int = 1) -> Iterator[np.ndarray]:
    """Frames of a path, an array ``[T, H, W, 3]`` uint8 or an iterable of ``[H, W, 3]``, checked one by one."""
    if isinstance(video, (str, Path)):
        source: Iterable = iter_video_frames(video, stride=stride)
    elif isinstance(video, np.ndarray):
        if video.ndim != 4:
            raise VideoError(f"video array has shape {video.shape}; expected [T, H, W, 3]")
        source = video[::stride]
    elif isinstance(video, Iterable):
        source = (f for i, f in enumerate(video) if i % stride == 0)
    else:
        raise VideoError(f"cannot read a video from a {type(video).__name__}; pass a path, an array or frames")
    size = None
    count = 0
    for count, frame in enumerate(source, start=1):
        array = check_frame(frame, count - 1, size)
        size = array.shape[:2]
        yield array
    if count == 0:
        raise VideoError("the video has zero frames")


def resized_size(h: int, w: int, short_side: int) -> tuple[int, int]:
    """(h, w) with the shorter side ``short_side`` (torchvision ``Resize(int)`` rounding)."""
    if h <= w:
        return short_side, int(short_side * w / h)
    return int(short_side * h / w), short_side


def resize_frame(frame: np.ndarray, short_side: int) -> Tensor:
    """``[H, W, 3]`` uint8 -> ``[3, h, w]`` uint8 with the shorter side ``short_side`` (antialiased bilinear)."""
    tensor = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)
    h, w = resized_size(frame.shape[0], frame.shape[1], short_side)
    if (h, w) == tuple(frame.shape[:2]):
        return tensor.clone()
    out = F.interpolate(tensor[None].float(), size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    return out[0].round_().clamp_(0, 255).to(torch.uint8)


def normalize_frames(frames: Tensor) -> Tensor:
    """``[T, 3, h, w]`` uint8 -> float ImageNet-normalised, as ``ToTensor`` + ``Normalize``."""
    mean = torch.tensor(IMAGENET_MEAN, device=frames.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=frames.device).view(1, 3, 1, 1)
    return (frames.float() / 255.0 - mean) / std


class FrameBuffer:
    """Resized frames ``[T, 3, h, w]`` uint8 written to a temporary file as they are decoded.

    A long video then never sits in memory: the model reads one window at a time (``buffer[start:end]``).
    The file is removed when the buffer is garbage-collected.
    """

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="referformer-frames-")
        self._frame_shape: tuple[int, ...] | None = None
        self._count = 0
        self._map: np.memmap | None = None

    def append(self, frame: Tensor) -> None:
        """Add one ``[3, h, w]`` uint8 frame; all frames must have the same shape."""
        if self._map is not None:
            raise RuntimeError("frames cannot be added after reading started")
        shape = tuple(frame.shape)
        if self._frame_shape is None:
            self._frame_shape = shape
        elif shape != self._frame_shape:
            raise VideoError(f"frame {self._count} resized to {shape}, earlier frames to {self._frame_shape}")
        self._file.write(frame.contiguous().numpy().tobytes())
        self._count += 1

    @property
    def shape(self) -> tuple[int, ...]:
        return (self._count, *(self._frame_shape or ()))

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: slice) -> Tensor:
        """A copy of the frames ``index`` selects, ``[t, 3, h, w]`` uint8."""
        if self._count == 0:
            raise VideoError("the video has zero frames")
        if self._map is None:
            self._file.flush()
            self._map = np.memmap(self._file, dtype=np.uint8, mode="r", shape=self.shape)
        return torch.from_numpy(np.array(self._map[index]))
