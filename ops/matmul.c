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
    nb_sgemm(M, N, K, a->data, K, 1, b->data, N, 1, 0.0f, t->data, N);
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
static nb_status dense_forward(nb_tensor *t)
{
    const nb_tensor *x = t->src[0], *w = t->src[1];
    const float *bias = t->n_src > 2 ? t->src[2]->data : NULL;
    int in = w->shape[0], out = w->shape[1], B = (int)(x->size / (size_t)in); /* rows */
    float *y = t->data;
    /* the backward's dz buffer, sized here where a failure can be reported */
    if (t->grad && NB_ATTR(t, dense_attr)->act != NB_LINEAR && !nb_scratch(t, t->size)) return NB_ERR_NOMEM;
    nb_sgemm(B, out, in, x->data, in, 1, w->data, out, 1, 0.0f, y, out);
    /* one pass: add the bias and apply the activation */
    switch (NB_ATTR(t, dense_attr)->act) {
    case NB_RELU:
        for (int r = 0; r < B; r++, y += out)
            for (int j = 0; j < out; j++) {
                float z = y[j] + (bias ? bias[j] : 0.0f);
                y[j] = z > 0.0f ? z : 0.0f;
            }
        break;
    case NB_SIGMOID:
        for (int r = 0; r < B; r++, y += out)
            for (int j = 0; j < out; j++) y[j] = nb_sigmoidf(y[j] + (bias ? bias[j] : 0.0f));
        break;
    case NB_TANH:
        for (int r = 0; r < B; r++, y += out)
            for (int j = 0; j < out; j++) y[j] = dense_tanhf(y[j] + (bias ? bias[j] : 0.0f));
        break;
    default: /* NB_LINEAR */
        if (bias)
            for (int r = 0; r < B; r++, y += out)
                for (int j = 0; j < out; j++) y[j] += bias[j];
        break;
    }
    return NB_OK;
}
static void dense_backward(nb_tensor *t)
{
    nb_tensor *x = t->src[0], *w = t->src[1], *b = t->n_src > 2 ? t->src[2] : NULL;
    int in = w->shape[0], out = w->shape[1], B = (int)(x->size / (size_t)in); /* rows */
    size_t n = t->size;
    const float *y = t->data, *dy = t->grad;
    const float *dz = dy; /* (B, out) d(loss)/d(x·w + b); dout itself when linear */
    nb_activation act = NB_ATTR(t, dense_attr)->act;
    if (act != NB_LINEAR) {
        float *s = t->scratch; /* sized by dense_forward */
        assert(s && t->scratch_cap >= n);
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
        dz = s;
    }
    if (b && b->grad) /* db (out) += column sums of dz */
        for (int r = 0; r < B; r++)
            for (int j = 0; j < out; j++) b->grad[j] += dz[(size_t)r * out + j];
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
