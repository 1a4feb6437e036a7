"""Shape-indexed pixel sampling, the routine every cascade stage starts from.

For sample ``i`` and feature point ``p`` the position read is::

    anchor = shapes[i, anchors[p]]                      # a landmark, image pixels
    x, y   = anchor + transforms[i] @ offsets[p]        # offset in the model frame

and the value is the grey intensity of the nearest pixel, with the position
clamped into the image first, so no read ever leaves the image (NaN clamps to 0);
with ``zero_outside`` a position off the image reads 0 instead, as in dlib.
Colour (BGR) pixels are turned into grey on the fly with OpenCV's BT.601 weights
in 15-bit fixed point, so a large colour image is never converted or copied.

``cascade.features.sample_pixels`` validates inputs and is the public entry;
``cascade.features.sample_pixels_reference`` is the NumPy twin the tests compare
against bit for bit.
"""
cimport numpy as cnp
from libc.stdint cimport uint8_t
from libc.stdlib cimport free

from imageview cimport ImageView, grey_at, image_views

cnp.import_array()


def sample_pixels(list images,
                  const cnp.intp_t[::1] image_index,
                  const double[:, :, ::1] shapes,
                  const double[:, :, ::1] transforms,
                  const cnp.intp_t[::1] anchors,
                  const double[:, ::1] offsets,
                  uint8_t[:, ::1] out,
                  bint zero_outside=False):
    """Fill ``out[i, p]`` with the grey value at feature point ``p`` of sample ``i``.

    images:      list of uint8 images (HxW or HxWx3 BGR, any strides)
    image_index: (n,) which image sample ``i`` reads
    shapes:      (n, L, 2) landmark positions, image pixels
    transforms:  (n, 2, 2) model frame -> image pixels, linear part
    anchors:     (P,) landmark each feature point hangs from
    offsets:     (P, 2) feature point offsets in the model frame
    out:         (n, P) written in place; the GIL is released while it is filled
    zero_outside: read 0 off the image instead of the nearest border pixel
    """
    cdef Py_ssize_t n_samples = shapes.shape[0]
    cdef Py_ssize_t n_landmarks = shapes.shape[1]
    cdef Py_ssize_t n_points = anchors.shape[0]
    cdef Py_ssize_t n_images = len(images)
    if shapes.shape[2] != 2:
        raise ValueError(f"shapes must be (n, L, 2), got last axis {shapes.shape[2]}")
    if (image_index.shape[0] != n_samples or transforms.shape[0] != n_samples
            or out.shape[0] != n_samples):
        raise ValueError("image_index, shapes, transforms and out disagree on the number of samples")
    if transforms.shape[1] != 2 or transforms.shape[2] != 2:
        raise ValueError("transforms must be (n, 2, 2)")
    if offsets.shape[0] != n_points or offsets.shape[1] != 2 or out.shape[1] != n_points:
        raise ValueError("anchors (P,), offsets (P, 2) and out (n, P) disagree on P")

    cdef Py_ssize_t i, p, a
    for p in range(n_points):
        if anchors[p] < 0 or anchors[p] >= n_landmarks:
            raise ValueError(f"anchor {anchors[p]} out of range for {n_landmarks} landmarks")
    for i in range(n_samples):
        if image_index[i] < 0 or image_index[i] >= n_images:
            raise ValueError(f"image_index {image_index[i]} out of range for {n_images} images")
    if n_samples == 0 or n_points == 0:
        return

    cdef ImageView* views = image_views(images)
    cdef const ImageView* view
    cdef double t00, t01, t10, t11, dx, dy
    try:
        # `images` holds a reference to every array, so the pointers stay valid.
        with nogil:
            for i in range(n_samples):
                view = &views[image_index[i]]
                t00 = transforms[i, 0, 0]
                t01 = transforms[i, 0, 1]
                t10 = transforms[i, 1, 0]
                t11 = transforms[i, 1, 1]
                for p in range(n_points):
                    a = anchors[p]
                    dx = offsets[p, 0]
                    dy = offsets[p, 1]
                    out[i, p] = grey_at(view,
                                        shapes[i, a, 0] + (t00 * dx + t01 * dy),
                                        shapes[i, a, 1] + (t10 * dx + t11 * dy), zero_outside)
    finally:
        free(views)
