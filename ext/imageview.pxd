# Bounds-safe grey reads from uint8 images of any strides, shared by every compiled loop: the C
# runtime's own (runtime/src/internal.h), described here from NumPy arrays.
#
# A position is clamped into the image before it is read (NaN clamps to 0), or reads 0 when
# outside if asked, and BGR pixels are turned into grey with OpenCV's BT.601 weights in 15-bit
# fixed point, so a colour image is never converted or copied.
cimport numpy as cnp
from libc.stdint cimport uint8_t
from libc.stdlib cimport free, malloc


cdef extern from "internal.h" nogil:
    ctypedef struct ImageView "cascade_view":
        const uint8_t* data
        Py_ssize_t height
        Py_ssize_t width
        Py_ssize_t row_stride       # bytes; any sign, so flipped views need no copy
        Py_ssize_t col_stride
        Py_ssize_t channel_stride
        int channels
    const uint8_t* pixel_address "cascade_pixel_address"(const ImageView* view, double x, double y,
                                                          bint zero_outside)
    uint8_t grey_of "cascade_grey_of"(const ImageView* view, const uint8_t* px)
    uint8_t grey_at "cascade_grey_at"(const ImageView* view, double x, double y, bint zero_outside)


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
