/* mask.c — causal (masked) softmax for attention scores.
 *
 * Key: scores (..., T, T), seen as matrices of T query rows by T key columns.
 * Row i (query position i) may attend to keys j <= i only: its softmax is taken
 * over columns 0..i (max-subtracted, as nb_softmax) and columns j > i are exactly
 * 0, whatever the scores there (they are never read, so -inf or NaN there does
 * no harm). This is softmax(scores + mask) with mask = -inf above the diagonal,
 * in one node and one pass, with no mask tensor. Backward, per row over j <= i:
 * dz_j += y_j (dy_j - Σ_{k<=i} dy_k y_k); masked positions get no gradient. Both
 * are softmax.c's row kernels over the row's visible columns. */
#include <string.h>

#include "ops_private.h"

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
        float *y = t->data + (size_t)r * T, mx;
        int n = r % T + 1; /* visible keys 0..i */
        nb_softmax_row(y, t->src[0]->data + (size_t)r * T, n, &mx);
        memset(y + n, 0, (size_t)(T - n) * sizeof *y);
    }
    return NB_OK;
}

static void causal_softmax_backward(nb_tensor *t)
{
    nb_tensor *s = t->src[0];
    if (!s->grad) return;
    int R = nb_rows(t), T = nb_cols(t);
    for (int r = 0; r < R; r++) /* over the visible columns only: masked ones get no gradient */
        nb_softmax_row_grad(s->grad + (size_t)r * T, t->data + (size_t)r * T, t->grad + (size_t)r * T, r % T + 1);
}

const nb_op nb_op_causal_softmax = {.name = "causal_softmax", .n_src = 1, .shape = causal_softmax_shape,
                                    .forward = causal_softmax_forward, .backward = causal_softmax_backward};

nb_tensor *nb_causal_softmax(nb_graph *g, nb_tensor *scores)
{
    return nb_node(g, &nb_op_causal_softmax, (nb_tensor *[]){scores}, 1, NULL, 0);
}
