/* Threads sharing one model get the serial answers: threads MODEL IMAGE.pgm [N_THREADS]. Each thread
 * landmarks the same faces (from boxes and from five points, spread over the image) many times with
 * its own scratch, and every answer must equal the serial one bit for bit. Exit 0, or 1. */
#if !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200112L
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cascade.h"

enum { FACES = 24, ROUNDS = 20, MAX_LANDMARKS = 512 };

typedef struct {
    const cascade_model* model;
    const cascade_image* image;
    const double* expected;
    int mismatches;
} job;

static double box_of(int face, int k, int width, int height) {
    double side = 0.25 * (width < height ? width : height) * (1.0 + 0.05 * (face % 5));
    double left = (width - side) * (face % 6) / 5.0, top = (height - side) * (face / 6) / 3.0;
    return k == 0 ? left : k == 1 ? top : k == 2 ? left + side : top + side;
}

static cascade_status landmark(const cascade_model* model, const cascade_image* image, int face, void* scratch,
                               double* out) {
    double box[4], points[10];
    cascade_error error;
    int k;
    for (k = 0; k < 4; k++) box[k] = box_of(face, k, image->width, image->height);
    if (face % 2 == 0) return cascade_predict_box(model, image, box, NULL, scratch, out, &error);
    for (k = 0; k < 5; k++) {     /* eyes, nose, mouth corners in the box */
        static const double at[10] = {0.3, 0.35, 0.7, 0.35, 0.5, 0.55, 0.35, 0.75, 0.65, 0.75};
        points[2 * k] = box[0] + at[2 * k] * (box[2] - box[0]);
        points[2 * k + 1] = box[1] + at[2 * k + 1] * (box[3] - box[1]);
    }
    return cascade_predict_points(model, image, points, NULL, scratch, out, &error);
}

static void* work(void* argument) {
    job* j = (job*)argument;
    size_t dim = 2 * (size_t)cascade_model_landmarks(j->model);
    void* scratch = malloc(cascade_scratch_size(j->model));
    double out[2 * MAX_LANDMARKS];
    int round, face;
    for (round = 0; scratch != NULL && round < ROUNDS; round++)
        for (face = 0; face < FACES; face++)
            if (landmark(j->model, j->image, face, scratch, out) != CASCADE_OK
                || memcmp(out, &j->expected[face * dim], dim * sizeof(double)) != 0)
                j->mismatches++;
    if (scratch == NULL) j->mismatches++;
    free(scratch);
    return NULL;
}

int main(int argc, char** argv) {
    cascade_model* model;
    cascade_error error;
    cascade_image image;
    unsigned char* pixels;
    double* expected;
    void* scratch;
    int width, height, maxval, n_threads = argc > 3 ? atoi(argv[3]) : 8, t, face, failed = 0;
    pthread_t threads[64];
    job jobs[64];
    FILE* file;
    if (argc < 3 || n_threads < 1 || n_threads > 64) {
        fputs("usage: threads MODEL IMAGE.pgm [N_THREADS]\n", stderr);
        return 2;
    }
    if (cascade_model_load(argv[1], &model, &error) != CASCADE_OK) {
        fprintf(stderr, "threads: %s\n", error.message);
        return 1;
    }
    file = fopen(argv[2], "rb");
    if (file == NULL || fscanf(file, "P5 %d %d %d", &width, &height, &maxval) != 3 || fgetc(file) == EOF
        || width < 1 || height < 1 || width > 65535 || height > 65535 || cascade_model_landmarks(model) > MAX_LANDMARKS) {
        fputs("threads: cannot read the image\n", stderr);
        return 1;
    }
    pixels = (unsigned char*)malloc((size_t)width * (size_t)height);
    if (pixels == NULL || fread(pixels, 1, (size_t)width * (size_t)height, file) != (size_t)width * (size_t)height) {
        fputs("threads: the image is truncated\n", stderr);
        return 1;
    }
    fclose(file);
    image.pixels = pixels;
    image.width = width;
    image.height = height;
    image.stride = width;
    image.channels = 1;
    expected = (double*)malloc(FACES * 2 * (size_t)cascade_model_landmarks(model) * sizeof(double));
    scratch = malloc(cascade_scratch_size(model));
    for (face = 0; face < FACES; face++)
        if (landmark(model, &image, face, scratch, &expected[face * 2 * cascade_model_landmarks(model)]) != CASCADE_OK) {
            fprintf(stderr, "threads: face %d was refused\n", face);
            return 1;
        }
    for (t = 0; t < n_threads; t++) {
        jobs[t].model = model;
        jobs[t].image = &image;
        jobs[t].expected = expected;
        jobs[t].mismatches = 0;
        if (pthread_create(&threads[t], NULL, work, &jobs[t]) != 0) return 1;
    }
    for (t = 0; t < n_threads; t++) {
        pthread_join(threads[t], NULL);
        failed += jobs[t].mismatches;
    }
    printf("%d threads x %d rounds x %d faces: %d answers differ from the serial ones\n", n_threads, ROUNDS, FACES,
           failed);
    free(scratch);
    free(expected);
    free(pixels);
    cascade_model_free(model);
    return failed != 0;
}
