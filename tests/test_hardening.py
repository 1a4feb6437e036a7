"""The second hardening pass: each input found to crash, lose work, destroy a file or cost without
bound now gives a clear one-line error (exit 1) or a correct result. The hostile inputs are made
on the fly (tests/reproducers.py)."""
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import tracemalloc
import zipfile

import cv2
import numpy as np
import pytest

import cascade
from cascade import apps, corpus
from cascade.cli import main
from cascade.data import read_image
from cascade.image_header import declared_size
import cnn_refine
from reproducers import BAD_NAME, encoded, jpeg_declaring, png_declaring

CLI = [sys.executable, "-m", "cascade"]


@pytest.fixture(scope="module")
def face_file(data_root):
    return data_root / "lfpw" / "testset" / "image_0001.jpg"


def run_cli(*args, cwd=None, shell=False):
    command = " ".join(CLI) + " " + " ".join(args) if shell else [*CLI, *args]
    return subprocess.run(command, cwd=cwd, shell=shell, capture_output=True, text=True,
                          errors="replace", env={**os.environ, "OPENCV_LOG_LEVEL": "ERROR"})


# -- 1. file names that are not UTF-8 ---------------------------------------------------------

def test_a_name_that_is_not_utf8_is_read_and_written(face_file, tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    shutil.copy(face_file, folder / BAD_NAME)
    result = run_cli("predict", str(folder), "-o", str(tmp_path / "out"), "--annotate", "--pts", "--no-refine")
    assert result.returncode == 0, result.stderr             # was a segmentation fault (139)
    document = json.loads((tmp_path / "out" / "landmarks.json").read_text())
    assert list(document["images"]) == [os.path.join(str(folder), "bad\\xff.jpg")]
    assert len(document["images"][os.path.join(str(folder), "bad\\xff.jpg")]) == 1
    assert (tmp_path / "out" / "bad\udcff.png").is_file() and (tmp_path / "out" / "bad\udcff_0.pts").is_file()


def test_a_video_whose_name_is_not_utf8(face_file, tmp_path):
    video = tmp_path / ("clip" + BAD_NAME.removesuffix(".jpg") + ".avi")
    writer = cv2.VideoWriter(str(tmp_path / "plain.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5, (288, 288))
    for _ in range(4):
        writer.write(cv2.imread(str(face_file)))
    writer.release()
    (tmp_path / "plain.avi").rename(video)
    output = tmp_path / ("out" + BAD_NAME.removesuffix(".jpg") + ".avi")
    result = run_cli("video", str(video), "-o", str(output), "--landmarks", str(tmp_path / "l.json"),
                     "--no-refine", "--quiet")
    assert result.returncode == 0, result.stderr
    assert output.stat().st_size > 1000 and len(json.loads((tmp_path / "l.json").read_text())["frames"]) == 4
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".cascade-")] == []


def test_a_corpus_with_a_name_that_is_not_utf8(face_file, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(face_file, folder / BAD_NAME)
    shutil.copy(face_file, folder / "plain.jpg")
    corpus.landmark_corpus(folder, tmp_path / "out", refiner=False)
    rows = cascade.read_corpus(tmp_path / "out").to_pylist()
    assert sorted(row["image"] for row in rows) == [str(folder / "bad\\xff.jpg"), str(folder / "plain.jpg")]
    assert all(row["face"] == 0 and row["error"] is None for row in rows)


# -- 2, 3. one bad image never aborts a batch; bombs are refused before decoding --------------

def test_the_header_sizes_of_every_format_read():
    image = np.zeros((37, 53, 3), np.uint8)
    for suffix in (".jpg", ".png", ".bmp", ".tif", ".webp", ".ppm"):
        assert declared_size(encoded(image, suffix)) == (53, 37), suffix
    assert declared_size(encoded(image[..., 0], ".pgm")) == (53, 37)
    assert declared_size(jpeg_declaring(60000, 50000)) == (60000, 50000)
    assert declared_size(png_declaring(50000, 40000)) == (50000, 40000)
    assert declared_size(b"\xff\xd8\xff") is None and declared_size(b"") is None and declared_size(b"GIF89a") is None


def test_bombs_are_refused_before_decoding(tmp_path):
    for name, data in (("bomb.jpg", jpeg_declaring(30000, 30000)), ("bomb.png", png_declaring(50000, 50000))):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match="above the limit"):
            read_image(tmp_path / name)
    small = tmp_path / "small.png"
    small.write_bytes(encoded(np.zeros((20, 30), np.uint8)))
    assert read_image(small, max_pixels=600).shape == (20, 30, 3)
    with pytest.raises(ValueError, match="declares 30 x 20 pixels"):
        read_image(small, max_pixels=599)


def test_one_bad_image_never_aborts_a_batch(face_file, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(face_file, folder / "good.jpg")
    (folder / "bomb.jpg").write_bytes(jpeg_declaring(60000, 60000))
    (folder / "big.png").write_bytes(png_declaring(50000, 50000))
    (folder / "thin.png").write_bytes(encoded(np.full((1, 20000, 3), 90, np.uint8)))
    shutil.copy(face_file, folder / ("x" * 250 + ".jpg"))                  # its .pts name is too long
    status = main(["predict", str(folder), "-o", str(tmp_path / "out"), "--pts", "--no-refine", "--quiet"])
    assert status == 1
    document = json.loads((tmp_path / "out" / "landmarks.json").read_text())
    errors = {os.path.basename(name): message for name, message in document["errors"].items()}
    assert "above the limit" in errors["bomb.jpg"] and "above the limit" in errors["big.png"]
    assert "File name too long" in errors["x" * 250 + ".jpg"]
    images = {os.path.basename(name): faces for name, faces in document["images"].items()}
    assert len(images["good.jpg"]) == 1 and images["thin.png"] == []
    assert cascade.Pipeline(refiner=False)(np.zeros((1, 20000, 3), np.uint8)) == []      # was a cv2.error


def _peak_rss_mib(*args):
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], capture_output=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    result = subprocess.run([sys.executable, "-c", code, *CLI, *args], capture_output=True, text=True, check=True)
    return int(result.stdout) / 1024


def test_a_bomb_costs_no_memory(face_file, tmp_path):
    (tmp_path / "bomb.jpg").write_bytes(jpeg_declaring(30000, 30000))      # 2.7 GB decoded, 5.4 GB at peak
    ordinary = _peak_rss_mib("predict", str(face_file), "--no-refine")
    bomb = _peak_rss_mib("predict", str(tmp_path / "bomb.jpg"), "--no-refine")
    assert bomb < ordinary + 200, (bomb, ordinary)


def test_the_corpus_command_takes_the_pixel_limit(face_file, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(face_file, folder / "face.jpg")
    assert main(["predict", str(folder), "--parquet", str(tmp_path / "out"), "--no-refine", "--quiet",
                 "--max-megapixels", "0.05"]) == 1                    # 288 x 288 is 0.083 MP
    assert "above the limit of 50,000" in cascade.read_corpus(tmp_path / "out").to_pylist()[0]["error"]
    assert main(["predict", str(folder), "--parquet", str(tmp_path / "other"), "--min-quality", "0.5"]) == 1
    assert "keeps every face" in capsys.readouterr().err


def test_a_bomb_in_a_dask_corpus_is_an_error_row(face_file, tmp_path):
    distributed = pytest.importorskip("distributed")
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(face_file, folder / "face.jpg")
    (folder / "bomb.jpg").write_bytes(jpeg_declaring(30000, 30000))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, memory_limit="1.5GiB",
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        manifest = corpus.landmark_corpus(folder, tmp_path / "out", engine="dask", client=client, refiner=False)
    assert manifest["complete"] and manifest["counts"] == {"images": 2, "faces": 1, "no_face": 0, "errors": 1}
    rows = {os.path.basename(row["image"]): row for row in cascade.read_corpus(tmp_path / "out").to_pylist()}
    assert "above the limit" in rows["bomb.jpg"]["error"]


# -- 4, 8. the corpus: claimed outputs, distrusted manifests -----------------------------------

def test_two_runs_started_together_cannot_share_an_output(tmp_path):
    for trial in range(10):
        root = str(tmp_path / f"out{trial}")
        barrier, outcomes = threading.Barrier(2), []

        def claim(key):
            barrier.wait()
            try:
                corpus._claim_output(fs, root, {"key": key, "format": corpus.FORMAT_VERSION})
                outcomes.append("claimed")
            except ValueError as error:
                outcomes.append(str(error))
        import fsspec
        fs = fsspec.filesystem("file")
        threads = [threading.Thread(target=claim, args=(key,)) for key in ("run-a", "run-b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes)[0] == "claimed" and "another run" in sorted(outcomes)[1], outcomes


def test_a_second_run_with_other_settings_is_refused(face_file, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(face_file, folder / "face.jpg")
    corpus.landmark_corpus(folder, tmp_path / "out", refiner=False)
    (tmp_path / "out" / "manifest.json").unlink()            # as if the first run had not got that far
    with pytest.raises(ValueError, match="another run"):
        corpus.landmark_corpus(folder, tmp_path / "out", refiner=False, partition_size=7)


@pytest.fixture(scope="module")
def small_corpus(data_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for path in sorted((data_root / "lfpw" / "testset").glob("*.jpg"))[:3]:
        shutil.copy(path, folder / path.name)
    output = tmp_path_factory.mktemp("corpus") / "out"
    corpus.landmark_corpus(folder, output, refiner=False, partition_size=1)
    return output


@pytest.mark.parametrize("edit, message", [
    (lambda shards: shards.__setitem__(1, {**shards[1], "file": "../other/part-000007.parquet"}), "shard 1 must be"),
    (lambda shards: shards.__setitem__(2, shards[1]), "shard 2 must be"),
    (lambda shards: shards.append(shards[0]), "does not hold"),
])
def test_read_corpus_distrusts_its_manifest(small_corpus, tmp_path, edit, message):
    output = tmp_path / "out"
    shutil.copytree(small_corpus, output)
    manifest = json.loads((output / "manifest.json").read_text())
    edit(manifest["shards"])
    (output / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=message):
        cascade.read_corpus(output)


def test_a_damaged_shard_is_named(small_corpus, tmp_path):
    output = tmp_path / "out"
    shutil.copytree(small_corpus, output)
    (output / "part-000001.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ValueError, match="part-000001.parquet cannot be read"):
        cascade.read_corpus(output)


def test_shards_reach_the_disk_before_their_rename(face_file, tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(corpus.os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}"))
                        or real_fsync(fd))
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(face_file, folder / "face.jpg")
    corpus.landmark_corpus(folder, tmp_path / "out", refiner=False)
    assert any(".tmp-" in path and "part-000000.parquet" in path for path in synced), synced


# -- 5, 6, 11. the commands: the overwrite rule, outputs checked first, stdout -----------------

def test_no_command_writes_over_its_input_or_an_existing_output(face_file, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    image = tmp_path / "face.png"
    image.write_bytes(encoded(cv2.imread(str(face_file))))
    writer = cv2.VideoWriter("v.avi", cv2.VideoWriter_fourcc(*"MJPG"), 5, (288, 288))
    writer.write(cv2.imread(str(face_file)))
    writer.release()
    for path in ("overlay.png", "existing.png", "existing.json", "model.npz"):
        (tmp_path / path).write_bytes(b"keep me")
    (tmp_path / "align").mkdir()
    (tmp_path / "align" / "face_0.png").write_bytes(b"keep me")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    for argv, message in [
            (["video", "v.avi", "-o", "v.avi"], "is an input"),
            (["video", "v.avi", "-o", "new.avi", "--landmarks", "v.avi"], "give a .json file"),
            (["video", "v.avi", "-o", "new.avi", "--landmarks", "existing.json"], "exists"),
            (["blur", "face.png", "-o", "face.png"], "is an input"),
            (["blur", "face.png", "-o", "face.png", "--overwrite"], "is an input"),
            (["pose", "face.png", "-o", "existing.png"], "exists"),
            (["overlay", "face.png", "-o", "overlay.png"], "overlay.png exists"),
            (["align", "face.png", "-o", "align"], "face_0.png exists"),
            (["fit", str(tmp_path), "-o", "model.npz"], "exists"),
            (["predict", "face.png", "-o", "face.png"], "is an input"),
            (["predict", str(tmp_path), "-o", str(tmp_path), "--annotate"], "is an input")]:
        assert main(argv) == 1, argv
        assert message in capsys.readouterr().err, argv
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert main(["blur", "face.png", "-o", "existing.png", "--overwrite", "--no-refine"]) == 0
    assert (tmp_path / "existing.png").read_bytes() != b"keep me"


def test_outputs_and_parameters_are_checked_before_any_work(face_file, tmp_path, capsys, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("work started before the outputs were checked")
    monkeypatch.setattr("cascade.cli.Pipeline", no_work)
    monkeypatch.setattr("cascade.cli.train_landmarker", no_work)
    monkeypatch.setattr("cascade.cli.load_faces", no_work)
    for argv, message in [
            (["predict", str(face_file), "-o", "/proc/cascade-out"], "cannot write in /proc/cascade-out"),
            (["predict", str(face_file), "-o", "/proc/out.json"], "cannot write in /proc"),
            (["fit", str(tmp_path), "-o", "/proc/nodir/m.npz"], "cannot write in /proc/nodir"),
            (["fit", str(tmp_path), "-o", str(tmp_path / "m.txt")], "a model file is a .npz"),
            (["fit", str(tmp_path), "-o", str(tmp_path / "m.npz"), "--param", "n_trees=abc"], "n_trees"),
            (["fit", str(tmp_path), "-o", str(tmp_path / "m.npz"), "--param", "bogus=1"], "no such parameter"),
            (["blur", str(face_file), "-o", "/proc/b.png"], "cannot write in /proc"),
            (["predict", str(face_file), str(face_file)], "given twice")]:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, (argv, err)


def test_a_full_disk_and_a_closed_stdout_are_one_line_errors(face_file):
    for redirect in ("> /dev/full", ">&-"):
        result = run_cli("predict", str(face_file), "--no-refine", redirect, shell=True)
        assert result.returncode == 1, (redirect, result.stderr)
        assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr, result.stderr
    assert "standard output is closed" in result.stderr


def test_two_spellings_of_one_image_are_two_entries(face_file, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(face_file, "a.jpg")
    assert main(["predict", "a.jpg", "./a.jpg", "--no-refine", "--quiet"]) == 0
    assert sorted(json.loads(capsys.readouterr().out)["images"]) == ["./a.jpg", "a.jpg"]


def test_a_bad_detector_model_is_one_error_up_front(face_file, tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"no network here")
    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(3):
        shutil.copy(face_file, folder / f"{k}.jpg")
    for model in (tmp_path / "junk.onnx", cnn_refine.GLOBAL_MODEL):        # the second: ONNX, not YuNet
        result = run_cli("predict", str(folder), "--detector-model", str(model))
        assert result.returncode == 1 and "not a YuNet face detector" in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


# -- 7. model files are read without trusting their sizes -------------------------------------

@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "lbf.npz"
    shutil.copy(cascade.bundled.model_path("lbf-68"), path)
    return path


def _with_member(source, target, name, size):
    """``source`` with a member ``name`` (added, or in place of its own) of ``size`` bytes of zeros,
    compressed: a zip bomb, its header of the dtype and dimensions the schema declares."""
    dtypes, ndim = cascade.LBF._ARRAYS.get(name, (["float32"], 1))
    dtype = np.dtype(dtypes[0])
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as archive:
        for info in original.infolist():
            if info.filename != f"{name}.npy":
                archive.writestr(info, original.read(info))
    with zipfile.ZipFile(target, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
            shape = (size // dtype.itemsize,) + (1,) * (ndim - 1)
            header = {"descr": dtype.str, "fortran_order": False, "shape": shape}
            np.lib.format.write_array_header_1_0(member, header)
            block = bytes(1 << 24)
            for _ in range(size // len(block)):
                member.write(block)
    return target


@pytest.mark.parametrize("name, message", [("extra", "unexpected arrays"), ("anchors_", "compressed beyond")])
def test_a_zip_bomb_in_a_model_file_is_refused_unread(model_file, tmp_path, name, message):
    bomb = _with_member(model_file, tmp_path / "bomb.npz", name, 256 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=message):
            cascade.LBF.load(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20


def _rewritten(source, target, change):
    """``source`` with its arrays and metadata edited by ``change``, which may return the metadata's
    raw text in place of the edited dict."""
    with np.load(source) as archive:
        contents = {name: archive[name] for name in archive.files}
    metadata = json.loads(contents.pop("__metadata__").tobytes())
    text = change(contents, metadata) or json.dumps(metadata)
    np.savez(target, **contents, __metadata__=np.frombuffer(text.encode(), np.uint8))
    return target


def _version_1(metadata, contours):
    del metadata["attributes"]["scheme"]
    metadata.update(format_version=1, params={**metadata["params"], "contours": contours})


@pytest.mark.parametrize("change, message", [
    (lambda c, m: _version_1(m, [[0, 50_000_000, False]]), "a contour must be"),
    (lambda c, m: json.dumps(m)[:-1] + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}", "damaged metadata"),
    (lambda c, m: m.update(estimator=["LBF"]), "which this package does not know"),
    (lambda c, m: c.update(anchors_=np.array([{"x": 1}], dtype=object)), "expected"),
])
def test_metadata_and_arrays_are_checked_before_use(model_file, tmp_path, change, message):
    path = _rewritten(model_file, tmp_path / "changed.npz", change)
    started = time.perf_counter()
    with pytest.raises(ValueError, match=message):
        cascade.load_model(str(path))
    assert time.perf_counter() - started < 5


# -- 9. refiner files -----------------------------------------------------------------------

def _refiner_with(tmp_path, nan_output=False, **metadata):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    model = onnx.load(str(cnn_refine.GLOBAL_MODEL))
    if nan_output:
        graph = model.graph
        graph.output[0].name = "raw"
        for node in graph.node:
            node.output[:] = ["raw" if out == "corrections" else out for out in node.output]
        graph.initializer.append(helper.make_tensor("nan", TensorProto.FLOAT, [], [float("nan")]))
        graph.node.append(helper.make_node("Mul", ["raw", "nan"], ["corrections"]))
        graph.output[0].name = "corrections"
    for entry in model.metadata_props:
        if entry.key in metadata:
            entry.value = json.dumps(metadata[entry.key])
    path = tmp_path / "stage.onnx"
    onnx.save(model, str(path))
    return path


def test_a_refiner_giving_nan_is_refused(tmp_path, test_images_and_shapes):
    images, shapes = test_images_and_shapes
    refiner = cascade.Refiner(_refiner_with(tmp_path, nan_output=True))
    with pytest.raises(ValueError, match="NaN or infinite corrections"):
        refiner.predict(images[:2], shapes[:2])


@pytest.mark.parametrize("template, message", [
    ([[1e300, 1e300]] * 68, "must lie within"), ([[0, 0]] * 68, "coincide"), ([[56, 56]] * 68, "coincide")])
def test_a_refiner_template_that_places_no_face_is_refused_on_load(tmp_path, template, message):
    with pytest.raises(ValueError, match=message):
        cascade.Refiner(_refiner_with(tmp_path, template=template))


# -- 10. costs that grew without bound ------------------------------------------------------

def test_blurring_a_huge_face_costs_what_its_pixels_cost():
    image = np.random.default_rng(0).integers(0, 255, (2200, 2200, 3), dtype=np.uint8)
    mean = cascade.load_model("ert-68").mean_shape_
    shape = 100 + mean * 2000                               # a face about 2,000 px across
    started = time.perf_counter()
    blurred = apps.blur_faces(image, [shape])               # the cube law: about 90 s
    assert time.perf_counter() - started < 3
    inside = apps.face_outline_mask(image.shape, shape) == 255
    assert np.abs(blurred[inside].astype(int) - image[inside]).mean() > 30     # hidden
    assert np.array_equal(blurred[~(apps.face_outline_mask(image.shape, shape) > 0)],
                          image[~(apps.face_outline_mask(image.shape, shape) > 0)])   # nothing outside moved


def test_a_detector_copy_beyond_reason_is_refused():
    with pytest.raises(ValueError, match="max_side must be at most"):
        cascade.Pipeline(refiner=False, detector_options={"max_side": 100_000})
    assert main(["predict", "--sample", "--max-side", "100000"]) == 1


def test_a_member_declaring_more_than_the_file_holds_is_refused(model_file, tmp_path):
    """A stored member whose directory entry and .npy header agree on 3.6 GB, in a file of a few
    megabytes: refused from the directory, before an array that size is made."""
    import io as bytes_io
    import struct
    header = bytes_io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<i2", "fortran_order": False,
                                                  "shape": (1, 1, 1, 1_800_000_000)})
    with zipfile.ZipFile(model_file) as original, zipfile.ZipFile(tmp_path / "liar.npz", "w") as archive:
        for info in original.infolist():
            if info.filename != "leaf_values_.npy":
                archive.writestr(info, original.read(info))
        archive.writestr("leaf_values_.npy", header.getvalue() + bytes(16))       # stored, 16 bytes of data
    data = bytearray((tmp_path / "liar.npz").read_bytes())
    name, claimed = b"leaf_values_.npy", len(header.getvalue()) + 3_600_000_000
    entry = next(at for at in range(len(data)) if data.startswith(b"PK\x01\x02", at)
                 and data[at + 46:at + 46 + len(name)] == name)        # its central directory entry
    data[entry + 20:entry + 28] = struct.pack("<II", claimed, claimed)     # stored and full sizes
    (tmp_path / "liar.npz").write_bytes(bytes(data))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="more stored bytes than the file holds"):
            cascade.LBF.load(tmp_path / "liar.npz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20
