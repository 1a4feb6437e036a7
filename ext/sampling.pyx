"""Shape-indexed pixel sampling, the routine every cascade stage starts from.

For sample ``i`` and feature point ``p`` the position read is::

    anchor = shapes[i, anchors[p]]                      # a landmark, image pixels
    x, y   = anchor + transforms[i] @ offsets[p]        # offset in the model frame

and the value is the grey intensity of the nearest pixel, with the position
clamped into the image first, so no read ever leaves the image (NaN clamps to 0).
Colour (BGR) pixels are turned into grey on the fly with OpenCV's BT.601 weights
in 15-bit fixed point, so a large colour image is never converted or copied.

``cascade.features.sample_pixels`` validates inputs and is the public entry;
``cascade.features.sample_pixels_reference`` is the NumPy twin the tests compare
against bit for bit.
"""
import numpy as np

cimport numpy as cnp
from libc.stdint cimport uint8_t
from libc.stdlib cimport free, malloc

cnp.import_array()

# BT.601 luma in 15-bit fixed point, as cv2.cvtColor(COLOR_BGR2GRAY) rounds it.
cdef enum:
    GREY_SHIFT = 15
    WEIGHT_B = 3735
    WEIGHT_G = 19235
    WEIGHT_R = 9798


cdef struct ImageView:
    const uint8_t* data
    Py_ssize_t height
    Py_ssize_t width
    Py_ssize_t row_stride       # bytes; any sign, so flipped views need no copy
    Py_ssize_t col_stride
    Py_ssize_t channel_stride
    int channels


cdef inline Py_ssize_t nearest_index(double v, Py_ssize_t size) noexcept nogil:
    # Written so that NaN fails the first test and clamps to 0.
    if not v >= 0.0:
        return 0
    if v >= size - 1:
        return size - 1
    return <Py_ssize_t>(v + 0.5)


cdef inline uint8_t grey_at(const ImageView* view, double x, double y) noexcept nogil:
    cdef Py_ssize_t col = nearest_index(x, view.width)
    cdef Py_ssize_t row = nearest_index(y, view.height)
    cdef const uint8_t* px = view.data + row * view.row_stride + col * view.col_stride
    if view.channels == 1:
        return px[0]
    return <uint8_t>((px[0] * WEIGHT_B + px[view.channel_stride] * WEIGHT_G
                      + px[2 * view.channel_stride] * WEIGHT_R
                      + (1 << (GREY_SHIFT - 1))) >> GREY_SHIFT)


cdef int fill_view(ImageView* view, object image) except -1:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    cdef cnp.ndarray arr = <cnp.ndarray>image
    if arr.dtype != np.uint8:
        raise TypeError(f"image must be uint8, got {arr.dtype}")
    if arr.ndim == 2:
        view.channels = 1
        view.channel_stride = 0
    elif arr.ndim == 3 and arr.shape[2] == 3:
        view.channels = 3
        view.channel_stride = arr.strides[2]
    else:
        raise ValueError(f"image must be HxW or HxWx3, got shape {image.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"image is empty (shape {image.shape})")
    view.data = <const uint8_t*>cnp.PyArray_DATA(arr)
    view.height = arr.shape[0]
    view.width = arr.shape[1]
    view.row_stride = arr.strides[0]
    view.col_stride = arr.strides[1]
    return 0


def sample_pixels(list images,
                  const cnp.intp_t[::1] image_index,
                  const double[:, :, ::1] shapes,
                  const double[:, :, ::1] transforms,
                  const cnp.intp_t[::1] anchors,
                  const double[:, ::1] offsets,
                  uint8_t[:, ::1] out):
    """Fill ``out[i, p]`` with the grey value at feature point ``p`` of sample ``i``.

    images:      list of uint8 images (HxW or HxWx3 BGR, any strides)
    image_index: (n,) which image sample ``i`` reads
    shapes:      (n, L, 2) landmark positions, image pixels
    transforms:  (n, 2, 2) model frame -> image pixels, linear part
    anchors:     (P,) landmark each feature point hangs from
    offsets:     (P, 2) feature point offsets in the model frame
    out:         (n, P) written in place; the GIL is released while it is filled
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

    cdef ImageView* views = <ImageView*>malloc(max(n_images, 1) * sizeof(ImageView))
    if views == NULL:
        raise MemoryError()
    cdef const ImageView* view
    cdef double t00, t01, t10, t11, dx, dy
    try:
        for i in range(n_images):
            fill_view(&views[i], images[i])
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
                                        shapes[i, a, 1] + (t10 * dx + t11 * dy))
    finally:
        free(views)
