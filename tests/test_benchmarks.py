import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

import pytest

from benchmarks import PUBLISHED, SCRATCH, output_path
from benchmarks.run import ROOT, child_command


def test_only_an_explicit_out_publishes_and_never_a_quick_run(tmp_path):
    import benchmarks.pipeline
    import benchmarks.run
    assert SCRATCH not in (PUBLISHED, *PUBLISHED.parents)
    for suite in (benchmarks.run, benchmarks.pipeline):          # refused before any work
        with pytest.raises(SystemExit, match="not published"):
            suite.main(["--quick", "--out", str(PUBLISHED)])
    with pytest.raises(SystemExit, match="not published"):
        output_path(PUBLISHED, quick=True)
    with pytest.raises(SystemExit, match="not published"):
        output_path(PUBLISHED / "sub", quick=True)
    assert output_path(PUBLISHED) == PUBLISHED and output_path(tmp_path, quick=True) == tmp_path


def test_quick_benchmark_runs_end_to_end(tmp_path, data_root):
    out = tmp_path / "out"
    methods = "mean-shape,ert,ert-q16,lbf-fast,lbf-fast+cnn,cnn,lbf-68,esr,asm,dlib"
    command = child_command(["--quick", "--methods", methods, "--data", str(data_root),
                             "--cache", str(tmp_path / "cache"), "--out", str(out), "--repeats", "1",
                             "--threads", "2"])
    subprocess.run(command, check=True, cwd=ROOT, timeout=300)
    results = json.loads((out / "results.json").read_text())
    rows = {row["key"]: row for row in results["rows"]}
    assert {"mean-shape", "ert", "ert-q16", "lbf-fast", "lbf-fast+cnn", "cnn", "lbf-68", "esr", "asm"} <= set(rows)
    assert rows["lbf-fast+cnn"]["model_bytes"] > rows["lbf-fast"]["model_bytes"]     # the network is counted
    assert rows["lbf-fast+cnn"]["method"] == "cascade LBF fast + CNN refiner"
    if "dlib" in rows:                                  # the peers extra is installed
        assert rows["dlib"]["speed_vs_dlib"] == 1.0 and rows["ert"]["speed_vs_dlib"] > 0
    for key in ("ert", "lbf-fast", "lbf-fast+cnn", "cnn", "lbf-68", "esr", "asm"):
        assert rows[key]["accuracy"]["nme_inter-ocular"] < rows["mean-shape"]["accuracy"]["nme_inter-ocular"]
    for key in ("ert", "lbf-fast", "esr"):
        assert set(rows[key]["phase_us_per_face"]) == {"sampling", "walking", "adding"}
    assert "phase_us_per_face" not in rows["asm"]                  # no trees to profile
    assert rows["ert"]["training"]["seconds"] > 0 and rows["ert"]["model_bytes"] > 0
    assert rows["ert"]["faces_per_second"]["1"] > 0
    table = (out / "table.md").read_text()
    assert "| cascade ERT |" in table and "| cascade LBF fast |" in table and "Where prediction time goes" in table
    assert "image decoding" in table

    # The detector protocol, on the models just trained (cached).
    subprocess.run(command + ["--protocol", "detector", "--methods", "mean-shape,ert"], check=True,
                   cwd=ROOT, timeout=300)
    results = json.loads((out / "results-detector-yunet.json").read_text())
    rows = {row["key"]: row for row in results["rows"]}
    accuracy = rows["ert"]["accuracy"]
    assert accuracy["n_with_box"] == accuracy["n_faces"] == 30
    assert accuracy["nme_inter-ocular"] < rows["mean-shape"]["accuracy"]["nme_inter-ocular"]
    assert "yunet detector" in (out / "table-detector-yunet.md").read_text()
    assert (tmp_path / "cache" / "quick" / "calibration-yunet.json").exists()


def test_end_to_end_pipeline_benchmark_runs(tmp_path, data_root):
    from benchmarks import pipeline
    pipeline.main(["--quick", "--data", str(data_root), "--cache", str(tmp_path / "cache"),
                   "--out", str(tmp_path / "out")])
    results = json.loads((tmp_path / "out" / "pipeline.json").read_text())
    assert set(results["sets"]) == {"lfpw/testset", "640x480", "1080p"}
    default = results["sets"]["lfpw/testset"]["cascade default (YuNet, ert-68 from 5 points, int8 refiner)"]
    assert default["found"] == 30 and default["nme"] < 0.05 and default["images_per_second_1_thread"] > 0
    assert set(default["ms_per_image"]) == {"decode", "detect", "landmark", "refine"}
    canvases = results["sets"]["1080p"]["cascade default (YuNet, ert-68 from 5 points, int8 refiner)"]
    assert canvases["found"] + canvases["missed"] == 9 and "nme" not in canvases
    assert "| 1080p |" in (tmp_path / "out" / "pipeline.md").read_text()


def test_opencv_lbf_peer_says_why_it_is_skipped(monkeypatch, tmp_path):
    from benchmarks.peers import OpenCVLBF
    monkeypatch.delenv("CASCADE_OPENCV_LBF", raising=False)
    assert "build.sh" in OpenCVLBF().unavailable()
    monkeypatch.setenv("CASCADE_OPENCV_LBF", str(tmp_path / "missing"))
    assert "build.sh" in OpenCVLBF().unavailable()


def test_face_list_for_the_opencv_program(tmp_path):
    import numpy as np

    from benchmarks.peers import write_face_list
    shapes = np.arange(2 * 68 * 2, dtype=float).reshape(2, 68, 2) / 3
    write_face_list(tmp_path / "faces.txt", ["a.jpg", "b.jpg"], [[1.4, 2.6, 50.2, 61.0], [0, 0, 9, 9]], shapes)
    lines = (tmp_path / "faces.txt").read_text().splitlines()
    fields = lines[0].split()
    assert fields[0].endswith("a.jpg") and fields[1:5] == ["1", "3", "49", "58"]     # left top width height
    np.testing.assert_allclose(np.array(fields[5:], float).reshape(68, 2), shapes[0], atol=5e-4)
    assert len(lines) == 2


def test_refiner_speed_benchmark_runs(tmp_path, data_root):
    from benchmarks import refiner_speed
    refiner_speed.main(["--faces", "20", "--repeats", "1", "--data", str(data_root), "--out", str(tmp_path)])
    results = json.loads((tmp_path / "refiner_speed.json").read_text())
    assert set(results["nme"]) == {"float32", "int8 (default)"}
    for parts in results["us_per_face"].values():
        assert parts["Refiner.predict, all stages"] > 0 and "stage 2 (local): network" in parts
    assert abs(results["nme"]["float32"] - results["nme"]["int8 (default)"]) < 0.005


def test_runtime_benchmark_runs(tmp_path, data_root):
    from benchmarks import runtime
    runtime.main(["--data", str(data_root), "--repeats", "2", "--out", str(tmp_path)])
    results = json.loads((tmp_path / "runtime.json").read_text())
    assert set(results["per_call"]) == {"lbf-68", "ert-68"}
    assert all(row["ratio"] > 0 for starts in results["per_call"].values() for row in starts.values())
    assert 0 < results["peak_rss_mib_pipeline_1080p"] < 2000
    assert all(0.01 < row["nme"] < 0.06 for row in results["models"].values())
    assert "| ert-68, bundled |" in (tmp_path / "runtime.md").read_text()


def test_realtime_benchmark_runs(tmp_path, data_root):
    """Ours and dlib (where the peers extra is installed); MediaPipe's own venv is not made in a test."""
    from benchmarks.realtime import MEDIAPIPE_TO_IBUG68, from_mediapipe
    assert len(MEDIAPIPE_TO_IBUG68) == 68
    mesh = np.random.default_rng(0).random((468, 2))
    np.testing.assert_allclose(from_mediapipe(mesh)[3], mesh[[132, 58]].mean(axis=0))
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-m", "benchmarks.realtime", "--quick", "--no-mediapipe", "--data",
                    str(data_root), "--out", str(out)], check=True, cwd=ROOT, timeout=300)
    results = json.loads((out / "realtime.json").read_text())
    assert set(results["ours"]["photos"]) == {"640x480", "1080p", "12MP"}
    assert all(photo["faces"] == 1 and photo["ms"] > 0 for photo in results["ours"]["photos"].values())
    assert results["ours"]["video"]["frames_with_a_face"] == results["ours"]["video"]["frames"] == 20
    assert results["ours_accuracy"]["found"] == 24 and results["ours_accuracy"]["nme"] < 5
    assert "| 1080p photo |" in (out / "realtime.md").read_text()


def test_benchmarks_md_and_the_readme_table_are_written_from_the_results(tmp_path):
    from benchmarks import report
    root = Path(report.__file__).resolve().parents[1]
    assert report.main(["--check"]) == 0, "run python -m benchmarks.report"
    assert len((root / "BENCHMARKS.md").read_text().splitlines()) < 400
    assert len((root / "README.md").read_text().splitlines()) < 250
    # A figure changed in a results file changes both documents.
    results = tmp_path / "results"
    shutil.copytree(root / "benchmarks" / "results", results)
    run = json.loads((results / "realtime.json").read_text())
    run["ours"]["photos"]["1080p"]["ms"] = run["mediapipe"]["photos"]["1080p"]["ms"] / 7.25
    (results / "realtime.json").write_text(json.dumps(run))
    assert "| 7.25x |" in "\n".join(report.readme_results(results))
    with open(results / "corpus.md", "a") as table:
        table.write("| 123456 | dask | 2 | 99.5 | 1.9x | 1 | 1 | 100 |\n")
    assert "| 123456 | dask | 2 | 99.5 |" in report.benchmarks_md(results)
    assert report.main(["--check", "--results", str(results)]) == 1


def test_hard_faces_benchmark_runs(tmp_path, data_root):
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-m", "benchmarks.hard_faces", "--quick", "--data", str(data_root),
                    "--work", str(tmp_path / "work"), "--out", str(out), "--families", "ert-68", "ESR",
                    "--mirror"], check=True, cwd=ROOT, timeout=600)
    results = json.loads((out / "hard_faces.json").read_text())
    assert results["faces"]["as it is"] == 12 and results["faces"]["large pose"] == 3
    methods = set(results["nme"])
    assert {"ert-68, pipeline", "ert-68 + refiner, mirrored, tight box", "ESR + refiner, pipeline",
            "refiner alone, tight box"} <= methods
    assert "ESR + refiner, mirrored, pipeline" not in methods          # the other families: the first refiner
    assert all(0 < nme < 1 for by_kind in results["nme"].values() for nme in by_kind.values())
    if importlib.util.find_spec("matplotlib"):          # the plot extra
        assert (out / "ced-hard-faces.png").stat().st_size > 0
    with pytest.raises(subprocess.CalledProcessError):
        subprocess.run([sys.executable, "-m", "benchmarks.hard_faces", "--quick", "--out",
                        str(ROOT / "benchmarks" / "results")], check=True, cwd=ROOT, timeout=60,
                       capture_output=True)
