"""``Studio``: every action of the UI as one plain call over a project library, a model and a ``View``.

A ``View`` (project, video, frame, object) is all a browser tab holds; everything else is read from the
project store on each call, so two tabs on one project see each other's edits and a reload loses nothing.
Every action returns an ``Answer`` (the next view, a one-line message, a file to download); queries return
what they name.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from annotations import ObjectInfo, Project, ReviewState
from referformer_core.predictor import InferenceState, VideoPredictor
from referformer_core.settings import RunSettings
from referformer_core.text import validate_expression

from . import corrections, finetune, render, review, tracking
from . import export as export_mod
from .corrections import Candidate
from .finetune import FinetuneOptions
from .errors import StudioError
from .media import VIDEO_SUFFIXES, ImportOptions, import_media, resolve_media_path
from .model import ModelCache, describe
from .projects import Answer, ProjectLibrary, View
from .samples import get_sample
from .propagate import propagate as propagate_mask
from .segment import SegmentProgress, load_state, segment_into_project
from .tracker import Engine, TrackerSettings, load_engine
from .tracker import describe as describe_tracker

MAX_CATEGORY_CHARS = 64
KEPT_STATES = 2
LOCKS_FOLDER = ".locks"


@dataclass
class StudioConfig:
    """What the studio was started with (``app.py``'s flags)."""

    projects_dir: Path
    downloads_dir: Path
    model: RunSettings = field(default_factory=RunSettings)
    media_dirs: tuple[Path, ...] = ()


class Studio:
    """The studio's logic: shared by every browser session; each action takes that session's ``View`` and returns
    an ``Answer`` holding the next one."""

    def __init__(self, config: StudioConfig, models: ModelCache | None = None) -> None:
        self.config = config
        self.library = ProjectLibrary(config.projects_dir)
        self.models = models or ModelCache()
        self._open: dict[str, Project] = {}
        self._states: OrderedDict[tuple, InferenceState] = OrderedDict()
        self._lock = threading.Lock()
        self._sample_lock = threading.Lock()

    # ------------------------------------------------------------------ projects
    def project(self, view: View) -> Project:
        """The open project of ``view`` (opened once, shared by sessions); ``StudioError`` when none is chosen."""
        if not view.project:
            raise StudioError("create or open a project first")
        with self._lock:
            if view.project not in self._open:
                self._open[view.project] = self.library.open(view.project)
            return self._open[view.project]

    def create_project(self, name: str) -> Answer:
        project = self.library.create(name)
        with self._lock:
            self._open[project.folder.name] = project
        return Answer(self._remember(View(project=project.folder.name)), f"created project {project.folder.name}")

    def open_project(self, name: str) -> Answer:
        """Open ``name`` where the user left it (a video/object/frame that no longer exists is dropped)."""
        if not name:
            raise StudioError("choose a project to open")
        view = self.library.load_view(name)
        return Answer(self._valid(view))

    def open_sample(self, name: str) -> Answer:
        """A project holding the shipped sample ``name`` (see :mod:`studio.samples`) with its expressions as objects;
        opened as left when it exists already. The first object is selected, ready to segment."""
        sample = get_sample(name)
        project_name = f"Sample {sample.name.rsplit('_', 1)[-1]}"
        with self._sample_lock:  # sessions opening a sample at once: one makes it, the others open it made
            if project_name in self.library.names():
                return replace(self.open_project(project_name), message=f"opened {project_name}")
            return self._make_sample(sample, project_name)

    def _make_sample(self, sample, project_name: str) -> Answer:
        view = self.create_project(project_name).view
        view = self.import_file(view, sample.file, ImportOptions()).view
        by_object: dict[int, list[str]] = {}
        for text, obj_id in sample.expressions:
            by_object.setdefault(obj_id, []).append(validate_expression(text))
        project = self.project(view)
        created = [project.add_object(view.video, texts, category=_category(sample.categories.get(obj_id, "")),
                                      obj_id=obj_id)
                   for obj_id, texts in by_object.items()]
        view = self._remember(replace(view, obj_id=created[0].obj_id))
        return Answer(view, f"opened {project_name}: {len(created)} objects, {len(sample.expressions)} expressions; "
                            f"press Segment all to run the bundled model")

    def resume(self, view: View) -> Answer:
        """A new tab: ``view`` if it has a project, else the most recently used project where it was left."""
        if view.project:
            return Answer(self._valid(view))
        names = self.library.names()
        return self.open_project(names[0]) if names else Answer(view)

    def close(self) -> None:
        with self._lock:
            for project in self._open.values():
                project.close()
            self._open.clear()

    # ------------------------------------------------------------------ media
    def import_file(self, view: View, source: str | Path, options: ImportOptions,
                    progress: Callable[[int, int], None] | None = None) -> Answer:
        """Add the video or frame zip at ``source`` (an upload) and show it."""
        info = import_media(self.project(view), source, options, progress=progress)
        return Answer(self._remember(View(view.project, info.name, 0, None)), _imported(info))

    def import_media_path(self, view: View, path_text: str, options: ImportOptions,
                          progress: Callable[[int, int], None] | None = None) -> Answer:
        """Add a video found by path under ``--media-dir`` (no upload)."""
        path = resolve_media_path(path_text, self.config.media_dirs)
        return self.import_file(view, path, options, progress)

    def select_video(self, view: View, video: str | None) -> Answer:
        if not video:
            raise StudioError("choose a video")
        project = self.project(view)
        project.video(video)
        objects = project.objects(video)
        return Answer(self._remember(View(view.project, video, 0, objects[0].obj_id if objects else None)))

    def remove_video(self, view: View) -> Answer:
        video = self._video(view)
        self.project(view).remove_video(video)
        return Answer(self._valid(View(view.project)), f"removed video {video}")

    # ------------------------------------------------------------------ objects
    def add_object(self, view: View, expression: str, category: str = "") -> Answer:
        """A new object of the current video with one referring expression; other objects are untouched."""
        video = self._video(view)
        text = validate_expression(expression)
        obj = self.project(view).add_object(video, [text], category=_category(category))
        return Answer(self._remember(replace(view, obj_id=obj.obj_id)), f"added object {obj.obj_id}: “{text}”")

    def update_object(self, view: View, expression: str, category: str = "") -> Answer:
        """Replace the current object's first expression (others kept) and its category."""
        obj = self.current_object(view)
        text = validate_expression(expression)
        project = self.project(view)
        if obj.expressions[:1] != (text,):
            project.set_expressions(obj.video, obj.obj_id, [text, *[e for e in obj.expressions[1:] if e != text]])
        if _category(category) != obj.category:
            project.set_category(obj.video, obj.obj_id, _category(category))
        return Answer(view, f"updated object {obj.obj_id}")

    def delete_object(self, view: View) -> Answer:
        obj = self.current_object(view)
        self.project(view).remove_object(obj.video, obj.obj_id)
        rest = self.project(view).objects(obj.video)
        return Answer(self._remember(replace(view, obj_id=rest[0].obj_id if rest else None)),
                      f"deleted object {obj.obj_id}")

    def select_object(self, view: View, obj_id: int | None) -> Answer:
        if obj_id is not None:
            self.project(view).object(self._video(view), int(obj_id))
        return Answer(self._remember(replace(view, obj_id=None if obj_id is None else int(obj_id))))

    def objects(self, view: View) -> list[ObjectInfo]:
        return self.project(view).objects(view.video) if view.project and view.video else []

    def current_object(self, view: View) -> ObjectInfo:
        if view.obj_id is None:
            raise StudioError("add or choose an object first")
        return self.project(view).object(self._video(view), view.obj_id)

    # ------------------------------------------------------------------ model
    def segment(self, view: View, all_objects: bool = False, overwrite_edits: bool = False
                ) -> Iterator[SegmentProgress]:
        """Segment the current object (or all objects) of the current video; yields after each window."""
        video = self._video(view)
        obj_ids: Sequence[int] | None = None if all_objects else [self.current_object(view).obj_id]
        predictor, state = self._model_state(view, create=True)
        yield from segment_into_project(self.project(view), video, predictor, obj_ids, overwrite_edits, state)

    # ------------------------------------------------------------------ corrections
    def candidates(self, view: View) -> list[Candidate]:
        """The model's candidates (queries) for the current object on the current frame, best first."""
        obj = self.current_object(view)
        predictor, state = self._segmented(view, obj)
        return corrections.candidates(self.project(view), obj.video, obj.obj_id, view.frame, predictor, state)

    def pick_candidate(self, view: View, query: int, scope: str = corrections.SCOPES[0],
                       until: int | None = None) -> Answer:
        """Make candidate ``query`` the object's mask on this frame, a range, or the whole video."""
        obj = self.current_object(view)
        predictor, state = self._segmented(view, obj)
        project = self.project(view)
        frames = corrections.scope_frames(scope, view.frame, until, project.video(obj.video).frame_count)
        count = corrections.pick(project, obj.video, obj.obj_id, predictor, state, int(query), frames)
        return Answer(view, f"candidate {query} picked for {count} frame(s)")

    def pick_at(self, view: View, x: float, y: float, scope: str = corrections.SCOPES[0],
                until: int | None = None) -> Answer:
        """Pick the candidate whose mask covers the clicked pixel (x, y) of the current frame."""
        obj = self.current_object(view)
        predictor, state = self._segmented(view, obj)
        return self.pick_candidate(view, corrections.query_at(predictor, state, obj.obj_id, view.frame, x, y),
                                   scope, until)

    def brush_start(self, view: View) -> dict:
        """The brush editor's value for the current object on the current frame."""
        obj = self.current_object(view)
        return corrections.editor_value(self.project(view), obj.video, obj.obj_id, view.frame)

    def brush_save(self, view: View, value: dict | None) -> Answer:
        """Store the painted mask as the object's mask on the current frame (origin ``hand``)."""
        obj = self.current_object(view)
        mask = corrections.save_painted(self.project(view), obj.video, obj.obj_id, view.frame, value)
        return Answer(view, f"painted mask of object {obj.obj_id} saved on frame {view.frame} "
                            f"({int(mask.sum())} pixels)")

    def propagate(self, view: View, direction: str = "forward", max_frames: int = 30) -> Answer:
        """Spread the current object's mask on the current frame to its neighbours (optical flow)."""
        obj = self.current_object(view)
        result = propagate_mask(self.project(view), obj.video, obj.obj_id, view.frame, direction, int(max_frames))
        return Answer(view, result.describe())

    # ------------------------------------------------------------------ review
    def goto(self, view: View, frame: int) -> Answer:
        count = self.project(view).video(self._video(view)).frame_count
        return Answer(self._remember(replace(view, frame=int(min(max(int(frame), 0), count - 1)))))

    def step(self, view: View, delta: int) -> Answer:
        count = self.project(view).video(self._video(view)).frame_count
        return Answer(self._remember(replace(view, frame=(view.frame + delta) % count)))

    def jump(self, view: View, kind: str, threshold: float = review.LOW_CONFIDENCE) -> Answer:
        """To the next ``unreviewed`` or ``low`` confidence frame (``StudioError`` when there is none)."""
        frame = review.next_frame(self.project(view), self._video(view), view.frame, kind, view.obj_id, threshold)
        return Answer(self._remember(replace(view, frame=frame)))

    def mark(self, view: View, state: ReviewState | str, advance: bool = True) -> Answer:
        """Set the current frame's review state, then (by default) step to the next frame."""
        project, video = self.project(view), self._video(view)
        review.mark(project, video, view.frame, state)
        message = f"frame {view.frame} marked {ReviewState(state).value.replace('_', ' ')}"
        return Answer(self.step(view, 1).view if advance else view, message)

    def mark_all(self, view: View, state: ReviewState | str) -> Answer:
        project, video = self.project(view), self._video(view)
        review.mark(project, video, range(project.video(video).frame_count), state)
        return Answer(view, f"all frames marked {ReviewState(state).value.replace('_', ' ')}")

    def undo(self, view: View) -> Answer:
        done = self.project(view).undo()
        return Answer(view, f"undid: {done}" if done else "nothing to undo")

    def redo(self, view: View) -> Answer:
        done = self.project(view).redo()
        return Answer(view, f"redid: {done}" if done else "nothing to redo")

    # ------------------------------------------------------------------ pictures
    def frame_image(self, view: View, show_boxes: bool = False, show_labels: bool = True) -> np.ndarray | None:
        if not (view.project and view.video):
            return None
        return render.render_frame(self.project(view), view.video, view.frame, view.obj_id, show_boxes, show_labels)

    def curve_image(self, view: View, threshold: float = review.LOW_CONFIDENCE) -> np.ndarray | None:
        if not (view.project and view.video):
            return None
        return render.confidence_curve(self.project(view), view.video, view.obj_id, view.frame, threshold)

    def curve_click(self, view: View, x: float) -> Answer:
        count = self.project(view).video(self._video(view)).frame_count
        return self.goto(view, render.curve_frame(x, count))

    def filmstrip(self, view: View) -> list[tuple[np.ndarray, int]]:
        if not (view.project and view.video):
            return []
        return render.filmstrip(self.project(view), view.video)

    def status_line(self, view: View) -> str:
        """e.g. ``clip · frame 3 (0–47) · 12/48 frames reviewed · object 1 score 0.82 (model) · unreviewed``."""
        if not view.project:
            return "no project open"
        if not view.video:
            return f"project {view.project}: add a video"
        project = self.project(view)
        info = project.video(view.video)
        parts = [view.video, f"frame {view.frame} (0–{info.frame_count - 1})", review.progress_line(project, view.video)]
        if view.obj_id is not None:
            found = [m for m in project.mask_infos(view.video, view.obj_id) if m.frame == view.frame]
            if found:
                score = "" if found[0].score is None else f" score {found[0].score:.2f}"
                parts.append(f"object {view.obj_id}{score} ({found[0].origin})")
            else:
                parts.append(f"object {view.obj_id}: no mask on this frame")
        state = project.review_states(view.video)[view.frame]
        parts.append(state.value.replace("_", " "))
        return " · ".join(parts)

    # ------------------------------------------------------------------ export
    def export(self, view: View, fmt: str, reviewed_only: bool = False) -> Answer:
        """The project as a zip in ``fmt`` (``file``), and what went into it (``message``)."""
        path, note = export_mod.export_zip(self.project(view), fmt, self.config.downloads_dir, reviewed_only)
        return Answer(view, note, path)

    def preview(self, view: View, show_boxes: bool = False) -> Answer:
        """An mp4 of the current video with its masks drawn (``file``)."""
        path = export_mod.export_preview(self.project(view), self._video(view), self.config.downloads_dir,
                                         show_boxes)
        return Answer(view, "preview written", path)

    # ------------------------------------------------------------------ fine-tuning
    def finetune_start(self, view: View, options: FinetuneOptions = FinetuneOptions()) -> Answer:
        """Fine-tune this project's model on its reviewed frames, in another process (the studio stays usable)."""
        spec = self.model_settings(view)
        if spec.checkpoint is None:
            raise StudioError("no model to fine-tune: start the studio with --checkpoint FILE")
        if options.working_size is None:
            options = replace(options, working_size=spec.short_side)
        run_id = finetune.start_run(self.project(view), spec.checkpoint, spec.text_encoder, spec.device, options,
                                    locks_dir=self.config.projects_dir / LOCKS_FOLDER)
        return Answer(view, f"fine-tuning started (run {run_id})")

    def finetune_status(self, view: View) -> finetune.RunStatus | None:
        """The project's latest fine-tuning run, or None."""
        if not view.project:
            return None
        runs = finetune.list_runs(self.project(view))
        return runs[0] if runs else None

    def finetune_cancel(self, view: View) -> Answer:
        status = self.finetune_status(view)
        if status is None or status.state != "running":
            raise StudioError("no fine-tuning run is going on in this project")
        return Answer(view, finetune.cancel_run(self.project(view), status.run_id).message)

    def model_choices(self, view: View) -> list[tuple[str, str]]:
        """(label, checkpoint) of the models this project can use: the start-up one, then its fine-tuned ones."""
        if not view.project:
            return []
        return finetune.model_choices(self.project(view), self.config.model.checkpoint)

    def model_settings(self, view: View) -> RunSettings:
        """The model of ``view``'s project: the checkpoint chosen for it (e.g. a fine-tuned one), else the
        studio's start-up one."""
        chosen = self.library.load_settings(view.project).get("checkpoint") if view.project else None
        if chosen and Path(chosen).is_file():
            return replace(self.config.model, checkpoint=chosen)
        return self.config.model

    def select_model(self, view: View, checkpoint: str | None) -> Answer:
        """Use ``checkpoint`` for this project from now on (None: the studio's start-up model)."""
        if not view.project:
            raise StudioError("open a project first")
        if checkpoint and not Path(checkpoint).is_file():
            raise StudioError(f"checkpoint {checkpoint} does not exist")
        settings = self.library.load_settings(view.project)
        settings["checkpoint"] = checkpoint or None
        self.library.save_settings(view.project, settings)
        return Answer(view, f"model for project {view.project}: {describe(self.model_settings(view))}")

    # ------------------------------------------------------------------ internals
    def _model_state(self, view: View, create: bool) -> tuple[VideoPredictor, InferenceState | None]:
        """The predictor and the video's prepared frames and results (kept for the last few videos)."""
        spec = self.model_settings(view)
        predictor = self.models.get(spec)
        key = (view.project, self._video(view), spec)
        with self._lock:
            state = self._states.get(key)
            if state is not None:
                self._states.move_to_end(key)
        if state is None and create:
            state = load_state(self.project(view), key[1], predictor)
            with self._lock:
                self._states[key] = state
                while len(self._states) > KEPT_STATES:
                    self._states.popitem(last=False)
        return predictor, state

    def _segmented(self, view: View, obj: ObjectInfo) -> tuple[VideoPredictor, InferenceState]:
        predictor, state = self._model_state(view, create=False)
        if (state is None or obj.obj_id not in state.results or not obj.expressions
                or state.expressions.get(obj.obj_id) != obj.expressions[0]):
            raise StudioError(f"segment object {obj.obj_id} with its current expression first: its candidates "
                              f"come from that run")
        return predictor, state

    def _video(self, view: View) -> str:
        if not view.video:
            raise StudioError("add or choose a video first")
        return view.video

    def _remember(self, view: View) -> View:
        if view.project:
            self.library.save_view(view)
        return view

    def _valid(self, view: View) -> View:
        """``view`` with a video, object and frame that exist (falling back to the first ones)."""
        project = self.project(view)
        videos = [v.name for v in project.videos()]
        video = view.video if view.video in videos else (videos[0] if videos else None)
        if video is None:
            return self._remember(View(view.project))
        ids = [o.obj_id for o in project.objects(video)]
        obj_id = view.obj_id if view.obj_id in ids else (ids[0] if ids else None)
        count = project.video(video).frame_count
        frame = min(max(view.frame, 0), count - 1) if video == view.video else 0
        return self._remember(View(view.project, video, frame, obj_id))

    # ------------------------------------------------------------------ tracker (clicks, box, tracking)
    def use_tracker(self, settings: TrackerSettings | str) -> str:
        """Load the tracker ``settings`` names (``grabcut``, a Hugging Face id, a folder) for every session."""
        settings = TrackerSettings(settings) if isinstance(settings, str) else settings
        engine = load_engine(settings)
        self._tracker = (settings, engine)
        return f"tracker: {describe_tracker(settings)}"

    def tracker(self) -> tuple[TrackerSettings, Engine]:
        """The active tracker (GrabCut until :meth:`use_tracker` loads another)."""
        if getattr(self, "_tracker", None) is None:
            self.use_tracker(TrackerSettings())
        return self._tracker

    def tracker_line(self) -> str:
        """What the first screen says, e.g. ``tracker: SAM 2 (facebook/sam2.1-hiera-tiny, fp32 on cpu)``."""
        return f"tracker: {describe_tracker(self.tracker()[0])}"

    def click(self, view: View, points: Sequence[tuple[float, float, bool]] = (),
              box: Sequence[float] | None = None) -> Answer:
        """The current object's mask on this frame from all its clicks so far ``(x, y, positive)`` and/or a box
        ``(x0, y0, x1, y1)`` in frame pixels; stored with origin ``hand``."""
        obj = self.current_object(view)
        project = self.project(view)
        info = project.video(obj.video)
        prompt = tracking.make_prompt(points, box, info.width, info.height)
        mask = tracking.click(project, obj.video, obj.obj_id, view.frame, prompt, self.tracker()[1])
        return Answer(view, f"object {obj.obj_id} on frame {view.frame}: {int(mask.sum())} pixels from the tracker")

    def track(self, view: View, direction: str = "forward", max_frames: int | None = None
              ) -> Iterator[tracking.TrackProgress]:
        """Track the current object from this frame (``max_frames`` None: to the end); yields progress, and
        stopping (closing the iterator) keeps the frames made. One undoable edit."""
        obj = self.current_object(view)
        yield from tracking.track(self.project(view), obj.video, obj.obj_id, view.frame, self.tracker()[1],
                                  direction, max_frames)

    def refine(self, view: View, all_objects: bool = False, k: int = tracking.REFINE_FRAMES) -> Answer:
        """After Segment: the tracker re-draws the model's frames of the current object (or all objects) from
        its ``k`` most confident frames; a person's frames and the model's scores stay."""
        video = self._video(view)
        obj_ids = [o.obj_id for o in self.objects(view)] if all_objects else [self.current_object(view).obj_id]
        changed = tracking.refine(self.project(view), video, obj_ids, self.tracker()[1], int(k))
        return Answer(view, f"refined {changed} model frame(s) with the tracker")


def _category(text: str) -> str:
    text = " ".join((text or "").split())
    if len(text) > MAX_CATEGORY_CHARS:
        raise StudioError(f"category is {len(text)} characters long; keep it under {MAX_CATEGORY_CHARS}")
    return text or "others"


def _imported(info) -> str:
    count = info.frame_count
    fps = f" at {info.fps:.3g} fps" if info.fps and count > 1 else ""
    text = f"imported {info.name}: {count} frame{'s' if count != 1 else ''} of {info.width}x{info.height}{fps}"
    if count == 1 and Path(info.source_path).suffix.lower() in VIDEO_SUFFIXES:
        text += f"; {info.source_path} holds a single frame (a still image?)"
    return text
