/* fileio.c — growable writer, bounds-checked reader, whole-file read, and the
 * atomic write that never replaces what is not a regular file. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "fileio.h"

/* ---- writer ---- */

static bool reserve(nn_writer *w, size_t n)
{
    if (w->failed) return false;
    if (w->at + n <= w->cap) return true;
    size_t cap = w->cap ? w->cap : 256;
    while (cap < w->at + n) cap *= 2;
    unsigned char *p = nb_realloc(w->p, cap);
    if (!p) return !(w->failed = true);
    w->p = p;
    w->cap = cap;
    return true;
}

void nn_put_bytes(nn_writer *w, const void *b, size_t n)
{
    if (n && reserve(w, n)) {
        memcpy(w->p + w->at, b, n);
        w->at += n;
    }
}
void nn_put_u32(nn_writer *w, uint32_t v)
{
    unsigned char b[4];
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
    nn_put_bytes(w, b, 4);
}
void nn_put_u64(nn_writer *w, uint64_t v)
{
    nn_put_u32(w, (uint32_t)v);
    nn_put_u32(w, (uint32_t)(v >> 32));
}
void nn_put_f32(nn_writer *w, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    nn_put_u32(w, v);
}
void nn_put_floats(nn_writer *w, const float *f, size_t n)
{
    if (!reserve(w, 4 * n)) return;
    for (size_t i = 0; i < n; i++) nn_put_f32(w, f[i]);
}
void nn_put_str(nn_writer *w, const char *s)
{
    size_t n = strlen(s);
    nn_put_u32(w, (uint32_t)n);
    nn_put_bytes(w, s, n);
}

/* ---- reader ---- */

uint32_t nn_u32_at(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
uint64_t nn_u64_at(const unsigned char *p) { return (uint64_t)nn_u32_at(p) | (uint64_t)nn_u32_at(p + 4) << 32; }

nb_status nn_need(nn_reader *r, size_t n, const char *field)
{
    if (n > r->len - r->at)
        return nb_fail(NB_ERR_FORMAT, "nb_load: '%s': truncated at %s (needs %zu bytes at offset %zu, %zu left)", r->path,
                       field, n, r->at, r->len - r->at);
    return NB_OK;
}

nb_status nn_get_u32(nn_reader *r, const char *field, uint32_t lo, uint32_t hi, uint32_t *v)
{
    nb_status s = nn_need(r, 4, field);
    if (s != NB_OK) return s;
    *v = nn_u32_at(r->p + r->at);
    r->at += 4;
    if (*v < lo || *v > hi)
        return nb_fail(NB_ERR_FORMAT, "nb_load: '%s': %s is %u, expected %u..%u", r->path, field, *v, lo, hi);
    return NB_OK;
}

nb_status nn_get_u64(nn_reader *r, const char *field, uint64_t *v)
{
    nb_status s = nn_need(r, 8, field);
    if (s != NB_OK) return s;
    *v = nn_u64_at(r->p + r->at);
    r->at += 8;
    return NB_OK;
}

nb_status nn_get_floats(nn_reader *r, const char *field, float *dst, size_t n)
{
    if (n > (r->len - r->at) / 4) return nn_need(r, (size_t)-1, field);
    for (size_t i = 0; i < n; i++) {
        uint32_t v = nn_u32_at(r->p + r->at + 4 * i);
        memcpy(&dst[i], &v, 4);
    }
    r->at += 4 * n;
    return NB_OK;
}

nb_status nn_get_str(nn_reader *r, const char *field, char *buf, uint32_t max)
{
    uint32_t len;
    nb_status s = nn_get_u32(r, field, 0, max, &len);
    if (s == NB_OK) s = nn_need(r, len, field);
    if (s != NB_OK) return s;
    if (memchr(r->p + r->at, 0, len)) return nb_fail(NB_ERR_FORMAT, "nb_load: '%s': %s contains a NUL byte", r->path, field);
    memcpy(buf, r->p + r->at, len);
    buf[len] = '\0';
    r->at += len;
    return NB_OK;
}

uint32_t nn_crc32(const unsigned char *p, size_t n)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t at = 0; at < n;) { /* crc32 takes uInt lengths */
        size_t chunk = n - at < (1u << 30) ? n - at : (1u << 30);
        crc = crc32(crc, p + at, (uInt)chunk);
        at += chunk;
    }
    return (uint32_t)crc;
}

/* ---- whole files ---- */

nb_status nn_read_file(const char *path, size_t min_len, unsigned char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return nb_fail(NB_ERR_IO, "nb_load: cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    nb_status s = NB_OK;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) s = nb_fail(NB_ERR_IO, "nb_load: '%s' is not a regular file", path);
    else if ((size_t)st.st_size < min_len)
        s = nb_fail(NB_ERR_FORMAT, "nb_load: '%s': file too short (%zu bytes) for a model header", path, (size_t)st.st_size);
    else if (!(*buf = nb_malloc((size_t)st.st_size)))
        s = nb_fail(NB_ERR_NOMEM, "nb_load: out of memory for '%s' (%zu bytes)", path, (size_t)st.st_size);
    if (s == NB_OK) {
        size_t got = fread(*buf, 1, (size_t)st.st_size, f);
        if (got != (size_t)st.st_size) {
            nb_free(*buf);
            *buf = NULL;
            s = nb_fail(NB_ERR_IO, "nb_load: reading '%s' failed after %zu of %zu bytes", path, got, (size_t)st.st_size);
        }
        *len = got;
    }
    fclose(f);
    return s;
}

/* Where to write for `path`: the path itself, or the final target of a chain of
 * symbolic links (resolved by the system, or by hand for a dangling link). A
 * target that exists must be a regular file. Returns a new string (nb_free). */
static nb_status resolve_target(const char *path, char **out, mode_t *mode, const char *fn)
{
    struct stat st;
    char *target = NULL;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        char *real = realpath(path, NULL);
        if (!real) return nb_fail(NB_ERR_IO, "%s: '%s' is a symbolic link whose target cannot be resolved: %s", fn, path,
                                  strerror(errno));
        target = nb_malloc(strlen(real) + 1);
        if (target) strcpy(target, real);
        free(real);
    } else {
        target = nb_malloc(strlen(path) + 1);
        if (target) strcpy(target, path);
    }
    if (!target) return nb_fail(NB_ERR_NOMEM, "%s: out of memory", fn);
    *mode = 0644;
    if (stat(target, &st) == 0) {
        if (!S_ISREG(st.st_mode)) {
            const char *what = S_ISDIR(st.st_mode) ? "a folder" : S_ISCHR(st.st_mode) ? "a character device"
                             : S_ISBLK(st.st_mode) ? "a block device" : S_ISFIFO(st.st_mode) ? "a FIFO" : "not a regular file";
            nb_status s = nb_fail(NB_ERR_IO, "%s: '%s' exists and is %s; refusing to replace it (nothing written)", fn,
                                  path, what);
            nb_free(target);
            return s;
        }
        *mode = st.st_mode & 07777;
    }
    *out = target;
    return NB_OK;
}

/* Write all n bytes to the open temporary file and make them durable. */
static nb_status write_synced(int fd, const char *tmp, const unsigned char *p, size_t n, const char *fn)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return nb_fail(NB_ERR_IO, "%s: writing '%s' failed: %s", fn, tmp, k < 0 ? strerror(errno) : "no progress");
        p += k;
        n -= (size_t)k;
    }
    if (fsync(fd) != 0) return nb_fail(NB_ERR_IO, "%s: syncing '%s' failed: %s", fn, tmp, strerror(errno));
    return NB_OK;
}

nb_status nn_write_file(const char *path, const void *data, size_t n, const char *fn)
{
    char *target = NULL;
    mode_t mode;
    nb_status s = resolve_target(path, &target, &mode, fn);
    if (s != NB_OK) return s;
    size_t tlen = strlen(target) + 16;
    char *tmp = nb_malloc(tlen);
    if (!tmp) {
        nb_free(target);
        return nb_fail(NB_ERR_NOMEM, "%s: out of memory", fn);
    }
    snprintf(tmp, tlen, "%s.tmpXXXXXX", target);
    int fd = mkstemp(tmp);
    if (fd < 0) s = nb_fail(NB_ERR_IO, "%s: cannot create a temporary file next to '%s': %s", fn, path, strerror(errno));
    if (s == NB_OK) {
        if (fchmod(fd, mode) != 0) (void)0; /* keep mkstemp's 0600 when the mode cannot be set */
        s = write_synced(fd, tmp, data, n, fn);
        if (close(fd) != 0 && s == NB_OK) s = nb_fail(NB_ERR_IO, "%s: closing '%s' failed: %s", fn, tmp, strerror(errno));
        if (s == NB_OK && rename(tmp, target) != 0)
            s = nb_fail(NB_ERR_IO, "%s: renaming '%s' to '%s' failed: %s", fn, tmp, path, strerror(errno));
        if (s != NB_OK) unlink(tmp);
    }
    nb_free(tmp);
    nb_free(target);
    return s;
}
