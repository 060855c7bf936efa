/* save_v1.c — reading version 1 model files (Sequential of Dense layers), which
 * version 1 of the library wrote; see nn/FORMAT.md. Only read, never written. */
#include <stdio.h>
#include <string.h>

#include "fileio.h"
#include "nn_internal.h"

/* input_width, n_layers and each layer's (units, activation), checked against
 * the bytes left before anything is built, then built as a Sequential model. */
static nb_status get_layers_v1(nn_reader *r, nb_model **out)
{
    uint32_t width, n_layers;
    nb_status s;
    if ((s = nn_get_u32(r, "input_width", 1, NB_MAX_UNITS, &width)) != NB_OK) return s;
    if ((s = nn_get_u32(r, "n_layers", 0, NB_MAX_LAYERS, &n_layers)) != NB_OK) return s;
    size_t n_params = 0, prev = width, body = r->at;
    for (uint32_t i = 0; i < n_layers; i++) {
        uint32_t units, act;
        char field[48];
        snprintf(field, sizeof field, "layer %u units", i);
        if ((s = nn_get_u32(r, field, 1, NB_MAX_UNITS, &units)) != NB_OK) return s;
        snprintf(field, sizeof field, "layer %u activation", i);
        if ((s = nn_get_u32(r, field, 0, NB_SOFTMAX, &act)) != NB_OK) return s;
        n_params += prev * units + units;
        prev = units;
        if (n_params > (r->len - r->at) / 4)
            return nb_fail(NB_ERR_FORMAT, "nb_load: '%s': layers of %zu parameters do not fit in the file", r->path, n_params);
    }
    nb_model *m = nb_sequential((int)width);
    if (!m) return nb_last_status();
    *out = m;
    r->at = body;
    nb_rng saved = m->init_rng; /* the drawn values are overwritten by the file's */
    for (uint32_t i = 0; i < n_layers; i++) {
        uint32_t units = nn_u32_at(r->p + r->at), act = nn_u32_at(r->p + r->at + 4);
        r->at += 8;
        if ((s = nb_add_dense(m, (int)units, (nb_activation)act)) != NB_OK) return s;
    }
    m->init_rng = saved;
    return NB_OK;
}

nb_status nn_parse_v1(nn_reader *r, nb_model **out)
{
    uint32_t loss, logits;
    uint64_t seed, stored;
    nb_status s = get_layers_v1(r, out);
    if (s != NB_OK) return s;
    nb_model *m = *out;
    if ((s = nn_get_u32(r, "loss", 0, NB_MEAN_SQUARED_ERROR, &loss)) != NB_OK) return s;
    if ((s = nn_get_u32(r, "from_logits", 0, 1, &logits)) != NB_OK) return s;
    if ((s = nn_get_class_names(r, m)) != NB_OK) return s;
    if ((s = nn_get_u64(r, "seed", &seed)) != NB_OK) return s;
    if ((s = nn_get_u64(r, "n_params", &stored)) != NB_OK) return s;
    if (stored != m->n_params)
        return nb_fail(NB_ERR_FORMAT, "nb_load: '%s': n_params is %llu but the layers need %zu", r->path,
                       (unsigned long long)stored, m->n_params);
    if ((s = nn_get_floats(r, "weights", m->w, m->n_params)) != NB_OK) return s;
    m->seed = seed;
    nb_rng_seed(&m->init_rng, seed);
    if ((s = nn_get_optimizer(r, m, loss, logits != 0)) != NB_OK) return s;
    if (r->at != r->len)
        return nb_fail(NB_ERR_FORMAT, "nb_load: '%s': %zu unexpected bytes after the last field", r->path, r->len - r->at);
    return NB_OK;
}
