"""Batch pre-annotation (``referformer annotate``): the model over many videos into a project the studio opens.

    summary = annotate(AnnotateOptions(videos="videos/", expressions="meta_expressions.json", out="project/",
                                       settings=RunSettings(checkpoint="r50_refytvos_joint.pth", device="auto")))

One process, or one per GPU under ``torchrun``: rank 0 reads the inputs, opens (or creates) the project and sends
every process its share of the videos (balanced by frame count); each process runs the model on its own device and
writes every finished video to its shard (``studio.batch_results``); rank 0 commits finished videos to the project
after each of its own and, once every process has written ``finished``, the rest. Waiting goes through the shard
files, not a collective, so a long run never meets a process-group timeout; the output folder must be shared by
all machines. Rerunning the command skips committed videos; a killed run loses at most the videos in flight.
"""
from __future__ import annotations

import json
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from annotations import Project, export_project
from annotations import rle as rle_mod
from annotations.store import DB_NAME
from referformer_core.errors import ReferFormerError
from referformer_core.predictor import VideoPredictor
from referformer_core.progress import end_progress, show_progress
from referformer_core.settings import RunSettings
from train.distributed import DistributedContext, init_distributed, shutdown_distributed

from .batch_inputs import ObjectSpec, VideoSource, balance, list_videos, read_object_specs, working_frames
from .batch_results import Ledger, ObjectAnnotation, VideoResult
from .tracker import Engine, Frames, TrackerSettings, load_engine
from .tracking import REFINE_FRAMES, LazyMasks, NothingToRefine, buffered_frames, refine_masks

REVIEW_FIRST = 5
Log = Callable[[str], None]


class BatchError(ReferFormerError):
    """The batch run cannot go on (reported by rank 0 to every process)."""


@dataclass
class AnnotateOptions:
    """What ``referformer annotate`` takes: the inputs, the project folder ``out``, the model's run ``settings``
    (device ``"auto"``: each process's own GPU under ``torchrun``, else the GPU or the CPU), every ``stride``-th
    frame, ``export`` ``(format, folder)`` at the end, and a ``tracker`` that re-draws every object's masks from
    its ``refine_frames`` most confident ones after each video's model pass (its device: each process's own)."""

    videos: str
    expressions: str
    out: str
    settings: RunSettings = field(default_factory=lambda: RunSettings(device="auto"))
    stride: int = 1
    export: tuple[str, str] | None = None
    progress: bool = True
    poll_seconds: float = 1.0
    tracker: TrackerSettings | None = None
    refine_frames: int = REFINE_FRAMES


@dataclass
class Summary:
    """The end of a run (rank 0): this run's videos and frames, failures, and the project's scores."""

    videos: int
    frames: int
    seconds: float
    processes: int
    failed: dict[str, str]
    project_videos: int
    mean_score: float
    review_first: list[tuple[str, float]] = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        out = [f"annotated {self.videos} videos, {self.frames} frames in {self.seconds:.1f} s "
               f"({self.frames_per_second:.2f} frames/s, {self.processes} process(es)); {len(self.failed)} failed",
               f"project: {self.project_videos} videos, mean score {self.mean_score:.3f}"]
        if self.review_first:
            out.append("review first (lowest mean score): "
                       + ", ".join(f"{name} {score:.3f}" for name, score in self.review_first))
        out += [f"failed: {name}: {reason}" for name, reason in sorted(self.failed.items())]
        return out


def annotate(options: AnnotateOptions, log: Log | None = None) -> Summary | None:
    """Run the batch pass; returns the summary on rank 0 (None on the other ranks). The tracker loads first, so
    a bad name or weights not downloaded stop the run before any model work (one-line ``StudioError``)."""
    ctx = init_distributed(options.settings.device)
    log = log or _stderr_log(ctx)
    try:
        engine = None if options.tracker is None else load_engine(replace(options.tracker, device=str(ctx.device)))
        predictor = VideoPredictor.from_settings(replace(options.settings, device=str(ctx.device)))
        return _run(options, ctx, predictor, log, engine)
    finally:
        shutdown_distributed()


def annotate_video(predictor: VideoPredictor, source: VideoSource, objects: list[ObjectSpec], stride: int = 1,
                  on_frames: Callable[[int, int], None] | None = None, engine: Engine | None = None,
                  refine_frames: int = REFINE_FRAMES) -> VideoResult:
    """Run the model on one video at the working size. Each object keeps the expression with the best mean score;
    its masks (RLE of ``[h, w]`` bool) and per-frame scores ``[T]`` go in the result. ``on_frames(done, total)``.
    With an ``engine``, the tracker then re-draws every object's masks (all objects in one run) from its
    ``refine_frames`` most confident frames (:func:`studio.tracking.refine_masks`); the scores stay the model's."""
    start = time.perf_counter()
    state = predictor.init_state(working_frames(source, predictor.settings.short_side, stride))
    total = state.num_frames
    ids: dict[int, list[int]] = {}
    for i, obj in enumerate(objects):
        for text in obj.expressions:
            pid = sum(len(v) for v in ids.values()) + 1
            predictor.add_expression(state, pid, text)
            ids.setdefault(i, []).append(pid)
    predictor.run(state, None if on_frames is None else (lambda d, n: on_frames(round(total * d / n), total)))
    used: dict[int, int] = {}
    for i, pids in ids.items():
        means = [float(predictor.frame_scores(state, p).mean()) for p in pids]
        used[i] = max(range(len(pids)), key=lambda k: means[k])
        for k, pid in enumerate(pids):
            if k != used[i]:
                predictor.remove_object(state, pid)
    counts: dict[int, list[str]] = {ids[i][used[i]]: [""] * total for i in ids}
    for t, obj_ids, masks in predictor.propagate_in_video(state):
        for pid, mask in zip(obj_ids, masks):
            counts[pid][t] = rle_mod.encode(mask)["counts"]
    h, w = state.orig_size
    if engine is not None:
        counts = _refine(engine, refine_frames, buffered_frames(("annotate", source.name, stride), state.frames),
                         counts, {pid: predictor.frame_scores(state, pid) for pid in counts}, (h, w))
    results = [ObjectAnnotation(obj.obj_id, obj.category, list(obj.expressions), used[i],
                            [float(s) for s in predictor.frame_scores(state, ids[i][used[i]])], counts[ids[i][used[i]]])
               for i, obj in enumerate(objects)]
    return VideoResult(source.name, asdict(source), stride, predictor.settings.short_side, source.fps(stride), h, w,
                       source.frame_names(stride), [t * stride for t in range(total)],
                       time.perf_counter() - start, results)


def _refine(engine: Engine, k: int, frames: Frames, counts: dict[int, list[str]], scores: dict[int, np.ndarray],
            size: tuple[int, int]) -> dict[int, list[str]]:
    """Every object's per-frame RLE counts re-drawn by the tracker over ``frames`` (the video at the working
    size: the model's frames are already that size, so its buffer is the video the masks are drawn on). A video
    where the model found nothing keeps its (empty) masks."""
    def read(pid: int, t: int) -> np.ndarray:
        return rle_mod.decode({"size": list(size), "counts": counts[pid][t]})

    masks = {pid: LazyMasks(range(len(c)), lambda t, pid=pid: read(pid, t)) for pid, c in counts.items()}
    try:
        refined = refine_masks(frames, masks, scores, engine, k)
    except NothingToRefine:
        return counts
    return {pid: [rle_mod.encode(refined[pid][t])["counts"] if t in refined[pid] else c for t, c in enumerate(cs)]
            for pid, cs in counts.items()}


def _run(options: AnnotateOptions, ctx: DistributedContext, predictor: VideoPredictor, log: Log,
         engine: Engine | None = None) -> Summary | None:
    start = time.perf_counter()
    project = None
    plan: dict[str, Any]
    if ctx.is_main:
        try:
            project, plan = _plan(options, ctx.world_size, log)
        except ReferFormerError as e:
            _broadcast({"error": str(e)})
            raise
    plan = _broadcast(plan if ctx.is_main else None)
    if "error" in plan:
        raise BatchError(plan["error"])
    ledger = Ledger(options.out)
    share = plan["shares"][ctx.rank]
    progress = _Progress(ctx, ledger, plan, log, options.progress)
    failed: dict[str, str] = {}
    for job in share:
        source = VideoSource(**job["source"])
        try:
            result = annotate_video(predictor, source, [ObjectSpec(**o) for o in job["objects"]], options.stride,
                                   on_frames=lambda done, total: progress.frames(done), engine=engine,
                                   refine_frames=options.refine_frames)
        except ReferFormerError as e:
            failed[source.name] = str(e)
            log(f"skipped {source.name}: {e}")
            progress.video_done(0, failed)
            continue
        ledger.write_result(ctx.rank, result)
        progress.video_done(result.num_frames, failed)
        if project is not None:
            ledger.merge(project)
    progress.finish(failed)
    if project is None:
        return None
    try:
        return _finish(options, ctx, ledger, project, plan, start, log)
    finally:
        project.close()


def _plan(options: AnnotateOptions, world_size: int, log: Log) -> tuple[Project, dict[str, Any]]:
    """Rank 0: read the inputs, open or create the project, recover a killed run, split the remaining videos."""
    sources = {s.name: s for s in list_videos(options.videos)}
    objects = read_object_specs(options.expressions)
    out = Path(options.out)
    project = Project.open(out) if (out / DB_NAME).is_file() else Project.create(out)
    ledger = Ledger(out)
    for name in ledger.recover(project):
        log(f"{name}: removed the half-written copy a killed run left; it is committed again")
    done, pending = ledger.committed(), ledger.pending()
    in_project = {v.name for v in project.videos()}
    missing = sorted(set(objects) - set(sources))
    if missing:
        log(f"expressions for {len(missing)} video(s) not found in {options.videos}: {_names(missing)}")
    silent = sorted(set(sources) - set(objects))
    if silent:
        log(f"{len(silent)} video(s) have no expression and are skipped: {_names(silent)}")
    counts: dict[str, int] = {}
    failed: dict[str, str] = {}
    for name in sorted(set(sources) & set(objects)):
        if name in done or name in pending:
            continue
        if name in in_project:
            log(f"{name}: already in the project (not from a batch run), skipped")
            continue
        try:
            counts[name] = sources[name].count_frames(options.stride)
        except ReferFormerError as e:
            failed[name] = str(e)
            log(f"skipped {name}: {e}")
    finished = sum(1 for name in set(sources) & set(objects) if name in done or name in pending)
    if finished:
        log(f"{finished} video(s) already finished by an earlier run, skipped")
    shares = [[{"source": asdict(sources[n]), "objects": [asdict(o) for o in objects[n]], "frames": counts[n]}
               for n in share] for share in balance(counts, world_size)]
    return project, {"run": secrets.token_hex(6), "shares": shares, "failed": failed,
                     "videos": len(counts), "frames": sum(counts.values())}


def _finish(options: AnnotateOptions, ctx: DistributedContext, ledger: Ledger, project: Project,
            plan: dict[str, Any], start: float, log: Log) -> Summary:
    """Rank 0: wait for every process's ``finished`` status, merging as videos arrive; export; summarise."""
    statuses = _wait_for_all(ctx, ledger, project, plan["run"], options.poll_seconds)
    ledger.merge(project)
    seconds = time.perf_counter() - start
    failed = dict(plan["failed"])
    for status in statuses:
        failed.update(status["failed"])
    committed = ledger.committed()
    scores = sorted((info["mean_score"], name) for name, info in committed.items())
    summary = Summary(
        videos=sum(s["videos"] for s in statuses), frames=sum(s["frames"] for s in statuses), seconds=seconds,
        processes=ctx.world_size, failed=failed, project_videos=len(project.videos()),
        mean_score=sum(s for s, _ in scores) / len(scores) if scores else 0.0,
        review_first=[(name, score) for score, name in scores[:REVIEW_FIRST]])
    if options.export:
        fmt, folder = options.export
        export_project(project, fmt, folder)
        log(f"exported the project as {fmt} to {folder}")
    (ledger.root / "summary.json").write_text(json.dumps({**asdict(summary), "fps": summary.frames_per_second}))
    return summary


def _wait_for_all(ctx: DistributedContext, ledger: Ledger, project: Project, run: str,
                  poll_seconds: float) -> list[dict[str, Any]]:
    while True:
        statuses = [ledger.status(rank) for rank in range(ctx.world_size)]
        if all(s is not None and s["run"] == run and s["finished"] for s in statuses):
            return statuses
        ledger.merge(project)
        time.sleep(poll_seconds)


def _broadcast(obj: Any) -> Any:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _names(names: list[str], limit: int = 10) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _stderr_log(ctx: DistributedContext) -> Log:
    prefix = f"[rank {ctx.rank}] " if ctx.distributed else ""

    def log(message: str) -> None:
        print(f"\n{prefix}{message}" if sys.stderr.isatty() else f"{prefix}{message}", file=sys.stderr, flush=True)

    return log


class _Progress:
    """Videos and frames done by this process (a status file for rank 0) and a progress line on stderr; rank 0's
    line adds the totals of every process."""

    def __init__(self, ctx: DistributedContext, ledger: Ledger, plan: dict[str, Any], log: Log, show: bool) -> None:
        self.ctx, self.ledger, self.run, self.log, self.show = ctx, ledger, plan["run"], log, show
        share = plan["shares"][ctx.rank]
        self.total_videos, self.total_frames = len(share), sum(j["frames"] for j in share)
        self.all_videos, self.all_frames = plan["videos"], plan["frames"]
        self.videos = self.frames_done = self.in_video = 0
        self.start = self.last = time.perf_counter()
        self.tty = sys.stderr.isatty()
        self.width = 0
        self._status(False, {})

    def frames(self, done: int) -> None:
        self.in_video = done
        if self.show and self.tty and time.perf_counter() - self.last > 0.5:
            self.last = time.perf_counter()
            show_progress(self._line())

    def video_done(self, frames: int, failed: dict[str, str]) -> None:
        self.videos, self.frames_done, self.in_video = self.videos + 1, self.frames_done + frames, 0
        self._status(False, failed)
        if self.show:
            show_progress(self._line())

    def finish(self, failed: dict[str, str]) -> None:
        self._status(True, failed)
        if self.show:
            end_progress()

    def _status(self, finished: bool, failed: dict[str, str]) -> None:
        self.ledger.write_status(self.ctx.rank, {
            "run": self.run, "finished": finished, "videos": self.videos - len(failed), "frames": self.frames_done,
            "failed": failed, "seconds": time.perf_counter() - self.start})

    def _line(self) -> str:
        line = self._text()
        self.width = max(self.width, len(line))
        return line.ljust(self.width) if self.tty else line

    def _text(self) -> str:
        frames = self.frames_done + self.in_video
        fps = frames / max(time.perf_counter() - self.start, 1e-9)
        line = (f"{'rank %d: ' % self.ctx.rank if self.ctx.distributed else ''}videos {self.videos}/"
                f"{self.total_videos} frames {frames}/{self.total_frames} ({fps:.2f} frames/s)")
        if self.ctx.is_main and self.ctx.distributed:
            statuses = [self.ledger.status(r) for r in range(self.ctx.world_size)]
            mine = [s for s in statuses if s is not None and s["run"] == self.run]
            videos = sum(s["videos"] + len(s["failed"]) for s in mine)
            line += (f" | all: videos {videos}/{self.all_videos} "
                     f"frames {sum(s['frames'] for s in mine)}/{self.all_frames}")
        return line
