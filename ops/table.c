/* table.c — every op definition in one table, indexed by nb_op_kind. */
#include "ops_private.h"

const nb_op *const nb_op_table[NB_OP_COUNT] = {
    [NB_OP_MATMUL] = &nb_op_matmul,
    [NB_OP_DENSE] = &nb_op_dense,
    [NB_OP_ADD] = &nb_op_add,
    [NB_OP_SUB] = &nb_op_sub,
    [NB_OP_MUL] = &nb_op_mul,
    [NB_OP_SCALE] = &nb_op_scale,
    [NB_OP_RELU] = &nb_op_relu,
    [NB_OP_SIGMOID] = &nb_op_sigmoid,
    [NB_OP_TANH] = &nb_op_tanh,
    [NB_OP_SOFTMAX] = &nb_op_softmax,
    [NB_OP_LOG_SOFTMAX] = &nb_op_log_softmax,
    [NB_OP_SPARSE_SOFTMAX_XENT] = &nb_op_sparse_softmax_xent,
    [NB_OP_SOFTMAX_XENT] = &nb_op_softmax_xent,
    [NB_OP_SPARSE_CATEGORICAL_XENT_PROBS] = &nb_op_sparse_categorical_xent_probs,
    [NB_OP_CATEGORICAL_XENT_PROBS] = &nb_op_categorical_xent_probs,
    [NB_OP_MSE] = &nb_op_mse,
    [NB_OP_SUM] = &nb_op_sum,
    [NB_OP_MEAN] = &nb_op_mean,
    [NB_OP_RESHAPE] = &nb_op_reshape,

    /* -- math -- */


    /* -- structure -- */


    /* -- convolution, pooling, batch normalisation -- */
    [NB_OP_CONV2D] = &nb_op_conv2d,
    [NB_OP_MAX_POOL2D] = &nb_op_max_pool2d,
    [NB_OP_AVG_POOL2D] = &nb_op_avg_pool2d,
    [NB_OP_GLOBAL_AVG_POOL2D] = &nb_op_global_avg_pool2d,
    [NB_OP_BATCH_NORM] = &nb_op_batch_norm,


};

int nb_op_kind_of(const nb_tensor *t)
{
    if (!t || !t->op) return -1;
    if (t->op == &nb_op_dense_nobias) return NB_OP_DENSE;
    for (int k = 0; k < NB_OP_COUNT; k++)
        if (nb_op_table[k] == t->op) return k;
    return -1;
}
