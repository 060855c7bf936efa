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


/* -- conv.c, pool.c, batchnorm.c -- */
extern const nb_op nb_op_conv2d; /* x, kernel, and the bias when given */
extern const nb_op nb_op_max_pool2d;
extern const nb_op nb_op_avg_pool2d;
extern const nb_op nb_op_global_avg_pool2d;
extern const nb_op nb_op_batch_norm; /* x, moving_mean, moving_var, then gamma and/or beta when given */

/* The output size along one spatial axis under TensorFlow's padding rule (see
 * nb_ops.h): *out and the padding before the first element (top or left).
 * Returns false when a valid-padded output would be empty (in < eff_k). */
bool nb_conv_out_size(int in, int eff_k, int stride, nb_padding padding, int *out, int *pad_before);


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
