/* idx.c — IDX reader and writer (see idx.h). zlib's gzread reads gzip and plain
 * files alike, so one code path serves "x-idx3-ubyte.gz" and "x-idx3-ubyte". */
#include "idx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Open path for reading (gzip or plain). Refuses folders and other non-files. */
static nb_status open_idx(const char *path, gzFile *out)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return nb_fail(NB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return nb_fail(NB_ERR_IO, "%s: not a regular file", path);
    }
    gzFile f = gzdopen(fd, "rb");
    if (!f) {
        close(fd);
        return nb_fail(NB_ERR_NOMEM, "%s: cannot start reading (out of memory)", path);
    }
    *out = f;
    return NB_OK;
}

/* Read up to len bytes into buf, setting *got; a short count means the data
 * ended. Fails on a read error or corrupt gzip data. */
static nb_status read_some(gzFile f, const char *path, uint8_t *buf, size_t len, size_t *got)
{
    *got = 0;
    while (*got < len) {
        size_t chunk = len - *got > (1u << 30) ? (1u << 30) : len - *got;
        int r = gzread(f, buf + *got, (unsigned)chunk);
        if (r < 0) {
            int zerr = 0;
            const char *msg = gzerror(f, &zerr);
            if (zerr == Z_ERRNO) return nb_fail(NB_ERR_IO, "%s: read error: %s", path, strerror(errno));
            if (zerr == Z_BUF_ERROR) return nb_fail(NB_ERR_FORMAT, "%s: truncated gzip data (%s)", path, msg);
            return nb_fail(NB_ERR_FORMAT, "%s: corrupt gzip data (%s)", path, msg ? msg : "zlib error");
        }
        if (r == 0) break;
        *got += (size_t)r;
    }
    return NB_OK;
}

/* Count the bytes left in f (after what the header promised) into *rest. */
static nb_status count_rest(gzFile f, const char *path, size_t *rest)
{
    uint8_t buf[1 << 14];
    size_t r;
    *rest = 0;
    do {
        nb_status s = read_some(f, path, buf, sizeof buf, &r);
        if (s) return s;
        *rest += r;
    } while (r == sizeof buf);
    return NB_OK;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Read the header: the magic (must be `want`) and ndim big-endian sizes. */
static nb_status read_header(gzFile f, const char *path, uint32_t want, int ndim, uint32_t *dims)
{
    uint8_t h[16];
    size_t need = 4 + 4 * (size_t)ndim, got, more = 0;
    nb_status s = read_some(f, path, h, 4, &got);
    if (s) return s;
    if (got == 4 && be32(h) == want) {
        if ((s = read_some(f, path, h + 4, need - 4, &more))) return s;
        got += more;
    }
    if (got < 4 || (be32(h) == want && got < need))
        return nb_fail(NB_ERR_FORMAT, "%s: too short for an IDX header (%zu bytes, need %zu)", path, got, need);
    uint32_t magic = be32(h);
    if (magic != want) {
        const char *kind = want == IDX_MAGIC_IMAGES ? "image" : "label";
        const char *hint = magic == IDX_MAGIC_IMAGES   ? " (this is an image file)"
                           : magic == IDX_MAGIC_LABELS ? " (this is a label file)"
                                                       : "";
        return nb_fail(NB_ERR_FORMAT, "%s: bad magic 0x%08x, expected 0x%08x for an IDX %s file%s", path, magic,
                       want, kind, hint);
    }
    for (int i = 0; i < ndim; i++) dims[i] = be32(h + 4 + 4 * i);
    return NB_OK;
}

/* Read exactly len payload bytes into a new buffer, then check nothing follows.
 * `what` describes the payload for messages ("60000 images of 28x28"). */
static nb_status read_payload(gzFile f, const char *path, size_t len, const char *what, uint8_t **out)
{
    /* Grow the buffer as data arrives, so a header claiming far more than the
     * file holds fails at the truncation check, not by reserving it all. */
    size_t cap = len < (1u << 24) ? len : (1u << 24), got = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) return nb_fail(NB_ERR_NOMEM, "%s: out of memory for %zu bytes", path, cap);
    for (;;) {
        size_t r;
        nb_status s = read_some(f, path, buf + got, cap - got, &r);
        if (s) {
            free(buf);
            return s;
        }
        got += r;
        if (got < cap) break; /* the data ended early */
        if (cap == len) break;
        size_t grow = cap * 2 < len ? cap * 2 : len;
        uint8_t *more = realloc(buf, grow);
        if (!more) {
            free(buf);
            return nb_fail(NB_ERR_NOMEM, "%s: out of memory for %zu bytes", path, grow);
        }
        buf = more;
        cap = grow;
    }
    if (got < len) {
        free(buf);
        return nb_fail(NB_ERR_FORMAT, "%s: truncated: %s need %zu bytes after the header, the file holds %zu",
                       path, what, len, got);
    }
    size_t extra;
    nb_status s = count_rest(f, path, &extra);
    if (!s && extra)
        s = nb_fail(NB_ERR_FORMAT, "%s: %zu bytes of trailing data after %s (the header and the file length disagree)",
                    path, extra, what);
    if (s) {
        free(buf);
        return s;
    }
    *out = buf;
    return NB_OK;
}

nb_status idx_read_images(const char *path, uint8_t **pixels, int *n, int *rows, int *cols)
{
    if (!path || !pixels || !n || !rows || !cols) return nb_fail(NB_ERR_ARG, "idx_read_images: NULL argument");
    gzFile f;
    nb_status s = open_idx(path, &f);
    if (s) return s;
    uint32_t d[3] = {0};
    s = read_header(f, path, IDX_MAGIC_IMAGES, 3, d);
    if (!s && (d[0] < 1 || d[0] > IDX_MAX_COUNT))
        s = nb_fail(NB_ERR_FORMAT, "%s: image count %u is outside [1, %d]", path, d[0], IDX_MAX_COUNT);
    if (!s && (d[1] < 1 || d[1] > IDX_MAX_SIDE || d[2] < 1 || d[2] > IDX_MAX_SIDE))
        s = nb_fail(NB_ERR_FORMAT, "%s: image size %ux%u is outside 1x1 .. %dx%d", path, d[1], d[2], IDX_MAX_SIDE,
                    IDX_MAX_SIDE);
    uint8_t *buf = NULL;
    if (!s) {
        char what[96];
        snprintf(what, sizeof what, "%u images of %ux%u", d[0], d[1], d[2]);
        s = read_payload(f, path, (size_t)d[0] * d[1] * d[2], what, &buf);
    }
    gzclose(f);
    if (s) return s;
    *pixels = buf;
    *n = (int)d[0];
    *rows = (int)d[1];
    *cols = (int)d[2];
    return NB_OK;
}

nb_status idx_read_labels(const char *path, uint8_t **labels, int *n)
{
    if (!path || !labels || !n) return nb_fail(NB_ERR_ARG, "idx_read_labels: NULL argument");
    gzFile f;
    nb_status s = open_idx(path, &f);
    if (s) return s;
    uint32_t d[1] = {0};
    s = read_header(f, path, IDX_MAGIC_LABELS, 1, d);
    if (!s && (d[0] < 1 || d[0] > IDX_MAX_COUNT))
        s = nb_fail(NB_ERR_FORMAT, "%s: label count %u is outside [1, %d]", path, d[0], IDX_MAX_COUNT);
    uint8_t *buf = NULL;
    if (!s) {
        char what[64];
        snprintf(what, sizeof what, "%u labels", d[0]);
        s = read_payload(f, path, d[0], what, &buf);
    }
    gzclose(f);
    if (s) return s;
    for (uint32_t i = 0; i < d[0]; i++) {
        if (buf[i] >= IDX_CLASSES) {
            nb_status e = nb_fail(NB_ERR_LABEL, "%s: label %u at index %u is outside [0, %d]", path, buf[i], i,
                                  IDX_CLASSES - 1);
            free(buf);
            return e;
        }
    }
    *labels = buf;
    *n = (int)d[0];
    return NB_OK;
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

nb_status idx_find(const char *dir, const char *stem, char *out, size_t len)
{
    if (!dir || !stem || !out || len == 0) return nb_fail(NB_ERR_ARG, "idx_find: NULL argument");
    char alt[256];
    snprintf(alt, sizeof alt, "%s", stem);
    char *dash = strstr(alt, "-idx");
    if (dash) *dash = '.';
    const char *names[4] = {stem, stem, alt, alt};
    const char *ext[4] = {".gz", "", "", ".gz"};
    for (int i = 0; i < 4; i++) {
        int w = snprintf(out, len, "%s/%s%s", dir, names[i], ext[i]);
        if (w > 0 && (size_t)w < len && is_file(out)) return NB_OK;
    }
    out[0] = '\0';
    return nb_fail(NB_ERR_IO, "%s: no %s or %s.gz in this folder", dir, stem, stem);
}

nb_status mnist_load(const char *dir, const char *prefix, mnist_set *set)
{
    if (!dir || !prefix || !set) return nb_fail(NB_ERR_ARG, "mnist_load: NULL argument");
    memset(set, 0, sizeof *set);
    char stem[128], ipath[4096], lpath[4096];
    snprintf(stem, sizeof stem, "%s-images-idx3-ubyte", prefix);
    nb_status s = idx_find(dir, stem, ipath, sizeof ipath);
    if (s) return s;
    snprintf(stem, sizeof stem, "%s-labels-idx1-ubyte", prefix);
    if ((s = idx_find(dir, stem, lpath, sizeof lpath))) return s;
    int ni = 0, nl = 0;
    if ((s = idx_read_images(ipath, &set->images, &ni, &set->rows, &set->cols))) return s;
    if ((s = idx_read_labels(lpath, &set->labels, &nl))) {
        mnist_set_free(set);
        return s;
    }
    if (ni != nl) {
        mnist_set_free(set);
        return nb_fail(NB_ERR_FORMAT, "image and label counts differ: %s holds %d images, %s holds %d labels", ipath,
                       ni, lpath, nl);
    }
    set->n = ni;
    return NB_OK;
}

void mnist_set_free(mnist_set *set)
{
    if (!set) return;
    free(set->images);
    free(set->labels);
    memset(set, 0, sizeof *set);
}

nb_status idx_write(const char *path, bool gz, int ndim, const int *dims, const uint8_t *data)
{
    if (!path || !dims || !data || ndim < 1 || ndim > 3) return nb_fail(NB_ERR_ARG, "idx_write: bad argument");
    uint8_t h[16] = {0, 0, 0x08, (uint8_t)ndim};
    size_t total = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 1) return nb_fail(NB_ERR_ARG, "idx_write: dimension %d is %d", i, dims[i]);
        uint32_t v = (uint32_t)dims[i];
        h[4 + 4 * i] = (uint8_t)(v >> 24);
        h[5 + 4 * i] = (uint8_t)(v >> 16);
        h[6 + 4 * i] = (uint8_t)(v >> 8);
        h[7 + 4 * i] = (uint8_t)v;
        total *= (size_t)dims[i];
    }
    size_t hlen = 4 + 4 * (size_t)ndim;
    bool ok;
    if (gz) {
        gzFile f = gzopen(path, "wb");
        if (!f) return nb_fail(NB_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        ok = gzwrite(f, h, (unsigned)hlen) == (int)hlen;
        for (size_t at = 0; ok && at < total;) {
            unsigned chunk = total - at > (1u << 30) ? (1u << 30) : (unsigned)(total - at);
            ok = gzwrite(f, data + at, chunk) == (int)chunk;
            at += chunk;
        }
        ok = gzclose(f) == Z_OK && ok;
    } else {
        FILE *f = fopen(path, "wb");
        if (!f) return nb_fail(NB_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        ok = fwrite(h, 1, hlen, f) == hlen && fwrite(data, 1, total, f) == total;
        ok = fclose(f) == 0 && ok;
    }
    return ok ? NB_OK : nb_fail(NB_ERR_IO, "%s: write failed", path);
}
