import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

from cascade import ERT, load_faces, nme
from cascade.ert import predict_reference
from cascade.shapes import from_unit, tight_boxes

SMALL = dict(n_stages=4, n_trees=40, n_init=4, feature_pool_size=100, random_state=0)


@pytest.fixture(scope="module")
def train(data_root):
    faces = load_faces(data_root / "lfpw" / "trainset", lazy=True).subset(slice(0, 150))
    return list(faces.images), faces.shapes


@pytest.fixture(scope="module")
def held_out(data_root):
    faces = load_faces(data_root / "helen" / "trainset", lazy=True).subset(slice(0, 40))
    return list(faces.images), faces.shapes, faces.face_boxes()


@pytest.fixture(scope="module")
def model(train):
    return ERT(**SMALL).fit(*train)


def test_beats_the_mean_shape_on_held_out_faces(model, held_out):
    images, shapes, boxes = held_out
    start = from_unit(np.broadcast_to(model.mean_shape_, shapes.shape), boxes)
    before = nme(start, shapes).mean()
    after = nme(model.predict(images, boxes), shapes).mean()
    assert after < 0.7 * before, (before, after)
    assert model.score(images, shapes) == pytest.approx(-after)


def test_model_is_flat_arrays(model):
    assert model.split_u_.shape == (4, 40, 15) and model.split_u_.dtype == np.int32
    assert model.leaf_values_.shape == (4, 40, 16, 136) and model.leaf_values_.dtype == np.float32
    assert model.anchors_.shape == (4, 100) and model.offsets_.shape == (4, 100, 2)


def test_compiled_prediction_equals_numpy_reference(model, train, held_out):
    images, _, boxes = held_out
    uniform = ERT(**SMALL, split_thresholds="uniform").fit(*train)
    for fitted in (model, model.quantize(), uniform, uniform.quantize()):
        np.testing.assert_allclose(fitted.predict(images[:6], boxes[:6]),
                                   predict_reference(fitted, images[:6], boxes[:6]), atol=1e-9)


def test_same_seed_same_model_whatever_n_jobs(train, model):
    again = ERT(**SMALL, n_jobs=2).fit(*train)
    for name in ERT._ARRAYS:
        np.testing.assert_array_equal(getattr(again, name), getattr(model, name), err_msg=name)
    other = ERT(**{**SMALL, "random_state": 1}).fit(*train)
    assert not np.array_equal(other.split_u_, model.split_u_)


def test_n_jobs_does_not_change_predictions(model, held_out):
    images, _, boxes = held_out
    threaded = clone(model).set_params(n_jobs=3)
    for name in ERT._ARRAYS:
        setattr(threaded, name, getattr(model, name))
    np.testing.assert_array_equal(threaded.predict(images, boxes), model.predict(images, boxes))


def test_save_load_and_quantized_round_trip(model, held_out, tmp_path):
    images, shapes, boxes = held_out
    expected = model.predict(images, boxes)
    model.save(tmp_path / "ert.npz")
    loaded = ERT.load(tmp_path / "ert.npz")
    np.testing.assert_array_equal(loaded.predict(images, boxes), expected)
    assert loaded.get_params() == model.get_params()

    model.quantize().save(tmp_path / "ert16.npz")
    quantized = ERT.load(tmp_path / "ert16.npz")
    assert quantized.leaf_values_.dtype == np.int16
    assert (tmp_path / "ert16.npz").stat().st_size < 0.75 * (tmp_path / "ert.npz").stat().st_size
    error = nme(expected, shapes).mean()
    error_quantized = nme(quantized.predict(images, boxes), shapes).mean()
    assert abs(error_quantized - error) < 0.05 * error


def test_single_face_call(model, held_out):
    images, _, boxes = held_out
    one = model.predict(images[0], boxes[0])
    assert one.shape == (68, 2)
    np.testing.assert_array_equal(one, model.predict(images[:1], boxes[:1])[0])


def test_missing_points_are_masked(train, held_out):
    images, shapes = train
    shapes = shapes.copy()
    rng = np.random.default_rng(0)
    shapes[rng.random(shapes.shape[:2]) < 0.1] = np.nan      # 10 % of the points unknown
    model = ERT(**SMALL).fit(images, shapes)
    test_images, test_shapes, boxes = held_out
    predicted = model.predict(test_images, boxes)
    assert np.isfinite(predicted).all()
    start = from_unit(np.broadcast_to(model.mean_shape_, test_shapes.shape), boxes)
    assert nme(predicted, test_shapes).mean() < 0.75 * nme(start, test_shapes).mean()


def test_scikit_learn_model_selection(train):
    images, shapes = train
    images, shapes = images[:60], shapes[:60]
    tiny = ERT(n_stages=2, n_trees=10, n_init=2, feature_pool_size=50, random_state=0)
    scores = cross_val_score(tiny, images, shapes, cv=KFold(3))
    assert scores.shape == (3,) and (scores < 0).all() and (scores > -0.5).all()
    search = GridSearchCV(tiny, {"shrinkage": [0.05, 0.2]}, cv=KFold(2)).fit(images, shapes)
    assert search.best_params_["shrinkage"] in (0.05, 0.2)
    assert clone(tiny).get_params() == tiny.get_params()


def test_bad_inputs(model, train, held_out):
    images, shapes, boxes = held_out
    with pytest.raises(NotFittedError):
        ERT().predict(images, boxes)
    with pytest.raises(ValueError, match="for one face pass one image and a"):
        model.predict(images, boxes[0])
    with pytest.raises(ValueError, match=r"got boxes of shape \(3,\)"):
        model.predict(images[0], [1, 2, 3])
    with pytest.raises(ValueError, match="expected 40"):
        model.predict(images, boxes[:5])
    with pytest.raises(ValueError, match="outside its"):
        model.predict(images[:1], [[500, 500, 600, 600]])
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.predict(images[:1], [[np.nan, 0, 10, 10]])
    with pytest.raises(ValueError, match="zero or negative size"):
        model.predict(images[:1], [[10, 10, 10, 50]])
    with pytest.raises(TypeError, match="uint8"):
        model.predict([images[0].astype(np.float32)], boxes[:1])
    with pytest.raises(ValueError, match="expected 150"):
        ERT(**SMALL).fit(train[0], train[1][:10])
    with pytest.raises(ValueError, match="no built-in flip permutation"):
        ERT(**SMALL).fit(train[0][:10], train[1][:10, :5])
    with pytest.raises(ValueError, match="shrinkage"):
        ERT(**{**SMALL, "shrinkage": 0}).fit(train[0][:10], train[1][:10])
    collapsed = train[1][:10].copy()
    collapsed[3] = collapsed[3, 0]                                    # every point of one face equal
    with pytest.raises(ValueError, match=r"boxes\[3\].*zero or negative size"):
        ERT(**SMALL).fit(train[0][:10], collapsed)
    with pytest.raises(ValueError, match="n_trees must be a positive integer"):
        ERT(**{**SMALL, "n_trees": 2.5}).fit(train[0][:10], train[1][:10])


def test_other_landmark_schemes(train, held_out):
    images, shapes = train
    five = [36, 45, 30, 48, 54]
    # Boxes of the whole face, as a detector would give, not of the five points.
    model = ERT(**SMALL, flip_permutation=[1, 0, 2, 4, 3]).fit(images, shapes[:, five], tight_boxes(shapes))
    test_images, test_shapes, boxes = held_out
    predicted = model.predict(test_images, boxes)
    assert predicted.shape == (40, 5, 2)
    start = from_unit(np.broadcast_to(model.mean_shape_, predicted.shape), boxes)
    before = nme(start, test_shapes[:, five], "box-size").mean()
    after = -model.score(test_images, test_shapes[:, five], boxes)
    assert after < 0.7 * before, (before, after)
