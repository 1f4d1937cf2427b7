"""Fine-tune runs of a project: ``python -m train`` on its reviewed labels, in a separate process.

API::

    run_id = start_run(project, checkpoint, text_encoder, device, FinetuneOptions(epochs=4))
    status = run_status(project, run_id)      # poll: step / total_steps, progress, log tail, J&F, message
    cancel_run(project, run_id)               # kills the run's process group
    list_runs(project)                        # newest first
    model_choices(project, base_checkpoint)   # (label, path): the base first, then each finished run's best

A run lives in ``<project folder>/runs/<run id>/``::

    run.json             what was started (checkpoint, device, options, videos held out, total steps, pid)
    data/                the reviewed frames exported in the Ref-Youtube-VOS layout (the run's --data)
    train.log            the process's stdout and stderr
    metrics.jsonl, report.json, checkpoint.pth, checkpoint_best.pth   written by ``python -m train --out``
    cancelled            present once the run was cancelled
    .alive               flock-ed by the training process for as long as it (or a child of it) lives

Everything about a run is read back from that folder, so any studio process or browser tab sees the same state.

Held-out score: training holds out whole videos (``train.data.split_by_video``, ``val_fraction`` of the videos
with reviewed frames, at least one) and reports the J&F of the starting and of the best checkpoint on them. A
project with fewer than two such videos is refused: training on one video would leave no held-out score, and a
fine-tuned model without one cannot honestly be compared with the model it started from.

One run per device: ``<locks_dir>/<device>.lock`` is ``flock``-ed by the training process (the lock's descriptor
is passed to it), so the lock is free exactly when that process and its children are gone, whichever process
started it — no stale pid to clean up. The file also holds the run's project, id and pid for the refusal message.
POSIX only (``fcntl``, process groups).
"""
from __future__ import annotations

import fcntl
import json
import math
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from annotations import AnnotationError, Dataset, Project
from annotations import rle
from annotations.ytvos import export_ytvos
from train.data import TrainingDataError, clip_count, read_expressions, split_by_video, steps_per_epoch

from .errors import StudioError

RUNS_FOLDER = "runs"
DEFAULT_LOCKS_DIR = Path(tempfile.gettempdir()) / f"referformer-studio-{os.getuid()}" / "locks"
LOG_TAIL_CHARS = 4000
CANCEL_WAIT_S = 10.0

RunState = Literal["running", "finished", "failed", "cancelled"]

_processes: dict[Path, subprocess.Popen] = {}
_processes_lock = threading.Lock()


@dataclass(frozen=True)
class FinetuneOptions:
    """How to fine-tune; defaults suit a few reviewed videos and an already trained checkpoint.

    ``lr`` is ten times below the official recipe (the model is trained already and the data is small), the
    backbone ten times below that, the text encoder frozen (a handful of expressions would only overfit it), no
    learning-rate drop. ``val_fraction`` of the videos (at least one) is held out for J&F. ``max_steps`` stops
    early (then the held-out J&F is only measured at epoch ends reached). ``working_size`` is the short side the
    model segments at (the studio passes its model's): training clips and the held-out scoring use it, the long
    side capped at 16:9 (``None``: the official multi-scale recipe). ``extra`` is appended to the
    ``python -m train`` command line for options not listed here (e.g. ``--train-scales 64 --max-size 96``).
    """

    epochs: int = 4
    max_steps: int | None = None
    batch_size: int = 1
    num_frames: int = 5
    lr: float = 1e-5
    lr_backbone: float = 1e-6
    freeze_text_encoder: bool = True
    val_fraction: float = 0.2
    seed: int = 42
    working_size: int | None = None
    extra: tuple[str, ...] = ()


@dataclass
class RunStatus:
    """Where a run stands. ``step`` counts optimiser steps (``total_steps`` planned), ``epoch`` is the epoch
    being trained (1-based; 0 while the starting checkpoint is evaluated), ``progress`` in [0, 1]. ``start_jf``
    and ``best_jf`` are held-out J&F in [0, 1] once measured; ``checkpoint`` is the best checkpoint of a finished
    run, ``held_out_videos`` the videos its J&F is measured on. ``message`` is one readable line for the UI."""

    run_id: str
    state: RunState
    device: str
    step: int
    total_steps: int | None
    epoch: int
    epochs: int
    progress: float
    start_jf: float | None
    best_jf: float | None
    checkpoint: Path | None
    held_out_videos: tuple[str, ...]
    log_tail: str
    message: str


def runs_folder(project: Project) -> Path:
    return project.folder / RUNS_FOLDER


def start_run(project: Project, checkpoint: str | Path, text_encoder: str, device: str,
              options: FinetuneOptions = FinetuneOptions(), locks_dir: Path | None = None) -> str:
    """Export ``project``'s reviewed frames and start ``python -m train`` on them from ``checkpoint``.

    Returns the run id at once (the training runs in its own process group). ``StudioError`` (one line) when the
    checkpoint is missing, fewer than two videos have reviewed frames with objects, the options are unusable, or
    a run is already active on ``device`` (in any studio process; ``locks_dir`` holds the device locks).
    """
    checkpoint = Path(checkpoint).expanduser()
    if not checkpoint.is_file():
        raise StudioError(f"checkpoint {checkpoint} does not exist: choose the model to start from")
    _check_options(options)
    dataset = project.dataset(reviewed_only=True)
    usable = [v for v in dataset.videos if v.frames and v.objects]
    if not usable:
        raise StudioError("nothing to fine-tune on: no reviewed frames with objects yet (mark frames reviewed)")
    usable = [v for v in usable if any(rle.area(m) > 0 for o in v.objects for m in o.masks.values())]
    if not usable:
        raise StudioError("nothing to fine-tune on: the objects have no mask on the reviewed frames (segment or "
                          "paint them first)")
    if len(usable) < 2:
        raise StudioError(f"fine-tuning needs reviewed frames in at least 2 videos, one to train on and one held "
                          f"out to measure J&F; only {usable[0].name} has some")
    device_name = _device_name(device)
    lock = _DeviceLock(locks_dir or DEFAULT_LOCKS_DIR, device_name)
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    folder = runs_folder(project) / run_id
    lock.acquire(project, run_id)
    try:
        folder.mkdir(parents=True)
        try:
            process = _start(folder, dataset, checkpoint, text_encoder, device, options,
                             {"run_id": run_id, "project": project.folder.name, "device_lock": device_name}, lock.fd)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        lock.note(project, run_id, process.pid)
    finally:
        lock.release()
    with _processes_lock:
        _processes[folder] = process
    threading.Thread(target=_reap, args=(folder, process), name=f"finetune-{run_id}", daemon=True).start()
    return run_id


def run_status(project: Project, run_id: str) -> RunStatus:
    """The state of run ``run_id`` of ``project``, read from its folder (``StudioError`` for an unknown run)."""
    folder = _run_folder(project, run_id)
    info = _read_json(folder / "run.json") or {}
    options = info.get("options", {})
    epochs = int(options.get("epochs", 0))
    total = info.get("total_steps")
    records = _read_metrics(folder / "metrics.jsonl")
    report = _read_json(folder / "report.json")
    step = max((int(r.get("step", 0)) for r in records), default=0)
    trained = [r for r in records if r.get("kind") in ("train", "epoch")]
    epoch = int(trained[-1]["epoch"]) + 1 if trained else (1 if records else 0)
    scores = [r["J&F"] for r in records if r.get("kind") in ("start", "epoch") and "J&F" in r]
    start_jf = next((r["J&F"] for r in records if r.get("kind") == "start" and "J&F" in r), None)
    best_jf = max(scores) if scores else None
    if _alive(folder):
        state: RunState = "running"
    elif report is not None:
        state = "finished"
    elif (folder / "cancelled").exists():
        state = "cancelled"
    else:
        state = "failed"
    if report is not None:
        step = int(report.get("global_step", step))
        start_jf = _jf(report.get("start_score"))
        best_jf = _jf(report.get("best_score"))
    best_file = folder / "checkpoint_best.pth"
    checkpoint = best_file if state == "finished" and best_file.is_file() else None
    progress = 1.0 if state == "finished" else (min(step / total, 1.0) if total else 0.0)
    log_tail = _tail(folder / "train.log")
    status = RunStatus(run_id, state, str(info.get("device", "?")), step, total, epoch, epochs, progress,
                       start_jf, best_jf, checkpoint, tuple(info.get("held_out_videos", ())), log_tail, "")
    status.message = _message(status, report, folder)
    return status


def cancel_run(project: Project, run_id: str) -> RunStatus:
    """Stop run ``run_id`` (SIGTERM to its process group, SIGKILL after ``CANCEL_WAIT_S``) and wait until it is
    gone; a run that is not running is left as it is. Returns its status."""
    folder = _run_folder(project, run_id)
    info = _read_json(folder / "run.json") or {}
    pid = info.get("pid")
    if not _alive(folder) or pid is None:
        return run_status(project, run_id)
    _write_json(folder / "cancelled", {"time": time.time()})
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(int(pid), sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + CANCEL_WAIT_S
        while _alive(folder) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _alive(folder):
            break
    with _processes_lock:
        process = _processes.pop(folder, None)
    if process is not None:
        process.wait(timeout=CANCEL_WAIT_S)
    return run_status(project, run_id)


def list_runs(project: Project) -> list[RunStatus]:
    """Every run of ``project``, newest first."""
    folder = runs_folder(project)
    if not folder.is_dir():
        return []
    ids = sorted((p.name for p in folder.iterdir() if (p / "run.json").is_file()), reverse=True)
    return [run_status(project, run_id) for run_id in ids]


def model_choices(project: Project, base_checkpoint: str | None) -> list[tuple[str, str]]:
    """``(label, checkpoint path)`` of the models this project can use: ``base_checkpoint`` (the studio's
    start-up model) first, then each finished run's ``checkpoint_best.pth``, newest first, with its J&F."""
    choices = []
    if base_checkpoint:
        choices.append((f"{Path(base_checkpoint).name} (studio start-up model)", str(base_checkpoint)))
    for status in list_runs(project):
        if status.state != "finished" or status.checkpoint is None:
            continue
        if status.best_jf is None:
            label = f"fine-tuned {status.run_id} (no held-out score)"
        elif status.start_jf is not None and status.best_jf <= status.start_jf:
            label = f"fine-tuned {status.run_id}: J&F {_pct(status.best_jf)}, no better than its start"
        else:
            start = "" if status.start_jf is None else f" (start {_pct(status.start_jf)})"
            label = f"fine-tuned {status.run_id}: J&F {_pct(status.best_jf)}{start}"
        choices.append((label, str(status.checkpoint)))
    return choices


# ---------------------------------------------------------------------------------------------- internals
class _DeviceLock:
    """``<dir>/<device>.lock``, exclusively ``flock``-ed by whoever trains on the device (see module doc)."""

    def __init__(self, folder: Path, device: str) -> None:
        self.device = device
        self.path = Path(folder) / f"{device.replace(':', '-')}.lock"
        self.fd: int = -1

    def acquire(self, project: Project, run_id: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = _read_json(self.path) or {}
            who = (f" (project {holder['project']}, run {holder['run_id']})"
                   if holder.get("project") and holder.get("run_id") else "")
            raise StudioError(f"a fine-tune run is already active on {self.device}{who}: wait for it to finish "
                              f"or cancel it") from None
        self.fd = fd
        self.note(project, run_id, os.getpid())

    def note(self, project: Project, run_id: str, pid: int) -> None:
        """Record who holds the lock (read only for messages; the flock is what counts)."""
        data = json.dumps({"project": project.folder.name, "run_id": run_id, "pid": pid,
                           "folder": str(project.folder)}).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)

    def release(self) -> None:
        """Close this process's descriptor; the lock stays held by the training process that inherited it."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _start(folder: Path, dataset: Dataset, checkpoint: Path, text_encoder: str, device: str, options: FinetuneOptions,
           info: dict[str, Any], lock_fd: int) -> subprocess.Popen:
    """Export, plan, write ``run.json`` and launch the training process, which inherits ``lock_fd`` and the
    run's ``.alive`` lock (taken here first, so the run reads as running from the start)."""
    alive = os.open(folder / ".alive", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(alive, fcntl.LOCK_EX | fcntl.LOCK_NB)
        plan = _prepare(dataset, folder, options)
        info = {**info, "checkpoint": str(checkpoint.resolve()), "text_encoder": text_encoder, "device": device,
                "options": asdict(options), "started": time.time(), **plan}
        _write_json(folder / "run.json", info)
        process = _launch(folder, checkpoint, text_encoder, device, options, (lock_fd, alive))
    finally:
        os.close(alive)
    _write_json(folder / "run.json", {**info, "pid": process.pid})
    return process


def _reap(folder: Path, process: subprocess.Popen) -> None:
    """Wait for a run's process (no zombie is left) and forget it."""
    process.wait()
    with _processes_lock:
        _processes.pop(folder, None)


def _check_options(options: FinetuneOptions) -> None:
    if options.epochs < 1:
        raise StudioError("fine-tuning needs at least 1 epoch")
    if options.max_steps is not None and options.max_steps < 1:
        raise StudioError("max steps must be at least 1 (or empty for whole epochs)")
    if options.batch_size < 1 or options.num_frames < 1:
        raise StudioError("batch size and frames per clip must be at least 1")
    if not 0 < options.val_fraction < 1:
        raise StudioError("the held-out fraction must be between 0 and 1: fine-tuning always holds out videos")
    if not (options.lr > 0 and options.lr_backbone >= 0):
        raise StudioError("learning rates must be positive")


def _device_name(device: str) -> str:
    """The device a run would use, as a lock name: ``auto`` resolved, ``cuda`` as ``cuda:0``."""
    text = (device or "auto").strip().lower()
    if text == "auto":
        import torch

        text = "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cuda":
        text = "cuda:0"
    if text != "cpu" and not (text.startswith("cuda:") and text[5:].isdigit()) and text != "mps":
        raise StudioError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N")
    return text


def _prepare(dataset: Dataset, folder: Path, options: FinetuneOptions) -> dict[str, Any]:
    """Export ``dataset`` to ``folder/data`` and plan the run: the videos held out and the steps to train."""
    data = folder / "data"
    try:
        export_ytvos(dataset, data)
        records = read_expressions(data)
    except (AnnotationError, TrainingDataError) as exc:
        raise StudioError(f"cannot export the reviewed labels for training: {exc}") from None
    train, held_out = split_by_video(records, options.val_fraction, options.seed)
    if not train or not held_out:
        raise StudioError("fine-tuning needs reviewed frames with expressions in at least 2 videos")
    items = clip_count(train, options.num_frames)
    per_epoch = steps_per_epoch(items, options.batch_size)
    if per_epoch == 0:
        raise StudioError(f"the reviewed labels give {items} training clip(s), fewer than one batch of "
                          f"{options.batch_size}")
    total = per_epoch * options.epochs
    if options.max_steps is not None:
        total = min(total, options.max_steps)
    return {"train_videos": sorted({r.video for r in train}), "held_out_videos": sorted({r.video for r in held_out}),
            "steps_per_epoch": per_epoch, "total_steps": total}


def _launch(folder: Path, checkpoint: Path, text_encoder: str, device: str, options: FinetuneOptions,
            keep_fds: tuple[int, ...]) -> subprocess.Popen:
    """``python -m train`` on ``folder/data`` into ``folder``, in a new session, logging to ``train.log``."""
    command = [sys.executable, "-m", "train", "--data", str(folder / "data"), "--out", str(folder),
               "--pretrained", str(checkpoint.resolve()), "--text-encoder", text_encoder, "--device", device,
               "--val-fraction", str(options.val_fraction), "--seed", str(options.seed),
               "--epochs", str(options.epochs), "--batch-size", str(options.batch_size),
               "--num-frames", str(options.num_frames), "--lr", str(options.lr),
               "--lr-backbone", str(options.lr_backbone), "--lr-drop", "--log-every-steps", "1", "--no-progress"]
    if options.max_steps is not None:
        command += ["--max-steps", str(options.max_steps)]
    if options.freeze_text_encoder:
        command.append("--freeze-text-encoder")
    if options.working_size:
        size = options.working_size
        command += ["--train-scales", str(size), "--max-size", str(math.ceil(size * 16 / 9)),
                    "--eval-short-side", str(size)]
    command += list(options.extra)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with (folder / "train.log").open("ab") as log:
        log.write(("$ " + " ".join(command) + "\n").encode())
        log.flush()
        try:
            return subprocess.Popen(command, cwd=folder, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True, pass_fds=keep_fds)
        except OSError as exc:
            raise StudioError(f"cannot start the training process: {exc}") from None


def _alive(folder: Path) -> bool:
    """Whether the run's training process (or a child of it) still holds ``.alive``."""
    try:
        fd = os.open(folder / ".alive", os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _run_folder(project: Project, run_id: str) -> Path:
    folder = runs_folder(project) / str(run_id)
    if not run_id or "/" in run_id or run_id.startswith(".") or not (folder / "run.json").is_file():
        raise StudioError(f"no fine-tune run {run_id!r} in this project")
    return folder


def _message(status: RunStatus, report: dict[str, Any] | None, folder: Path) -> str:
    scores = ""
    if status.start_jf is not None:
        scores = f"; held-out J&F {_pct(status.start_jf)} at start"
        if status.best_jf is not None and status.best_jf > status.start_jf:
            scores += f", best {_pct(status.best_jf)}"
    steps = f"step {status.step}/{status.total_steps if status.total_steps is not None else '?'}"
    if status.state == "running":
        if (folder / "cancelled").exists():
            return f"cancelling run {status.run_id}"
        if status.start_jf is None and status.step == 0:
            held = ", ".join(status.held_out_videos)
            return f"run {status.run_id}: loading and scoring the starting checkpoint on held-out {held}"
        return f"run {status.run_id}: {steps}, epoch {status.epoch}/{status.epochs}{scores}"
    if status.state == "cancelled":
        return f"run {status.run_id} cancelled at {steps}"
    if status.state == "failed":
        return f"run {status.run_id} failed: {_last_error(status.log_tail)}"
    if status.best_jf is None:
        return f"run {status.run_id} finished after {status.step} steps (no held-out score)"
    if report and report.get("best_epoch") is None:
        return (f"run {status.run_id} finished: held-out J&F {_pct(status.best_jf)}, no better than the starting "
                f"checkpoint (keep using it)")
    return (f"run {status.run_id} finished: held-out J&F {_pct(status.start_jf)} -> {_pct(status.best_jf)} "
            f"(epoch {int(report['best_epoch']) + 1}, on {', '.join(status.held_out_videos)}); its model can now "
            f"be selected")


def _last_error(log_tail: str) -> str:
    """The reason a run failed: the last ``...Error: message`` line (a worker's traceback ends with the real one),
    else the training command's ``error:`` line, else the last line of the log."""
    lines = [line.strip() for line in log_tail.splitlines() if line.strip()]
    raised = [line for line in lines if re.match(r"^[\w.]*(Error|Exception): ", line)]
    errors = [line for line in lines if line.startswith("error:")]
    if raised:
        line = raised[-1].split(": ", 1)[1]
    elif errors:
        line = errors[-1][len("error:"):].strip()
    else:
        line = lines[-1] if lines else "no output (see train.log)"
    return line if len(line) <= 240 else line[:237] + "..."


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def _jf(score: Any) -> float | None:
    return float(score["J&F"]) if isinstance(score, dict) and "J&F" in score else None


def _tail(path: Path, chars: int = LOG_TAIL_CHARS) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - chars))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    """``metrics.jsonl``'s records; a line being written (not yet valid json) is skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps(data, indent=2), encoding="utf-8")
    partial.replace(path)
