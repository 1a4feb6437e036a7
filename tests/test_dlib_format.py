import math

import numpy as np
import pytest
from reference import predict_reference

from cascade import ERT, load_faces, write_dlib_xml


def pack_int(value):
    """dlib's integer encoding: a size|sign byte, then little-endian magnitude bytes."""
    magnitude = abs(int(value))
    body = b""
    while magnitude:
        body += bytes([magnitude & 0xFF])
        magnitude >>= 8
    body = body or b"\x00"
    return bytes([len(body) | (0x80 if value < 0 else 0)]) + body


def pack_float(value):
    mantissa, exponent = math.frexp(float(value))
    return pack_int(int(mantissa * 2 ** 53)) + pack_int(exponent - 53)


def pack_matrix(values):
    return pack_int(-len(values)) + pack_int(-1) + b"".join(pack_float(v) for v in values)


def tiny_dlib_model(rng, n_landmarks=3, n_stages=2, n_trees=2, depth=2, n_points=4):
    n_splits = 2 ** depth - 1
    model = {"mean": rng.uniform(0.2, 0.8, (n_landmarks, 2)),
             "splits": rng.integers(0, n_points, (n_stages, n_trees, n_splits, 2)),
             "thresholds": rng.uniform(-50, 50, (n_stages, n_trees, n_splits)).astype(np.float32),
             "leaves": rng.normal(0, 0.01, (n_stages, n_trees, n_splits + 1, 2 * n_landmarks)).astype(np.float32),
             "anchors": rng.integers(0, n_landmarks, (n_stages, n_points)),
             "deltas": rng.normal(0, 0.1, (n_stages, n_points, 2)).astype(np.float32)}
    data = pack_int(1) + pack_matrix(model["mean"].ravel()) + pack_int(n_stages)
    for t in range(n_stages):
        data += pack_int(n_trees)
        for k in range(n_trees):
            data += pack_int(n_splits)
            for (u, v), threshold in zip(model["splits"][t, k], model["thresholds"][t, k]):
                data += pack_int(u) + pack_int(v) + pack_float(threshold)
            data += pack_int(n_splits + 1) + b"".join(pack_matrix(leaf) for leaf in model["leaves"][t, k])
    data += pack_int(n_stages) + b"".join(pack_int(n_points) + b"".join(map(pack_int, a)) for a in model["anchors"])
    data += pack_int(n_stages) + b"".join(pack_int(n_points) + b"".join(map(pack_float, d.ravel()))
                                          for d in model["deltas"])
    return model, data


def test_reads_a_hand_encoded_model(tmp_path, rng, test_faces):
    expected, data = tiny_dlib_model(rng)
    (tmp_path / "m.dat").write_bytes(data)
    model = ERT.from_dlib(tmp_path / "m.dat")
    np.testing.assert_allclose(model.mean_shape_, expected["mean"])
    np.testing.assert_array_equal(model.split_u_, expected["splits"][..., 0])
    np.testing.assert_array_equal(model.split_v_, expected["splits"][..., 1])
    np.testing.assert_array_equal(model.split_threshold_, expected["thresholds"])
    np.testing.assert_array_equal(model.leaf_values_, expected["leaves"])
    np.testing.assert_array_equal(model.anchors_, expected["anchors"])
    np.testing.assert_array_equal(model.offsets_, expected["deltas"])
    assert model.outside == "zero" and model.tree_depth == 2
    images = [np.asarray(test_faces.images[0])[..., 1]]
    box = np.array([[250.0, 250.0, 400.0, 400.0]])              # partly off the image: zeros read
    np.testing.assert_allclose(model.predict(images, box), predict_reference(model, images, box), atol=1e-9)
    # A dlib file names no scheme: the model has its point count's, and saves and loads with it.
    assert model.scheme_.n_points == 3 and model.scheme_.flip is None
    model.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(ERT.load(tmp_path / "m.npz").predict(images, box), model.predict(images, box))


def test_refuses_damaged_dlib_files(tmp_path, rng):
    _, data = tiny_dlib_model(rng)
    for name, broken in [("short", data[:-7]), ("long", data + b"\x00"), ("version", pack_int(2) + data[2:]),
                         ("header", data[:5] + b"\x7f" + data[6:]), ("empty", b"")]:
        (tmp_path / "m.dat").write_bytes(broken)
        with pytest.raises(ValueError, match="dlib"):
            ERT.from_dlib(tmp_path / "m.dat")
    with pytest.raises(FileNotFoundError):
        ERT.from_dlib(tmp_path / "missing.dat")


def dlib_predictions(dlib, predictor, images, boxes):
    out = []
    for image, (left, top, right, bottom) in zip(images, boxes.astype(int)):
        parts = predictor(image, dlib.rectangle(left, top, right, bottom)).parts()
        out.append([(p.x, p.y) for p in parts])
    return np.array(out, dtype=np.float64)


def assert_matches_dlib(dlib, path, faces, n_faces=12):
    """dlib's Python API rounds its points to whole pixels, so "within 0.01 px of dlib's
    own float result" means: within 0.51 px of the rounded point dlib returns."""
    model = ERT.from_dlib(path)
    images = [np.ascontiguousarray(np.asarray(faces.images[i])[..., 1]) for i in range(n_faces)]
    boxes = np.round(faces.face_boxes()[:n_faces])
    ours = model.predict(images, boxes)
    theirs = dlib_predictions(dlib, dlib.shape_predictor(str(path)), images, boxes)
    assert np.abs(ours - theirs).max() <= 0.51
    return model


def test_pretrained_dlib_68_model_matches_dlib(test_faces):
    dlib = pytest.importorskip("dlib")
    models = pytest.importorskip("face_recognition_models")
    model = assert_matches_dlib(dlib, models.pose_predictor_model_location(), test_faces)
    assert model.leaf_values_.shape[:3] == (15, 500, 16)
    assert model.scheme_.name == "ibug68"                  # so five-point starts and mirrors work


def test_dlib_trained_model_matches_dlib(tmp_path, data_root, test_faces):
    dlib = pytest.importorskip("dlib")
    train = load_faces(data_root / "afw", lazy=True).subset(slice(0, 30))
    write_dlib_xml(tmp_path / "train.xml", train.images.paths, train.shapes)
    options = dlib.shape_predictor_training_options()
    options.tree_depth, options.cascade_depth, options.num_trees_per_cascade_level = 3, 4, 20
    options.oversampling_amount, options.feature_pool_size = 2, 50
    dlib.train_shape_predictor(str(tmp_path / "train.xml"), str(tmp_path / "sp.dat"), options)
    model = assert_matches_dlib(dlib, tmp_path / "sp.dat", test_faces)
    assert model.split_u_.shape == (4, 20, 7)
