/* Model files and the public calls of cascade.h: a file is read into one allocation, checked whole
 * (docs/c-runtime.md gives the format), and its arrays are used in place by the loop (forest.c). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cascade.h"
#include "internal.h"

enum {
    HEADER_BYTES = 96,
    NAME_BYTES = 32,
    CALIBRATION_BYTES = NAME_BYTES + 4 * 8 + 2 * 4 + 2 * 10 * 8,
    KIND_ERT = 1, KIND_LBF = 2, KIND_ESR = 3,
    FLAG_INT16 = 1, FLAG_COMPRESSED = 2, FLAG_ZERO_OUTSIDE = 4, FLAG_POINT_STARTS = 8,
    FLAGS_KNOWN = 15
};
static const char MAGIC[8] = {'C', 'A', 'S', 'C', 'A', 'D', 'E', 0x1a};
/* The largest count of any array: sizes are checked against it before they are multiplied, so that
 * no product overflows even where size_t has 32 bits (WebAssembly). */
static const uint64_t MAX_COUNT = (uint64_t)1 << 28;

typedef struct {
    char name[NAME_BYTES];
    double box[4];                /* shift_x, shift_y, scale_x, scale_y */
    int has_points, has_box;
    double detector[10], model[10];
} calibration;

struct cascade_model {
    int kind, zero_outside, point_starts;
    cascade_forest forest;
    const float* initial_shapes;      /* (n_starts, L, 2), ESR's starts; NULL otherwise */
    ptrdiff_t n_starts;
    const double* mean_points;        /* (5, 2) unit frame, or NULL for a scheme without five points */
    uint32_t five_sizes[5];
    const uint32_t* five_indices;
    calibration* calibrations;
    int n_calibrations;
};

static cascade_status fail(cascade_error* error, cascade_status status, const char* format, ...) {
    if (error != NULL) {
        va_list arguments;
        va_start(arguments, format);
        error->status = status;
        vsnprintf(error->message, sizeof error->message, format, arguments);
        va_end(arguments);
    }
    return status;
}

static uint32_t u32_at(const unsigned char* p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t u64_at(const unsigned char* p) { return (uint64_t)u32_at(p) | (uint64_t)u32_at(p + 4) << 32; }

static int little_endian(void) {
    const uint16_t one = 1;
    return *(const unsigned char*)&one == 1;
}

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32), its table made on the stack: no global state. */
uint32_t cascade_crc32(const unsigned char* bytes, size_t size) {
    uint32_t table[256], crc;
    size_t i;
    int bit;
    for (i = 0; i < 256; i++) {
        crc = (uint32_t)i;
        for (bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
        table[i] = crc;
    }
    crc = 0xffffffffu;
    for (i = 0; i < size; i++) crc = table[(crc ^ bytes[i]) & 0xffu] ^ (crc >> 8);
    return ~crc;
}

/* Where each array lies in a file of these dimensions: offsets from the file's start, every section
 * on a 64-byte boundary. 0 when the sizes are absurd (a count past MAX_COUNT). */
typedef struct {
    uint64_t mean_shape, anchors, offsets, nodes, leaves, leaf_scale, basis, initial_shapes, mean_points,
        five, calibrations, json, end;
} layout;

static uint64_t section(uint64_t* at, uint64_t count, uint64_t item_bytes) {
    uint64_t start = *at;
    *at += (count * item_bytes + 63) / 64 * 64;
    return start;
}

static int plan(const uint32_t* d, layout* l) {
    /* d: L, T, P, K, S, W, n_starts, n_five_indices, n_calibrations, json_bytes, int16 leaves, compressed */
    uint64_t L = d[0], T = d[1], P = d[2], K = d[3], S = d[4], W = d[5], at = HEADER_BYTES;
    int i;
    for (i = 0; i < 10; i++)
        if (d[i] > MAX_COUNT) return 0;
    /* Each product is checked before it is multiplied again: every factor is at most 2^28, so no
     * product below overflows 64 bits. */
    if (T * P > MAX_COUNT || T * K > MAX_COUNT || T * K * (S + 1) > MAX_COUNT
        || T * K * (S + 1) * W > MAX_COUNT || T * W > MAX_COUNT || T * W * 2 * L > MAX_COUNT
        || (uint64_t)d[6] * L * 2 > MAX_COUNT || T * K * S * 4 > MAX_COUNT)
        return 0;
    l->mean_shape = section(&at, L * 2, 4);
    l->anchors = section(&at, T * P, 4);
    l->offsets = section(&at, T * P * 2, 4);
    l->nodes = section(&at, T * K * S * 4, 2);
    l->leaves = section(&at, T * K * (S + 1) * W, d[10] ? 2 : 4);
    l->leaf_scale = section(&at, T, 8);
    l->basis = section(&at, d[11] ? T * W * 2 * L : 0, 4);
    l->initial_shapes = section(&at, (uint64_t)d[6] * L * 2, 4);
    l->mean_points = section(&at, d[7] ? 10 : 0, 8);
    l->five = section(&at, d[7] ? 5 + (uint64_t)d[7] : 0, 4);
    l->calibrations = section(&at, d[8], CALIBRATION_BYTES);
    l->json = section(&at, d[9], 1);
    l->end = at;
    return 1;
}

static int all_finite(const double* values, int n) {
    int i;
    for (i = 0; i < n; i++)
        if (!isfinite(values[i])) return 0;
    return 1;
}

/* Five distinct finite points spanning both axes, as Python's PointCalibration requires. */
static int spans_a_face(const double* points) {
    double low[2], high[2];
    int i, a;
    if (!all_finite(points, 10)) return 0;
    for (a = 0; a < 2; a++) {
        low[a] = high[a] = points[a];
        for (i = 1; i < 5; i++) {
            if (points[2 * i + a] < low[a]) low[a] = points[2 * i + a];
            if (points[2 * i + a] > high[a]) high[a] = points[2 * i + a];
        }
    }
    return high[0] > low[0] && high[1] > low[1];
}

static cascade_status check_and_bind(cascade_model* m, unsigned char* bytes, uint64_t size, cascade_error* error) {
    uint32_t d[12], flags, i, total = 0;
    layout l;
    unsigned char* c;
    const char* problem;
    if (size < HEADER_BYTES || memcmp(bytes, MAGIC, sizeof MAGIC) != 0)
        return fail(error, CASCADE_ERROR_FORMAT, "not a cascade model file (no magic number)");
    if (u32_at(bytes + 8) != CASCADE_FORMAT_VERSION)
        return fail(error, CASCADE_ERROR_FORMAT, "format version %lu: this library reads version %d",
                    (unsigned long)u32_at(bytes + 8), CASCADE_FORMAT_VERSION);
    if (u32_at(bytes + 12) != HEADER_BYTES || u64_at(bytes + 16) != size)
        return fail(error, CASCADE_ERROR_DAMAGED, "the header's sizes disagree with the file (%lu bytes)",
                    (unsigned long)size);
    for (i = 76; i < HEADER_BYTES; i++)
        if (bytes[i] != 0) return fail(error, CASCADE_ERROR_DAMAGED, "the header's reserved bytes are not zero");
    if (cascade_crc32(bytes + HEADER_BYTES, (size_t)(size - HEADER_BYTES)) != u32_at(bytes + 24))
        return fail(error, CASCADE_ERROR_DAMAGED, "the checksum does not match: the file is damaged");
    m->kind = (int)u32_at(bytes + 28);
    flags = u32_at(bytes + 32);
    for (i = 0; i < 10; i++) d[i] = u32_at(bytes + 36 + 4 * i);
    d[10] = (flags & FLAG_INT16) != 0;
    d[11] = (flags & FLAG_COMPRESSED) != 0;
    if (m->kind < KIND_ERT || m->kind > KIND_ESR || (flags & ~(uint32_t)FLAGS_KNOWN))
        return fail(error, CASCADE_ERROR_DAMAGED, "unknown model kind %d or flags %lu", m->kind, (unsigned long)flags);
    if ((m->kind == KIND_ESR) != (d[6] > 0))
        return fail(error, CASCADE_ERROR_DAMAGED, "an ESR model, and only one, has starts of its own");
    if (!plan(d, &l) || l.end != size)
        return fail(error, CASCADE_ERROR_DAMAGED, "the arrays' sizes do not add up to the file's %lu bytes",
                    (unsigned long)size);
    m->forest.n_landmarks = d[0];
    m->forest.n_stages = d[1];
    m->forest.n_points = d[2];
    m->forest.n_trees = d[3];
    m->forest.n_splits = d[4];
    m->forest.width = d[5];
    m->forest.mean_shape = (const float*)(void*)(bytes + l.mean_shape);
    m->forest.anchors = (const int32_t*)(void*)(bytes + l.anchors);
    m->forest.offsets = (const float*)(void*)(bytes + l.offsets);
    m->forest.nodes = (const uint16_t*)(void*)(bytes + l.nodes);
    m->forest.leaves = bytes + l.leaves;
    m->forest.leaves_int16 = (int)d[10];
    m->forest.leaf_scale = (const double*)(void*)(bytes + l.leaf_scale);
    m->forest.basis = d[11] ? (const float*)(void*)(bytes + l.basis) : NULL;
    m->forest.mean_frame_updates = m->kind != KIND_ERT;
    m->zero_outside = (flags & FLAG_ZERO_OUTSIDE) != 0;
    m->point_starts = (flags & FLAG_POINT_STARTS) != 0;
    m->n_starts = d[6];
    m->initial_shapes = d[6] ? (const float*)(void*)(bytes + l.initial_shapes) : NULL;
    cascade_int16_chunks(&m->forest, (int32_t*)m->forest.int16_chunks);    /* sizes known to fit the file */
    problem = cascade_forest_check(&m->forest);
    if (problem != NULL) return fail(error, CASCADE_ERROR_DAMAGED, "%s", problem);
    if (d[7] != 0) {
        const unsigned char* five = bytes + l.five;
        m->mean_points = (const double*)(void*)(bytes + l.mean_points);
        if (!all_finite(m->mean_points, 10))
            return fail(error, CASCADE_ERROR_DAMAGED, "the mean shape's five points are not finite");
        for (i = 0; i < 5; i++) {
            m->five_sizes[i] = u32_at(five + 4 * i);
            if (m->five_sizes[i] < 1 || m->five_sizes[i] > d[7] - total)
                return fail(error, CASCADE_ERROR_DAMAGED, "the five points' landmark groups do not add up");
            total += m->five_sizes[i];
        }
        if (total != d[7]) return fail(error, CASCADE_ERROR_DAMAGED, "the five points' landmark groups do not add up");
        m->five_indices = (const uint32_t*)(void*)(five + 20);
        for (i = 0; i < d[7]; i++)
            if (m->five_indices[i] >= d[0])
                return fail(error, CASCADE_ERROR_DAMAGED, "a five-point group names landmark %lu of %lu",
                            (unsigned long)m->five_indices[i], (unsigned long)d[0]);
    } else {
        m->mean_points = NULL;
        m->five_indices = NULL;
        if (m->point_starts)
            return fail(error, CASCADE_ERROR_DAMAGED, "a model trained from five points must say where they are");
    }
    m->n_calibrations = (int)d[8];
    for (i = 0, c = bytes + l.calibrations; i < d[8]; i++, c += CALIBRATION_BYTES) {
        calibration* k = &m->calibrations[i];
        memcpy(k->name, c, NAME_BYTES);
        memcpy(k->box, c + NAME_BYTES, 4 * 8);
        k->has_points = (int)u32_at(c + NAME_BYTES + 32);
        k->has_box = (int)u32_at(c + NAME_BYTES + 36);
        memcpy(k->detector, c + NAME_BYTES + 40, 80);
        memcpy(k->model, c + NAME_BYTES + 120, 80);
        if (k->name[NAME_BYTES - 1] != 0 || k->name[0] == 0 || !all_finite(k->box, 4) || !(k->box[2] > 0)
            || !(k->box[3] > 0) || (k->has_points != 0 && k->has_points != 1) || (k->has_box != 0 && k->has_box != 1)
            || (k->has_points && (!spans_a_face(k->detector) || !spans_a_face(k->model) || m->mean_points == NULL)))
            return fail(error, CASCADE_ERROR_DAMAGED, "calibration %lu is damaged", (unsigned long)i);
    }
    return CASCADE_OK;
}

cascade_status cascade_model_read(const void* bytes, size_t size, cascade_model** model, cascade_error* error) {
    cascade_model* m;
    unsigned char* data;
    uint32_t n_stages, n_calibrations;
    size_t fixed;
    cascade_status status;
    if (model == NULL) return fail(error, CASCADE_ERROR_ARGUMENT, "model must not be NULL");
    *model = NULL;
    if (bytes == NULL) return fail(error, CASCADE_ERROR_ARGUMENT, "bytes must not be NULL");
    if (!little_endian()) return fail(error, CASCADE_ERROR_FORMAT, "this library reads models on little-endian CPUs");
    if (size < HEADER_BYTES || memcmp(bytes, MAGIC, sizeof MAGIC) != 0)
        return fail(error, CASCADE_ERROR_FORMAT, "not a cascade model file (no magic number)");
    n_stages = u32_at((const unsigned char*)bytes + 40);
    n_calibrations = u32_at((const unsigned char*)bytes + 68);
    if (n_stages > MAX_COUNT || n_calibrations > MAX_COUNT || size > (size_t)-1 / 2)
        return fail(error, CASCADE_ERROR_DAMAGED, "the header's counts are absurd");
    /* One allocation: the model, its calibrations and int16 chunks, then the file on a 64-byte line. */
    fixed = (sizeof(cascade_model) + (size_t)n_calibrations * sizeof(calibration)
             + (size_t)n_stages * sizeof(int32_t) + 63) / 64 * 64;
    if (size > (size_t)-1 - fixed - 64) return fail(error, CASCADE_ERROR_MEMORY, "the model is too large");
    m = (cascade_model*)calloc(1, fixed + 64 + size);
    if (m == NULL) return fail(error, CASCADE_ERROR_MEMORY, "no memory for the model (%lu bytes)", (unsigned long)size);
    m->calibrations = (calibration*)(void*)((char*)m + sizeof(cascade_model));
    m->forest.int16_chunks = (const int32_t*)(void*)(m->calibrations + n_calibrations);
    data = (unsigned char*)m + fixed;
    data += (64 - (size_t)((uintptr_t)data % 64)) % 64;
    memcpy(data, bytes, size);
    status = check_and_bind(m, data, size, error);
    if (status != CASCADE_OK) {
        free(m);
        return status;
    }
    *model = m;
    return CASCADE_OK;
}

cascade_status cascade_model_load(const char* path, cascade_model** model, cascade_error* error) {
    FILE* file;
    unsigned char header[HEADER_BYTES], *bytes;
    uint64_t size;
    long end;
    cascade_status status;
    if (model == NULL || path == NULL) return fail(error, CASCADE_ERROR_ARGUMENT, "path and model must not be NULL");
    *model = NULL;
    file = fopen(path, "rb");
    if (file == NULL) return fail(error, CASCADE_ERROR_IO, "cannot open %s", path);
    if (fread(header, 1, HEADER_BYTES, file) != HEADER_BYTES || memcmp(header, MAGIC, sizeof MAGIC) != 0) {
        fclose(file);
        return fail(error, CASCADE_ERROR_FORMAT, "%s is not a cascade model file (no magic number)", path);
    }
    size = u64_at(header + 16);
    if (fseek(file, 0, SEEK_END) != 0 || (end = ftell(file)) < 0 || (uint64_t)end != size || size > MAX_COUNT * 4) {
        fclose(file);
        return fail(error, CASCADE_ERROR_DAMAGED, "%s: its header says %lu bytes, the file has others", path,
                    (unsigned long)size);
    }
    bytes = (unsigned char*)malloc((size_t)size);
    if (bytes == NULL) {
        fclose(file);
        return fail(error, CASCADE_ERROR_MEMORY, "no memory to read %s", path);
    }
    if (fseek(file, 0, SEEK_SET) != 0 || fread(bytes, 1, (size_t)size, file) != (size_t)size) {
        free(bytes);
        fclose(file);
        return fail(error, CASCADE_ERROR_IO, "cannot read %s", path);
    }
    fclose(file);
    status = cascade_model_read(bytes, (size_t)size, model, error);
    free(bytes);
    return status;
}

void cascade_model_free(cascade_model* model) { free(model); }

int cascade_model_landmarks(const cascade_model* model) { return model == NULL ? 0 : (int)model->forest.n_landmarks; }

const char* cascade_model_kind(const cascade_model* model) {
    static const char* const kinds[] = {"ERT", "LBF", "ESR"};
    return model == NULL ? NULL : kinds[model->kind - KIND_ERT];
}

int cascade_model_detectors(const cascade_model* model) { return model == NULL ? 0 : model->n_calibrations; }

const char* cascade_model_detector(const cascade_model* model, int index) {
    return model == NULL || index < 0 || index >= model->n_calibrations ? NULL : model->calibrations[index].name;
}

/* The scratch of a prediction: the loop's, then per start (ESR's several) a box, a roll, an image
 * view and a shape, and the values a median sorts. */
size_t cascade_scratch_size(const cascade_model* model) {
    size_t starts, dim;
    if (model == NULL) return 0;
    starts = (size_t)(model->n_starts > 0 ? model->n_starts : 1);
    dim = (size_t)(2 * model->forest.n_landmarks);
    return cascade_forest_scratch_size(&model->forest)
           + starts * (5 * sizeof(double) + sizeof(cascade_view) + dim * sizeof(double) + sizeof(double)) + 64;
}

static const calibration* find_calibration(const cascade_model* m, const char* detector) {
    int i;
    for (i = 0; i < m->n_calibrations; i++)
        if (strncmp(m->calibrations[i].name, detector, NAME_BYTES) == 0) return &m->calibrations[i];
    return NULL;
}

static cascade_status check_call(const cascade_model* m, const cascade_image* image, const void* given,
                                 void* scratch, const double* landmarks, cascade_view* view, cascade_error* error) {
    if (m == NULL || image == NULL || given == NULL || scratch == NULL || landmarks == NULL)
        return fail(error, CASCADE_ERROR_ARGUMENT, "model, image, start, scratch and landmarks must not be NULL");
    if (image->pixels == NULL || image->width < 1 || image->height < 1 || (image->channels != 1 && image->channels != 3))
        return fail(error, CASCADE_ERROR_ARGUMENT, "the image must have pixels, a size and 1 or 3 channels");
    if ((image->stride < 0 ? -image->stride : image->stride) < (ptrdiff_t)image->width * image->channels)
        return fail(error, CASCADE_ERROR_ARGUMENT, "the image's rows (stride %ld bytes) are shorter than its %d pixels",
                    (long)image->stride, image->width);
    view->data = image->pixels;
    view->width = image->width;
    view->height = image->height;
    view->row_stride = image->stride;
    view->col_stride = image->channels;
    view->channel_stride = 1;
    view->channels = image->channels;
    return CASCADE_OK;
}

static int on_image(const double* box, const cascade_view* view) {
    return all_finite(box, 4) && box[2] > box[0] && box[3] > box[1] && box[0] < (double)view->width
           && box[1] < (double)view->height && box[2] > 0 && box[3] > 0;
}

static int by_value(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

/* The cascade from one box (and roll) on one image; ESR from each of its starts, then the median
 * of each coordinate over them (as numpy.median). */
static void run_face(const cascade_model* m, const cascade_view* view, const double* box, double roll,
                     void* scratch, double* landmarks) {
    ptrdiff_t starts = m->n_starts > 0 ? m->n_starts : 1, dim = 2 * m->forest.n_landmarks, s, d;
    char* base = (char*)scratch + cascade_forest_scratch_size(&m->forest);
    double* boxes = (double*)(void*)(base + (64 - (size_t)((uintptr_t)base % 64)) % 64);
    double* rolls = boxes + 4 * starts;
    double* shapes = rolls + starts;
    double* column = shapes + starts * dim;
    cascade_view* views = (cascade_view*)(void*)(column + starts);
    for (s = 0; s < starts; s++) {
        memcpy(&boxes[4 * s], box, 4 * sizeof(double));
        rolls[s] = roll;
        views[s] = *view;
    }
    cascade_forest_run(&m->forest, views, starts, boxes, m->initial_shapes, rolls, m->zero_outside, scratch,
                       starts > 1 ? shapes : landmarks, NULL);
    if (starts == 1) return;
    for (d = 0; d < dim; d++) {
        for (s = 0; s < starts; s++) column[s] = shapes[s * dim + d];
        qsort(column, (size_t)starts, sizeof(double), by_value);
        landmarks[d] = starts % 2 ? column[starts / 2] : (column[starts / 2 - 1] + column[starts / 2]) / 2;
    }
}

static cascade_status finite_or_damaged(const cascade_model* m, const double* landmarks, cascade_error* error) {
    if (!all_finite(landmarks, (int)(2 * m->forest.n_landmarks)))
        return fail(error, CASCADE_ERROR_DAMAGED, "the model gave non-finite landmarks: its file may be damaged");
    return CASCADE_OK;
}

/* Start from five points of the model's kind: the mean shape placed on them by a similarity. */
static cascade_status from_points(const cascade_model* m, const cascade_view* view, const double* points,
                                  void* scratch, double* landmarks, cascade_error* error) {
    double box[4], roll;
    if (!all_finite(points, 10)) return fail(error, CASCADE_ERROR_ARGUMENT, "the points are not finite");
    cascade_place_on_points(m->mean_points, points, 5, box, &roll);
    if (!on_image(box, view))
        return fail(error, CASCADE_ERROR_FACE, "the points place no face on the %dx%d image (collapsed, or off it)",
                    (int)view->height, (int)view->width);
    run_face(m, view, box, roll, scratch, landmarks);
    return finite_or_damaged(m, landmarks, error);
}

cascade_status cascade_predict_points(const cascade_model* m, const cascade_image* image, const double* points,
                                      const char* detector, void* scratch, double* landmarks, cascade_error* error) {
    cascade_view view;
    double moved[10];
    cascade_status status = check_call(m, image, points, scratch, landmarks, &view, error);
    if (status != CASCADE_OK) return status;
    if (m->mean_points == NULL)
        return fail(error, CASCADE_ERROR_ARGUMENT, "this model's scheme gives no five points: start from a box");
    memcpy(moved, points, sizeof moved);
    if (detector != NULL) {
        /* The detector's points moved by the model's offsets from them, turned and scaled into the
         * face by the similarity taking the calibration's detector points onto these. */
        const calibration* k = find_calibration(m, detector);
        double ab[2], centres[4];
        int j;
        if (k == NULL || !k->has_points)
            return fail(error, CASCADE_ERROR_DETECTOR, "this model stores no point calibration of %.32s", detector);
        if (!all_finite(points, 10)) return fail(error, CASCADE_ERROR_ARGUMENT, "the points are not finite");
        cascade_scaled_rotation(k->detector, points, 5, ab, centres);
        for (j = 0; j < 5; j++) {
            double dx = k->model[2 * j] - k->detector[2 * j], dy = k->model[2 * j + 1] - k->detector[2 * j + 1];
            moved[2 * j] = points[2 * j] + (ab[0] * dx - ab[1] * dy);
            moved[2 * j + 1] = points[2 * j + 1] + (ab[1] * dx + ab[0] * dy);
        }
    }
    return from_points(m, &view, moved, scratch, landmarks, error);
}

cascade_status cascade_predict_box(const cascade_model* m, const cascade_image* image, const double* box,
                                   const char* detector, void* scratch, double* landmarks, cascade_error* error) {
    cascade_view view;
    double tight[4], points[10], again[4], roll;
    ptrdiff_t i, j, at;
    cascade_status status = check_call(m, image, box, scratch, landmarks, &view, error);
    if (status != CASCADE_OK) return status;
    memcpy(tight, box, sizeof tight);
    if (detector != NULL) {     /* the detector's box -> the tight box it stands for */
        const calibration* k = find_calibration(m, detector);
        double cx = (box[0] + box[2]) / 2, cy = (box[1] + box[3]) / 2, w = box[2] - box[0], h = box[3] - box[1];
        if (k == NULL || !k->has_box)
            return fail(error, CASCADE_ERROR_DETECTOR, "this model stores no box calibration of %.32s", detector);
        cx += w * k->box[0];
        cy += h * k->box[1];
        tight[0] = cx - w * k->box[2] / 2;
        tight[1] = cy - h * k->box[3] / 2;
        tight[2] = cx + w * k->box[2] / 2;
        tight[3] = cy + h * k->box[3] / 2;
    }
    if (!on_image(tight, &view))
        return fail(error, CASCADE_ERROR_FACE, "the box is not finite, has no size or lies off the %dx%d image",
                    (int)view.height, (int)view.width);
    run_face(m, &view, tight, 0.0, scratch, landmarks);
    if (m->point_starts && all_finite(landmarks, (int)(2 * m->forest.n_landmarks))) {
        /* Trained from five points: again from the five points of this first answer. */
        for (i = 0, at = 0; i < 5; at += m->five_sizes[i], i++) {
            double x = 0, y = 0;
            for (j = 0; j < (ptrdiff_t)m->five_sizes[i]; j++) {
                x += landmarks[2 * m->five_indices[at + j]];
                y += landmarks[2 * m->five_indices[at + j] + 1];
            }
            points[2 * i] = x / m->five_sizes[i];
            points[2 * i + 1] = y / m->five_sizes[i];
        }
        cascade_place_on_points(m->mean_points, points, 5, again, &roll);
        if (again[2] > again[0] && on_image(again, &view)) run_face(m, &view, again, roll, scratch, landmarks);
    }
    return finite_or_damaged(m, landmarks, error);
}

const char* cascade_status_name(cascade_status status) {
    static const char* const names[] = {"CASCADE_OK", "CASCADE_ERROR_ARGUMENT", "CASCADE_ERROR_IO",
                                        "CASCADE_ERROR_FORMAT", "CASCADE_ERROR_DAMAGED", "CASCADE_ERROR_MEMORY",
                                        "CASCADE_ERROR_FACE", "CASCADE_ERROR_DETECTOR"};
    return (unsigned)status < sizeof names / sizeof names[0] ? names[status] : "CASCADE_ERROR_UNKNOWN";
}
