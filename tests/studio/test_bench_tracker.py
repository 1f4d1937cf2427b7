"""The tracker benchmark's --quick run (two fresh processes of imports: about a minute on 2 shared cores)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_tracker_quick_reports_json():
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_tracker.py"), "--quick", "--models",
                             "sam2.1-tiny,grabcut", "--default", "sam2.1-tiny", "--frames", "2", "--rss-frames", "6",
                             "--json"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    report = json.loads(lines[-1])
    assert report["default"] == "sam2.1-tiny" and report["quick"] and report["rss_frames"] == 6
    for key in ("first_mask_after_click_ms", "refine_click_ms", "track_fps_360p", "track_fps_720p",
                "peak_rss_gb_300f"):
        assert report[key] > 0, key
    assert [(r["model"], r["input"]) for r in report["rows"]] == [
        ("sam2.1-tiny", "360p"), ("sam2.1-tiny", "720p"), ("grabcut", "360p"), ("grabcut", "720p")]
    assert all(r["frames"] == 2 for r in report["rows"])
    assert 0.1 < report["peak_rss_gb_300f"] < 16
    assert any(line.startswith("grabcut      720p") for line in lines[:-1]), "the table is printed"
