/* pool.c — max, average and global average pooling over NHWC images.
 *
 * Key: x (B, H, W, C) -> out (B, OH, OW, C); windows of PH x PW moved by SH, SW,
 * starting at (i*SH - pad_top, j*SW - pad_left) for output pixel (i, j); OH, OW and
 * the padding follow TensorFlow's rule (nb_conv_out_size, see nb_ops.h). Only the
 * window's elements inside the image take part: the maximum of those, or their
 * mean (so a 'same' window over the border divides by how many it covers, as
 * TensorFlow's AvgPool does). With this padding rule every window covers at
 * least one element.
 *
 * The loops run over window taps, then over the C channels (contiguous in NHWC,
 * so the innermost loop vectorises). Max pooling remembers, per output element,
 * the flat index into x of its maximum (int32 in the node's scratch; tensors hold
 * fewer than 2^31 elements); a tie keeps the first in row-major window order
 * (strict >), which is where the gradient goes. Work is split by images over the
 * thread pool when the input is large. */
#include <stdint.h>
#include <string.h>

#include <nabla/nb_parallel.h>
#include "ops_private.h"

#define POOL_SHARE_FLOATS 65536

/* max_pool2d / avg_pool2d attributes; the shape rule derives pad_top/pad_left. */
typedef struct pool_attr {
    int pool_h, pool_w, stride_h, stride_w;
    nb_padding padding;
    int pad_top, pad_left;
} pool_attr;

/* The valid part [*k0, *k1) of a window of `taps` starting at `start` on an axis of n. */
static inline void window(int start, int taps, int n, int *k0, int *k1)
{
    *k0 = start < 0 ? -start : 0;
    *k1 = start + taps > n ? n - start : taps;
}

static nb_status pool_shape(nb_tensor *t)
{
    const nb_tensor *x = t->src[0];
    pool_attr *a = NB_ATTR(t, pool_attr);
    char sx[64];
    if (x->dtype != NB_F32) return nb_node_fail(t, NB_ERR_ARG, "%s: input must be a float tensor", t->op->name);
    if (x->ndim != 4)
        return nb_node_fail(t, NB_ERR_SHAPE, "%s: input %s must be (B, H, W, C)", t->op->name,
                            nb_shape_str(x, sx, sizeof sx));
    int oh, ow;
    bool ok_h = nb_conv_out_size(x->shape[1], a->pool_h, a->stride_h, a->padding, &oh, &a->pad_top);
    bool ok_w = nb_conv_out_size(x->shape[2], a->pool_w, a->stride_w, a->padding, &ow, &a->pad_left);
    if (!ok_h || !ok_w)
        return nb_node_fail(t, NB_ERR_SHAPE, "%s: pool %dx%d does not fit in input %s with valid padding", t->op->name,
                            a->pool_h, a->pool_w, nb_shape_str(x, sx, sizeof sx));
    t->ndim = 4;
    t->shape[0] = x->shape[0];
    t->shape[1] = oh;
    t->shape[2] = ow;
    t->shape[3] = x->shape[3];
    return NB_OK;
}

/* One pass of a pooling kernel over images [b0, b1) of node t. */
typedef void (*pool_kernel)(nb_tensor *t, int b0, int b1);

typedef struct pool_job {
    nb_tensor *t;
    pool_kernel fn;
} pool_job;

static void pool_part(void *ctx, int part, int parts)
{
    const pool_job *j = ctx;
    size_t b0, b1;
    nb_split_range((size_t)j->t->shape[0], part, parts, 1, &b0, &b1);
    j->fn(j->t, (int)b0, (int)b1);
}

/* Run fn over every image, shared over the threads when x is large. */
static void over_images(nb_tensor *t, pool_kernel fn)
{
    int B = t->shape[0], parts = t->src[0]->size < POOL_SHARE_FLOATS ? 1 : nb_get_num_threads();
    if (parts > B) parts = B;
    pool_job j = {t, fn};
    nb_parallel_for(parts, pool_part, &j);
}

/* ---- max_pool2d: out[b, i, j, c] = max over the window; arg = its index in x ---- */

/* Output pixel (i, j)'s window: its top-left corner (*y0, *x0) and its taps inside
 * the image, rows [k[0], k[1]) and columns [k[2], k[3]). */
static inline void window_at(const nb__pool_geom *p, int i, int j, int *y0, int *x0, int k[4])
{
    *y0 = i * p->sh - p->pt, *x0 = j * p->sw - p->pl;
    window(*y0, p->ph, p->H, &k[0], &k[1]);
    window(*x0, p->pw, p->W, &k[2], &k[3]);
}
/* The flat index of element (b, y, x, 0). */
static inline size_t pixel_at(const nb__pool_geom *p, int b, int y, int x)
{
    return (((size_t)b * p->H + (size_t)y) * p->W + (size_t)x) * p->C;
}

NB_HOT_LOOP static void max_pool_images(const nb__pool_geom *p, const float *restrict x, int images, float *restrict out,
                                        int32_t *restrict arg, size_t base)
{
    const int C = p->C;
    for (int b = 0; b < images; b++)
        for (int i = 0; i < p->OH; i++)
            for (int j = 0; j < p->OW; j++) {
                size_t o = (((size_t)b * p->OH + i) * p->OW + j) * C;
                float *restrict best = out + o;
                int32_t *restrict at = arg + o;
                int y0, x0, k[4];
                window_at(p, i, j, &y0, &x0, k);
                for (int ky = k[0]; ky < k[1]; ky++)
                    for (int kx = k[2]; kx < k[3]; kx++) {
                        size_t at_x = pixel_at(p, b, y0 + ky, x0 + kx);
                        const float *restrict v = x + at_x;
                        int32_t idx = (int32_t)(base + at_x);
                        if (ky == k[0] && kx == k[2]) /* the window's first element starts the maximum */
                            for (int c = 0; c < C; c++) best[c] = v[c], at[c] = idx + c;
                        else
                            for (int c = 0; c < C; c++) {
                                bool more = v[c] > best[c];
                                best[c] = more ? v[c] : best[c];
                                at[c] = more ? idx + c : at[c];
                            }
                    }
            }
}

NB_HOT_LOOP static void max_pool_window_grads(const nb__pool_geom *p, int images, const float *restrict out,
                                              const float *restrict dout, const int32_t *restrict at, float *restrict dx)
{
    const int C = p->C;
    for (int b = 0; b < images; b++)
        for (int i = 0; i < p->OH; i++)
            for (int j = 0; j < p->OW; j++) {
                size_t o = (((size_t)b * p->OH + i) * p->OW + j) * C;
                int y0, x0, k[4];
                window_at(p, i, j, &y0, &x0, k);
                for (int ky = k[0]; ky < k[1]; ky++)
                    for (int kx = k[2]; kx < k[3]; kx++) {
                        size_t at_x = pixel_at(p, b, y0 + ky, x0 + kx);
                        for (int c = 0; c < C; c++) {
                            bool here = at[o + c] == (int32_t)at_x + c && out[o + c] > 0.0f;
                            dx[at_x + c] = here ? dout[o + c] : 0.0f;
                        }
                    }
            }
}

/* The entry points for the fused convolution (ops_private.h): plain functions
 * around the hot loops, which stay private to this file (see matmul.c). */
void nb__max_pool_images(const nb__pool_geom *p, const float *x, int images, float *out, int32_t *arg, size_t base)
{
    max_pool_images(p, x, images, out, arg, base);
}
void nb__max_pool_window_grads(const nb__pool_geom *p, int images, const float *out, const float *dout,
                               const int32_t *at, float *dx)
{
    max_pool_window_grads(p, images, out, dout, at, dx);
}

static nb__pool_geom pool_geom(const nb_tensor *t)
{
    const nb_tensor *x = t->src[0];
    const pool_attr *a = NB_ATTR(t, pool_attr);
    return (nb__pool_geom){.H = x->shape[1], .W = x->shape[2], .C = x->shape[3], .OH = t->shape[1], .OW = t->shape[2],
                           .ph = a->pool_h, .pw = a->pool_w, .sh = a->stride_h, .sw = a->stride_w,
                           .pt = a->pad_top, .pl = a->pad_left};
}

static void max_forward_images(nb_tensor *t, int b0, int b1)
{
    nb__pool_geom p = pool_geom(t);
    size_t in0 = (size_t)b0 * p.H * p.W * p.C, out0 = (size_t)b0 * p.OH * p.OW * p.C;
    max_pool_images(&p, t->src[0]->data + in0, b1 - b0, t->data + out0, (int32_t *)(void *)t->scratch + out0, in0);
}
static nb_status max_forward(nb_tensor *t)
{
    if (!nb_scratch(t, t->size)) return NB_ERR_NOMEM; /* int32 max positions, one per output element */
    over_images(t, max_forward_images);
    return NB_OK;
}
/* dx[arg] += dy; the maxima of image b lie in image b, so images split cleanly */
static void max_backward_images(nb_tensor *t, int b0, int b1)
{
    float *restrict dx = t->src[0]->grad;
    const size_t per_image = t->size / (size_t)t->shape[0];
    const int32_t *restrict arg = (const int32_t *)(const void *)t->scratch;
    const float *restrict dy = t->grad;
    for (size_t o = (size_t)b0 * per_image; o < (size_t)b1 * per_image; o++) dx[arg[o]] += dy[o];
}
static void max_backward(nb_tensor *t)
{
    if (t->src[0]->grad) over_images(t, max_backward_images);
}

/* ---- avg_pool2d: out = mean of the window's elements inside the image ---- */
static void avg_forward_images(nb_tensor *t, int b0, int b1)
{
    const nb_tensor *x = t->src[0];
    const pool_attr *a = NB_ATTR(t, pool_attr);
    const int H = x->shape[1], W = x->shape[2], C = x->shape[3], OH = t->shape[1], OW = t->shape[2];
    for (int b = b0; b < b1; b++)
        for (int i = 0; i < OH; i++)
            for (int j = 0; j < OW; j++) {
                float *restrict out = t->data + (((size_t)b * OH + i) * OW + j) * C;
                int y0 = i * a->stride_h - a->pad_top, x0 = j * a->stride_w - a->pad_left, ky0, ky1, kx0, kx1;
                window(y0, a->pool_h, H, &ky0, &ky1);
                window(x0, a->pool_w, W, &kx0, &kx1);
                memset(out, 0, (size_t)C * sizeof *out);
                for (int ky = ky0; ky < ky1; ky++)
                    for (int kx = kx0; kx < kx1; kx++) {
                        const float *restrict v = x->data + (((size_t)b * H + (size_t)(y0 + ky)) * W + (size_t)(x0 + kx)) * C;
                        for (int c = 0; c < C; c++) out[c] += v[c];
                    }
                float inv = 1.0f / (float)((ky1 - ky0) * (kx1 - kx0));
                for (int c = 0; c < C; c++) out[c] *= inv;
            }
}
static nb_status avg_forward(nb_tensor *t)
{
    over_images(t, avg_forward_images);
    return NB_OK;
}
static void avg_backward_images(nb_tensor *t, int b0, int b1)
{
    nb_tensor *x = t->src[0];
    const pool_attr *a = NB_ATTR(t, pool_attr);
    const int H = x->shape[1], W = x->shape[2], C = x->shape[3], OH = t->shape[1], OW = t->shape[2];
    for (int b = b0; b < b1; b++)
        for (int i = 0; i < OH; i++)
            for (int j = 0; j < OW; j++) {
                const float *restrict dy = t->grad + (((size_t)b * OH + i) * OW + j) * C;
                int y0 = i * a->stride_h - a->pad_top, x0 = j * a->stride_w - a->pad_left, ky0, ky1, kx0, kx1;
                window(y0, a->pool_h, H, &ky0, &ky1);
                window(x0, a->pool_w, W, &kx0, &kx1);
                float inv = 1.0f / (float)((ky1 - ky0) * (kx1 - kx0));
                for (int ky = ky0; ky < ky1; ky++)
                    for (int kx = kx0; kx < kx1; kx++) {
                        float *restrict dx = x->grad + (((size_t)b * H + (size_t)(y0 + ky)) * W + (size_t)(x0 + kx)) * C;
                        for (int c = 0; c < C; c++) dx[c] += dy[c] * inv;
                    }
            }
}
static void avg_backward(nb_tensor *t)
{
    if (t->src[0]->grad) over_images(t, avg_backward_images);
}

static void pool_describe(const nb_tensor *t, char *buf, size_t len)
{
    const pool_attr *a = NB_ATTR(t, pool_attr);
    const char *pad = a->padding == NB_PAD_SAME ? "same" : "valid";
    if (a->stride_h == a->stride_w)
        snprintf(buf, len, "pool %dx%d stride %d %s", a->pool_h, a->pool_w, a->stride_h, pad);
    else
        snprintf(buf, len, "pool %dx%d stride %dx%d %s", a->pool_h, a->pool_w, a->stride_h, a->stride_w, pad);
}

/* ---- global_avg_pool2d: out[b, c] = mean over (h, w) of x[b, h, w, c] ---- */
static nb_status global_shape(nb_tensor *t)
{
    const nb_tensor *x = t->src[0];
    char sx[64];
    if (x->dtype != NB_F32) return nb_node_fail(t, NB_ERR_ARG, "global_avg_pool2d: input must be a float tensor");
    if (x->ndim != 4)
        return nb_node_fail(t, NB_ERR_SHAPE, "global_avg_pool2d: input %s must be (B, H, W, C)",
                            nb_shape_str(x, sx, sizeof sx));
    t->ndim = 2;
    t->shape[0] = x->shape[0];
    t->shape[1] = x->shape[3];
    return NB_OK;
}
static nb_status global_forward(nb_tensor *t)
{
    const nb_tensor *x = t->src[0];
    const size_t HW = (size_t)x->shape[1] * x->shape[2], C = (size_t)x->shape[3];
    const float inv = 1.0f / (float)HW;
    for (int b = 0; b < x->shape[0]; b++) {
        float *restrict out = t->data + b * C;
        const float *restrict v = x->data + b * HW * C;
        memset(out, 0, C * sizeof *out);
        for (size_t p = 0; p < HW; p++, v += C)
            for (size_t c = 0; c < C; c++) out[c] += v[c];
        for (size_t c = 0; c < C; c++) out[c] *= inv;
    }
    return NB_OK;
}
static void global_backward(nb_tensor *t)
{
    nb_tensor *x = t->src[0];
    if (!x->grad) return;
    const size_t HW = (size_t)x->shape[1] * x->shape[2], C = (size_t)x->shape[3];
    const float inv = 1.0f / (float)HW;
    for (int b = 0; b < x->shape[0]; b++) {
        const float *restrict dy = t->grad + b * C;
        float *restrict dx = x->grad + b * HW * C;
        for (size_t p = 0; p < HW; p++, dx += C)
            for (size_t c = 0; c < C; c++) dx[c] += dy[c] * inv;
    }
}

const nb_op nb_op_max_pool2d = {.name = "max_pool2d", .n_src = 1, .shape = pool_shape, .forward = max_forward,
                                .backward = max_backward, .describe = pool_describe};
const nb_op nb_op_avg_pool2d = {.name = "avg_pool2d", .n_src = 1, .shape = pool_shape, .forward = avg_forward,
                                .backward = avg_backward, .describe = pool_describe};
const nb_op nb_op_global_avg_pool2d = {.name = "global_avg_pool2d", .n_src = 1, .shape = global_shape,
                                       .forward = global_forward, .backward = global_backward};

static nb_tensor *pool(nb_graph *g, const nb_op *op, nb_tensor *x, int ph, int pw, int sh, int sw, nb_padding padding)
{
    if (!g) {
        nb_fail(NB_ERR_ARG, "%s: graph is NULL", op->name);
        return NULL;
    }
    if (ph < 1 || pw < 1 || sh < 1 || sw < 1)
        return nb_graph_fail(g, NB_ERR_ARG, "%s: pool size (%d, %d) and strides (%d, %d) must be >= 1", op->name, ph, pw,
                             sh, sw);
    if (padding != NB_PAD_VALID && padding != NB_PAD_SAME)
        return nb_graph_fail(g, NB_ERR_ARG, "%s: unknown padding %d", op->name, (int)padding);
    pool_attr attr = {.pool_h = ph, .pool_w = pw, .stride_h = sh, .stride_w = sw, .padding = padding};
    return nb_node(g, op, (nb_tensor *[]){x}, 1, &attr, sizeof attr);
}

nb_tensor *nb_max_pool2d(nb_graph *g, nb_tensor *x, int pool_h, int pool_w, int stride_h, int stride_w,
                         nb_padding padding)
{
    return pool(g, &nb_op_max_pool2d, x, pool_h, pool_w, stride_h, stride_w, padding);
}

nb_tensor *nb_avg_pool2d(nb_graph *g, nb_tensor *x, int pool_h, int pool_w, int stride_h, int stride_w,
                         nb_padding padding)
{
    return pool(g, &nb_op_avg_pool2d, x, pool_h, pool_w, stride_h, stride_w, padding);
}

nb_tensor *nb_global_avg_pool2d(nb_graph *g, nb_tensor *x)
{
    return nb_node(g, &nb_op_global_avg_pool2d, (nb_tensor *[]){x}, 1, NULL, 0);
}
