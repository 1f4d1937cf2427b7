"""``referformer annotate``: the model over many videos into a project the studio opens (:mod:`studio.batch`).

    referformer annotate --videos videos/ --expressions meta_expressions.json --out project/ --checkpoint ...
    referformer annotate ... --tracker facebook/sam2.1-hiera-tiny   # then the tracker re-draws every object's masks
    torchrun --nproc_per_node 4 -m referformer_cli annotate ...      # one share of the videos per GPU
"""
from __future__ import annotations

import argparse
import sys

from referformer_core.cli import model_arguments, run_settings
from referformer_core.errors import ReferFormerError

from .batch import AnnotateOptions, annotate
from .tracking import refine_arguments, refine_settings

EXPORT_FORMATS = ("ytvos", "ytvis", "coco")


def build_parser(prog: str = "referformer annotate") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="pre-annotate many videos into a studio project "
                                                            "(resumable; under torchrun, one share of the videos "
                                                            "per process)")
    parser.add_argument("--videos", required=True, help="folder of video files and/or frame folders, or a text file "
                                                        "listing them (one path a line)")
    parser.add_argument("--expressions", required=True, help="Ref-Youtube-VOS meta_expressions.json, or json/csv "
                                                             "records: video, obj_id, expression[, category]")
    parser.add_argument("--out", required=True, help="project folder: created, or continued when it exists")
    parser.add_argument("--export", nargs=2, metavar=("FORMAT", "DIR"), help="also export the project at the end "
                                                                            "(ytvos, ytvis or coco)")
    parser.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    model_arguments(parser, "auto")
    refine_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.export and args.export[0] not in EXPORT_FORMATS:
            raise ReferFormerError(f"--export: unknown format {args.export[0]!r}; "
                                   f"choose one of {', '.join(EXPORT_FORMATS)}")
        summary = annotate(AnnotateOptions(
            videos=args.videos, expressions=args.expressions, out=args.out, settings=run_settings(args),
            stride=args.stride, export=tuple(args.export) if args.export else None, progress=not args.no_progress,
            tracker=refine_settings(args, "cpu"), refine_frames=args.refine_frames))
    except ReferFormerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if summary is not None:
        print("\n".join(summary.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
