/* model.c — Sequential models: layers, Glorot initialisation, seeds, weights,
 * class names, compile (the training graph), summary. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nn_internal.h"

/* The shuffling stream is the model's seed on its own PCG stream selector. */
static void seed_rngs(nb_model *m, uint64_t seed)
{
    m->seed = seed;
    nb_rng_seed(&m->init_rng, seed);
    nb_rng_seed(&m->shuffle_rng, seed);
    m->shuffle_rng.inc = (0x5eed5eedULL << 1u) | 1u;
    nb_rng_u32(&m->shuffle_rng);
}

const char *nb_loss_name(nb_loss loss)
{
    switch (loss) {
    case NB_LOSS_NONE: return "none";
    case NB_SPARSE_CATEGORICAL_CROSSENTROPY: return "sparse_categorical_crossentropy";
    case NB_CATEGORICAL_CROSSENTROPY: return "categorical_crossentropy";
    case NB_MEAN_SQUARED_ERROR: return "mean_squared_error";
    }
    return "?";
}

nb_model *nb_sequential(int input_width)
{
    if (input_width < 1 || input_width > NB_MAX_UNITS) {
        nb_fail(NB_ERR_ARG, "nb_sequential: input width must be 1..%d, got %d", NB_MAX_UNITS, input_width);
        return NULL;
    }
    nb_model *m = nb_calloc(1, sizeof *m);
    if (!m) {
        nb_fail(NB_ERR_NOMEM, "nb_sequential: out of memory");
        return NULL;
    }
    m->input_width = input_width;
    seed_rngs(m, NB_DEFAULT_SEED);
    return m;
}

static void free_class_names(nb_model *m)
{
    for (int i = 0; i < m->n_classes; i++) nb_free(m->class_names[i]);
    nb_free(m->class_names);
    m->class_names = NULL;
    m->n_classes = 0;
}

void nb_model_free(nb_model *m)
{
    if (!m) return;
    nb_graph_free(m->tg);
    nb_graph_free(m->ig);
    nb_optimizer_free(m->opt);
    free_class_names(m);
    nb_free(m->layers);
    nb_free(m->w);
    nb_free(m);
}

/* Glorot-uniform kernel (keras/src/initializers/random_initializers.py):
 * U[-l, l], l = sqrt(6 / (fan_in + fan_out)); zero bias. */
static void init_layer(nb_model *m, const nb_layer *L, float *w)
{
    float limit = (float)sqrt(6.0 / ((double)L->in + (double)L->units));
    size_t nk = (size_t)L->in * (size_t)L->units;
    for (size_t i = 0; i < nk; i++) w[i] = nb_rng_uniform_range(&m->init_rng, -limit, limit);
    memset(w + nk, 0, (size_t)L->units * sizeof *w);
}

static size_t layer_params(const nb_layer *L) { return (size_t)L->in * (size_t)L->units + (size_t)L->units; }

nb_status nb_add_dense(nb_model *m, int units, nb_activation activation)
{
    if (!m) return nb_fail(NB_ERR_ARG, "nb_add_dense: model is NULL");
    if (units < 1 || units > NB_MAX_UNITS)
        return nb_fail(NB_ERR_ARG, "nb_add_dense: units must be 1..%d, got %d", NB_MAX_UNITS, units);
    if ((unsigned)activation > NB_SOFTMAX)
        return nb_fail(NB_ERR_ARG, "nb_add_dense: unknown activation %d", (int)activation);
    if (m->tg) return nb_fail(NB_ERR_STATE, "nb_add_dense: the model is compiled; add every layer before nb_compile");
    if (m->n_layers >= NB_MAX_LAYERS) return nb_fail(NB_ERR_ARG, "nb_add_dense: at most %d layers", NB_MAX_LAYERS);
    nb_layer L = {nb_model_output_width(m), units, activation};
    size_t add = layer_params(&L);
    if (add > ((size_t)1 << 40) || m->n_params + add > ((size_t)1 << 40))
        return nb_fail(NB_ERR_ARG, "nb_add_dense: a %d x %d layer is too large", L.in, units);
    if (m->n_layers == m->cap_layers) {
        int cap = m->cap_layers ? 2 * m->cap_layers : 8;
        nb_layer *p = nb_realloc(m->layers, (size_t)cap * sizeof *p);
        if (!p) return nb_fail(NB_ERR_NOMEM, "nb_add_dense: out of memory");
        m->layers = p;
        m->cap_layers = cap;
    }
    float *w = nb_realloc(m->w, (m->n_params + add) * sizeof *w);
    if (!w) return nb_fail(NB_ERR_NOMEM, "nb_add_dense: out of memory for %zu weights", m->n_params + add);
    m->w = w;
    init_layer(m, &L, m->w + m->n_params);
    m->n_params += add;
    m->layers[m->n_layers++] = L;
    nb_graph_free(m->ig); /* rebuilt at the next predict */
    m->ig = NULL;
    return NB_OK;
}

nb_status nb_model_set_seed(nb_model *m, uint64_t seed)
{
    if (!m) return nb_fail(NB_ERR_ARG, "nb_model_set_seed: model is NULL");
    if (m->tg) return nb_fail(NB_ERR_STATE, "nb_model_set_seed: the model is compiled; set the seed before nb_compile");
    seed_rngs(m, seed);
    size_t at = 0;
    for (int i = 0; i < m->n_layers; i++) {
        init_layer(m, &m->layers[i], m->w + at);
        at += layer_params(&m->layers[i]);
    }
    m->ig_stale = true;
    return NB_OK;
}

int nb_model_input_width(const nb_model *m) { return m ? m->input_width : 0; }
int nb_model_output_width(const nb_model *m)
{
    if (!m) return 0;
    return m->n_layers ? m->layers[m->n_layers - 1].units : m->input_width;
}
int nb_model_layer_count(const nb_model *m) { return m ? m->n_layers : 0; }
int nb_model_layer_units(const nb_model *m, int i) { return m && i >= 0 && i < m->n_layers ? m->layers[i].units : 0; }
nb_activation nb_model_layer_activation(const nb_model *m, int i)
{
    return m && i >= 0 && i < m->n_layers ? m->layers[i].act : NB_LINEAR;
}
size_t nb_model_param_count(const nb_model *m) { return m ? m->n_params : 0; }

nb_status nb_model_get_weights(const nb_model *m, float *dst, size_t n)
{
    if (!m || !dst) return nb_fail(NB_ERR_ARG, "nb_model_get_weights: model or destination NULL");
    if (n != m->n_params) return nb_fail(NB_ERR_ARG, "nb_model_get_weights: the model has %zu weights, not %zu", m->n_params, n);
    if (n) memcpy(dst, m->w, n * sizeof *dst);
    return NB_OK;
}

void nn_weights_to_graph(const nb_model *m, nb_graph *g)
{
    if (g && m->n_params) memcpy(nb_graph_param_data(g), m->w, m->n_params * sizeof *m->w);
}

nb_status nb_model_set_weights(nb_model *m, const float *src, size_t n)
{
    if (!m || !src) return nb_fail(NB_ERR_ARG, "nb_model_set_weights: model or source NULL");
    if (n != m->n_params) return nb_fail(NB_ERR_ARG, "nb_model_set_weights: the model has %zu weights, not %zu", m->n_params, n);
    if (n) memcpy(m->w, src, n * sizeof *src);
    nn_weights_to_graph(m, m->tg);
    m->ig_stale = true;
    return NB_OK;
}

nb_status nb_model_set_class_names(nb_model *m, const char *const *names, int k)
{
    if (!m) return nb_fail(NB_ERR_ARG, "nb_model_set_class_names: model is NULL");
    if (k < 0 || k > 65536 || (k > 0 && !names))
        return nb_fail(NB_ERR_ARG, "nb_model_set_class_names: need 0..65536 names, got %d%s", k, names ? "" : " (names NULL)");
    for (int i = 0; i < k; i++)
        if (!names[i] || strlen(names[i]) > 255)
            return nb_fail(NB_ERR_ARG, "nb_model_set_class_names: name %d is NULL or longer than 255 bytes", i);
    char **copy = k ? nb_calloc((size_t)k, sizeof *copy) : NULL;
    if (k && !copy) return nb_fail(NB_ERR_NOMEM, "nb_model_set_class_names: out of memory");
    for (int i = 0; i < k; i++) {
        size_t len = strlen(names[i]);
        copy[i] = nb_malloc(len + 1);
        if (!copy[i]) {
            for (int j = 0; j < i; j++) nb_free(copy[j]);
            nb_free(copy);
            return nb_fail(NB_ERR_NOMEM, "nb_model_set_class_names: out of memory");
        }
        memcpy(copy[i], names[i], len + 1);
    }
    free_class_names(m);
    m->class_names = copy;
    m->n_classes = k;
    return NB_OK;
}

int nb_model_class_count(const nb_model *m) { return m ? m->n_classes : 0; }
const char *nb_model_class_name(const nb_model *m, int i)
{
    return m && i >= 0 && i < m->n_classes ? m->class_names[i] : NULL;
}

nb_tensor *nn_build_layers(const nb_model *m, nb_graph *g, nb_tensor **x_out)
{
    nb_tensor *h = nb_input(g, NB_F32, 2, (int[]){1, m->input_width});
    *x_out = h;
    for (int i = 0; i < m->n_layers && h; i++) {
        const nb_layer *L = &m->layers[i];
        nb_tensor *w = nb_param(g, 2, (int[]){L->in, L->units});
        nb_tensor *b = nb_param(g, 1, (int[]){L->units});
        h = nb_dense(g, h, w, b, L->act == NB_SOFTMAX ? NB_LINEAR : L->act);
        if (L->act == NB_SOFTMAX) h = nb_softmax(g, h);
    }
    if (h && nb_graph_pack_params(g) != NB_OK) return NULL;
    return h;
}

nb_status nb_compile(nb_model *m, const nb_compile_opts *opts)
{
    nb_optimizer *opt = opts ? opts->optimizer : NULL;
    nb_status s = NB_OK;
    char prev[256];
    snprintf(prev, sizeof prev, "%s", nb_last_error());
    if (!m) s = nb_fail(NB_ERR_ARG, "nb_compile: model is NULL");
    else if (!opts) s = nb_fail(NB_ERR_ARG, "nb_compile: options are NULL");
    else if (!opt) s = nb_fail(NB_ERR_ARG, "nb_compile: optimizer is NULL (did its constructor fail? last error: \"%s\")", prev);
    else if (opts->loss < NB_SPARSE_CATEGORICAL_CROSSENTROPY || opts->loss > NB_MEAN_SQUARED_ERROR)
        s = nb_fail(NB_ERR_ARG, "nb_compile: unknown loss %d", (int)opts->loss);
    else if (m->n_layers == 0) s = nb_fail(NB_ERR_ARG, "nb_compile: the model has no layer; add one with nb_add_dense");
    if (s != NB_OK) {
        if (!m || opt != m->opt) nb_optimizer_free(opt);
        return s;
    }
    nb_graph *g = nb_graph_new();
    nb_tensor *x = NULL, *y = NULL, *out = NULL, *loss = NULL;
    if (g) out = nn_build_layers(m, g, &x);
    if (out) {
        int k = nb_model_output_width(m);
        switch (opts->loss) {
        case NB_SPARSE_CATEGORICAL_CROSSENTROPY:
            y = nb_input(g, NB_I32, 1, (int[]){1});
            loss = nb_sparse_categorical_crossentropy(g, out, y, opts->from_logits);
            break;
        case NB_CATEGORICAL_CROSSENTROPY:
            y = nb_input(g, NB_F32, 2, (int[]){1, k});
            if (y) y->data[0] = 1.0f; /* a valid one-hot row while building */
            loss = nb_categorical_crossentropy(g, out, y, opts->from_logits);
            break;
        default:
            y = nb_input(g, NB_F32, 2, (int[]){1, k});
            loss = nb_mean_squared_error(g, out, y);
            break;
        }
    }
    if (loss) s = nb_optimizer_init(opt, m->n_params);
    if (!loss || s != NB_OK) {
        if (!loss) {
            snprintf(prev, sizeof prev, "%s", g && nb_graph_error(g) ? nb_graph_error(g) : nb_last_error());
            s = nb_fail(!g || strstr(prev, "out of memory") ? NB_ERR_NOMEM : NB_ERR_ARG,
                        "nb_compile: building the training graph failed: %s", prev);
        }
        nb_graph_free(g);
        if (opt != m->opt) nb_optimizer_free(opt);
        return s;
    }
    nb_set_name(x, "x");
    nb_set_name(y, "y");
    nb_set_name(loss, "loss");
    nn_weights_to_graph(m, g);
    nb_graph_free(m->tg);
    if (m->opt != opt) nb_optimizer_free(m->opt);
    nb_optimizer_reset(opt);
    m->tg = g;
    m->tx = x;
    m->ty = y;
    m->tout = out;
    m->tloss = loss;
    m->loss = opts->loss;
    m->from_logits = opts->from_logits;
    m->opt = opt;
    return NB_OK;
}

nb_loss nb_model_loss(const nb_model *m) { return m ? m->loss : NB_LOSS_NONE; }
bool nb_model_from_logits(const nb_model *m) { return m && m->from_logits; }
nb_optimizer *nb_model_optimizer(nb_model *m) { return m ? m->opt : NULL; }

/* ---- summary (after tf-keras's print_summary: 65 columns, splits at 29/55) ---- */

static void rule(FILE *out, char c)
{
    for (int i = 0; i < 65; i++) fputc(c, out);
    fputc('\n', out);
}

/* 101770 -> "101,770" */
static const char *commas(size_t v, char *buf, size_t len)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%zu", v), at = 0;
    for (int i = 0; i < n && (size_t)at + 2 < len; i++) {
        if (i > 0 && (n - i) % 3 == 0) buf[at++] = ',';
        buf[at++] = tmp[i];
    }
    buf[at] = '\0';
    return buf;
}

static void bytes_str(size_t params, char *buf, size_t len)
{
    double b = (double)params * 4.0;
    if (b < 1024) snprintf(buf, len, "%.2f Byte", b);
    else if (b < 1024.0 * 1024) snprintf(buf, len, "%.2f KB", b / 1024);
    else if (b < 1024.0 * 1024 * 1024) snprintf(buf, len, "%.2f MB", b / (1024.0 * 1024));
    else snprintf(buf, len, "%.2f GB", b / (1024.0 * 1024 * 1024));
}

void nb_model_summary(const nb_model *m, FILE *out)
{
    if (!out) return;
    if (!m) {
        fprintf(out, "(no model)\n");
        return;
    }
    fprintf(out, "Model: \"sequential\"\n");
    rule(out, '_');
    fprintf(out, " %-28s%-26s%-10s\n", "Layer (type)", "Output Shape", "Param #");
    rule(out, '=');
    for (int i = 0; i < m->n_layers; i++) {
        const nb_layer *L = &m->layers[i];
        char name[40], shape[40], num[32];
        if (i == 0) snprintf(name, sizeof name, "dense (Dense)");
        else snprintf(name, sizeof name, "dense_%d (Dense)", i);
        snprintf(shape, sizeof shape, "(None, %d)", L->units);
        fprintf(out, " %-28s%-26s%-10s\n", name, shape, commas(layer_params(L), num, sizeof num));
        if (i + 1 < m->n_layers) fprintf(out, "\n");
    }
    rule(out, '=');
    char num[32], b[32];
    bytes_str(m->n_params, b, sizeof b);
    fprintf(out, "Total params: %s (%s)\n", commas(m->n_params, num, sizeof num), b);
    fprintf(out, "Trainable params: %s (%s)\n", num, b);
    fprintf(out, "Non-trainable params: 0 (0.00 Byte)\n");
    rule(out, '_');
}
