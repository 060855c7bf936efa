/* layers.c — the layer kinds every model uses (Dense, Flatten, Add) and the
 * table that names all kinds, plus helpers the kinds share.
 *
 * A kind is one table entry: its settings (by name, with ranges, which is what a
 * model file stores), its shape rule, its initialiser and the nodes it builds.
 * Adding a layer kind is adding an entry; saving, loading and the summary follow. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "nn_internal.h"

size_t nn_shape_size(const nn_shape *s)
{
    size_t n = 1;
    for (int i = 0; i < s->ndim; i++) n *= (size_t)s->d[i];
    return n;
}

char *nn_shape_str(const nn_shape *s, char *buf, size_t len)
{
    size_t at = (size_t)snprintf(buf, len, "(None");
    for (int i = 0; i < s->ndim && at < len; i++) at += (size_t)snprintf(buf + at, len - at, ", %d", s->d[i]);
    if (at < len) snprintf(buf + at, len - at, ")");
    return buf;
}

/* keras/src/initializers/random_initializers.py GlorotUniform:
 * U[-l, l], l = sqrt(6 / (fan_in + fan_out)). */
void nn_glorot_uniform(nb_rng *rng, float *w, size_t n, double fan_in, double fan_out)
{
    float limit = (float)sqrt(6.0 / (fan_in + fan_out));
    for (size_t i = 0; i < n; i++) w[i] = nb_rng_uniform_range(rng, -limit, limit);
}

static nb_status add_shape(nb_layer *L, nn_shape *dst, int *count, int max, int ndim, const int *d, const char *what)
{
    if (*count >= max) return nb_fail(NB_ERR_ARG, "%s: too many %s", L->name, what);
    nn_shape *s = &dst[(*count)++];
    s->ndim = ndim;
    memcpy(s->d, d, (size_t)ndim * sizeof *d);
    return NB_OK;
}
nb_status nn_add_param(nb_layer *L, int ndim, const int *d)
{
    return add_shape(L, L->pshape, &L->n_params, NN_MAX_PARAMS, ndim, d, "weights");
}
nb_status nn_add_state(nb_layer *L, int ndim, const int *d)
{
    return add_shape(L, L->sshape, &L->n_states, NN_MAX_STATES, ndim, d, "states");
}

/* ---- Dense: act(x · kernel + bias) over the last axis ---- */

static nb_status dense_infer(nb_layer *L, const nn_shape *in, int n_in, nn_shape *out)
{
    (void)n_in;
    if (in->ndim < 1) return nb_fail(NB_ERR_SHAPE, "%s: Dense needs an input with a feature axis", L->name);
    int fan_in = in->d[in->ndim - 1];
    *out = *in;
    out->d[out->ndim - 1] = L->cfg.units;
    nb_status s = nn_add_param(L, 2, (int[]){fan_in, L->cfg.units});
    if (s == NB_OK && L->cfg.use_bias) s = nn_add_param(L, 1, (int[]){L->cfg.units});
    return s;
}

static void dense_init(const nb_layer *L, nb_rng *rng, float *const *p, float *const *s)
{
    (void)s;
    int fan_in = L->pshape[0].d[0], units = L->cfg.units;
    nn_glorot_uniform(rng, p[0], (size_t)fan_in * (size_t)units, fan_in, units);
    if (L->cfg.use_bias) memset(p[1], 0, (size_t)units * sizeof *p[1]);
}

nb_tensor *nn_dense_any(nb_graph *g, nb_tensor *x, nb_tensor *w, nb_tensor *b, nb_activation act)
{
    if (!x || !w) return nb_dense(g, x, w, b, act);
    /* nb_dense takes (..., in) as rows of one GEMM: no reshape (copy) around it */
    nb_tensor *h = nb_dense(g, x, w, b, act == NB_SOFTMAX ? NB_LINEAR : act);
    return act == NB_SOFTMAX ? nb_softmax(g, h) : h;
}

static nb_tensor *dense_build(nb_graph *g, const nb_layer *L, nb_tensor *const *x, int n_in, nb_tensor *const *p,
                              nb_tensor *const *s)
{
    (void)n_in;
    (void)s;
    return nn_dense_any(g, x[0], p[0], L->cfg.use_bias ? p[1] : NULL, (nb_activation)L->cfg.activation);
}

const nn_kind nn_kind_dense = {
    .name = "dense", .keras = "Dense",
    .fields = {NN_FIELD(units, NN_INT, 1, NB_MAX_UNITS), NN_FIELD(activation, NN_INT, 0, NB_ACTIVATION_COUNT - 1),
               NN_FIELD(use_bias, NN_INT, 0, 1)},
    .n_fields = 3, .min_in = 1, .max_in = 1,
    .infer = dense_infer, .init = dense_init, .build = dense_build,
};

/* ---- Flatten: (B, d1, ..., dn) -> (B, d1 * ... * dn) ---- */

static nb_status flatten_infer(nb_layer *L, const nn_shape *in, int n_in, nn_shape *out)
{
    (void)L;
    (void)n_in;
    out->ndim = 1;
    out->d[0] = (int)nn_shape_size(in);
    return NB_OK;
}

static nb_tensor *flatten_build(nb_graph *g, const nb_layer *L, nb_tensor *const *x, int n_in, nb_tensor *const *p,
                                nb_tensor *const *s)
{
    (void)L, (void)n_in, (void)p, (void)s;
    return nb_flatten(g, x[0]);
}

static const nn_kind kind_flatten = {
    .name = "flatten", .keras = "Flatten", .n_fields = 0, .min_in = 1, .max_in = 1,
    .infer = flatten_infer, .build = flatten_build,
};

/* ---- Add: the sum of 2..8 inputs of one shape (residual connections) ---- */

static nb_status add_infer(nb_layer *L, const nn_shape *in, int n_in, nn_shape *out)
{
    for (int i = 1; i < n_in; i++)
        if (in[i].ndim != in[0].ndim || memcmp(in[i].d, in[0].d, (size_t)in[0].ndim * sizeof(int)) != 0) {
            char a[64], b[64];
            return nb_fail(NB_ERR_SHAPE, "%s: Add needs inputs of one shape, got %s and %s", L->name,
                           nn_shape_str(&in[0], a, sizeof a), nn_shape_str(&in[i], b, sizeof b));
        }
    *out = in[0];
    return NB_OK;
}

static nb_tensor *add_build(nb_graph *g, const nb_layer *L, nb_tensor *const *x, int n_in, nb_tensor *const *p,
                            nb_tensor *const *s)
{
    (void)L, (void)p, (void)s;
    nb_tensor *h = x[0];
    for (int i = 1; i < n_in; i++) h = nb_add(g, h, x[i]);
    return h;
}

static const nn_kind kind_add = {
    .name = "add", .keras = "Add", .n_fields = 0, .min_in = 2, .max_in = NN_MAX_CALL_IN,
    .infer = add_infer, .build = add_build,
};

/* ---- the table ---- */

static const nn_kind *const kinds[] = {
    &nn_kind_dense, &kind_flatten, &kind_add,
    /* layers_conv.c */
    &nn_kind_conv2d, &nn_kind_max_pool2d, &nn_kind_avg_pool2d, &nn_kind_global_avg_pool2d, &nn_kind_batch_norm,
    &nn_kind_dropout,
    /* layers_seq.c */
    &nn_kind_embedding, &nn_kind_position_embedding, &nn_kind_layer_norm, &nn_kind_attention, &nn_kind_last_position,
};

const nn_kind *nn_kind_find(const char *name)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i]->name, name) == 0) return kinds[i];
    return NULL;
}

/* ---- constructors ---- */

nb_layer *nb_layer_dense(nb_model *m, int units, nb_activation activation)
{
    return nn_layer_new(m, &nn_kind_dense, &(nn_config){.units = units, .activation = (int)activation, .use_bias = 1},
                        "nb_layer_dense");
}

nb_layer *nb_layer_flatten(nb_model *m) { return nn_layer_new(m, &kind_flatten, &(nn_config){0}, "nb_layer_flatten"); }

nb_layer *nb_layer_add(nb_model *m) { return nn_layer_new(m, &kind_add, &(nn_config){0}, "nb_layer_add"); }

void nn_uniform(nb_rng *rng, float *w, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) w[i] = nb_rng_uniform_range(rng, lo, hi);
}
