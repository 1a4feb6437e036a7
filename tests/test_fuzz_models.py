"""Property-based checks of the model loaders on damaged files: bytes truncated, flipped or
overwritten; arrays with other values, shapes or dtypes; metadata with other values. A file
is refused with a ValueError, or it loads and the model predicts finite points near the
face; never a crash or an out-of-bounds read (the ASan job runs these too)."""
import json
from typing import NamedTuple

import numpy as np
import pytest
from fuzzing import FUZZ
from hypothesis import given, settings
from hypothesis import strategies as st

import cascade
from cascade import ASM, ERT, ESR, LBF
from cascade.shapes import tight_boxes

TINY = {ERT: dict(n_stages=2, n_trees=3, n_init=2, feature_pool_size=12, random_state=0),
        LBF: dict(n_stages=2, n_trees=2, tree_depth=3, n_init=2, points_per_landmark=6,
                  n_candidate_splits=8, random_state=0),
        ESR: dict(n_stages=2, n_ferns=3, n_init=2, feature_pool_size=12, random_state=0),
        ASM: dict(n_levels=1, face_size=32, max_iterations=2)}
#: JSON values a parameter might be damaged into.
ODD_JSON = st.one_of(st.sampled_from([None, True, -1, 0, 1, 2 ** 40, -2.5, 1e308, "", "x", [], {}, [1, 2]]),
                     st.integers(-10, 100), st.text(max_size=5))


@pytest.fixture(scope="module", params=list(TINY), ids=lambda cls: cls.__name__)
def saved(request, tmp_path_factory, train_faces):
    images, shapes = train_faces
    model = request.param(**TINY[request.param]).fit(images[:20], shapes[:20])
    path = tmp_path_factory.mktemp("models") / "model.npz"
    model.save(path, compress=False)        # stored arrays: a flipped byte reaches the values
    with np.load(path, allow_pickle=False) as archive:
        contents = {name: archive[name] for name in archive.files}
    metadata = json.loads(contents.pop("__metadata__").tobytes())
    probe = (images[20:23], tight_boxes(shapes[20:23]))
    return Saved(type(model), path.read_bytes(), contents, metadata, probe)


class Saved(NamedTuple):
    """A saved tiny model: its class, file bytes, arrays, metadata and faces to predict."""
    estimator: type
    original: bytes
    contents: dict
    metadata: dict
    probe: tuple

    def __repr__(self):                  # keeps hypothesis' reports of failing examples short
        return f"Saved({self.estimator.__name__})"


def refused_or_sound(estimator, path, probe):
    """Load ``path``: a ValueError, or a model whose predictions are finite and near the faces."""
    try:
        model = estimator.load(path)
    except ValueError:
        return "refused"
    images, boxes = probe
    try:
        predicted = model.predict(images, boxes)
    except ValueError as error:          # a model that loads but cannot predict must say why
        assert "model" in str(error)
        return "refused at predict"
    assert predicted.shape == (len(images), model.mean_shape_.shape[0], 2)
    assert np.isfinite(predicted).all()
    return "loaded"


@settings(FUZZ, max_examples=60)
@given(data=st.data(), kind=st.sampled_from(["truncate", "flip bits", "overwrite", "zero", "append"]))
def test_damaged_bytes(saved, tmp_path, data, kind):
    estimator, original, _, _, probe = saved
    damaged = bytearray(original)
    at = data.draw(st.integers(0, len(original) - 1))
    if kind == "truncate":
        damaged = damaged[:at]
    elif kind == "flip bits":
        for position in data.draw(st.lists(st.integers(0, len(original) - 1), min_size=1, max_size=8)):
            damaged[position] ^= 1 << data.draw(st.integers(0, 7))
    elif kind in ("overwrite", "zero"):
        length = data.draw(st.integers(1, 64))
        fill = data.draw(st.binary(min_size=length, max_size=length)) if kind == "overwrite" else bytes(length)
        damaged[at:at + length] = fill[:len(damaged[at:at + length])]
    else:
        damaged += data.draw(st.binary(min_size=1, max_size=64))
    path = tmp_path / "damaged.npz"
    path.write_bytes(bytes(damaged))
    refused_or_sound(estimator, path, probe)


@st.composite
def damaged_array(draw, array):
    """``array`` with other values (in or far out of range, or all equal), another shape, or
    another dtype."""
    kind = draw(st.sampled_from(["values", "extremes", "constant", "shape", "dtype", "empty", "scalar"]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    if kind == "values":
        if array.dtype.kind in "iu":
            high = max(int(np.abs(array).max()) * 2, 4) if array.size else 4
            return rng.integers(-2, high, array.shape).astype(array.dtype)
        return (rng.normal(0, 1, array.shape) * draw(st.sampled_from([1e-3, 1.0, 1e3]))).astype(array.dtype)
    if kind == "extremes":
        info = np.iinfo(array.dtype) if array.dtype.kind in "iu" else np.finfo(array.dtype)
        return rng.choice(np.array([info.min, info.max, 0], dtype=array.dtype), array.shape)
    if kind == "constant":
        return np.full_like(array, draw(st.sampled_from([0, 1, -1])))
    if kind == "shape":
        if array.ndim == 0 or draw(st.booleans()):
            return array[None]
        axis = draw(st.integers(0, array.ndim - 1))
        return np.delete(array, -1, axis=axis) if array.shape[axis] else np.concatenate([array, array], axis)
    if kind == "dtype":
        return array.astype(draw(st.sampled_from([np.int8, np.int16, np.int32, np.int64, np.uint32,
                                                  np.float16, np.float32, np.float64, np.bool_])))
    if kind == "empty":
        return array.reshape(-1)[:0].reshape((0,) + array.shape[1:])
    return array.reshape(-1)[:1].reshape(())


@settings(FUZZ, max_examples=80)
@given(data=st.data())
def test_damaged_arrays(saved, tmp_path, data):
    estimator, _, contents, metadata, probe = saved
    name = data.draw(st.sampled_from(sorted(contents)))
    contents = {**contents, name: data.draw(damaged_array(contents[name]))}
    write(tmp_path / "damaged.npz", contents, metadata)
    refused_or_sound(estimator, tmp_path / "damaged.npz", probe)


@settings(FUZZ, max_examples=60)
@given(data=st.data(), kind=st.sampled_from(["change", "remove", "add"]))
def test_damaged_metadata(saved, tmp_path, data, kind):
    estimator, _, contents, metadata, probe = saved
    metadata = json.loads(json.dumps(metadata))
    section = data.draw(st.sampled_from(["params", "attributes", "top"]))
    target = metadata if section == "top" else metadata[section]
    key = data.draw(st.sampled_from(sorted(target) or ["missing"]) if kind != "add" else st.text(max_size=8))
    if kind == "remove":
        target.pop(key, None)
    else:
        target[key] = data.draw(ODD_JSON)
    write(tmp_path / "damaged.npz", contents, metadata)
    refused_or_sound(estimator, tmp_path / "damaged.npz", probe)


def write(path, contents, metadata):
    encoded = np.frombuffer(json.dumps(metadata).encode(), np.uint8)
    np.savez(path, **contents, __metadata__=encoded)


@FUZZ
@given(name=st.one_of(st.text(max_size=12), st.sampled_from(["", ".", "..", "/", "ert-68.npz", "../../etc/passwd",
                                                            "lbf", "default ", "ERT-68"])))
def test_load_model_by_any_name(name):
    try:
        cascade.load_model(name)
    except (ValueError, FileNotFoundError):
        pass
