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
    [NB_OP_DIV] = &nb_op_div,
    [NB_OP_MAXIMUM] = &nb_op_maximum,
    [NB_OP_MINIMUM] = &nb_op_minimum,
    [NB_OP_NEG] = &nb_op_neg,
    [NB_OP_EXP] = &nb_op_exp,
    [NB_OP_LOG] = &nb_op_log,
    [NB_OP_SQRT] = &nb_op_sqrt,
    [NB_OP_SQUARE] = &nb_op_square,
    [NB_OP_ABS] = &nb_op_abs,
    [NB_OP_CLIP] = &nb_op_clip,
    [NB_OP_POW] = &nb_op_pow,
    [NB_OP_LEAKY_RELU] = &nb_op_leaky_relu,
    [NB_OP_ELU] = &nb_op_elu,
    [NB_OP_GELU] = &nb_op_gelu,
    [NB_OP_SILU] = &nb_op_silu,
    [NB_OP_SOFTPLUS] = &nb_op_softplus,
    [NB_OP_REDUCE_SUM] = &nb_op_reduce_sum,
    [NB_OP_REDUCE_MEAN] = &nb_op_reduce_mean,
    [NB_OP_REDUCE_MAX] = &nb_op_reduce_max,
    [NB_OP_LOGSUMEXP] = &nb_op_logsumexp,
    [NB_OP_ARGMAX] = &nb_op_argmax,


    /* -- structure -- */
    [NB_OP_TRANSPOSE] = &nb_op_transpose,
    [NB_OP_SLICE] = &nb_op_slice,
    [NB_OP_CONCAT] = &nb_op_concat,
    [NB_OP_SPLIT] = &nb_op_split,
    [NB_OP_BROADCAST_TO] = &nb_op_broadcast_to,
    [NB_OP_GATHER] = &nb_op_gather,
    [NB_OP_ONE_HOT] = &nb_op_one_hot,
    [NB_OP_BATCH_MATMUL] = &nb_op_batch_matmul,
    [NB_OP_LAYER_NORM] = &nb_op_layer_norm,
    [NB_OP_DROPOUT] = &nb_op_dropout,
    [NB_OP_CAUSAL_SOFTMAX] = &nb_op_causal_softmax,


    /* -- convolution, pooling, batch normalisation -- */
    [NB_OP_CONV2D] = &nb_op_conv2d,
    [NB_OP_CONV2D_RELU_MAX_POOL2D] = &nb_op_conv2d_relu_max_pool2d,
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
