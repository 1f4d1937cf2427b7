"""Feed the model: decode, resize and copy the next window's frames on a background thread while the model runs.

    frames, orig_size = stream_frames("video.mp4", short_side=360)   # returns after the first frame is decoded
    for window in prefetch_windows(frames, bounds, device):          # [t, 3, h, w] uint8 on ``device``
        ...                                                          # the next window is read meanwhile

Two stages overlap the model's work with the CPU's:

- :func:`stream_frames` decodes (PyAV) and resizes a video whose frame count is known before decoding (an array
  ``[T, H, W, 3]``, or a file whose container's packets are counted first) on a background thread, into a
  :class:`StreamedFrames` buffer on disk; reading ``frames[start:end]`` waits only for those frames. The model
  then starts on the first window while later ones are still being decoded.
- :func:`prefetch_windows` reads window ``i + 1`` from the buffer while window ``i`` runs and, on CUDA, copies it
  into pinned memory and onto the GPU with a ``non_blocking`` copy on a side stream.

Both hand the model the very frames the serial path would (:func:`~referformer_core.pipeline.prepare_frames`, then
``frames[start:end]``): the masks are identical. Python threads share the GIL; decoding (FFmpeg), resizing and the
model (torch operators) release it, so the work overlaps.
"""
from __future__ import annotations

import os
import queue
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .errors import VideoError
from .video import iter_frames, probe_video, resize_frame

_POLL_S = 0.1
"""How often a waiting thread looks whether the other side stopped."""


def wanted(prefetch: bool | None, device: torch.device | str) -> bool:
    """Whether to prefetch: ``prefetch`` when given, else on CUDA only. On the CPU the background thread's resizing
    competes for the cores the model uses, and it was not measured to help there."""
    return torch.device(device).type == "cuda" if prefetch is None else prefetch


class FrameCountChanged(VideoError):
    """The decoded video has another number of frames than counted before decoding (a damaged or unusual
    container): its windows were planned for the wrong length, so the caller decodes it again serially."""


def count_frames(video: str | Path | np.ndarray | Iterable, stride: int = 1) -> int | None:
    """Frames :func:`~referformer_core.video.iter_frames` will yield, when known without decoding: an array's
    ``ceil(T / stride)``, a file's video packets (demuxed, not decoded) every ``stride``-th; ``None`` for frame
    iterators, unreadable files and zero frames (the serial path then reads them and words the error)."""
    if isinstance(video, np.ndarray):
        return len(range(0, len(video), stride)) if video.ndim == 4 and len(video) and stride >= 1 else None
    if not isinstance(video, (str, Path)) or stride < 1:
        return None
    import av

    try:
        probe_video(video)
        with av.open(str(video)) as container:
            packets = sum(1 for p in container.demux(video=0) if p.size)
    except (VideoError, av.error.FFmpegError, OSError):
        return None
    return len(range(0, packets, stride)) or None


class StreamedFrames:
    """Resized frames ``[T, 3, h, w]`` uint8 of a video of known length ``T``, written to a temporary file by a
    background thread as they are decoded; ``frames[start:end]`` (a copy) waits until those frames are written.

    The last window (``end == T``) waits for the decoder to finish, so a video with more or fewer frames than
    counted raises :class:`FrameCountChanged` before any result is made from it. Errors of decoding (a
    ``VideoError``) are raised to the reader. :meth:`close` stops the thread and removes the file.
    """

    def __init__(self, video: str | Path | np.ndarray, num_frames: int, short_side: int, stride: int = 1) -> None:
        self._num_frames = num_frames
        self._file = tempfile.TemporaryFile(prefix="referformer-frames-")
        self._done_frames = 0
        self._finished = False
        self._error: BaseException | None = None
        self._frame_shape: tuple[int, int, int] | None = None
        self.orig_size: tuple[int, int] | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._decode, args=(video, short_side, stride), daemon=True,
                                        name="referformer-decode")
        self._thread.start()

    def _decode(self, video: str | Path | np.ndarray, short_side: int, stride: int) -> None:
        fd = self._file.fileno()
        try:
            for index, frame in enumerate(iter_frames(video, stride=stride)):
                if self._stop.is_set():
                    return
                if index >= self._num_frames:
                    raise FrameCountChanged(f"the video has more than the {self._num_frames} frames counted")
                resized = resize_frame(frame, short_side).contiguous()
                os.pwrite(fd, resized.numpy().tobytes(), index * resized.numel())
                with self._cond:
                    if self.orig_size is None:
                        self.orig_size = (int(frame.shape[0]), int(frame.shape[1]))
                        self._frame_shape = tuple(resized.shape)
                    self._done_frames = index + 1
                    self._cond.notify_all()
            if self._done_frames != self._num_frames:
                raise FrameCountChanged(f"the video has {self._done_frames} frames, not the {self._num_frames} "
                                        "counted")
        except BaseException as e:  # handed to the reader, who raises it
            with self._cond:
                self._error = e
        finally:
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def _wait(self, frames: int, finished: bool = False) -> None:
        """Until ``frames`` frames are written (and, with ``finished``, the decoder is done); raises its error."""
        with self._cond:
            while not self._error and not self._finished and (self._done_frames < frames or finished):
                self._cond.wait(_POLL_S)
            if self._error is not None:
                raise self._error
            if self._done_frames < frames:
                raise FrameCountChanged(f"the video ended after {self._done_frames} frames, not the "
                                        f"{self._num_frames} counted")

    def wait_first(self) -> tuple[int, int]:
        """The original ``(H, W)``, once the first frame is decoded."""
        self._wait(1)
        assert self.orig_size is not None
        return self.orig_size

    @property
    def shape(self) -> tuple[int, ...]:
        self._wait(1)
        return (self._num_frames, *(self._frame_shape or ()))

    def __len__(self) -> int:
        return self._num_frames

    def __getitem__(self, index: slice) -> Tensor:
        """A copy of frames ``index.start .. index.stop`` (step 1), ``[t, 3, h, w]`` uint8."""
        start, stop, step = index.indices(self._num_frames)
        if step != 1:
            raise ValueError("StreamedFrames reads contiguous windows only")
        self._wait(stop, finished=stop == self._num_frames)
        shape = self._frame_shape
        assert shape is not None
        size = int(np.prod(shape))
        data = os.pread(self._file.fileno(), size * max(0, stop - start), start * size)
        return torch.frombuffer(bytearray(data), dtype=torch.uint8).view(-1, *shape)

    def close(self) -> None:
        """Stop the decoder and remove the file."""
        self._stop.set()
        self._thread.join()
        self._file.close()


def stream_frames(video: str | Path | np.ndarray | Iterable, short_side: int, stride: int = 1
                  ) -> tuple[StreamedFrames, tuple[int, int]] | None:
    """Start decoding and resizing ``video`` on a background thread: the :class:`StreamedFrames` and the original
    ``(H, W)`` once the first frame is decoded. ``None`` when the frame count is not known before decoding
    (:func:`count_frames`): the caller then decodes serially."""
    num_frames = count_frames(video, stride)
    if num_frames is None:
        return None
    frames = StreamedFrames(video, num_frames, short_side, stride)
    return frames, frames.wait_first()


def prefetch_windows(frames: StreamedFrames | Tensor, bounds: list[tuple[int, int]], device: torch.device,
                     depth: int = 1) -> Iterator[Tensor]:
    """``frames[start:end]`` for each ``(start, end)`` of ``bounds`` in order, ``[t, 3, h, w]`` uint8 on ``device``,
    up to ``depth`` windows read ahead on a background thread (on CUDA: pinned, then copied ``non_blocking`` on a
    side stream that the consuming stream waits for). ``frames``: a ``FrameBuffer``, :class:`StreamedFrames` or a
    tensor — anything sliced ``frames[start:end]``."""
    cuda = device.type == "cuda"
    stream = torch.cuda.Stream(device) if cuda else None
    ready: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for start, end in bounds:
                window = frames[start:end]
                event = None
                if stream is not None:
                    with torch.cuda.stream(stream):
                        window = window.pin_memory().to(device, non_blocking=True)
                        event = torch.cuda.Event()
                        event.record(stream)
                if not put((window, event, None)):
                    return
        except BaseException as e:  # raised again by the consumer
            put((None, None, e))

    thread = threading.Thread(target=read, daemon=True, name="referformer-prefetch")
    thread.start()
    try:
        for _ in bounds:
            window, event, error = ready.get()
            if error is not None:
                raise error
            if event is not None:
                current = torch.cuda.current_stream(device)
                current.wait_event(event)
                window.record_stream(current)
            yield window
    finally:
        stop.set()
        thread.join()
