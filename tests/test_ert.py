"""ERT's own parts; the contract it shares with LBF is in test_estimators.py."""
import numpy as np
import pytest
from reference import predict_reference

from cascade import ERT

SMALL = dict(n_stages=4, n_trees=40, n_init=4, feature_pool_size=100, random_state=0)


@pytest.fixture(scope="module")
def model(train_faces):
    return ERT(**SMALL).fit(*train_faces)


def test_model_is_flat_arrays(model):
    assert model.split_u_.shape == (4, 40, 15) and model.split_u_.dtype == np.int32
    assert model.leaf_values_.shape == (4, 40, 16, 136) and model.leaf_values_.dtype == np.float32
    assert model.anchors_.shape == (4, 100) and model.offsets_.shape == (4, 100, 2)


def test_uniform_thresholds_predict_as_the_reference(train_faces, test_faces):
    uniform = ERT(**SMALL, split_thresholds="uniform").fit(*train_faces)
    images, boxes = list(test_faces.images[:6]), test_faces.face_boxes()[:6]
    for fitted in (uniform, uniform.quantize()):
        np.testing.assert_allclose(fitted.predict(images, boxes),
                                   predict_reference(fitted, images, boxes), atol=1e-9)


def test_bad_parameters(train_faces):
    images, shapes = train_faces[0][:10], train_faces[1][:10]
    with pytest.raises(ValueError, match="shrinkage"):
        ERT(**{**SMALL, "shrinkage": 0}).fit(images, shapes)
    with pytest.raises(ValueError, match="split_thresholds"):
        ERT(**{**SMALL, "split_thresholds": "median"}).fit(images, shapes)
    with pytest.raises(ValueError, match="at most 65,536"):
        ERT(**{**SMALL, "feature_pool_size": 70000}).fit(images, shapes)
