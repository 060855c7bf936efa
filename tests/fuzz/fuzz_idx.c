/* fuzz_idx.c — the MNIST example's IDX reader (examples/mnist/idx.c) on any bytes.
 *
 * The first input byte picks the mode, the rest is the file:
 *   bit 0   0: read as an image file (idx_read_images), 1: as a label file
 *   bit 1   0: the bytes are the file as it is (plain IDX, or a gzip stream the
 *              fuzzer mutates directly); 1: they are first compressed with
 *              zlib's gzwrite, so the reader sees a valid gzip stream of them.
 * A success must give sane sizes and a buffer; a failure must leave a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../../examples/mnist/idx.h"
#include "fuzz_util.h"

static int write_gz(const char *path, const uint8_t *data, size_t size)
{
    gzFile f = gzopen(path, "wb1");
    if (!f) return -1;
    int ok = size == 0 || gzwrite(f, data, (unsigned)size) == (int)size;
    return gzclose(f) == Z_OK && ok ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int mode = data[0];
    const char *path = fuzz_path("idx", (mode & 2) ? ".gz" : "");
    int w = (mode & 2) ? write_gz(path, data + 1, size - 1) : fuzz_write(path, data + 1, size - 1);
    if (w != 0) return 0;
    nb_clear_error();
    nb_status s;
    if (mode & 1) {
        uint8_t *labels = NULL;
        int n = -1;
        s = idx_read_labels(path, &labels, &n);
        if (s == NB_OK) {
            fuzz_require(labels && n >= 1 && (size_t)n <= size * 1100, "labels: bad result");
            for (int i = 0; i < n; i++) fuzz_require(labels[i] < IDX_CLASSES, "labels: value out of range");
            free(labels);
        }
    } else {
        uint8_t *pixels = NULL;
        int n = -1, rows = -1, cols = -1;
        s = idx_read_images(path, &pixels, &n, &rows, &cols);
        if (s == NB_OK) {
            fuzz_require(pixels && n >= 1 && rows >= 1 && rows <= IDX_MAX_SIDE && cols >= 1 && cols <= IDX_MAX_SIDE,
                         "images: bad result");
            volatile uint8_t sum = 0; /* touch every byte: ASan checks the size */
            for (size_t i = 0; i < (size_t)n * rows * cols; i++) sum += pixels[i];
            (void)sum;
            free(pixels);
        }
    }
    if (s != NB_OK) fuzz_require(nb_last_error()[0] != '\0', "failure without a message");
    unlink(path);
    return 0;
}
