"""The contract every estimator keeps, run for each: ERT, LBF, ESR and ASM (tree parts: not ASM).

It runs on drawn faces (tests/synthetic.py), so it needs no shared data; the accuracy of each
method on real faces is tested in its own file, on the shared 300-W crops."""
import numpy as np
import pytest
from reference import predict_reference, reference_run
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from synthetic import synthetic_faces

from cascade import ASM, ERT, ESR, LBF, load_faces, nme
from cascade._ext import forest as compiled_forest
from cascade.forest import ForestCascade, every_start, median_over_starts
from cascade.forest_training import TrainingSamples
from cascade.schemes import IBUG68
from cascade.shapes import from_unit, mean_shape, rotate_about_centre, tight_boxes, to_unit

#: Small settings of each estimator, quick to fit on 150 faces.
SMALL = {
    ERT: dict(n_stages=4, n_trees=40, n_init=4, feature_pool_size=100, random_state=0),
    LBF: dict(n_stages=3, n_trees=3, tree_depth=4, n_init=4, points_per_landmark=16,
              n_candidate_splits=40, alpha=1.0, random_state=0),
    ESR: dict(n_stages=5, n_ferns=100, n_init=8, feature_pool_size=100, shrinkage=50.0, random_state=0),
    ASM: dict(n_levels=2, face_size=64, max_iterations=3),
}
#: Tiny settings for the scikit-learn model selection test, and a parameter to search.
TINY = {
    ERT: (dict(n_stages=2, n_trees=10, n_init=2, feature_pool_size=50, random_state=0),
          {"shrinkage": [0.05, 0.2]}),
    LBF: (dict(n_stages=2, n_trees=2, tree_depth=3, n_init=2, points_per_landmark=8,
               n_candidate_splits=20, random_state=0), {"alpha": [1e-3, 1e-2]}),
    ESR: (dict(n_stages=2, n_ferns=10, n_init=2, feature_pool_size=50, shrinkage=10.0, random_state=0),
          {"shrinkage": [5.0, 50.0]}),
    ASM: (dict(n_levels=2, face_size=48, max_iterations=2), {"clamp": [2.0, 3.0]}),
}
#: A parameter each estimator requires to be a positive integer.
INTEGER_PARAM = {ERT: "n_trees", LBF: "n_trees", ESR: "n_ferns", ASM: "n_levels"}
#: How much better than the mean-shape start each must be on held-out faces.
GAIN = {ERT: 0.7, LBF: 0.7, ESR: 0.7, ASM: 0.7}


#: Five points give LBF a twentieth of the trees, so its global regression needs a lighter
#: penalty; ESR, ten outputs instead of 136, a lighter shrinkage.
FIVE_POINTS = {ERT: {}, LBF: {"alpha": 0.05}, ESR: {"shrinkage": 20.0}, ASM: {}}


@pytest.fixture(scope="module", params=[ERT, LBF, ESR, ASM], ids=lambda cls: cls.__name__)
def estimator(request):
    return request.param


@pytest.fixture(scope="module")
def drawn_faces():
    """150 drawn faces (tests/synthetic.py) to fit on: the contract needs no shared data."""
    images, shapes = synthetic_faces(150, seed=0)
    return images, shapes


@pytest.fixture(scope="module")
def drawn_held_out():
    """40 other drawn faces, in colour, with the tight boxes of their landmarks."""
    images, shapes = synthetic_faces(40, seed=1, colour=True)
    return images, shapes, tight_boxes(shapes)


@pytest.fixture(scope="module")
def model(estimator, drawn_faces):
    return estimator(**SMALL[estimator]).fit(*drawn_faces)


def needs_trees(model):
    if not isinstance(model, ForestCascade):
        pytest.skip(f"{type(model).__name__} has no trees")


def test_beats_the_mean_shape_on_held_out_faces(model, drawn_held_out):
    images, shapes, boxes = drawn_held_out
    start = from_unit(np.broadcast_to(model.mean_shape_, shapes.shape), boxes)
    before = nme(start, shapes).mean()
    after = nme(model.predict(images, boxes), shapes).mean()
    assert after < GAIN[type(model)] * before, (before, after)
    assert model.score(images, shapes) == pytest.approx(-after)


def test_compiled_prediction_equals_numpy_reference(model, drawn_held_out):
    needs_trees(model)
    images, _, boxes = drawn_held_out
    for fitted in (model, model.quantize()):
        np.testing.assert_allclose(fitted.predict(images[:6], boxes[:6]),
                                   predict_reference(fitted, images[:6], boxes[:6]), atol=1e-9)


def test_profile_splits_the_time_into_phases(model, drawn_held_out):
    needs_trees(model)
    images, _, boxes = drawn_held_out
    seconds = model.profile(images, boxes)
    assert set(seconds) == {"sampling", "walking", "adding"}
    assert all(value > 0 for value in seconds.values())


def test_same_seed_same_model_whatever_n_jobs(estimator, drawn_faces, model):
    again = estimator(**SMALL[estimator], n_jobs=2).fit(*drawn_faces)
    for name in estimator._ARRAYS:
        np.testing.assert_array_equal(getattr(again, name), getattr(model, name), err_msg=name)
    if "random_state" in model.get_params():                    # ASM's fit draws nothing
        other = estimator(**{**SMALL[estimator], "random_state": 1}).fit(*drawn_faces)
        assert not np.array_equal(other.offsets_, model.offsets_)


def test_n_jobs_does_not_change_predictions(model, drawn_held_out):
    images, _, boxes = drawn_held_out
    threaded = clone(model).set_params(n_jobs=3)
    for name in type(model)._ARRAYS:
        setattr(threaded, name, getattr(model, name))
    np.testing.assert_array_equal(threaded.predict(images, boxes), model.predict(images, boxes))


def test_threads_sharing_one_model_get_the_serial_answers(model, drawn_held_out):
    """predict is thread-safe: eight threads on one model, one face or a few each."""
    from concurrent.futures import ThreadPoolExecutor
    images, _, boxes = drawn_held_out
    serial = model.predict(images, boxes)
    batches = [slice(i, i + 1 + i % 3) for i in range(0, len(images), 4)]
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(lambda batch: model.predict(images[batch], boxes[batch]), batches * 3))
    for batch, got in zip(batches * 3, threaded):
        np.testing.assert_array_equal(got, serial[batch])
    # One face a call from five points: the compiled single-face path, shared the same way.
    points = IBUG68.five_points(serial)
    serial = model.predict(images, points=points)
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(lambda i: model.predict(images[i], points=points[i]), list(range(len(images))) * 3))
    np.testing.assert_array_equal(np.array(threaded), np.concatenate([serial] * 3))


def test_save_load_and_quantized_round_trip(model, drawn_held_out, tmp_path):
    images, shapes, boxes = drawn_held_out
    expected = model.predict(images, boxes)
    model.save(tmp_path / "model.npz")
    loaded = type(model).load(tmp_path / "model.npz")
    np.testing.assert_array_equal(loaded.predict(images, boxes), expected)
    assert loaded.get_params() == model.get_params()
    if not isinstance(model, ForestCascade):
        return

    model.quantize().save(tmp_path / "model16.npz")
    quantized = type(model).load(tmp_path / "model16.npz")
    assert quantized.leaf_values_.dtype == np.int16
    assert (tmp_path / "model16.npz").stat().st_size < 0.75 * (tmp_path / "model.npz").stat().st_size
    error = nme(expected, shapes).mean()
    error_quantized = nme(quantized.predict(images, boxes), shapes).mean()
    assert abs(error_quantized - error) < 0.05 * error


def test_single_face_call(model, drawn_held_out):
    images, _, boxes = drawn_held_out
    one = model.predict(images[0], boxes[0])
    assert one.shape == (68, 2)
    np.testing.assert_array_equal(one, model.predict(images[:1], boxes[:1])[0])


def test_missing_points_are_masked(estimator, drawn_faces, drawn_held_out):
    images, shapes = drawn_faces
    shapes = shapes.copy()
    rng = np.random.default_rng(0)
    shapes[rng.random(shapes.shape[:2]) < 0.1] = np.nan      # 10 % of the points unknown
    model = estimator(**SMALL[estimator]).fit(images, shapes)
    test_images, test_shapes, boxes = drawn_held_out
    predicted = model.predict(test_images, boxes)
    assert np.isfinite(predicted).all()
    start = from_unit(np.broadcast_to(model.mean_shape_, test_shapes.shape), boxes)
    assert nme(predicted, test_shapes).mean() < (GAIN[estimator] + 0.05) * nme(start, test_shapes).mean()


def test_training_starts_come_from_complete_faces(drawn_faces):
    """A start drawn from a face with gaps would be a patchwork of it and the mean shape."""
    _, shapes = drawn_faces
    boxes = tight_boxes(shapes)
    hidden = shapes.copy()
    hidden[1::2, :17] = np.nan
    mean = mean_shape(hidden, boxes)
    samples = TrainingSamples(None, hidden, boxes, 4, np.random.default_rng(0), 1, "clamp", mean)
    starts = samples.current.reshape(len(shapes), 4, 68, 2)[:, 1:]
    complete_targets = to_unit(shapes, boxes)[::2]
    drawn = (starts[:, :, None] == complete_targets[None, None]).all(axis=(3, 4))
    assert (drawn.sum(axis=2) == 1).all()                   # every drawn start is one complete face


def test_pseudo_labels_fill_the_missing_points(estimator, drawn_faces, drawn_held_out):
    images, shapes = drawn_faces
    boxes = tight_boxes(shapes)                        # the faces' boxes, as a dataset gives them
    hidden = shapes.copy()
    hidden[1::2, list(range(17)) + list(range(36, 42))] = np.nan       # half the faces: no jaw, no right eye
    model = estimator(**SMALL[estimator]).fit(images, hidden, boxes, missing="pseudo-label")
    np.testing.assert_array_equal(model.pseudo_labelled_, np.isnan(hidden).any(axis=2))
    known = ~model.pseudo_labelled_
    np.testing.assert_array_equal(model.pseudo_labels_[known], shapes[known])
    filled = model.pseudo_labelled_
    start = from_unit(np.broadcast_to(model.mean_shape_, shapes.shape), boxes)
    error = np.linalg.norm(model.pseudo_labels_ - shapes, axis=2)[filled].mean()
    assert error < 0.8 * np.linalg.norm(start - shapes, axis=2)[filled].mean()
    test_images, test_shapes, test_boxes = drawn_held_out
    predicted = model.predict(test_images, test_boxes)
    start = from_unit(np.broadcast_to(model.mean_shape_, test_shapes.shape), test_boxes)
    assert nme(predicted, test_shapes).mean() < (GAIN[estimator] + 0.05) * nme(start, test_shapes).mean()
    with pytest.raises(ValueError, match="missing must be one of"):
        estimator(**SMALL[estimator]).fit(images, hidden, boxes, missing="drop")


def test_scikit_learn_model_selection(estimator, drawn_faces):
    images, shapes = drawn_faces
    images, shapes = images[:60], shapes[:60]
    params, grid = TINY[estimator]
    tiny = estimator(**params)
    scores = cross_val_score(tiny, images, shapes, cv=KFold(3))
    assert scores.shape == (3,) and (scores < 0).all() and (scores > -0.5).all()
    search = GridSearchCV(tiny, grid, cv=KFold(2)).fit(images, shapes)
    (name, values), = grid.items()
    assert search.best_params_[name] in values
    assert clone(tiny).get_params() == tiny.get_params()


def test_bad_inputs(estimator, model, drawn_faces, drawn_held_out):
    images, shapes, boxes = drawn_held_out
    small = SMALL[estimator]
    with pytest.raises(NotFittedError):
        estimator().predict(images, boxes)
    with pytest.raises(ValueError, match="for one face pass one image and boxes of shape"):
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
        estimator(**small).fit(drawn_faces[0], drawn_faces[1][:10])
    with pytest.raises(ValueError, match="no mirror map"):
        estimator(**small).fit(drawn_faces[0][:10], drawn_faces[1][:10, :7])
    collapsed = drawn_faces[1][:10].copy()
    collapsed[3] = collapsed[3, 0]                                    # every point of one face equal
    with pytest.raises(ValueError, match=r"boxes\[3\].*zero or negative size"):
        estimator(**small).fit(drawn_faces[0][:10], collapsed)
    integer = INTEGER_PARAM[estimator]
    with pytest.raises(ValueError, match=f"{integer} must be a positive integer"):
        estimator(**{**small, integer: 2.5}).fit(drawn_faces[0][:10], drawn_faces[1][:10])
    if estimator is ASM:                                # its crops replicate the border; no choice
        return
    with pytest.raises(ValueError, match="outside must be one of"):
        estimator(**{**small, "outside": "wrap"}).fit(drawn_faces[0][:10], drawn_faces[1][:10])


def other_scheme(estimator):
    """``(points, extra parameters)`` of another landmark scheme for ``estimator``, a subset of the
    68 points: five (eye corners, nose tip, mouth corners)."""
    points = [36, 45, 30, 48, 54]
    return points, {**FIVE_POINTS[estimator], "scheme": IBUG68.subset(points)}


def test_other_landmark_schemes(estimator, drawn_faces, drawn_held_out):
    images, shapes = drawn_faces
    points, params = other_scheme(estimator)
    # Boxes of the whole face, as a detector would give, not of the chosen points.
    model = estimator(**{**SMALL[estimator], **params}).fit(images, shapes[:, points], tight_boxes(shapes))
    test_images, test_shapes, boxes = drawn_held_out
    predicted = model.predict(test_images, boxes)
    assert predicted.shape == (40, len(points), 2)
    start = from_unit(np.broadcast_to(model.mean_shape_, predicted.shape), boxes)
    before = nme(start, test_shapes[:, points], scheme=model.scheme_).mean()     # score's normalisation
    after = -model.score(test_images, test_shapes[:, points], boxes)
    assert after < GAIN[estimator] * before, (before, after)


def _rotate_about(images, shapes, degrees):
    """Each image and its shape turned by ``degrees`` about the shape's centre (border replicated)."""
    import cv2
    turned_images, turned_shapes = [], []
    for image, shape in zip(images, shapes):
        centre = tuple(float(v) for v in shape.mean(axis=0))
        matrix = cv2.getRotationMatrix2D(centre, degrees, 1.0)
        turned_images.append(cv2.warpAffine(image, matrix, image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE))
        turned_shapes.append(shape @ matrix[:, :2].T + matrix[:, 2])
    return turned_images, np.array(turned_shapes)


def test_fit_and_predict_from_five_points(estimator, drawn_faces, drawn_held_out):
    """Trained from five points (some faces from their boxes), a model predicts from five points
    and from boxes; from points it follows a face rolled by 30 degrees where a box start cannot."""
    five_points = IBUG68.five_points
    images, shapes = drawn_faces
    rng = np.random.default_rng(0)
    points = five_points(shapes) + rng.normal(0, 2.0, (len(shapes), 5, 2))
    points[::4] = np.nan                                         # these start from their boxes
    model = estimator(**SMALL[estimator]).fit(images, shapes, points=points)
    test_images, truth, _ = drawn_held_out
    rolled_images, rolled = _rotate_about(test_images, truth, 30)
    from_points = model.predict(rolled_images, points=five_points(rolled))
    from_boxes = model.predict(rolled_images, tight_boxes(rolled))
    assert nme(from_points, rolled).mean() < 0.8 * nme(from_boxes, rolled).mean()
    single = model.predict(rolled_images[0], points=five_points(rolled[0]))
    np.testing.assert_array_equal(single, from_points[0])
    assert model.predict(rolled_images[:0], points=np.zeros((0, 5, 2))).shape == (0, 68, 2)


def test_a_five_point_model_keeps_a_box_far_off_the_face(data_root):
    """A model trained from points runs a box start a second time from its first answer's five
    points; a box mostly off the image, whose first answer places no frame on it, keeps that answer
    rather than failing."""
    from cascade import load_model
    model = load_model("default")
    image = np.full((100, 100, 3), 120, np.uint8)
    for box in ([95, 0, 400, 100], [-300, -300, 3, 3], [0, 0, 100, 100]):
        shape = model.predict(image, np.array(box, float))
        assert shape.shape == (68, 2) and np.isfinite(shape).all()
    faces = load_faces(data_root / "helen" / "trainset", lazy=True).subset(slice(0, 8))
    images, truth = list(faces.images), faces.shapes
    from_boxes = model.predict(images, tight_boxes(truth))
    assert nme(from_boxes, truth).mean() < 0.08


def test_five_point_starts_are_checked(model, drawn_held_out):
    images, truth, boxes = drawn_held_out
    points = IBUG68.five_points(truth[:3])
    with pytest.raises(ValueError, match="one of the two"):
        model.predict(images[:3], boxes[:3], points=points)
    with pytest.raises(ValueError, match="one of the two"):
        model.predict(images[:3])
    with pytest.raises(ValueError, match="NaN"):
        model.predict(images[:3], points=np.where(np.arange(3)[:, None, None] == 1, np.nan, points))
    with pytest.raises(ValueError, match="expected 5"):
        model.predict(images[:3], points=truth[:3, :4])
    with pytest.raises(ValueError, match="zero or negative size"):
        model.predict(images[:3], points=np.broadcast_to(points[:, :1], points.shape))     # collapsed
    with pytest.raises(ValueError, match="outside"):
        model.predict(images[:3], points=points + 1e5)
    # A list of one image (the pipeline's and a tracker's call) takes the one-face path: the same
    # answer as the faces of a batch, and the same errors.
    np.testing.assert_allclose(model.predict(images[:1], points=points[:1].tolist()),
                               model.predict(images[:2], points=points[:2])[:1], atol=1e-9)
    for bad, message in ((np.full((1, 5, 2), np.nan), "NaN"), (points[:1] + 1e5, "outside"),
                         (np.broadcast_to(points[:1, :1], (1, 5, 2)), "zero or negative size")):
        with pytest.raises(ValueError, match=message):
            model.predict(images[:1], points=bad)
    with pytest.raises(ValueError, match=r"\(3, 5, 2\)"):
        model.fit(images[:3], truth[:3], points=points[:2])
    # One face a call takes a shorter path (compiled for the tree cascades): same answer, same checks.
    np.testing.assert_array_equal(model.predict(images[1], points=points[1].tolist()),
                                  model.predict(images[:3], points=points)[1])
    for bad, error, message in ((np.where(np.arange(5)[:, None] == 2, np.nan, points[0]), ValueError, "NaN"),
                                (np.where(np.arange(5)[:, None] == 2, np.inf, points[0]), ValueError, "infinite"),
                                (np.broadcast_to(points[0, :1], (5, 2)), ValueError, "zero or negative size"),
                                (points[0] + 1e5, ValueError, "outside"),
                                (points[0].astype(complex), TypeError, "real numbers"),
                                (points[0] > 0, TypeError, "real numbers")):
        with pytest.raises(error, match=message):
            model.predict(images[0], points=bad)
    with pytest.raises(TypeError, match="uint8"):
        model.predict(images[0].astype(np.float32), points=points[0])


def test_rolled_starts_equal_the_reference(model, drawn_held_out):
    """The compiled loop turns each face's start (the mean shape, or ESR's starts) by its roll
    about the box's centre, as the five-point starts need: equal to the NumPy twin run from
    the turned starts."""
    needs_trees(model)
    images, shapes, boxes = drawn_held_out
    images, boxes, rolls = images[:5], boxes[:5], np.linspace(-0.6, 0.6, 5)
    starts = getattr(model, "initial_shapes_", model.mean_shape_[None])
    every_image, every_box, start_shapes = every_start(images, boxes, starts)
    turned = rotate_about_centre(start_shapes, np.repeat(rolls, len(starts))).astype(np.float32)
    expected = median_over_starts(reference_run(model, every_image, every_box, turned), len(images))
    np.testing.assert_allclose(model._predict(images, boxes, rolls), expected, atol=1e-6)


def test_compressed_leaves(model, drawn_held_out, tmp_path):
    """Leaves in a per-stage basis: the compiled loop equals its NumPy twin, full rank changes
    nothing but rounding, a small rank loses little on these faces, and the file round-trips."""
    needs_trees(model)
    images, shapes, boxes = drawn_held_out
    full = model.compress(2 * shapes.shape[1], bits=16)      # int16 rounding only, as quantize's
    expected = model.predict(images, boxes)
    rounding = np.abs(model.quantize().predict(images, boxes) - expected).mean()
    assert np.abs(full.predict(images, boxes) - expected).mean() < 2 * rounding + 0.01      # pixels
    small = model.compress(8, bits=16)
    assert small.leaf_basis_.shape == (len(model.anchors_), 8, 2 * shapes.shape[1])
    assert small.leaf_values_.shape[3] == 8 and small.leaf_values_.dtype == np.int16
    predicted = small.predict(images[:6], boxes[:6])
    np.testing.assert_allclose(predicted, predict_reference(small, images[:6], boxes[:6]), atol=1e-9)
    assert nme(small.predict(images, boxes), shapes).mean() < 1.3 * nme(model.predict(images, boxes), shapes).mean()
    small.save(tmp_path / "small.npz")
    loaded = type(model).load(tmp_path / "small.npz")
    np.testing.assert_array_equal(loaded.predict(images[:6], boxes[:6]), predicted)
    np.testing.assert_array_equal(loaded.quantize().leaf_basis_, small.leaf_basis_)
    assert np.abs(small.compress(8, bits=16).predict(images[:6], boxes[:6]) - predicted).mean() < 2 * rounding + 0.01
    assert (tmp_path / "small.npz").stat().st_size < 0.5 * len(model.leaf_values_.tobytes())
    for rank in (0, 2 * shapes.shape[1] + 1, 2.5, True):
        with pytest.raises(ValueError, match="rank must be an integer"):
            model.compress(rank)
    coarse = model.compress(8, bits=10)                      # 10 bits: whole numbers from -512 to 511
    assert coarse.leaf_values_.min() >= -512 and coarse.leaf_values_.max() <= 511
    assert np.abs(coarse.leaf_values_).max() >= 511
    np.testing.assert_allclose(coarse.predict(images[:6], boxes[:6]),
                               predict_reference(coarse, images[:6], boxes[:6]), atol=1e-9)
    assert np.abs(coarse.predict(images, boxes) - small.predict(images, boxes)).mean() < 0.5      # pixels
    coarse.save(tmp_path / "coarse.npz")
    assert (tmp_path / "coarse.npz").stat().st_size < (tmp_path / "small.npz").stat().st_size
    for bits in (7, 17, 12.0, True):
        with pytest.raises(ValueError, match="bits must be an integer"):
            model.compress(8, bits=bits)


def test_int16_leaves_summed_in_chunks_equal_the_reference(model, drawn_held_out):
    """The loop adds a stage's int16 rows in int16, as many trees at a time as cannot overflow
    there (more, the fewer bits the leaves keep), then widens the partial sums. Leaves at the
    extremes of their range make every partial sum reach int16's limit. At every bits the answer
    is the NumPy twin's (int64 sums), and one face a call (its trees walked another way) answers
    as a batch."""
    needs_trees(model)
    images, shapes, boxes = drawn_held_out
    images, boxes, points = images[:4], boxes[:4], IBUG68.five_points(shapes[:4])
    models = [model.compress(8, bits=bits) for bits in (8, 11, 13, 16)]
    # trees summed in int16 at a time: 1, 2, 64, 63, 63, 1
    for low, high in ((32767, 32767), (16383, 16383), (511, 511), (-512, -512), (511, -512), (1, -32768)):
        leaves = np.empty_like(models[0].leaf_values_)
        leaves[..., 0::2], leaves[..., 1::2] = low, high
        arrays = {name: getattr(models[0], name) for name in (*model._ARRAYS, "leaf_basis_")}
        arrays |= {"leaf_values_": leaves, "leaf_scale_": np.full(len(leaves), 1e-7)}
        at_extremes = type(model)._from_arrays(model.get_params(), arrays, "leaves at the extremes")
        at_extremes.__dict__.update(model._fitted_extras())
        models.append(at_extremes)
    for fitted in models:
        batch = fitted.predict(images, boxes)
        np.testing.assert_allclose(batch, predict_reference(fitted, images, boxes), atol=1e-9)
        np.testing.assert_array_equal(np.array([fitted.predict(images[i], boxes[i]) for i in range(4)]), batch)
        from_points = fitted.predict(images, points=points)
        np.testing.assert_array_equal(np.array([fitted.predict(images[i], points=points[i]) for i in range(4)]),
                                      from_points)


def test_leaves_that_overflow_give_an_error_not_infinite_landmarks(model, drawn_held_out):
    """Finite leaves whose sum overflows float32 pass the model checks; the answer would be
    infinite, so every path (a batch, one face from five points) says the model is damaged."""
    needs_trees(model)
    images, shapes, boxes = drawn_held_out
    arrays = {n: getattr(model, n).copy() for n in model._ARRAYS}
    arrays["leaf_values_"] = np.full(arrays["leaf_values_"].shape, 3e38, np.float32)
    huge = type(model)._from_arrays(model.get_params(), arrays, "huge")
    huge.__dict__.update(model._fitted_extras())
    points = IBUG68.five_points(shapes)
    for call in (lambda: huge.predict(images[:2], boxes[:2]), lambda: huge.predict(images[:2], points=points[:2]),
                 lambda: huge.predict(images[0], points=points[0])):
        with pytest.raises(ValueError, match="non-finite landmarks"):
            call()


def test_a_damaged_basis_is_refused(model, tmp_path):
    needs_trees(model)
    model.compress(4).save(tmp_path / "small.npz")
    with np.load(tmp_path / "small.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    basis = arrays["leaf_basis_"]
    for damaged in (basis[:, :3], basis[:-1], np.full_like(basis, np.nan), basis[..., :-1]):
        np.savez(tmp_path / "damaged.npz", **{**arrays, "leaf_basis_": damaged})
        with pytest.raises(ValueError):
            type(model).load(tmp_path / "damaged.npz")


def test_the_compiled_model_is_checked_once_and_again_when_replaced(model, drawn_held_out):
    """Prediction checks the fitted arrays once (not every call), makes them read-only so they
    cannot change under it, and checks again arrays put in their place."""
    needs_trees(model)
    images, _, boxes = drawn_held_out
    copy = type(model)._from_arrays(model.get_params(), {n: getattr(model, n).copy() for n in model._ARRAYS},
                                    "copy")
    copy.__dict__.update(model._fitted_extras())
    expected = copy.predict(images[:2], boxes[:2])
    checked = copy._checked_model()
    assert copy._checked_model() is checked
    with pytest.raises(ValueError, match="read-only"):
        copy.split_u_[0, 0, 0] = 10 ** 6
    bad = copy.split_u_.copy()
    bad[0, 0, 0] = 10 ** 6
    copy.split_u_ = bad
    with pytest.raises(ValueError, match="split feature index out of range"):
        copy.predict(images[:2], boxes[:2])
    copy.split_u_ = checked.arrays[3]
    np.testing.assert_array_equal(copy.predict(images[:2], boxes[:2]), expected)


def test_packed_splits_send_every_face_the_same_way(rng):
    """The loop's 8-byte split nodes hold the threshold as a whole number: for every pixel
    difference, and thresholds fractional, whole, out of range, infinite or NaN, the packed
    test ``d > floor(t)`` goes the way the model's ``d > t`` does."""
    thresholds = np.concatenate([rng.uniform(-300, 300, 500), np.arange(-258, 258), [np.nan, np.inf, -np.inf]])
    thresholds = thresholds.astype(np.float32).reshape(1, 1, -1)
    u = np.zeros(thresholds.shape, np.int32)
    nodes = compiled_forest.pack_splits(u, u + 1, thresholds, 2)
    assert nodes.shape == (*thresholds.shape, 4) and nodes.dtype == np.uint16 and nodes.itemsize * 4 == 8
    packed = nodes[..., 2].view(np.int16).astype(int).ravel()
    differences = np.arange(-255, 256)[:, None]
    np.testing.assert_array_equal(differences > packed, differences > thresholds.ravel())
    with pytest.raises(ValueError, match="at most 65,536 feature points"):
        compiled_forest.pack_splits(u, u, thresholds, 65537)


def test_the_compiled_model_refuses_trees_without_splits():
    """A walk reads a tree's root before it knows the depth: a model of trees with no split node
    (which the estimators' checks refuse first) is refused by the compiled model too."""
    f32, i32 = np.float32, np.int32
    arrays = (np.array([[0.3, 0.4], [0.7, 0.6]], f32), np.zeros((1, 2), i32), np.zeros((1, 2, 2), f32),
              np.zeros((1, 3, 0), i32), np.zeros((1, 3, 0), i32), np.zeros((1, 3, 0), f32),
              np.zeros((1, 3, 1, 4), f32), np.ones(1))
    with pytest.raises(ValueError, match="complete binary tree"):
        compiled_forest.CheckedModel(*arrays)
