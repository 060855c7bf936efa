/* mask.c — causal (masked) softmax for attention scores.
 *
 * Key: scores (..., T, T), seen as matrices of T query rows by T key columns.
 * Row i (query position i) may attend to keys j <= i only: its softmax is taken
 * over columns 0..i (max-subtracted, as nb_softmax) and columns j > i are exactly
 * 0, whatever the scores there (they are never read, so -inf or NaN there does
 * no harm). This is softmax(scores + mask) with mask = -inf above the diagonal,
 * in one node and one pass, with no mask tensor. Backward, per row over j <= i:
 * dz_j += y_j (dy_j - Σ_{k<=i} dy_k y_k); masked positions get no gradient. */
#include <stdint.h>
#include <string.h>

#include "ops_private.h"

/* e^x for the max-subtracted scores (x <= 0), in arithmetic only so the row
 * loop vectorises (expf is a call per element). Cephes's expf: x = n ln 2 + r
 * with |r| <= ln 2 / 2 (ln 2 split in two constants for an exact n ln 2), e^r by
 * its degree-7 minimax polynomial, 2^n written into the exponent bits; n comes
 * from the round-to-nearest trick t = x log2(e) + 1.5·2²³, whose low mantissa
 * bits hold n. Relative error below 2e-7. Below -87 (e^x < 1.7e-38) it returns 0. */
static inline float exp_nonpos(float x)
{
    union { float f; int32_t i; } t, scale;
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    float xc = x < -87.0f ? -87.0f : x;
    t.f = xc * 1.44269504088896341f + magic;
    float n = t.f - magic;
    scale.i = (int32_t)((uint32_t)(t.i - 0x4B400000 + 127) << 23); /* 2^n; bits of magic are 0x4B400000 */
    float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = (p * r * r + r + 1.0f) * scale.f;
    return x < -87.0f ? 0.0f : y;
}

static nb_status causal_softmax_shape(nb_tensor *t)
{
    const nb_tensor *s = t->src[0];
    char ss[64];
    if (s->dtype != NB_F32) return nb_node_fail(t, NB_ERR_ARG, "causal_softmax: scores must be a float tensor");
    if (s->ndim < 2 || s->shape[s->ndim - 1] != s->shape[s->ndim - 2])
        return nb_node_fail(t, NB_ERR_SHAPE, "causal_softmax: scores %s are not (..., T, T)", nb_shape_str(s, ss, sizeof ss));
    t->ndim = s->ndim;
    memcpy(t->shape, s->shape, sizeof t->shape);
    return NB_OK;
}

static nb_status causal_softmax_forward(nb_tensor *t)
{
    int R = nb_rows(t), T = nb_cols(t);
    for (int r = 0; r < R; r++) {
        const float *restrict z = t->src[0]->data + (size_t)r * T;
        float *restrict y = t->data + (size_t)r * T;
        int n = r % T + 1; /* visible keys 0..i */
        float mx = z[0], sum = 0.0f;
        for (int j = 1; j < n; j++) mx = z[j] > mx ? z[j] : mx;
        for (int j = 0; j < n; j++) y[j] = exp_nonpos(z[j] - mx);
        for (int j = 0; j < n; j++) sum += y[j];
        float inv = 1.0f / sum;
        for (int j = 0; j < n; j++) y[j] *= inv;
        for (int j = n; j < T; j++) y[j] = 0.0f;
    }
    return NB_OK;
}

static void causal_softmax_backward(nb_tensor *t)
{
    nb_tensor *s = t->src[0];
    if (!s->grad) return;
    int R = nb_rows(t), T = nb_cols(t);
    for (int r = 0; r < R; r++) {
        const float *restrict y = t->data + (size_t)r * T, *restrict dy = t->grad + (size_t)r * T;
        float *restrict dz = s->grad + (size_t)r * T;
        int n = r % T + 1;
        float dot = 0.0f;
        for (int j = 0; j < n; j++) dot += dy[j] * y[j];
        for (int j = 0; j < n; j++) dz[j] += y[j] * (dy[j] - dot);
    }
}

const nb_op nb_op_causal_softmax = {.name = "causal_softmax", .n_src = 1, .shape = causal_softmax_shape,
                                    .forward = causal_softmax_forward, .backward = causal_softmax_backward};

nb_tensor *nb_causal_softmax(nb_graph *g, nb_tensor *scores)
{
    return nb_node(g, &nb_op_causal_softmax, (nb_tensor *[]){scores}, 1, NULL, 0);
}
