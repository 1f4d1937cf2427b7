"""Make a trained checkpoint the bundled default model: ``python -m train.bundled.bundle RUN/checkpoint_best.pth``.

Writes ``referformer_core/weights/small_world.pth`` (or ``--out``): the model weights only (no optimiser), the
model config, the frozen text encoder's name instead of its tensors, and the working size and window it runs at,
and whether its masks are refined with the frames' colour edges (``referformer_core/refine.py``; default yes).
The result loads strictly with ``load_checkpoint`` and is what ``VideoPredictor.from_checkpoint()`` uses.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from referformer_core.bundled import BUNDLED_CHECKPOINT
from referformer_core.settings import REFINE_KEY, WINDOW_KEY, WORKING_SIZE_KEY
from referformer_core.checkpoint import TEXT_WEIGHTS_KEY, load_checkpoint, read_checkpoint, save_checkpoint
from referformer_core.errors import ReferFormerError


def bundle(checkpoint: str | Path, out: str | Path = BUNDLED_CHECKPOINT, short_side: int = 192,
           window: int = 12, refine_masks: bool = True) -> Path:
    """Write the weights-only bundle of ``checkpoint`` to ``out`` with the working size and the frames per forward
    pass it runs at (12 keeps a 300-frame video under 1.5 GB); returns ``out``."""
    text_weights = read_checkpoint(checkpoint).get(TEXT_WEIGHTS_KEY)
    if not text_weights:
        raise ReferFormerError(f"{checkpoint} carries its own text encoder weights; the bundle is meant for a model "
                               f"trained with --freeze-text-encoder on a packaged encoder (e.g. all-minilm-l6-v2)")
    model = load_checkpoint(checkpoint)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    save_checkpoint(model, tmp, str(text_weights), **{WORKING_SIZE_KEY: int(short_side), WINDOW_KEY: int(window),
                                                      REFINE_KEY: bool(refine_masks)})
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.bundled.bundle", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a checkpoint of `python -m train` (e.g. RUN/checkpoint_best.pth)")
    parser.add_argument("--out", default=str(BUNDLED_CHECKPOINT))
    parser.add_argument("--short-side", type=int, default=192, help="the working size stored with the model")
    parser.add_argument("--window", type=int, default=12, help="frames per forward pass stored with the model")
    parser.add_argument("--no-refine-masks", dest="refine_masks", action="store_false",
                        help="keep the official post-processing (no refinement with the frames' colour edges)")
    args = parser.parse_args(argv)
    try:
        out = bundle(args.checkpoint, args.out, args.short_side, args.window, args.refine_masks)
    except ReferFormerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{out} ({out.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
