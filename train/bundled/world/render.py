"""Rendering a :class:`VideoSpec`: object masks composited by depth over the moving background.

:func:`layout` gives the label maps and each object's full and visible areas (what the generator needs
to check visibility); :func:`render_video` also paints the frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .backgrounds import background_frames
from .shapes import Patch, object_patch, patch_colours
from .spec import ObjectSpec, Pose, VideoSpec, trajectory


@dataclass(frozen=True)
class Layout:
    """Geometry of a video with ``K`` objects over ``T`` frames.

    ``labels [T, H, W]`` uint8 (object id of the visible object, 0 background); ``full_area [K, T]`` the
    pixel area of each object's whole mask (also off-frame and occluded parts) and ``visible_area [K, T]``
    its pixels in ``labels``; ``poses[k][t]`` and ``patches[k][t]`` per object (index ``obj_id - 1``).
    """

    labels: np.ndarray
    full_area: np.ndarray
    visible_area: np.ndarray
    poses: list[list[Pose]]
    patches: list[list[Patch]]

    @property
    def visible_fraction(self) -> np.ndarray:
        """``[K, T]`` visible area over full area."""
        return self.visible_area / np.maximum(self.full_area, 1)


def _clip(patch: Patch, height: int, width: int) -> tuple[slice, slice, slice, slice] | None:
    """(frame rows, frame cols, patch rows, patch cols) of the patch's part inside the frame, or None."""
    h, w = patch.mask.shape
    fy0, fx0 = max(patch.y0, 0), max(patch.x0, 0)
    fy1, fx1 = min(patch.y0 + h, height), min(patch.x0 + w, width)
    if fy0 >= fy1 or fx0 >= fx1:
        return None
    return (slice(fy0, fy1), slice(fx0, fx1), slice(fy0 - patch.y0, fy1 - patch.y0),
            slice(fx0 - patch.x0, fx1 - patch.x0))


def draw_order(objects: tuple[ObjectSpec, ...]) -> list[ObjectSpec]:
    """Objects back to front (by ``depth``, then id)."""
    return sorted(objects, key=lambda o: (o.depth, o.obj_id))


def layout(spec: VideoSpec) -> Layout:
    """Masks, label maps and areas of every object of ``spec`` (no pixels painted)."""
    t_count, h, w = spec.num_frames, spec.height, spec.width
    poses = [trajectory(obj, t_count, h, w) for obj in spec.objects]
    patches = [[object_patch(obj, p) for p in obj_poses] for obj, obj_poses in zip(spec.objects, poses)]
    labels = np.zeros((t_count, h, w), np.uint8)
    full = np.array([[int(p.mask.sum()) for p in obj_patches] for obj_patches in patches], np.int64)
    order = draw_order(spec.objects)
    for t in range(t_count):
        for obj in order:
            patch = patches[obj.obj_id - 1][t]
            cut = _clip(patch, h, w)
            if cut is not None:
                fr, fc, pr, pc = cut
                labels[t, fr, fc][patch.mask[pr, pc]] = obj.obj_id
    visible = np.stack([(labels == obj.obj_id).reshape(t_count, -1).sum(1) for obj in spec.objects]) \
        if spec.objects else np.zeros((0, t_count), np.int64)
    return Layout(labels, full.reshape(len(spec.objects), t_count), visible, poses, patches)


def render_video(spec: VideoSpec) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Render ``spec``: frames ``[T, H, W, 3]`` uint8, labels ``[T, H, W]`` uint8 and its expressions
    (``{"exp", "obj_id", "attributes"}`` dicts, ``obj_id`` a string as in ``meta_expressions.json``)."""
    geo = layout(spec)
    rng = np.random.default_rng(spec.render_seed)
    backgrounds = background_frames(spec.background, spec.num_frames, spec.height, spec.width)
    frames = np.empty((spec.num_frames, spec.height, spec.width, 3), np.uint8)
    order = draw_order(spec.objects)
    for t, image in enumerate(backgrounds):
        for obj in order:
            k = obj.obj_id - 1
            patch = geo.patches[k][t]
            cut = _clip(patch, spec.height, spec.width)
            if cut is None:
                continue
            fr, fc, pr, pc = cut
            mask = patch.mask[pr, pc]
            image[fr, fc][mask] = patch_colours(obj, geo.poses[k][t], patch)[pr, pc][mask]
        if spec.blur > 0:
            image = cv2.GaussianBlur(image, (0, 0), spec.blur)
        image += rng.standard_normal(image.shape, dtype=np.float32) * np.float32(spec.noise)
        frames[t] = np.clip(image, 0, 255).round().astype(np.uint8)
    return frames, geo.labels, [e.as_dict() for e in spec.expressions]
