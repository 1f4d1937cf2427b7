"""Run the tiny training of the DDP test (one process, or one of ``torchrun``'s) and dump the loss trajectory.

Usage: ``ddp_worker.py DATA TOKENIZER OUT BATCH_SIZE``. Dropout is switched off (each process would draw its
own masks); the rest is ``train.trainer.fit`` unchanged.
"""
import json
import os
import sys
import warnings

import torch

from referformer_core.config import get_config
from referformer_core.referformer import ReferFormer
from train import trainer
from train.config import TrainConfig


def build_model_without_dropout(config):
    """The tiny model with every dropout off (``nn.Dropout``, attention dropout)."""
    spec = {**get_config("tiny").text_encoder, "attention_probs_dropout_prob": 0.0, "hidden_dropout_prob": 0.0}
    model = ReferFormer(get_config("tiny").replace(text_encoder=spec))
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        elif isinstance(module, torch.nn.MultiheadAttention):
            module.dropout = 0.0
    return model


def main() -> None:
    data, tokenizer, out, batch_size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    torch.set_num_threads(1)
    trainer.build_model = build_model_without_dropout
    config = TrainConfig(data=data, out=out, val=data, config="tiny", text_encoder=tokenizer, epochs=2,
                         batch_size=batch_size, num_frames=3, augment=False, train_scales=(64,), max_size=96, eval_short_side=64,
                         lr=1e-3, lr_drop=(1,), num_workers=0, progress=False, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        report = trainer.fit(config)
    if int(os.environ.get("RANK", "0")) == 0:
        with open(os.path.join(out, "trajectory.json"), "w") as f:
            json.dump({"losses": [h["loss"] for h in report.history], "start": report.start_score,
                       "best": report.best_score}, f)


if __name__ == "__main__":
    main()
