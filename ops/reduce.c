/* reduce.c — reductions to a scalar (sum, mean). */
#include "nb_ops.h"

static int scalar_shape(nb_tensor *t)
{
    if (t->src[0]->dtype != NB_F32) return nb_node_fail(t, NB_ERR_ARG, "%s: input must be a float tensor", t->op->name);
    t->ndim = 0;
    return 0;
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

const nb_op nb_op_sum = {"sum", 1, scalar_shape, sum_forward, sum_backward};
const nb_op nb_op_mean = {"mean", 1, scalar_shape, mean_forward, mean_backward};

nb_tensor *nb_sum(nb_graph *g, nb_tensor *a) { return nb_node(g, &nb_op_sum, (nb_tensor *[]){a}, 1, NULL); }
nb_tensor *nb_mean(nb_graph *g, nb_tensor *a) { return nb_node(g, &nb_op_mean, (nb_tensor *[]){a}, 1, NULL); }
