import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_export_runs_and_reports_json():
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_export.py"), "--frames", "3", "--json"],
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    report = json.loads(lines[-1])
    assert report["frames"] == 3
    steps = {(r["step"], r["format"]) for r in report["results"]}
    assert steps == {(s, f) for s in ("export", "import") for f in ("ytvos", "ytvis", "coco")}
    assert report["max_export_s"] == max(r["seconds"] for r in report["results"] if r["step"] == "export") > 0
    assert all(r["peak_rss_mib"] > 10 for r in report["results"])
    assert any(line.startswith("ytvos") for line in lines[:-1]), "the table is printed"
