"""Drive one running studio with N concurrent ``gradio_client`` sessions (the soak test and ``bench_app.py``).

Not a test module. Each session makes its own project, imports the same clip, then loops: open a sample, go back
to its project, add an object, segment it, step frames, mark a frame reviewed, undo, redo, export. Every request
is timed; an error is a raised exception or a message starting with ⚠️; a truncated response is a download that
broke off or a picture that does not decode. At the end each project's export must hold exactly the objects and
reviewed frames its session made.
"""
from __future__ import annotations

import json
import re
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from tests.studio.app_server import AppServer

DISPLAY = (False, True, 0.5)
VIEWER, CURVE, STATUS, MESSAGE = 6, 7, 8, 9
TRUNCATION = re.compile(r"(?i)peer closed|incomplete|content-length|too little data|truncat")


@dataclass
class SoakReport:
    """What the sessions saw: requests, their latencies (ms), errors and truncations (one line each)."""

    sessions: int
    loops: int
    loops_done: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    server_rss_gb_before: float = 0.0
    server_rss_gb_after: float = 0.0
    server_peak_rss_gb: float = 0.0
    temp_mb_after: float = 0.0
    wall_s: float = 0.0

    def summary(self) -> dict:
        ordered = sorted(self.latencies_ms) or [0.0]
        return {"sessions": self.sessions, "loops": self.loops, "loops_done": self.loops_done,
                "requests": len(self.latencies_ms),
                "errors": len(self.errors), "truncated": len(self.truncated),
                "p50_ms": ordered[len(ordered) // 2],
                "p95_ms": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
                "server_rss_gb_before": self.server_rss_gb_before, "server_rss_gb_after": self.server_rss_gb_after,
                "server_peak_rss_gb": self.server_peak_rss_gb, "temp_mb_after": self.temp_mb_after,
                "wall_s": self.wall_s}


def process_rss_gb(pid: int) -> tuple[float, float]:
    """``(current, peak)`` resident memory of process ``pid`` in GiB (Linux ``/proc``)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return tuple(int(fields[key].split()[0]) / 1024 ** 2 for key in ("VmRSS", "VmHWM"))  # type: ignore[return-value]


def folder_mb(folder: Path) -> float:
    total = 0
    for path in folder.rglob("*"):
        try:
            total += path.stat().st_size if path.is_file() else 0
        except FileNotFoundError:
            pass
    return total / 1024 ** 2


class Session:
    """One client and its own project; every call is timed and checked."""

    def __init__(self, server: AppServer, index: int, folder: Path, report: SoakReport, lock: threading.Lock):
        from gradio_client import Client

        self.index, self.report, self.lock = index, report, lock
        self.name = f"soak-{index}"
        self.client = Client(server.url, verbose=False, download_files=str(folder))
        self.expressions: list[str] = []
        self.reviewed: set[int] = set()

    def call(self, api_name: str, *args, screen: bool = True):
        start = time.perf_counter()
        try:
            if api_name in ("/segment", "/segment_all"):
                job = self.client.submit(*DISPLAY, *args, api_name=api_name)
                result = job.result(timeout=600)
            else:
                result = self.client.predict(*((DISPLAY if screen else ()) + args), api_name=api_name)
        except Exception as exc:  # counted, not raised: the soak reports every failure
            line = f"session {self.index} {api_name}: {type(exc).__name__}: {str(exc)[:200]}"
            with self.lock:
                (self.report.truncated if TRUNCATION.search(str(exc)) else self.report.errors).append(line)
            return None
        elapsed = 1000 * (time.perf_counter() - start)
        with self.lock:
            self.report.latencies_ms.append(elapsed)
        if screen:
            self.check_screen(api_name, result)
        return result

    def check_screen(self, api_name: str, result) -> None:
        if str(result[MESSAGE]).startswith("⚠️"):
            self.fail(f"{api_name}: {result[MESSAGE]}")
        for index in (VIEWER, CURVE):
            path = result[index]
            if path and cv2.imread(str(path)) is None:
                with self.lock:
                    self.report.truncated.append(f"session {self.index} {api_name}: {Path(path).name} does not decode")

    @staticmethod
    def said(result, index: int = MESSAGE) -> str:
        """The message of a call's ``result`` (``None`` when the call failed)."""
        return "(failed)" if result is None else str(result[index])

    def fail(self, line: str) -> None:
        with self.lock:
            self.report.errors.append(f"session {self.index} {line}")

    def expect(self, ok: bool, line: str) -> None:
        if not ok:
            self.fail(line)

    def start(self, video: Path) -> None:
        from gradio_client import handle_file

        self.call("/create_project", self.name)
        result = self.call("/import_video", handle_file(str(video)), 1, 2000, 360)
        self.expect(result is not None and str(result[MESSAGE]).startswith(f"imported {video.stem}"),
                    f"import: {result and result[MESSAGE]}")

    def loop(self, n: int, sample: str | None) -> None:
        if sample:
            result = self.call("/open_sample", sample)
            self.expect("Sample" in self.said(result), f"open sample: {self.said(result)}")
        self.call("/open_project", self.name)
        text = f"the red square {self.index} {n}"
        result = self.call("/add_object", text, "others")
        if result is not None and str(result[MESSAGE]).startswith("added object"):
            self.expressions.append(text)
        else:
            self.fail(f"add object: {result and result[MESSAGE]}")
        result = self.call("/segment", False)
        self.expect(self.said(result).startswith("✅ done"), f"segment: {self.said(result)}")
        frame = n % 8
        self.call("/goto", frame)
        self.call("/next_frame")
        self.call("/prev_frame")
        result = self.call("/mark_reviewed")
        if result is not None and str(result[MESSAGE]) == f"frame {frame} marked reviewed":
            self.reviewed.add(frame)
        else:
            self.fail(f"mark reviewed: {result and result[MESSAGE]}")
        result = self.call("/undo")
        self.expect(self.said(result).startswith("undid: mark"), f"undo: {self.said(result)}")
        result = self.call("/redo")
        self.expect(self.said(result).startswith("redid: mark"), f"redo: {self.said(result)}")
        result = self.call("/export", "YouTube-VIS", False, screen=False)
        self.expect(self.said(result, 1).startswith("✅ exported 1 video(s)"), f"export: {self.said(result, 1)}")

    def check_project(self) -> None:
        """The project holds exactly this session's objects and reviewed frames."""
        result = self.call("/export", "Ref-Youtube-VOS", False, screen=False)
        if result is None or not result[0]:
            return self.fail(f"final export: {result and result[1]}")
        with zipfile.ZipFile(result[0]) as zf:
            meta = json.loads(next(zf.read(n) for n in zf.namelist() if n.endswith("meta_expressions.json")))
        [video] = meta["videos"].values()
        found = sorted(e["exp"] for e in video["expressions"].values())
        self.expect(found == sorted(self.expressions), f"objects {found} != {sorted(self.expressions)}")
        result = self.call("/export", "COCO", True, screen=False)
        frames = len(self.reviewed)
        self.expect(result is not None and str(result[1]).startswith(f"✅ exported 1 video(s), {frames} frames"),
                    f"reviewed frames: {result and result[1]} (expected {frames})")


def run_soak(server: AppServer, video: Path, folder: Path, sessions: int = 2, loops: int = 3,
             max_seconds: float = 600.0, sample: str | None = "sample_1") -> SoakReport:
    """Run ``sessions`` concurrent sessions of ``loops`` loops (no new loop after ``max_seconds``, but one at least)."""
    report = SoakReport(sessions, loops)
    report.server_rss_gb_before = process_rss_gb(server.process.pid)[0]
    lock = threading.Lock()
    start = time.monotonic()

    def one(index: int) -> None:
        session = Session(server, index, folder / f"session{index}", report, lock)
        session.start(video)
        for n in range(loops):
            if n and time.monotonic() - start > max_seconds:  # every session runs one loop at least
                break
            session.loop(n, sample)
            with lock:
                report.loops_done += 1
        session.check_project()

    with ThreadPoolExecutor(sessions) as pool:
        for future in [pool.submit(one, i) for i in range(sessions)]:
            try:
                future.result()
            except Exception as exc:
                report.errors.append(f"a session stopped: {type(exc).__name__}: {str(exc)[:200]}")
    report.wall_s = time.monotonic() - start
    report.server_rss_gb_after, report.server_peak_rss_gb = process_rss_gb(server.process.pid)
    report.temp_mb_after = folder_mb(server.temp_dir)
    return report
