/* elementwise.c — add, sub, mul (with row and scalar broadcasting of b) and scale.
 *
 * a is (R, C) in its matrix view; b is (R, C) [SAME], (C) or (1, C) [ROW, broadcast
 * over the R rows], or a single element [SCALAR]. Out has a's shape. */
#include <string.h>

#include "op_defs.h"

enum { SAME = 0, ROW = 1, SCALAR = 2 };

/* Shape rule shared by add/sub/mul: picks the broadcast mode into attr.i[0]. */
static int binary_shape(nb_tensor *t)
{
    const nb_tensor *a = t->src[0], *b = t->src[1];
    if (a->dtype != NB_F32 || b->dtype != NB_F32)
        return nb_node_fail(t, NB_ERR_ARG, "%s: inputs must be float tensors", t->op->name);
    int same = a->ndim == b->ndim && a->size == b->size;
    for (int d = 0; same && d < a->ndim; d++) same = a->shape[d] == b->shape[d];
    if (same) t->attr.i[0] = SAME;
    else if (b->size == 1) t->attr.i[0] = SCALAR;
    else if (b->size == (size_t)nb_cols(a) && (b->ndim == 1 || (b->ndim == 2 && b->shape[0] == 1)))
        t->attr.i[0] = ROW;
    else {
        char sa[64], sb[64];
        return nb_node_fail(t, NB_ERR_SHAPE, "%s: shapes %s and %s do not match (b must have a's shape, be a row of %d, or one element)",
                            t->op->name, nb_shape_str(a, sa, sizeof sa), nb_shape_str(b, sb, sizeof sb), nb_cols(a));
    }
    t->ndim = a->ndim;
    memcpy(t->shape, a->shape, sizeof t->shape);
    return 0;
}

/* Index into b for element i of a (R x C) under the broadcast mode. */
static inline size_t bidx(int mode, size_t i, size_t cols) { return mode == SAME ? i : mode == ROW ? i % cols : 0; }

/* ---- add: out = a + b ---- */
static nb_status add_forward(nb_tensor *t)
{
    const float *a = t->src[0]->data, *b = t->src[1]->data;
    size_t cols = (size_t)nb_cols(t);
    int mode = t->attr.i[0];
    for (size_t i = 0; i < t->size; i++) t->data[i] = a[i] + b[bidx(mode, i, cols)];
    return NB_OK;
}
/* Sum dout into db (reduced to b's shape) with a sign. */
static void reduce_into(float *db, const float *dout, size_t n, size_t cols, int mode, float sign)
{
    for (size_t i = 0; i < n; i++) db[bidx(mode, i, cols)] += sign * dout[i];
}
static void add_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0], *b = t->src[1];
    if (a->grad)
        for (size_t i = 0; i < t->size; i++) a->grad[i] += t->grad[i];
    if (b->grad) reduce_into(b->grad, t->grad, t->size, (size_t)nb_cols(t), t->attr.i[0], 1.0f);
}

/* ---- sub: out = a - b ---- */
static nb_status sub_forward(nb_tensor *t)
{
    const float *a = t->src[0]->data, *b = t->src[1]->data;
    size_t cols = (size_t)nb_cols(t);
    int mode = t->attr.i[0];
    for (size_t i = 0; i < t->size; i++) t->data[i] = a[i] - b[bidx(mode, i, cols)];
    return NB_OK;
}
static void sub_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0], *b = t->src[1];
    if (a->grad)
        for (size_t i = 0; i < t->size; i++) a->grad[i] += t->grad[i];
    if (b->grad) reduce_into(b->grad, t->grad, t->size, (size_t)nb_cols(t), t->attr.i[0], -1.0f);
}

/* ---- mul: out = a * b ---- */
static nb_status mul_forward(nb_tensor *t)
{
    const float *a = t->src[0]->data, *b = t->src[1]->data;
    size_t cols = (size_t)nb_cols(t);
    int mode = t->attr.i[0];
    for (size_t i = 0; i < t->size; i++) t->data[i] = a[i] * b[bidx(mode, i, cols)];
    return NB_OK;
}
static void mul_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0], *b = t->src[1];
    size_t cols = (size_t)nb_cols(t);
    int mode = t->attr.i[0];
    if (a->grad)
        for (size_t i = 0; i < t->size; i++) a->grad[i] += t->grad[i] * b->data[bidx(mode, i, cols)];
    if (b->grad)
        for (size_t i = 0; i < t->size; i++) b->grad[bidx(mode, i, cols)] += t->grad[i] * a->data[i];
}

/* Shape rule of every op whose output has its float input's shape (declared in op_defs.h). */
int nb_same_shape(nb_tensor *t)
{
    const nb_tensor *a = t->src[0];
    if (a->dtype != NB_F32) return nb_node_fail(t, NB_ERR_ARG, "%s: input must be a float tensor", t->op->name);
    t->ndim = a->ndim;
    memcpy(t->shape, a->shape, sizeof t->shape);
    return 0;
}

/* ---- scale: out = a * s, s = attr.f[0] ---- */
static nb_status scale_forward(nb_tensor *t)
{
    const float *a = t->src[0]->data;
    float s = t->attr.f[0];
    for (size_t i = 0; i < t->size; i++) t->data[i] = a[i] * s;
    return NB_OK;
}
static void scale_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0];
    float s = t->attr.f[0];
    if (a->grad)
        for (size_t i = 0; i < t->size; i++) a->grad[i] += t->grad[i] * s;
}

const nb_op nb_op_add = {"add", 2, binary_shape, add_forward, add_backward};
const nb_op nb_op_sub = {"sub", 2, binary_shape, sub_forward, sub_backward};
const nb_op nb_op_mul = {"mul", 2, binary_shape, mul_forward, mul_backward};
const nb_op nb_op_scale = {"scale", 1, nb_same_shape, scale_forward, scale_backward};

nb_tensor *nb_add(nb_graph *g, nb_tensor *a, nb_tensor *b) { return nb_node(g, &nb_op_add, (nb_tensor *[]){a, b}, 2, NULL); }
nb_tensor *nb_sub(nb_graph *g, nb_tensor *a, nb_tensor *b) { return nb_node(g, &nb_op_sub, (nb_tensor *[]){a, b}, 2, NULL); }
nb_tensor *nb_mul(nb_graph *g, nb_tensor *a, nb_tensor *b) { return nb_node(g, &nb_op_mul, (nb_tensor *[]){a, b}, 2, NULL); }
nb_tensor *nb_scale(nb_graph *g, nb_tensor *a, float s)
{
    return nb_node(g, &nb_op_scale, (nb_tensor *[]){a}, 1, &(nb_attr){.f = {s}});
}
