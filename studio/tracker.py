"""The tracker: one interface over two engines, so the studio never asks which one is loaded.

- ``Sam2Engine``: the SAM 2 family from ``transformers`` (``Sam2VideoModel``, ``EdgeTamVideoModel``) with
  ``Sam2VideoProcessor`` and its inference session. Named by a Hugging Face id (``facebook/sam2.1-hiera-tiny``
  ... ``-large``, ``yonigozlan/EdgeTAM-hf``) that ``referformer download NAME`` put in the cache, or a local
  folder in ``save_pretrained`` layout.
- ``GrabCutEngine`` (:mod:`studio.grabcut`): no weights; OpenCV GrabCut on one frame, flow propagation across.

Every engine answers two calls over a :class:`Frames` (a video read frame by frame):

    engine.segment(frames, t, prompt, current=None) -> [H, W] bool      # points / box on frame t
    engine.track(frames, conditioning, start, direction, max_frames)    # yields (t, {obj_id: [H, W] bool})

``conditioning`` maps a frame to ``{obj_id: [H, W] bool}``: the masks the tracker must take as given (a
person's frames, or the model's most confident ones); tracking runs from ``start`` forward, backward or both.

Memory: frames reach the model one at a time at its input size (:class:`_LazyFrames`), the session's state
stays on the CPU (``inference_state_device``, ``video_storage_device``), and per-frame memories that the model
can no longer reach (further than its memory and object-pointer windows from the frame being tracked and from
``start``) are dropped as tracking goes, so memory does not grow with the video's length.
"""
from __future__ import annotations

import argparse
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import StudioError

GRABCUT = "grabcut"
SAM2_IDS = ("facebook/sam2.1-hiera-tiny", "facebook/sam2.1-hiera-small", "facebook/sam2.1-hiera-base-plus",
            "facebook/sam2.1-hiera-large")
EDGETAM_ID = "yonigozlan/EdgeTAM-hf"
DIRECTIONS = ("forward", "backward", "both")
PRECISIONS = ("fp32", "bf16")
HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")
MASK_THRESHOLD = 0.0
"""Mask logits above this are the object (``Sam2VideoProcessor.post_process_masks``' default)."""


@dataclass(frozen=True)
class TrackerSettings:
    """Which tracker runs and how: ``name`` is ``grabcut``, a Hugging Face id or a ``save_pretrained`` folder;
    ``device`` runs the model (its state stays on the CPU); ``precision`` ``bf16`` halves the compute where the
    device has it natively; ``cache_dir`` is the Hugging Face cache to read (default: the user's)."""

    name: str = GRABCUT
    device: str = "cpu"
    precision: str = "fp32"
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise StudioError(f"tracker precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")


@dataclass(frozen=True)
class Prompt:
    """Clicks and/or a box on one frame, in frame pixels: ``points`` ``(x, y)`` with ``labels`` 1 (object) or
    0 (not the object); ``box`` ``(x0, y0, x1, y1)``."""

    points: tuple[tuple[float, float], ...] = ()
    labels: tuple[int, ...] = ()
    box: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class Frames:
    """A video as the tracker reads it: ``read(t)`` gives frame ``t`` as ``[height, width, 3]`` uint8 RGB;
    ``key`` tells videos apart (an engine may keep a session per key)."""

    key: tuple
    count: int
    height: int
    width: int
    read: Callable[[int], np.ndarray]


class Engine(Protocol):
    name: str

    def segment(self, frames: Frames, frame: int, prompt: Prompt, current: np.ndarray | None = None
                ) -> np.ndarray: ...

    def track(self, frames: Frames, conditioning: Mapping[int, Mapping[int, np.ndarray]], start: int,
              direction: str, max_frames: int) -> Iterator[tuple[int, dict[int, np.ndarray]]]: ...


def add_arguments(parser: argparse.ArgumentParser, default: str | None = GRABCUT) -> None:
    """``--tracker NAME`` and ``--tracker-precision`` (for ``app.py``, ``referformer segment`` / ``annotate``).
    ``default`` ``None``: no tracker unless one is named (the commands that refine ReferFormer's masks)."""
    after = f"default: {default}" if default else "default: none, the masks stay ReferFormer's"
    parser.add_argument("--tracker", default=default,
                        help=f"tracker: {GRABCUT} (offline, no weights), a Hugging Face id ({SAM2_IDS[0]} ... "
                             f"-large, {EDGETAM_ID}; fetch it once with `referformer download NAME`) or a folder "
                             f"saved with save_pretrained ({after})")
    parser.add_argument("--tracker-precision", choices=PRECISIONS, default="fp32",
                        help="bf16 is faster where the CPU or GPU has it natively")


def settings_from_args(args: argparse.Namespace, device: str = "cpu") -> TrackerSettings:
    """The :class:`TrackerSettings` of :func:`add_arguments`' flags."""
    return TrackerSettings(args.tracker, device, args.tracker_precision)


def describe(settings: TrackerSettings) -> str:
    """What the first screen says is active, e.g. ``SAM 2 (facebook/sam2.1-hiera-tiny)``."""
    if settings.name == GRABCUT:
        return "GrabCut + optical flow (offline, no weights)"
    family = "EdgeTAM" if "edgetam" in settings.name.lower() else "SAM 2"
    return f"{family} ({settings.name}, {settings.precision} on {settings.device})"


def load_engine(settings: TrackerSettings) -> Engine:
    """The engine ``settings`` names; ``StudioError`` (one line) for an unknown name or weights not downloaded."""
    if settings.name == GRABCUT:
        from .grabcut import GrabCutEngine

        return GrabCutEngine()
    return Sam2Engine(settings, weights_folder(settings.name, settings.cache_dir))


def weights_folder(name: str, cache_dir: str | None = None) -> Path:
    """The local folder holding ``name``'s weights: ``name`` itself when it is a folder, else its snapshot in
    the Hugging Face cache (never the network: ``referformer download NAME`` fetches it)."""
    from .download import cached_snapshot

    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise StudioError(f"{path} is not a saved tracker: it has no config.json")
        return path
    if not HUB_ID.fullmatch(name):
        raise StudioError(f"unknown tracker {name!r}: use grabcut, a Hugging Face id such as {SAM2_IDS[0]} or "
                          f"{EDGETAM_ID}, or a folder saved with save_pretrained")
    return cached_snapshot(name, cache_dir)


class _LazyFrames(Mapping):
    """The session's ``processed_frames``: frame ``t`` preprocessed (``[3, S, S]``) when the model asks for it,
    the last ``keep`` kept, instead of the whole video preprocessed at once."""

    def __init__(self, frames: Frames, process: Callable[[np.ndarray], Any], keep: int = 2) -> None:
        self.frames, self.process, self.keep = frames, process, keep
        self._cache: OrderedDict[int, Any] = OrderedDict()

    def __getitem__(self, t: int) -> Any:
        if not 0 <= t < self.frames.count:
            raise KeyError(t)
        if t not in self._cache:
            self._cache[t] = self.process(self.frames.read(t))
            while len(self._cache) > self.keep:
                self._cache.popitem(last=False)
        self._cache.move_to_end(t)
        return self._cache[t]

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.frames.count))

    def __len__(self) -> int:
        return self.frames.count


MODEL_TYPES = {"sam2": "Sam2VideoModel", "sam2_video": "Sam2VideoModel", "edgetam": "EdgeTamVideoModel",
               "edgetam_video": "EdgeTamVideoModel"}


class Sam2Engine:
    """SAM 2 / EdgeTAM through ``transformers``: the calls of its documented video example. Clicks share one
    session per video (the image features of the frame last clicked stay cached, so a further click only reruns
    the decoder); each track has its own session, so two tabs can track at once."""

    def __init__(self, settings: TrackerSettings, folder: Path) -> None:
        import json

        import torch
        import transformers

        model_type = json.loads((folder / "config.json").read_text()).get("model_type")
        if model_type not in MODEL_TYPES:
            raise StudioError(f"{folder}: model type {model_type!r} is not a SAM 2 family tracker")
        self.name = settings.name
        self.device = settings.device
        self.dtype = torch.bfloat16 if settings.precision == "bf16" else torch.float32
        model_class = getattr(transformers, MODEL_TYPES[model_type])
        self.model = model_class.from_pretrained(str(folder)).to(self.device, dtype=self.dtype).eval()
        self.processor = transformers.Sam2VideoProcessor.from_pretrained(str(folder))
        config = self.model.config
        self.window = max(config.num_maskmem, config.max_object_pointers_in_encoder) + 1
        self.one_object_per_pass = model_type.startswith("edgetam")
        """transformers' EdgeTAM fails on a second object in a session (object score shapes differ)."""
        self._session: tuple[tuple, Any] | None = None
        self._lock = threading.Lock()
        self.last_session: Any = None
        """The session of the latest :meth:`track` (its state can be inspected)."""

    # ------------------------------------------------------------------ session
    def new_session(self, frames: Frames) -> Any:
        """A fresh inference session over ``frames``, read as the model asks, its state on the CPU."""
        session = self.processor.init_video_session(inference_device=self.device, inference_state_device="cpu",
                                                    video_storage_device="cpu", dtype=self.dtype)
        session.processed_frames = _LazyFrames(frames, self._preprocess)
        session.video_height, session.video_width = frames.height, frames.width
        return session

    def click_session(self, frames: Frames) -> Any:
        """The session clicks on ``frames`` share (tracking data cleared, the last frame's image features kept)."""
        if self._session is None or self._session[0] != frames.key:
            self._session = (frames.key, self.new_session(frames))
        session = self._session[1]
        session.reset_tracking_data()
        return session

    def _preprocess(self, image: np.ndarray) -> Any:
        """``[H, W, 3]`` uint8 -> ``[3, S, S]`` as ``init_video_session`` prepares a frame of a whole video."""
        video = self.processor.video_processor(videos=[image[None]], return_tensors="pt")
        return video.pixel_values_videos[0][0].to("cpu", dtype=self.dtype)

    def _masks(self, session: Any, pred_masks: Any) -> np.ndarray:
        """``[N, H, W]`` bool at the video's size from the model's low-resolution ``pred_masks``."""
        masks = self.processor.post_process_masks([pred_masks], original_sizes=[[session.video_height,
                                                                                 session.video_width]],
                                                  mask_threshold=MASK_THRESHOLD, binarize=True)[0]
        return masks[:, 0].cpu().numpy()

    # ------------------------------------------------------------------ engine
    def segment(self, frames: Frames, frame: int, prompt: Prompt, current: np.ndarray | None = None) -> np.ndarray:
        """The object's ``[H, W]`` bool mask on ``frame`` from ``prompt`` alone (SAM 2 takes no mask with points:
        a further click is the whole list of clicks again)."""
        with self._lock:
            return self._segment(self.click_session(frames), frame, prompt)

    def _segment(self, session: Any, frame: int, prompt: Prompt) -> np.ndarray:
        inputs: dict[str, Any] = {}
        if prompt.points:
            inputs["input_points"] = [[[list(map(float, p)) for p in prompt.points]]]
            inputs["input_labels"] = [[[int(v) for v in prompt.labels]]]
        if prompt.box is not None:
            inputs["input_boxes"] = [[list(map(float, prompt.box))]]
        self.processor.add_inputs_to_inference_session(inference_session=session, frame_idx=frame, obj_ids=1,
                                                       **inputs)
        out = self.model(inference_session=session, frame_idx=frame, run_mem_encoder=False)  # no tracking follows
        return self._masks(session, out.pred_masks)[0]

    def track(self, frames: Frames, conditioning: Mapping[int, Mapping[int, np.ndarray]], start: int,
              direction: str, max_frames: int) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        """Masks of every conditioned object on each frame from ``start`` (included) up to ``max_frames`` away,
        forward, backward or both (forward first, as SAM 2's demo does), each yielded as it is made (EdgeTAM:
        one object after the other)."""
        if direction not in DIRECTIONS:
            raise StudioError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        objects = sorted({o for masks in conditioning.values() for o in masks})
        if self.one_object_per_pass and len(objects) > 1:
            for obj_id in objects:
                yield from self.track(frames, {t: {obj_id: m[obj_id]} for t, m in conditioning.items() if obj_id in m},
                                      start, direction, max_frames)
            return
        session = self.new_session(frames)
        self.last_session = session
        for t in sorted(conditioning):
            obj_ids = sorted(conditioning[t])
            self.processor.add_inputs_to_inference_session(
                inference_session=session, frame_idx=t, obj_ids=obj_ids,
                input_masks=[np.asarray(conditioning[t][o], bool) for o in obj_ids])
            self.model(inference_session=session, frame_idx=t)
        passes = {"forward": [False], "backward": [True], "both": [False, True]}[direction]
        for reverse in passes:
            for out in self.model.propagate_in_video_iterator(session, start_frame_idx=start,
                                                              max_frame_num_to_track=max_frames, reverse=reverse):
                masks = self._masks(session, out.pred_masks)
                self._forget(session, out.frame_idx, start, reverse)
                yield out.frame_idx, {int(o): masks[i] for i, o in enumerate(out.object_ids)}

    def _forget(self, session: Any, frame: int, start: int, reverse: bool) -> None:
        """Drop tracked frames' memories the model cannot reach any more: behind ``frame`` by more than its
        memory/pointer window and not within that window of ``start`` (the other direction starts there)."""
        for outputs in session.output_dict_per_obj.values():
            tracked = outputs["non_cond_frame_outputs"]
            for t in [t for t in tracked if (t > frame + self.window if reverse else t < frame - self.window)
                      and abs(t - start) > self.window]:
                del tracked[t]
