"""Export a long 720p video with 3 objects to each annotation format and import it back.

Builds a project with one ``--frames`` x 720p video (default 1,000 frames) and 3 moving objects, then
runs each step in its own process (pinned to at most 2 CPU cores) and reports its wall time and the
process's peak resident memory.  ``--json`` adds one last line of JSON with ``max_export_s`` (the
slowest export), ``max_import_s`` and every measurement.

    PYTHONPATH=. python benchmarks/bench_export.py [--frames 1000] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annotations import Project, export_project, import_into  # noqa: E402

FORMATS = ("ytvos", "ytvis", "coco")
ENTRY = {"ytvos": "", "ytvis": "instances.json", "coco": "annotations.json"}
HEIGHT, WIDTH, OBJECTS, CORES = 720, 1280, 3, 2


def build_project(folder: Path, count: int) -> Project:
    """One video of ``count`` textured 720p frames, 3 objects (ellipses) with a model mask on every frame."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (HEIGHT // 8, WIDTH // 8, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]

    def frames():
        for t in range(count):
            shifted = np.roll(texture, t, axis=1)
            yield np.repeat(np.repeat(shifted, 8, axis=0), 8, axis=1)

    project = Project.create(folder)
    project.add_video("video", frames(), fps=30.0, source_path="synthetic.mp4")
    for k in range(OBJECTS):
        project.add_object("video", [f"object number {k + 1}"], category=f"category{k + 1}")
        masks = {}
        for t in range(count):
            cy = HEIGHT / 2 + HEIGHT / 4 * np.sin(2 * np.pi * (t / 200 + k / OBJECTS))
            cx = WIDTH * (k + 1) / (OBJECTS + 1) + 100 * np.cos(2 * np.pi * t / 300)
            masks[t] = ((yy - cy) / 120) ** 2 + ((xx - cx) / 90) ** 2 <= 1
        project.set_masks("video", k + 1, masks, "model", {t: 0.9 for t in range(count)})
    return project


def run_step(step: str, fmt: str, project: Path, out: Path) -> None:
    """Child process: one export or import; prints its wall time as JSON."""
    start = time.perf_counter()
    if step == "export":
        with Project.open(project) as p:
            export_project(p, fmt, out)
    else:
        with Project.create(out) as p:
            import_into(p, fmt, project / ENTRY[fmt])
    print(json.dumps({"seconds": time.perf_counter() - start}))


def measure(step: str, fmt: str, source: Path, out: Path) -> dict:
    """Run one step in a fresh process pinned to <= 2 cores; wall time and peak RSS of that process."""
    cores = sorted(os.sched_getaffinity(0))[:CORES]
    child = subprocess.Popen(
        [sys.executable, __file__, "--step", step, "--format", fmt, "--source", str(source), "--out", str(out)],
        stdout=subprocess.PIPE, preexec_fn=lambda: os.sched_setaffinity(0, cores))
    _, status, usage = os.wait4(child.pid, 0)
    output = child.stdout.read().decode()
    child.stdout.close()
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{step} {fmt} failed with exit code {child.returncode}")
    return {"step": step, "format": fmt, "seconds": json.loads(output.splitlines()[-1])["seconds"],
            "peak_rss_mib": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--json", action="store_true", help="print one last JSON line with the results")
    parser.add_argument("--step", choices=["export", "import"], help=argparse.SUPPRESS)
    parser.add_argument("--format", choices=FORMATS, help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        run_step(args.step, args.format, args.source, args.out)
        return
    with tempfile.TemporaryDirectory(prefix="bench_export_") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        build_project(root / "project", args.frames).close()
        print(f"built {args.frames} frames {WIDTH}x{HEIGHT}, {OBJECTS} objects in "
              f"{time.perf_counter() - start:.1f} s; each step below runs on <= {CORES} cores", flush=True)
        results = []
        for fmt in FORMATS:
            results.append(measure("export", fmt, root / "project", root / f"export_{fmt}"))
            results.append(measure("import", fmt, root / f"export_{fmt}", root / f"import_{fmt}"))
    print(f"{'format':<8} {'export s':>9} {'export MiB':>11} {'import s':>9} {'import MiB':>11}")
    for fmt in FORMATS:
        ex, im = (next(r for r in results if r["format"] == fmt and r["step"] == s) for s in ("export", "import"))
        print(f"{fmt:<8} {ex['seconds']:>9.2f} {ex['peak_rss_mib']:>11.0f} {im['seconds']:>9.2f} "
              f"{im['peak_rss_mib']:>11.0f}")
    if args.json:
        print(json.dumps({
            "frames": args.frames, "height": HEIGHT, "width": WIDTH, "objects": OBJECTS,
            "max_export_s": max(r["seconds"] for r in results if r["step"] == "export"),
            "max_import_s": max(r["seconds"] for r in results if r["step"] == "import"),
            "results": results,
        }))


if __name__ == "__main__":
    main()
