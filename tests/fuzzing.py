"""Hypothesis strategies shared by the property-based tests (``test_fuzz_*.py``).

The property every public entry point must have: any input gives a correct
result or a clear ``ValueError``/``TypeError``; never a crash, a hang, or a
silent wrong answer. :func:`fine_or_clear` runs a call under that rule.
"""
import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

DTYPES = [np.uint8, np.int8, np.uint16, np.int32, np.float32, np.float64, np.bool_]
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

#: Coordinates no face box should accept, and ordinary ones.
ODD_FLOATS = st.one_of(st.sampled_from([np.nan, np.inf, -np.inf, -1e9, 1e9, -0.0, 1e-300]),
                       st.floats(-400, 400, allow_nan=False))


def fine_or_clear(function, *args, **kwargs):
    """``function(*args)``, or None where it refused with a ValueError or TypeError."""
    try:
        return function(*args, **kwargs)
    except (ValueError, TypeError):
        return None


@st.composite
def images(draw, heights=(0, 1, 2, 7, 33, 150), widths=(0, 1, 3, 40, 151)):
    """Images of any dtype, 0 to 4 channels (None: 2-D), sizes from empty to very thin;
    half of them usable (see :func:`is_usable_image`), so that both outcomes are tried."""
    height = draw(st.sampled_from(heights))
    width = draw(st.sampled_from(widths))
    if draw(st.booleans()):
        height, width = max(height, 1), max(width, 1)
        channels, dtype = draw(st.sampled_from([None, 3])), np.uint8
    else:
        channels = draw(st.sampled_from([None, 0, 1, 2, 3, 4]))
        dtype = draw(st.sampled_from(DTYPES))
    shape = (height, width) if channels is None else (height, width, channels)
    return np.random.default_rng(draw(st.integers(0, 2 ** 16))).integers(0, 255, shape).astype(dtype)


def is_usable_image(image):
    """What the landmarkers accept: non-empty uint8, grey or 3-channel BGR."""
    return (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.size > 0
            and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)))


def is_usable_photo(image):
    """What the pipeline accepts (:func:`cascade.data.as_photo`): a usable image, or a non-empty
    8- or 16-bit one of 1, 2 or 4 channels."""
    return (isinstance(image, np.ndarray) and image.dtype in (np.uint8, np.uint16) and image.size > 0
            and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 2, 3, 4))))


@st.composite
def boxes(draw, height=150, width=151):
    """A ``(left, top, right, bottom)`` box: ordinary, reversed, far outside, or with odd values."""
    kind = draw(st.sampled_from(["inside", "partly outside", "reversed", "far outside", "odd values"]))
    if kind == "odd values":
        return [draw(ODD_FLOATS) for _ in range(4)]
    left = draw(st.floats(0, width - 10))
    top = draw(st.floats(0, height - 10))
    size = draw(st.floats(2, 120))
    box = [left, top, left + size, top + size]
    if kind == "partly outside":
        box = [box[0] - 100, box[1] - 50, box[2] + 40, box[3]]
    elif kind == "reversed":
        box = [box[2], box[1], box[0], box[3]] if draw(st.booleans()) else [box[0], box[3], box[2], box[1]]
    elif kind == "far outside":
        box = [v + draw(st.sampled_from([-5000.0, 5000.0])) for v in box]
    return box


def is_usable_box(box, image_shape):
    """A finite box of positive size that overlaps its image."""
    left, top, right, bottom = box
    height, width = image_shape[:2]
    return (bool(np.isfinite(box).all()) and right > left and bottom > top
            and left < width and top < height and right > 0 and bottom > 0)


@st.composite
def shapes(draw, n=1, n_landmarks=68):
    """``(n, n_landmarks, 2)`` shapes: plausible, or with NaN, inf, huge, collapsed or too few points."""
    kind = draw(st.sampled_from(["normal", "nan", "all nan", "inf", "huge", "collapsed", "wrong count"]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    points = rng.uniform(20, 120, (n, n_landmarks, 2))
    if kind == "nan":
        points[0, 5] = np.nan
    elif kind == "all nan":
        points[0] = np.nan
    elif kind == "inf":
        points[0, 3] = np.inf
    elif kind == "huge":
        points *= 1e9
    elif kind == "collapsed":
        points[:] = 50.0
    elif kind == "wrong count":
        points = points[:, :n_landmarks // 2]
    return points
