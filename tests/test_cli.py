"""The `cascade` command: every subcommand on real faces, its outputs, and its errors."""
import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import cascade
from cascade import read_pts
from cascade.cli import build_parser, main


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory, data_root):
    """Eight test images with their .pts files (links, so nothing is copied)."""
    folder = tmp_path_factory.mktemp("faces")
    for image in sorted((data_root / "lfpw" / "testset").glob("*.jpg"))[:8]:
        for source in (image, image.with_suffix(".pts")):
            os.symlink(source, folder / source.name)
    return folder


def test_predict_the_sample_into_an_annotated_image(tmp_path):
    out = tmp_path / "out.png"
    assert main(["predict", "--sample", "-o", str(out)]) == 0
    assert out.stat().st_size > 10_000


def test_predict_a_folder_writes_json_pts_csv_and_pictures(small_folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["predict", str(small_folder), "-o", str(out), "--pts", "--csv", "--annotate", "--quiet"]) == 0
    document = json.loads((out / "landmarks.json").read_text())
    assert len(document["images"]) == 8
    faces = [face for found in document["images"].values() for face in found]
    assert len(faces) >= 8 and all(np.shape(face["landmarks"]) == (68, 2) for face in faces)
    assert len(list(out.glob("*.png"))) == 8
    first = sorted(out.glob("*.pts"))[0]
    assert read_pts(first).shape == (68, 2)
    assert (out / "landmarks.csv").read_text().count("\n") >= 9


def test_predict_mirrors_the_input_tree_and_never_overwrites_unasked(small_folder, tmp_path, capsys):
    tree = tmp_path / "photos"
    for folder, count in (("a", 2), ("b/c", 3)):
        (tree / folder).mkdir(parents=True)
        for k, image in enumerate(sorted(small_folder.glob("*.jpg"))[:count]):
            os.symlink(image, tree / folder / f"photo{k}.jpg")      # the same names in both folders
    out = tmp_path / "out"
    argv = ["predict", str(tree), "-o", str(out), "--annotate", "--pts", "--no-refine", "--quiet"]
    assert main(argv) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "a/photo0.png", "a/photo1.png", "b/c/photo0.png", "b/c/photo1.png", "b/c/photo2.png"]
    assert (out / "b" / "c" / "photo2_0.pts").is_file()
    assert json.loads((out / "landmarks.json").read_text())["refined"] is False
    before = (out / "a" / "photo0.png").stat().st_mtime_ns
    assert main(argv) == 1
    assert "exists" in capsys.readouterr().err and (out / "a" / "photo0.png").stat().st_mtime_ns == before
    assert main(argv + ["--overwrite"]) == 0


def test_pts_alone_mirror_the_input_tree(small_folder, tmp_path):
    tree = tmp_path / "photos" / "a" / "b"
    tree.mkdir(parents=True)
    os.symlink(sorted(small_folder.glob("*.jpg"))[0], tree / "photo.jpg")
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "photos"), "-o", str(out), "--pts", "--no-refine", "--quiet"]) == 0
    assert read_pts(out / "a" / "b" / "photo_0.pts").shape == (68, 2)


def test_predict_refuses_outputs_that_would_collide(small_folder, tmp_path, capsys):
    image = sorted(small_folder.glob("*.jpg"))[0]
    other = tmp_path / "elsewhere"
    other.mkdir()
    os.symlink(image, other / image.name)
    assert main(["predict", str(image), str(other / image.name), "-o", str(tmp_path / "out"), "--annotate"]) == 1
    assert "would write the same outputs" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    (tmp_path / "x.txt").write_text("a file")
    assert main(["predict", str(image), "-o", str(tmp_path / "x.txt"), "--annotate"]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err


def test_one_bad_file_loses_nothing(small_folder, tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for image in sorted(small_folder.glob("*.jpg"))[:3]:
        os.symlink(image, folder / image.name)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    assert main(["predict", str(folder), "-o", str(out), "--annotate", "--quiet"]) == 1
    document = json.loads((out / "landmarks.json").read_text())
    assert len(document["images"]) == 3 and list(document["errors"]) == [str(folder / "broken.jpg")]
    assert "cannot decode" in document["errors"][str(folder / "broken.jpg")]
    assert len(list(out.glob("*.png"))) == 3


def test_predict_to_stdout(small_folder, capsys):
    image = sorted(small_folder.glob("*.jpg"))[0]
    assert main(["predict", str(image)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["model"], document["detector"], document["refined"]) == ("ert-68", "yunet", True)
    assert document["cascade"] == cascade.__version__ and document["errors"] == {}
    found = document["images"][str(image)]
    assert [face["face"] for face in found] == list(range(len(found)))
    assert all(0 < face["score"] <= 1 for face in found)             # YuNet's confidence
    truth = read_pts(image.with_suffix(".pts"))
    best = min(range(len(found)), key=lambda k: np.abs(np.array(found[k]["landmarks"]) - truth).mean())
    assert np.abs(np.array(found[best]["landmarks"]) - truth).mean() < 5.0
    left, top, right, bottom = found[best]["box"]                     # the detector's box, round the face
    assert left < truth[:, 0].mean() < right and top < truth[:, 1].mean() < bottom


def test_the_csv_rows_match_the_json(small_folder, tmp_path):
    out = tmp_path / "out"
    assert main(["predict", str(small_folder), "-o", str(out), "--csv", "--quiet"]) == 0
    document = json.loads((out / "landmarks.json").read_text())
    with open(out / "landmarks.csv", newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0][:10] == ["image", "face", "score", "quality", "left", "top", "right", "bottom", "x0", "y0"]
    assert len(rows[0]) == 8 + 2 * 68
    faces = [(key, face) for key, found in document["images"].items() for face in found]
    assert len(rows) - 1 == len(faces) >= 8
    for row, (key, face) in zip(rows[1:], faces):
        assert row[0] == key and int(row[1]) == face["face"]
        assert np.allclose([float(v) for v in row[2:8]], [face["score"], face["quality"], *face["box"]])
        assert np.allclose(np.reshape([float(v) for v in row[8:]], (68, 2)), face["landmarks"])


def test_no_progress_bar_off_a_terminal(small_folder, tmp_path, capsys):
    assert main(["predict", str(small_folder), "-o", str(tmp_path / "out")]) == 0
    error = capsys.readouterr().err
    assert error.strip().count("\n") == 0 and "image/s" not in error and "%|" not in error


def test_a_closed_pipe_ends_quietly(tmp_path):
    # `cascade predict --sample | head` with head gone: the pipe has no reader when the JSON is written.
    process = subprocess.Popen([sys.executable, "-m", "cascade", "predict", "--sample", "--no-refine"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    error = process.stderr.read().decode()
    assert process.wait(timeout=120) == 1
    assert "Traceback" not in error and "BrokenPipe" not in error


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"cascade {cascade.__version__}"


@pytest.mark.parametrize("argv, message", [
    (["predict", "no/such/image.jpg"], "no image or folder"),
    (["predict", "{tmp}/empty"], "no images in"),
    (["predict", "--sample", "-o", "{tmp}/x.txt"], "a new output folder's name has no suffix"),
    (["align", "--sample", "-o", "{tmp}/faces.png"], "a new output folder's name has no suffix"),
    (["blur", "--sample", "-o", "{tmp}/blurred.txt"], "give an image file"),
    (["evaluate", "{tmp}/empty", "--ced", "{tmp}/ced.txt"], "--ced {tmp}/ced.txt: give an image file"),
    (["predict", "--sample", "--model", "nope"], "unknown model"),
    (["blur", "--sample", "-o", "{tmp}/b.png", "--model", "missing.npz"], "no model file"),
    (["predict", "--sample", "--model", "{tmp}/text.npz"], "is not a readable cascade model file"),
    (["predict", "--sample", "--detector-model", "none.onnx"], "no YuNet model file"),
    (["overlay", "--sample", "-o", "{tmp}/o.png", "--png", "{tmp}/missing.png"], "no picture at"),
    (["overlay", "--sample", "-o", "{tmp}/o.png", "--png", "{tmp}/text.npz"], "not an image OpenCV can read"),
])
def test_errors_are_one_clear_line(argv, message, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "text.npz").write_text("not a model")
    assert main([arg.format(tmp=tmp_path) for arg in argv]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message.format(tmp=tmp_path) in error
    assert "allow_pickle" not in error                 # NumPy's advice to load pickles is not passed on


def test_missing_extras_are_named(monkeypatch, small_folder, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "dlib", None)              # as if dlib were not installed
    assert main(["predict", "--sample", "--detector", "dlib-hog"]) == 1
    assert "cascade-landmarks[dlib]" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["evaluate", str(small_folder), "--ced", str(tmp_path / "ced.png")]) == 1
    error = capsys.readouterr()
    assert "cascade-landmarks[plot]" in error.err and error.out == ""     # refused before the work


def test_an_unreadable_image_is_reported(tmp_path, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    assert main(["predict", str(bad)]) == 1
    assert "cannot decode" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["predict", "video", "fit", "evaluate", "blur", "align", "overlay", "pose"])
def test_every_subcommand_has_help(command):
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args([command, "--help"])
    assert stop.value.code == 0


def test_bench_runs_the_suite_from_the_checkout(monkeypatch, tmp_path, capfd):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    assert main(["bench", "--quick", "--methods", "nope"]) == 1          # the suite's own refusal
    assert "unknown methods ['nope']" in capfd.readouterr().err
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--quick"]) == 1
    assert "run `cascade bench` from the repository root" in capfd.readouterr().err


def test_python_dash_m_cascade_runs(tmp_path):
    # Away from the repository root, whose bare source tree has no compiled extensions.
    result = subprocess.run([sys.executable, "-m", "cascade", "--help"], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 0 and "predict" in result.stdout


@pytest.mark.parametrize("command", ["blur", "overlay", "pose"])
def test_applications_write_their_pictures(command, tmp_path):
    out = tmp_path / f"{command}.png"
    assert main([command, "--sample", "-o", str(out)]) == 0
    assert out.stat().st_size > 10_000


def test_align_writes_one_crop_per_face(tmp_path):
    assert main(["align", "--sample", "-o", str(tmp_path / "aligned")]) == 0
    assert len(list((tmp_path / "aligned").glob("face_*.png"))) == 1


def test_pose_prints_angles(capsys):
    assert main(["pose", "--sample"]) == 0
    poses = json.loads(capsys.readouterr().out)
    assert len(poses) == 1 and abs(poses[0]["yaw"]) < 45
    assert set(poses[0]) == {"face", "box", "yaw", "pitch", "roll", "rotation", "translation"}
    assert poses[0]["translation"][2] > 100           # millimetres in front of the camera


@pytest.fixture(scope="module")
def tiny_model(small_folder, tmp_path_factory):
    model = tmp_path_factory.mktemp("model") / "tiny.npz"
    assert main(["fit", str(small_folder), "-o", str(model), "--method", "lbf", "--param", "preset=fast",
                 "--param", "n_stages=2", "--param", "n_trees=2", "--box-jitter", "0.05,0.05",
                 "--point-share", "0.5", "--calibrate", "yunet", "--compress"]) == 0
    return model


def test_fit_then_evaluate(small_folder, tiny_model, capsys):
    from cascade import LBF, load_model
    model = load_model(tiny_model)
    assert isinstance(model, LBF) and model.n_stages == 2 and model.leaf_basis_.shape[1] == 32
    assert set(model.box_calibrations_) == set(model.point_calibrations_) == {"yunet"}
    assert main(["evaluate", str(small_folder), "--model", str(tiny_model), "lbf-68"]) == 0
    table = capsys.readouterr().out
    assert "| lbf-68 |" in table and f"| {tiny_model} |" in table


def test_evaluate_from_a_detector_is_the_pipeline(small_folder, capsys):
    assert main(["evaluate", str(small_folder), "--model", "lbf-68", "--detector", "yunet", "--no-refine"]) == 0
    printed = capsys.readouterr().out
    row = next(line for line in printed.splitlines() if line.startswith("| lbf-68 |"))
    faces = cascade.load_faces(small_folder)
    expected = cascade.Pipeline("lbf-68", refiner=False).annotated_faces(list(faces.images), faces.shapes)
    assert row.split("|")[2].strip() == f"{100 * cascade.nme(expected, faces.shapes).mean():.2f}"
    assert "yunet detector" in printed


def test_evaluate_plots_the_ced(small_folder, tmp_path):
    pytest.importorskip("matplotlib")
    assert main(["evaluate", str(small_folder), "--ced", str(tmp_path / "ced.png")]) == 0
    assert (tmp_path / "ced.png").stat().st_size > 1000


def test_fit_refuses_a_bad_jitter(small_folder, tmp_path):
    with pytest.raises(SystemExit):
        main(["fit", str(small_folder), "-o", str(tmp_path / "m.npz"), "--box-jitter", "big"])


def test_video_command(small_folder, tmp_path, capsys):
    import cv2
    image = cv2.imread(str(sorted(small_folder.glob("*.jpg"))[0]))
    source = tmp_path / "in.avi"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"MJPG"), 25, image.shape[1::-1])
    for shift in range(6):
        writer.write(np.roll(image, 2 * shift, axis=1))
    writer.release()
    out, landmarks = tmp_path / "out.mp4", tmp_path / "frames.json"
    assert main(["video", str(source), "-o", str(out), "--landmarks", str(landmarks), "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)               # the result, on stdout
    assert set(summary) == {"frames", "fps", "faces_per_frame", "output"} and summary["frames"] == 6
    frames = json.loads(landmarks.read_text())["frames"]
    assert len(frames) == 6 and all(len(frame["faces"]) >= 1 for frame in frames)
    for frame in frames:
        assert all(set(face) == {"track", "score", "box", "landmarks"} for face in frame["faces"])
    tracked = [face["track"] for face in frames[-1]["faces"]]
    assert 0 in tracked and len(set(tracked)) == len(tracked)       # the first face is followed throughout
    assert all(0 < face["score"] <= 1 for frame in frames for face in frame["faces"])
    assert out.stat().st_size > 1000
    assert main(["video", str(tmp_path / "missing.mp4"), "-o", str(out)]) == 1
    assert "no video file at" in capsys.readouterr().err


def test_min_quality_drops_faces_the_landmarker_got_wrong(tmp_path, capsys):
    turned = tmp_path / "turned.png"
    cv2.imwrite(str(turned), cv2.rotate(cascade.sample_photo(), cv2.ROTATE_180))
    assert main(["predict", str(turned), "--sample", "--quiet"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [len(document["images"][key]) for key in ("astronaut", str(turned))] == [1, 1]
    assert document["images"]["astronaut"][0]["quality"] > 0.9
    assert main(["predict", str(turned), "--sample", "--quiet", "--min-quality", "0.5"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [len(document["images"][key]) for key in ("astronaut", str(turned))] == [1, 0]
    assert main(["predict", "--sample", "--min-quality", "0.5", "--no-refine"]) == 2         # a usage error
    assert "goes without --no-refine" in capsys.readouterr().err


def test_every_command_and_option_has_help_text():
    parser = build_parser()
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    for name, command in commands.choices.items():
        assert command.description, name
        for action in command._actions:
            assert action.help, (name, action.option_strings or action.dest)
    assert "``" not in parser.format_help() + "".join(c.format_help() for c in commands.choices.values())


@pytest.mark.parametrize("argv", [["predict"], ["blur", "--sample"], ["align", "--sample"],
                                  ["predict", "--sample", "--detector", "dlib-hog", "--detector-model", "y.onnx"],
                                  ["predict", "--sample", "--annotate"], ["predict", "--sample", "--min-quality", "2"]])
def test_usage_errors_exit_2_with_the_usage(argv, capsys):
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"usage: cascade {argv[0]}") and f"cascade {argv[0]}: error:" in error


def test_the_applications_take_folders_and_mirror_them(tmp_path, capsys):
    photos = tmp_path / "photos"
    (photos / "trip").mkdir(parents=True)
    cv2.imwrite(str(photos / "a.jpg"), cascade.sample_photo())
    cv2.imwrite(str(photos / "trip" / "b.png"), cascade.sample_photo())
    cv2.imwrite(str(photos / "trip" / "empty.png"), np.zeros((64, 64, 3), np.uint8))
    (photos / "trip" / "broken.jpg").write_bytes(b"not a jpeg")
    for command in ("blur", "overlay", "align", "pose"):
        status = main([command, str(photos), "-o", str(tmp_path / command), "--no-refine"])
        assert status == 1, command                          # the broken image; the others are done
        err = capsys.readouterr()
        assert f"cascade {command}: {photos / 'trip' / 'broken.jpg'}: error: cannot decode" in err.err
        if command == "pose":
            poses = json.loads(err.out)
            assert {name: len(faces) for name, faces in poses.items()} == {
                str(photos / "a.jpg"): 1, str(photos / "trip" / "b.png"): 1, str(photos / "trip" / "empty.png"): 0}
    for command in ("blur", "overlay", "pose"):
        assert sorted(p.relative_to(tmp_path / command).as_posix() for p in (tmp_path / command).rglob("*.png")) == [
            "a.png", "trip/b.png", "trip/empty.png"]
    assert sorted(p.relative_to(tmp_path / "align").as_posix() for p in (tmp_path / "align").rglob("*.png")) == [
        "a/face_0.png", "trip/b/face_0.png"]


def test_align_with_no_face_says_so_and_makes_the_folder(tmp_path, capsys):
    empty = tmp_path / "empty.png"
    cv2.imwrite(str(empty), np.zeros((64, 64, 3), np.uint8))
    assert main(["align", str(empty), "-o", str(tmp_path / "crops")]) == 0
    assert "no face found, no crop written" in capsys.readouterr().err and (tmp_path / "crops").is_dir()
