"""ESR's own parts; the contract it shares with the other estimators is in test_estimators.py."""
import numpy as np
import pytest

from cascade import ESR
from cascade.esr import CorrelationSelector, fern_as_tree, spread_starts
from cascade.trees import leaves_of

SMALL = dict(n_stages=3, n_ferns=40, n_init=4, feature_pool_size=80, shrinkage=50.0, random_state=0)


@pytest.fixture(scope="module")
def model(train_faces):
    return ESR(**SMALL).fit(*train_faces)


def test_ferns_are_trees_sharing_one_test_per_level(model):
    assert model.split_u_.shape == (3, 40, 31) and model.leaf_values_.shape == (3, 40, 32, 136)
    assert model.initial_shapes_.shape == (5, 68, 2)
    for level in range(5):
        nodes = slice(2 ** level - 1, 2 ** (level + 1) - 1)
        for name in ("split_u_", "split_v_", "split_threshold_"):
            values = getattr(model, name)[:, :, nodes]
            assert (values == values[:, :, :1]).all(), (name, level)


def test_a_fern_bin_is_its_tests_read_as_bits():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (500, 10), dtype=np.uint8)
    u, v = np.array([1, 4, 7]), np.array([2, 0, 9])
    threshold = np.array([-3.5, 10.5, 0.5], np.float32)
    bits = pixels[:, u].astype(np.float32) - pixels[:, v] > threshold       # True: the left branch
    expected = ((~bits) * (2 ** np.arange(2, -1, -1))).sum(axis=1)
    np.testing.assert_array_equal(leaves_of(pixels, *fern_as_tree(u, v, threshold)), expected)


def test_correlation_selects_the_pair_that_explains_the_residuals():
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (3000, 30), dtype=np.uint8)
    # Every output moves with pixel 12 minus pixel 5, plus noise.
    signal = pixels[:, 12].astype(np.float32) - pixels[:, 5]
    residuals = (signal[:, None] * rng.uniform(0.5, 1.0, 8) + rng.normal(0, 20, (3000, 8))).astype(np.float32)
    u, v = CorrelationSelector(pixels).select(residuals, np.abs(rng.normal(size=(8, 3))).astype(np.float32))
    assert (u == 12).all() and (v == 5).all()


def test_spread_starts_are_the_mean_and_shapes_along_the_components(train_faces):
    shapes = train_faces[1] / 500.0
    starts = spread_starts(shapes, 5, scale=1.0)
    mean = shapes.mean(axis=0)
    np.testing.assert_allclose(starts[0], mean)
    np.testing.assert_allclose(starts[1] - mean, mean - starts[2], atol=1e-12)      # either way
    np.testing.assert_allclose(starts[3] - mean, mean - starts[4], atol=1e-12)
    flat = (shapes - mean).reshape(len(shapes), -1)
    first, second = (starts[1] - mean).ravel(), (starts[3] - mean).ravel()
    assert abs(first @ second) < 1e-9 * np.linalg.norm(first) * np.linalg.norm(second)   # orthogonal
    # One standard deviation of the shapes along that direction.
    np.testing.assert_allclose(np.linalg.norm(first), np.std(flat @ first / np.linalg.norm(first), ddof=1))


def test_spread_starts_do_not_depend_on_the_seed(train_faces):
    images, shapes = train_faces[0][:40], train_faces[1][:40]
    tiny = dict(SMALL, n_stages=1, n_ferns=2)
    first, second = (ESR(**{**tiny, "random_state": seed}).fit(images, shapes) for seed in (0, 1))
    np.testing.assert_array_equal(first.initial_shapes_, second.initial_shapes_)
    drawn = [ESR(**{**tiny, "random_state": seed, "test_starts": "random"}).fit(images, shapes) for seed in (0, 1)]
    assert not np.array_equal(drawn[0].initial_shapes_, drawn[1].initial_shapes_)
    with pytest.raises(ValueError, match="test_starts must be one of"):
        ESR(**{**tiny, "test_starts": "best"}).fit(images, shapes)


def test_prediction_is_the_median_over_the_starts(model, test_faces):
    images, boxes = list(test_faces.images[:5]), test_faces.face_boxes()[:5]
    runs = []
    for start in model.initial_shapes_:
        one = ESR._from_arrays({**model.get_params(), "n_test_init": 1},
                               {**{name: getattr(model, name) for name in ESR._ARRAYS},
                                "initial_shapes_": start[None]}, "test")
        runs.append(one.predict(images, boxes))
    np.testing.assert_allclose(model.predict(images, boxes), np.median(runs, axis=0), atol=1e-12)
    assert np.ptp(np.array(runs), axis=0).max() > 0.1          # the starts do lead to different shapes


def test_shrinkage_shrinks_the_bins(train_faces):
    images, shapes = train_faces[0][:40], train_faces[1][:40]
    small = dict(SMALL, n_stages=1, n_ferns=5)
    weak = ESR(**{**small, "shrinkage": 1000.0}).fit(images, shapes)
    strong = ESR(**{**small, "shrinkage": 0.0}).fit(images, shapes)
    assert np.abs(weak.leaf_values_).max() < 0.2 * np.abs(strong.leaf_values_).max()


def test_bad_parameters_and_starts(model, train_faces, tmp_path):
    images, shapes = train_faces[0][:10], train_faces[1][:10]
    with pytest.raises(ValueError, match="shrinkage"):
        ESR(**{**SMALL, "shrinkage": -1.0}).fit(images, shapes)
    with pytest.raises(ValueError, match="fern_depth 13 is too deep"):
        ESR(**{**SMALL, "fern_depth": 13}).fit(images, shapes)
    with pytest.raises(ValueError, match="n_test_init must be a positive integer"):
        ESR(**{**SMALL, "n_test_init": 0}).fit(images, shapes)
    arrays = {name: getattr(model, name) for name in ESR._ARRAYS}
    with pytest.raises(ValueError, match="initial_shapes_ has shape"):
        ESR._from_arrays(model.get_params(), {**arrays, "initial_shapes_": arrays["initial_shapes_"][:, :5]},
                         "test")
    with pytest.raises(ValueError, match="n_test_init=3 disagrees"):
        ESR._from_arrays({**model.get_params(), "n_test_init": 3}, arrays, "test")
