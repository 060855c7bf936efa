/* conv_pool.c — convolution + bias + relu + max pooling as one node.
 *
 * Equal to nb_max_pool2d(nb_conv2d_relu(x, kernel, bias, ...), ...) in values and
 * in every gradient, but the convolution's output never exists whole: each
 * chunk of images is convolved into the part's scratch and pooled from there
 * while it is in cache (see conv_internal.h for the chunks and parts). Only the
 * pooled output and, per pooled element, the position of its maximum in the
 * chunk (int32, after the convolution's scratch) are kept.
 *
 * Backward, per chunk: the relu's gradient at a pooled element's maximum y is
 * dout where y > 0 (y is the pooled value itself), so
 *   dz = 0;  dz[arg[o]] += out[o] > 0 ? dout[o] : 0   for the chunk's pooled o,
 * and dz goes through the convolution's backward (dbias, dkernel, dx). A window
 * whose maximum is 0 passes nothing, as relu'(0) = 0 does in the unfused pair. */
#include <string.h>

#include <nabla/nb_parallel.h>
#include "conv_internal.h"

typedef struct conv_pool_attr {
    conv_attr conv; /* first: the shared machinery reads it as the node's conv_attr */
    nb__pool_geom pool;
    nb_padding pool_padding;
} conv_pool_attr;

static nb_status conv_pool_shape(nb_tensor *t)
{
    if (t->n_src < 2 || t->n_src > 3)
        return nb_node_fail(t, NB_ERR_ARG, "conv2d_relu_max_pool2d: takes 2 or 3 inputs, got %d", t->n_src);
    nb_status s = nb__conv_check(t);
    if (s != NB_OK) return s;
    conv_pool_attr *a = NB_ATTR(t, conv_pool_attr);
    nb__pool_geom *p = &a->pool;
    p->H = a->conv.out_h, p->W = a->conv.out_w, p->C = t->src[1]->shape[3];
    bool ok_h = nb_conv_out_size(p->H, p->ph, p->sh, a->pool_padding, &p->OH, &p->pt);
    bool ok_w = nb_conv_out_size(p->W, p->pw, p->sw, a->pool_padding, &p->OW, &p->pl);
    if (!ok_h || !ok_w)
        return nb_node_fail(t, NB_ERR_SHAPE, "conv2d_relu_max_pool2d: pool %dx%d does not fit in the %dx%d convolution "
                            "output with valid padding", p->ph, p->pw, p->H, p->W);
    t->ndim = 4;
    t->shape[0] = t->src[0]->shape[0];
    t->shape[1] = p->OH;
    t->shape[2] = p->OW;
    t->shape[3] = p->C;
    return NB_OK;
}

/* Where the max positions live: after every part's scratch. */
static int32_t *positions(const conv_run *r) { return (int32_t *)(void *)(r->t->scratch + nb__conv_scratch_floats(r)); }

/* Convolve images [b, b + n) into the part's rows buffer and pool from there. */
static void pool_forward_chunk(const conv_run *r, float *part, size_t b, size_t n)
{
    const nb__pool_geom *p = &NB_ATTR(r->t, conv_pool_attr)->pool;
    size_t pooled = (size_t)p->OH * p->OW * (size_t)p->C;
    float *y = part + r->p.col_f;
    nb__conv_forward_chunk(r, part, b, n, y, NB_RELU);
    nb__max_pool_images(p, y, (int)n, r->t->data + b * pooled, positions(r) + b * pooled, 0);
}

/* dz (the chunk's convolution output gradient): dout at each positive maximum's
 * position, 0 elsewhere. Windows that do not overlap (the usual pool 2 stride 2)
 * write their elements in one pass, with no clearing first when they cover the
 * whole map; overlapping ones add into a cleared dz. */
static const float *pool_chunk_dy(const conv_run *r, float *dz, size_t b, size_t n)
{
    const nb_tensor *t = r->t;
    const nb__pool_geom *p = &NB_ATTR(t, conv_pool_attr)->pool;
    size_t pooled = t->size / (size_t)r->g.B, rows = (size_t)r->g.OH * r->g.OW * (size_t)r->g.O;
    const float *restrict out = t->data + b * pooled, *restrict dout = t->grad + b * pooled;
    const int32_t *restrict at = positions(r) + b * pooled;
    bool apart = p->sh >= p->ph && p->sw >= p->pw;
    bool tiled = p->sh == p->ph && p->sw == p->pw && p->OH * p->sh - p->pt >= p->H && p->OW * p->sw - p->pl >= p->W;
    if (!tiled) memset(dz, 0, n * rows * sizeof *dz);
    if (apart) {
        nb__max_pool_window_grads(p, (int)n, out, dout, at, dz);
        return dz;
    }
    for (size_t o = 0; o < n * pooled; o++) dz[at[o]] += out[o] > 0.0f ? dout[o] : 0.0f;
    return dz;
}

static nb_status conv_pool_forward(nb_tensor *t) { return nb__conv_forward(t, true, t->size, pool_forward_chunk); }
static void conv_pool_backward(nb_tensor *t) { nb__conv_backward(t, true, pool_chunk_dy); }

static void conv_pool_describe(const nb_tensor *t, char *buf, size_t len)
{
    const conv_pool_attr *a = NB_ATTR(t, conv_pool_attr);
    int n = nb__conv_describe(t, buf, len);
    const char *pad = a->pool_padding == NB_PAD_SAME ? "same" : "valid";
    if (n < 0 || (size_t)n >= len) return;
    if (a->pool.sh == a->pool.sw)
        snprintf(buf + n, len - (size_t)n, ", pool %dx%d stride %d %s", a->pool.ph, a->pool.pw, a->pool.sh, pad);
    else
        snprintf(buf + n, len - (size_t)n, ", pool %dx%d stride %dx%d %s", a->pool.ph, a->pool.pw, a->pool.sh,
                 a->pool.sw, pad);
}

const nb_op nb_op_conv2d_relu_max_pool2d = {.name = "conv2d_relu_max_pool2d", .n_src = NB_VARIADIC,
                                            .shape = conv_pool_shape, .forward = conv_pool_forward,
                                            .backward = conv_pool_backward, .describe = conv_pool_describe};

nb_tensor *nb_conv2d_relu_max_pool2d(nb_graph *g, nb_tensor *x, nb_tensor *kernel, nb_tensor *bias, int stride_h,
                                     int stride_w, nb_padding padding, nb_pool_window pool)
{
    const char *op = nb_op_conv2d_relu_max_pool2d.name;
    if (!nb__conv_attrs_ok(g, op, stride_h, stride_w, 1, 1, padding)) return NULL;
    if (pool.pool_h < 1 || pool.pool_w < 1 || pool.stride_h < 1 || pool.stride_w < 1)
        return nb_graph_fail(g, NB_ERR_ARG, "%s: pool size (%d, %d) and strides (%d, %d) must be >= 1", op,
                             pool.pool_h, pool.pool_w, pool.stride_h, pool.stride_w);
    if (pool.padding != NB_PAD_VALID && pool.padding != NB_PAD_SAME)
        return nb_graph_fail(g, NB_ERR_ARG, "%s: unknown pool padding %d", op, (int)pool.padding);
    conv_pool_attr attr = {.conv = {.stride_h = stride_h, .stride_w = stride_w, .dil_h = 1, .dil_w = 1,
                                    .padding = padding, .relu = 1},
                           .pool = {.ph = pool.pool_h, .pw = pool.pool_w, .sh = pool.stride_h, .sw = pool.stride_w},
                           .pool_padding = pool.padding};
    nb_tensor *src[3] = {x, kernel, bias};
    return nb_node(g, &nb_op_conv2d_relu_max_pool2d, src, bias ? 3 : 2, &attr, sizeof attr);
}
