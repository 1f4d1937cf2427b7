"""``referformer``: one command for the whole project, each subcommand a thin front of the package that owns it.

    referformer studio [--checkpoint FILE] [--port 7860]      the studio in the browser (app.py)
    referformer segment VIDEO "the red car" [--out masks/]     masks of one object (referformer_core.cli)
    referformer segment ... --tracker NAME [--refine-frames 3]   then re-drawn by a tracker (studio.segment_cli)
    referformer annotate --videos DIR --expressions FILE --out PROJECT   batch pre-annotation (studio.batch_cli)
    referformer annotate ... --tracker NAME [--refine-frames 3]  every object's masks re-drawn by a tracker
    referformer train --data DIR --out RUN                    fine-tuning (train; also ``python -m train``)
    referformer evaluate --pred MASKS --gt DIR                 J&F of predicted masks (train.evaluate)
    referformer download facebook/sam2.1-hiera-tiny            weights into the Hugging Face cache (studio.download)

``referformer COMMAND --help`` lists a command's flags. Under ``torchrun``: ``torchrun --nproc_per_node 4 -m
referformer_cli annotate ...`` (or ``train``).
"""
from __future__ import annotations

import sys
from collections.abc import Callable

Command = Callable[[list[str]], int]


def _studio(argv: list[str]) -> int:
    import app

    return app.main(argv)


def _segment(argv: list[str]) -> int:
    from studio import segment_cli

    return segment_cli.main(argv)


def _annotate(argv: list[str]) -> int:
    from studio import batch_cli

    return batch_cli.main(argv)


def _train(argv: list[str]) -> int:
    from train.__main__ import main

    return main(argv)


def _evaluate(argv: list[str]) -> int:
    from train.evaluate import main

    return main(argv)


def _download(argv: list[str]) -> int:
    from studio.download import main

    return main(argv)


COMMANDS: dict[str, tuple[Command, str]] = {
    "studio": (_studio, "the studio in the browser (what `python app.py` starts)"),
    "segment": (_segment, "segment the object an expression refers to in a video"),
    "annotate": (_annotate, "pre-annotate many videos into a studio project"),
    "train": (_train, "fine-tune a checkpoint on a Ref-Youtube-VOS-layout folder"),
    "evaluate": (_evaluate, "J&F of predicted masks against a Ref-Youtube-VOS-layout folder"),
    "download": (_download, "fetch a tracker's or text encoder's weights into the Hugging Face cache"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return "usage: referformer COMMAND [ARGS...]\n\ncommands:\n" + "\n".join(lines) + \
        "\n\n`referformer COMMAND --help` lists a command's flags"


def main(argv: list[str] | None = None) -> int:
    """Run ``referformer COMMAND ARGS...``; the command's exit status (2: an unknown command)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"referformer: unknown command {name!r}; choose one of {', '.join(COMMANDS)}\n\n{usage()}",
              file=sys.stderr)
        return 2
    return COMMANDS[name][0](rest)


if __name__ == "__main__":
    sys.exit(main())
