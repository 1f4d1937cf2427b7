"""What ranking the candidates after every window costs on long videos: described window by window
(``TrackDescription``, what the pipeline does) against described again over all the frames so far after each
window (``candidate_features``, what it did before), both in this process on the same tensors.

    python benchmarks/bench_ranking.py [--frames 300,1000] [--threads 2] [--json]

The tensors have the bundled model's shapes at the samples' size (5 candidates, 48 x 64 mask logits of a
192 x 256 input, its descriptor width, 12-frame windows) and random values; each window is described, the
candidates' features computed and the bundled ranker run, as ``pipeline.run_windows`` does. Both ways give the
same features (checked on the last window). Prints a table of milliseconds per frame for each length; with
``--json`` a last line with ``ms_per_frame`` per way and length, ``window`` and ``threads``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from referformer_core.bundled import bundled_checkpoint  # noqa: E402
from referformer_core.checkpoint import read_checkpoint  # noqa: E402
from referformer_core.candidate_ranker import SHAPE_GRID, TrackDescription, candidate_features  # noqa: E402
from referformer_core.checkpoint import load_checkpoint  # noqa: E402
from referformer_core.pipeline import rank_candidates  # noqa: E402
from referformer_core.referformer import TextFeatures  # noqa: E402

MASK_SIZE = (48, 64)
WORDS = 8


def video_outputs(num_frames: int, queries: int, channels: int) -> tuple[torch.Tensor, ...]:
    """Random ``logits [T, Q]``, ``boxes [T, Q, 4]``, ``mask_logits [T, Q, 48, 64]``, ``descriptors [T, Q, C]``."""
    generator = torch.Generator().manual_seed(num_frames)
    return (torch.randn(num_frames, queries, generator=generator),
            torch.rand(num_frames, queries, 4, generator=generator),
            torch.randn(num_frames, queries, *MASK_SIZE, generator=generator),
            torch.randn(num_frames, queries, channels, generator=generator))


def time_ranking(model, text: TextFeatures, outputs: tuple[torch.Tensor, ...], window: int, incremental: bool
                 ) -> tuple[float, torch.Tensor]:
    """Seconds to describe and rank after every window, and the last window's features ``[Q, F]``."""
    description = TrackDescription()
    features = torch.empty(0)
    start = time.perf_counter()
    num_frames = outputs[0].shape[0]
    for begin in range(0, num_frames, window):
        end = min(begin + window, num_frames)
        if incremental:
            description.add(*(x[begin:end] for x in outputs))
            features = description.features()
        else:
            features = candidate_features(*(x[:end] for x in outputs))
        rank_candidates(model, features, outputs[0][:end], text)
    return time.perf_counter() - start, features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", default="300,1000", help="comma-separated video lengths")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    path = bundled_checkpoint()
    window = int(read_checkpoint(path).get("window") or 12)
    model = load_checkpoint(path)
    ranker = model.candidate_ranker
    channels = ranker.appearance_dim - SHAPE_GRID ** 2
    queries = model.config.num_queries
    hidden, text_dim = model.config.hidden_dim, ranker.word_proj.in_features
    text = TextFeatures(torch.randn(1, WORDS, hidden), torch.zeros(1, WORDS, dtype=torch.bool), torch.randn(1, hidden),
                        torch.randn(1, WORDS, text_dim))
    rows, record = [], {}
    for frames in (int(f) for f in args.frames.split(",")):
        outputs = video_outputs(frames, queries, channels)
        incremental, last = time_ranking(model, text, outputs, window, incremental=True)
        again, last_again = time_ranking(model, text, outputs, window, incremental=False)
        if not torch.allclose(last, last_again, atol=1e-4):
            raise SystemExit(f"{frames} frames: the two ways disagree on the candidates' features")
        per_frame = {"window_by_window": 1000 * incremental / frames, "all_frames_again": 1000 * again / frames}
        record[str(frames)] = {k: round(v, 3) for k, v in per_frame.items()}
        rows.append((frames, per_frame["window_by_window"], per_frame["all_frames_again"]))
    print(f"ranking after every {window}-frame window, ms per frame ({args.threads} threads)")
    print(f"{'frames':>7}  {'window by window':>16}  {'all frames again':>16}")
    for frames, incremental, again in rows:
        print(f"{frames:>7}  {incremental:>16.2f}  {again:>16.2f}")
    if args.json:
        print(json.dumps({"ms_per_frame": record, "window": window, "threads": args.threads}))


if __name__ == "__main__":
    main()
