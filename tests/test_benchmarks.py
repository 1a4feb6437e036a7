import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))

from benchmarks.run import child_command  # noqa: E402


def test_quick_benchmark_runs_end_to_end(tmp_path, data_root):
    out = tmp_path / "out"
    command = child_command(["--quick", "--methods", "mean-shape,ert,ert-q16,lbf-fast", "--data", str(data_root),
                             "--cache", str(tmp_path / "cache"), "--out", str(out), "--repeats", "1",
                             "--threads", "2"])
    subprocess.run(command, check=True, cwd=tmp_path, timeout=300)
    results = json.loads((out / "results.json").read_text())
    rows = {row["key"]: row for row in results["rows"]}
    assert set(rows) == {"mean-shape", "ert", "ert-q16", "lbf-fast"}
    for key in ("ert", "lbf-fast"):
        assert rows[key]["accuracy"]["nme_inter-ocular"] < rows["mean-shape"]["accuracy"]["nme_inter-ocular"]
        assert set(rows[key]["phase_us_per_face"]) == {"sampling", "walking", "adding"}
    assert rows["ert"]["training"]["seconds"] > 0 and rows["ert"]["model_bytes"] > 0
    assert rows["ert"]["faces_per_second"]["1"] > 0
    table = (out / "table.md").read_text()
    assert "| cascade ERT |" in table and "| cascade LBF fast |" in table and "Where prediction time goes" in table
