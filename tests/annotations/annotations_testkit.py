"""Shared builders for the annotations tests (imported by the test modules, not collected)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from annotations import Origin, Project


def frames(count: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth RGB frames ``[H, W, 3]`` uint8 (JPEG-friendly), different per frame."""
    yy, xx = np.mgrid[0:height, 0:width]
    out = []
    for t in range(count):
        base = (xx * 3 + yy * 2 + t * 17 + seed * 31) % 256
        out.append(np.stack([base, (base + 85) % 256, (255 - base)], axis=-1).astype(np.uint8))
    return out


def box_mask(height: int, width: int, y0: int, x0: int, h: int, w: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    mask[y0:y0 + h, x0:x0 + w] = True
    return mask


def make_project(folder: Path, videos: dict[str, tuple[int, int, int]] | None = None) -> Project:
    """A project with, per video ``name -> (T, H, W)``, two objects (dog, cat) with boxes moving over time.

    Object 1 has masks on every frame, object 2 on even frames only, and they never overlap.
    """
    project = Project.create(folder)
    for seed, (name, (count, height, width)) in enumerate((videos or {"v1": (4, 24, 32)}).items()):
        project.add_video(name, frames(count, height, width, seed), fps=24.0, source_path=f"/videos/{name}.mp4")
        project.add_object(name, ["the brown dog", "a dog on the left"], category="dog")
        project.add_object(name, ["the cat"], category="cat")
        for t in range(count):
            project.set_mask(name, 1, t, box_mask(height, width, 1 + t % 3, 1 + t, height // 3, width // 4),
                             Origin.MODEL, 0.5 + t / (2 * count))
            if t % 2 == 0:
                project.set_mask(name, 2, t, box_mask(height, width, height // 2, width // 2, height // 3, 3 + t),
                                 Origin.HAND)
    return project


def annotations_of(project: Project) -> dict:
    """Everything a format must preserve: per video size, frame names, objects and dense masks."""
    out = {}
    for video in project.videos():
        out[video.name] = {
            "size": (video.height, video.width),
            "frames": project.frame_names(video.name),
            "objects": {o.obj_id: (o.category, o.expressions, project.get_masks(video.name, o.obj_id).tobytes())
                        for o in project.objects(video.name)},
        }
    return out
