"""Property-based checks of the photo-to-landmarks entry points: any input gives a correct
result or a clear ValueError/TypeError, never a crash or a silent wrong shape."""
import numpy as np
import pytest
from fuzzing import FUZZ, fine_or_clear, images, is_usable_image, is_usable_photo, shapes
from hypothesis import given
from hypothesis import strategies as st

from cascade import Pipeline, apps
from cascade.refiner import Refiner


@pytest.fixture(scope="module")
def pipeline():
    return Pipeline()


@pytest.fixture(scope="module")
def refiner():
    return Refiner()


@FUZZ
@given(image=images())
def test_pipeline_on_any_image(pipeline, image):
    found = fine_or_clear(pipeline, image)
    assert (found is not None) == is_usable_photo(image)
    if found is not None:
        for face in found:
            assert face.landmarks.shape == (68, 2) and np.isfinite(face.landmarks).all()


@FUZZ
@given(image=images(), points=shapes())
def test_refiner_on_any_image_and_shape(refiner, image, points):
    refined = fine_or_clear(refiner.predict, [image], points)
    if refined is not None:
        assert refined.shape == (1, 68, 2) and np.isfinite(refined).all()
        assert is_usable_image(image)


@FUZZ
@given(image=images(), points=shapes())
def test_applications_on_any_image_and_shape(image, points):
    for function in (apps.blur_faces, apps.overlay_on_faces, apps.align_faces, apps.draw_landmarks):
        args = (image, points, apps.sunglasses(60)) if function is apps.overlay_on_faces else (image, points)
        result = fine_or_clear(function, *args)
        if result is not None:
            assert result.dtype == np.uint8


@FUZZ
@given(box=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=4, max_size=4))
def test_refiner_from_any_box(refiner, box):
    image = np.zeros((60, 80), np.uint8)
    result = fine_or_clear(refiner.predict_from_boxes, [image], [box])
    if result is not None:
        assert result.shape == (1, 68, 2) and np.isfinite(result).all()
