/* conv.c — 2-D convolution (NHWC) as im2col + BLIS GEMMs, a chunk of images at a time.
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
 * kernel is used as stored (no reordering). col is never built whole: the batch
 * is split by images over the threads and each walks its images a chunk at a
 * time (col chunk, GEMM, bias and relu while the rows are in cache; in the
 * backward the col chunk is rebuilt, then reused for dcol). A 1x1, stride-1,
 * unpadded convolution is a plain product with x itself: no col at all, and dx is
 * one GEMM. The plain nested-loop definition is the test oracle (tests/test_ops_conv.c). */
#include <string.h>

#include <nabla/nb_parallel.h>
#include "conv_internal.h"

/* A convolution whose col has fewer floats than this stays on the calling thread. */
#define CONV_SHARE_FLOATS 65536
/* Images are taken a chunk at a time so that a chunk's col and output rows
 * (this many floats together, at least one image) stay in the core's cache. */
#define CONV_CHUNK_FLOATS (256 * 1024)
/* The forward's col, when no larger than this, is kept for the kernel's gradient
 * (batch 32: +3 %); a larger one is rebuilt chunk by chunk in the backward, as
 * reading it back from memory measured 5 % slower (batch 128, 21 MB). */
#define CONV_KEEP_FLOATS (2 * 1024 * 1024)

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

static conv_geom geometry(const nb_tensor *t)
{
    const nb_tensor *x = t->src[0], *k = t->src[1];
    const conv_attr *a = NB_ATTR(t, conv_attr);
    conv_geom g = {.B = x->shape[0], .H = x->shape[1], .W = x->shape[2], .C = x->shape[3],
                   .KH = k->shape[0], .KW = k->shape[1], .O = k->shape[3], .OH = a->out_h, .OW = a->out_w,
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

/* Copy / clear n floats. Receptive-field rows are short (KW * C floats: 3 to a
 * few hundred), where a library call costs more than the copy: plain loops,
 * vectorised in the hot loops that inline them. */
static inline void copy_floats(float *restrict d, const float *restrict s, size_t n)
{
    for (size_t q = 0; q < n; q++) d[q] = s[q];
}
static inline void zero_floats(float *restrict d, size_t n)
{
    for (size_t q = 0; q < n; q++) d[q] = 0.0f;
}

/* ---- im2col: rows [r0, r1) of the batch's col into col[0 ..) ---- */
NB_HOT_LOOP static void im2col_rows(const conv_geom *g, const float *restrict x, float *restrict col, size_t r0, size_t r1)
{
    const size_t C = (size_t)g->C, rowlen = (size_t)g->KW * C;
    int j = (int)(r0 % (size_t)g->OW), i = (int)(r0 / (size_t)g->OW % (size_t)g->OH);
    size_t b = r0 / ((size_t)g->OW * (size_t)g->OH);
    float *dst = col;
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

/* ---- col2im: dx[b] += the taps of image b's rows of dcol, images [b0, b1); dcol starts at image b0 ---- */
NB_HOT_LOOP static void col2im_images(const conv_geom *g, const float *restrict dcol, float *restrict dx, size_t b0, size_t b1)
{
    const size_t C = (size_t)g->C, per_image = (size_t)g->OH * g->OW;
    for (size_t b = b0; b < b1; b++) {
        float *xb = dx + b * (size_t)g->H * g->W * C;
        for (size_t p = 0; p < per_image; p++) {
            int i = (int)(p / (size_t)g->OW), j = (int)(p % (size_t)g->OW);
            const float *src = dcol + ((b - b0) * per_image + p) * g->KC;
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

/* ---- shape rule and builders' checks ---- */
nb_status nb__conv_check(nb_tensor *t)
{
    const nb_tensor *x = t->src[0], *k = t->src[1], *b = t->n_src > 2 ? t->src[2] : NULL;
    conv_attr *a = NB_ATTR(t, conv_attr);
    const char *op = t->op->name;
    char sx[64], sk[64], sb[64];
    if (x->dtype != NB_F32 || k->dtype != NB_F32 || (b && b->dtype != NB_F32))
        return nb_node_fail(t, NB_ERR_ARG, "%s: inputs must be float tensors", op);
    nb_shape_str(x, sx, sizeof sx), nb_shape_str(k, sk, sizeof sk);
    if (x->ndim != 4 || k->ndim != 4)
        return nb_node_fail(t, NB_ERR_SHAPE, "%s: input %s and kernel %s must be (B, H, W, C) and (KH, KW, C, O)", op,
                            sx, sk);
    if (x->shape[3] != k->shape[2])
        return nb_node_fail(t, NB_ERR_SHAPE, "%s: input %s has %d channels but kernel %s expects %d", op, sx,
                            x->shape[3], sk, k->shape[2]);
    if (b && !(b->ndim == 1 && b->shape[0] == k->shape[3]))
        return nb_node_fail(t, NB_ERR_SHAPE, "%s: bias %s does not fit kernel %s (need (%d,))", op,
                            nb_shape_str(b, sb, sizeof sb), sk, k->shape[3]);
    bool ok_h = nb_conv_out_size(x->shape[1], (k->shape[0] - 1) * a->dil_h + 1, a->stride_h, a->padding, &a->out_h,
                                 &a->pad_top);
    bool ok_w = nb_conv_out_size(x->shape[2], (k->shape[1] - 1) * a->dil_w + 1, a->stride_w, a->padding, &a->out_w,
                                 &a->pad_left);
    if (!ok_h || !ok_w)
        return nb_node_fail(t, NB_ERR_SHAPE, "%s: kernel %s (dilation %dx%d) does not fit in input %s with valid padding",
                            op, sk, a->dil_h, a->dil_w, sx);
    return NB_OK;
}

bool nb__conv_attrs_ok(nb_graph *g, const char *op, int sh, int sw, int dh, int dw, nb_padding padding)
{
    if (!g) {
        nb_fail(NB_ERR_ARG, "%s: graph is NULL", op);
        return false;
    }
    if (sh < 1 || sw < 1 || dh < 1 || dw < 1) {
        nb_graph_fail(g, NB_ERR_ARG, "%s: strides (%d, %d) and dilations (%d, %d) must be >= 1", op, sh, sw, dh, dw);
        return false;
    }
    if (padding != NB_PAD_VALID && padding != NB_PAD_SAME) {
        nb_graph_fail(g, NB_ERR_ARG, "%s: unknown padding %d", op, (int)padding);
        return false;
    }
    return true;
}

/* ---- the work, by chunks of images (see conv_internal.h) ---- */
conv_run nb__conv_run(nb_tensor *t, bool rows, int parts)
{
    conv_run r = {.g = geometry(t), .t = t};
    const conv_geom *g = &r.g;
    size_t pixels = (size_t)g->OH * g->OW, col_per_image = is_pointwise(g) ? 0 : pixels * g->KC;
    size_t per_image = col_per_image + pixels * (size_t)g->O; /* col and output rows of one image */
    conv_plan *p = &r.p;
    p->parts = parts > 0 ? parts : g->M * g->KC < CONV_SHARE_FLOATS ? 1 : nb_get_num_threads();
    if (p->parts > g->B) p->parts = g->B;
    size_t slice = ((size_t)g->B + (size_t)p->parts - 1) / (size_t)p->parts;
    p->chunk = CONV_CHUNK_FLOATS / per_image;
    p->chunk = p->chunk < 1 ? 1 : p->chunk > slice ? slice : p->chunk;
    p->col_all = t->src[1]->grad && g->B * col_per_image <= CONV_KEEP_FLOATS ? g->B * col_per_image : 0;
    p->col_f = p->chunk * col_per_image;
    p->rows_f = rows ? p->chunk * pixels * (size_t)g->O : 0;
    p->per_part = p->col_f + p->rows_f + g->KC * (size_t)g->O + (size_t)g->O;
    return r;
}

size_t nb__conv_scratch_floats(const conv_run *r) { return r->p.col_all + (size_t)r->p.parts * r->p.per_part; }

static float *conv_part(const conv_run *r, int part, size_t *b0, size_t *b1)
{
    nb_split_range((size_t)r->g.B, part, r->p.parts, 1, b0, b1);
    return r->t->scratch + r->p.col_all + (size_t)part * r->p.per_part;
}

/* Where the col rows of images from b on are built: in the kept col, or at the
 * start of the part's own scratch. */
static float *col_at(const conv_run *r, float *part, size_t b)
{
    return r->p.col_all ? r->t->scratch + b * (size_t)r->g.OH * r->g.OW * r->g.KC : part;
}

void nb__conv_forward_chunk(const conv_run *r, float *part, size_t b, size_t n, float *y, nb_activation act)
{
    const conv_geom *g = &r->g;
    const nb_tensor *t = r->t;
    const float *bias = t->n_src > 2 ? t->src[2]->data : NULL;
    size_t pixels = (size_t)g->OH * g->OW;
    int rows = (int)(n * pixels);
    const float *a = t->src[0]->data + b * pixels * g->KC; /* pointwise: x itself */
    if (!is_pointwise(g)) {
        float *col = col_at(r, part, b);
        im2col_rows(g, t->src[0]->data, col, b * pixels, (b + n) * pixels);
        a = col;
    }
    nb_sgemm(rows, g->O, (int)g->KC, a, (int)g->KC, 1, t->src[1]->data, g->O, 1, 0.0f, y, g->O);
    if (bias || act != NB_LINEAR) nb__bias_act_rows(y, bias, rows, g->O, act);
}

/* The backward of images [b, b + n) for their output gradient dy (through what
 * follows the convolution): db and dk accumulate, dx gets its share (dcol in the
 * part's col chunk). */
static void backward_chunk(const conv_run *r, float *part, const float *dy, size_t b, size_t n, float *dk, float *db)
{
    const conv_geom *g = &r->g;
    nb_tensor *x = r->t->src[0], *k = r->t->src[1];
    size_t pixels = (size_t)g->OH * g->OW;
    int rows = (int)(n * pixels), KC = (int)g->KC;
    if (db) nb__column_sums(db, dy, rows, g->O);
    if (dk) { /* dkernel (KC, O) += colᵀ (KC, rows) · dout (rows, O): col read with strides (1, KC) */
        const float *a = x->data + b * pixels * g->KC; /* pointwise: x itself */
        if (!is_pointwise(g) && r->p.col_all) a = col_at(r, part, b);
        else if (!is_pointwise(g)) { /* rebuilt in the part's chunk, then overwritten by dcol */
            im2col_rows(g, x->data, part, b * pixels, (b + n) * pixels);
            a = part;
        }
        nb_sgemm(KC, g->O, rows, a, 1, KC, dy, g->O, 1, 1.0f, dk, g->O);
    }
    if (!x->grad) return; /* an input image: no dx, no dcol, no col2im */
    /* dcol (rows, KC) = dout (rows, O) · kernelᵀ (O, KC): kernel read with strides (1, O) */
    if (is_pointwise(g)) {
        nb_sgemm(rows, KC, g->O, dy, g->O, 1, k->data, 1, g->O, 1.0f, x->grad + b * pixels * g->KC, KC);
        return;
    }
    nb_sgemm(rows, KC, g->O, dy, g->O, 1, k->data, 1, g->O, 0.0f, part, KC); /* dcol in the part's own buffer */
    col2im_images(g, part, x->grad, b, b + n);
}

/* Where `part` accumulates dkernel and dbias (NULL when not wanted); clears its own sums. */
static void part_sums(const conv_run *r, int part, float **dk, float **db)
{
    const nb_tensor *k = r->t->src[1], *bias = r->t->n_src > 2 ? r->t->src[2] : NULL;
    size_t KO = r->g.KC * (size_t)r->g.O;
    float *acc = r->t->scratch + r->p.col_all + (size_t)part * r->p.per_part + r->p.col_f + r->p.rows_f;
    if (part > 0) memset(acc, 0, (KO + (size_t)r->g.O) * sizeof *acc);
    *dk = k->grad ? part == 0 ? k->grad : acc : NULL;
    *db = bias && bias->grad ? part == 0 ? bias->grad : acc + KO : NULL;
}

static void add_into(float *restrict dst, const float *restrict src, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

/* Adds the sums of parts 1.. into the kernel's and bias's gradients. */
static void add_part_sums(const conv_run *r)
{
    const nb_tensor *k = r->t->src[1], *bias = r->t->n_src > 2 ? r->t->src[2] : NULL;
    size_t KO = r->g.KC * (size_t)r->g.O;
    for (int p = 1; p < r->p.parts; p++) {
        const float *acc = r->t->scratch + r->p.col_all + (size_t)p * r->p.per_part + r->p.col_f + r->p.rows_f;
        if (k->grad) add_into(k->grad, acc, KO);
        if (bias && bias->grad) add_into(bias->grad, acc + KO, (size_t)r->g.O);
    }
}

/* ---- the drivers: parts over the threads, chunks within each part ---- */
typedef struct conv_job {
    conv_run r;
    conv_chunk_forward forward;
    conv_chunk_dy dy;
} conv_job;

static void forward_part(void *ctx, int part, int parts)
{
    (void)parts;
    const conv_job *j = ctx;
    size_t b0, b1;
    float *scratch = conv_part(&j->r, part, &b0, &b1);
    for (size_t b = b0; b < b1; b += j->r.p.chunk) j->forward(&j->r, scratch, b, b1 - b < j->r.p.chunk ? b1 - b : j->r.p.chunk);
}

nb_status nb__conv_forward(nb_tensor *t, bool rows, size_t extra, conv_chunk_forward fn)
{
    conv_job j = {.r = nb__conv_run(t, rows, 0), .forward = fn};
    if (!nb_scratch(t, nb__conv_scratch_floats(&j.r) + extra)) return NB_ERR_NOMEM;
    NB_ATTR(t, conv_attr)->parts = j.r.p.parts; /* the backward's split: its scratch is sized for it */
    nb_parallel_for(j.r.p.parts, forward_part, &j);
    return NB_OK;
}

static void backward_part(void *ctx, int part, int parts)
{
    (void)parts;
    const conv_job *j = ctx;
    size_t b0, b1;
    float *scratch = conv_part(&j->r, part, &b0, &b1), *dk, *db;
    part_sums(&j->r, part, &dk, &db);
    for (size_t b = b0; b < b1; b += j->r.p.chunk) {
        size_t n = b1 - b < j->r.p.chunk ? b1 - b : j->r.p.chunk;
        backward_chunk(&j->r, scratch, j->dy(&j->r, scratch + j->r.p.col_f, b, n), b, n, dk, db);
    }
}

void nb__conv_backward(nb_tensor *t, bool rows, conv_chunk_dy fn)
{
    conv_job j = {.r = nb__conv_run(t, rows, NB_ATTR(t, conv_attr)->parts), .dy = fn}; /* the forward's split */
    nb_parallel_for(j.r.p.parts, backward_part, &j);
    add_part_sums(&j.r);
}

int nb__conv_describe(const nb_tensor *t, char *buf, size_t len)
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
    if (n >= 0 && (size_t)n < len && a->relu) n += snprintf(buf + n, len - (size_t)n, " relu");
    return n;
}

/* ---- conv2d: out (B, OH, OW, O) = act(im2col(x) (M, KC) · kernel (KC, O) + bias (O)) ---- */
static nb_status conv_shape(nb_tensor *t)
{
    if (t->n_src < 2 || t->n_src > 3) return nb_node_fail(t, NB_ERR_ARG, "conv2d: takes 2 or 3 inputs, got %d", t->n_src);
    nb_status s = nb__conv_check(t);
    if (s != NB_OK) return s;
    const conv_attr *a = NB_ATTR(t, conv_attr);
    t->ndim = 4;
    t->shape[0] = t->src[0]->shape[0];
    t->shape[1] = a->out_h;
    t->shape[2] = a->out_w;
    t->shape[3] = t->src[1]->shape[3];
    return NB_OK;
}

static void conv_forward_chunk(const conv_run *r, float *part, size_t b, size_t n)
{
    nb_activation act = NB_ATTR(r->t, conv_attr)->relu ? NB_RELU : NB_LINEAR;
    nb__conv_forward_chunk(r, part, b, n, r->t->data + b * (size_t)r->g.OH * r->g.OW * (size_t)r->g.O, act);
}

/* dout, or with the fused relu dout where y > 0 (in the part's rows buffer). */
static const float *conv_dy(const conv_run *r, float *rows, size_t b, size_t n)
{
    size_t row_floats = (size_t)r->g.OH * r->g.OW * (size_t)r->g.O;
    const float *dy = r->t->grad + b * row_floats;
    if (!r->p.rows_f) return dy;
    nb__act_grad(rows, r->t->data + b * row_floats, dy, n * row_floats, NB_RELU);
    return rows;
}

static nb_status conv_forward(nb_tensor *t)
{
    return nb__conv_forward(t, NB_ATTR(t, conv_attr)->relu != 0, 0, conv_forward_chunk);
}
static void conv_backward(nb_tensor *t) { nb__conv_backward(t, NB_ATTR(t, conv_attr)->relu != 0, conv_dy); }

static void conv_describe(const nb_tensor *t, char *buf, size_t len) { nb__conv_describe(t, buf, len); }

const nb_op nb_op_conv2d = {.name = "conv2d", .n_src = NB_VARIADIC, .shape = conv_shape, .forward = conv_forward,
                            .backward = conv_backward, .describe = conv_describe};

static nb_tensor *conv_node(nb_graph *g, nb_tensor *x, nb_tensor *kernel, nb_tensor *bias, int stride_h, int stride_w,
                            nb_padding padding, int dilation_h, int dilation_w, bool relu)
{
    if (!nb__conv_attrs_ok(g, "conv2d", stride_h, stride_w, dilation_h, dilation_w, padding)) return NULL;
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
