/* layers_seq.c — layers for sequences of tokens: Embedding, a learned
 * PositionEmbedding, LayerNormalization, causal self-attention
 * (MultiHeadAttention) and LastPosition (the last step of a sequence). */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "nn_internal.h"

/* ---- Embedding(input_dim, output_dim): int32 ids (T) -> (T, output_dim) ---- */

static nb_status embedding_infer(nb_layer *L, const nn_shape *in, int n_in, nn_shape *out)
{
    (void)n_in;
    if (in->ndim + 1 >= NB_MAX_DIMS) return nb_fail(NB_ERR_SHAPE, "%s: input has too many axes", L->name);
    *out = *in;
    out->d[out->ndim++] = L->cfg.output_dim;
    return nn_add_param(L, 2, (int[]){L->cfg.input_dim, L->cfg.output_dim});
}

/* Keras's Embedding initialiser: uniform in [-0.05, 0.05]. */
static void embedding_init(const nb_layer *L, nb_rng *rng, float *const *p, float *const *s)
{
    (void)s;
    nn_uniform(rng, p[0], nn_shape_size(&L->pshape[0]), -0.05f, 0.05f);
}

static nb_tensor *embedding_build(nb_graph *g, const nb_layer *L, nb_tensor *const *x, int n_in, nb_tensor *const *p,
                                  nb_tensor *const *s)
{
    (void)L, (void)n_in, (void)s;
    return nb_gather(g, p[0], x[0]);
}

const nn_kind nn_kind_embedding = {
    .name = "embedding", .keras = "Embedding",
    .fields = {NN_FIELD(input_dim, NN_INT, 1, NB_MAX_UNITS), NN_FIELD(output_dim, NN_INT, 1, NB_MAX_UNITS)},
    .n_fields = 2, .min_in = 1, .max_in = 1, .int_input = 1,
    .infer = embedding_infer, .init = embedding_init, .build = embedding_build,
};

/* ---- PositionEmbedding: (T, D) + a learned (T, D) table ---- */

static nb_status position_infer(nb_layer *L, const nn_shape *in, int n_in, nn_shape *out)
{
    (void)n_in;
    if (in->ndim != 2) return nb_fail(NB_ERR_SHAPE, "%s: PositionEmbedding needs (None, time, width)", L->name);
    *out = *in;
    return nn_add_param(L, 2, in->d);
}

/* keras_nlp's PositionEmbedding initialiser: Glorot-uniform over (T, D). */
static void position_init(const nb_layer *L, nb_rng *rng, float *const *p, float *const *s)
{
    (void)s;
    const int *d = L->pshape[0].d;
    nn_glorot_uniform(rng, p[0], nn_shape_size(&L->pshape[0]), d[0], d[1]);
}

static nb_tensor *position_build(nb_graph *g, const nb_layer *L, nb_tensor *const *x, int n_in, nb_tensor *const *p,
                                 nb_tensor *const *s)
{
    (void)L, (void)n_in, (void)s;
    return nb_add(g, x[0], p[0]); /* broadcast over the batch */
}

const nn_kind nn_kind_position_embedding = {
    .name = "position_embedding", .keras = "PositionEmbedding", .n_fields = 0, .min_in = 1, .max_in = 1,
    .infer = position_infer, .init = position_init, .build = position_build,
};

/* ---- LayerNormalization over the last axis ---- */

static nb_status layer_norm_infer(nb_layer *L, const nn_shape *in, int n_in, nn_shape *out)
{
    (void)n_in;
    int d = in->d[in->ndim - 1];
    *out = *in;
    nb_status s = nn_add_param(L, 1, &d);
    return s == NB_OK ? nn_add_param(L, 1, &d) : s;
}

static void layer_norm_init(const nb_layer *L, nb_rng *rng, float *const *p, float *const *s)
{
    (void)rng, (void)s;
    for (int i = 0; i < L->pshape[0].d[0]; i++) p[0][i] = 1.0f, p[1][i] = 0.0f;
}

static nb_tensor *layer_norm_build(nb_graph *g, const nb_layer *L, nb_tensor *const *x, int n_in, nb_tensor *const *p,
                                   nb_tensor *const *s)
{
    (void)n_in, (void)s;
    return nb_layer_norm(g, x[0], p[0], p[1], L->cfg.epsilon);
}

const nn_kind nn_kind_layer_norm = {
    .name = "layer_normalization", .keras = "LayerNormalization", .fields = {NN_FIELD(epsilon, NN_FLOAT, 1e-12, 1)},
    .n_fields = 1, .min_in = 1, .max_in = 1,
    .infer = layer_norm_infer, .init = layer_norm_init, .build = layer_norm_build,
};

/* ---- MultiHeadAttention(heads, key_dim, causal), self-attention ----
 * x (T, D): q, k, v = x Wq + bq, x Wk + bk, x Wv + bv, each (T, heads * key_dim)
 * split into heads; per head softmax(q kᵀ / sqrt(key_dim)) v (causal: position i
 * sees j <= i); heads joined and projected back: · Wo + bo -> (T, D). Weights in
 * Keras's order: query, key, value, output, each kernel then bias. */

static nb_status attention_infer(nb_layer *L, const nn_shape *in, int n_in, nn_shape *out)
{
    (void)n_in;
    if (in->ndim != 2) return nb_fail(NB_ERR_SHAPE, "%s: MultiHeadAttention needs (None, time, width)", L->name);
    int d = in->d[1], hk = L->cfg.heads * L->cfg.key_dim;
    nb_status s = NB_OK;
    for (int i = 0; i < 3 && s == NB_OK; i++) {
        s = nn_add_param(L, 2, (int[]){d, hk});
        if (s == NB_OK) s = nn_add_param(L, 1, &hk);
    }
    if (s == NB_OK) s = nn_add_param(L, 2, (int[]){hk, d});
    if (s == NB_OK) s = nn_add_param(L, 1, &d);
    *out = *in;
    return s;
}

static void attention_init(const nb_layer *L, nb_rng *rng, float *const *p, float *const *s)
{
    (void)s;
    for (int i = 0; i < 8; i += 2) {
        const int *d = L->pshape[i].d;
        nn_glorot_uniform(rng, p[i], nn_shape_size(&L->pshape[i]), d[0], d[1]);
        memset(p[i + 1], 0, nn_shape_size(&L->pshape[i + 1]) * sizeof *p[i + 1]);
    }
}

/* (B, T, H * k) -> (B, H, T, k) */
static nb_tensor *split_heads(nb_graph *g, nb_tensor *x, int heads, int key_dim)
{
    int t = x ? x->shape[1] : 1;
    x = nb_reshape(g, x, 4, (int[]){-1, t, heads, key_dim});
    return nb_transpose(g, x, (int[]){0, 2, 1, 3});
}

static nb_tensor *attention_build(nb_graph *g, const nb_layer *L, nb_tensor *const *x, int n_in, nb_tensor *const *p,
                                  nb_tensor *const *s)
{
    (void)n_in, (void)s;
    int h = L->cfg.heads, k = L->cfg.key_dim, t = x[0]->shape[1];
    nb_tensor *q = split_heads(g, nn_dense_any(g, x[0], p[0], p[1], NB_LINEAR), h, k);
    nb_tensor *kk = split_heads(g, nn_dense_any(g, x[0], p[2], p[3], NB_LINEAR), h, k);
    nb_tensor *v = split_heads(g, nn_dense_any(g, x[0], p[4], p[5], NB_LINEAR), h, k);
    nb_tensor *scores = nb_scale(g, nb_batch_matmul(g, q, kk, false, true), 1.0f / sqrtf((float)k));
    nb_tensor *w = L->cfg.causal ? nb_causal_softmax(g, scores) : nb_softmax(g, scores);
    nb_tensor *o = nb_transpose(g, nb_batch_matmul(g, w, v, false, false), (int[]){0, 2, 1, 3});
    o = nb_reshape(g, o, 3, (int[]){-1, t, h * k});
    return nn_dense_any(g, o, p[6], p[7], NB_LINEAR);
}

const nn_kind nn_kind_attention = {
    .name = "multi_head_attention", .keras = "MultiHeadAttention",
    .fields = {NN_FIELD(heads, NN_INT, 1, 1024), NN_FIELD(key_dim, NN_INT, 1, 1 << 16), NN_FIELD(causal, NN_INT, 0, 1)},
    .n_fields = 3, .min_in = 1, .max_in = 1,
    .infer = attention_infer, .init = attention_init, .build = attention_build,
};

/* ---- LastPosition: (T, D) -> (D), the last step (a next-token head reads it) ---- */

static nb_status last_infer(nb_layer *L, const nn_shape *in, int n_in, nn_shape *out)
{
    (void)n_in;
    if (in->ndim != 2) return nb_fail(NB_ERR_SHAPE, "%s: LastPosition needs (None, time, width)", L->name);
    *out = (nn_shape){.ndim = 1, .d = {in->d[1]}};
    return NB_OK;
}

static nb_tensor *last_build(nb_graph *g, const nb_layer *L, nb_tensor *const *x, int n_in, nb_tensor *const *p,
                             nb_tensor *const *s)
{
    (void)L, (void)n_in, (void)p, (void)s;
    int t = x[0]->shape[1], d = x[0]->shape[2];
    nb_tensor *y = nb_slice(g, x[0], (int[]){0, t - 1, 0}, (int[]){INT32_MAX, t, d}, (int[]){1, 1, 1});
    return nb_reshape(g, y, 2, (int[]){-1, d});
}

const nn_kind nn_kind_last_position = {
    .name = "last_position", .keras = "LastPosition", .n_fields = 0, .min_in = 1, .max_in = 1,
    .infer = last_infer, .build = last_build,
};

/* ---- constructors ---- */

nb_layer *nb_layer_embedding(nb_model *m, int input_dim, int output_dim)
{
    nn_config c = {.input_dim = input_dim, .output_dim = output_dim};
    return nn_layer_new(m, &nn_kind_embedding, &c, "nb_layer_embedding");
}

nb_layer *nb_layer_position_embedding(nb_model *m)
{
    return nn_layer_new(m, &nn_kind_position_embedding, &(nn_config){0}, "nb_layer_position_embedding");
}

nb_layer *nb_layer_layer_norm(nb_model *m, float epsilon)
{
    nn_config c = {.epsilon = epsilon > 0 ? epsilon : NB_KERAS_LAYER_NORM_EPSILON};
    return nn_layer_new(m, &nn_kind_layer_norm, &c, "nb_layer_layer_norm");
}

nb_layer *nb_layer_attention(nb_model *m, int heads, int key_dim, bool causal)
{
    nn_config c = {.heads = heads, .key_dim = key_dim, .causal = causal ? 1 : 0};
    return nn_layer_new(m, &nn_kind_attention, &c, "nb_layer_attention");
}

nb_layer *nb_layer_last_position(nb_model *m)
{
    return nn_layer_new(m, &nn_kind_last_position, &(nn_config){0}, "nb_layer_last_position");
}
