"""``fit(config)``: a whole fine-tuning run — data, model, resume, epochs, held-out J&F, checkpoints, logs.

Files written to ``config.out`` (by the main process):

* ``checkpoint.pth``: the latest state (end of each epoch, every ``save_every_steps``, on ``max_steps``);
* ``checkpoint_best.pth``: the best held-out J&F so far, the starting weights included;
* ``metrics.jsonl``: one json line per logged step and per epoch (TensorBoard events too when installed);
* ``report.json``: starting and best scores, best epoch, steps.
"""
from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from referformer_core.checkpoint import checkpoint_text_encoder, load_checkpoint
from referformer_core.config import get_config
from referformer_core.errors import CheckpointError
from referformer_core.memory import reuse_freed_memory
from referformer_core.referformer import ReferFormer
from referformer_core.text import (load_pretrained_text_encoder, load_tokenizer, resolve_text_encoder,
                                  text_spec_from_pretrained)
from train.config import TrainConfig
from train.data import (SMALL_TRAINING_SET, ClipDataset, ConcatClipDatasets, EpochBatchSampler, TrainingDataError,
                        collate_clips, read_expressions, split_by_video)
from train.distributed import DistributedContext, barrier, init_distributed, shutdown_distributed
from train.engine import TrainingModel, build_criterion, build_optimizer, build_scheduler, evaluate_held_out, \
    train_one_epoch
from train.refcoco import RefExpDataset, default_image_folder, read_refexp
from train.state import RunState, save_training_checkpoint, restore_training_state
from train.transforms import AugmentOptions


@dataclass
class TrainReport:
    """The outcome: held-out scores (J&F, J, F in [0, 1]) of the start and of the best checkpoint."""

    start_score: dict[str, float] | None
    best_score: dict[str, float] | None
    best_epoch: int | None
    epochs_done: int
    global_step: int
    stopped_early: bool
    history: list[dict[str, Any]]
    checkpoint: str
    best_checkpoint: str | None


class MetricsLog:
    """Append-only ``metrics.jsonl`` (and TensorBoard scalars when ``tensorboard`` is installed)."""

    def __init__(self, out: Path, enabled: bool) -> None:
        self.path = out / "metrics.jsonl"
        self.enabled = enabled
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.writer = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                self.writer = None

    def write(self, record: dict[str, Any], step: int) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "epoch"):
                    self.writer.add_scalar(f"{record['kind']}/{key}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def build_model(config: TrainConfig) -> ReferFormer:
    """The starting model: ``resume`` or ``pretrained`` checkpoint, else ``config.config`` from scratch, with the
    pretrained text encoder of ``text_encoder`` when that folder (or packaged name) holds weights and the
    backbone's ImageNet weights when it ships them offline (EfficientNet-Lite0)."""
    start = config.resume or config.pretrained
    if start:
        model = load_checkpoint(start)
        if config.sentence_refiner_layers and model.sentence_refiner is None and not config.resume:
            model.add_sentence_refiner(config.sentence_refiner_layers)
        return model.train()
    model_config = get_config(config.config)
    if config.sentence_refiner_layers:
        model_config = model_config.replace(sentence_refiner_layers=config.sentence_refiner_layers)
    has_weights = _has_text_weights(config.text_encoder)
    if has_weights:
        model_config = model_config.replace(text_encoder=text_spec_from_pretrained(config.text_encoder))
    model = ReferFormer(model_config)
    if has_weights:
        model.text_encoder = load_pretrained_text_encoder(config.text_encoder)
    backbone = model.backbone[0]
    if config.imagenet_backbone and hasattr(backbone, "load_imagenet_weights"):
        backbone.load_imagenet_weights()
    return model.train()


def _has_text_weights(text_encoder: str) -> bool:
    folder = Path(resolve_text_encoder(text_encoder))
    return any((folder / name).is_file() for name in ("model.safetensors", "pytorch_model.bin"))


def external_text_weights(config: TrainConfig) -> str | None:
    """The name under which checkpoints leave out the text encoder: set when it is frozen and its weights are
    exactly those of ``text_encoder`` (a run from scratch from them, or from a checkpoint that did the same)."""
    if not config.freeze_text_encoder:
        return None
    start = config.resume or config.pretrained
    if start:
        return checkpoint_text_encoder(start)
    return config.text_encoder if _has_text_weights(config.text_encoder) else None


def _check_vocabulary(tokenizer, model: ReferFormer, name: str) -> None:
    vocab = int(model.config.text_encoder["vocab_size"])
    if len(tokenizer) > vocab:
        raise CheckpointError(f"tokenizer {name!r} has {len(tokenizer)} tokens but the model's text encoder only "
                              f"{vocab}; pass the --text-encoder the model was trained with")


def _load_data(config: TrainConfig):
    records = read_expressions(config.data)
    if config.val:
        return records, read_expressions(config.val), Path(config.val)
    train, held_out = split_by_video(records, config.val_fraction, config.seed)
    if config.val_fraction > 0 and not held_out:
        raise TrainingDataError(f"{config.data} has a single video: nothing can be held out; pass --val DIR or "
                                f"--val-fraction 0")
    return train, held_out, Path(config.data)


def _refcoco_datasets(config: TrainConfig, options: AugmentOptions) -> list[RefExpDataset]:
    """One ``RefExpDataset`` per ``config.refcoco`` json (read up front, so bad files fail before training)."""
    datasets = []
    for json_path in config.refcoco:
        images = config.refcoco_images or default_image_folder(json_path)
        datasets.append(RefExpDataset(images, read_refexp(json_path, images), config.num_frames, options,
                                      config.augment, config.seed))
    return datasets


def _better(score: dict[str, float], best: dict[str, float] | None) -> bool:
    return best is None or score["J&F"] > best["J&F"]


def fit(config: TrainConfig) -> TrainReport:
    """Run (or resume) the fine-tuning ``config`` describes; see the module docstring for the files."""
    ctx = init_distributed(config.device)
    out = Path(config.out)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
    log = MetricsLog(out, ctx.is_main)
    try:
        return _fit(config, ctx, out, log)
    finally:
        log.close()
        shutdown_distributed()


def _fit(config: TrainConfig, ctx: DistributedContext, out: Path, log: MetricsLog) -> TrainReport:
    train_records, val_records, val_root = _load_data(config)
    options = AugmentOptions(config.train_scales, config.max_size, config.crop_scales, config.crop_min_size,
                             config.crop_max_size)
    refcoco = _refcoco_datasets(config, options)
    train_videos = len({r.video for r in train_records})
    if ctx.is_main and train_videos < SMALL_TRAINING_SET:
        warnings.warn(f"only {train_videos} training videos: fine-tuning may overfit; watch the held-out J&F",
                      stacklevel=2)
    tokenizer = load_tokenizer(config.text_encoder)

    torch.manual_seed(config.seed)
    model = build_model(config)
    _check_vocabulary(tokenizer, model, config.text_encoder)
    model.to(ctx.device)
    if ctx.device.type == "cpu":
        reuse_freed_memory()  # as the pipeline does: no page faults for the tensors each step frees
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config)
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=config.amp and ctx.device.type == "cuda"
                                  and not torch.cuda.is_bf16_supported())
    criterion = build_criterion(config, model.config.dec_layers)
    torch.manual_seed(config.seed + ctx.rank)
    state = RunState()
    if config.resume:
        state = restore_training_state(config.resume, optimizer, scheduler, scaler, ctx.rank)

    wrapped = TrainingModel(model)
    trained = DistributedDataParallel(wrapped, device_ids=[ctx.device] if ctx.device.type == "cuda" else None) \
        if ctx.distributed else wrapped

    dataset = ClipDataset(config.data, train_records, config.num_frames, config.max_skip, options, config.augment,
                          config.seed)
    if refcoco:
        dataset = ConcatClipDatasets([dataset, *refcoco])
    sampler = EpochBatchSampler(len(dataset), config.batch_size, config.seed, ctx.rank, ctx.world_size)
    if sampler.steps_per_epoch() == 0:
        raise TrainingDataError(f"{config.data} gives {len(dataset)} clips, fewer than one batch of "
                                f"{config.batch_size * ctx.world_size}")

    def evaluate() -> dict[str, float] | None:
        if not val_records:
            return None
        return evaluate_held_out(model, tokenizer, val_root, val_records, config, ctx.device, ctx.rank,
                                 ctx.world_size)

    text_weights = external_text_weights(config)

    def save(path: Path) -> None:
        save_training_checkpoint(path, model, optimizer, scheduler, scaler, config, state, ctx.is_main, text_weights)

    best_path = out / "checkpoint_best.pth"
    if state.start_score is None and val_records:
        state.start_score = state.best_score = evaluate()
        state.best_epoch = None
        save(best_path)
        log.write({"kind": "start", "step": 0, **state.start_score}, 0)

    stopped = False
    for epoch in range(state.epoch + 1, config.epochs):
        dataset.set_epoch(epoch)
        sampler.set_epoch(epoch, state.next_step)
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_clips,
                                             num_workers=config.num_workers, generator=torch.Generator(),
                                             persistent_workers=False)
        progress = _progress_bar(len(sampler), epoch, config.progress and ctx.is_main)
        started = time.time()

        def on_step(stats: dict[str, float]) -> bool:
            state.global_step += 1
            state.next_step += 1
            progress.update(1)
            progress.set_postfix(loss=f"{stats['loss']:.3f}")
            state.history.append({"step": state.global_step, "epoch": epoch, "loss": stats["loss"]})
            if state.global_step % max(1, config.log_every_steps) == 0:
                log.write({"kind": "train", "step": state.global_step, "epoch": epoch, **stats}, state.global_step)
            if config.max_steps is not None and state.global_step >= config.max_steps:
                return False
            if config.save_every_steps and state.global_step % config.save_every_steps == 0:
                save(out / "checkpoint.pth")
            return True

        means = train_one_epoch(trained, criterion, loader, tokenizer, optimizer, scaler, config, ctx.device,
                                on_step)
        progress.close()
        if config.max_steps is not None and state.global_step >= config.max_steps \
                and state.next_step < sampler.steps_per_epoch():
            stopped = True
            save(out / "checkpoint.pth")
            break
        scheduler.step()
        state.epoch, state.next_step = epoch, 0
        score = evaluate()
        record = {"kind": "epoch", "step": state.global_step, "epoch": epoch, "seconds": time.time() - started,
                  **{f"train_{k}": v for k, v in means.items()}, **(score or {})}
        log.write(record, state.global_step)
        if score is not None and _better(score, state.best_score):
            state.best_score, state.best_epoch = score, epoch
            save(best_path)
        save(out / "checkpoint.pth")
        if config.max_steps is not None and state.global_step >= config.max_steps:
            stopped = state.epoch + 1 < config.epochs
            break

    barrier()
    report = TrainReport(state.start_score, state.best_score, state.best_epoch, state.epoch + 1, state.global_step,
                         stopped, state.history, str(out / "checkpoint.pth"),
                         str(best_path) if val_records else None)
    if ctx.is_main:
        (out / "report.json").write_text(json.dumps({k: v for k, v in asdict(report).items() if k != "history"},
                                                    indent=2))
    return report


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def set_postfix(self, **values: str) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, epoch: int, enabled: bool):
    if not enabled:
        return _NoProgress()
    from tqdm import tqdm
    return tqdm(total=total, desc=f"epoch {epoch}", unit="step", dynamic_ncols=True)
