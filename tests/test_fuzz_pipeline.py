"""Property-based checks of the photo-to-landmarks entry points: any input gives a correct
result or a clear ValueError/TypeError, never a crash or a silent wrong shape."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cascade import Pipeline, apps
from cnn_refine import Refiner

DTYPES = [np.uint8, np.int8, np.uint16, np.int32, np.float32, np.float64, np.bool_]
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def pipeline():
    return Pipeline(refiner=True)


@pytest.fixture(scope="module")
def refiner():
    return Refiner()


@st.composite
def images(draw):
    height = draw(st.sampled_from([0, 1, 2, 7, 33, 150]))
    width = draw(st.sampled_from([0, 1, 3, 40, 151]))
    channels = draw(st.sampled_from([None, 1, 2, 3, 4]))
    dtype = draw(st.sampled_from(DTYPES))
    shape = (height, width) if channels is None else (height, width, channels)
    return np.random.default_rng(draw(st.integers(0, 2 ** 16))).integers(0, 255, shape).astype(dtype)


@st.composite
def shapes(draw, n=1):
    kind = draw(st.sampled_from(["normal", "nan", "inf", "huge", "collapsed", "wrong count"]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    points = rng.uniform(20, 120, (n, 68, 2))
    if kind == "nan":
        points[0, 5, 0] = np.nan
    elif kind == "inf":
        points[0, 3] = np.inf
    elif kind == "huge":
        points *= 1e9
    elif kind == "collapsed":
        points[:] = 50.0
    elif kind == "wrong count":
        points = points[:, :30]
    return points


def _fine_or_clear(function, *args):
    try:
        return function(*args)
    except (ValueError, TypeError):
        return None


@FUZZ
@given(image=images())
def test_pipeline_on_any_image(pipeline, image):
    found = _fine_or_clear(pipeline, image)
    if found is not None:
        assert image.dtype == np.uint8 and image.size and image.ndim in (2, 3)
        for face in found:
            assert face.landmarks.shape == (68, 2) and np.isfinite(face.landmarks).all()


@FUZZ
@given(image=images(), points=shapes())
def test_refiner_on_any_image_and_shape(refiner, image, points):
    refined = _fine_or_clear(refiner.predict, [image], points)
    if refined is not None:
        assert refined.shape == (1, 68, 2) and np.isfinite(refined).all()
        assert image.dtype == np.uint8 and image.size and image.shape[-1] != 4


@FUZZ
@given(image=images(), points=shapes())
def test_applications_on_any_image_and_shape(image, points):
    for function in (apps.blur_faces, apps.overlay_on_faces, apps.align_faces, apps.draw_landmarks):
        args = (image, points, apps.sunglasses(60)) if function is apps.overlay_on_faces else (image, points)
        result = _fine_or_clear(function, *args)
        if result is not None:
            assert result.dtype == np.uint8


@FUZZ
@given(box=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=4, max_size=4))
def test_refiner_from_any_box(refiner, box):
    image = np.zeros((60, 80), np.uint8)
    result = _fine_or_clear(refiner.predict_from_boxes, [image], [box])
    if result is not None:
        assert result.shape == (1, 68, 2) and np.isfinite(result).all()
