"""How alike two expressions are to a model's text side: ``python -m train.bundled.text_probe "A" "B" ["C" "D" ...]``.

ReferFormer's queries all start from one sentence feature (the text encoder's pooled output through the model's
resizer, ``[B, C]``); only the word features (``[B, Lt, C]``, fused into the visual features) keep word order.
When two expressions that name different objects ("the blue item left of the star" / "the star left of the blue
item") have nearly the same sentence feature, the queries cannot tell them apart and the word-level fusion has to.
For each pair the table gives how far apart the two sentence features are, and the two mean word features, as a
fraction of their length (0: the same; about 0.3 for "the star" / "the square" with the bundled model).
"""
from __future__ import annotations

import argparse
import json
import sys

import torch
from torch import Tensor

from referformer_core.errors import ReferFormerError
from referformer_core.text import tokenize


def feature_distance(model, tokenizer, first: str, second: str) -> dict[str, float]:
    """How far apart ``first`` and ``second`` are, ``|a - b|`` over the mean of ``|a|`` and ``|b|``, for their
    ``sentence`` features (the queries' source) and their ``words`` (the mean of the resized word features)."""
    input_ids, attention_mask = tokenize(tokenizer, [first, second], device=next(model.parameters()).device)
    with torch.no_grad():
        text = model.encode_text(input_ids, attention_mask)
    words = _masked_mean(text.words, attention_mask)
    return {"sentence": _relative_distance(text.sentence[0], text.sentence[1]),
            "words": _relative_distance(words[0], words[1])}


def _masked_mean(words: Tensor, attention_mask: Tensor) -> Tensor:
    """``words [B, Lt, C]``, ``attention_mask [B, Lt]`` (1 on tokens) -> ``[B, C]``."""
    weights = attention_mask.unsqueeze(-1).to(words.dtype)
    return (words * weights).sum(1) / weights.sum(1)


def _relative_distance(a: Tensor, b: Tensor) -> float:
    a, b = a.float(), b.float()
    return float((a - b).norm() / ((a.norm() + b.norm()) / 2).clamp_min(1e-12))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.bundled.text_probe", description=__doc__.splitlines()[0])
    parser.add_argument("expressions", nargs="+", help="pairs of expressions: A B [C D ...]")
    parser.add_argument("--checkpoint", default=None, help="a ReferFormer checkpoint (default: the bundled model)")
    parser.add_argument("--text-encoder", default=None, help="its text encoder, when not the checkpoint's own")
    parser.add_argument("--json", action="store_true", help="also print the rows as one last json line")
    args = parser.parse_args(argv)
    if len(args.expressions) % 2:
        parser.error(f"expressions come in pairs; got {len(args.expressions)}")
    from referformer_core.predictor import VideoPredictor

    try:
        predictor = VideoPredictor.from_checkpoint(args.checkpoint, text_encoder=args.text_encoder)
        pairs = list(zip(args.expressions[::2], args.expressions[1::2]))
        rows = [{"first": a, "second": b, **feature_distance(predictor.model, predictor.tokenizer, a, b)}
                for a, b in pairs]
    except ReferFormerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{'sentence':>8}  {'words':>6}  pair")
    for row in rows:
        print(f"{row['sentence']:8.4f}  {row['words']:6.4f}  {row['first']!r} / {row['second']!r}")
    if args.json:
        print(json.dumps({"pairs": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
