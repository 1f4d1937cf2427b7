"""How far the studio's candidate tracks take a user: J&F of the model's choice and of the best of its top k.

    python -m train.bundled.candidates --data DIR [--checkpoint CKPT] [--json]

For every expression of a Ref-Youtube-VOS-layout folder with ground truth, each candidate track (one per query,
best mean score first: the order the studio's candidate picker offers them) is scored against the truth.
"Best of k" is the mean J&F when, per expression, the best of the first k candidates is kept: k = 1 is the model's
own choice (what ``train.predict`` + ``train.evaluate`` report), k = 2 one look at the runner-up.

It also measures the studio's low-score flags: the frames where the chosen track's score is under ``--threshold``
(the studio's default, 0.5), what share of all frames they are, and how many of them are wrong (J < 0.5) against
the share of wrong frames among all (:func:`low_score_flags`).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from referformer_core.errors import ReferFormerError
from referformer_core.predictor import InferenceState, VideoPredictor
from referformer_core.progress import end_progress, show_progress
from train import metrics
from train.evaluate import Expression, load_expressions, read_label_map
from train.predict import read_frames


LOW_SCORE = 0.5
"""The studio's default low-confidence threshold (``studio.review.LOW_CONFIDENCE``)."""


@dataclass(frozen=True)
class CandidateResult:
    """J&F ``[Q]`` of one expression's candidate tracks, in the order offered (the model's choice first); the
    chosen track's score ``frame_scores [T]`` and region similarity ``frame_j [T]`` on each frame."""

    expression: Expression
    j_and_f: np.ndarray
    frame_scores: np.ndarray
    frame_j: np.ndarray


def run_videos(predictor: VideoPredictor, data: str | Path, progress: str | None = None
               ) -> Iterator[tuple[list[Expression], InferenceState, np.ndarray]]:
    """Every video of a Ref-Youtube-VOS-layout folder with ground truth, run through ``predictor`` with all its
    expressions (object ``k + 1`` is ``expressions[k]``): ``(expressions, state, labels [T, H, W])`` per video.
    ``progress``: a label for a progress line on stderr (``None``: silent)."""
    data = Path(data)
    by_video: dict[str, list[Expression]] = {}
    for exp in load_expressions(data / "meta_expressions.json"):
        by_video.setdefault(exp.video, []).append(exp)
    for done, (video, expressions) in enumerate(by_video.items(), 1):
        frames = expressions[0].frames
        state = predictor.init_state(read_frames(data, video, frames))
        for obj, exp in enumerate(expressions, 1):
            predictor.add_expression(state, obj, exp.text)
        predictor.run(state)
        labels = np.stack([read_label_map(data / "Annotations" / video / f"{f}.png") for f in frames])
        yield expressions, state, labels
        if progress:
            show_progress(f"{progress}: video {done}/{len(by_video)}")
    if progress:
        end_progress()


def score_candidates(predictor: VideoPredictor, data: str | Path, progress: bool = True) -> list[CandidateResult]:
    """Every expression's candidate tracks scored against ``data``'s ground truth, video by video."""
    results = []
    for expressions, state, labels in run_videos(predictor, data, "scoring candidates" if progress else None):
        for obj, exp in enumerate(expressions, 1):
            truth = labels == exp.obj_id
            tracks = predictor.candidate_tracks(state, obj)
            measured = [metrics.j_and_f(track.masks, truth) for track in tracks]
            results.append(CandidateResult(exp, np.array([m.j_and_f for m in measured]), tracks[0].scores,
                                           measured[0].j_frames))
    return results


def best_of(results: list[CandidateResult], k: int) -> float:
    """Mean over expressions of the best J&F among the first ``k`` candidates."""
    return float(np.mean([r.j_and_f[:k].max() for r in results]))


def low_score_flags(results: list[CandidateResult], threshold: float = LOW_SCORE) -> dict[str, float]:
    """Over every frame of every expression's chosen track: the share ``flagged`` (score under ``threshold``), the
    share ``wrong`` (J < 0.5), and of the flagged frames the share wrong (``precision``), of the wrong frames the
    share flagged (``recall``); NaN where there is nothing to divide."""
    scores = np.concatenate([r.frame_scores for r in results])
    wrong = np.concatenate([r.frame_j for r in results]) < 0.5
    flagged = scores < threshold
    return {"threshold": threshold, "frames": int(len(scores)), "flagged": float(flagged.mean()),
            "wrong": float(wrong.mean()),
            "precision": float(wrong[flagged].mean()) if flagged.any() else float("nan"),
            "recall": float(flagged[wrong].mean()) if wrong.any() else float("nan")}


def summarize(results: list[CandidateResult], threshold: float = LOW_SCORE) -> dict:
    """``best_of`` (k -> J&F), ``per_attribute`` (attribute -> k -> J&F, with ``count``), ``best_rank_share``
    (share of expressions whose best candidate is offered at each place) and ``low_score_flags``
    (:func:`low_score_flags` at ``threshold``)."""
    if not results:
        raise ReferFormerError("no expressions to score")
    ks = range(1, max(len(r.j_and_f) for r in results) + 1)
    attributes = sorted({a for r in results for a in r.expression.attributes})
    per_attribute = {}
    for attribute in attributes:
        rows = [r for r in results if attribute in r.expression.attributes]
        per_attribute[attribute] = {"count": len(rows), **{str(k): best_of(rows, k) for k in ks}}
    ranks = np.array([int(np.argmax(r.j_and_f)) for r in results])
    return {"expressions": len(results), "best_of": {str(k): best_of(results, k) for k in ks},
            "per_attribute": per_attribute,
            "best_rank_share": [float(np.mean(ranks == i)) for i in range(len(ks))],
            "low_score_flags": low_score_flags(results, threshold)}


def format_table(summary: dict) -> str:
    """The summary as a plain-text table (J&F in %)."""
    ks = list(summary["best_of"])
    lines = [f"{'':<12}{'count':>6}" + "".join(f"{'best of ' + k:>11}" for k in ks)]
    overall = "".join(f"{100 * summary['best_of'][k]:>11.1f}" for k in ks)
    lines.append(f"{'all':<12}{summary['expressions']:>6}" + overall)
    for attribute, row in summary["per_attribute"].items():
        lines.append(f"{attribute:<12}{row['count']:>6}" + "".join(f"{100 * row[k]:>11.1f}" for k in ks))
    shares = ", ".join(f"{i + 1}: {100 * s:.0f}%" for i, s in enumerate(summary["best_rank_share"]))
    lines.append(f"best candidate offered at place {shares}")
    flags = summary["low_score_flags"]
    lines.append(f"frames scored under {flags['threshold']}: {100 * flags['flagged']:.1f}% of {flags['frames']}, "
                 f"{100 * flags['precision']:.0f}% of them wrong (J < 0.5; {100 * flags['wrong']:.0f}% of all "
                 f"frames), {100 * flags['recall']:.0f}% of the wrong frames flagged")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.bundled.candidates", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="Ref-Youtube-VOS-layout folder with Annotations/")
    parser.add_argument("--checkpoint", help="default: the bundled model")
    parser.add_argument("--text-encoder", help="default: the checkpoint's own, else roberta-base")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threshold", type=float, default=LOW_SCORE, help="low-score flag threshold (the "
                        "studio's default)")
    parser.add_argument("--json", action="store_true", help="print a last line with the summary as json")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        predictor = VideoPredictor.from_checkpoint(args.checkpoint, args.text_encoder, args.device)
        summary = summarize(score_candidates(predictor, args.data, progress=not args.no_progress), args.threshold)
    except ReferFormerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_table(summary))
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
