import numpy as np
import pytest

from cascade.validation import check_boxes, check_image, check_images, check_shapes


def test_images_accepted():
    grey = np.zeros((4, 5), np.uint8)
    colour = np.zeros((4, 5, 3), np.uint8)
    assert check_image(grey) is grey and check_image(colour) is colour
    assert len(check_images([grey, colour])) == 2
    assert len(check_images(np.zeros((3, 4, 5), np.uint8))) == 3        # a stack of grey images


@pytest.mark.parametrize("image, error, message", [
    ([[0, 1]], TypeError, "numpy array"),
    (np.zeros((4, 5), np.float32), TypeError, "uint8"),
    (np.zeros((4, 5), bool), TypeError, "uint8"),
    (np.zeros((4, 5, 4), np.uint8), ValueError, "3 channels"),
    (np.zeros((4, 5, 1), np.uint8), ValueError, "3 channels"),
    (np.zeros(5, np.uint8), ValueError, "HxW"),
    (np.zeros((2, 4, 5, 3), np.uint8), ValueError, "HxW"),
    (np.zeros((0, 0), np.uint8), ValueError, "empty"),
    (np.zeros((7, 0, 3), np.uint8), ValueError, "empty"),
])
def test_bad_images(image, error, message):
    with pytest.raises(error, match=message):
        check_image(image)


def test_bad_image_sequences():
    with pytest.raises(TypeError, match="sequence of images"):
        check_images(42)
    with pytest.raises(TypeError, match="sequence of images"):
        check_images("photo.jpg")
    with pytest.raises(TypeError, match=r"images\[1\] must be uint8"):
        check_images([np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.int32)])


@pytest.mark.parametrize("boxes, message", [
    ([[0, 0, 10]], r"\(n_faces, 4\)"),
    ([[0, 0, np.nan, 10]], "NaN or infinite"),
    ([[0, 0, np.inf, 10]], "NaN or infinite"),
    ([[10, 0, 5, 10]], "zero or negative size"),
    ([[0, 3, 10, 3]], "zero or negative size"),
    ([[0, 0, 1, 1], [0, 0, 1]], "rectangular"),
])
def test_bad_boxes(boxes, message):
    with pytest.raises(ValueError, match=message):
        check_boxes(boxes)


def test_boxes_against_images():
    ok = check_boxes([[-5, -5, 3, 3], [90, 40, 120, 70]], image_sizes=[(50, 100), (50, 100)])
    assert ok.dtype == np.float64
    with pytest.raises(ValueError, match="outside its 50x100 image"):
        check_boxes([[100, 0, 120, 10]], image_sizes=[(50, 100)])
    with pytest.raises(ValueError, match="outside"):
        check_boxes([[-30, -30, -1, 20]], image_sizes=[(50, 100)])
    with pytest.raises(ValueError, match="expected 2"):
        check_boxes([[0, 0, 1, 1]], n_faces=2)
    with pytest.raises(TypeError, match="real numbers"):
        check_boxes([["a", "b", "c", "d"]])


def test_shapes():
    shapes = np.zeros((2, 3, 2), np.float32)
    assert check_shapes(shapes).dtype == np.float64
    with pytest.raises(ValueError, match=r"\(n_faces, n_landmarks, 2\)"):
        check_shapes(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="at least one landmark"):
        check_shapes(np.zeros((2, 0, 2)))
    with pytest.raises(ValueError, match="has 3 landmarks, expected 5"):
        check_shapes(shapes, n_landmarks=5)
    nan = np.zeros((1, 3, 2))
    nan[0, 1] = np.nan
    assert np.isnan(check_shapes(nan)).sum() == 2
    with pytest.raises(ValueError, match="NaN"):
        check_shapes(nan, allow_nan=False)
    with pytest.raises(ValueError, match="all missing"):
        check_shapes(np.full((1, 3, 2), np.nan))
    with pytest.raises(ValueError, match="infinite"):
        check_shapes(np.full((1, 3, 2), np.inf))


def test_collapsed_shapes_are_refused_on_request():
    shapes = np.array([[[0.0, 0], [10, 0], [np.nan, np.nan]], [[5, 5], [5.5, 5], [np.nan, np.nan]]])
    assert check_shapes(shapes).shape == (2, 3, 2)                   # no floor unless asked
    assert check_shapes(shapes[:1], min_spread=1.0).shape == (1, 3, 2)   # spread 5 px; NaN skipped
    with pytest.raises(ValueError, match="face 1 has collapsed points"):
        check_shapes(shapes, min_spread=1.0)
    assert check_shapes(np.zeros((0, 3, 2)), min_spread=1.0).shape == (0, 3, 2)
