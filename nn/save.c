/* save.c — nb_save / nb_load: the versioned little-endian format of nn/FORMAT.md.
 *
 * Version 2 describes a model as its inputs, its layers (by kind name, with
 * their settings by name: the kind table says which) and its nodes (every
 * layer call and what it was called on); loading replays those calls through
 * the public building functions, so every check they make applies to files too,
 * and a new layer kind needs no code here. Version 1 files (Sequential of Dense)
 * still load (save_v1.c). */
#include <stdio.h>
#include <string.h>

#include "fileio.h"
#include "nn_internal.h"

#define MAGIC "NABLAMDL"
#define VERSION 2u
#define HEADER_BYTES 20 /* magic, version, file_size */
#define NAME_MAX_BYTES 31

/* ---- writing ---- */

static void put_layer(nn_writer *w, const nb_layer *L)
{
    const nn_kind *k = L->kind;
    nn_put_str(w, k->name);
    nn_put_str(w, L->name);
    nn_put_u32(w, (uint32_t)k->n_fields);
    for (int i = 0; i < k->n_fields; i++) {
        const nn_field *f = &k->fields[i];
        uint32_t bits;
        memcpy(&bits, (const char *)&L->cfg + f->offset, 4); /* an int or a float, as the field's type says */
        nn_put_str(w, f->name);
        nn_put_u32(w, bits);
    }
}

static void put_node(nn_writer *w, const nn_node *n)
{
    nn_put_u32(w, (uint32_t)(n->layer + 1)); /* 0: a model input */
    if (n->layer < 0) {
        nn_put_u32(w, (uint32_t)n->dtype);
        nn_put_u32(w, (uint32_t)n->shape.ndim);
        for (int i = 0; i < n->shape.ndim; i++) nn_put_u32(w, (uint32_t)n->shape.d[i]);
        return;
    }
    nn_put_u32(w, (uint32_t)n->n_in);
    for (int i = 0; i < n->n_in; i++) nn_put_u32(w, (uint32_t)n->in[i]);
}

void nn_put_optimizer(nn_writer *w, const nb_optimizer *o)
{
    nn_put_u32(w, o ? 1u : 0u);
    if (!o) return;
    nn_put_str(w, o->def->name);
    nn_put_u32(w, (uint32_t)o->def->n_hparams);
    nn_put_floats(w, o->hparams, (size_t)o->def->n_hparams);
    nn_put_u64(w, o->iterations);
    nn_put_u32(w, (uint32_t)o->n_slots);
    nn_put_u64(w, o->slots ? o->n : 0);
    if (o->slots) nn_put_floats(w, o->slots, (size_t)o->n_slots * o->n);
}

static void encode(const nb_model *m, nn_writer *w)
{
    nn_put_bytes(w, MAGIC, 8);
    nn_put_u32(w, VERSION);
    nn_put_u64(w, 0); /* file_size, filled in below */
    nn_put_u32(w, m->sequential ? 1u : 0u);
    nn_put_u32(w, (uint32_t)m->n_layers);
    for (int i = 0; i < m->n_layers; i++) put_layer(w, m->layers[i]);
    nn_put_u32(w, (uint32_t)m->n_nodes);
    for (int i = 0; i < m->n_nodes; i++) put_node(w, &m->nodes[i]);
    nn_put_u32(w, (uint32_t)(nn_output_node(m) - m->nodes));
    nn_put_u32(w, (uint32_t)m->loss);
    nn_put_u32(w, m->from_logits ? 1u : 0u);
    nn_put_u32(w, (uint32_t)m->n_classes);
    for (int i = 0; i < m->n_classes; i++) nn_put_str(w, m->class_names[i]);
    nn_put_u64(w, m->seed);
    nn_put_u64(w, m->n_params);
    nn_put_floats(w, m->w, m->n_params);
    nn_put_u64(w, m->n_state);
    nn_put_floats(w, m->state, m->n_state);
    nn_put_optimizer(w, m->opt);
    if (w->failed) return;
    uint64_t total = w->at + 4;
    for (int i = 0; i < 8; i++) w->p[12 + i] = (unsigned char)(total >> (8 * i));
    nn_put_u32(w, nn_crc32(w->p, w->at));
}

nb_status nb_save(nb_model *m, const char *path)
{
    if (!m || !path) return nb_fail(NB_ERR_ARG, "nb_save: model or path NULL");
    if (m->n_nodes == 0) return nb_fail(NB_ERR_ARG, "nb_save: the model has no input");
    nn_writer w = {0};
    encode(m, &w);
    nb_status s = w.failed ? nb_fail(NB_ERR_NOMEM, "nb_save: out of memory for the file's %zu bytes", w.at)
                           : nn_write_file(path, w.p, w.at, "nb_save");
    nb_free(w.p);
    return s;
}

/* ---- reading ---- */

/* Wrap the building functions' message as a format error naming the file. */
static nb_status bad(nn_reader *r, const char *what)
{
    char msg[400];
    snprintf(msg, sizeof msg, "%s", nb_last_error());
    if (nb_last_status() == NB_ERR_NOMEM) return nb_fail(NB_ERR_NOMEM, "nb_load: '%s': %s: %s", r->path, what, msg);
    return nb_fail(NB_ERR_FORMAT, "nb_load: '%s': %s: %s", r->path, what, msg);
}

/* One layer: its kind, name and every field the kind names, in any order. */
static nb_status get_layer(nn_reader *r, nb_model *m, uint32_t i)
{
    char kind[NAME_MAX_BYTES + 1], name[NAME_MAX_BYTES + 1], field[64];
    uint32_t n_fields;
    nb_status s;
    snprintf(field, sizeof field, "layer %u kind", i);
    if ((s = nn_get_str(r, field, kind, NAME_MAX_BYTES)) != NB_OK) return s;
    const nn_kind *k = nn_kind_find(kind);
    if (!k) return nb_fail(NB_ERR_FORMAT, "nb_load: '%s': layer %u has an unknown kind \"%s\"", r->path, i, kind);
    snprintf(field, sizeof field, "layer %u name", i);
    if ((s = nn_get_str(r, field, name, NAME_MAX_BYTES)) != NB_OK) return s;
    snprintf(field, sizeof field, "layer %u field count", i);
    if ((s = nn_get_u32(r, field, (uint32_t)k->n_fields, (uint32_t)k->n_fields, &n_fields)) != NB_OK) return s;
    nn_config cfg = {0};
    int seen = 0;
    for (uint32_t j = 0; j < n_fields; j++) {
        char fname[NAME_MAX_BYTES + 1];
        uint32_t bits;
        snprintf(field, sizeof field, "layer %u field %u", i, j);
        if ((s = nn_get_str(r, field, fname, NAME_MAX_BYTES)) != NB_OK || (s = nn_get_u32(r, field, 0, UINT32_MAX, &bits)) != NB_OK)
            return s;
        int f = 0;
        while (f < k->n_fields && strcmp(k->fields[f].name, fname) != 0) f++;
        if (f == k->n_fields || (seen & (1 << f)))
            return nb_fail(NB_ERR_FORMAT, "nb_load: '%s': layer %u (%s) has an unknown or repeated field \"%s\"", r->path, i,
                           kind, fname);
        seen |= 1 << f;
        memcpy((char *)&cfg + k->fields[f].offset, &bits, 4);
    }
    snprintf(field, sizeof field, "layer %u (%s)", i, kind);
    nb_layer *L = nn_layer_new(m, k, &cfg, field);
    if (!L) return bad(r, "layer settings");
    snprintf(L->name, sizeof L->name, "%s", name);
    return NB_OK;
}

/* One node: a model input (dtype, shape) or a layer call (its inputs). */
static nb_status get_node(nn_reader *r, nb_model *m, uint32_t i)
{
    char field[64];
    uint32_t layer, a, b;
    nb_status s;
    snprintf(field, sizeof field, "node %u", i);
    if ((s = nn_get_u32(r, field, 0, (uint32_t)m->n_layers, &layer)) != NB_OK) return s;
    if (layer == 0) {
        int shape[NB_MAX_DIMS];
        if ((s = nn_get_u32(r, field, 0, 1, &a)) != NB_OK || (s = nn_get_u32(r, field, 1, NB_MAX_DIMS - 1, &b)) != NB_OK)
            return s;
        for (uint32_t d = 0; d < b; d++) {
            uint32_t v;
            if ((s = nn_get_u32(r, field, 1, NB_MAX_UNITS, &v)) != NB_OK) return s;
            shape[d] = (int)v;
        }
        return nb_model_input(m, (nb_dtype)a, (int)b, shape) < 0 ? bad(r, field) : NB_OK;
    }
    nb_sym in[NN_MAX_CALL_IN];
    if ((s = nn_get_u32(r, field, 1, NN_MAX_CALL_IN, &a)) != NB_OK) return s;
    for (uint32_t j = 0; j < a; j++) {
        if ((s = nn_get_u32(r, field, 0, i ? i - 1 : 0, &b)) != NB_OK) return s;
        in[j] = (nb_sym)b;
    }
    return nb_call_n(m->layers[layer - 1], (int)a, in) < 0 ? bad(r, field) : NB_OK;
}

/* Architecture: layers, nodes, output. */
static nb_status get_architecture(nn_reader *r, nb_model *m)
{
    uint32_t seq, n_layers, n_nodes, out;
    nb_status s;
    if ((s = nn_get_u32(r, "sequential", 0, 1, &seq)) != NB_OK) return s;
    if ((s = nn_get_u32(r, "n_layers", 0, NB_MAX_LAYERS, &n_layers)) != NB_OK) return s;
    for (uint32_t i = 0; i < n_layers; i++)
        if ((s = get_layer(r, m, i)) != NB_OK) return s;
    if ((s = nn_get_u32(r, "n_nodes", 1, 1u << 20, &n_nodes)) != NB_OK) return s;
    nb_rng saved = m->init_rng; /* replaying the calls draws weights that the file's replace */
    for (uint32_t i = 0; i < n_nodes; i++)
        if ((s = get_node(r, m, i)) != NB_OK) return s;
    m->init_rng = saved;
    if ((s = nn_get_u32(r, "output node", 0, n_nodes - 1, &out)) != NB_OK) return s;
    if (m->n_layers && nb_model_set_output(m, (nb_sym)out) != NB_OK) return bad(r, "output node");
    m->sequential = seq != 0;
    return NB_OK;
}

nb_status nn_get_class_names(nn_reader *r, nb_model *m)
{
    uint32_t n;
    nb_status s = nn_get_u32(r, "n_class_names", 0, 65536, &n);
    if (s != NB_OK || n == 0) return s;
    if (n > (r->len - r->at) / 4) return nn_need(r, (size_t)n * 4, "class names");
    char **names = nb_calloc(n, sizeof *names);
    if (!names) return nb_fail(NB_ERR_NOMEM, "nb_load: out of memory for class names");
    for (uint32_t i = 0; i < n && s == NB_OK; i++) {
        char field[48];
        snprintf(field, sizeof field, "class name %u length", i);
        if (!(names[i] = nb_malloc(256))) s = nb_fail(NB_ERR_NOMEM, "nb_load: out of memory for class names");
        else s = nn_get_str(r, field, names[i], 255);
    }
    if (s == NB_OK) s = nb_model_set_class_names(m, (const char *const *)names, (int)n);
    for (uint32_t i = 0; i < n; i++) nb_free(names[i]);
    nb_free(names);
    return s;
}

/* The optimizer's kind and hyperparameters: a new optimizer, or NULL with a
 * message. */
static nb_optimizer *get_optimizer_kind(nn_reader *r)
{
    uint32_t nh;
    char name[32];
    float hp[NB_OPTIM_MAX_HPARAMS];
    if (nn_get_str(r, "optimizer name length", name, 31) != NB_OK) return NULL;
    if (!name[0]) return nb_fail(NB_ERR_FORMAT, "nb_load: '%s': optimizer name length is 0, expected 1..31", r->path), NULL;
    if (nn_get_u32(r, "optimizer n_hparams", 1, NB_OPTIM_MAX_HPARAMS, &nh) != NB_OK ||
        nn_get_floats(r, "optimizer hparams", hp, nh) != NB_OK)
        return NULL;
    nb_optimizer *opt = nb_optimizer_create(name, hp, (int)nh);
    if (!opt) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", nb_last_error());
        nb_fail(NB_ERR_FORMAT, "nb_load: '%s': optimizer: %s", r->path, msg);
    }
    return opt;
}

nb_status nn_get_optimizer(nn_reader *r, nb_model *m, uint32_t loss, bool from_logits)
{
    uint32_t has_opt, ns;
    uint64_t iters, slot_len;
    nb_status s = nn_get_u32(r, "has_optimizer", 0, 1, &has_opt);
    if (s != NB_OK) return s;
    if ((has_opt != 0) != (loss != 0))
        return nb_fail(NB_ERR_FORMAT, "nb_load: '%s': has_optimizer is %u but loss is %u", r->path, has_opt, loss);
    m->from_logits = from_logits;
    if (!has_opt) return NB_OK;
    nb_optimizer *opt = get_optimizer_kind(r);
    if (!opt) return nb_last_status();
    if ((s = nn_get_u64(r, "optimizer iterations", &iters)) == NB_OK &&
        (s = nn_get_u32(r, "optimizer n_slots", 0, NB_OPTIM_MAX_SLOTS, &ns)) == NB_OK &&
        (s = nn_get_u64(r, "optimizer slot_length", &slot_len)) == NB_OK) {
        if ((uint32_t)opt->n_slots != ns)
            s = nb_fail(NB_ERR_FORMAT, "nb_load: '%s': optimizer \"%s\" keeps %d state vectors, the file has %u", r->path,
                        opt->def->name, opt->n_slots, ns);
        else if (slot_len != 0 && slot_len != m->n_params)
            s = nb_fail(NB_ERR_FORMAT, "nb_load: '%s': optimizer slot_length is %llu, expected 0 or %zu", r->path,
                        (unsigned long long)slot_len, m->n_params);
    }
    if (s != NB_OK) {
        nb_optimizer_free(opt);
        return s;
    }
    nb_compile_opts co = {.loss = (nb_loss)loss, .from_logits = from_logits, .optimizer = opt};
    if ((s = nb_compile(m, &co)) != NB_OK) return bad(r, "compiling");
    if (slot_len && ns && (s = nn_get_floats(r, "optimizer slots", opt->slots, (size_t)ns * m->n_params)) != NB_OK) return s;
    opt->iterations = iters;
    return NB_OK;
}

/* A block of n floats the architecture fixed, read from the file. */
static nb_status get_block(nn_reader *r, const char *field, float *dst, size_t n)
{
    uint64_t stored;
    nb_status s = nn_get_u64(r, field, &stored);
    if (s != NB_OK) return s;
    if (stored != n)
        return nb_fail(NB_ERR_FORMAT, "nb_load: '%s': %s is %llu but the layers need %zu", r->path, field,
                       (unsigned long long)stored, n);
    return nn_get_floats(r, field, dst, n);
}

static nb_status parse_v2(nn_reader *r, nb_model **out)
{
    nb_model *m = nn_model_alloc("nb_load");
    if (!m) return NB_ERR_NOMEM;
    *out = m;
    uint32_t loss, logits;
    uint64_t seed;
    nb_status s = get_architecture(r, m);
    if (s == NB_OK) s = nn_get_u32(r, "loss", 0, NB_MEAN_SQUARED_ERROR, &loss);
    if (s == NB_OK) s = nn_get_u32(r, "from_logits", 0, 1, &logits);
    if (s == NB_OK) s = nn_get_class_names(r, m);
    if (s == NB_OK) s = nn_get_u64(r, "seed", &seed);
    if (s == NB_OK) s = get_block(r, "n_params", m->w, m->n_params);
    if (s == NB_OK) s = get_block(r, "n_state", m->state, m->n_state);
    if (s == NB_OK) s = nn_get_optimizer(r, m, loss, logits != 0);
    if (s != NB_OK) return s;
    m->seed = seed;
    nb_rng_seed(&m->init_rng, seed);
    if (r->at != r->len)
        return nb_fail(NB_ERR_FORMAT, "nb_load: '%s': %zu unexpected bytes after the last field", r->path, r->len - r->at);
    return NB_OK;
}

/* Magic, version, size and CRC; the version in *version. */
static nb_status check_header(const unsigned char *buf, size_t len, const char *path, uint32_t *version)
{
    *version = nn_u32_at(buf + 8);
    if (memcmp(buf, MAGIC, 8) != 0) return nb_fail(NB_ERR_FORMAT, "nb_load: '%s' is not a nabla model (bad magic)", path);
    if (*version < 1 || *version > VERSION)
        return nb_fail(NB_ERR_FORMAT, "nb_load: '%s': unknown format version %u (this build reads 1..%u)", path, *version,
                       VERSION);
    if (nn_u64_at(buf + 12) != len)
        return nb_fail(NB_ERR_FORMAT, "nb_load: '%s': file_size field says %llu bytes but the file has %zu (truncated or extended)",
                       path, (unsigned long long)nn_u64_at(buf + 12), len);
    uint32_t crc = nn_crc32(buf, len - 4);
    if (crc != nn_u32_at(buf + len - 4))
        return nb_fail(NB_ERR_FORMAT, "nb_load: '%s': CRC-32 mismatch (stored %08x, computed %08x): the file is corrupt",
                       path, nn_u32_at(buf + len - 4), (unsigned)crc);
    return NB_OK;
}

nb_model *nb_load(const char *path)
{
    if (!path) return nb_fail(NB_ERR_ARG, "nb_load: path is NULL"), NULL;
    unsigned char *buf = NULL;
    size_t len = 0;
    uint32_t version;
    if (nn_read_file(path, HEADER_BYTES + 4, &buf, &len) != NB_OK) return NULL;
    nb_status s = check_header(buf, len, path, &version);
    nb_model *m = NULL;
    if (s == NB_OK) {
        nn_reader r = {buf, HEADER_BYTES, len - 4, path};
        s = version == 1 ? nn_parse_v1(&r, &m) : parse_v2(&r, &m);
        if (s != NB_OK) {
            nb_model_free(m);
            m = NULL;
        }
    }
    nb_free(buf);
    return m;
}
