"""``referformer``: one command whose subcommands are thin fronts of the packages that own them."""
import subprocess
import sys
from pathlib import Path

import pytest

from referformer_cli import COMMANDS, main
from referformer_core import memory

ROOT = Path(__file__).resolve().parents[2]


def test_usage_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("studio", "segment", "annotate", "train", "evaluate"))
    assert main([]) == 2 and "usage: referformer COMMAND" in capsys.readouterr().err


def test_an_unknown_command_is_one_readable_line(capsys):
    assert main(["segmnet", "v.mp4"]) == 2
    assert "unknown command 'segmnet'; choose one of studio, segment, annotate, train, evaluate" in \
        capsys.readouterr().err


@pytest.mark.parametrize("command, owner", [("segment", "referformer segment"), ("annotate", "referformer annotate"),
                                            ("train", "python -m train"), ("evaluate", "python -m train.evaluate"),
                                            ("studio", "python app.py")])
def test_each_command_is_its_owners_command_line(capsys, command, owner):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith(f"usage: {owner}")
    assert command in COMMANDS


def test_the_cores_command_line_imports_nothing_above_the_core():
    code = ("import sys, referformer_core.cli; referformer_core.cli.build_parser(); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'annotations', 'train', 'studio', 'app'}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr[-2000:]


@pytest.mark.parametrize("flags, window, budget", [([], None, memory.DEFAULT_MAX_MEMORY), (["--window", "0"], 0, None),
                                                   (["--window", "3"], 3, None)])
def test_annotate_follows_the_default_budget_unless_a_window_is_given(run_settings, capsys, tmp_path, flags,
                                                                      window, budget):
    args = ["annotate", "--videos", str(tmp_path), "--expressions", str(tmp_path / "e.json"), "--out",
            str(tmp_path / "out"), "--device", "cpu", "--no-progress", *flags]
    assert main(args) == 2 and "stop here" in capsys.readouterr().err
    assert (run_settings[0].window, run_settings[0].budget) == (window, budget)
