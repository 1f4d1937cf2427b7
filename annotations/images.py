"""Image file helpers shared by the formats: JPEG frame checks and copies, palette PNG label maps."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import FormatError
from .model import VideoData


def _voc_palette() -> list[int]:
    """The PASCAL VOC / DAVIS / YouTube-VOS colour palette: 256 RGB triplets, flattened."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


PALETTE = _voc_palette()


def jpeg_size(file: Path, field: str, path: Path) -> tuple[int, int]:
    """``(height, width)`` of the JPEG at ``path``; ``file``/``field`` name where it was referenced."""
    try:
        with Image.open(path) as image:
            if image.format != "JPEG":
                raise FormatError(file, field, f"{path} is a {image.format} image, not a JPEG")
            return image.height, image.width
    except FileNotFoundError:
        raise FormatError(file, field, f"frame image {path} not found") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise FormatError(file, field, f"frame image {path} is not readable ({exc})") from None


def check_frames(file: Path, field: str, video: VideoData) -> None:
    """Check every frame of ``video`` is a JPEG of the video's size."""
    for frame in video.frames:
        size = jpeg_size(file, field, frame.image)
        if size != (video.height, video.width):
            raise FormatError(file, field, f"frame image {frame.image} is {size[1]}x{size[0]}, "
                                           f"expected {video.width}x{video.height}")


def copy_frames(video: VideoData, folder: Path) -> None:
    """Copy the JPEGs of ``video`` to ``folder/<frame>.jpg`` (bytes unchanged)."""
    folder.mkdir(parents=True, exist_ok=True)
    for frame in video.frames:
        shutil.copyfile(frame.image, folder / f"{frame.name}.jpg")


def write_label_png(path: Path, labels: np.ndarray) -> None:
    """Write a ``[H, W]`` uint8 label map as a palette PNG (pixel value = object id)."""
    image = Image.fromarray(labels)
    image.putpalette(PALETTE)
    image.save(path, format="PNG", compress_level=1)


def read_label_png(path: Path, file: Path, field: str) -> np.ndarray:
    """Read a palette (or greyscale) PNG as a ``[H, W]`` uint8 label map."""
    try:
        with Image.open(path) as image:
            if image.format != "PNG" or image.mode not in ("P", "L"):
                raise FormatError(file, field, f"{path} must be a palette PNG, got {image.format} {image.mode}")
            return np.asarray(image)
    except FileNotFoundError:
        raise FormatError(file, field, f"annotation {path} not found") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise FormatError(file, field, f"annotation {path} is not readable ({exc})") from None
