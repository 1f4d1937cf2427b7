"""Masks drawn over frames: object colours, a blended overlay with outlines, boxes and labels, mp4 writing.

One place for how a mask looks, used by ``referformer segment``'s preview and by the studio's viewer.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from .errors import VideoError

# Distinct, colour-blind-friendly colours (Okabe-Ito first, then Tableau), RGB.
OBJECT_COLOURS: tuple[tuple[int, int, int], ...] = (
    (230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0),
    (204, 121, 167), (148, 103, 189), (140, 86, 75), (188, 189, 34), (23, 190, 207), (227, 119, 194),
)


def object_colour(obj_id: int) -> tuple[int, int, int]:
    """The RGB colour of object ``obj_id`` (1-based ids; stable across sessions)."""
    return OBJECT_COLOURS[(int(obj_id) - 1) % len(OBJECT_COLOURS)]


def overlay_masks(frame: np.ndarray, masks: np.ndarray | Sequence[np.ndarray], colours: Sequence[tuple[int, int, int]],
                  alpha: float = 0.5, boxes: Sequence[Sequence[float] | None] | None = None,
                  labels: Sequence[str] | None = None) -> np.ndarray:
    """Blend ``masks [N, H, W]`` bool over ``frame [H, W, 3]`` uint8 in ``colours`` (RGB), with outlines.

    ``boxes`` (x0, y0, x1, y1 pixels, or None per object) and ``labels`` are drawn when given.
    Returns a new ``[H, W, 3]`` uint8 image.
    """
    out = frame.astype(np.float32)
    h, w = frame.shape[:2]
    outlines = []
    for mask, colour in zip(masks, colours):
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (h, w):
            raise VideoError(f"mask of {mask.shape[1]}x{mask.shape[0]} does not match the frame's {w}x{h}")
        if mask.any():
            out[mask] = out[mask] * (1 - alpha) + np.asarray(colour, np.float32) * alpha
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            outlines.append((contours, colour))
    image = np.ascontiguousarray(out.round().clip(0, 255).astype(np.uint8))
    thickness = max(1, round(min(h, w) / 300))
    for contours, colour in outlines:
        cv2.drawContours(image, contours, -1, tuple(int(c) for c in colour), thickness)
    for i, colour in enumerate(colours):
        box = boxes[i] if boxes is not None and i < len(boxes) else None
        label = labels[i] if labels is not None and i < len(labels) else None
        if box is not None:
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            cv2.rectangle(image, (x0, y0), (x1, y1), tuple(int(c) for c in colour), thickness)
        if label:
            _draw_label(image, label, colour, box, masks[i] if i < len(masks) else None)
    return image


def _draw_label(image: np.ndarray, text: str, colour: tuple[int, int, int], box: Sequence[float] | None,
                mask: np.ndarray | None) -> None:
    """A filled tag with ``text`` at the box's corner, else at the mask's top-left, else nowhere."""
    if box is not None:
        x, y = int(box[0]), int(box[1])
    elif mask is not None and np.any(mask):
        ys, xs = np.nonzero(mask)
        x, y = int(xs.min()), int(ys.min())
    else:
        return
    scale = max(0.4, min(image.shape[:2]) / 700)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    y = max(y, th + base + 2)
    x = min(max(x, 0), max(0, image.shape[1] - tw - 4))
    cv2.rectangle(image, (x, y - th - base - 2), (x + tw + 4, y), tuple(int(c) for c in colour), -1)
    dark = sum(colour) > 380
    cv2.putText(image, text, (x + 2, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (0, 0, 0) if dark else (255, 255, 255), 1, cv2.LINE_AA)


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float = 24.0) -> Path:
    """Write ``[H, W, 3]`` uint8 RGB frames as an H.264 mp4 (yuv420p, odd sizes padded by one pixel).

    Browsers play the result. Raises ``VideoError`` when there is no frame or the file cannot be written.
    """
    import av

    path = Path(path)
    rate = max(1, min(120, int(round(fps or 24))))
    count = 0
    try:
        with av.open(str(path), mode="w") as container:
            stream = None
            for frame in frames:
                if stream is None:
                    h, w = frame.shape[:2]
                    stream = container.add_stream("libx264", rate=rate)
                    stream.width, stream.height = w + w % 2, h + h % 2
                    stream.pix_fmt = "yuv420p"
                    stream.options = {"crf": "23", "preset": "veryfast"}
                if frame.shape[0] % 2 or frame.shape[1] % 2:
                    frame = np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)), mode="edge")
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                    container.mux(packet)
                count += 1
            if stream is None:
                raise VideoError(f"{path.name}: no frames to write")
            for packet in stream.encode():
                container.mux(packet)
    except av.error.FFmpegError as e:
        path.unlink(missing_ok=True)
        raise VideoError(f"cannot write {path.name} ({str(e).splitlines()[0][:200]})") from e
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path
