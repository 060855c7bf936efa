/* reduce.c — reductions to a scalar (sum, mean) and reshapes (reshape, flatten). */
#include <string.h>

#include "ops_private.h"

static nb_status scalar_shape(nb_tensor *t)
{
    if (t->src[0]->dtype != NB_F32) return nb_node_fail(t, NB_ERR_ARG, "%s: input must be a float tensor", t->op->name);
    t->ndim = 0;
    return NB_OK;
}

/* ---- sum: out = Σ a ---- */
static nb_status sum_forward(nb_tensor *t)
{
    const nb_tensor *a = t->src[0];
    double s = 0; /* double accumulator: exact enough for gradient checks */
    for (size_t i = 0; i < a->size; i++) s += a->data[i];
    t->data[0] = (float)s;
    return NB_OK;
}
static void sum_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0];
    if (a->grad)
        for (size_t i = 0; i < a->size; i++) a->grad[i] += t->grad[0];
}

/* ---- mean: out = Σ a / n ---- */
static nb_status mean_forward(nb_tensor *t)
{
    const nb_tensor *a = t->src[0];
    double s = 0;
    for (size_t i = 0; i < a->size; i++) s += a->data[i];
    t->data[0] = (float)(s / (double)a->size);
    return NB_OK;
}
static void mean_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0];
    float d = t->grad[0] / (float)a->size;
    if (a->grad)
        for (size_t i = 0; i < a->size; i++) a->grad[i] += d;
}

const nb_op nb_op_sum = {.name = "sum", .n_src = 1, .shape = scalar_shape, .forward = sum_forward, .backward = sum_backward};
const nb_op nb_op_mean = {.name = "mean", .n_src = 1, .shape = scalar_shape, .forward = mean_forward, .backward = mean_backward};

/* ---- reshape: out holds a's elements in the same order under a new shape ----
 * reshape_attr holds the target shape, one dimension of which
 * may be -1: it is inferred from a's size on every run, so a reshape of a batch
 * input follows the batch. Float and int32 tensors; the data is copied. */
typedef struct reshape_attr {
    int ndim;
    int shape[NB_MAX_DIMS]; /* -1 marks the inferred dimension */
} reshape_attr;

static nb_status reshape_shape(nb_tensor *t)
{
    const nb_tensor *a = t->src[0];
    const reshape_attr *ra = NB_ATTR(t, reshape_attr);
    int ndim = ra->ndim, infer = -1;
    size_t known = 1;
    for (int d = 0; d < ndim; d++) {
        t->shape[d] = ra->shape[d];
        if (t->shape[d] == -1) infer = d;
        else known *= (size_t)t->shape[d];
    }
    t->ndim = ndim;
    if (infer >= 0 && a->size % known == 0) t->shape[infer] = (int)(a->size / known);
    else if (infer >= 0 || known != a->size) {
        char sa[64], st[64];
        return nb_node_fail(t, NB_ERR_SHAPE, "reshape: cannot reshape %s (%zu elements) into %s",
                            nb_shape_str(a, sa, sizeof sa), a->size, nb_shape_str(t, st, sizeof st));
    }
    t->dtype = a->dtype;
    return NB_OK;
}
static nb_status reshape_forward(nb_tensor *t)
{
    const nb_tensor *a = t->src[0];
    if (a->dtype == NB_I32) memcpy(t->idata, a->idata, a->size * sizeof *a->idata);
    else memcpy(t->data, a->data, a->size * sizeof *a->data);
    return NB_OK;
}
static void reshape_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0];
    if (a->grad)
        for (size_t i = 0; i < a->size; i++) a->grad[i] += t->grad[i];
}

const nb_op nb_op_reshape = {.name = "reshape", .n_src = 1, .shape = reshape_shape, .forward = reshape_forward, .backward = reshape_backward};

nb_tensor *nb_reshape(nb_graph *g, nb_tensor *a, int ndim, const int *shape)
{
    if (!g) {
        nb_fail(NB_ERR_ARG, "reshape: graph is NULL");
        return NULL;
    }
    if (ndim < 0 || ndim > NB_MAX_DIMS || (ndim > 0 && !shape))
        return nb_graph_fail(g, NB_ERR_ARG, "reshape: ndim must be 0..%d with a shape array (got ndim %d%s)",
                             NB_MAX_DIMS, ndim, shape ? "" : ", shape NULL");
    reshape_attr attr = {.ndim = ndim};
    int n_infer = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == -1) n_infer++;
        else if (shape[d] < 1)
            return nb_graph_fail(g, NB_ERR_ARG, "reshape: dimension %d is %d (need >= 1, or -1 to infer it)", d,
                                 shape[d]);
        attr.shape[d] = shape[d];
    }
    if (n_infer > 1) return nb_graph_fail(g, NB_ERR_ARG, "reshape: at most one dimension may be -1, got %d", n_infer);
    return nb_node(g, &nb_op_reshape, (nb_tensor *[]){a}, 1, &attr, sizeof attr);
}

nb_tensor *nb_flatten(nb_graph *g, nb_tensor *a)
{
    if (!g || !a || a->graph != g) return nb_reshape(g, a, 1, (int[]){-1}); /* records or keeps the error */
    if (a->ndim == 2) return a; /* already (B, n): no node */
    if (a->ndim < 1) return nb_graph_fail(g, NB_ERR_SHAPE, "flatten: needs a batch dimension, got a scalar");
    return nb_reshape(g, a, 2, (int[]){-1, (int)(a->size / (size_t)a->shape[0])});
}

nb_tensor *nb_sum(nb_graph *g, nb_tensor *a) { return nb_node(g, &nb_op_sum, (nb_tensor *[]){a}, 1, NULL, 0); }
nb_tensor *nb_mean(nb_graph *g, nb_tensor *a) { return nb_node(g, &nb_op_mean, (nb_tensor *[]){a}, 1, NULL, 0); }
