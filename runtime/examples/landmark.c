/* landmark: the landmarks of faces in PGM images, by the cascade C library.
 *
 *   landmark MODEL IMAGE.pgm --points X0 Y0 ... X4 Y4 [--detector NAME]   one face from five points
 *   landmark MODEL IMAGE.pgm --box LEFT TOP RIGHT BOTTOM [--detector NAME] one face from a box
 *   landmark MODEL --faces LIST [--repeat N]                               many faces, one a line of LIST:
 *                                                                          IMAGE.pgm points|box VALUES... [DETECTOR]
 *
 * Prints one line a face: x0 y0 x1 y1 ... in pixels. With --repeat, each face is landmarked N times
 * and the time a face (microseconds, the median of the rounds) goes to stderr. Exit status: 0, 1 for
 * an error (one line on stderr), 2 for usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cascade.h"

typedef struct {
    unsigned char* pixels;
    int width, height;
} grey_image;

static int usage(void) {
    fputs("usage: landmark MODEL IMAGE.pgm (--points X0 Y0 ... X4 Y4 | --box L T R B) [--detector NAME]\n"
          "       landmark MODEL --faces LIST [--repeat N]\n", stderr);
    return 2;
}

/* A binary PGM (P5, maxval 255): 0 and a message for anything else. */
static int read_pgm(const char* path, grey_image* image, char* message, size_t message_size) {
    FILE* file = fopen(path, "rb");
    int maxval = 0, c;
    size_t size;
    image->pixels = NULL;
    if (file == NULL) {
        snprintf(message, message_size, "cannot open %s", path);
        return 0;
    }
    if (fscanf(file, "P5 %d %d %d", &image->width, &image->height, &maxval) != 3 || maxval != 255
        || image->width < 1 || image->height < 1 || image->width > 65535 || image->height > 65535
        || (c = fgetc(file)) == EOF || (c != ' ' && c != '\n' && c != '\r' && c != '\t')) {
        snprintf(message, message_size, "%s is not a binary 8-bit PGM", path);
        fclose(file);
        return 0;
    }
    size = (size_t)image->width * (size_t)image->height;
    image->pixels = (unsigned char*)malloc(size);
    if (image->pixels == NULL || fread(image->pixels, 1, size, file) != size) {
        snprintf(message, message_size, "%s is truncated", path);
        free(image->pixels);
        image->pixels = NULL;
        fclose(file);
        return 0;
    }
    fclose(file);
    return 1;
}

/* Processor seconds: the rounds run on one thread, and clock() is plain C99 (a board, the browser). */
static double seconds_now(void) { return (double)clock() / CLOCKS_PER_SEC; }

typedef struct {
    char path[1024];
    int from_points;
    double values[10];
    char detector[32];
    grey_image image;
} face;

static cascade_status landmark_face(const cascade_model* model, const face* f, void* scratch, double* landmarks,
                                    cascade_error* error) {
    cascade_image image;
    const char* detector = f->detector[0] ? f->detector : NULL;
    image.pixels = f->image.pixels;
    image.width = f->image.width;
    image.height = f->image.height;
    image.stride = f->image.width;
    image.channels = 1;
    return f->from_points ? cascade_predict_points(model, &image, f->values, detector, scratch, landmarks, error)
                          : cascade_predict_box(model, &image, f->values, detector, scratch, landmarks, error);
}

static void print_landmarks(const double* landmarks, int n_landmarks) {
    int j;
    for (j = 0; j < 2 * n_landmarks; j++) printf(j ? " %.17g" : "%.17g", landmarks[j]);
    putchar('\n');
}

static int compare(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

/* The faces of a LIST file, their images read; NULL and a message on failure. */
static face* read_faces(const char* list, int* n_faces, char* message, size_t message_size) {
    FILE* file = fopen(list, "r");
    char line[4096], kind[16];
    face* faces = NULL;
    int n = 0, capacity = 0, used, count, i;
    if (file == NULL) {
        snprintf(message, message_size, "cannot open %s", list);
        return NULL;
    }
    while (fgets(line, sizeof line, file) != NULL) {
        face* f;
        if (line[0] == '\n' || line[0] == '#') continue;
        if (n == capacity) {
            face* grown = (face*)realloc(faces, (size_t)(capacity = capacity ? 2 * capacity : 64) * sizeof(face));
            if (grown == NULL) break;
            faces = grown;
        }
        f = &faces[n];
        memset(f, 0, sizeof *f);
        if (sscanf(line, "%1023s %15s%n", f->path, kind, &used) != 2
            || (strcmp(kind, "points") != 0 && strcmp(kind, "box") != 0)) {
            snprintf(message, message_size, "%s: line %d is not IMAGE points|box VALUES... [DETECTOR]", list, n + 1);
            goto failed;
        }
        f->from_points = strcmp(kind, "points") == 0;
        count = f->from_points ? 10 : 4;
        for (i = 0; i < count; i++) {
            int more;
            if (sscanf(line + used, "%lf%n", &f->values[i], &more) != 1) {
                snprintf(message, message_size, "%s: line %d has fewer than %d values", list, n + 1, count);
                goto failed;
            }
            used += more;
        }
        if (sscanf(line + used, "%31s", f->detector) != 1) f->detector[0] = 0;
        if (!read_pgm(f->path, &f->image, message, message_size)) goto failed;
        n++;
    }
    fclose(file);
    if (n == 0) {
        snprintf(message, message_size, "%s lists no faces", list);
        free(faces);
        return NULL;
    }
    *n_faces = n;
    return faces;
failed:
    for (i = 0; i < n; i++) free(faces[i].image.pixels);
    free(faces);
    fclose(file);
    return NULL;
}

int main(int argc, char** argv) {
    cascade_model* model = NULL;
    cascade_error error;
    face single, *faces = NULL;
    double* landmarks;
    void* scratch;
    int n_faces = 0, repeat = 0, i, k, status = 0;
    char message[1200];
    if (argc < 3) return usage();
    if (strcmp(argv[2], "--faces") == 0) {
        if (argc != 4 && !(argc == 6 && strcmp(argv[4], "--repeat") == 0 && (repeat = atoi(argv[5])) > 0))
            return usage();
        if ((faces = read_faces(argv[3], &n_faces, message, sizeof message)) == NULL) {
            fprintf(stderr, "landmark: %s\n", message);
            return 1;
        }
    } else {
        int count = argc > 3 && strcmp(argv[3], "--points") == 0 ? 10 : argc > 3 && strcmp(argv[3], "--box") == 0 ? 4 : 0;
        if (count == 0 || (argc != 4 + count && !(argc == 6 + count && strcmp(argv[4 + count], "--detector") == 0)))
            return usage();
        memset(&single, 0, sizeof single);
        single.from_points = count == 10;
        for (i = 0; i < count; i++) {
            char* end;
            single.values[i] = strtod(argv[4 + i], &end);
            if (*end != 0) return usage();
        }
        if (argc == 6 + count) snprintf(single.detector, sizeof single.detector, "%s", argv[5 + count]);
        if (!read_pgm(argv[2], &single.image, message, sizeof message)) {
            fprintf(stderr, "landmark: %s\n", message);
            return 1;
        }
        faces = &single;
        n_faces = 1;
    }
    if (cascade_model_load(argv[1], &model, &error) != CASCADE_OK) {
        fprintf(stderr, "landmark: %s\n", error.message);
        status = 1;
        goto done;
    }
    scratch = malloc(cascade_scratch_size(model));
    landmarks = (double*)malloc(2 * (size_t)cascade_model_landmarks(model) * sizeof(double));
    if (scratch == NULL || landmarks == NULL) {
        fputs("landmark: out of memory\n", stderr);
        status = 1;
    }
    for (i = 0; status == 0 && i < n_faces; i++) {
        if (landmark_face(model, &faces[i], scratch, landmarks, &error) != CASCADE_OK) {
            fprintf(stderr, "landmark: %s: %s\n", faces[i].path, error.message);
            status = 1;
        } else {
            print_landmarks(landmarks, cascade_model_landmarks(model));
        }
    }
    if (status == 0 && repeat > 0) {
        double* rounds = (double*)malloc((size_t)repeat * sizeof(double));
        for (k = 0; rounds != NULL && k < repeat; k++) {
            double started = seconds_now();
            for (i = 0; i < n_faces; i++) landmark_face(model, &faces[i], scratch, landmarks, &error);
            rounds[k] = (seconds_now() - started) / n_faces;
        }
        if (rounds != NULL) {
            qsort(rounds, (size_t)repeat, sizeof(double), compare);
            fprintf(stderr, "%.3f us a face\n", 1e6 * rounds[repeat / 2]);
        }
        free(rounds);
    }
    free(scratch);
    free(landmarks);
done:
    cascade_model_free(model);
    for (i = 0; i < n_faces; i++) free(faces[i].image.pixels);
    if (faces != &single) free(faces);
    return status;
}
