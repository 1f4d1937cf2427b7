"""One training step, one epoch, the optimiser and schedule of the official recipe, and held-out J&F."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import Tensor, nn

from referformer_core.errors import ReferFormerError
from referformer_core.pipeline import segment_video
from referformer_core.settings import NO_LIMIT, WINDOW, RunSettings
from referformer_core.referformer import ReferFormer
from referformer_core.text import tokenize
from train import metrics
from train.config import TrainConfig
from train.data import ClipBatch, ExpressionRecord, read_clip
from train.distributed import gather_objects, mean_over_processes
from train.losses import LOSS_NAMES, SetCriterion, build_weight_dict, weighted_total
from train.matcher import HungarianMatcher

PARAM_GROUPS = ("rest", "backbone", "text_encoder", "linear_proj")
REFINER_GROUP = "sentence_refiner"
"""A fifth group, after the official four, only for models with a ``SentenceRefiner`` (ours)."""


class TrainingDivergedError(ReferFormerError, FloatingPointError):
    """The loss became NaN or infinite (a learning rate too high, bad data): training stops."""


class TrainingModel(nn.Module):
    """Text encoding + ReferFormer in one ``forward``, so DDP sees every parameter used in its forward."""

    def __init__(self, model: ReferFormer) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor, frames: Tensor, image_sizes: Tensor,
                padding_mask: Tensor) -> dict:
        """Token ids/mask ``[B, L]``, frames ``[B, T, 3, H, W]`` -> the model outputs with ``aux_outputs``."""
        text = self.model.encode_text(input_ids, attention_mask)
        return self.model(frames, text, image_sizes, padding_mask, all_layers=True)


def param_group_of(name: str, config: TrainConfig) -> str:
    """Which of ``PARAM_GROUPS`` (official keyword matching) or ``REFINER_GROUP`` the parameter ``name`` belongs to."""
    if name.startswith(f"{REFINER_GROUP}."):
        return REFINER_GROUP
    if "backbone.0" in name:
        return "backbone"
    if "text_encoder" in name:
        return "text_encoder"
    if any(key in name for key in config.lr_linear_proj_names):
        return "linear_proj"
    return "rest"


def build_optimizer(model: ReferFormer, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the four official parameter groups (in the official order, so optimiser states transfer),
    then ``REFINER_GROUP`` at ``lr_sentence_refiner`` when the model has one; a frozen text encoder gets
    ``requires_grad=False`` and an empty group. A ``CandidateRanker`` is frozen too: no loss here reaches it
    (``python -m train.bundled.ranker`` trains it on the model's own candidates)."""
    if config.freeze_text_encoder:
        model.text_encoder.requires_grad_(False)
    if model.candidate_ranker is not None:
        model.candidate_ranker.requires_grad_(False)
    lrs = {"rest": config.lr, "backbone": config.lr_backbone, "text_encoder": config.lr_text_encoder,
           "linear_proj": config.lr * config.lr_linear_proj_mult, REFINER_GROUP: config.lr_sentence_refiner}
    names = PARAM_GROUPS + ((REFINER_GROUP,) if model.sentence_refiner is not None else ())
    groups: dict[str, list[Tensor]] = {g: [] for g in names}
    for name, param in model.named_parameters():
        if param.requires_grad:
            groups[param_group_of(name, config)].append(param)
    return torch.optim.AdamW([{"params": groups[g], "lr": lrs[g]} for g in names], lr=config.lr,
                             weight_decay=config.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.MultiStepLR:
    """Learning rates divided by 10 at each epoch of ``lr_drop`` (stepped once per epoch)."""
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, list(config.lr_drop))


def build_criterion(config: TrainConfig, num_decoder_layers: int) -> SetCriterion:
    """Hungarian matcher and losses with the configured weights (official: class 2, L1 5, GIoU 2, mask 2,
    dice 5), auxiliary losses at every decoder layer."""
    weights = dict(cls=config.loss_class, bbox=config.loss_bbox, giou=config.loss_giou, mask=config.loss_mask,
                   dice=config.loss_dice)
    matcher = HungarianMatcher(cost_class=weights["cls"], cost_bbox=weights["bbox"], cost_giou=weights["giou"],
                               cost_mask=weights["mask"], cost_dice=weights["dice"])
    return SetCriterion(matcher, weight_dict=build_weight_dict(num_decoder_layers, aux_loss=config.aux_loss,
                                                               **weights))


def _to_float(outputs: dict) -> dict:
    return {k: [_to_float(a) for a in v] if k == "aux_outputs" else v.float() for k, v in outputs.items()}


def autocast_for(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA when enabled (fp16 where bf16 is unsupported); nothing on CPU."""
    if not enabled or device.type != "cuda":
        return nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def train_step(model: nn.Module, criterion: SetCriterion, batch: ClipBatch, tokenizer,
               optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, config: TrainConfig,
               device: torch.device) -> dict[str, float]:
    """Forward, weighted loss, backward, clip, step. Returns ``loss`` (weighted total) and the unweighted
    last-layer losses, averaged over processes (the single-process value with the combined batch)."""
    batch = batch.to(device)
    ids, attention = tokenize(tokenizer, batch.captions, device)
    with autocast_for(device, config.amp):
        outputs = model(ids, attention, batch.frames, batch.image_sizes, batch.padding_mask)
    losses = criterion(_to_float(outputs), batch.targets)
    total = weighted_total(losses, criterion.weight_dict)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(total).backward()
    scaler.unscale_(optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(),
                                               config.clip_max_norm if config.clip_max_norm > 0 else math.inf)
    scaler.step(optimizer)
    scaler.update()
    stats = {"loss": total.item(), **{k: losses[k].item() for k in LOSS_NAMES}}
    stats = mean_over_processes(stats, device)
    if not math.isfinite(stats["loss"]):
        raise TrainingDivergedError(f"loss is {stats['loss']}; stopping (losses: {stats}); try a lower learning rate")
    stats["grad_norm"] = float(grad_norm)
    stats["lr"] = optimizer.param_groups[0]["lr"]
    return stats


def train_one_epoch(model: nn.Module, criterion: SetCriterion, batches: Iterable[ClipBatch], tokenizer,
                    optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, config: TrainConfig,
                    device: torch.device, on_step: Callable[[dict[str, float]], bool]) -> dict[str, float]:
    """Train over ``batches``; ``on_step(stats)`` after each step returns False to stop early.
    Returns the mean of each statistic over the steps run."""
    model.train()
    sums: dict[str, float] = {}
    steps = 0
    for batch in batches:
        stats = train_step(model, criterion, batch, tokenizer, optimizer, scaler, config, device)
        steps += 1
        for k, v in stats.items():
            sums[k] = sums.get(k, 0.0) + v
        if not on_step(stats):
            break
    return {k: v / steps for k, v in sums.items()} if steps else {}


def evaluate_held_out(model: ReferFormer, tokenizer, root: str | Path, records: Sequence[ExpressionRecord],
                      config: TrainConfig, device: torch.device, rank: int = 0, world_size: int = 1
                      ) -> dict[str, float]:
    """J&F, J and F (DAVIS means over expressions, in [0, 1]) of ``model`` on every frame of ``records``;
    the expressions are shared out among the processes and the results gathered.

    Masks come from :func:`referformer_core.pipeline.segment_video`, the predictor's pipeline (float32, windows
    of ``WINDOW`` frames, no memory budget, resized to ``config.eval_short_side``), so the score is the one a user of
    the checkpoint gets in float32.
    """
    was_training = model.training
    model.eval()
    settings = RunSettings(device=str(device), short_side=config.eval_short_side, window=WINDOW, max_memory=NO_LIMIT,
                           refine=False, precision="fp32")
    results = []
    for record in records[rank::world_size]:
        clip = read_clip(Path(root), record, range(len(record.frames)))
        pred = segment_video(model, tokenizer, clip.frames, [record.expression], settings)[0]
        results.append(metrics.j_and_f(pred, clip.masks))
    model.train(was_training)
    everything = [r for part in gather_objects(results) for r in part]
    summary = metrics.summarize_j_and_f(everything)
    return {"J&F": summary["J&F"], "J": summary["J"], "F": summary["F"]}
