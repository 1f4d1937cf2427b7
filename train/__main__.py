"""``python -m train``: fine-tune ReferFormer on a Ref-Youtube-VOS-layout folder (one CPU, one GPU, or
``torchrun --nproc_per_node N -m train ...`` for several GPUs/nodes).

Examples::

    python -m train --data export/ --pretrained r50_refytvos.pth --out runs/ft --epochs 6
    python -m train --data export/ --val held_out/ --config tiny --text-encoder tok/ --out runs/tiny
    python -m train --data ytvos/train --refcoco coco/refcoco/instances_refcoco_train.json --out runs/joint
    python -m train --resume runs/ft/checkpoint.pth --data export/ --pretrained r50_refytvos.pth --out runs/ft
"""
from __future__ import annotations

import argparse
import sys

from referformer_core.config import MODEL_CONFIGS
from referformer_core.errors import ReferFormerError
from train.config import TrainConfig

DEFAULTS = TrainConfig(data="", out="")


def build_parser() -> argparse.ArgumentParser:
    d = DEFAULTS
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    data = p.add_argument_group("data")
    data.add_argument("--data", required=True, help="Ref-Youtube-VOS-layout training folder")
    data.add_argument("--val", default=None, help="validation folder (default: hold out --val-fraction of --data)")
    data.add_argument("--val-fraction", type=float, default=d.val_fraction,
                      help="fraction of the videos held out for validation when --val is not given (0: none)")
    data.add_argument("--refcoco", nargs="+", default=[], metavar="JSON",
                      help="also train on these Ref-COCO/RefCOCO+/RefCOCOg json files (official converted "
                           "format, e.g. coco/refcoco/instances_refcoco_train.json) as one-frame clips")
    data.add_argument("--refcoco-images", default=None, metavar="DIR",
                      help="the --refcoco images (default: train2014/ beside each json's folder)")
    data.add_argument("--num-frames", type=int, default=d.num_frames)
    data.add_argument("--max-skip", type=int, default=d.max_skip)
    data.add_argument("--no-augment", dest="augment", action="store_false", help="no flip/photometric/crop/scales")
    data.add_argument("--train-scales", type=int, nargs="+", default=list(d.train_scales))
    data.add_argument("--max-size", type=int, default=d.max_size)
    data.add_argument("--eval-short-side", type=int, default=d.eval_short_side)
    data.add_argument("--num-workers", type=int, default=d.num_workers)
    model = p.add_argument_group("model")
    model.add_argument("--config", default=d.config, choices=sorted(MODEL_CONFIGS),
                       help="model to build when starting from scratch")
    model.add_argument("--pretrained", default=None, help="start from this checkpoint (official or ours)")
    model.add_argument("--resume", default=None, help="continue this interrupted run exactly (our checkpoint.pth)")
    model.add_argument("--no-imagenet-backbone", dest="imagenet_backbone", action="store_false",
                       help="from scratch: random backbone instead of its offline ImageNet weights")
    model.add_argument("--sentence-refiner-layers", type=int, choices=range(9), default=d.sentence_refiner_layers,
                       metavar="N",
                       help="trainable layers over the word features that sharpen the sentence feature (0: none); "
                            "added fresh to a --pretrained model without them")
    model.add_argument("--text-encoder", default=d.text_encoder,
                       help="tokenizer folder or cached model id (its weights are used when starting from scratch)")
    opt = p.add_argument_group("optimisation")
    opt.add_argument("--out", required=True, help="output folder (checkpoints, metrics.jsonl, report.json)")
    opt.add_argument("--epochs", type=int, default=d.epochs)
    opt.add_argument("--max-steps", type=int, default=None, help="stop (with a resumable checkpoint) after N steps")
    opt.add_argument("--batch-size", type=int, default=d.batch_size, help="clips per process")
    opt.add_argument("--lr", type=float, default=d.lr)
    opt.add_argument("--lr-backbone", type=float, default=d.lr_backbone)
    opt.add_argument("--lr-text-encoder", type=float, default=d.lr_text_encoder)
    opt.add_argument("--lr-sentence-refiner", type=float, default=d.lr_sentence_refiner)
    opt.add_argument("--freeze-text-encoder", action="store_true")
    opt.add_argument("--lr-linear-proj-mult", type=float, default=d.lr_linear_proj_mult)
    opt.add_argument("--weight-decay", type=float, default=d.weight_decay)
    opt.add_argument("--lr-drop", type=int, nargs="*", default=list(d.lr_drop), help="epochs where lr /= 10")
    opt.add_argument("--clip-max-norm", type=float, default=d.clip_max_norm)
    opt.add_argument("--no-amp", dest="amp", action="store_false", help="no mixed precision on CUDA")
    opt.add_argument("--device", default=d.device, help="auto, cpu, cuda or cuda:N")
    opt.add_argument("--seed", type=int, default=d.seed)
    opt.add_argument("--save-every-steps", type=int, default=d.save_every_steps,
                     help="also write checkpoint.pth every N steps (0: at epoch ends only)")
    opt.add_argument("--log-every-steps", type=int, default=d.log_every_steps)
    opt.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = vars(args).copy()
    for key in ("train_scales", "lr_drop", "refcoco"):
        values[key] = tuple(values[key])
    return TrainConfig(**values)


def _format(score: dict[str, float] | None) -> str:
    return "n/a" if score is None else f"J&F {100 * score['J&F']:.1f} (J {100 * score['J']:.1f}, F {100 * score['F']:.1f})"


def main(argv: list[str] | None = None) -> int:
    config = config_from_args(build_parser().parse_args(argv))
    from train.trainer import fit

    try:
        report = fit(config)
    except ReferFormerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"start: {_format(report.start_score)}")
    where = "the starting weights" if report.best_epoch is None else f"epoch {report.best_epoch}"
    print(f"best:  {_format(report.best_score)} at {where} -> {report.best_checkpoint}")
    if report.best_score is not None and report.start_score is not None \
            and report.best_score["J&F"] <= report.start_score["J&F"]:
        print("warning: fine-tuning did not improve on the starting checkpoint; keep the original", file=sys.stderr)
    print(f"latest: {report.checkpoint} ({report.epochs_done} epochs, {report.global_step} steps"
          f"{', stopped early' if report.stopped_early else ''})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
