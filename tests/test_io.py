import json
import pickle

import numpy as np
import pytest

from cascade import ERT, ESR, IBUG68, LBF, io

TINY = {ERT: dict(n_stages=2, n_trees=5, n_init=2, feature_pool_size=20, random_state=0),
        LBF: dict(n_stages=2, n_trees=2, tree_depth=3, n_init=2, points_per_landmark=8,
                  n_candidate_splits=10, random_state=0),
        ESR: dict(n_stages=2, n_ferns=5, n_init=2, feature_pool_size=20, random_state=0)}


@pytest.fixture(scope="module", params=[ERT, LBF, ESR], ids=lambda cls: cls.__name__)
def saved(request, tmp_path_factory, test_faces):
    model = request.param(**TINY[request.param]).fit(list(test_faces.images), test_faces.shapes)
    path = tmp_path_factory.mktemp("models") / "model.npz"
    model.save(path)
    return model, path


def rewrite(path, target, change):
    """Load the raw archive, let ``change`` edit arrays/metadata, write it to ``target``."""
    with np.load(path, allow_pickle=False) as archive:
        contents = {name: archive[name] for name in archive.files}
    metadata = json.loads(contents.pop("__metadata__").tobytes())
    change(contents, metadata)
    contents["__metadata__"] = np.frombuffer(json.dumps(metadata).encode(), np.uint8)
    np.savez(target, **contents)
    return target


def test_round_trip_leaves_no_temporary_files(saved):
    model, path = saved
    loaded = type(model).load(path)
    for name in model._ARRAYS:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    assert [p.name for p in path.parent.iterdir()] == ["model.npz"]


def test_a_saved_model_gets_the_users_file_mode(saved):
    import os
    model, path = saved
    mask = os.umask(0o022)
    try:
        model.save(path)
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_truncated_and_bit_flipped_files_are_refused(saved, tmp_path):
    model, path = saved
    data = path.read_bytes()
    (tmp_path / "short.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable cascade model"):
        type(model).load(tmp_path / "short.npz")
    rng = np.random.default_rng(0)
    for trial in range(20):
        flipped = bytearray(data)
        position = int(rng.integers(0, len(data)))
        flipped[position] ^= 1 << int(rng.integers(0, 8))
        (tmp_path / "flip.npz").write_bytes(bytes(flipped))
        try:
            type(model).load(tmp_path / "flip.npz")
        except ValueError:
            pass                 # refused with a clear error; a flip in padding may load fine


def test_out_of_range_indices_are_refused(saved, tmp_path):
    model, path = saved

    def bad_split(contents, _):
        contents["split_u_"][0, 0, 0] = contents["anchors_"].shape[1]      # one past the pool

    def bad_anchor(contents, _):
        contents["anchors_"][1, 3] = -1

    for change, message in ((bad_split, "split_u_ holds indices outside"),
                            (bad_anchor, "anchors_ holds indices outside")):
        with pytest.raises(ValueError, match=message):
            type(model).load(rewrite(path, tmp_path / "bad.npz", change))


@pytest.mark.parametrize("change, message", [
    (lambda c, m: c.update(split_u_=c["split_u_"].astype(np.int64)), "int64"),
    (lambda c, m: c.update(leaf_values_=c["leaf_values_"][:, :, :-1]), "leaf_values_ has shape"),
    (lambda c, m: c.update(offsets_=c["offsets_"] * np.nan), "NaN or infinite"),
    (lambda c, m: c.pop("leaf_scale_"), "missing"),
    (lambda c, m: c.update(extra=np.zeros(3)), "unexpected arrays"),
    (lambda c, m: m.update(format_version=99), "format version 99"),
    (lambda c, m: m.update(estimator="AAM"), "holds a 'AAM' model"),
    (lambda c, m: m["params"].update({name: 7 for name in ("n_trees", "n_ferns") if name in m["params"]}),
     "disagrees with the arrays"),
    (lambda c, m: c.update(leaf_scale_=c["leaf_scale_"] * np.inf), "'leaf_scale_' has NaN or infinite"),
    (lambda c, m: m["params"].update(bogus=1), "parameters do not fit"),
    (lambda c, m: m["params"].update(outside="wrap"), "outside must be one of"),
])
def test_tampered_models_are_refused(saved, tmp_path, change, message):
    model, path = saved
    with pytest.raises(ValueError, match=message):
        type(model).load(rewrite(path, tmp_path / "bad.npz", change))


def test_pickles_and_strangers_are_refused(tmp_path):
    (tmp_path / "evil.npz").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="not a readable cascade model"):
        ERT.load(tmp_path / "evil.npz")
    np.savez(tmp_path / "objects.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="no metadata"):
        ERT.load(tmp_path / "objects.npz")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    with pytest.raises(ValueError, match="not a"):
        ERT.load(tmp_path / "plain.npy")
    np.savez(tmp_path / "nometa.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="no metadata"):
        ERT.load(tmp_path / "nometa.npz")
    with pytest.raises(FileNotFoundError):
        ERT.load(tmp_path / "absent.npz")


def test_interrupted_save_keeps_the_old_file(saved, tmp_path, monkeypatch):
    model, path = saved
    target = tmp_path / "model.npz"
    target.write_bytes(path.read_bytes())

    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", explode)
    with pytest.raises(KeyboardInterrupt):
        model.save(target)
    assert target.read_bytes() == path.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]
    assert io.FORMAT_VERSION == 2


def test_numpy_parameters_are_saved_as_json(test_faces, tmp_path):
    images, shapes = list(test_faces.images), test_faces.shapes
    model = ERT(**TINY[ERT], shrinkage=np.float32(0.125), n_jobs=np.int64(1)).fit(images, shapes)
    model.save(tmp_path / "numpy.npz")
    loaded = ERT.load(tmp_path / "numpy.npz")
    assert loaded.shrinkage == 0.125 and type(loaded.shrinkage) is float and loaded.scheme_ == IBUG68
    np.testing.assert_array_equal(loaded.predict(images, test_faces.face_boxes()),
                                  model.predict(images, test_faces.face_boxes()))


def test_fitted_loaded_compressed_and_unpickled_leaf_tables_start_on_a_cache_line(saved):
    model, path = saved
    for fitted in (model, type(model).load(path), model.compress(rank=2),
                   pickle.loads(pickle.dumps(model.compress(rank=2)))):
        for name in ("leaf_values_", "leaf_basis_"):
            array = getattr(fitted, name, None)
            if array is not None:
                assert array.ctypes.data % io.CACHE_LINE == 0, name


def test_cache_aligned_copies_only_what_is_off_a_line():
    lines = io.cache_aligned(np.arange(4 * 48, dtype=np.int16).reshape(4, 48))
    assert io.cache_aligned(lines) is lines
    shifted = lines.ravel()[8:].reshape(23, 8)                 # 16 bytes past a line
    aligned = io.cache_aligned(shifted)
    assert aligned.ctypes.data % io.CACHE_LINE == 0 and aligned.flags.c_contiguous
    assert aligned.dtype == shifted.dtype and aligned.shape == shifted.shape
    np.testing.assert_array_equal(aligned, shifted)
    assert io.cache_aligned(np.ones((3, 0), np.float32)).shape == (3, 0)
