"""Studio latency: from pressing Segment to the first mask stored and to all masks, against ``referformer segment``.

For each generated 360p video (default: 10 s and 60 s at 24 fps, a square moving over a textured background)
the video is imported into a studio project, given one object with an expression, and segmented with
``studio.session.Studio.segment`` exactly as the Segment button does (frames read from the project, masks
written window by window; the model is loaded once beforehand, its load time reported apart).  The same video
is then segmented with ``VideoPredictor.predict`` (what ``referformer segment`` runs, its default window of
36 frames) in the same process.  No trained model is bundled yet, so the model is a randomly initialised one of
``--config`` (default ``small``: EfficientNet-Lite0 + MiniLM-L6; ``resnet50`` is far too slow for a 60 s video on
2 CPU cores) with a tokenizer from ``train.synthetic.write_tokenizer``; speed does not depend on the weights.
The process is pinned to ``--cores`` CPU cores (default 2).  ``peak_rss_gb`` is the process's peak resident
memory so far (``resource.getrusage``), so it only grows from row to row.  ``--json`` adds one last line of
JSON: the longest video's ``first_mask_s``, ``all_masks_s``, ``segment_cli_s``, ``peak_rss_gb`` and every row.

``--sessions N`` then starts a real ``python app.py`` (tiny random model, 96-pixel working size) and runs N
concurrent ``gradio_client`` sessions against it, ``--loops`` times each over open sample / import / add object /
segment / step / mark / undo / redo / export (``tests/studio/soak_sessions.py``), and adds ``sessions``,
``requests``, ``errors``, ``truncated``, ``p50_ms``, ``p95_ms`` (per request), ``server_rss_gb_before`` and
``server_rss_gb_after`` to the JSON.

``--browser`` (needs Chromium at /usr/bin/chromium and Playwright) serves the studio with the same model and
measures ``first_mask_browser_s`` on the longest video: from a click on *Segment object* in headless Chromium to
the viewer showing the first window's masks (the model already loaded by a first run, as for ``first_mask_s``).

    PYTHONPATH=. python benchmarks/bench_app.py [--config small] [--seconds 10 60] [--fps 24] [--json]
    PYTHONPATH=. python benchmarks/bench_app.py --quick --json   # tiny config, one 2 s video at 96p (smoke run)
    PYTHONPATH=. python benchmarks/bench_app.py --quick --sessions 8 --loops 6 --json   # plus 8 API sessions

On 2 busy CPU cores the default run takes hours (the random ``small`` model at 360p runs at seconds per frame);
use ``--device cuda`` on a GPU machine, or fewer ``--seconds``/``--fps``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

EXPRESSION = "the red square"
KEYS = ("first_mask_s", "all_masks_s", "segment_cli_s", "peak_rss_gb")
SESSION_KEYS = ("sessions", "requests", "errors", "truncated", "p50_ms", "p95_ms", "server_rss_gb_before",
                "server_rss_gb_after")


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # ru_maxrss is in KiB on Linux


def write_test_video(path: Path, seconds: float, fps: float, height: int) -> int:
    """A ``height``p 16:9 mp4 of a red square moving over a textured background; its frame count."""
    from referformer_core.overlay import write_video

    width = (height * 16 // 9) // 2 * 2
    count = max(1, int(round(seconds * fps)))
    rng = np.random.default_rng(0)
    texture = rng.integers(60, 200, (height // 4 + 1, width // 4 + 1, 3), dtype=np.uint8)
    background = np.repeat(np.repeat(texture, 4, axis=0), 4, axis=1)[:height, :width]
    side = height // 4

    def frames():
        for t in range(count):
            frame = np.roll(background, t, axis=1).copy()
            x = int((width - side) * (0.5 + 0.45 * np.sin(2 * np.pi * t / max(count, 2))))
            y = height // 2 - side // 2
            frame[y:y + side, x:x + side] = (220, 40, 40)
            yield frame

    write_video(path, frames(), fps=fps)
    return count


def build_model(config: str, out: Path) -> tuple[Path, Path]:
    """A randomly initialised checkpoint of ``config`` and a small tokenizer (``train.synthetic``)."""
    import torch

    from referformer_core.checkpoint import save_checkpoint
    from referformer_core.config import get_config
    from referformer_core.referformer import ReferFormer
    from train.synthetic import write_tokenizer

    torch.manual_seed(0)
    save_checkpoint(ReferFormer(get_config(config)).eval(), out / f"{config}.pth")
    return out / f"{config}.pth", write_tokenizer(out / "tokenizer")


def measure_video(studio, spec, predictor, video: Path, frames: int, short_side: int) -> dict:
    """Import ``video`` into a new project, then time Segment (first and all masks) and ``predict``."""
    from studio.media import ImportOptions

    view = studio.create_project(video.stem).view
    view = studio.import_file(view, video, ImportOptions(1, 20000, short_side)).view
    view = studio.add_object(view, EXPRESSION, "others").view
    project = studio.project(view)
    assert project.video(view.video).frame_count == frames, (project.video(view.video).frame_count, frames)

    start = time.perf_counter()
    steps = studio.segment(view)
    next(steps)  # the first window's masks are stored before it is reported
    first_mask_s = time.perf_counter() - start
    stored_first = len(project.mask_infos(view.video, view.obj_id))
    for _ in steps:
        pass
    all_masks_s = time.perf_counter() - start
    stored = len(project.mask_infos(view.video, view.obj_id))
    if not 0 < stored_first <= stored == frames:
        raise SystemExit(f"{video.name}: {stored_first} masks after the first window, {stored} in all, "
                         f"{frames} frames")

    start = time.perf_counter()
    masks = predictor.predict(video, EXPRESSION)
    segment_cli_s = time.perf_counter() - start
    if len(masks) != frames:
        raise SystemExit(f"{video.name}: predict gave {len(masks)} masks for {frames} frames")
    return {"first_mask_s": first_mask_s, "all_masks_s": all_masks_s, "segment_cli_s": segment_cli_s,
            "peak_rss_gb": peak_rss_gb(), "first_window_masks": stored_first}


def measure_corrections(root: Path, height: int, frames: int = 31, repeats: int = 5) -> dict:
    """Time a brush stroke (store the painted mask + re-render the frame) and a propagation over ``frames - 1``
    frames, on a generated ``height``p video of a textured square moving over a textured background."""
    import cv2
    import numpy as np

    from studio.projects import View
    from studio.session import Studio, StudioConfig

    width = height * 16 // 9
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(0, 255, (height, width, 3)).astype(np.float32), (0, 0), 2)
    background = cv2.normalize(background, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    side = height // 4
    patch = cv2.GaussianBlur(rng.integers(0, 255, (side, side, 3)).astype(np.float32), (0, 0), 2)
    patch = cv2.normalize(patch, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)

    def scene():
        for t in range(frames):
            frame = background.copy()
            x = width // 8 + t * height // 180
            frame[height // 3:height // 3 + side, x:x + side] = patch
            yield frame

    studio = Studio(StudioConfig(root / "corrections", root / "downloads"))
    view = studio.create_project("bench").view
    studio.project(view).add_video("clip", scene())
    view = studio.add_object(View("bench", "clip", 0, None), "the square").view
    layer = np.zeros((height, width, 4), np.uint8)
    layer[height // 3:height // 3 + side, width // 8:width // 8 + side, 3] = 140
    stroke = []
    for _ in range(repeats):
        start = time.perf_counter()
        studio.brush_save(view, {"layers": [layer]})
        studio.frame_image(view)
        stroke.append(time.perf_counter() - start)
    start = time.perf_counter()
    message = studio.propagate(view, "forward", frames - 1).message
    propagate_s = time.perf_counter() - start
    studio.close()
    return {"height": height, "brush_stroke_ms": 1000 * float(np.median(stroke)), "propagate_frames": frames - 1,
            "propagate_s": propagate_s, "propagate_result": message}


def measure_sessions(root: Path, sessions: int, loops: int) -> dict:
    """``sessions`` concurrent API sessions against a real ``app.py`` (see the module docstring)."""
    from tests.studio.app_server import start_app
    from tests.studio.soak_sessions import run_soak

    checkpoint, tokenizer = build_model("tiny", root)
    clip = root / "soak" / "clip.mp4"
    clip.parent.mkdir(parents=True, exist_ok=True)
    write_test_video(clip, 2.0, 4.0, 96)
    server = start_app(root / "server", checkpoint, tokenizer, clip)
    try:
        report = run_soak(server, clip, root / "clients", sessions=sessions, loops=loops, max_seconds=3600)
    finally:
        server.stop()
    summary = report.summary()
    summary["error_lines"] = (report.errors + report.truncated)[:10]
    return summary


def measure_browser(root: Path, video: Path, checkpoint: Path, tokenizer: Path, short_side: int) -> float:
    """``first_mask_browser_s`` (see the module docstring)."""
    from playwright.sync_api import sync_playwright

    from tests.studio.app_server import start_app
    from tests.studio.test_app_browser import CHROMIUM, CHROMIUM_ARGS, wait_loaded, wait_text
    from tests.studio.test_app_browser_queue import first_overlay_s

    server = start_app(root / "browser_server", checkpoint, tokenizer, video, model_short_side=short_side)
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            page = chromium.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(3_600_000)
            page.goto(server.url)
            wait_loaded(page)
            page.locator("#project_name").get_by_role("textbox").fill("bench")
            page.click("#project_create")
            wait_text(page, "status", "project bench: add a video")
            page.set_input_files("#upload input[type=file]", str(video))
            wait_text(page, "message", f"imported {video.stem}")
            for n, text in enumerate((EXPRESSION, "the square on the right")):
                page.locator("#obj_expression").get_by_role("textbox").fill(text)
                page.click("#obj_add")
                wait_text(page, "message", f"added object {n + 1}")
                if n == 0:  # a first run loads the model
                    page.click("#segment_obj")
                    wait_text(page, "message", "✅ done", timeout=3_600_000)
            seconds = first_overlay_s(page)
            wait_text(page, "message", "✅ done", timeout=3_600_000)
            chromium.close()
    finally:
        server.stop()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="small", help="model config (random weights; default small)")
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 60.0], help="video lengths")
    parser.add_argument("--fps", type=float, default=24.0)
    parser.add_argument("--height", type=int, default=360, help="video height (and the model's short side)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cores", type=int, default=2, help="CPU cores the process is pinned to (0: all)")
    parser.add_argument("--quick", action="store_true", help="tiny config, one 2 s video at 4 fps, 96p")
    parser.add_argument("--corrections-height", type=int, default=720, help="video height for the brush and "
                        "propagation timings")
    parser.add_argument("--sessions", type=int, default=0, help="also run this many concurrent API sessions "
                        "against a real app.py (0: none)")
    parser.add_argument("--loops", type=int, default=3, help="loops of each API session")
    parser.add_argument("--browser", action="store_true", help="also time the first mask in headless Chromium")
    parser.add_argument("--json", action="store_true", help="print one last JSON line with the results")
    args = parser.parse_args()
    if args.quick:
        args.config, args.seconds, args.fps, args.height, args.corrections_height = "tiny", [2.0], 4.0, 96, 240
    if args.cores:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.cores])

    import torch

    from referformer_core.predictor import VideoPredictor
    from referformer_core.settings import RunSettings
    from studio.session import Studio, StudioConfig

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_app_") as tmp:
        root = Path(tmp)
        checkpoint, tokenizer = build_model(args.config, root)
        spec = RunSettings(checkpoint=str(checkpoint), text_encoder=str(tokenizer), device=args.device,
                           short_side=args.height)
        studio = Studio(StudioConfig(root / "projects", root / "downloads", spec))
        start = time.perf_counter()
        studio.models.get(spec)
        model_load_s = time.perf_counter() - start
        predictor = VideoPredictor.from_checkpoint(checkpoint, text_encoder=str(tokenizer), device=args.device,
                                                   short_side=args.height, window=36)
        print(f"model: {args.config} (random weights) on {args.device}, {torch.get_num_threads()} threads; "
              f"loaded in {model_load_s:.1f} s; studio windows of {spec.window} frames (first {spec.first_window}), "
              f"referformer segment windows of 36", flush=True)
        for seconds in args.seconds:
            video = root / f"video_{seconds:g}s.mp4"
            frames = write_test_video(video, seconds, args.fps, args.height)
            row = {"video": video.name, "seconds": seconds, "fps": args.fps, "frames": frames,
                   "height": args.height, **measure_video(studio, spec, predictor, video, frames, args.height)}
            rows.append(row)
            print(f"  {video.name}: {frames} frames done in {row['all_masks_s']:.1f} s", flush=True)
        studio.close()
        corrections = measure_corrections(root, args.corrections_height)
        served = measure_sessions(root, args.sessions, args.loops) if args.sessions else None
        if args.browser:
            rows[-1]["first_mask_browser_s"] = measure_browser(root, video, checkpoint, tokenizer, args.height)
            print(f"  {video.name}: first mask in the browser after {rows[-1]['first_mask_browser_s']:.2f} s "
                  f"(through the studio's API in process: {rows[-1]['first_mask_s']:.2f} s)", flush=True)
    print(f"{'video':<16} {'frames':>6} {'first_mask_s':>12} {'all_masks_s':>11} {'segment_cli_s':>13} "
          f"{'peak_rss_gb':>11}")
    for r in rows:
        label = f"{r['seconds']:g} s {r['height']}p"
        print(f"{label:<16} {r['frames']:>6} {r['first_mask_s']:>12.2f} {r['all_masks_s']:>11.2f} {r['segment_cli_s']:>13.2f} "
              f"{r['peak_rss_gb']:>11.2f}")
    print(f"({args.config} model with random weights on {args.device}; resnet50 is too slow for 60 s videos on "
          f"2 cores)")
    c = corrections
    print(f"\n{'corrections at':<16} {'brush_stroke_ms':>15} {'propagate_s':>11}  (propagate over {c['propagate_frames']} "
          f"frames; aims: 150 ms and 3 s at 720p)")
    print(f"{str(c['height']) + 'p':<16} {c['brush_stroke_ms']:>15.1f} {c['propagate_s']:>11.2f}  {c['propagate_result']}")
    if served:
        print(f"\n{'sessions':>8} {'loops':>5} {'requests':>8} {'errors':>6} {'truncated':>9} {'p50_ms':>7} "
              f"{'p95_ms':>7} {'rss_gb_before':>13} {'rss_gb_after':>12} {'peak_rss_gb':>11}")
        print(f"{served['sessions']:>8} {served['loops']:>5} {served['requests']:>8} {served['errors']:>6} "
              f"{served['truncated']:>9} {served['p50_ms']:>7.0f} {served['p95_ms']:>7.0f} "
              f"{served['server_rss_gb_before']:>13.2f} {served['server_rss_gb_after']:>12.2f} "
              f"{served['server_peak_rss_gb']:>11.2f}")
        for line in served["error_lines"]:
            print("  " + line)
    if args.json:
        last = rows[-1]
        print(json.dumps({"config": args.config, "device": args.device, "cores": len(os.sched_getaffinity(0)),
                          "model_load_s": model_load_s, **{k: last[k] for k in KEYS}, "results": rows,
                          **({"first_mask_browser_s": last["first_mask_browser_s"]} if args.browser else {}),
                          "brush_stroke_ms": corrections["brush_stroke_ms"], "propagate_s": corrections["propagate_s"],
                          "corrections": corrections,
                          **({k: served[k] for k in SESSION_KEYS} | {"session_run": served} if served else {})}))


if __name__ == "__main__":
    main()
