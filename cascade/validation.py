"""Input checks done once, at the public edge, so inner code can trust its arrays.

Every check raises ``TypeError`` (wrong kind or dtype) or ``ValueError`` (wrong
shape or value) with a message that names the argument and the problem.
The conventions checked here are stated in :mod:`cascade`'s docstring.
"""
from collections.abc import Sequence

import numpy as np


def check_image(image, name="image"):
    """Return ``image`` unchanged if it is a non-empty uint8 HxW or HxWx3 array."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"{name} must be uint8 (0..255), got dtype {image.dtype}; "
                        "convert with np.clip(x, 0, 255).astype(np.uint8)")
    if image.ndim == 3 and image.shape[2] != 3:
        raise ValueError(f"{name} must have 3 channels (BGR) when 3-D, got shape {image.shape}")
    if image.ndim not in (2, 3):
        raise ValueError(f"{name} must be HxW (grey) or HxWx3 (BGR), got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {image.shape})")
    return image


def check_images(images, name="images"):
    """Return a list of checked images from a sequence (or an array stacked on axis 0)."""
    if isinstance(images, np.ndarray):
        if images.ndim not in (3, 4):
            raise ValueError(f"{name} given as one array must be (n, H, W) or (n, H, W, 3), "
                             f"got shape {images.shape}")
        images = list(images)
    elif not isinstance(images, Sequence) or isinstance(images, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of images, got {type(images).__name__}")
    return [check_image(image, f"{name}[{i}]") for i, image in enumerate(images)]


def check_shapes(shapes, n_faces=None, n_landmarks=None, allow_nan=True, min_spread=None, name="shapes"):
    """Return ``shapes`` as a float64 ``(n_faces, n_landmarks, 2)`` array.

    NaN marks a missing point and is allowed unless ``allow_nan`` is false;
    infinities never are. A face whose points are all NaN is refused, and with
    ``min_spread`` (pixels) one whose present points lie closer than that to
    their centre (root mean square): it has no scale or orientation.
    """
    array = as_real_array(shapes, name)
    if array.ndim != 3 or array.shape[2] != 2 or array.shape[1] == 0:
        raise ValueError(f"{name} must be (n_faces, n_landmarks, 2) with at least one landmark, "
                         f"got shape {array.shape}")
    if n_faces is not None and array.shape[0] != n_faces:
        raise ValueError(f"{name} has {array.shape[0]} faces, expected {n_faces}")
    if n_landmarks is not None and array.shape[1] != n_landmarks:
        raise ValueError(f"{name} has {array.shape[1]} landmarks, expected {n_landmarks}")
    if np.isinf(array).any():
        raise ValueError(f"{name} contains infinite coordinates")
    missing = np.isnan(array)
    if missing.any():
        if not allow_nan:
            raise ValueError(f"{name} contains NaN coordinates")
        if (missing[..., 0] != missing[..., 1]).any():
            raise ValueError(f"{name} has points with only one coordinate NaN")
        if missing.all(axis=(1, 2)).any():
            raise ValueError(f"{name} has a face whose points are all missing (NaN)")
    if min_spread is not None and len(array):
        centred = array - np.nanmean(array, axis=1, keepdims=True)
        spread = np.sqrt(np.nanmean((centred ** 2).sum(axis=2), axis=1))
        collapsed = np.flatnonzero(spread < min_spread)
        if collapsed.size:
            face = collapsed[0]
            raise ValueError(f"{name}: face {face} has collapsed points (spread {spread[face]:.2g} px, "
                             f"under {min_spread} px)")
    return array


def check_start_points(points, n_faces):
    """Return ``points`` as a float64 ``(n_faces, 5, 2)`` array of five start points per face;
    a face whose points are all NaN has none (it starts from its box), no other NaN is allowed."""
    array = as_real_array(points, "points")
    if array.ndim != 3 or array.shape[1:] != (5, 2) or len(array) != n_faces:
        raise ValueError(f"points must be ({n_faces}, 5, 2), five points per face, got shape {array.shape}")
    none = np.isnan(array).all(axis=(1, 2))
    check_shapes(array[~none], allow_nan=False, name="points")
    return array


def check_boxes(boxes, n_faces=None, image_sizes=None, name="boxes"):
    """Return ``boxes`` as a float64 ``(n_faces, 4)`` array of (left, top, right, bottom).

    Boxes must be finite with positive width and height. With ``image_sizes``
    (a sequence of ``(height, width)``), each box must also overlap its image.
    """
    array = as_real_array(boxes, name)
    if array.shape == (0,):                 # an empty list: no faces
        array = array.reshape(0, 4)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"{name} must be (n_faces, 4) as (left, top, right, bottom), "
                         f"got shape {array.shape}")
    if n_faces is not None and array.shape[0] != n_faces:
        raise ValueError(f"{name} has {array.shape[0]} boxes, expected {n_faces}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    left, top, right, bottom = array.T
    sized = (right > left) & (bottom > top)
    if not sized.all():
        bad = np.flatnonzero(~sized)
        raise ValueError(f"{name}[{bad[0]}] = {array[bad[0]].tolist()} has zero or negative "
                         "size (need right > left and bottom > top)")
    if image_sizes is not None:
        on_images = boxes_on_images(array, image_sizes)
        if not on_images.all():
            i = np.flatnonzero(~on_images)[0]
            height, width = np.broadcast_to(np.asarray(image_sizes, dtype=np.float64).reshape(-1, 2),
                                            (len(array), 2))[i]
            raise ValueError(f"{name}[{i}] = {array[i].tolist()} lies outside its {height:.0f}x{width:.0f} image")
    return array


def boxes_on_images(boxes, image_sizes):
    """Which ``(n, 4)`` boxes overlap their images (``image_sizes``: one ``(height, width)`` for all,
    or one per box); a box with NaN does not."""
    height, width = np.asarray(image_sizes, dtype=np.float64).reshape(-1, 2).T
    left, top, right, bottom = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).T
    return (left < width) & (top < height) & (right > 0) & (bottom > 0)      # NaN compares False


def as_real_array(values, name):
    """``values`` as a C-ordered float64 array; TypeError unless they are integers or floats,
    ValueError if they are ragged."""
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as error:  # ragged nested lists
        raise ValueError(f"{name} is not a rectangular array: {error}") from None
    if array.dtype.kind not in "iuf":          # integers or floats (bool and complex are not)
        raise TypeError(f"{name} must be real numbers, got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float64)


def check_integer(value, name, low=1):
    """Return ``value`` as an int if it is an integer >= ``low`` (not a bool); else
    ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        wanted = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    return int(value)


def check_real(value, name, low=0.0, high=None, include_low=False):
    """Return ``value`` if it is a real number above ``low`` (or equal, with ``include_low``)
    and at most ``high``; else TypeError (not a number) or ValueError (out of range, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    above = value >= low if include_low else value > low
    if not (above and (high is None or value <= high)):           # NaN fails both comparisons
        if high is not None:
            wanted = f"in {'[' if include_low else '('}{low:g}, {high:g}]"
        elif low == 0 and not include_low:
            wanted = "positive"
        else:
            wanted = f"{'>=' if include_low else '>'} {low:g}"
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    return value
