/* A cascade of pixel-difference trees at prediction time: ERT, LBF and ESR share this loop (an
 * LBF stage's global regression, one weight row per leaf, is a leaf value table).
 *
 * Per face: start from the mean shape (or a given start) in the face's unit frame; at each stage
 * fit the similarity from the mean shape to the current shape, read the stage's shape-indexed
 * pixels, walk every tree and add the leaf it reaches to the shape.
 *
 * The leaves (MBs) do not fit in a core's cache, so the loop is built around reading them: faces
 * go through in blocks of CASCADE_BLOCK, sharing each tree's leaf rows; per stage every tree is
 * walked first, then the reached rows are added with the rows of the trees ahead already being
 * fetched (about CASCADE_PREFETCH_ROWS in flight), so memory latency overlaps with the adding. A
 * walk is a chain of dependent reads, so about CASCADE_WALKS_TOGETHER walks (trees x faces) go
 * down level by level at once, over split nodes packed 8 bytes each; a block of one face walks
 * them with its nodes in registers (walk_one). int16 rows are added in int16, as many trees at a
 * time as cannot overflow (cascade_int16_chunks), then widened. Compressed leaves hold R
 * coefficients of the stage's basis vectors: the reached rows are summed as coefficients and
 * projected once a stage (R adds a tree instead of 2L).
 *
 * The arithmetic is dlib's, so that models read from dlib files predict exactly what dlib does:
 * the shape and the feature offsets are float, a feature position is float(A @ offset +
 * shape[anchor]) before the box maps it to pixels in double, and leaves are added to the float
 * shape one tree at a time (int16 leaves are summed exactly per stage, then scaled). Built with
 * -ffp-contract=off, so that a*b+c stays two roundings wherever it is compiled. */
#if !defined(_POSIX_C_SOURCE) && !defined(_WIN32)
#define _POSIX_C_SOURCE 199309L     /* clock_gettime, for the optional phase timings */
#endif
#include <math.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static double now(void) {
#if defined(CLOCK_MONOTONIC)
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#else
    return (double)clock() / CLOCKS_PER_SEC;
#endif
}

static double lap(double since, double* total) {
    double t = now();
    *total += t - since;
    return t;
}

/* One face's walks and every stage's adds kept out of the loop around them: inlined, they cost
 * the loop its registers (8 % more instructions a face, callgrind). */
#if defined(__GNUC__) || defined(__clang__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

static ptrdiff_t min_of(ptrdiff_t a, ptrdiff_t b) { return a < b ? a : b; }
static ptrdiff_t max_of(ptrdiff_t a, ptrdiff_t b) { return a > b ? a : b; }

/* Whether a face whose pixels are these goes left at the packed node: u - v > threshold, as dlib.
 * A node's children are 2 node + 1 (left) and 2 node + 2, and a walk steps to
 * 2 node + 2 - goes_left: branch-free, since which way a face goes is unpredictable. */
CASCADE_INLINE int goes_left(const uint16_t* packed, const uint8_t* pixels) {
    return (int)pixels[packed[0]] - (int)pixels[packed[1]] > (int)(int16_t)packed[2];
}

/* The leaf (0 .. n_splits) each of n_trees consecutive trees sends each of n_faces faces to, into
 * reached[k * BLOCK + g]; every walk goes down the trees' log2(n_splits + 1) levels. */
CASCADE_INLINE void walk_together(const uint16_t* nodes, ptrdiff_t n_trees, ptrdiff_t n_splits,
                                  const uint8_t* pixels, ptrdiff_t n_points, ptrdiff_t n_faces, int32_t* reached) {
    ptrdiff_t k, g, level = n_splits;
    for (k = 0; k < n_trees; k++)
        for (g = 0; g < n_faces; g++) reached[k * CASCADE_BLOCK + g] = 0;
    while (level > 0) {
        level >>= 1;
        for (k = 0; k < n_trees; k++) {
            const uint16_t* tree = &nodes[4 * k * n_splits];
            int32_t* at = &reached[k * CASCADE_BLOCK];
            for (g = 0; g < n_faces; g++)
                at[g] = 2 * at[g] + 2 - goes_left(&tree[4 * at[g]], &pixels[g * n_points]);
        }
    }
    for (k = 0; k < n_trees; k++)
        for (g = 0; g < n_faces; g++) reached[k * CASCADE_BLOCK + g] -= (int32_t)n_splits;
}

/* walk_together of CASCADE_WALKS_TOGETHER trees for one face, the walks' nodes in a small local
 * array the compiler keeps in registers. */
static NOINLINE void walk_one(const uint16_t* nodes, ptrdiff_t n_splits, const uint8_t* pixels, int32_t* reached) {
    const uint16_t* tree[CASCADE_WALKS_TOGETHER];
    int32_t node[CASCADE_WALKS_TOGETHER];
    ptrdiff_t k, level = n_splits;
    for (k = 0; k < CASCADE_WALKS_TOGETHER; k++) {
        tree[k] = &nodes[4 * k * n_splits];
        node[k] = 0;
    }
    while (level > 0) {
        level >>= 1;
        for (k = 0; k < CASCADE_WALKS_TOGETHER; k++)
            node[k] = 2 * node[k] + 2 - goes_left(&tree[k][4 * node[k]], pixels);
    }
    for (k = 0; k < CASCADE_WALKS_TOGETHER; k++) reached[k * CASCADE_BLOCK] = node[k] - (int32_t)n_splits;
}

/* Prefetch every 64-byte line of a row (a leaf row starting on a line spans as few as it can); the
 * first two lines without a loop: most rows are one or two lines. */
CASCADE_INLINE void prefetch_row(const void* row, ptrdiff_t n_bytes) {
    const char* line = (const char*)row;
    ptrdiff_t offset;
    CASCADE_PREFETCH(line);
    if (n_bytes > 64) CASCADE_PREFETCH(line + 64);
    for (offset = 128; offset < n_bytes; offset += 64) CASCADE_PREFETCH(line + offset);
    (void)line;
}

static void turn_about_centre(float* shape, ptrdiff_t n_landmarks, double angle) {
    double c = cos(angle), s = sin(angle), x, y;
    ptrdiff_t j;
    for (j = 0; j < n_landmarks; j++) {
        x = (double)shape[2 * j] - 0.5;
        y = (double)shape[2 * j + 1] - 0.5;
        shape[2 * j] = (float)(c * x - s * y + 0.5);
        shape[2 * j + 1] = (float)(s * x + c * y + 0.5);
    }
}

static void unit_to_pixels(const float* shape, ptrdiff_t n_landmarks, const double* box, double* out) {
    ptrdiff_t j;
    for (j = 0; j < n_landmarks; j++) {
        out[2 * j] = (double)shape[2 * j] * (box[2] - box[0]) + box[0];
        out[2 * j + 1] = (double)shape[2 * j + 1] * (box[3] - box[1]) + box[1];
    }
}

/* shape += A @ update point by point, A the similarity (in float, as the features use it). */
static void add_turned(const float* update, const double* similarity, ptrdiff_t n_landmarks, float* shape) {
    float a = (float)similarity[0], b = (float)similarity[1], dx, dy;
    ptrdiff_t j;
    for (j = 0; j < n_landmarks; j++) {
        dx = update[2 * j];
        dy = update[2 * j + 1];
        shape[2 * j] += a * dx - b * dy;
        shape[2 * j + 1] += b * dx + a * dy;
    }
}

/* cascade_scaled_rotation (internal.h), for float shapes and double points. */
#define SCALED_ROTATION(NAME, REAL)                                                                 \
    static int NAME(const REAL* source, const REAL* target, ptrdiff_t n, double* rotation,        \
                    double* centres) {                                                              \
        ptrdiff_t j;                                                                                \
        double mx = 0, my = 0, sx = 0, sy = 0, dot = 0, cross = 0, norm = 0, ux, uy, vx, vy;        \
        for (j = 0; j < n; j++) {                                                                   \
            mx += source[2 * j];                                                                    \
            my += source[2 * j + 1];                                                                \
            sx += target[2 * j];                                                                    \
            sy += target[2 * j + 1];                                                                \
        }                                                                                           \
        mx /= (double)n;                                                                            \
        my /= (double)n;                                                                            \
        sx /= (double)n;                                                                            \
        sy /= (double)n;                                                                            \
        for (j = 0; j < n; j++) {                                                                   \
            ux = source[2 * j] - mx;                                                                \
            uy = source[2 * j + 1] - my;                                                            \
            vx = target[2 * j] - sx;                                                                \
            vy = target[2 * j + 1] - sy;                                                            \
            dot += ux * vx + uy * vy;                                                               \
            cross += ux * vy - uy * vx;                                                             \
            norm += ux * ux + uy * uy;                                                              \
        }                                                                                           \
        centres[0] = mx;                                                                            \
        centres[1] = my;                                                                            \
        centres[2] = sx;                                                                            \
        centres[3] = sy;                                                                            \
        rotation[0] = norm > 0 ? dot / norm : 0.0;                                                  \
        rotation[1] = norm > 0 ? cross / norm : 0.0;                                                \
        return norm > 0;                                                                            \
    }
SCALED_ROTATION(scaled_rotation_float, float)
SCALED_ROTATION(scaled_rotation_double, double)

int cascade_scaled_rotation(const double* source, const double* target, ptrdiff_t n, double* rotation,
                            double* centres) {
    return scaled_rotation_double(source, target, n, rotation, centres);
}

/* (a, b) of the scaled rotation fitting the mean shape onto shape; the identity for a collapsed mean. */
static void similarity_from_mean(const float* mean_shape, ptrdiff_t n_landmarks, const float* shape,
                                 double* similarity) {
    double centres[4];
    if (!scaled_rotation_float(mean_shape, shape, n_landmarks, similarity, centres)) {
        similarity[0] = 1.0;
        similarity[1] = 0.0;
    }
}

void cascade_place_on_points(const double* mean_points, const double* points, ptrdiff_t k, double* box,
                             double* roll) {
    double ab[2], c[4], a, b, half;
    scaled_rotation_double(mean_points, points, k, ab, c);
    a = ab[0];
    b = ab[1];
    half = sqrt(a * a + b * b) / 2;
    /* t = p - A m, so the centre A (0.5, 0.5) + t is A ((0.5, 0.5) - m) + p. */
    box[0] = a * (0.5 - c[0]) - b * (0.5 - c[1]) + c[2] - half;
    box[1] = b * (0.5 - c[0]) + a * (0.5 - c[1]) + c[3] - half;
    box[2] = box[0] + 2 * half;
    box[3] = box[1] + 2 * half;
    *roll = atan2(b, a);
}

/* Grey values at one stage's feature points for one face (dlib's float positions). Two passes per
 * group of points: find and prefetch every address, then read, so that the reads' latencies
 * overlap instead of adding up. */
static void read_features(const cascade_view* view, const double* box, const double* similarity,
                          const float* shape, const int32_t* anchors, const float* offsets, ptrdiff_t n_points,
                          uint8_t* pixels, int zero_outside) {
    double a = similarity[0], b = similarity[1];
    float m00 = (float)a, m01 = (float)-b, m10 = (float)b, m11 = (float)a;
    double left = box[0], top = box[1], width = box[2] - left, height = box[3] - top;
    const uint8_t* address[CASCADE_READ_GROUP];
    ptrdiff_t first, p, stop, anchor;
    float dx, dy, u, v;
    for (first = 0; first < n_points; first += CASCADE_READ_GROUP) {
        stop = min_of(first + CASCADE_READ_GROUP, n_points);
        for (p = first; p < stop; p++) {
            anchor = anchors[p];
            dx = offsets[2 * p];
            dy = offsets[2 * p + 1];
            u = (m00 * dx + m01 * dy) + shape[2 * anchor];
            v = (m10 * dx + m11 * dy) + shape[2 * anchor + 1];
            address[p - first] = cascade_pixel_address(view, (double)u * width + left, (double)v * height + top,
                                                       zero_outside);
            CASCADE_PREFETCH(address[p - first]);
        }
        for (p = first; p < stop; p++) pixels[p] = cascade_grey_of(view, address[p - first]);
    }
}

const char* cascade_forest_check(const cascade_forest* f) {
    ptrdiff_t t, i, n;
    if (f->n_landmarks < 1 || f->n_stages < 0 || f->n_points < 2 || f->n_trees < 0 || f->width < 1)
        return "a model needs at least one landmark, two feature points a stage and one leaf value";
    if (f->n_points > CASCADE_MAX_STAGE_POINTS) return "a stage has more than 65,536 feature points";
    if (f->n_splits < 1 || (f->n_splits & (f->n_splits + 1)))
        return "the split nodes do not make complete binary trees of depth 1 or more";
    if (f->basis == NULL ? f->width != 2 * f->n_landmarks : f->width > 2 * f->n_landmarks)
        return "the leaf rows' width is not 2L, nor a basis of at most 2L vectors";
    for (i = 0; i < f->n_stages * f->n_points; i++)
        if (f->anchors[i] < 0 || f->anchors[i] >= f->n_landmarks) return "an anchor is not a landmark";
    n = f->n_stages * f->n_trees * f->n_splits;
    for (i = 0; i < n; i++)
        if (f->nodes[4 * i] >= f->n_points || f->nodes[4 * i + 1] >= f->n_points)
            return "a split node's feature point is out of range";
    if (f->leaves_int16 && f->int16_chunks == NULL) return "int16 leaves need their chunks";
    for (t = 0; f->leaves_int16 && t < f->n_stages; t++)
        if (f->int16_chunks[t] < 1) return "an int16 chunk is below 1";
    return 0;
}

void cascade_int16_chunks(const cascade_forest* f, int32_t* chunks) {
    ptrdiff_t t, i, n = f->n_trees * (f->n_splits + 1) * f->width;
    for (t = 0; t < f->n_stages; t++) {
        const int16_t* values = (const int16_t*)f->leaves + t * n;
        int largest = 1;
        for (i = 0; f->leaves_int16 && i < n; i++) {
            int magnitude = values[i] < 0 ? -(int)values[i] : (int)values[i];
            if (magnitude > largest) largest = magnitude;
        }
        chunks[t] = (int32_t)max_of(1, 32767 / largest);      /* 32767 for float leaves: unused */
    }
}

/* The scratch a call works in, carved from one buffer in 64-byte aligned pieces. */
typedef struct {
    float* shapes;
    int32_t* sums;
    int16_t* partial_sums;
    float* coefficients;
    uint8_t* pixels;
    int32_t* reached;
    float* update;
} scratch_parts;

static size_t aligned(size_t bytes) { return (bytes + 63) / 64 * 64; }

static size_t carve(const cascade_forest* f, void* scratch, scratch_parts* parts) {
    size_t dim = (size_t)(2 * f->n_landmarks), width = (size_t)f->width, block = CASCADE_BLOCK, used = 0;
    char* base = (char*)scratch;
    if (base != NULL) base += (64 - (size_t)((uintptr_t)base % 64)) % 64;
#define TAKE(FIELD, TYPE, COUNT)                                  \
    if (parts != NULL) parts->FIELD = (TYPE*)(void*)(base + used); \
    used += aligned((COUNT) * sizeof(TYPE));
    TAKE(shapes, float, block * dim)
    TAKE(sums, int32_t, block * width)
    TAKE(partial_sums, int16_t, block * width)
    TAKE(coefficients, float, block * width)
    TAKE(pixels, uint8_t, block * (size_t)f->n_points)
    TAKE(reached, int32_t, block * (size_t)f->n_trees)
    TAKE(update, float, block * dim)
#undef TAKE
    return used + 64;
}

size_t cascade_forest_scratch_size(const cascade_forest* forest) { return carve(forest, NULL, NULL); }

/* Row adds, their pointers restrict (a leaf row never overlaps the sums), so that they vectorize
 * without a runtime overlap check a row. */
CASCADE_INLINE void add_floats(float* restrict into, const float* restrict row, ptrdiff_t n) {
    ptrdiff_t d;
    for (d = 0; d < n; d++) into[d] += row[d];
}

CASCADE_INLINE void add_int16s(int32_t* restrict into, const int16_t* restrict row, ptrdiff_t n) {
    ptrdiff_t d;
    for (d = 0; d < n; d++) into[d] += row[d];
}

CASCADE_INLINE void add_int16s_in_int16(int16_t* restrict into, const int16_t* restrict row, ptrdiff_t n) {
    ptrdiff_t d;
    for (d = 0; d < n; d++) into[d] = (int16_t)(into[d] + row[d]);
}

CASCADE_INLINE void add_scaled(float* restrict into, float scale, const float* restrict row, ptrdiff_t n) {
    ptrdiff_t d;
    for (d = 0; d < n; d++) into[d] += scale * row[d];
}

/* add_scaled of two rows in one pass, each value rounded in the same order as two passes would
 * (into + a row0, then + b row1): half the loads and stores of into. */
CASCADE_INLINE void add_scaled_pair(float* restrict into, float a, const float* restrict row0, float b,
                                    const float* restrict row1, ptrdiff_t n) {
    ptrdiff_t d;
    for (d = 0; d < n; d++) into[d] = (into[d] + a * row0[d]) + b * row1[d];
}

/* The reached rows of one stage added: into coefficients (compressed float leaves), into the
 * shapes' updates (float leaves), or summed exactly in int16 and int32 (int16 leaves). */
static NOINLINE void add_leaves(const cascade_forest* f, ptrdiff_t t, ptrdiff_t size, const scratch_parts* s,
                       float* adding_to) {
    ptrdiff_t n_trees = f->n_trees, width = f->width, dim = 2 * f->n_landmarks, k, g, d, ahead;
    ptrdiff_t rows = f->n_splits + 1, trees_ahead = max_of(4, CASCADE_PREFETCH_ROWS / size);
    ptrdiff_t stage = t * n_trees * rows * width;
    const int32_t* reached = s->reached;
    int compressed = f->basis != NULL;
    if (!f->leaves_int16) {
        const float* leaves = (const float*)f->leaves + stage;
        ptrdiff_t row_bytes = width * (ptrdiff_t)sizeof(float);
        float* into = compressed ? s->coefficients : adding_to;
        ptrdiff_t into_width = compressed ? width : dim;
        for (k = 0; k < n_trees; k++) {
            ahead = k + trees_ahead;
            if (ahead < n_trees)
                for (g = 0; g < size; g++)
                    prefetch_row(&leaves[(ahead * rows + reached[ahead * CASCADE_BLOCK + g]) * width], row_bytes);
            for (g = 0; g < size; g++)
                add_floats(&into[g * into_width], &leaves[(k * rows + reached[k * CASCADE_BLOCK + g]) * width],
                           into_width);
        }
        return;
    }
    {
        const int16_t* leaves = (const int16_t*)f->leaves + stage;
        ptrdiff_t row_bytes = width * (ptrdiff_t)sizeof(int16_t);
        int32_t* sums = s->sums;
        int16_t* partial_sums = s->partial_sums;
        int chunk = f->int16_chunks[t], in_partial = 0;
        for (d = 0; d < size * width; d++) {
            sums[d] = 0;
            partial_sums[d] = 0;
        }
        for (k = 0; k < n_trees; k++) {
            ahead = k + trees_ahead;
            if (ahead < n_trees)
                for (g = 0; g < size; g++)
                    prefetch_row(&leaves[(ahead * rows + reached[ahead * CASCADE_BLOCK + g]) * width], row_bytes);
            for (g = 0; g < size; g++) {
                const int16_t* row = &leaves[(k * rows + reached[k * CASCADE_BLOCK + g]) * width];
                if (chunk == 1)
                    add_int16s(&sums[g * width], row, width);
                else
                    add_int16s_in_int16(&partial_sums[g * width], row, width);
            }
            if (chunk > 1 && (++in_partial == chunk || k == n_trees - 1)) {
                for (d = 0; d < size * width; d++) {
                    sums[d] += partial_sums[d];
                    partial_sums[d] = 0;
                }
                in_partial = 0;
            }
        }
        if (compressed)
            for (d = 0; d < size * width; d++) s->coefficients[d] = (float)((double)sums[d] * f->leaf_scale[t]);
        else
            for (d = 0; d < size * dim; d++) adding_to[d] += (float)((double)sums[d] * f->leaf_scale[t]);
    }
}

void cascade_forest_run(const cascade_forest* f, const cascade_view* views, ptrdiff_t n_faces, const double* boxes,
                        const float* start_shapes, const double* rolls, int zero_outside, void* scratch,
                        double* out, double* seconds) {
    ptrdiff_t n_landmarks = f->n_landmarks, n_points = f->n_points, n_trees = f->n_trees;
    ptrdiff_t n_splits = f->n_splits, dim = 2 * n_landmarks, width = f->width;
    ptrdiff_t first, size, g, t, k, d, j, trees_together;
    ptrdiff_t node_bytes = n_splits * 4 * (ptrdiff_t)sizeof(uint16_t);
    ptrdiff_t stage_nodes = n_trees * n_splits * 4;
    double similarity[2 * CASCADE_BLOCK], clock = 0.0, spent[3] = {0.0, 0.0, 0.0};
    scratch_parts s;
    float* adding_to;
    carve(f, scratch, &s);
    adding_to = f->mean_frame_updates ? s.update : s.shapes;
    for (first = 0; first < n_faces; first += CASCADE_BLOCK) {
        size = min_of(CASCADE_BLOCK, n_faces - first);
        trees_together = max_of(1, CASCADE_WALKS_TOGETHER / size);
        for (g = 0; g < size; g++) {
            const float* start = start_shapes != NULL ? &start_shapes[(first + g) * dim] : f->mean_shape;
            memcpy(&s.shapes[g * dim], start, (size_t)dim * sizeof(float));
            if (rolls != NULL) turn_about_centre(&s.shapes[g * dim], n_landmarks, rolls[first + g]);
        }
        for (t = 0; t < f->n_stages; t++) {
            const uint16_t* nodes = &f->nodes[t * stage_nodes];
            if (seconds != NULL) clock = now();
            for (g = 0; g < size; g++) {
                similarity_from_mean(f->mean_shape, n_landmarks, &s.shapes[g * dim], &similarity[2 * g]);
                read_features(&views[first + g], &boxes[4 * (first + g)], &similarity[2 * g], &s.shapes[g * dim],
                              &f->anchors[t * n_points], &f->offsets[2 * t * n_points], n_points,
                              &s.pixels[g * n_points], zero_outside);
            }
            if (seconds != NULL) clock = lap(clock, &spent[0]);
            /* Every tree is walked first: the walks read only pixels and the small split nodes,
             * and knowing all leaves up front lets their rows be prefetched. */
            for (j = 0; j < (n_trees + trees_together - 1) / trees_together; j++) {
                k = j * trees_together;
                if (k + trees_together < n_trees)      /* the next trees' nodes, while these are walked */
                    prefetch_row(&nodes[(k + trees_together) * n_splits * 4],
                                 min_of(trees_together, n_trees - k - trees_together) * node_bytes);
                if (size == 1 && k + CASCADE_WALKS_TOGETHER <= n_trees)
                    walk_one(&nodes[k * n_splits * 4], n_splits, s.pixels, &s.reached[k * CASCADE_BLOCK]);
                else
                    walk_together(&nodes[k * n_splits * 4], min_of(trees_together, n_trees - k), n_splits, s.pixels,
                                  n_points, size, &s.reached[k * CASCADE_BLOCK]);
            }
            if (seconds != NULL) clock = lap(clock, &spent[1]);
            if (f->basis != NULL)
                for (d = 0; d < size * width; d++) s.coefficients[d] = 0;
            if (f->mean_frame_updates)
                for (d = 0; d < size * dim; d++) s.update[d] = 0;
            add_leaves(f, t, size, &s, adding_to);
            if (f->basis != NULL)      /* one projection a stage: the summed coefficients onto the basis */
                for (g = 0; g < size; g++) {
                    const float* coefficients = &s.coefficients[g * width];
                    const float* basis = &f->basis[t * width * dim];
                    for (j = 0; j + 1 < width; j += 2)
                        add_scaled_pair(&adding_to[g * dim], coefficients[j], &basis[j * dim], coefficients[j + 1],
                                        &basis[(j + 1) * dim], dim);
                    if (j < width) add_scaled(&adding_to[g * dim], coefficients[j], &basis[j * dim], dim);
                }
            if (f->mean_frame_updates)
                for (g = 0; g < size; g++) add_turned(&s.update[g * dim], &similarity[2 * g], n_landmarks,
                                                      &s.shapes[g * dim]);
            if (seconds != NULL) lap(clock, &spent[2]);
        }
        for (g = 0; g < size; g++)
            unit_to_pixels(&s.shapes[g * dim], n_landmarks, &boxes[4 * (first + g)], &out[(first + g) * dim]);
    }
    if (seconds != NULL)
        for (d = 0; d < 3; d++) seconds[d] += spent[d];
}
