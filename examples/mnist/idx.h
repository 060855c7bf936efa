/* idx.h — read (and write) the IDX files MNIST and Fashion-MNIST come in.
 *
 * IDX (yann.lecun.com/exdb/mnist): a big-endian header, then the data as bytes.
 *   images: magic 0x00000803, count, rows, cols, then count*rows*cols pixels
 *   labels: magic 0x00000801, count, then count labels
 * Files may be gzip-compressed (name ending in .gz) or plain; zlib reads both.
 *
 * Images stay as bytes (60k MNIST images are 47 MB as uint8, 188 MB as floats);
 * the training loop scales each batch to [0, 1] as it is drawn.
 *
 * Every function returns an nb_status and, on failure, leaves a one-line message
 * in nb_last_error() naming the file and what was wrong with it. */
#ifndef MNIST_IDX_H
#define MNIST_IDX_H

#include <stdbool.h>
#include <stdint.h>

#include <nabla/nabla.h>

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_MAX_SIDE 1024            /* largest rows or cols accepted */
#define IDX_MAX_COUNT 100000000      /* most images / labels in one file */
#define IDX_CLASSES 10               /* labels must lie in [0, IDX_CLASSES) */

/* One split of a data set: n images of rows x cols bytes and n labels. */
typedef struct mnist_set {
    int n, rows, cols;
    uint8_t *images; /* (n, rows*cols) pixels, 0 = background */
    uint8_t *labels; /* (n) class ids in [0, IDX_CLASSES) */
} mnist_set;

/* Read an image file. On success *pixels (n, rows*cols) is malloc'ed (free()
 * it) and n, rows, cols are set; on failure nothing is allocated. */
nb_status idx_read_images(const char *path, uint8_t **pixels, int *n, int *rows, int *cols);

/* Read a label file; every label must be < IDX_CLASSES. */
nb_status idx_read_labels(const char *path, uint8_t **labels, int *n);

/* Find "<dir>/<stem>" trying the usual spellings: "<stem>.gz", "<stem>", and the
 * same with the last '-' before "idx" written as '.' ("train-images.idx3-ubyte").
 * Writes the first that exists into out (len bytes). NB_ERR_IO when none does. */
nb_status idx_find(const char *dir, const char *stem, char *out, size_t len);

/* Load "<prefix>-images-idx3-ubyte" and "<prefix>-labels-idx1-ubyte" from dir
 * (prefix "train" or "t10k") and check that their counts agree. */
nb_status mnist_load(const char *dir, const char *prefix, mnist_set *set);

/* Free a set's arrays and zero it. NULL is a no-op. */
void mnist_set_free(mnist_set *set);

/* Write an IDX file of unsigned bytes: magic 0x0800 | ndim, dims[0..ndim), then
 * the data; gzip-compressed when gz. For making small data sets and tests. */
nb_status idx_write(const char *path, bool gz, int ndim, const int *dims, const uint8_t *data);

#endif
