"""The C runtime (runtime/): the flat model file both languages read, and the C library's landmarks
against Python's, its refusals of damaged files, and threads sharing one model."""
import os
import shutil
import subprocess
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

import cascade
from benchmarks import c_runtime
from cascade import ASM, ERT, ESR, LBF, flat
from synthetic import synthetic_faces

RUNTIME = Path(__file__).resolve().parents[1] / "runtime"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The runtime built by its Makefile (the host's cc): the folder of landmark, threads, libcascade."""
    if not (shutil.which("make") and shutil.which("cc")):
        if os.environ.get("CI"):
            pytest.fail("CI needs make and a C compiler for the C runtime's tests")
        pytest.skip("make or cc is missing")
    folder = tmp_path_factory.mktemp("runtime")
    subprocess.run(["make", "-s", "-C", str(RUNTIME), f"BUILD={folder}", "all", "tests"], check=True)
    return folder


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """Small ERT (int16 leaves), LBF (float leaves) and ESR (several starts) fitted on drawn faces,
    with the faces held out."""
    images, shapes = synthetic_faces(60, seed=4)
    models = {"ERT": ERT(n_stages=3, n_trees=20, tree_depth=3, n_init=3, random_state=0).fit(images[:40], shapes[:40]),
              "LBF": LBF(n_stages=2, n_trees=3, tree_depth=3, n_init=2, random_state=0).fit(images[:40], shapes[:40]),
              "ESR": ESR(n_stages=2, n_ferns=20, n_init=2, random_state=0).fit(images[:40], shapes[:40])}
    models["ERT"] = models["ERT"].quantize()
    return models, images[40:], shapes[40:]


def test_the_flat_file_loads_back_to_the_same_model(tiny_models, tmp_path):
    models, images, shapes = tiny_models
    boxes = cascade.shapes.tight_boxes(shapes)
    for name, model in models.items():
        path = model.save(tmp_path / f"{name}.cascade", format="c")
        assert flat.is_flat(path)
        again = cascade.load_model(path)
        assert type(again) is type(model) and again.get_params() == model.get_params()
        np.testing.assert_array_equal(again.predict(images, boxes), model.predict(images, boxes))
    with pytest.raises(ValueError, match="only tree cascades"):
        ASM(n_levels=1, face_size=32).fit(images, shapes).save(tmp_path / "asm.cascade", format="c")
    with pytest.raises(ValueError, match="format must be 'npz' or 'c'"):
        models["ERT"].save(tmp_path / "x.bin", format="bin")


def _run(command, model, listing):
    return c_runtime.run_landmark(command, model, listing)[0]


def test_c_gives_pythons_landmarks_for_every_kind_of_model(built, tiny_models, tmp_path):
    """ERT with int16 leaves, LBF with float leaves, ESR with the median over its starts."""
    models, images, shapes = tiny_models
    pgms = []
    for index, image in enumerate(images):
        pgms.append(tmp_path / f"{index}.pgm")
        cv2.imwrite(str(pgms[-1]), cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image)
    grey = [cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) for path in pgms]
    boxes = cascade.shapes.tight_boxes(shapes)
    for name, model in models.items():
        path = model.save(tmp_path / f"{name}.cascade", format="c")
        c_runtime.write_list(tmp_path / "faces.list", pgms, "box", boxes, None)
        got = _run([str(built / "landmark")], path, tmp_path / "faces.list")
        assert np.abs(got - model.predict(grey, boxes)).max() <= c_runtime.TOLERANCE, name


def test_c_gives_pythons_landmarks_on_real_faces_from_every_start(built, data_root, tmp_path):
    """The bundled models on lfpw/testset faces: from the true five points, the tight box, and
    YuNet's raw points and box through the stored calibrations."""
    faces = cascade.load_faces(data_root / "lfpw" / "testset", lazy=True).subset(slice(0, 40))
    colour = list(faces.images)
    grey = [cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) for image in colour]
    pgms = []
    for index, image in enumerate(grey):
        pgms.append(tmp_path / f"{index}.pgm")
        cv2.imwrite(str(pgms[-1]), image)
    starts = c_runtime.starts_of(faces, colour)
    for name in c_runtime.MODELS:
        model = cascade.load_model(name)
        path = model.save(tmp_path / f"{name}.cascade", format="c")
        for start, (kind, values, detector, found) in starts.items():
            chosen = [i for i in range(len(grey)) if found is None or found[i]]
            c_runtime.write_list(tmp_path / "faces.list", [pgms[i] for i in chosen], kind, values, detector)
            got = _run([str(built / "landmark")], path, tmp_path / "faces.list")
            expected = c_runtime.python_landmarks(model, [grey[i] for i in chosen], kind, values, detector)
            assert np.abs(got - expected).max() <= c_runtime.TOLERANCE, (name, start)


def _damaged(data, how):
    data = bytearray(data)
    if how == "truncated":
        return bytes(data[:len(data) // 2])
    if how == "not a model":
        return b"PK\x03\x04" + bytes(data[4:])
    if how == "flipped byte":
        data[len(data) // 3] ^= 0x55
        return bytes(data)
    # A lying size: a split node's feature pointing past the stage's points, the checksum made right.
    header = flat.HEADER.unpack_from(data, len(flat.MAGIC))
    n_landmarks, n_stages, n_points = header[6:9]
    offset = flat.HEADER_BYTES
    for count, item in ((n_landmarks * 2, 4), (n_stages * n_points, 4), (n_stages * n_points * 2, 4)):
        offset += -(-count * item // 64) * 64
    data[offset:offset + 2] = (n_points + 7).to_bytes(2, "little")
    data[24:28] = zlib.crc32(bytes(data[flat.HEADER_BYTES:])).to_bytes(4, "little")
    return bytes(data)


@pytest.mark.parametrize("how", ["truncated", "not a model", "flipped byte", "lying index"])
def test_a_damaged_file_is_refused_by_both(built, tiny_models, tmp_path, how):
    models, images, _ = tiny_models
    good = models["ERT"].save(tmp_path / "good.cascade", format="c")
    bad = tmp_path / "bad.cascade"
    bad.write_bytes(_damaged(good.read_bytes(), how))
    cv2.imwrite(str(tmp_path / "face.pgm"), np.full((64, 64), 128, np.uint8))
    result = subprocess.run([str(built / "landmark"), str(bad), str(tmp_path / "face.pgm"), "--box", "8", "8", "56",
                             "56"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stderr.startswith("landmark: ") and result.stdout == "", result
    with pytest.raises(ValueError):
        cascade.load_model(bad)


def test_threads_sharing_a_model_get_the_serial_answers(built, tmp_path):
    path = cascade.load_model("lbf-68").save(tmp_path / "lbf-68.cascade", format="c")
    cv2.imwrite(str(tmp_path / "photo.pgm"), cv2.cvtColor(cascade.sample_photo(), cv2.COLOR_BGR2GRAY))
    result = subprocess.run([str(built / "threads"), str(path), str(tmp_path / "photo.pgm"), "8"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "0 answers differ" in result.stdout, result


def test_the_example_says_what_it_needs(built, tmp_path):
    assert subprocess.run([str(built / "landmark")], capture_output=True).returncode == 2
    result = subprocess.run([str(built / "landmark"), str(tmp_path / "none.cascade"), "--faces", "/dev/null"],
                            capture_output=True, text=True)
    assert result.returncode == 1 and result.stderr == "landmark: /dev/null lists no faces\n"
    cv2.imwrite(str(tmp_path / "face.pgm"), np.zeros((8, 8), np.uint8))
    result = subprocess.run([str(built / "landmark"), str(tmp_path / "none.cascade"), str(tmp_path / "face.pgm"),
                             "--box", "1", "1", "6", "6"], capture_output=True, text=True)
    assert result.returncode == 1 and f"cannot open {tmp_path / 'none.cascade'}" in result.stderr


def test_sizes_whose_products_overflow_64_bits_are_refused(built, tiny_models, tmp_path):
    """T x W x 2L past 2^64 must not wrap into a small, plausible size (C checks each product before the
    next; Python multiplies exactly)."""
    models, _, _ = tiny_models
    data = bytearray(models["ERT"].compress().save(tmp_path / "good.cascade", format="c").read_bytes())
    for index, value in ((0, 1 << 28), (1, 1 << 28), (5, 1 << 28)):        # L, T, W
        data[36 + 4 * index:40 + 4 * index] = value.to_bytes(4, "little")
    data[24:28] = zlib.crc32(bytes(data[flat.HEADER_BYTES:])).to_bytes(4, "little")
    (tmp_path / "bad.cascade").write_bytes(bytes(data))
    cv2.imwrite(str(tmp_path / "face.pgm"), np.full((64, 64), 128, np.uint8))
    result = subprocess.run([str(built / "landmark"), str(tmp_path / "bad.cascade"), str(tmp_path / "face.pgm"),
                             "--box", "8", "8", "56", "56"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "do not add up" in result.stderr, result
    with pytest.raises(ValueError):
        cascade.load_model(tmp_path / "bad.cascade")


def test_a_file_whose_c_calibrations_disagree_with_its_metadata_is_refused(tiny_models, tmp_path):
    """C reads the binary calibrations, Python the JSON: a file where they differ is refused, so that the
    two languages never start the same face differently."""
    model = cascade.load_model("lbf-68")
    data = bytearray(model.save(tmp_path / "good.cascade", format="c").read_bytes())
    name = data.find(b"yunet\0", flat.HEADER_BYTES)
    data[name + flat.NAME_BYTES:name + flat.NAME_BYTES + 8] = np.float64(0.3).tobytes()      # shift_x
    data[24:28] = zlib.crc32(bytes(data[flat.HEADER_BYTES:])).to_bytes(4, "little")
    (tmp_path / "bad.cascade").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="disagree with its metadata"):
        cascade.load_model(tmp_path / "bad.cascade")
