import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_app_quick_reports_json():
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_app.py"), "--quick", "--sessions", "2",
                             "--loops", "1", "--json"], capture_output=True, text=True, timeout=240, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    report = json.loads(lines[-1])
    assert report["config"] == "tiny" and report["cores"] <= 2
    for key in ("first_mask_s", "all_masks_s", "segment_cli_s", "peak_rss_gb"):
        assert report[key] > 0, key
    assert report["first_mask_s"] < report["all_masks_s"]
    assert 0.1 < report["peak_rss_gb"] < 16
    [row] = report["results"]
    assert row["frames"] == 8 and 0 < row["first_window_masks"] < 8
    assert {k: row[k] for k in ("first_mask_s", "all_masks_s", "segment_cli_s")} == \
        {k: report[k] for k in ("first_mask_s", "all_masks_s", "segment_cli_s")}
    assert any(line.startswith("2 s 96p") for line in lines[:-1]), "the table is printed"
    assert report["brush_stroke_ms"] > 0 and report["propagate_s"] > 0
    assert report["corrections"]["height"] == 240 and "propagated to" in report["corrections"]["propagate_result"]
    assert report["sessions"] == 2 and report["errors"] == 0 and report["truncated"] == 0, report["session_run"]
    assert report["requests"] >= 2 * 14 and 0 < report["p50_ms"] <= report["p95_ms"]
    assert 0.1 < report["server_rss_gb_before"] <= report["session_run"]["server_peak_rss_gb"] < 16
    assert report["server_rss_gb_after"] > 0
