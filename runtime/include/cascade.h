/* cascade: facial landmarks by cascaded shape regression, in C99 with libc and libm only.
 *
 * Load a model file written by Python's `model.save(path, format="c")` (ERT, LBF or ESR,
 * compressed or not; the format is docs/c-runtime.md), then place each face's landmarks from five
 * points or a box. The same loop runs inside the Python package.
 *
 *     cascade_model* model;
 *     cascade_error error;
 *     if (cascade_model_load("ert-68.cascade", &model, &error) != CASCADE_OK) { puts(error.message); ... }
 *     void* scratch = malloc(cascade_scratch_size(model));
 *     double landmarks[2 * 68];
 *     cascade_image image = {pixels, width, height, width, 1};        (grey, rows `stride` bytes apart)
 *     cascade_predict_points(model, &image, five_points, "yunet", scratch, landmarks, &error);
 *
 * Conventions: pixels are uint8, grey (1 channel) or BGR (3, interleaved); coordinates are pixels,
 * (x, y), the centre of the top-left pixel at (0, 0); a box is (left, top, right, bottom); five
 * points are the eye centres (the subject's right eye first, as it appears on the left of the
 * image), the nose tip and the mouth corners, x0 y0 x1 y1 ... x4 y4; landmarks come out as
 * x0 y0 x1 y1 ..., in the model's scheme (68 points: iBUG / 300-W).
 *
 * Threads: a loaded model is read-only; any number of threads may predict with one model at once,
 * each with its own scratch buffer. Nothing here allocates except cascade_model_load/read (one
 * allocation, freed by cascade_model_free), keeps global state, or prints.
 *
 * Errors: every call returns CASCADE_OK or a status, and fills `error` (when not NULL) with a
 * one-line message. A file is checked whole before it is used (magic, version, sizes, checksum,
 * every index and count), so a damaged or hostile file is an error, never a read outside it. */
#ifndef CASCADE_H
#define CASCADE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CASCADE_VERSION "0.1.0"
#define CASCADE_FORMAT_VERSION 1

typedef enum {
    CASCADE_OK = 0,
    CASCADE_ERROR_ARGUMENT = 1,    /* a NULL, a size or a value the call cannot take */
    CASCADE_ERROR_IO = 2,          /* the file cannot be opened or read */
    CASCADE_ERROR_FORMAT = 3,      /* not a cascade model file, or a version this library does not read */
    CASCADE_ERROR_DAMAGED = 4,     /* a size, index, count or checksum that does not hold */
    CASCADE_ERROR_MEMORY = 5,      /* the model's one allocation failed */
    CASCADE_ERROR_FACE = 6,        /* the start places no face on the image (points collapsed, or off it) */
    CASCADE_ERROR_DETECTOR = 7     /* the model stores no calibration for that detector */
} cascade_status;

typedef struct {
    cascade_status status;
    char message[256];
} cascade_error;

typedef struct cascade_model cascade_model;

typedef struct {
    const uint8_t* pixels;    /* the top-left pixel's first byte */
    int width, height;        /* pixels */
    ptrdiff_t stride;         /* bytes from a row to the next (any sign) */
    int channels;             /* 1: grey; 3: BGR */
} cascade_image;

/* Read a model file (or a model file's bytes, copied); *model is NULL on failure. */
cascade_status cascade_model_load(const char* path, cascade_model** model, cascade_error* error);
cascade_status cascade_model_read(const void* bytes, size_t size, cascade_model** model, cascade_error* error);
void cascade_model_free(cascade_model* model);

/* What a loaded model is: its landmark count, its kind ("ERT", "LBF" or "ESR"), the detectors it
 * stores calibrations for (index 0 .. cascade_model_detectors - 1; NULL past the end), and the
 * bytes of scratch a prediction needs. */
int cascade_model_landmarks(const cascade_model* model);
const char* cascade_model_kind(const cascade_model* model);
int cascade_model_detectors(const cascade_model* model);
const char* cascade_model_detector(const cascade_model* model, int index);
size_t cascade_scratch_size(const cascade_model* model);

/* The landmarks (2 * landmarks doubles) of one face, started from its five points (10 doubles,
 * pixels) or its box (4 doubles, pixels). `detector` NULL: they are of the model's own kind (the
 * landmarks' five points; the tight box of the landmarks); else a detector's raw output, mapped
 * first by the calibration the model stores for it (cascade_model_detector). A model trained for
 * five-point starts runs a face given by its box twice, as Python's predict does: from the box,
 * then from the five points of that answer. `scratch`: cascade_scratch_size(model) bytes. */
cascade_status cascade_predict_points(const cascade_model* model, const cascade_image* image, const double* points,
                                      const char* detector, void* scratch, double* landmarks, cascade_error* error);
cascade_status cascade_predict_box(const cascade_model* model, const cascade_image* image, const double* box,
                                   const char* detector, void* scratch, double* landmarks, cascade_error* error);

/* A status's name, "CASCADE_OK" ... */
const char* cascade_status_name(cascade_status status);

#ifdef __cplusplus
}
#endif
#endif
