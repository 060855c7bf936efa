/* elementwise.c — add, sub, mul (with row and scalar broadcasting of b) and scale.
 *
 * a is (R, C) in its matrix view; b is (R, C) [SAME], (C) or (1, C) [ROW, broadcast
 * over the R rows], or a single element [SCALAR]. Out has a's shape. */
#include <string.h>

#include "ops_private.h"

enum { SAME = 0, ROW = 1, SCALAR = 2 };

/* Binary ops: the broadcast mode their shape rule picks. */
typedef struct binary_attr {
    int mode;
} binary_attr;

/* scale: the constant factor. */
typedef struct scale_attr {
    float s;
} scale_attr;

/* Shape rule shared by add/sub/mul: picks the broadcast mode (binary_attr). */
static nb_status binary_shape(nb_tensor *t)
{
    const nb_tensor *a = t->src[0], *b = t->src[1];
    if (a->dtype != NB_F32 || b->dtype != NB_F32)
        return nb_node_fail(t, NB_ERR_ARG, "%s: inputs must be float tensors", t->op->name);
    int same = a->ndim == b->ndim && a->size == b->size;
    for (int d = 0; same && d < a->ndim; d++) same = a->shape[d] == b->shape[d];
    if (same) NB_ATTR(t, binary_attr)->mode = SAME;
    else if (b->size == 1) NB_ATTR(t, binary_attr)->mode = SCALAR;
    else if (b->size == (size_t)nb_cols(a) && (b->ndim == 1 || (b->ndim == 2 && b->shape[0] == 1)))
        NB_ATTR(t, binary_attr)->mode = ROW;
    else {
        char sa[64], sb[64];
        return nb_node_fail(t, NB_ERR_SHAPE, "%s: shapes %s and %s do not match (b must have a's shape, be a row of %d, or one element)",
                            t->op->name, nb_shape_str(a, sa, sizeof sa), nb_shape_str(b, sb, sizeof sb), nb_cols(a));
    }
    t->ndim = a->ndim;
    memcpy(t->shape, a->shape, sizeof t->shape);
    return NB_OK;
}

/* Index into b for element i of a (R x C) under the broadcast mode. */
static inline size_t bidx(int mode, size_t i, size_t cols) { return mode == SAME ? i : mode == ROW ? i % cols : 0; }

/* ---- add: out = a + b ---- */
static nb_status add_forward(nb_tensor *t)
{
    const float *a = t->src[0]->data, *b = t->src[1]->data;
    size_t cols = (size_t)nb_cols(t);
    int mode = NB_ATTR(t, binary_attr)->mode;
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
    if (b->grad) reduce_into(b->grad, t->grad, t->size, (size_t)nb_cols(t), NB_ATTR(t, binary_attr)->mode, 1.0f);
}

/* ---- sub: out = a - b ---- */
static nb_status sub_forward(nb_tensor *t)
{
    const float *a = t->src[0]->data, *b = t->src[1]->data;
    size_t cols = (size_t)nb_cols(t);
    int mode = NB_ATTR(t, binary_attr)->mode;
    for (size_t i = 0; i < t->size; i++) t->data[i] = a[i] - b[bidx(mode, i, cols)];
    return NB_OK;
}
static void sub_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0], *b = t->src[1];
    if (a->grad)
        for (size_t i = 0; i < t->size; i++) a->grad[i] += t->grad[i];
    if (b->grad) reduce_into(b->grad, t->grad, t->size, (size_t)nb_cols(t), NB_ATTR(t, binary_attr)->mode, -1.0f);
}

/* ---- mul: out = a * b ---- */
static nb_status mul_forward(nb_tensor *t)
{
    const float *a = t->src[0]->data, *b = t->src[1]->data;
    size_t cols = (size_t)nb_cols(t);
    int mode = NB_ATTR(t, binary_attr)->mode;
    for (size_t i = 0; i < t->size; i++) t->data[i] = a[i] * b[bidx(mode, i, cols)];
    return NB_OK;
}
static void mul_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0], *b = t->src[1];
    size_t cols = (size_t)nb_cols(t);
    int mode = NB_ATTR(t, binary_attr)->mode;
    if (a->grad)
        for (size_t i = 0; i < t->size; i++) a->grad[i] += t->grad[i] * b->data[bidx(mode, i, cols)];
    if (b->grad)
        for (size_t i = 0; i < t->size; i++) b->grad[bidx(mode, i, cols)] += t->grad[i] * a->data[i];
}

/* Shape rule of every op whose output has its float input's shape (declared in ops_private.h). */
nb_status nb_same_shape(nb_tensor *t)
{
    const nb_tensor *a = t->src[0];
    if (a->dtype != NB_F32) return nb_node_fail(t, NB_ERR_ARG, "%s: input must be a float tensor", t->op->name);
    t->ndim = a->ndim;
    memcpy(t->shape, a->shape, sizeof t->shape);
    return NB_OK;
}

/* ---- scale: out = a * s, s = scale_attr.s ---- */
static nb_status scale_forward(nb_tensor *t)
{
    const float *a = t->src[0]->data;
    float s = NB_ATTR(t, scale_attr)->s;
    for (size_t i = 0; i < t->size; i++) t->data[i] = a[i] * s;
    return NB_OK;
}
static void scale_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0];
    float s = NB_ATTR(t, scale_attr)->s;
    if (a->grad)
        for (size_t i = 0; i < t->size; i++) a->grad[i] += t->grad[i] * s;
}

const nb_op nb_op_add = {.name = "add", .n_src = 2, .shape = binary_shape, .forward = add_forward, .backward = add_backward};
const nb_op nb_op_sub = {.name = "sub", .n_src = 2, .shape = binary_shape, .forward = sub_forward, .backward = sub_backward};
const nb_op nb_op_mul = {.name = "mul", .n_src = 2, .shape = binary_shape, .forward = mul_forward, .backward = mul_backward};
const nb_op nb_op_scale = {.name = "scale", .n_src = 1, .shape = nb_same_shape, .forward = scale_forward, .backward = scale_backward};

nb_tensor *nb_add(nb_graph *g, nb_tensor *a, nb_tensor *b) { return nb_node(g, &nb_op_add, (nb_tensor *[]){a, b}, 2, NULL, 0); }
nb_tensor *nb_sub(nb_graph *g, nb_tensor *a, nb_tensor *b) { return nb_node(g, &nb_op_sub, (nb_tensor *[]){a, b}, 2, NULL, 0); }
nb_tensor *nb_mul(nb_graph *g, nb_tensor *a, nb_tensor *b) { return nb_node(g, &nb_op_mul, (nb_tensor *[]){a, b}, 2, NULL, 0); }
nb_tensor *nb_scale(nb_graph *g, nb_tensor *a, float s)
{
    return nb_node(g, &nb_op_scale, (nb_tensor *[]){a}, 1, &(scale_attr){.s = s}, sizeof(scale_attr));
}
