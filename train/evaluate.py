"""Evaluate Ref-Youtube-VOS-layout predictions: ``python -m train.evaluate --pred DIR --gt DIR [--out FILE]``.

Layouts:

* ``--gt DIR`` holds ``Annotations/<video>/<frame>.png`` (palette PNGs whose
  pixel value is the object id) and ``meta_expressions.json``
  (``videos -> <video> -> {frames: [...], expressions: {<exp_id>: {exp, obj_id}}}``);
  ``--meta FILE`` points at the json elsewhere.
* ``--pred DIR`` holds ``<video>/<exp_id>/<frame>.png`` binary masks (the
  official submission layout; any non-zero pixel is foreground) and, optionally,
  ``<video>/<exp_id>/scores.json`` ``{"scores": [one per frame]}`` (as
  ``referformer segment --preview`` writes it): the confidence of each mask.

Each expression is one object: its ground truth on a frame is
``Annotations == obj_id``. Reported: J&F, J, F with DAVIS recall and decay
(means over expressions), and overall IoU, mean IoU and precision@0.5..0.9
over all (expression, frame) pairs, and the A2D-Sentences mAP@0.5:0.95 (with
AP@0.5 and AP@0.75): each (expression, frame) pair is a sample with one candidate
mask, ranked by its confidence (1 where no scores.json is given). The table goes
to stdout, the json (summary and per-expression J, F) to ``--out`` (default
``<pred>/evaluation.json``). Where expressions carry ``"attributes": [...]`` (as
``train.bundled.world`` writes them), J&F, J and F are also averaged per attribute.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from annotations.errors import AnnotationError
from annotations.images import read_label_png
from annotations.ytvos import read_meta_expressions
from referformer_core.errors import ReferFormerError
from referformer_core.progress import end_progress, show_progress
from train import metrics


class EvaluationError(ReferFormerError):
    """A missing or malformed input; its message is one line for the user."""


@dataclass(frozen=True)
class Expression:
    """One referring expression: the annotated object, the frames to evaluate, and its text."""

    video: str
    exp_id: str
    obj_id: int
    frames: tuple[str, ...]
    attributes: tuple[str, ...] = ()
    text: str = ""


def read_attributes(meta_path: Path) -> dict[tuple[str, str], tuple[str, ...]]:
    """``(video, exp_id) -> attributes``: the optional ``"attributes"`` list of strings of each expression
    (others are ignored); the file was already validated by :func:`load_expressions`."""
    out = {}
    videos = json.loads(Path(meta_path).read_text()).get("videos", {})
    for video, data in videos.items():
        for exp_id, exp in data.get("expressions", {}).items():
            attributes = exp.get("attributes") if isinstance(exp, dict) else None
            if isinstance(attributes, list) and attributes and all(isinstance(a, str) for a in attributes):
                out[(video, str(exp_id))] = tuple(dict.fromkeys(attributes))
    return out


def load_expressions(meta_path: Path) -> list[Expression]:
    """Read ``meta_expressions.json`` (:func:`annotations.ytvos.read_meta_expressions`) into a list of
    :class:`Expression`, in file order; frames sorted by name as the official loader sorts them."""
    try:
        videos = read_meta_expressions(meta_path)
    except AnnotationError as exc:
        raise EvaluationError(str(exc)) from None
    attributes = read_attributes(meta_path)
    expressions = []
    for video in videos:
        for exp in video.expressions:
            if exp.obj_id is None:
                raise EvaluationError(
                    f"{meta_path}: expression '{exp.exp_id}' of video '{video.name}' has no obj_id "
                    "(ground truth needs a split with annotations)"
                )
            expressions.append(Expression(video.name, exp.exp_id, exp.obj_id, video.frames,
                                          attributes.get((video.name, exp.exp_id), ()), exp.text))
    if not expressions:
        raise EvaluationError(f"{meta_path} lists no expressions")
    return expressions


def read_label_map(path: Path) -> np.ndarray:
    """Ground-truth label map ``[H, W]`` (pixel value = object id) from a palette or grey PNG."""
    try:
        return read_label_png(path, path, "ground-truth mask")
    except AnnotationError as exc:
        raise EvaluationError(str(exc)) from None


def read_binary_mask(path: Path) -> np.ndarray:
    """Predicted mask ``[H, W]`` bool: any non-zero pixel (in any channel) is foreground."""
    if not path.is_file():
        raise EvaluationError(f"missing predicted mask: {path}")
    try:
        with Image.open(path) as image:
            mask = np.asarray(image)
    except OSError as exc:
        raise EvaluationError(f"cannot read predicted mask {path}: {exc}") from exc
    return mask.any(axis=-1) if mask.ndim == 3 else mask > 0


def read_scores(folder: Path, num_frames: int) -> np.ndarray:
    """``[T]`` confidence of each predicted mask: ``folder/scores.json``'s ``scores``, else all 1."""
    path = folder / "scores.json"
    if not path.is_file():
        return np.ones(num_frames)
    try:
        scores = json.loads(path.read_text()).get("scores")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
        raise EvaluationError(f"cannot read {path}: {exc}") from exc
    if not isinstance(scores, list) or len(scores) != num_frames or \
            not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in scores):
        raise EvaluationError(f"{path}: 'scores' must be a list of {num_frames} numbers, one per frame")
    return np.asarray(scores, dtype=np.float64)


def _progress(done: int, total: int) -> None:
    show_progress(f"  evaluating videos {done}/{total}")
    if done == total:
        end_progress()


def evaluate(
    pred_dir: Path,
    gt_dir: Path,
    meta_path: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Evaluate every expression of the ground truth; returns the json-ready result.

    Keys: ``summary`` (J&F, J, J-Recall, J-Decay, F, F-Recall, F-Decay,
    overall IoU, mean IoU as fractions, ``P@0.5`` .. ``P@0.9``, ``mAP@0.5:0.95``,
    ``AP@0.5``, ``AP@0.75``), ``counts``
    (videos, expressions, frames) and ``per_expression``
    (``"<video>/<exp_id>" -> {"J", "F", "J&F"}``), and where expressions carry attributes
    ``per_attribute`` (``attribute -> {"J&F", "J", "F", "count"}``: means over the expressions having
    it, attributes sorted by name). Raises :class:`EvaluationError`.
    """
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    if not pred_dir.is_dir():
        raise EvaluationError(f"prediction folder not found: {pred_dir}")
    if not gt_dir.is_dir():
        raise EvaluationError(f"ground-truth folder not found: {gt_dir}")
    annotations = gt_dir / "Annotations"
    if not annotations.is_dir():
        raise EvaluationError(f"ground-truth folder has no Annotations/ folder: {gt_dir}")
    expressions = load_expressions(meta_path if meta_path is not None else gt_dir / "meta_expressions.json")

    by_video: dict[str, list[Expression]] = {}
    for exp in expressions:
        by_video.setdefault(exp.video, []).append(exp)

    results, per_expression, inters, unions, scores = [], {}, [], [], []
    by_attribute: dict[str, list[dict]] = {}
    for done, (video, video_exps) in enumerate(by_video.items(), start=1):
        label_maps = {
            frame: read_label_map(annotations / video / f"{frame}.png")
            for frame in dict.fromkeys(f for e in video_exps for f in e.frames)
        }
        for exp in video_exps:
            gt = np.stack([label_maps[f] == exp.obj_id for f in exp.frames])
            pred = np.stack([read_binary_mask(pred_dir / video / exp.exp_id / f"{f}.png") for f in exp.frames])
            if pred.shape != gt.shape:
                raise EvaluationError(
                    f"prediction size {pred.shape[1:]} differs from ground truth {gt.shape[1:]} "
                    f"for {pred_dir / video / exp.exp_id}"
                )
            result = metrics.j_and_f(pred, gt)
            results.append(result)
            per_expression[f"{video}/{exp.exp_id}"] = {"J": result.j.mean, "F": result.f.mean, "J&F": result.j_and_f}
            for attribute in exp.attributes:
                by_attribute.setdefault(attribute, []).append(per_expression[f"{video}/{exp.exp_id}"])
            inter, union = metrics.intersection_union(pred, gt)
            inters.append(inter)
            unions.append(union)
            scores.append(read_scores(pred_dir / video / exp.exp_id, len(exp.frames)))
        if progress is not None:
            progress(done, len(by_video))

    inter = np.concatenate(inters)
    union = np.concatenate(unions)
    summary = metrics.summarize_j_and_f(results)
    summary["overall IoU"] = metrics.overall_iou(inter, union)
    summary["mean IoU"] = metrics.mean_iou(inter, union)
    ious = metrics.sample_iou(inter, union)
    summary.update({f"P@{t}": v for t, v in metrics.precision_at(ious).items()})
    ap = metrics.average_precision([iou[None] for iou in ious], [s[None] for s in np.concatenate(scores)])
    summary["mAP@0.5:0.95"] = metrics.mean_average_precision(ap)
    summary["AP@0.5"], summary["AP@0.75"] = ap[0.5], ap[0.75]
    out = {
        "pred": str(pred_dir),
        "gt": str(gt_dir),
        "counts": {"videos": len(by_video), "expressions": len(results), "frames": int(inter.size)},
        "summary": summary,
        "per_expression": per_expression,
    }
    if by_attribute:
        out["per_attribute"] = {
            attribute: {**{k: float(np.mean([r[k] for r in rows])) for k in ("J&F", "J", "F")}, "count": len(rows)}
            for attribute, rows in sorted(by_attribute.items())
        }
    return out


def format_table(result: dict) -> str:
    """The summary as a two-column text table, values in percent."""
    counts = result["counts"]
    lines = [
        f"{counts['videos']} videos, {counts['expressions']} expressions, {counts['frames']} frames",
        f"{'metric':<14}{'value (%)':>10}",
    ]
    for key, value in result["summary"].items():
        lines.append(f"{key:<14}{100 * value:>10.2f}")
    if result.get("per_attribute"):
        lines.append(f"{'attribute':<14}{'J&F (%)':>10}{'J (%)':>10}{'F (%)':>10}{'count':>8}")
        for key, row in result["per_attribute"].items():
            lines.append(f"{key:<14}{100 * row['J&F']:>10.2f}{100 * row['J']:>10.2f}{100 * row['F']:>10.2f}"
                         f"{row['count']:>8}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 2 bad input)."""
    parser = argparse.ArgumentParser(
        prog="python -m train.evaluate",
        description="J&F, IoU and precision@K of Ref-Youtube-VOS-layout predictions.",
    )
    parser.add_argument("--pred", required=True, type=Path, help="folder of <video>/<exp_id>/<frame>.png masks")
    parser.add_argument("--gt", required=True, type=Path, help="folder with Annotations/ and meta_expressions.json")
    parser.add_argument("--meta", type=Path, help="meta_expressions.json (default: <gt>/meta_expressions.json)")
    parser.add_argument("--out", type=Path, help="json output file (default: <pred>/evaluation.json)")
    args = parser.parse_args(argv)
    try:
        result = evaluate(args.pred, args.gt, args.meta, progress=_progress if sys.stderr.isatty() else None)
        out = args.out if args.out is not None else args.pred / "evaluation.json"
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(result, indent=2))
        except OSError as exc:
            raise EvaluationError(f"cannot write {out}: {exc}") from exc
    except EvaluationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(result))
    print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
