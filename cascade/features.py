"""Shape-indexed pixel features: where to look relative to the current shape, and sampling.

A feature point is a landmark index (its *anchor*) plus an *offset* in the
model frame, the unit frame of the mean shape (see :mod:`cascade.shapes`).
For a face whose current estimate is ``shape`` (image pixels) the point is read at
``shape[anchor] + transform @ offset``, where ``transform`` (2x2) is the linear
part of the similarity taking the mean shape onto the current estimate in the
unit frame, followed by the box's scaling to pixels (:func:`frame_transforms`).
So the features move, turn and scale with the face, as in ERT, LBF and ESR.

Values are grey intensities (BGR images are converted per pixel read), taken at
the nearest pixel; a position off the image reads the nearest border pixel, or
0 with ``outside="zero"`` (dlib's convention).
"""
import numpy as np

from ._ext import sampling as _sampling
from .shapes import similarity_fit, to_unit
from .threads import map_chunks
from .validation import check_images, check_shapes

# BT.601 luma in 15-bit fixed point, the weights and rounding of cv2's BGR2GRAY.
_GREY_WEIGHTS_BGR = np.array([3735, 19235, 9798], dtype=np.int64)
_GREY_SHIFT = 15


def frame_transforms(shapes, boxes, mean_shape):
    """``(n, 2, 2)`` linear maps from the model frame to image pixels for each face.

    ``shapes`` are the current estimates in pixels, ``boxes`` their ``(n, 4)``
    face boxes and ``mean_shape`` the ``(L, 2)`` unit-frame mean shape.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    A, _ = similarity_fit(mean_shape, to_unit(shapes, boxes))
    box_size = boxes[:, 2:] - boxes[:, :2]
    return box_size[:, :, None] * A


OUTSIDE = ("clamp", "zero")


def sample_pixels(images, shapes, transforms, anchors, offsets, image_index=None, n_jobs=1,
                  outside="clamp"):
    """Grey values at shape-indexed feature points for a batch of faces (compiled).

    images:      sequence of uint8 images, HxW or HxWx3 (BGR)
    shapes:      (n, L, 2) current landmark estimates, image pixels
    transforms:  (n, 2, 2) model frame -> pixels, e.g. from :func:`frame_transforms`
    anchors:     (P,) landmark index of each feature point
    offsets:     (P, 2) offset of each feature point in the model frame
    image_index: (n,) image each face reads; default ``arange(n)`` (one face per image)
    n_jobs:      threads to split the faces over (the loop releases the GIL); -1: all cores
    outside:     "clamp": a position off the image reads the nearest border pixel
                 (NaN reads pixel 0 of that axis); "zero": it reads 0, as dlib does

    Returns an ``(n, P)`` uint8 array.
    """
    images, image_index, shapes, transforms, anchors, offsets = _check_sampling_args(
        images, shapes, transforms, anchors, offsets, image_index, outside)
    out = np.empty((len(shapes), len(anchors)), dtype=np.uint8)

    def fill(chunk):
        _sampling.sample_pixels(images, image_index[chunk], shapes[chunk],
                                transforms[chunk], anchors, offsets, out[chunk], outside == "zero")

    map_chunks(fill, len(shapes), n_jobs)
    return out


def pixels_at(images, positions, outside="clamp", reference=False):
    """Grey values at given pixel positions, ``(n, P, 2) -> (n, P)`` uint8, image ``i`` for row ``i``.

    The sampler with each position its own feature point (anchored to itself at
    no offset): the same bounds-safe nearest-pixel reads. ``reference`` uses the
    NumPy twin (for the reference predictor).
    """
    positions = np.asarray(positions, dtype=np.float64)
    n, n_points = positions.shape[:2]
    sampler = sample_pixels_reference if reference else sample_pixels
    return sampler(images, positions, np.zeros((n, 2, 2)), np.arange(n_points), np.zeros((n_points, 2)),
                   outside=outside)


def sample_pixels_reference(images, shapes, transforms, anchors, offsets, image_index=None,
                            outside="clamp"):
    """Pure-NumPy twin of :func:`sample_pixels`, for tests and readers; same result bit for bit."""
    images, image_index, shapes, transforms, anchors, offsets = _check_sampling_args(
        images, shapes, transforms, anchors, offsets, image_index, outside)
    out = np.empty((len(shapes), len(anchors)), dtype=np.uint8)
    dx, dy = offsets[:, 0], offsets[:, 1]
    for i, image in enumerate(images[k] for k in image_index):
        with np.errstate(over="ignore", invalid="ignore"):     # huge positions clamp below
            x = shapes[i, anchors, 0] + (transforms[i, 0, 0] * dx + transforms[i, 0, 1] * dy)
            y = shapes[i, anchors, 1] + (transforms[i, 1, 0] * dx + transforms[i, 1, 1] * dy)
        col = _nearest_index(x, image.shape[1])
        row = _nearest_index(y, image.shape[0])
        pixels = image[row, col]
        if image.ndim == 3:
            pixels = (pixels.astype(np.int64) @ _GREY_WEIGHTS_BGR
                      + (1 << (_GREY_SHIFT - 1))) >> _GREY_SHIFT
        if outside == "zero":
            with np.errstate(invalid="ignore"):
                off = ~((x >= -0.5) & (x < image.shape[1] - 0.5) & (y >= -0.5) & (y < image.shape[0] - 0.5))
            pixels = np.where(off, 0, pixels)
        out[i] = pixels
    return out


def _nearest_index(v, size):
    with np.errstate(invalid="ignore"):
        v = np.where(v >= 0.0, np.minimum(v, size - 1.0), 0.0)
    return np.floor(v + 0.5).astype(np.intp)


def _check_sampling_args(images, shapes, transforms, anchors, offsets, image_index, outside):
    if outside not in OUTSIDE:
        raise ValueError(f"outside must be one of {OUTSIDE}, got {outside!r}")
    images = check_images(images)
    shapes = check_shapes(shapes)
    n, n_landmarks = shapes.shape[:2]
    transforms = np.ascontiguousarray(transforms, dtype=np.float64)
    if transforms.shape != (n, 2, 2):
        raise ValueError(f"transforms must be ({n}, 2, 2), got {transforms.shape}")
    anchors = _index_array(anchors, n_landmarks, "anchors")
    offsets = np.ascontiguousarray(offsets, dtype=np.float64)
    if offsets.shape != (len(anchors), 2):
        raise ValueError(f"offsets must be ({len(anchors)}, 2) to match anchors, got {offsets.shape}")
    if not np.isfinite(offsets).all() or not np.isfinite(transforms).all():
        raise ValueError("offsets and transforms must be finite")
    if image_index is None:
        if len(images) != n:
            raise ValueError(f"{len(images)} images for {n} shapes; pass image_index "
                             "to share images between faces")
        image_index = np.arange(n, dtype=np.intp)
    else:
        image_index = _index_array(image_index, len(images), "image_index")
        if len(image_index) != n:
            raise ValueError(f"image_index has {len(image_index)} entries for {n} shapes")
    return images, image_index, shapes, transforms, anchors, offsets


def _index_array(values, size, name):
    array = np.asarray(values)
    if array.ndim != 1 or not (np.issubdtype(array.dtype, np.integer) or array.size == 0):
        raise TypeError(f"{name} must be a 1-D integer array, got {array.dtype} of shape {array.shape}")
    if array.size and (array.min() < 0 or array.max() >= size):
        raise ValueError(f"{name} must lie in [0, {size}), got [{array.min()}, {array.max()}]")
    return np.ascontiguousarray(array, dtype=np.intp)
