/* softmax.c — softmax and log-softmax over the last axis (matrix view: R rows
 * of K), and nb_softmax_row, the row kernel they share with nb_softmax_rows and
 * the fused cross-entropies (loss.c). It subtracts the row maximum first, so
 * every exp() argument is <= 0: nothing overflows at ±1000 and the largest
 * entry contributes exactly e^0 = 1. */

#include "ops_private.h"

float nb_softmax_row(float *p, const float *z, int k, float *mx)
{
    float m = z[0];
    for (int j = 1; j < k; j++) m = z[j] > m ? z[j] : m;
    for (int j = 0; j < k; j++) p[j] = nb_expf(z[j] - m); /* every argument <= 0 */
    double sum = nb_sum_f(p, (size_t)k);                  /* >= 1: the max contributes e^0 */
    float inv = (float)(1.0 / sum);
    for (int j = 0; j < k; j++) p[j] *= inv;
    *mx = m;
    return (float)log(sum);
}

void nb_softmax_rows(float *x, int n, int k)
{
    if (!x || n < 1 || k < 1) return;
    float mx;
    for (int r = 0; r < n; r++) nb_softmax_row(x + (size_t)r * k, x + (size_t)r * k, k, &mx);
}

/* ---- softmax: y = exp(z - max) / Σ exp(z - max), per row ---- */
static nb_status softmax_forward(nb_tensor *t)
{
    int R = nb_rows(t), K = nb_cols(t);
    float mx;
    for (int r = 0; r < R; r++) nb_softmax_row(t->data + (size_t)r * K, t->src[0]->data + (size_t)r * K, K, &mx);
    return NB_OK;
}
/* dz_j += y_j (dy_j - Σ_i dy_i y_i) */
void nb_softmax_row_grad(float *restrict dz, const float *restrict y, const float *restrict dy, int k)
{
    float dot = 0.0f;
    for (int j = 0; j < k; j++) dot += dy[j] * y[j];
    for (int j = 0; j < k; j++) dz[j] += y[j] * (dy[j] - dot);
}

static void softmax_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0];
    if (!a->grad) return;
    int R = nb_rows(t), K = nb_cols(t);
    for (int r = 0; r < R; r++)
        nb_softmax_row_grad(a->grad + (size_t)r * K, t->data + (size_t)r * K, t->grad + (size_t)r * K, K);
}

/* ---- log_softmax: y = z - max - log Σ exp(z - max), per row ----
 * The row's softmax goes into y first (nb_softmax_row), then y is overwritten. */
static nb_status log_softmax_forward(nb_tensor *t)
{
    int R = nb_rows(t), K = nb_cols(t);
    for (int r = 0; r < R; r++) {
        const float *z = t->src[0]->data + (size_t)r * K;
        float *y = t->data + (size_t)r * K;
        float mx, lse = nb_softmax_row(y, z, K, &mx);
        for (int j = 0; j < K; j++) y[j] = (z[j] - mx) - lse;
    }
    return NB_OK;
}
/* dz_j += dy_j - softmax_j Σ_i dy_i, with softmax_j = exp(y_j) */
static void log_softmax_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0];
    if (!a->grad) return;
    int R = nb_rows(t), K = nb_cols(t);
    for (int r = 0; r < R; r++) {
        const float *y = t->data + (size_t)r * K, *dy = t->grad + (size_t)r * K;
        float *dz = a->grad + (size_t)r * K;
        float sum = 0.0f;
        for (int j = 0; j < K; j++) sum += dy[j];
        for (int j = 0; j < K; j++) dz[j] += dy[j] - nb_expf(y[j]) * sum;
    }
}

const nb_op nb_op_softmax = {.name = "softmax", .n_src = 1, .shape = nb_same_shape, .forward = softmax_forward, .backward = softmax_backward};
const nb_op nb_op_log_softmax = {.name = "log_softmax", .n_src = 1, .shape = nb_same_shape, .forward = log_softmax_forward, .backward = log_softmax_backward};

nb_tensor *nb_softmax(nb_graph *g, nb_tensor *z) { return nb_node(g, &nb_op_softmax, (nb_tensor *[]){z}, 1, NULL, 0); }
nb_tensor *nb_log_softmax(nb_graph *g, nb_tensor *z)
{
    return nb_node(g, &nb_op_log_softmax, (nb_tensor *[]){z}, 1, NULL, 0);
}
