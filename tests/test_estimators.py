"""The contract every tree cascade keeps, run for each: ERT and LBF."""
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

from cascade import ERT, LBF, load_faces, nme
from cascade.forest import predict_reference
from cascade.shapes import from_unit, tight_boxes

#: Small settings of each estimator, quick to fit on 150 faces.
SMALL = {
    ERT: dict(n_stages=4, n_trees=40, n_init=4, feature_pool_size=100, random_state=0),
    LBF: dict(n_stages=3, n_trees=3, tree_depth=4, n_init=4, points_per_landmark=16,
              n_candidate_splits=40, alpha=1.0, random_state=0),
}
#: Tiny settings for the scikit-learn model selection test, and a parameter to search.
TINY = {
    ERT: (dict(n_stages=2, n_trees=10, n_init=2, feature_pool_size=50, random_state=0),
          {"shrinkage": [0.05, 0.2]}),
    LBF: (dict(n_stages=2, n_trees=2, tree_depth=3, n_init=2, points_per_landmark=8,
               n_candidate_splits=20, random_state=0), {"alpha": [1e-3, 1e-2]}),
}


#: Five points give LBF a twentieth of the trees, so its global regression needs a lighter penalty.
FIVE_POINTS = {ERT: {}, LBF: {"alpha": 0.05}}


@pytest.fixture(scope="module", params=[ERT, LBF], ids=lambda cls: cls.__name__)
def estimator(request):
    return request.param


@pytest.fixture(scope="module")
def held_out(data_root):
    faces = load_faces(data_root / "helen" / "trainset", lazy=True).subset(slice(0, 40))
    return list(faces.images), faces.shapes, faces.face_boxes()


@pytest.fixture(scope="module")
def model(estimator, train_faces):
    return estimator(**SMALL[estimator]).fit(*train_faces)


def test_beats_the_mean_shape_on_held_out_faces(model, held_out):
    images, shapes, boxes = held_out
    start = from_unit(np.broadcast_to(model.mean_shape_, shapes.shape), boxes)
    before = nme(start, shapes).mean()
    after = nme(model.predict(images, boxes), shapes).mean()
    assert after < 0.7 * before, (before, after)
    assert model.score(images, shapes) == pytest.approx(-after)


def test_compiled_prediction_equals_numpy_reference(model, held_out):
    images, _, boxes = held_out
    for fitted in (model, model.quantize()):
        np.testing.assert_allclose(fitted.predict(images[:6], boxes[:6]),
                                   predict_reference(fitted, images[:6], boxes[:6]), atol=1e-9)


def test_profile_splits_the_time_into_phases(model, held_out):
    images, _, boxes = held_out
    seconds = model.profile(images, boxes)
    assert set(seconds) == {"sampling", "walking", "adding"}
    assert all(value > 0 for value in seconds.values())


def test_same_seed_same_model_whatever_n_jobs(estimator, train_faces, model):
    again = estimator(**SMALL[estimator], n_jobs=2).fit(*train_faces)
    for name in estimator._ARRAYS:
        np.testing.assert_array_equal(getattr(again, name), getattr(model, name), err_msg=name)
    other = estimator(**{**SMALL[estimator], "random_state": 1}).fit(*train_faces)
    assert not np.array_equal(other.offsets_, model.offsets_)


def test_n_jobs_does_not_change_predictions(model, held_out):
    images, _, boxes = held_out
    threaded = clone(model).set_params(n_jobs=3)
    for name in type(model)._ARRAYS:
        setattr(threaded, name, getattr(model, name))
    np.testing.assert_array_equal(threaded.predict(images, boxes), model.predict(images, boxes))


def test_save_load_and_quantized_round_trip(model, held_out, tmp_path):
    images, shapes, boxes = held_out
    expected = model.predict(images, boxes)
    model.save(tmp_path / "ert.npz")
    loaded = type(model).load(tmp_path / "ert.npz")
    np.testing.assert_array_equal(loaded.predict(images, boxes), expected)
    assert loaded.get_params() == model.get_params()

    model.quantize().save(tmp_path / "ert16.npz")
    quantized = type(model).load(tmp_path / "ert16.npz")
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


def test_missing_points_are_masked(estimator, train_faces, held_out):
    images, shapes = train_faces
    shapes = shapes.copy()
    rng = np.random.default_rng(0)
    shapes[rng.random(shapes.shape[:2]) < 0.1] = np.nan      # 10 % of the points unknown
    model = estimator(**SMALL[estimator]).fit(images, shapes)
    test_images, test_shapes, boxes = held_out
    predicted = model.predict(test_images, boxes)
    assert np.isfinite(predicted).all()
    start = from_unit(np.broadcast_to(model.mean_shape_, test_shapes.shape), boxes)
    assert nme(predicted, test_shapes).mean() < 0.75 * nme(start, test_shapes).mean()


def test_scikit_learn_model_selection(estimator, train_faces):
    images, shapes = train_faces
    images, shapes = images[:60], shapes[:60]
    params, grid = TINY[estimator]
    tiny = estimator(**params)
    scores = cross_val_score(tiny, images, shapes, cv=KFold(3))
    assert scores.shape == (3,) and (scores < 0).all() and (scores > -0.5).all()
    search = GridSearchCV(tiny, grid, cv=KFold(2)).fit(images, shapes)
    (name, values), = grid.items()
    assert search.best_params_[name] in values
    assert clone(tiny).get_params() == tiny.get_params()


def test_bad_inputs(estimator, model, train_faces, held_out):
    images, shapes, boxes = held_out
    small = SMALL[estimator]
    with pytest.raises(NotFittedError):
        estimator().predict(images, boxes)
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
        estimator(**small).fit(train_faces[0], train_faces[1][:10])
    with pytest.raises(ValueError, match="no built-in flip permutation"):
        estimator(**small).fit(train_faces[0][:10], train_faces[1][:10, :5])
    collapsed = train_faces[1][:10].copy()
    collapsed[3] = collapsed[3, 0]                                    # every point of one face equal
    with pytest.raises(ValueError, match=r"boxes\[3\].*zero or negative size"):
        estimator(**small).fit(train_faces[0][:10], collapsed)
    with pytest.raises(ValueError, match="n_trees must be a positive integer"):
        estimator(**{**small, "n_trees": 2.5}).fit(train_faces[0][:10], train_faces[1][:10])
    with pytest.raises(ValueError, match="outside must be one of"):
        estimator(**{**small, "outside": "wrap"}).fit(train_faces[0][:10], train_faces[1][:10])


def test_other_landmark_schemes(estimator, train_faces, held_out):
    images, shapes = train_faces
    five = [36, 45, 30, 48, 54]
    # Boxes of the whole face, as a detector would give, not of the five points.
    model = estimator(**{**SMALL[estimator], **FIVE_POINTS[estimator]}, flip_permutation=[1, 0, 2, 4, 3]).fit(images, shapes[:, five], tight_boxes(shapes))
    test_images, test_shapes, boxes = held_out
    predicted = model.predict(test_images, boxes)
    assert predicted.shape == (40, 5, 2)
    start = from_unit(np.broadcast_to(model.mean_shape_, predicted.shape), boxes)
    before = nme(start, test_shapes[:, five], "box-size").mean()
    after = -model.score(test_images, test_shapes[:, five], boxes)
    assert after < 0.7 * before, (before, after)
