/* The cascade's loop and what it reads, shared by the library (model.c) and by Python's compiled
 * core (ext/forest.pyx, ext/sampling.pyx include this header): one implementation of the
 * prediction, called from C and from Python.
 *
 * Conventions: images are uint8, grey or BGR, of any strides (bytes, any sign); coordinates are
 * pixels, (x, y), the centre of the top-left pixel at (0, 0); a box is (left, top, right, bottom);
 * a shape is L (x, y) pairs, row-major; a face's unit frame has its box's left/top edge at 0 and
 * right/bottom edge at 1. Nothing here allocates, locks or keeps state: a model is read-only and
 * every call brings its own scratch memory, so threads may share a model. */
#ifndef CASCADE_INTERNAL_H
#define CASCADE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define CASCADE_PREFETCH(address) __builtin_prefetch(address)
#define CASCADE_INLINE static inline __attribute__((always_inline))
#else
#define CASCADE_PREFETCH(address) ((void)0)
#define CASCADE_INLINE static inline
#endif

enum {
    CASCADE_BLOCK = 32,             /* faces walked together */
    CASCADE_PREFETCH_ROWS = 64,     /* leaf rows in flight: a small block looks further ahead */
    CASCADE_READ_GROUP = 64,        /* feature points whose pixels are prefetched together */
    CASCADE_WALKS_TOGETHER = 16,    /* tree walks (trees x faces of a block) taken down together */
    CASCADE_MAX_STAGE_POINTS = 65536  /* a split node holds its two feature points as uint16 */
};

/* BT.601 grey in 15-bit fixed point, as OpenCV converts BGR to grey. */
enum { CASCADE_GREY_SHIFT = 15, CASCADE_WEIGHT_B = 3735, CASCADE_WEIGHT_G = 19235, CASCADE_WEIGHT_R = 9798 };

typedef struct {
    const uint8_t* data;
    ptrdiff_t height, width;
    ptrdiff_t row_stride, col_stride, channel_stride;   /* bytes, any sign */
    int channels;                                      /* 1 or 3 (BGR) */
} cascade_view;

/* The index of the pixel nearest v, clamped into [0, size): NaN clamps to 0. */
CASCADE_INLINE ptrdiff_t cascade_nearest_index(double v, ptrdiff_t size) {
    if (!(v >= 0.0)) return 0;
    if (v >= (double)(size - 1)) return size - 1;
    return (ptrdiff_t)(v + 0.5);
}

/* The first byte of the pixel nearest (x, y), clamped into the image; NULL when zero_outside and
 * that pixel is off the image (it then reads 0, dlib's convention). */
CASCADE_INLINE const uint8_t* cascade_pixel_address(const cascade_view* view, double x, double y,
                                                    int zero_outside) {
    if (zero_outside && !(-0.5 <= x && x < (double)view->width - 0.5 && -0.5 <= y
                          && y < (double)view->height - 0.5))
        return NULL;
    return view->data + cascade_nearest_index(y, view->height) * view->row_stride
           + cascade_nearest_index(x, view->width) * view->col_stride;
}

/* The grey value of the pixel at px (from cascade_pixel_address; NULL reads 0). */
CASCADE_INLINE uint8_t cascade_grey_of(const cascade_view* view, const uint8_t* px) {
    if (px == NULL) return 0;
    if (view->channels == 1) return px[0];
    return (uint8_t)(((int)px[0] * CASCADE_WEIGHT_B + (int)px[view->channel_stride] * CASCADE_WEIGHT_G
                      + (int)px[2 * view->channel_stride] * CASCADE_WEIGHT_R + (1 << (CASCADE_GREY_SHIFT - 1)))
                     >> CASCADE_GREY_SHIFT);
}

CASCADE_INLINE uint8_t cascade_grey_at(const cascade_view* view, double x, double y, int zero_outside) {
    return cascade_grey_of(view, cascade_pixel_address(view, x, y, zero_outside));
}

/* A tree cascade's arrays, row-major, as checked by cascade_forest_check (the loop trusts them):
 *   mean_shape      (L, 2) float, unit frame
 *   anchors         (T, P) int32: the landmark each stage's feature point hangs on
 *   offsets         (T, P, 2) float: its offset in the mean shape's unit frame
 *   nodes           (T, K, S, 4) uint16: split nodes in heap order, packed (feature u, feature v,
 *                   the threshold's int16 bits, a pad): goes left when pixel u - pixel v > threshold
 *   leaves          (T, K, S + 1, W) float (leaves_int16 0) or int16 scaled by leaf_scale[t];
 *                   W = 2L, or R coefficients of the stage's basis vectors when basis is given
 *   leaf_scale      (T,) double
 *   basis           (T, R, 2L) float or NULL (compressed leaves)
 *   int16_chunks    (T,) how many trees' int16 rows always sum within int16 (cascade_int16_chunks)
 *   mean_frame_updates: a stage's summed leaves are an update in the mean shape's frame, turned by
 *                   the similarity from the mean shape to the current shape (LBF, ESR); else
 *                   added as they are (ERT, dlib) */
typedef struct {
    ptrdiff_t n_landmarks, n_stages, n_points, n_trees, n_splits, width;
    const float* mean_shape;
    const int32_t* anchors;
    const float* offsets;
    const uint16_t* nodes;
    const void* leaves;
    int leaves_int16;
    const double* leaf_scale;
    const float* basis;
    const int32_t* int16_chunks;
    int mean_frame_updates;
} cascade_forest;

/* 0, or a static message saying which array breaks the rules (a size, an index, a count). */
const char* cascade_forest_check(const cascade_forest* forest);

/* Per stage, the trees whose int16 leaf rows always sum within int16 (at least 1), into chunks (T,). */
void cascade_int16_chunks(const cascade_forest* forest, int32_t* chunks);

/* Bytes of scratch cascade_forest_run needs (any number of faces: it works a block at a time). */
size_t cascade_forest_scratch_size(const cascade_forest* forest);

/* Shapes, in pixels, of n faces: out (n, L, 2), each face from its box (n, 4) in views[i], started
 * from the mean shape or start_shapes (n, L, 2) in the unit frame, turned by rolls (n,) radians
 * about the box's centre when given. seconds, when given, gets the time spent reading pixels,
 * walking trees and adding leaves added to its three entries. */
void cascade_forest_run(const cascade_forest* forest, const cascade_view* views, ptrdiff_t n_faces,
                        const double* boxes, const float* start_shapes, const double* rolls,
                        int zero_outside, void* scratch, double* out, double* seconds);

/* Least squares target - t ~ [[a, -b], [b, a]] (source - s) over n (x, y) points: rotation gets
 * (a, b), centres (s, t); 0, and a = b = 0, where the source's points all coincide. */
int cascade_scaled_rotation(const double* source, const double* target, ptrdiff_t n, double* rotation,
                            double* centres);

/* The least-squares frame placing mean_points (k, 2) unit frame on points (k, 2) pixels: a square
 * box (its unit frame the similarity without the rotation) and the roll in radians. */
void cascade_place_on_points(const double* mean_points, const double* points, ptrdiff_t k, double* box,
                             double* roll);

/* CRC-32 (IEEE 802.3, as zlib's crc32) of a model file's bytes after its header. */
uint32_t cascade_crc32(const unsigned char* bytes, size_t size);

#endif
