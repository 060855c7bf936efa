/* layers_conv.c — the convolutional network's layers (NHWC, Keras's
 * channels_last): Conv2D, MaxPooling2D, AveragePooling2D,
 * GlobalAveragePooling2D, BatchNormalization and Dropout. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "nn_internal.h"

/* Output size of one spatial axis (the rule nb_conv2d and the pools use). */
static int out_size(int in, int k, int stride, int padding)
{
    return padding == NB_PAD_SAME ? (in + stride - 1) / stride : in < k ? 0 : (in - k) / stride + 1;
}

static nb_status need_image(const nb_layer *L, const nn_shape *in)
{
    if (in->ndim == 3) return NB_OK;
    char s[64];
    return nb_fail(NB_ERR_SHAPE, "%s: %s needs images (None, height, width, channels), got %s", L->name, L->kind->keras,
                   nn_shape_str(in, s, sizeof s));
}

/* (H, W, C) -> (oh, ow, c) for a window kh x kw; NB_ERR_SHAPE when it does not fit. */
static nb_status window_out(const nb_layer *L, const nn_shape *in, int kh, int kw, int c, nn_shape *out)
{
    const nn_config *k = &L->cfg;
    int oh = out_size(in->d[0], kh, k->stride_h, k->padding), ow = out_size(in->d[1], kw, k->stride_w, k->padding);
    if (oh < 1 || ow < 1) {
        char s[64];
        return nb_fail(NB_ERR_SHAPE, "%s: a %dx%d window does not fit %s with \"valid\" padding", L->name, kh, kw,
                       nn_shape_str(in, s, sizeof s));
    }
    *out = (nn_shape){.ndim = 3, .d = {oh, ow, c}};
    return NB_OK;
}

/* ---- Conv2D(filters, (kh, kw), strides, padding, activation) ---- */

static nb_status conv_infer(nb_layer *L, const nn_shape *in, int n_in, nn_shape *out)
{
    (void)n_in;
    const nn_config *k = &L->cfg;
    nb_status s = need_image(L, in);
    if (s == NB_OK) s = window_out(L, in, k->kernel_h, k->kernel_w, k->filters, out);
    if (s == NB_OK) s = nn_add_param(L, 4, (int[]){k->kernel_h, k->kernel_w, in->d[2], k->filters});
    if (s == NB_OK && k->use_bias) s = nn_add_param(L, 1, (int[]){k->filters});
    return s;
}

/* Keras's GlorotUniform for a (kh, kw, in, out) kernel: fans are in and out
 * times the receptive field kh * kw. */
static void conv_init(const nb_layer *L, nb_rng *rng, float *const *p, float *const *s)
{
    (void)s;
    const int *d = L->pshape[0].d;
    double field = (double)d[0] * d[1];
    nn_glorot_uniform(rng, p[0], nn_shape_size(&L->pshape[0]), field * d[2], field * d[3]);
    if (L->cfg.use_bias) memset(p[1], 0, (size_t)d[3] * sizeof *p[1]);
}

static nb_tensor *conv_build(nb_graph *g, const nb_layer *L, nb_tensor *const *x, int n_in, nb_tensor *const *p,
                             nb_tensor *const *s)
{
    (void)n_in, (void)s;
    const nn_config *k = &L->cfg;
    nb_tensor *b = k->use_bias ? p[1] : NULL;
    if (k->activation == NB_RELU) /* one fused node */
        return nb_conv2d_relu(g, x[0], p[0], b, k->stride_h, k->stride_w, (nb_padding)k->padding, 1, 1);
    nb_tensor *y = nb_conv2d(g, x[0], p[0], b, k->stride_h, k->stride_w, (nb_padding)k->padding, 1, 1);
    return nb_activate(g, y, (nb_activation)k->activation);
}

#define WINDOW_FIELDS(kh, kw)                                                                                     \
    NN_FIELD(kh, NN_INT, 1, 4096), NN_FIELD(kw, NN_INT, 1, 4096), NN_FIELD(stride_h, NN_INT, 1, 4096),             \
        NN_FIELD(stride_w, NN_INT, 1, 4096), NN_FIELD(padding, NN_INT, 0, 1)

const nn_kind nn_kind_conv2d = {
    .name = "conv2d", .keras = "Conv2D",
    .fields = {NN_FIELD(filters, NN_INT, 1, 1 << 16), WINDOW_FIELDS(kernel_h, kernel_w),
               NN_FIELD(activation, NN_INT, 0, NB_ACTIVATION_COUNT - 1), NN_FIELD(use_bias, NN_INT, 0, 1)},
    .n_fields = 8, .min_in = 1, .max_in = 1,
    .infer = conv_infer, .init = conv_init, .build = conv_build,
};

/* ---- MaxPooling2D, AveragePooling2D ---- */

static nb_status pool_infer(nb_layer *L, const nn_shape *in, int n_in, nn_shape *out)
{
    (void)n_in;
    nb_status s = need_image(L, in);
    return s == NB_OK ? window_out(L, in, L->cfg.pool_h, L->cfg.pool_w, in->d[2], out) : s;
}

static nb_tensor *max_pool_build(nb_graph *g, const nb_layer *L, nb_tensor *const *x, int n_in, nb_tensor *const *p,
                                 nb_tensor *const *s)
{
    (void)n_in, (void)p, (void)s;
    const nn_config *k = &L->cfg;
    return nb_max_pool2d(g, x[0], k->pool_h, k->pool_w, k->stride_h, k->stride_w, (nb_padding)k->padding);
}

static nb_tensor *avg_pool_build(nb_graph *g, const nb_layer *L, nb_tensor *const *x, int n_in, nb_tensor *const *p,
                                 nb_tensor *const *s)
{
    (void)n_in, (void)p, (void)s;
    const nn_config *k = &L->cfg;
    return nb_avg_pool2d(g, x[0], k->pool_h, k->pool_w, k->stride_h, k->stride_w, (nb_padding)k->padding);
}

bool nn_conv_pool_fuses(const nb_layer *conv, const nb_layer *pool)
{
    return conv->kind == &nn_kind_conv2d && conv->cfg.activation == NB_RELU && pool->kind == &nn_kind_max_pool2d;
}

nb_tensor *nn_conv_pool_build(nb_graph *g, const nb_layer *conv, const nb_layer *pool, nb_tensor *x,
                              nb_tensor *const *p)
{
    const nn_config *k = &conv->cfg, *q = &pool->cfg;
    nb_pool_window w = {q->pool_h, q->pool_w, q->stride_h, q->stride_w, (nb_padding)q->padding};
    return nb_conv2d_relu_max_pool2d(g, x, p[0], k->use_bias ? p[1] : NULL, k->stride_h, k->stride_w,
                                     (nb_padding)k->padding, w);
}

const nn_kind nn_kind_max_pool2d = {
    .name = "max_pooling2d", .keras = "MaxPooling2D", .fields = {WINDOW_FIELDS(pool_h, pool_w)},
    .n_fields = 5, .min_in = 1, .max_in = 1, .infer = pool_infer, .build = max_pool_build,
};

const nn_kind nn_kind_avg_pool2d = {
    .name = "average_pooling2d", .keras = "AveragePooling2D", .fields = {WINDOW_FIELDS(pool_h, pool_w)},
    .n_fields = 5, .min_in = 1, .max_in = 1, .infer = pool_infer, .build = avg_pool_build,
};

/* ---- GlobalAveragePooling2D: (H, W, C) -> (C) ---- */

static nb_status gap_infer(nb_layer *L, const nn_shape *in, int n_in, nn_shape *out)
{
    (void)n_in;
    nb_status s = need_image(L, in);
    if (s == NB_OK) *out = (nn_shape){.ndim = 1, .d = {in->d[2]}};
    return s;
}

static nb_tensor *gap_build(nb_graph *g, const nb_layer *L, nb_tensor *const *x, int n_in, nb_tensor *const *p,
                            nb_tensor *const *s)
{
    (void)L, (void)n_in, (void)p, (void)s;
    return nb_global_avg_pool2d(g, x[0]);
}

const nn_kind nn_kind_global_avg_pool2d = {
    .name = "global_average_pooling2d", .keras = "GlobalAveragePooling2D", .n_fields = 0, .min_in = 1, .max_in = 1,
    .infer = gap_infer, .build = gap_build,
};

/* ---- BatchNormalization over the last axis ---- */

static nb_status bn_infer(nb_layer *L, const nn_shape *in, int n_in, nn_shape *out)
{
    (void)n_in;
    int c = in->d[in->ndim - 1];
    *out = *in;
    nb_status s = nn_add_param(L, 1, &c); /* gamma */
    if (s == NB_OK) s = nn_add_param(L, 1, &c); /* beta */
    if (s == NB_OK) s = nn_add_state(L, 1, &c); /* moving mean */
    if (s == NB_OK) s = nn_add_state(L, 1, &c); /* moving variance */
    return s;
}

/* Keras: gamma 1, beta 0, moving mean 0, moving variance 1. */
static void bn_init(const nb_layer *L, nb_rng *rng, float *const *p, float *const *s)
{
    (void)rng;
    int c = L->pshape[0].d[0];
    for (int i = 0; i < c; i++) {
        p[0][i] = 1.0f;
        p[1][i] = 0.0f;
        s[0][i] = 0.0f;
        s[1][i] = 1.0f;
    }
}

static nb_tensor *bn_build(nb_graph *g, const nb_layer *L, nb_tensor *const *x, int n_in, nb_tensor *const *p,
                           nb_tensor *const *s)
{
    (void)n_in;
    return nb_batch_norm(g, x[0], p[0], p[1], s[0], s[1], L->cfg.momentum, L->cfg.epsilon);
}

const nn_kind nn_kind_batch_norm = {
    .name = "batch_normalization", .keras = "BatchNormalization",
    .fields = {NN_FIELD(momentum, NN_FLOAT, 0, 1), NN_FIELD(epsilon, NN_FLOAT, 1e-12, 1)},
    .n_fields = 2, .min_in = 1, .max_in = 1,
    .infer = bn_infer, .init = bn_init, .build = bn_build,
};

/* ---- Dropout(rate): inverted dropout in training mode, identity otherwise ---- */

static nb_status same_infer(nb_layer *L, const nn_shape *in, int n_in, nn_shape *out)
{
    (void)L, (void)n_in;
    *out = *in;
    return NB_OK;
}

static nb_tensor *dropout_build(nb_graph *g, const nb_layer *L, nb_tensor *const *x, int n_in, nb_tensor *const *p,
                                nb_tensor *const *s)
{
    (void)n_in, (void)p, (void)s;
    return nb_dropout(g, x[0], L->cfg.rate);
}

const nn_kind nn_kind_dropout = {
    .name = "dropout", .keras = "Dropout", .fields = {NN_FIELD(rate, NN_FLOAT, 0, 0.999999)},
    .n_fields = 1, .min_in = 1, .max_in = 1, .infer = same_infer, .build = dropout_build,
};

/* ---- constructors ---- */

nb_layer *nb_layer_conv2d(nb_model *m, int filters, int kernel_h, int kernel_w, int stride, nb_padding padding,
                          nb_activation activation)
{
    nn_config c = {.filters = filters, .kernel_h = kernel_h, .kernel_w = kernel_w, .stride_h = stride,
                   .stride_w = stride, .padding = (int)padding, .activation = (int)activation, .use_bias = 1};
    return nn_layer_new(m, &nn_kind_conv2d, &c, "nb_layer_conv2d");
}

/* A square pool's settings; stride 0 means the pool size (Keras's default). */
static nn_config pool_config(int pool, int stride, nb_padding padding)
{
    int st = stride ? stride : pool;
    return (nn_config){.pool_h = pool, .pool_w = pool, .stride_h = st, .stride_w = st, .padding = (int)padding};
}

nb_layer *nb_layer_max_pool2d(nb_model *m, int pool, int stride, nb_padding padding)
{
    nn_config c = pool_config(pool, stride, padding);
    return nn_layer_new(m, &nn_kind_max_pool2d, &c, "nb_layer_max_pool2d");
}

nb_layer *nb_layer_avg_pool2d(nb_model *m, int pool, int stride, nb_padding padding)
{
    nn_config c = pool_config(pool, stride, padding);
    return nn_layer_new(m, &nn_kind_avg_pool2d, &c, "nb_layer_avg_pool2d");
}

nb_layer *nb_layer_global_avg_pool2d(nb_model *m)
{
    return nn_layer_new(m, &nn_kind_global_avg_pool2d, &(nn_config){0}, "nb_layer_global_avg_pool2d");
}

nb_layer *nb_layer_batch_norm(nb_model *m)
{
    nn_config c = {.momentum = NB_BN_MOMENTUM, .epsilon = NB_BN_EPSILON};
    return nn_layer_new(m, &nn_kind_batch_norm, &c, "nb_layer_batch_norm");
}

nb_layer *nb_layer_dropout(nb_model *m, float rate)
{
    return nn_layer_new(m, &nn_kind_dropout, &(nn_config){.rate = rate}, "nb_layer_dropout");
}
