# Bounds-safe grey reads from uint8 images of any strides, shared by every compiled loop.
#
# A position is clamped into the image before it is read (NaN clamps to 0), or
# reads 0 when outside if asked, and
# BGR pixels are turned into grey with OpenCV's BT.601 weights in 15-bit fixed
# point, so a colour image is never converted or copied.
cimport numpy as cnp
from libc.stdint cimport uint8_t
from libc.stdlib cimport free, malloc


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


cdef inline const uint8_t* pixel_address(const ImageView* view, double x, double y,
                                        bint zero_outside) noexcept nogil:
    # The first byte of the pixel nearest (x, y), clamped into the image; NULL when
    # zero_outside and that pixel is off the image (it reads 0, dlib's convention).
    if zero_outside and not (-0.5 <= x < view.width - 0.5 and -0.5 <= y < view.height - 0.5):
        return NULL
    return (view.data + nearest_index(y, view.height) * view.row_stride
            + nearest_index(x, view.width) * view.col_stride)


cdef inline uint8_t grey_of(const ImageView* view, const uint8_t* px) noexcept nogil:
    # The grey value of the pixel at ``px`` (from pixel_address; NULL reads 0).
    if px == NULL:
        return 0
    if view.channels == 1:
        return px[0]
    return <uint8_t>((px[0] * WEIGHT_B + px[view.channel_stride] * WEIGHT_G
                      + px[2 * view.channel_stride] * WEIGHT_R
                      + (1 << (GREY_SHIFT - 1))) >> GREY_SHIFT)


cdef inline uint8_t grey_at(const ImageView* view, double x, double y,
                            bint zero_outside) noexcept nogil:
    return grey_of(view, pixel_address(view, x, y, zero_outside))


cdef inline int fill_view(ImageView* view, object image) except -1:
    """Describe ``image`` in ``view``; the caller keeps ``image`` alive while it is read."""
    if not isinstance(image, cnp.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    cdef cnp.ndarray arr = <cnp.ndarray>image
    if cnp.PyArray_TYPE(arr) != cnp.NPY_UINT8:
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


cdef inline ImageView* image_views(list images) except NULL:
    """A malloc'ed view per image (free it); raises for any image that is not readable."""
    cdef Py_ssize_t n = len(images), i
    cdef ImageView* views = <ImageView*>malloc(max(n, 1) * sizeof(ImageView))
    if views == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            fill_view(&views[i], images[i])
    except BaseException:
        free(views)
        raise
    return views
