/* ops_private.h — the op definitions, private to the library (not installed).
 *
 * Each ops/ file defines its nb_op structs; table.c gathers them into
 * nb_op_table, indexed by nb_op_kind. Some kinds have a second definition that
 * differs only in its number of inputs (dense without a bias). */
#ifndef NB_OP_DEFS_H
#define NB_OP_DEFS_H

#include <math.h>

#include <nabla/nb_ops.h>

/* ops/matmul.c */
extern const nb_op nb_op_matmul;
extern const nb_op nb_op_dense;        /* x, w, b */
extern const nb_op nb_op_dense_nobias; /* x, w */
/* ops/elementwise.c */
extern const nb_op nb_op_add;
extern const nb_op nb_op_sub;
extern const nb_op nb_op_mul;
extern const nb_op nb_op_scale;
/* ops/activation.c */
extern const nb_op nb_op_relu;
extern const nb_op nb_op_sigmoid;
extern const nb_op nb_op_tanh;
/* ops/softmax.c */
extern const nb_op nb_op_softmax;
extern const nb_op nb_op_log_softmax;
/* ops/loss.c */
extern const nb_op nb_op_sparse_softmax_xent;
extern const nb_op nb_op_softmax_xent;
extern const nb_op nb_op_sparse_categorical_xent_probs;
extern const nb_op nb_op_categorical_xent_probs;
extern const nb_op nb_op_mse;
/* ops/reduce.c */
extern const nb_op nb_op_sum;
extern const nb_op nb_op_mean;
extern const nb_op nb_op_reshape;

/* -- math: elementwise.c, unary.c, reduce.c -- */


/* -- structure: layout.c, index.c, bmm.c, norm.c, dropout.c -- */
/* (and mask.c: the causal softmax) */
extern const nb_op nb_op_transpose;
extern const nb_op nb_op_slice;
extern const nb_op nb_op_concat;
extern const nb_op nb_op_split;
extern const nb_op nb_op_broadcast_to;
extern const nb_op nb_op_gather;
extern const nb_op nb_op_one_hot;
extern const nb_op nb_op_batch_matmul;
extern const nb_op nb_op_layer_norm;
extern const nb_op nb_op_dropout;
extern const nb_op nb_op_causal_softmax;
/* Append " key=[1,2,end]" (no leading space when buf is empty) to the
 * NUL-terminated buf of len bytes, for describe hooks; NB_SLICE_END prints "end". */
void nb_describe_ints(char *buf, size_t len, const char *key, const int *v, int n);


/* -- conv.c, pool.c, batchnorm.c -- */


/* Shape rule of the ops whose output has their float input's shape
 * (elementwise.c: scale; activation.c; softmax.c). */
nb_status nb_same_shape(nb_tensor *t);

/* Activation helpers shared by activation.c and the fused dense op (matmul.c). */

/* Numerically stable logistic function: never evaluates exp of a large positive
 * number, so it is exact to float precision for any |x| (0 or 1 at the ends). */
static inline float nb_sigmoidf(float x)
{
    if (x >= 0) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

#endif
