"""Training checkpoints in the official layout (``model``, ``optimizer``, ``lr_scheduler``, ``epoch``, ``args``)
plus what an exact resume needs: the step inside the epoch, every process's RNG states, the AMP scaler and the
validation scores. Everything is tensors, numbers, strings, lists and dicts (``weights_only`` loading).

``epoch`` is the last completed epoch (-1 before the first), as the official code reads it; ``next_step`` is
the number of steps already done in epoch ``epoch + 1`` by a checkpoint written mid-epoch.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from referformer_core.checkpoint import read_checkpoint, save_checkpoint
from referformer_core.errors import CheckpointError
from referformer_core.referformer import ReferFormer
from train.config import TrainConfig
from train.distributed import gather_objects


@dataclass
class RunState:
    """Where a run stands, as a checkpoint stores it."""

    epoch: int = -1
    next_step: int = 0
    global_step: int = 0
    start_score: dict[str, float] | None = None
    best_score: dict[str, float] | None = None
    best_epoch: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)  # this session's steps; not checkpointed


def capture_rng() -> dict[str, Any]:
    """This process's torch RNG states (CPU and every CUDA device)."""
    return {"cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_rng(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["cpu"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_training_checkpoint(path: Path, model: ReferFormer, optimizer: torch.optim.Optimizer,
                             scheduler: torch.optim.lr_scheduler.LRScheduler, scaler: torch.amp.GradScaler,
                             config: TrainConfig, state: RunState, is_main: bool,
                             text_encoder_weights: str | None = None) -> None:
    """Write the checkpoint from the main process (atomically: temp file, then rename). Every process must
    call it: the RNG states of all processes are gathered. ``text_encoder_weights``: see ``save_checkpoint``."""
    rng = gather_objects(capture_rng())
    if not is_main:
        return
    tmp = path.with_name(path.name + ".tmp")
    save_checkpoint(model, tmp, text_encoder_weights, optimizer=optimizer.state_dict(),
                    lr_scheduler=scheduler.state_dict(),
                    epoch=state.epoch, args=config.to_namespace(), next_step=state.next_step,
                    global_step=state.global_step, rng=rng, scaler=scaler.state_dict(),
                    start_score=state.start_score, best_score=state.best_score, best_epoch=state.best_epoch)
    os.replace(tmp, path)


def restore_training_state(path: str | Path, optimizer: torch.optim.Optimizer,
                           scheduler: torch.optim.lr_scheduler.LRScheduler, scaler: torch.amp.GradScaler,
                           rank: int) -> RunState:
    """Load optimiser, scheduler, scaler and this process's RNG from a checkpoint of ours (the weights are
    loaded with the model); ``CheckpointError`` when it is not a resumable training checkpoint."""
    data = read_checkpoint(path)
    missing = [k for k in ("optimizer", "lr_scheduler", "epoch") if k not in data]
    if missing:
        raise CheckpointError(f"{path} cannot be resumed: it has no {', '.join(missing)} "
                              f"(use --pretrained to start from its weights)")
    try:
        optimizer.load_state_dict(data["optimizer"])
        scheduler.load_state_dict(data["lr_scheduler"])
    except (ValueError, KeyError, RuntimeError) as e:
        raise CheckpointError(f"{path}: optimiser state does not fit this model/options ({e})") from e
    if "scaler" in data:
        scaler.load_state_dict(data["scaler"])
    rng = data.get("rng")
    if rng:
        restore_rng(rng[rank] if rank < len(rng) else rng[0])
    return RunState(epoch=int(data["epoch"]), next_step=int(data.get("next_step", 0)),
                    global_step=int(data.get("global_step", 0)), start_score=data.get("start_score"),
                    best_score=data.get("best_score"), best_epoch=data.get("best_epoch"))
