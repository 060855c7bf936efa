/* matmul.c — matrix product and the fused dense layer, on BLIS bli_sgemm.
 *
 * Key: M rows of the left operand (the batch B for dense), K the shared inner
 * size (in), N the columns of the result (out). All matrices are row-major and
 * contiguous: an (R, C) matrix has row stride C and column stride 1. A transposed
 * operand is the same buffer read with its strides swapped (row stride 1, column
 * stride C), so no backward pass ever copies a transpose.
 *
 * The plain triple-loop definition of the product, used as the test oracle,
 * lives in tests/test_ops.c (ref_matmul). */
#include <assert.h>

#include <nabla/nb_parallel.h>
#include "ops_private.h"

/* Every product below goes through nb_sgemm (core/nb_parallel.h): c (m, n) =
 * a (m, k) · b (k, n) + beta * c, operands given by row and column strides,
 * beta 0 overwrites, 1 accumulates; large products are shared across threads. */

/* tanh without a libm call, so the activation loop vectorises: the odd Taylor
 * series to x^9 below |x| = 0.3 (truncation < 2e-8), (1 - e^-2|x|) / (1 + e^-2|x|)
 * above (no cancellation there); within a few float ulps of tanhf. */
static inline float dense_tanhf(float x)
{
    float ax = fabsf(x), x2 = x * x, e = nb_expf(-2.0f * ax);
    float series = ax * (1.0f + x2 * (-1.0f / 3.0f + x2 * (2.0f / 15.0f + x2 * (-17.0f / 315.0f + x2 * (62.0f / 2835.0f)))));
    float r = ax < 0.3f ? series : (1.0f - e) / (1.0f + e);
    return x < 0.0f ? -r : r;
}

NB_HOT_LOOP static void bias_act_rows(float *restrict y, const float *restrict bias, int rows, int out, nb_activation act)
{
    switch (act) {
    case NB_RELU:
        if (bias)
            for (int r = 0; r < rows; r++, y += out)
                for (int j = 0; j < out; j++) {
                    float z = y[j] + bias[j];
                    y[j] = z > 0.0f ? z : 0.0f;
                }
        else
            for (size_t i = 0; i < (size_t)rows * out; i++) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
        break;
    case NB_SIGMOID:
        for (int r = 0; r < rows; r++, y += out)
            for (int j = 0; j < out; j++) y[j] = nb_sigmoidf(y[j] + (bias ? bias[j] : 0.0f));
        break;
    case NB_TANH:
        for (int r = 0; r < rows; r++, y += out)
            for (int j = 0; j < out; j++) y[j] = dense_tanhf(y[j] + (bias ? bias[j] : 0.0f));
        break;
    default: /* NB_LINEAR */
        if (bias)
            for (int r = 0; r < rows; r++, y += out)
                for (int j = 0; j < out; j++) y[j] += bias[j];
        break;
    }
}

/* ---- few rows: one sweep over w, bias and activation fused ----
 * For a handful of rows (inference on one sample, small batches) BLIS costs
 * more than the product: every call packs all of w (in, out) into its panel
 * format (about 30 µs for the MNIST layer's 784 x 128), then runs what is a
 * matrix-vector product. Up to SMALL_ROWS rows the forward instead streams w
 * once per SMALL_MR rows, accumulating a SMALL_MR x SMALL_NB block of y in
 * registers that starts from the bias, and applies the activation as it
 * stores: one pass, nothing packed. Measured on the 784-128-10 model, 1 thread:
 * one sample 39 µs -> 6 µs. */
enum {
    SMALL_ROWS = 8,  /* the most rows the sweep takes; BLIS beyond */
    SMALL_MR = 4,    /* rows per sweep over w */
    SMALL_ACC = 128, /* accumulators per block: 8 AVX-512 registers */
    SMALL_NB = 32,   /* the narrowest full block; column splits between threads align to it */
};

/* y[0..mr) rows, columns [j0, j0 + nb) = x (mr, k) · w[:, j0..] + bias, with
 * mr * nb <= SMALL_ACC; x has row stride k, w and y row stride n. Inlined with
 * constant mr and nb, the accumulators live in registers. */
static inline __attribute__((always_inline)) void small_block(int mr, int nb, int k, int n, int j0,
                                                              const float *restrict x, const float *restrict w,
                                                              const float *restrict bias, float *restrict y)
{
    float acc[SMALL_ACC];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nb; j++) acc[i * nb + j] = bias ? bias[j0 + j] : 0.0f;
    for (int p = 0; p < k; p++) {
        const float *restrict wp = w + (size_t)p * n + j0;
        for (int i = 0; i < mr; i++) {
            const float s = x[(size_t)i * k + p];
            for (int j = 0; j < nb; j++) acc[i * nb + j] += s * wp[j];
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nb; j++) y[(size_t)i * n + j0 + j] = acc[i * nb + j];
}

/* mr rows, columns [j_lo, j_hi): blocks as wide as the accumulators allow, then
 * SMALL_NB wide, then the rest. */
static inline __attribute__((always_inline)) void small_rows(int mr, int k, int n, int j_lo, int j_hi,
                                                             const float *restrict x, const float *restrict w,
                                                             const float *restrict bias, float *restrict y)
{
    const int wide = mr == 3 ? SMALL_NB : SMALL_ACC / mr;
    int j0 = j_lo;
    for (; j0 + wide <= j_hi; j0 += wide) small_block(mr, wide, k, n, j0, x, w, bias, y);
    for (; j0 + SMALL_NB <= j_hi; j0 += SMALL_NB) small_block(mr, SMALL_NB, k, n, j0, x, w, bias, y);
    if (j0 < j_hi) small_block(mr, j_hi - j0, k, n, j0, x, w, bias, y);
}

/* y (m, n) columns [j_lo, j_hi) = act(x (m, k) · w (k, n) + bias), m <= SMALL_ROWS. */
NB_HOT_LOOP static void small_dense(int m, int n, int k, const float *restrict x, const float *restrict w,
                                    const float *restrict bias, nb_activation act, float *restrict y, int j_lo,
                                    int j_hi)
{
    for (int r = 0; r < m; r += SMALL_MR) {
        const float *xr = x + (size_t)r * k;
        float *yr = y + (size_t)r * n;
        switch (m - r < SMALL_MR ? m - r : SMALL_MR) { /* constant sizes for the compiler */
        case 1: small_rows(1, k, n, j_lo, j_hi, xr, w, bias, yr); break;
        case 2: small_rows(2, k, n, j_lo, j_hi, xr, w, bias, yr); break;
        case 3: small_rows(3, k, n, j_lo, j_hi, xr, w, bias, yr); break;
        default: small_rows(4, k, n, j_lo, j_hi, xr, w, bias, yr); break;
        }
    }
    if (act != NB_LINEAR) /* a few rows of y, still in L1 */
        for (int r = 0; r < m; r++) bias_act_rows(y + (size_t)r * n + j_lo, NULL, 1, j_hi - j_lo, act);
}

typedef struct small_job {
    int m, n, k;
    const float *x, *w, *bias;
    nb_activation act;
    float *y;
} small_job;

static void small_part(void *ctx, int part, int parts)
{
    const small_job *j = ctx;
    size_t lo, hi;
    nb_split_range((size_t)j->n, part, parts, SMALL_NB, &lo, &hi);
    if (hi > lo) small_dense(j->m, j->n, j->k, j->x, j->w, j->bias, j->act, j->y, (int)lo, (int)hi);
}

/* Columns are shared across the threads only when w is big enough to pay for it. */
#define SMALL_SHARE_WEIGHTS (1 << 18)

static void small_forward(int m, int n, int k, const float *x, const float *w, const float *bias, nb_activation act,
                          float *y)
{
    small_job j = {m, n, k, x, w, bias, act, y};
    int parts = nb_get_num_threads();
    if (parts > n / SMALL_NB) parts = n / SMALL_NB;
    if (parts > 1 && (size_t)k * n >= SMALL_SHARE_WEIGHTS) nb_parallel_for(parts, small_part, &j);
    else small_dense(m, n, k, x, w, bias, act, y, 0, n);
}

/* ---- matmul: out (M, N) = a (M, K) · b (K, N) ---- */
static nb_status matmul_shape(nb_tensor *t)
{
    const nb_tensor *a = t->src[0], *b = t->src[1];
    char sa[64], sb[64];
    if (a->dtype != NB_F32 || b->dtype != NB_F32)
        return nb_node_fail(t, NB_ERR_ARG, "matmul: inputs must be float tensors");
    if (a->ndim != 2 || b->ndim != 2 || a->shape[1] != b->shape[0])
        return nb_node_fail(t, NB_ERR_SHAPE, "matmul: cannot multiply %s by %s (need (M, K) and (K, N))",
                            nb_shape_str(a, sa, sizeof sa), nb_shape_str(b, sb, sizeof sb));
    t->ndim = 2;
    t->shape[0] = a->shape[0];
    t->shape[1] = b->shape[1];
    return NB_OK;
}
static nb_status matmul_forward(nb_tensor *t)
{
    const nb_tensor *a = t->src[0], *b = t->src[1];
    int M = a->shape[0], K = a->shape[1], N = b->shape[1];
    if (M <= SMALL_ROWS) small_forward(M, N, K, a->data, b->data, NULL, NB_LINEAR, t->data);
    else nb_sgemm(M, N, K, a->data, K, 1, b->data, N, 1, 0.0f, t->data, N);
    return NB_OK;
}
static void matmul_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0], *b = t->src[1];
    int M = a->shape[0], K = a->shape[1], N = b->shape[1];
    /* dA (M, K) += dC (M, N) · Bᵀ (N, K): B read with strides (1, N) */
    if (a->grad) nb_sgemm(M, K, N, t->grad, N, 1, b->data, 1, N, 1.0f, a->grad, K);
    /* dB (K, N) += Aᵀ (K, M) · dC (M, N): A read with strides (1, K) */
    if (b->grad) nb_sgemm(K, N, M, a->data, 1, K, t->grad, N, 1, 1.0f, b->grad, N);
}

/* The fused dense node's one attribute. */
typedef struct dense_attr {
    nb_activation act;
} dense_attr;

/* ---- dense: out (B, out) = act(x (B, in) · w (in, out) + b (out)) ----
 * x may have more leading axes, (..., in) -> (..., out): B is their product.
 * dense_attr.act is the activation. The activation's derivative is written in terms
 * of its output y, so the backward needs only out. */
static nb_status dense_shape(nb_tensor *t)
{
    const nb_tensor *x = t->src[0], *w = t->src[1], *b = t->n_src > 2 ? t->src[2] : NULL;
    char sx[64], sw[64], sb[64];
    if (x->dtype != NB_F32 || w->dtype != NB_F32 || (b && b->dtype != NB_F32))
        return nb_node_fail(t, NB_ERR_ARG, "dense: inputs must be float tensors");
    if (x->ndim < 2 || w->ndim != 2 || x->shape[x->ndim - 1] != w->shape[0])
        return nb_node_fail(t, NB_ERR_SHAPE, "dense: input %s does not fit kernel %s (need (B, in) and (in, out))",
                            nb_shape_str(x, sx, sizeof sx), nb_shape_str(w, sw, sizeof sw));
    if (b && !((b->ndim == 1 || (b->ndim == 2 && b->shape[0] == 1)) && (int)b->size == w->shape[1]))
        return nb_node_fail(t, NB_ERR_SHAPE, "dense: bias %s does not fit kernel %s (need (%d,))",
                            nb_shape_str(b, sb, sizeof sb), nb_shape_str(w, sw, sizeof sw), w->shape[1]);
    t->ndim = x->ndim; /* (..., in) -> (..., out): every leading position is a row */
    for (int d = 0; d < x->ndim - 1; d++) t->shape[d] = x->shape[d];
    t->shape[x->ndim - 1] = w->shape[1];
    return NB_OK;
}
static nb_status dense_forward(nb_tensor *t)
{
    const nb_tensor *x = t->src[0], *w = t->src[1];
    const float *bias = t->n_src > 2 ? t->src[2]->data : NULL;
    int in = w->shape[0], out = w->shape[1], B = (int)(x->size / (size_t)in); /* rows of (..., in) */
    nb_activation act = NB_ATTR(t, dense_attr)->act;
    /* the backward's dz buffer, sized here where a failure can be reported */
    if (t->grad && act != NB_LINEAR && !nb_scratch(t, t->size)) return NB_ERR_NOMEM;
    if (B <= SMALL_ROWS) {
        small_forward(B, out, in, x->data, w->data, bias, act, t->data);
        return NB_OK;
    }
    nb_sgemm(B, out, in, x->data, in, 1, w->data, out, 1, 0.0f, t->data, out);
    bias_act_rows(t->data, bias, B, out, act); /* one pass: y is still in cache (512 KB for 1000 x 128) */
    return NB_OK;
}
/* The backward's elementwise part, one function so it is compiled with the hot
 * loops: s (n) = dy ⊙ act'(z), the derivative written in terms of y = act(z). */
NB_HOT_LOOP static void act_grad(float *restrict s, const float *restrict y, const float *restrict dy, size_t n,
                                 nb_activation act)
{
    switch (act) {
    case NB_RELU:
        for (size_t i = 0; i < n; i++) s[i] = y[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case NB_SIGMOID:
        for (size_t i = 0; i < n; i++) s[i] = dy[i] * y[i] * (1.0f - y[i]);
        break;
    default: /* NB_TANH */
        for (size_t i = 0; i < n; i++) s[i] = dy[i] * (1.0f - y[i] * y[i]);
        break;
    }
}

NB_HOT_LOOP static void column_sums(float *restrict db, const float *restrict dz, int B, int out)
{
    for (int r = 0; r < B; r++)
        for (int j = 0; j < out; j++) db[j] += dz[(size_t)r * out + j];
}

/* The shared entry points (ops_private.h). Plain functions around the hot loops:
 * a target_clones function called from another file needs the attribute on
 * every declaration with clang, so the clones stay private to this file. */
void nb__bias_act_rows(float *y, const float *bias, int rows, int out, nb_activation act)
{
    bias_act_rows(y, bias, rows, out, act);
}
void nb__act_grad(float *s, const float *y, const float *dy, size_t n, nb_activation act) { act_grad(s, y, dy, n, act); }
void nb__column_sums(float *db, const float *dz, int B, int out) { column_sums(db, dz, B, out); }

static void dense_backward(nb_tensor *t)
{
    nb_tensor *x = t->src[0], *w = t->src[1], *b = t->n_src > 2 ? t->src[2] : NULL;
    int in = w->shape[0], out = w->shape[1], B = (int)(x->size / (size_t)in); /* rows of (..., in) */
    const float *dz = t->grad; /* (B, out) d(loss)/d(x·w + b); dout itself when linear */
    nb_activation act = NB_ATTR(t, dense_attr)->act;
    if (act != NB_LINEAR) {
        assert(t->scratch && t->scratch_cap >= t->size); /* sized by dense_forward */
        act_grad(t->scratch, t->data, t->grad, t->size, act);
        dz = t->scratch;
    }
    if (b && b->grad) column_sums(b->grad, dz, B, out);
    /* dW (in, out) += xᵀ (in, B) · dz (B, out): x read with strides (1, in) */
    if (w->grad) nb_sgemm(in, out, B, x->data, 1, in, dz, out, 1, 1.0f, w->grad, out);
    /* dx (B, in) += dz (B, out) · wᵀ (out, in): w read with strides (1, out) */
    if (x->grad) nb_sgemm(B, in, out, dz, out, 1, w->data, 1, out, 1.0f, x->grad, in);
}

const nb_op nb_op_matmul = {.name = "matmul", .n_src = 2, .shape = matmul_shape, .forward = matmul_forward, .backward = matmul_backward};
const nb_op nb_op_dense = {.name = "dense", .n_src = 3, .shape = dense_shape, .forward = dense_forward, .backward = dense_backward};
const nb_op nb_op_dense_nobias = {.name = "dense", .n_src = 2, .shape = dense_shape, .forward = dense_forward, .backward = dense_backward};

nb_tensor *nb_matmul(nb_graph *g, nb_tensor *a, nb_tensor *b)
{
    return nb_node(g, &nb_op_matmul, (nb_tensor *[]){a, b}, 2, NULL, 0);
}

nb_tensor *nb_dense(nb_graph *g, nb_tensor *x, nb_tensor *w, nb_tensor *b, nb_activation act)
{
    if (!g) {
        nb_fail(NB_ERR_ARG, "dense: graph is NULL");
        return NULL;
    }
    if ((unsigned)act > NB_SOFTPLUS) return nb_graph_fail(g, NB_ERR_ARG, "dense: unknown activation %d", (int)act);
    if (act != NB_LINEAR && act != NB_RELU && act != NB_SIGMOID && act != NB_TANH)
        /* a linear dense node, then the activation's own node (softmax: the losses look for it) */
        return nb_activate(g, nb_dense(g, x, w, b, NB_LINEAR), act);
    dense_attr attr = {.act = act};
    if (b) return nb_node(g, &nb_op_dense, (nb_tensor *[]){x, w, b}, 3, &attr, sizeof attr);
    return nb_node(g, &nb_op_dense_nobias, (nb_tensor *[]){x, w}, 2, &attr, sizeof attr);
}
