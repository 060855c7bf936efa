/* save.c — nb_save / nb_load: the versioned little-endian format of nn/FORMAT.md,
 * built in memory, CRC-32 (zlib) over everything, written atomically
 * (temp file in the same folder, fflush, fsync, rename). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "nn_internal.h"

#define MAGIC "NABLAMDL"
#define VERSION 1u
#define HEADER_BYTES 20 /* magic, version, file_size */

/* ---- little-endian writer over a buffer sized in advance ---- */

typedef struct writer {
    unsigned char *p;
    size_t at;
} writer;

static void put_u32(writer *w, uint32_t v)
{
    for (int i = 0; i < 4; i++) w->p[w->at++] = (unsigned char)(v >> (8 * i));
}
static void put_u64(writer *w, uint64_t v)
{
    for (int i = 0; i < 8; i++) w->p[w->at++] = (unsigned char)(v >> (8 * i));
}
static void put_f32(writer *w, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    put_u32(w, v);
}
static void put_bytes(writer *w, const void *b, size_t n)
{
    memcpy(w->p + w->at, b, n);
    w->at += n;
}
static void put_floats(writer *w, const float *f, size_t n)
{
    for (size_t i = 0; i < n; i++) put_f32(w, f[i]);
}

static size_t file_bytes(const nb_model *m)
{
    size_t n = HEADER_BYTES + 8 + 8 * (size_t)m->n_layers + 12;
    for (int i = 0; i < m->n_classes; i++) n += 4 + strlen(m->class_names[i]);
    n += 16 + 4 * m->n_params + 4;
    if (m->opt) {
        const nb_optimizer *o = m->opt;
        n += 4 + strlen(o->def->name) + 4 + 4 * (size_t)o->def->n_hparams + 8 + 4 + 8;
        if (o->slots) n += 4 * (size_t)o->n_slots * o->n;
    }
    return n + 4;
}

static void encode(const nb_model *m, writer *w, size_t total)
{
    put_bytes(w, MAGIC, 8);
    put_u32(w, VERSION);
    put_u64(w, total);
    put_u32(w, (uint32_t)m->input_width);
    put_u32(w, (uint32_t)m->n_layers);
    for (int i = 0; i < m->n_layers; i++) {
        put_u32(w, (uint32_t)m->layers[i].units);
        put_u32(w, (uint32_t)m->layers[i].act);
    }
    put_u32(w, (uint32_t)m->loss);
    put_u32(w, m->from_logits ? 1u : 0u);
    put_u32(w, (uint32_t)m->n_classes);
    for (int i = 0; i < m->n_classes; i++) {
        size_t len = strlen(m->class_names[i]);
        put_u32(w, (uint32_t)len);
        put_bytes(w, m->class_names[i], len);
    }
    put_u64(w, m->seed);
    put_u64(w, m->n_params);
    put_floats(w, m->w, m->n_params);
    put_u32(w, m->opt ? 1u : 0u);
    if (m->opt) {
        const nb_optimizer *o = m->opt;
        size_t len = strlen(o->def->name);
        put_u32(w, (uint32_t)len);
        put_bytes(w, o->def->name, len);
        put_u32(w, (uint32_t)o->def->n_hparams);
        put_floats(w, o->hparams, (size_t)o->def->n_hparams);
        put_u64(w, o->iterations);
        put_u32(w, (uint32_t)o->n_slots);
        put_u64(w, o->slots ? o->n : 0);
        if (o->slots) put_floats(w, o->slots, (size_t)o->n_slots * o->n);
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t at = 0; at < w->at;) { /* crc32 takes uInt lengths */
        size_t chunk = w->at - at < (1u << 30) ? w->at - at : (1u << 30);
        crc = crc32(crc, w->p + at, (uInt)chunk);
        at += chunk;
    }
    put_u32(w, (uint32_t)crc);
}

nb_status nb_save(nb_model *m, const char *path)
{
    if (!m || !path) return nb_fail(NB_ERR_ARG, "nb_save: model or path NULL");
    size_t total = file_bytes(m);
    writer w = {nb_malloc(total), 0};
    if (!w.p) return nb_fail(NB_ERR_NOMEM, "nb_save: out of memory for %zu bytes", total);
    encode(m, &w, total);

    size_t plen = strlen(path);
    char *tmp = nb_malloc(plen + 16);
    if (!tmp) {
        nb_free(w.p);
        return nb_fail(NB_ERR_NOMEM, "nb_save: out of memory");
    }
    snprintf(tmp, plen + 16, "%s.tmpXXXXXX", path);
    nb_status s = NB_OK;
    int fd = mkstemp(tmp);
    FILE *f = NULL;
    if (fd < 0) {
        s = nb_fail(NB_ERR_IO, "nb_save: cannot create a temporary file next to '%s': %s", path, strerror(errno));
    } else {
        fchmod(fd, 0644);
        f = fdopen(fd, "wb");
        if (!f) {
            s = nb_fail(NB_ERR_IO, "nb_save: cannot open '%s': %s", tmp, strerror(errno));
            close(fd);
        }
    }
    if (s == NB_OK && (fwrite(w.p, 1, total, f) != total || fflush(f) != 0 || fsync(fileno(f)) != 0))
        s = nb_fail(NB_ERR_IO, "nb_save: writing '%s' failed: %s", tmp, strerror(errno));
    if (f && fclose(f) != 0 && s == NB_OK) s = nb_fail(NB_ERR_IO, "nb_save: closing '%s' failed: %s", tmp, strerror(errno));
    if (s == NB_OK && rename(tmp, path) != 0)
        s = nb_fail(NB_ERR_IO, "nb_save: renaming '%s' to '%s' failed: %s", tmp, path, strerror(errno));
    if (s != NB_OK && fd >= 0) unlink(tmp);
    nb_free(tmp);
    nb_free(w.p);
    return s;
}

/* ---- bounds-checked reader ---- */

typedef struct reader {
    const unsigned char *p;
    size_t at, len;   /* len: bytes before the CRC */
    const char *path;
} reader;

static nb_status need(reader *r, size_t n, const char *field)
{
    if (n > r->len - r->at)
        return nb_fail(NB_ERR_FORMAT, "nb_load: '%s': truncated at %s (needs %zu bytes at offset %zu, %zu left)", r->path,
                       field, n, r->at, r->len - r->at);
    return NB_OK;
}
static uint32_t u32_at(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t u64_at(const unsigned char *p) { return (uint64_t)u32_at(p) | (uint64_t)u32_at(p + 4) << 32; }

static nb_status get_u32(reader *r, const char *field, uint32_t lo, uint32_t hi, uint32_t *v)
{
    nb_status s = need(r, 4, field);
    if (s != NB_OK) return s;
    *v = u32_at(r->p + r->at);
    r->at += 4;
    if (*v < lo || *v > hi)
        return nb_fail(NB_ERR_FORMAT, "nb_load: '%s': %s is %u, expected %u..%u", r->path, field, *v, lo, hi);
    return NB_OK;
}
static nb_status get_u64(reader *r, const char *field, uint64_t *v)
{
    nb_status s = need(r, 8, field);
    if (s != NB_OK) return s;
    *v = u64_at(r->p + r->at);
    r->at += 8;
    return NB_OK;
}
static nb_status get_floats(reader *r, const char *field, float *dst, size_t n)
{
    if (n > (r->len - r->at) / 4) return need(r, (size_t)-1, field);
    for (size_t i = 0; i < n; i++) {
        uint32_t v = u32_at(r->p + r->at + 4 * i);
        memcpy(&dst[i], &v, 4);
    }
    r->at += 4 * n;
    return NB_OK;
}

/* Read the whole file (its real size bounds every allocation). */
static nb_status slurp(const char *path, unsigned char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return nb_fail(NB_ERR_IO, "nb_load: cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return nb_fail(NB_ERR_IO, "nb_load: '%s' is not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    if (n < HEADER_BYTES + 4) {
        fclose(f);
        return nb_fail(NB_ERR_FORMAT, "nb_load: '%s': file too short (%zu bytes) for a model header", path, n);
    }
    *buf = nb_malloc(n);
    if (!*buf) {
        fclose(f);
        return nb_fail(NB_ERR_NOMEM, "nb_load: out of memory for '%s' (%zu bytes)", path, n);
    }
    size_t got = fread(*buf, 1, n, f);
    fclose(f);
    if (got != n) {
        nb_free(*buf);
        *buf = NULL;
        return nb_fail(NB_ERR_IO, "nb_load: reading '%s' failed after %zu of %zu bytes", path, got, n);
    }
    *len = n;
    return NB_OK;
}

/* Parse the body (after the header and CRC checks) into a new model. */
static nb_status parse(reader *r, nb_model **out)
{
    nb_status s;
    uint32_t width, n_layers;
    if ((s = get_u32(r, "input_width", 1, NB_MAX_UNITS, &width)) != NB_OK) return s;
    if ((s = get_u32(r, "n_layers", 0, NB_MAX_LAYERS, &n_layers)) != NB_OK) return s;
    nb_model *m = nb_sequential((int)width);
    if (!m) return NB_ERR_NOMEM;
    *out = m;
    /* check the architecture's size against the file before building it */
    size_t n_params = 0, prev = width, body = r->at;
    for (uint32_t i = 0; i < n_layers; i++) {
        uint32_t units, act;
        char field[48];
        snprintf(field, sizeof field, "layer %u units", i);
        if ((s = get_u32(r, field, 1, NB_MAX_UNITS, &units)) != NB_OK) return s;
        snprintf(field, sizeof field, "layer %u activation", i);
        if ((s = get_u32(r, field, 0, NB_SOFTMAX, &act)) != NB_OK) return s;
        n_params += prev * units + units;
        prev = units;
        if (n_params > (r->len - r->at) / 4)
            return nb_fail(NB_ERR_FORMAT, "nb_load: '%s': layers of %zu parameters do not fit in the file", r->path, n_params);
    }
    r->at = body;
    for (uint32_t i = 0; i < n_layers; i++) {
        uint32_t units = u32_at(r->p + r->at), act = u32_at(r->p + r->at + 4);
        r->at += 8;
        nb_rng saved = m->init_rng;
        if ((s = nb_add_dense(m, (int)units, (nb_activation)act)) != NB_OK) return s;
        m->init_rng = saved; /* the drawn values are overwritten below */
    }
    uint32_t loss, logits, n_names;
    if ((s = get_u32(r, "loss", 0, NB_MEAN_SQUARED_ERROR, &loss)) != NB_OK) return s;
    if ((s = get_u32(r, "from_logits", 0, 1, &logits)) != NB_OK) return s;
    if ((s = get_u32(r, "n_class_names", 0, 65536, &n_names)) != NB_OK) return s;
    if (n_names > 0) {
        if (n_names > (r->len - r->at) / 4) return need(r, (size_t)n_names * 4, "class names");
        char **names = nb_calloc(n_names, sizeof *names);
        if (!names) return nb_fail(NB_ERR_NOMEM, "nb_load: out of memory for class names");
        for (uint32_t i = 0; i < n_names && s == NB_OK; i++) {
            uint32_t len;
            char field[48];
            snprintf(field, sizeof field, "class name %u length", i);
            if ((s = get_u32(r, field, 0, 255, &len)) != NB_OK) break;
            snprintf(field, sizeof field, "class name %u", i);
            if ((s = need(r, len, field)) != NB_OK) break;
            if (memchr(r->p + r->at, 0, len)) {
                s = nb_fail(NB_ERR_FORMAT, "nb_load: '%s': %s contains a NUL byte", r->path, field);
                break;
            }
            names[i] = nb_malloc(len + 1);
            if (!names[i]) {
                s = nb_fail(NB_ERR_NOMEM, "nb_load: out of memory for class names");
                break;
            }
            memcpy(names[i], r->p + r->at, len);
            names[i][len] = '\0';
            r->at += len;
        }
        if (s == NB_OK) s = nb_model_set_class_names(m, (const char *const *)names, (int)n_names);
        for (uint32_t i = 0; i < n_names; i++) nb_free(names[i]);
        nb_free(names);
        if (s != NB_OK) return s;
    }
    uint64_t seed, stored;
    if ((s = get_u64(r, "seed", &seed)) != NB_OK) return s;
    if ((s = get_u64(r, "n_params", &stored)) != NB_OK) return s;
    if (stored != m->n_params)
        return nb_fail(NB_ERR_FORMAT, "nb_load: '%s': n_params is %llu but the layers need %zu", r->path,
                       (unsigned long long)stored, m->n_params);
    if ((s = get_floats(r, "weights", m->w, m->n_params)) != NB_OK) return s;
    m->seed = seed;
    nb_rng_seed(&m->init_rng, seed);
    uint32_t has_opt;
    if ((s = get_u32(r, "has_optimizer", 0, 1, &has_opt)) != NB_OK) return s;
    if ((has_opt != 0) != (loss != 0))
        return nb_fail(NB_ERR_FORMAT, "nb_load: '%s': has_optimizer is %u but loss is %u", r->path, has_opt, loss);
    if (has_opt) {
        uint32_t len, nh, ns;
        char name[32];
        float hp[NB_OPTIM_MAX_HPARAMS];
        uint64_t iters, slot_len;
        if ((s = get_u32(r, "optimizer name length", 1, 31, &len)) != NB_OK) return s;
        if ((s = need(r, len, "optimizer name")) != NB_OK) return s;
        memcpy(name, r->p + r->at, len);
        name[len] = '\0';
        r->at += len;
        if ((s = get_u32(r, "optimizer n_hparams", 1, NB_OPTIM_MAX_HPARAMS, &nh)) != NB_OK) return s;
        if ((s = get_floats(r, "optimizer hparams", hp, nh)) != NB_OK) return s;
        nb_optimizer *opt = nb_optimizer_create(name, hp, (int)nh);
        if (!opt) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s", nb_last_error());
            return nb_fail(NB_ERR_FORMAT, "nb_load: '%s': optimizer: %s", r->path, msg);
        }
        if ((s = get_u64(r, "optimizer iterations", &iters)) == NB_OK &&
            (s = get_u32(r, "optimizer n_slots", 0, NB_OPTIM_MAX_SLOTS, &ns)) == NB_OK &&
            (s = get_u64(r, "optimizer slot_length", &slot_len)) == NB_OK) {
            if ((uint32_t)opt->n_slots != ns)
                s = nb_fail(NB_ERR_FORMAT, "nb_load: '%s': optimizer \"%s\" keeps %d state vectors, the file has %u",
                            r->path, name, opt->n_slots, ns);
            else if (slot_len != 0 && slot_len != m->n_params)
                s = nb_fail(NB_ERR_FORMAT, "nb_load: '%s': optimizer slot_length is %llu, expected 0 or %zu", r->path,
                            (unsigned long long)slot_len, m->n_params);
        }
        if (s != NB_OK) {
            nb_optimizer_free(opt);
            return s;
        }
        if ((s = nb_compile(m, &(nb_compile_opts){.loss = (nb_loss)loss, .from_logits = logits != 0, .optimizer = opt})) != NB_OK)
            return s;
        if (slot_len && ns) {
            if ((s = get_floats(r, "optimizer slots", opt->slots, (size_t)ns * m->n_params)) != NB_OK) return s;
        }
        opt->iterations = iters;
    } else if (logits) {
        m->from_logits = true;
    }
    if (r->at != r->len)
        return nb_fail(NB_ERR_FORMAT, "nb_load: '%s': %zu unexpected bytes after the last field", r->path, r->len - r->at);
    nn_weights_to_graph(m, m->tg);
    return NB_OK;
}

nb_model *nb_load(const char *path)
{
    if (!path) {
        nb_fail(NB_ERR_ARG, "nb_load: path is NULL");
        return NULL;
    }
    unsigned char *buf = NULL;
    size_t len = 0;
    if (slurp(path, &buf, &len) != NB_OK) return NULL;
    nb_status s = NB_OK;
    if (memcmp(buf, MAGIC, 8) != 0) {
        s = nb_fail(NB_ERR_FORMAT, "nb_load: '%s' is not a nabla model (bad magic)", path);
    } else if (u32_at(buf + 8) != VERSION) {
        s = nb_fail(NB_ERR_FORMAT, "nb_load: '%s': unknown format version %u (this build reads %u)", path, u32_at(buf + 8),
                    VERSION);
    } else if (u64_at(buf + 12) != len) {
        s = nb_fail(NB_ERR_FORMAT, "nb_load: '%s': file_size field says %llu bytes but the file has %zu (truncated or extended)",
                    path, (unsigned long long)u64_at(buf + 12), len);
    } else {
        uLong crc = crc32(0L, Z_NULL, 0);
        for (size_t at = 0; at < len - 4;) {
            size_t chunk = len - 4 - at < (1u << 30) ? len - 4 - at : (1u << 30);
            crc = crc32(crc, buf + at, (uInt)chunk);
            at += chunk;
        }
        if ((uint32_t)crc != u32_at(buf + len - 4))
            s = nb_fail(NB_ERR_FORMAT, "nb_load: '%s': CRC-32 mismatch (stored %08x, computed %08x): the file is corrupt",
                        path, u32_at(buf + len - 4), (unsigned)(uint32_t)crc);
    }
    nb_model *m = NULL;
    if (s == NB_OK) {
        reader r = {buf, HEADER_BYTES, len - 4, path};
        s = parse(&r, &m);
        if (s != NB_OK) {
            nb_model_free(m);
            m = NULL;
        }
    }
    nb_free(buf);
    return m;
}
