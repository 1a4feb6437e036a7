/* The loader against damaged and lying files, for AddressSanitizer and UndefinedBehaviorSanitizer:
 *
 *   fuzz_loader MODEL ITERATIONS [SEED]
 *
 * Each iteration damages a copy of a valid model file one way (truncated; bytes flipped; a header
 * field or an array's value set to an extreme; any of these with the checksum made right again, so
 * that the damage reaches the checks behind it), reads it with cascade_model_read, and, where it is
 * accepted, landmarks faces on a small image from boxes and points on and off it. The library must
 * refuse or answer, never read outside the file or its own buffers (the sanitizers abort if it does).
 * With LLVMFuzzerTestOneInput, the same check serves libFuzzer (clang -fsanitize=fuzzer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cascade.h"
#include "internal.h"

enum { HEADER = 96, SIDE = 64 };

static uint32_t next(uint64_t* state) {     /* xorshift64*: the same damage for the same seed */
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 2685821657736338717ull) >> 32);
}

static void try_model(const unsigned char* bytes, size_t size) {
    static const double boxes[3][4] = {{8, 8, 56, 56}, {-100, -100, 1e6, 1e6}, {60, 60, 61, 61}};
    static const double points[2][10] = {{20, 24, 44, 24, 32, 34, 22, 46, 42, 46},
                                         {1, 1, 1, 1, 1, 1, 1, 1, 1, 1}};
    unsigned char pixels[SIDE * SIDE];
    cascade_model* model;
    cascade_error error;
    cascade_image image;
    void* scratch;
    double* out;
    int i;
    if (cascade_model_read(bytes, size, &model, &error) != CASCADE_OK) return;
    for (i = 0; i < SIDE * SIDE; i++) pixels[i] = (unsigned char)(i * 37 + i / SIDE);
    image.pixels = pixels;
    image.width = image.height = SIDE;
    image.stride = SIDE;
    image.channels = 1;
    scratch = malloc(cascade_scratch_size(model));
    out = (double*)malloc(2 * (size_t)cascade_model_landmarks(model) * sizeof(double));
    for (i = 0; scratch != NULL && out != NULL && i < 3; i++) {
        cascade_predict_box(model, &image, boxes[i], NULL, scratch, out, &error);
        cascade_predict_box(model, &image, boxes[i], cascade_model_detector(model, 0), scratch, out, &error);
        if (i < 2) {
            cascade_predict_points(model, &image, points[i], NULL, scratch, out, &error);
            cascade_predict_points(model, &image, points[i], cascade_model_detector(model, 0), scratch, out, &error);
        }
    }
    free(scratch);
    free(out);
    cascade_model_free(model);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try_model(data, size);
    return 0;
}

static void set_u32(unsigned char* p, uint32_t value) {
    p[0] = (unsigned char)value;
    p[1] = (unsigned char)(value >> 8);
    p[2] = (unsigned char)(value >> 16);
    p[3] = (unsigned char)(value >> 24);
}

#ifndef CASCADE_LIBFUZZER
int main(int argc, char** argv) {
    static const uint32_t extremes[] = {0, 1, 2, 3, 15, 16, 63, 64, 255, 256, 65535, 65536, 0x7fffffff, 0x80000000u,
                                        0xfffffffeu, 0xffffffffu};
    FILE* file;
    unsigned char *original, *copy;
    long size;
    uint64_t state;
    int iterations, i, accepted = 0;
    if (argc < 3 || (iterations = atoi(argv[2])) < 1) {
        fputs("usage: fuzz_loader MODEL ITERATIONS [SEED]\n", stderr);
        return 2;
    }
    state = argc > 3 ? strtoull(argv[3], NULL, 10) | 1 : 88172645463325252ull;
    file = fopen(argv[1], "rb");
    if (file == NULL || fseek(file, 0, SEEK_END) != 0 || (size = ftell(file)) < HEADER || fseek(file, 0, SEEK_SET) != 0)
        return 1;
    original = (unsigned char*)malloc((size_t)size);
    copy = (unsigned char*)malloc((size_t)size);
    if (original == NULL || copy == NULL || fread(original, 1, (size_t)size, file) != (size_t)size) return 1;
    fclose(file);
    try_model(original, (size_t)size);
    for (i = 0; i < iterations; i++) {
        size_t length = (size_t)size, at;
        int how = (int)(next(&state) % 7), k, fix_checksum = (int)(next(&state) % 2);
        memcpy(copy, original, (size_t)size);
        switch (how) {
        case 0:     /* truncated */
            length = next(&state) % (size_t)size;
            break;
        case 1:     /* a few bytes flipped anywhere */
            for (k = 0; k < 1 + (int)(next(&state) % 8); k++) copy[next(&state) % (size_t)size] ^= (unsigned char)(1 + next(&state) % 255);
            break;
        case 2:     /* a header field set to an extreme */
            set_u32(copy + 8 + 4 * (next(&state) % 22), extremes[next(&state) % 16]);
            break;
        case 3:     /* a size field off by a little */
            at = 36 + 4 * (next(&state) % 10);
            set_u32(copy + at, (uint32_t)(copy[at] | copy[at + 1] << 8 | copy[at + 2] << 16) + (next(&state) % 5) - 2u);
            break;
        case 4:     /* two sizes set to extremes at once: products that would overflow */
            for (k = 0; k < 2; k++) set_u32(copy + 36 + 4 * (next(&state) % 10), extremes[next(&state) % 16]);
            break;
        default:    /* a 32-bit value in the arrays set to an extreme (an index, a count, a float's bits) */
            at = HEADER + 4 * (next(&state) % (((size_t)size - HEADER) / 4));
            set_u32(copy + at, extremes[next(&state) % 16]);
        }
        if (fix_checksum && length > HEADER) set_u32(copy + 24, cascade_crc32(copy + HEADER, length - HEADER));
        {
            cascade_model* model;
            cascade_error error;
            if (cascade_model_read(copy, length, &model, &error) == CASCADE_OK) {
                accepted++;
                cascade_model_free(model);
            }
        }
        try_model(copy, length);
    }
    printf("%d damaged files read, %d accepted (and landmarked without fault)\n", iterations, accepted);
    free(original);
    free(copy);
    return 0;
}
#endif
