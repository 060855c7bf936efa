/* conv.c — 2-D convolution (NHWC) as im2col + one BLIS GEMM.
 *
 * Key: B batch, H W C the input's height, width and channels, KH KW the kernel's
 * window, O its output channels, OH OW the output's height and width, M = B*OH*OW
 * output pixels, KC = KH*KW*C the length of one receptive field.
 *
 *   x (B, H, W, C)   kernel (KH, KW, C, O) = a (KC, O) matrix   out (B, OH, OW, O) = (M, O)
 *   col (M, KC): row r = output pixel (b, i, j), column (ky, kx, c) = the input under
 *                kernel tap (ky, kx), channel c, or 0 where the tap falls in the padding.
 *
 *   forward:  out = col · kernel (+ bias)
 *   backward: dkernel += colᵀ · dout;  dbias += Σ_rows dout;
 *             dcol = dout · kernelᵀ, then col2im scatter-adds dcol into dx.
 *
 * The column ordering (ky, kx, c) is exactly the kernel's row-major layout, so the
 * kernel is used as stored (no reordering). col lives in the node's scratch; the
 * backward reuses that buffer for dcol after the kernel's gradient has read it
 * (col_stale records it, so a second backward rebuilds col first). A 1x1, stride-1,
 * unpadded convolution is a plain product with x itself: no col at all, and dx is
 * one GEMM. The plain nested-loop definition is the test oracle (tests/test_ops_conv.c). */
#include <string.h>

#include <nabla/nb_parallel.h>
#include "ops_private.h"

/* im2col / col2im work below this many floats stays on the calling thread. */
#define CONV_SHARE_FLOATS 65536

/* conv2d's attributes. The first five are the builder's; the shape rule derives
 * the padding, the forward and backward keep col_stale. */
typedef struct conv_attr {
    int stride_h, stride_w, dil_h, dil_w;
    nb_padding padding;
    int pad_top, pad_left; /* derived: padding before the first row / column */
    int col_stale;         /* the scratch holds dcol, not the forward's col */
    int relu;              /* fused max(0, .) after the bias (nb_conv2d_relu) */
} conv_attr;

bool nb_conv_out_size(int in, int eff_k, int stride, nb_padding padding, int *out, int *pad_before)
{
    if (padding == NB_PAD_SAME) {
        int o = (in + stride - 1) / stride;
        int total = (o - 1) * stride + eff_k - in;
        *out = o;
        *pad_before = total > 0 ? total / 2 : 0; /* the odd extra goes after (bottom / right) */
        return true;
    }
    *pad_before = 0;
    *out = in >= eff_k ? (in - eff_k) / stride + 1 : 0;
    return *out >= 1;
}

/* The sizes of one conv node, read from its sources, output and attributes. */
typedef struct conv_geom {
    int B, H, W, C, KH, KW, O, OH, OW;
    int sh, sw, dh, dw, pt, pl;
    size_t M, KC;
} conv_geom;

static conv_geom geometry(const nb_tensor *t)
{
    const nb_tensor *x = t->src[0], *k = t->src[1];
    const conv_attr *a = NB_ATTR(t, conv_attr);
    conv_geom g = {.B = x->shape[0], .H = x->shape[1], .W = x->shape[2], .C = x->shape[3],
                   .KH = k->shape[0], .KW = k->shape[1], .O = k->shape[3], .OH = t->shape[1], .OW = t->shape[2],
                   .sh = a->stride_h, .sw = a->stride_w, .dh = a->dil_h, .dw = a->dil_w,
                   .pt = a->pad_top, .pl = a->pad_left};
    g.M = (size_t)g.B * (size_t)g.OH * (size_t)g.OW;
    g.KC = (size_t)g.KH * (size_t)g.KW * (size_t)g.C;
    return g;
}

/* No col needed: the input rows are the receptive fields. */
static bool is_pointwise(const conv_geom *g)
{
    return g->KH == 1 && g->KW == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pl == 0;
}

/* The range [*k0, *k1) of kernel taps along one axis whose input position
 * base + k*dil lies inside [0, n). */
static void tap_range(int base, int dil, int taps, int n, int *k0, int *k1)
{
    int lo = 0, hi = taps;
    while (lo < hi && base + lo * dil < 0) lo++;
    while (hi > lo && base + (hi - 1) * dil >= n) hi--;
    *k0 = lo;
    *k1 = hi;
}

/* Copy / clear n floats. Receptive-field rows are often a few floats long (one
 * input channel: KW floats), where a library call costs more than the copy. */
static inline void copy_floats(float *restrict d, const float *restrict s, size_t n)
{
    if (n > 16) {
        memcpy(d, s, n * sizeof *d);
        return;
    }
    for (size_t q = 0; q < n; q++) d[q] = s[q];
}
static inline void zero_floats(float *restrict d, size_t n)
{
    if (n > 16) {
        memset(d, 0, n * sizeof *d);
        return;
    }
    for (size_t q = 0; q < n; q++) d[q] = 0.0f;
}

/* ---- im2col: col rows [r0, r1) from x ---- */
static void im2col_rows(const conv_geom *g, const float *restrict x, float *restrict col, size_t r0, size_t r1)
{
    const size_t C = (size_t)g->C, rowlen = (size_t)g->KW * C;
    int j = (int)(r0 % (size_t)g->OW), i = (int)(r0 / (size_t)g->OW % (size_t)g->OH);
    size_t b = r0 / ((size_t)g->OW * (size_t)g->OH);
    float *dst = col + r0 * g->KC;
    for (size_t r = r0; r < r1; r++) {
        const float *xb = x + b * (size_t)g->H * g->W * C;
        int iy0 = i * g->sh - g->pt, ix0 = j * g->sw - g->pl, kx0, kx1;
        tap_range(ix0, g->dw, g->KW, g->W, &kx0, &kx1);
        for (int ky = 0; ky < g->KH; ky++, dst += rowlen) {
            int iy = iy0 + ky * g->dh;
            if (iy < 0 || iy >= g->H || kx0 >= kx1) {
                zero_floats(dst, rowlen);
                continue;
            }
            const float *src = xb + ((size_t)iy * g->W + (size_t)(ix0 + kx0 * g->dw)) * C;
            if (kx0 > 0) zero_floats(dst, (size_t)kx0 * C);
            if (g->dw == 1) copy_floats(dst + kx0 * C, src, (size_t)(kx1 - kx0) * C);
            else
                for (int kx = kx0; kx < kx1; kx++) copy_floats(dst + kx * C, src + (size_t)(kx - kx0) * g->dw * C, C);
            if (kx1 < g->KW) zero_floats(dst + kx1 * C, (size_t)(g->KW - kx1) * C);
        }
        if (++j == g->OW) { /* next output pixel */
            j = 0;
            if (++i == g->OH) i = 0, b++;
        }
    }
}

/* ---- col2im: dx[b] += the taps of dcol's rows of image b, images [b0, b1) ---- */
static void col2im_images(const conv_geom *g, const float *restrict dcol, float *restrict dx, size_t b0, size_t b1)
{
    const size_t C = (size_t)g->C, per_image = (size_t)g->OH * g->OW;
    for (size_t b = b0; b < b1; b++) {
        float *xb = dx + b * (size_t)g->H * g->W * C;
        for (size_t p = 0; p < per_image; p++) {
            int i = (int)(p / (size_t)g->OW), j = (int)(p % (size_t)g->OW);
            const float *src = dcol + (b * per_image + p) * g->KC;
            int iy0 = i * g->sh - g->pt, ix0 = j * g->sw - g->pl, kx0, kx1;
            tap_range(ix0, g->dw, g->KW, g->W, &kx0, &kx1);
            for (int ky = 0; ky < g->KH; ky++, src += (size_t)g->KW * C) {
                int iy = iy0 + ky * g->dh;
                if (iy < 0 || iy >= g->H) continue;
                for (int kx = kx0; kx < kx1; kx++) {
                    float *restrict d = xb + ((size_t)iy * g->W + (size_t)(ix0 + kx * g->dw)) * C;
                    const float *restrict s = src + (size_t)kx * C;
                    for (size_t c = 0; c < C; c++) d[c] += s[c];
                }
            }
        }
    }
}

/* Both transforms, split over the thread pool: im2col by rows of col, col2im by
 * images (each image's dx is written by one part only). */
typedef struct conv_job {
    const conv_geom *g;
    const float *in;
    float *out;
} conv_job;

static void im2col_part(void *ctx, int part, int parts)
{
    const conv_job *j = ctx;
    size_t r0, r1;
    nb_split_range(j->g->M, part, parts, 1, &r0, &r1);
    im2col_rows(j->g, j->in, j->out, r0, r1);
}
static void col2im_part(void *ctx, int part, int parts)
{
    const conv_job *j = ctx;
    size_t b0, b1;
    nb_split_range((size_t)j->g->B, part, parts, 1, &b0, &b1);
    col2im_images(j->g, j->in, j->out, b0, b1);
}

static int parts_for(size_t floats, size_t span)
{
    int parts = floats < CONV_SHARE_FLOATS ? 1 : nb_get_num_threads();
    return (size_t)parts > span ? (int)span : parts;
}

static void im2col(const conv_geom *g, const float *x, float *col)
{
    conv_job j = {g, x, col};
    nb_parallel_for(parts_for(g->M * g->KC, g->M), im2col_part, &j);
}
static void col2im(const conv_geom *g, const float *dcol, float *dx)
{
    conv_job j = {g, dcol, dx};
    nb_parallel_for(parts_for(g->M * g->KC, (size_t)g->B), col2im_part, &j);
}

/* ---- conv2d: out (B, OH, OW, O) = im2col(x) (M, KC) · kernel (KC, O) + bias (O) ---- */
static nb_status conv_shape(nb_tensor *t)
{
    const nb_tensor *x = t->src[0], *k = t->src[1], *b = t->n_src > 2 ? t->src[2] : NULL;
    conv_attr *a = NB_ATTR(t, conv_attr);
    char sx[64], sk[64], sb[64];
    if (t->n_src < 2 || t->n_src > 3) return nb_node_fail(t, NB_ERR_ARG, "conv2d: takes 2 or 3 inputs, got %d", t->n_src);
    if (x->dtype != NB_F32 || k->dtype != NB_F32 || (b && b->dtype != NB_F32))
        return nb_node_fail(t, NB_ERR_ARG, "conv2d: inputs must be float tensors");
    nb_shape_str(x, sx, sizeof sx), nb_shape_str(k, sk, sizeof sk);
    if (x->ndim != 4 || k->ndim != 4)
        return nb_node_fail(t, NB_ERR_SHAPE, "conv2d: input %s and kernel %s must be (B, H, W, C) and (KH, KW, C, O)",
                            sx, sk);
    if (x->shape[3] != k->shape[2])
        return nb_node_fail(t, NB_ERR_SHAPE, "conv2d: input %s has %d channels but kernel %s expects %d", sx,
                            x->shape[3], sk, k->shape[2]);
    if (b && !(b->ndim == 1 && b->shape[0] == k->shape[3]))
        return nb_node_fail(t, NB_ERR_SHAPE, "conv2d: bias %s does not fit kernel %s (need (%d,))",
                            nb_shape_str(b, sb, sizeof sb), sk, k->shape[3]);
    int oh, ow;
    bool ok_h = nb_conv_out_size(x->shape[1], (k->shape[0] - 1) * a->dil_h + 1, a->stride_h, a->padding, &oh, &a->pad_top);
    bool ok_w = nb_conv_out_size(x->shape[2], (k->shape[1] - 1) * a->dil_w + 1, a->stride_w, a->padding, &ow, &a->pad_left);
    if (!ok_h || !ok_w)
        return nb_node_fail(t, NB_ERR_SHAPE, "conv2d: kernel %s (dilation %dx%d) does not fit in input %s with valid padding",
                            sk, a->dil_h, a->dil_w, sx);
    t->ndim = 4;
    t->shape[0] = x->shape[0];
    t->shape[1] = oh;
    t->shape[2] = ow;
    t->shape[3] = k->shape[3];
    return NB_OK;
}

/* Scratch layout: col (M, KC) unless pointwise, then for a fused relu the
 * masked output gradient (M, O). */
static size_t col_floats(const conv_geom *g) { return is_pointwise(g) ? 0 : g->M * g->KC; }

/* y += bias per row, then max(0, y) when fused: one pass while y is in cache. */
static void bias_relu(float *restrict y, const float *restrict bias, size_t rows, int cols, bool relu)
{
    for (size_t r = 0; r < rows; r++, y += cols) {
        if (bias)
            for (int o = 0; o < cols; o++) y[o] += bias[o];
        if (relu)
            for (int o = 0; o < cols; o++) y[o] = y[o] > 0.0f ? y[o] : 0.0f;
    }
}

static nb_status conv_forward(nb_tensor *t)
{
    const nb_tensor *x = t->src[0], *k = t->src[1];
    const float *bias = t->n_src > 2 ? t->src[2]->data : NULL;
    conv_geom g = geometry(t);
    bool relu = NB_ATTR(t, conv_attr)->relu != 0;
    size_t need = col_floats(&g) + (relu ? g.M * (size_t)g.O : 0);
    float *buf = need ? nb_scratch(t, need) : NULL;
    if (need && !buf) return NB_ERR_NOMEM;
    const float *col = x->data;
    if (!is_pointwise(&g)) {
        im2col(&g, x->data, buf);
        col = buf;
    }
    NB_ATTR(t, conv_attr)->col_stale = 0;
    nb_sgemm((int)g.M, g.O, (int)g.KC, col, (int)g.KC, 1, k->data, g.O, 1, 0.0f, t->data, g.O);
    if (bias || relu) bias_relu(t->data, bias, g.M, g.O, relu);
    return NB_OK;
}

static void conv_backward(nb_tensor *t)
{
    nb_tensor *x = t->src[0], *k = t->src[1], *b = t->n_src > 2 ? t->src[2] : NULL;
    conv_geom g = geometry(t);
    const float *dy = t->grad; /* (M, O) */
    if (NB_ATTR(t, conv_attr)->relu) { /* through the fused relu: dout where y > 0 */
        float *restrict dz = t->scratch + col_floats(&g);
        const float *restrict y = t->data, *restrict d = t->grad;
        for (size_t i = 0; i < g.M * (size_t)g.O; i++) dz[i] = y[i] > 0.0f ? d[i] : 0.0f;
        dy = dz;
    }
    if (b && b->grad) { /* dbias (O) += column sums of dout */
        float *restrict db = b->grad;
        const float *restrict row = dy;
        const size_t O = (size_t)g.O;
        size_t r = 0;
        for (; r + 4 <= g.M; r += 4, row += 4 * O) /* four rows per pass over db */
            for (size_t o = 0; o < O; o++) db[o] += (row[o] + row[O + o]) + (row[2 * O + o] + row[3 * O + o]);
        for (; r < g.M; r++, row += O)
            for (size_t o = 0; o < O; o++) db[o] += row[o];
    }
    bool pointwise = is_pointwise(&g);
    float *col = pointwise ? x->data : t->scratch; /* (M, KC), sized by the forward */
    if (k->grad) {
        if (!pointwise && NB_ATTR(t, conv_attr)->col_stale) im2col(&g, x->data, col);
        NB_ATTR(t, conv_attr)->col_stale = 0;
        /* dkernel (KC, O) += colᵀ (KC, M) · dout (M, O): col read with strides (1, KC) */
        nb_sgemm((int)g.KC, g.O, (int)g.M, col, 1, (int)g.KC, dy, g.O, 1, 1.0f, k->grad, g.O);
    }
    if (!x->grad) return; /* an input image: no dx, no dcol, no col2im */
    /* dcol (M, KC) = dout (M, O) · kernelᵀ (O, KC): kernel read with strides (1, O) */
    if (pointwise) {
        nb_sgemm((int)g.M, (int)g.KC, g.O, dy, g.O, 1, k->data, 1, g.O, 1.0f, x->grad, (int)g.KC);
        return;
    }
    nb_sgemm((int)g.M, (int)g.KC, g.O, dy, g.O, 1, k->data, 1, g.O, 0.0f, col, (int)g.KC);
    NB_ATTR(t, conv_attr)->col_stale = 1;
    col2im(&g, col, x->grad);
}

static void conv_describe(const nb_tensor *t, char *buf, size_t len)
{
    const conv_attr *a = NB_ATTR(t, conv_attr);
    const nb_tensor *k = t->src[1];
    const char *pad = a->padding == NB_PAD_SAME ? "same" : "valid";
    int n = a->stride_h == a->stride_w
                ? snprintf(buf, len, "%dx%d stride %d %s", k->shape[0], k->shape[1], a->stride_h, pad)
                : snprintf(buf, len, "%dx%d stride %dx%d %s", k->shape[0], k->shape[1], a->stride_h, a->stride_w, pad);
    if (n >= 0 && (size_t)n < len && (a->dil_h > 1 || a->dil_w > 1))
        n += snprintf(buf + n, len - (size_t)n, a->dil_h == a->dil_w ? " dilation %d" : " dilation %dx%d", a->dil_h,
                      a->dil_w);
    if (n >= 0 && (size_t)n < len && a->relu) snprintf(buf + n, len - (size_t)n, " relu");
}

const nb_op nb_op_conv2d = {.name = "conv2d", .n_src = NB_VARIADIC, .shape = conv_shape, .forward = conv_forward,
                            .backward = conv_backward, .describe = conv_describe};

static nb_tensor *conv_node(nb_graph *g, nb_tensor *x, nb_tensor *kernel, nb_tensor *bias, int stride_h, int stride_w,
                            nb_padding padding, int dilation_h, int dilation_w, bool relu)
{
    if (!g) {
        nb_fail(NB_ERR_ARG, "conv2d: graph is NULL");
        return NULL;
    }
    if (stride_h < 1 || stride_w < 1 || dilation_h < 1 || dilation_w < 1)
        return nb_graph_fail(g, NB_ERR_ARG, "conv2d: strides (%d, %d) and dilations (%d, %d) must be >= 1", stride_h,
                             stride_w, dilation_h, dilation_w);
    if (padding != NB_PAD_VALID && padding != NB_PAD_SAME)
        return nb_graph_fail(g, NB_ERR_ARG, "conv2d: unknown padding %d", (int)padding);
    conv_attr attr = {.stride_h = stride_h, .stride_w = stride_w, .dil_h = dilation_h, .dil_w = dilation_w,
                      .padding = padding, .relu = relu};
    if (bias) return nb_node(g, &nb_op_conv2d, (nb_tensor *[]){x, kernel, bias}, 3, &attr, sizeof attr);
    return nb_node(g, &nb_op_conv2d, (nb_tensor *[]){x, kernel}, 2, &attr, sizeof attr);
}

nb_tensor *nb_conv2d(nb_graph *g, nb_tensor *x, nb_tensor *kernel, nb_tensor *bias, int stride_h, int stride_w,
                     nb_padding padding, int dilation_h, int dilation_w)
{
    return conv_node(g, x, kernel, bias, stride_h, stride_w, padding, dilation_h, dilation_w, false);
}

nb_tensor *nb_conv2d_relu(nb_graph *g, nb_tensor *x, nb_tensor *kernel, nb_tensor *bias, int stride_h, int stride_w,
                          nb_padding padding, int dilation_h, int dilation_w)
{
    return conv_node(g, x, kernel, bias, stride_h, stride_w, padding, dilation_h, dilation_w, true);
}
