"""Teach a trained model to choose among its own candidate tracks: ``python -m train.bundled.ranker``.

    python -m train.bundled.ranker --data DIR [DIR ...] --out RANKED.pth [--val DIR ...] [--checkpoint CKPT]
                           [--layers 2] [--epochs 60] [--cache EXAMPLES.pt]

The model (default: the bundled one) gains a fresh ``CandidateRanker`` (``referformer_core/candidate_ranker.py``);
the rest stays frozen. Every expression of ``DIR`` (Ref-Youtube-VOS layout with ``Annotations/``) runs through the
model once, as in use (``VideoPredictor``); its candidate features, its words and each candidate's J&F against the
truth become one example. The ranker then learns, over those examples, to put the best candidate first (a
cross-entropy against a target that favours candidates by J&F). The epoch whose ranker chooses best on ``--val``
(or on a tenth of the videos, kept aside) is the one saved, as a weights-only bundle like
``python -m train.bundled.bundle``'s; epoch 0, the untrained ranker, is the model's own choice.
"""
from __future__ import annotations

import argparse
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from referformer_core.candidate_ranker import CandidateRanker, mean_score_logits, track_features
from referformer_core.checkpoint import CONFIG_KEY, TEXT_WEIGHTS_KEY, read_checkpoint, save_checkpoint
from referformer_core.errors import ReferFormerError
from referformer_core.predictor import VideoPredictor
from referformer_core.settings import REFINE_KEY, WINDOW_KEY, WORKING_SIZE_KEY, RunSettings, read_settings
from referformer_core.text import tokenize
from train import metrics
from train.bundled.candidates import run_videos

CACHE_FORMAT = "train.bundled.ranker examples 4"
"""Written into ``--cache`` files; a file without it (another version's) is refused, not misread."""
TARGET_TEMPERATURE = 0.05
"""Softness of the target: candidates within a few J&F points of the best share its weight."""


@dataclass(frozen=True)
class RankerExample:
    """One expression: each candidate's ``appearance [Q, A]`` and per-frame ``signals [T, Q, S]``
    (:func:`~referformer_core.candidate_ranker.describe_tracks`), ``words [L, D]``, the model's own mean-score
    logits ``prior [Q]`` and ``j_and_f [Q]`` of each candidate."""

    video: str
    appearance: Tensor
    signals: Tensor
    words: Tensor
    prior: Tensor
    j_and_f: Tensor

    @property
    def candidates(self) -> Tensor:
        """``[Q, F]`` the ranker's input (:func:`~referformer_core.candidate_ranker.track_features`)."""
        return track_features(self.appearance, self.signals)


def collect_examples(predictor: VideoPredictor, data: str | Path, progress: bool = True) -> list[RankerExample]:
    """Run every expression of ``data`` through ``predictor`` (whose model has a ranker, so its candidate tracks
    are described) and score each candidate against the truth."""
    if predictor.model.candidate_ranker is None:
        raise ReferFormerError("the model needs a candidate ranker to describe its candidates")
    examples = []
    for expressions, state, labels in run_videos(predictor, data, "describing candidates" if progress else None):
        with torch.inference_mode():
            text = predictor.model.encode_text(*tokenize(predictor.tokenizer, [e.text for e in expressions],
                                                         predictor.device))
        for obj, exp in enumerate(expressions, 1):
            result = state.results[obj]
            truth = labels == exp.obj_id
            scores = [metrics.j_and_f(track.masks, truth).j_and_f for track in
                      sorted(predictor.candidate_tracks(state, obj), key=lambda track: track.query)]
            words = text.encoder_words[obj - 1][~text.mask[obj - 1]].float().cpu()
            description = result.description
            examples.append(RankerExample(exp.video, description.appearance, description.signals, words,
                                          mean_score_logits(result.logits), torch.tensor(scores, dtype=torch.float32)))
    return examples


def batch_examples(examples: list[RankerExample]) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Stack examples: candidates ``[N, Q, F]``, words ``[N, L, D]`` (zero-padded), padding ``[N, L]``,
    priors ``[N, Q]``, J&F ``[N, Q]``."""
    length = max(e.words.shape[0] for e in examples)
    words = torch.zeros(len(examples), length, examples[0].words.shape[1])
    padding = torch.ones(len(examples), length, dtype=torch.bool)
    for i, e in enumerate(examples):
        words[i, :e.words.shape[0]] = e.words
        padding[i, :e.words.shape[0]] = False
    return (torch.stack([e.candidates for e in examples]), words, padding,
            torch.stack([e.prior for e in examples]), torch.stack([e.j_and_f for e in examples]))


def ranking_loss(logits: Tensor, j_and_f: Tensor) -> Tensor:
    """Cross-entropy of ``logits [N, Q]`` against softmax(J&F / ``TARGET_TEMPERATURE``) ``[N, Q]``."""
    target = (j_and_f / TARGET_TEMPERATURE).softmax(-1)
    return -(target * F.log_softmax(logits, -1)).sum(-1).mean()


def chosen_j_and_f(ranker: CandidateRanker, examples: list[RankerExample]) -> float:
    """Mean J&F of the candidate ``ranker`` puts first."""
    return _chosen(ranker, batch_examples(examples))


def _chosen(ranker: CandidateRanker, batch: tuple[Tensor, ...]) -> float:
    """:func:`chosen_j_and_f` of examples already stacked by :func:`batch_examples`."""
    candidates, words, padding, prior, j_and_f = batch
    ranker.eval()
    with torch.inference_mode():
        choice = ranker(candidates, words, padding, prior).argmax(-1)
    return float(j_and_f.gather(1, choice[:, None]).mean())


def split_by_video(examples: list[RankerExample], val_fraction: float = 0.1, seed: int = 0
                   ) -> tuple[list[RankerExample], list[RankerExample]]:
    """Examples of a ``val_fraction`` of the videos (at least one) set aside: ``(train, val)``."""
    videos = sorted({e.video for e in examples})
    rng = np.random.default_rng(seed)
    val_videos = set(rng.permutation(videos)[:max(1, round(len(videos) * val_fraction))].tolist())
    return [e for e in examples if e.video not in val_videos], [e for e in examples if e.video in val_videos]


def train_ranker(ranker: CandidateRanker, train: list[RankerExample], val: list[RankerExample], epochs: int = 60,
                 lr: float = 5e-4, batch_size: int = 64, seed: int = 0, log=print) -> float:
    """Train ``ranker`` in place (its standardisation set from ``train`` first); it ends with the weights of the
    epoch that chose best on ``val`` (epoch 0: the official choice), whose mean J&F is returned."""
    generator = torch.Generator().manual_seed(seed)
    train_batch, val_batch = batch_examples(train), batch_examples(val)
    candidates, words, padding, prior, j_and_f = train_batch
    ranker.fit_normalisation(candidates)
    optimizer = torch.optim.AdamW(ranker.parameters(), lr=lr, weight_decay=1e-2)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    best, best_state = _chosen(ranker, val_batch), {k: v.clone() for k, v in ranker.state_dict().items()}
    log(f"epoch 0: val J&F {100 * best:.1f} (the untrained ranker: the model's own choice)")
    for epoch in range(1, epochs + 1):
        ranker.train()
        order = torch.randperm(len(train), generator=generator)
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            loss = ranking_loss(ranker(candidates[idx], words[idx], padding[idx], prior[idx]), j_and_f[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        schedule.step()
        score = _chosen(ranker, val_batch)
        log(f"epoch {epoch}: loss {total / len(train):.4f}, train J&F {100 * _chosen(ranker, train_batch):.1f}, "
            f"val J&F {100 * score:.1f}")
        if score > best:
            best, best_state = score, {k: v.clone() for k, v in ranker.state_dict().items()}
    ranker.load_state_dict(best_state)
    ranker.eval()
    return best


def without_ranker(data: dict) -> dict:
    """A checkpoint read by :func:`~referformer_core.checkpoint.read_checkpoint` with its candidate ranker, if it
    has one, left out: the command trains a fresh one, whatever the shape of the one it replaces."""
    stripped = {**data, "model": {k: v for k, v in data["model"].items() if not k.startswith("candidate_ranker.")}}
    if CONFIG_KEY in data:
        stripped[CONFIG_KEY] = dict(data[CONFIG_KEY], candidate_ranker_layers=0)
    return stripped


def _described(predictor: VideoPredictor, folders: list[str], cache: str | None, progress: bool
               ) -> list[RankerExample]:
    """The examples of every folder: from ``cache`` (a file keyed by folder) when it holds them, else described
    (and added to ``cache`` after each folder)."""
    stored: dict = {"format": CACHE_FORMAT, "folders": {}}
    if cache and Path(cache).exists():
        try:
            stored = torch.load(cache, weights_only=True)
        except (RuntimeError, EOFError, pickle.UnpicklingError) as e:
            raise ReferFormerError(f"{cache}: not a readable examples cache ({e.__class__.__name__}); delete it") from e
        if not isinstance(stored, dict) or stored.get("format") != CACHE_FORMAT:
            raise ReferFormerError(f"{cache}: not an examples cache of this version of train.bundled.ranker; delete it")
    examples = []
    for folder in folders:
        key = str(Path(folder).resolve())
        if key not in stored["folders"]:
            stored["folders"][key] = [e.__dict__ for e in collect_examples(predictor, folder, progress)]
            if cache:
                torch.save(stored, cache)
        examples += [RankerExample(**e) for e in stored["folders"][key]]
    return examples


def _examples(predictor: VideoPredictor, args: argparse.Namespace
              ) -> tuple[list[RankerExample], list[RankerExample]]:
    """``(train, val)`` examples of ``--data`` and ``--val`` (a tenth of the training videos without ``--val``)."""
    train = _described(predictor, args.data, args.cache, not args.no_progress)
    val = _described(predictor, args.val, args.cache, not args.no_progress) if args.val else []
    if not val:
        if len({e.video for e in train}) < 2:
            raise ReferFormerError(f"{', '.join(args.data)}: the ranker needs at least two videos with expressions")
        train, val = split_by_video(train, seed=args.seed)
    return train, val


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.bundled.ranker", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, nargs="+", help="Ref-Youtube-VOS-layout folders with Annotations/")
    parser.add_argument("--out", required=True, help="where to write the model with its ranker (.pth)")
    parser.add_argument("--checkpoint",
                        help="a bundle of `python -m train.bundled.bundle` (default: the bundled model)")
    parser.add_argument("--layers", type=int, choices=range(1, 9), default=2)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val", nargs="+", help="other such folders to choose the epoch on (e.g. --split heldout "
                        "of the generator, another seed than the test set); default: a tenth of --data's videos")
    parser.add_argument("--cache", help="examples file: folders it holds are read from it, the others described "
                        "and added")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        settings, source = read_settings(RunSettings(checkpoint=args.checkpoint))
        if not source.get(TEXT_WEIGHTS_KEY):
            raise ReferFormerError("the ranker is trained on a bundle with a packaged frozen text encoder "
                                   "(python -m train.bundled.bundle)")
        predictor = VideoPredictor.from_checkpoint_data(without_ranker(source), settings)
        torch.manual_seed(args.seed)
        predictor.model.add_candidate_ranker(args.layers)
        predictor.model.eval()
        train, val = _examples(predictor, args)
        best = train_ranker(predictor.model.candidate_ranker, train, val, args.epochs, args.lr, seed=args.seed)
    except ReferFormerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(predictor.model, out, str(source[TEXT_WEIGHTS_KEY]),
                    **{key: source[key] for key in (WORKING_SIZE_KEY, WINDOW_KEY, REFINE_KEY) if key in source})
    print(f"{out}: val J&F of the ranked choice {100 * best:.1f} ({len(train)} training expressions)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
