"""LBF's own parts; the contract it shares with ERT is in test_estimators.py."""
import numpy as np
import pytest
from sklearn.linear_model import Ridge

from cascade import LBF
from cascade.lbf import PRESETS, _binary_features, _global_regression

SMALL = dict(n_stages=3, n_trees=3, tree_depth=4, n_init=4, points_per_landmark=16,
             n_candidate_splits=40, alpha=1.0, random_state=0)


@pytest.fixture(scope="module")
def model(train_faces):
    return LBF(**SMALL).fit(*train_faces)


def test_presets_fill_what_is_not_given():
    assert LBF(preset="fast").settings() == PRESETS["fast"]
    accurate = LBF(n_trees=7)
    assert accurate.get_params()["n_trees"] == 7 and accurate.get_params()["n_stages"] is None
    assert accurate.settings() == {**PRESETS["accurate"], "n_trees": 7}
    with pytest.raises(ValueError, match="preset must be one of"):
        LBF(preset="turbo").settings()


def test_stage_layout(model):
    n_stages, n_trees, n_splits = model.split_u_.shape
    assert (n_stages, n_trees, n_splits) == (3, 68 * 3, 15)
    assert model.leaf_values_.shape == (3, 68 * 3, 16, 136)
    # Points unread by any split are dropped, and each point lies in its landmark's disc,
    # whose radius shrinks stage by stage.
    assert model.anchors_.shape[1] <= 68 * 16
    radii = np.geomspace(PRESETS["accurate"]["radius_start"], PRESETS["accurate"]["radius_end"], 3)
    reach = np.linalg.norm(model.offsets_, axis=2).max(axis=1)
    assert (reach <= radii + 1e-6).all() and (reach > 0.8 * radii).all()
    # A tree of landmark l reads only points hung from l.
    landmark_of_tree = np.repeat(np.arange(68), 3)
    for stage in range(n_stages):
        anchors = model.anchors_[stage]
        assert (anchors[model.split_u_[stage]] == landmark_of_tree[:, None]).all()
        assert (anchors[model.split_v_[stage]] == landmark_of_tree[:, None]).all()


def test_global_regression_is_ridge():
    rng = np.random.default_rng(0)
    n_trees, n_leaves, n_samples = 5, 8, 400
    leaf_of = rng.integers(0, n_leaves, (n_trees, n_samples)).astype(np.int32)
    leaf_of[2] = 0                                    # a tree sending everything one way
    targets = rng.normal(size=(n_samples, 6)).astype(np.float32)
    alpha = 0.01
    features = _binary_features(leaf_of, n_leaves)
    weights = _global_regression(leaf_of, features, targets, alpha, n_jobs=2)
    ridge = Ridge(alpha=alpha * n_samples, fit_intercept=False, solver="cholesky")
    expected = ridge.fit(features.toarray(), targets).coef_.T
    np.testing.assert_allclose(weights, expected, rtol=1e-6, atol=1e-9)


def test_bad_parameters(train_faces):
    images, shapes = train_faces[0][:10], train_faces[1][:10]
    for name, value, message in [("alpha", 0.0, "alpha must be positive"),
                                 ("sample_fraction", 1.5, "sample_fraction"),
                                 ("radius_end", -0.1, "radius"),
                                 ("points_per_landmark", 1, "at least 2"),
                                 ("tree_depth", 13, "too deep"),
                                 ("points_per_landmark", 1000, "exceed the 65,536 points")]:
        with pytest.raises(ValueError, match=message):
            LBF(**{**SMALL, name: value}).fit(images, shapes)


def test_loaded_parameters_must_agree_with_the_arrays(model, tmp_path):
    path = tmp_path / "lbf.npz"
    model.save(path)
    assert LBF.load(path).settings() == model.settings()
    arrays = {name: getattr(model, name) for name in LBF._ARRAYS}
    with pytest.raises(ValueError, match="n_trees"):
        LBF._from_arrays({**model.get_params(), "n_trees": 4}, arrays, "test")
