/* fileio.h — the byte-level tools of nn's file format: a growable little-endian
 * writer, a bounds-checked reader that names the field it failed on, reading a
 * whole file, and the safe atomic write. Private to nn/. */
#ifndef NN_FILEIO_H
#define NN_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nabla/nb_base.h>

/* A byte buffer that grows as it is written; `failed` is set (and every later
 * put ignored) when memory runs out, so a writer checks once at the end. */
typedef struct nn_writer {
    unsigned char *p;
    size_t at, cap;
    bool failed;
} nn_writer;

void nn_put_u32(nn_writer *w, uint32_t v);
void nn_put_u64(nn_writer *w, uint64_t v);
void nn_put_f32(nn_writer *w, float f);
void nn_put_bytes(nn_writer *w, const void *b, size_t n);
void nn_put_floats(nn_writer *w, const float *f, size_t n);
void nn_put_str(nn_writer *w, const char *s); /* u32 length, bytes */

/* A view of a file's bytes; `len` stops before the trailing CRC. Failures are
 * NB_ERR_FORMAT naming the file and the field ("truncated at layer 2 units"). */
typedef struct nn_reader {
    const unsigned char *p;
    size_t at, len;
    const char *path;
} nn_reader;

nb_status nn_need(nn_reader *r, size_t n, const char *field);
nb_status nn_get_u32(nn_reader *r, const char *field, uint32_t lo, uint32_t hi, uint32_t *v);
nb_status nn_get_u64(nn_reader *r, const char *field, uint64_t *v);
nb_status nn_get_floats(nn_reader *r, const char *field, float *dst, size_t n);
/* A string of at most max bytes (no NUL inside) into buf (max + 1 bytes). */
nb_status nn_get_str(nn_reader *r, const char *field, char *buf, uint32_t max);
uint32_t nn_u32_at(const unsigned char *p);
uint64_t nn_u64_at(const unsigned char *p);

/* zlib's CRC-32 of n bytes (any size). */
uint32_t nn_crc32(const unsigned char *p, size_t n);

/* Read a whole regular file of at least min_len bytes into a new buffer
 * (nb_free it). NB_ERR_IO / NB_ERR_FORMAT / NB_ERR_NOMEM naming the path. */
nb_status nn_read_file(const char *path, size_t min_len, unsigned char **buf, size_t *len);

/* Write n bytes to path atomically: a temporary file in the target's folder is
 * written, flushed, synced and renamed over it, so a failure leaves an old file
 * intact. A symbolic link is followed and its target replaced (the link stays).
 * A path that exists and is not a regular file (a device such as /dev/full, a
 * FIFO, a folder) is refused with NB_ERR_IO and nothing is written. fn names
 * the caller in messages. */
nb_status nn_write_file(const char *path, const void *data, size_t n, const char *fn);

#endif
