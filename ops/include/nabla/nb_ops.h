/* nb_ops.h — the ops: every function builds one node in graph g, evaluates it at
 * once and returns it (borrowed from g). On bad input it returns NULL and records
 * a message on g (nb_graph_error) naming the op and the shapes; a NULL source
 * makes it return NULL and keep the graph's first message, so a whole expression
 * can be built and checked once at the end.
 *
 * Shapes below: B batch rows, K classes / columns. "Matrix view": a tensor of
 * shape (d0, ..., dn) is seen as (d0*...*dn-1, dn) rows of its last axis.
 * Names follow tf.nn and Keras where those exist. */
#ifndef NB_OPS_H
#define NB_OPS_H

#include <stdbool.h>

#include <nabla/nb_plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Activation functions, for nb_dense and for nn layers. */
typedef enum nb_activation {
    NB_LINEAR = 0, /* identity */
    NB_RELU,
    NB_SIGMOID,
    NB_TANH,
    NB_SOFTMAX /* over the last axis; nn builds it as its own nb_softmax node */
} nb_activation;

/* Name of an activation ("relu"), or "?" when out of range. */
const char *nb_activation_name(nb_activation a);

/* ---- linear algebra (ops/matmul.c) ---- */

/* (M, K) · (K, N) -> (M, N) with BLIS bli_sgemm; the backward passes use BLIS's
 * strides instead of materialised transposes. Both inputs must be 2-D floats
 * with matching inner sizes (NB_ERR_SHAPE names both shapes otherwise). */
nb_tensor *nb_matmul(nb_graph *g, nb_tensor *a, nb_tensor *b);

/* Fused dense layer: act(x · w + b), x (B, in), w (in, out), b (out) or (1, out),
 * or NULL for no bias; act one of NB_LINEAR, NB_RELU, NB_SIGMOID, NB_TANH: one
 * node (GEMM, then one pass for bias and activation; its backward keeps a (B, out)
 * scratch buffer). NB_SOFTMAX gives a linear dense node followed by an nb_softmax
 * node, so the Keras losses below find the logits. Gradients go only to the
 * sources that keep one. An unknown activation is NB_ERR_ARG. */
nb_tensor *nb_dense(nb_graph *g, nb_tensor *x, nb_tensor *w, nb_tensor *b, nb_activation act);

/* ---- elementwise (ops/elementwise.c) ----
 * Binary ops take b of a's shape, or a row vector of a's last dimension
 * (shape (K) or (1, K), broadcast over the rows), or a single element. */
nb_tensor *nb_add(nb_graph *g, nb_tensor *a, nb_tensor *b);
nb_tensor *nb_sub(nb_graph *g, nb_tensor *a, nb_tensor *b);
nb_tensor *nb_mul(nb_graph *g, nb_tensor *a, nb_tensor *b);
/* a * s for a constant s */
nb_tensor *nb_scale(nb_graph *g, nb_tensor *a, float s);

/* ---- activations (ops/activation.c) ----
 * Elementwise, out has a's shape; a must be a float tensor. The sigmoid is
 * evaluated without overflow for any |x|. */
nb_tensor *nb_relu(nb_graph *g, nb_tensor *a);
nb_tensor *nb_sigmoid(nb_graph *g, nb_tensor *a);
nb_tensor *nb_tanh(nb_graph *g, nb_tensor *a);
/* nb_relu / nb_sigmoid / nb_tanh / identity by enum (NB_SOFTMAX: nb_softmax).
 * NB_LINEAR returns a itself (no node); an unknown value is NB_ERR_ARG. */
nb_tensor *nb_activate(nb_graph *g, nb_tensor *a, nb_activation act);

/* ---- softmax family and losses (ops/softmax.c, ops/loss.c) ---- */

/* Softmax / log-softmax over the last axis (any shape), max-subtracted
 * (finite at ±1000). */
nb_tensor *nb_softmax(nb_graph *g, nb_tensor *z);
nb_tensor *nb_log_softmax(nb_graph *g, nb_tensor *z);

/* tf.nn.sparse_softmax_cross_entropy_with_logits: logits (B, K) floats, labels an
 * NB_I32 tensor of shape (B) or (B, 1) with values in [0, K) -> per-example
 * losses (B). One fused node: per row max, log-sum-exp and loss; the softmax is
 * kept for the backward, dlogits += (softmax - onehot) * dloss. A label outside
 * [0, K) is NB_ERR_LABEL, at build and at any later nb_forward, with TF's wording:
 * "...: row 3: received a label value of 7 which is outside the valid range of
 * [0, 5)". Labels get no gradient. */
nb_tensor *nb_sparse_softmax_cross_entropy_with_logits(nb_graph *g, nb_tensor *logits, nb_tensor *labels);

/* tf.nn.softmax_cross_entropy_with_logits: logits (B, K), labels (B, K) dense
 * (one-hot or soft) floats -> per-example losses (B). One fused node. Gradient
 * flows to logits only: (Σ labels) * softmax - labels, TF's softmax - labels
 * when each row of labels sums to 1. */
nb_tensor *nb_softmax_cross_entropy_with_logits(nb_graph *g, nb_tensor *logits, nb_tensor *labels);

/* Keras SparseCategoricalCrossentropy, reduction sum_over_batch_size -> scalar.
 * from_logits true: the fused sparse softmax cross-entropy with the 1/B folded
 * into its backward. from_logits false (Keras's TF backend): when y_pred is an
 * nb_softmax node its logits are used as above; otherwise the probabilities are
 * clipped to [1e-7, 1 - 1e-7] and loss = -log(clip(p)_y / Σ clip(p)) (at most
 * -ln 1e-7 ≈ 16.118). Labels and errors as for the fused op above. */
nb_tensor *nb_sparse_categorical_crossentropy(nb_graph *g, nb_tensor *y_pred, nb_tensor *labels, bool from_logits);

/* Keras CategoricalCrossentropy (one-hot or soft targets (B, K)) -> scalar mean.
 * from_logits true, or y_pred an nb_softmax node: the fused softmax
 * cross-entropy on the logits. Otherwise p is renormalised to p / Σ p, clipped
 * to [1e-7, 1 - 1e-7], and loss = -Σ y log p. y_true gets no gradient. */
nb_tensor *nb_categorical_crossentropy(nb_graph *g, nb_tensor *y_pred, nb_tensor *y_true, bool from_logits);

/* Keras MeanSquaredError: mean over all elements of (y_pred - y_true)^2 -> scalar.
 * y_true gets no gradient. */
nb_tensor *nb_mean_squared_error(nb_graph *g, nb_tensor *y_pred, nb_tensor *y_true);

/* ---- reductions and views (ops/reduce.c) ---- */
nb_tensor *nb_sum(nb_graph *g, nb_tensor *a);  /* -> scalar */
nb_tensor *nb_mean(nb_graph *g, nb_tensor *a); /* -> scalar */
/* New shape of the same size (float or int32; the data is copied); one
 * dimension may be -1 (inferred on every run, so a reshape of a batch input
 * follows the batch). A size that does not fit is NB_ERR_SHAPE naming both
 * shapes; more than one -1, or a dimension < 1 otherwise, is NB_ERR_ARG. */
nb_tensor *nb_reshape(nb_graph *g, nb_tensor *a, int ndim, const int *shape);
/* (B, d1, ..., dn) -> (B, d1*...*dn), following the batch; (B) -> (B, 1). A 2-D
 * tensor is already flat and is returned as it is (no node). */
nb_tensor *nb_flatten(nb_graph *g, nb_tensor *a);

/* ==== math: broadcasting binaries, unary math and activations, axis reductions ==== */


/* ==== structure: views and layout, indexing, batched matmul, normalisation, dropout ==== */


/* ==== convolution, pooling, batch normalisation (NHWC) ====
 * Images are NHWC (Keras's channels_last): x (B, H, W, C). Convolution kernels
 * are (KH, KW, C, O) as Keras stores them, so a Keras kernel loads unchanged.
 *
 * Padding (TensorFlow's rule, also used by Keras):
 *   NB_PAD_VALID: no padding; out = floor((in - eff_k) / stride) + 1, which must
 *                 be >= 1 (an image smaller than the window is NB_ERR_SHAPE);
 *   NB_PAD_SAME:  out = ceil(in / stride); the total padding is
 *                 max((out - 1) * stride + eff_k - in, 0), split with the odd
 *                 extra row / column at the bottom / right.
 * eff_k = (k - 1) * dilation + 1 is the window the kernel spans. Padded positions
 * count as zeros for conv2d, are never the maximum for max pooling and are left
 * out of the average for average pooling.
 *
 * Every builder fails with NULL and a message naming the op and the shapes:
 * NB_ERR_SHAPE for wrong ranks, mismatched channels or an empty output,
 * NB_ERR_ARG for an integer (label) tensor or bad attributes (a stride,
 * dilation or pool size < 1, an unknown padding). All outputs are new buffers
 * owned by the graph; the ops keep their workspace (the im2col matrix, the max
 * positions, the batch statistics) in the node's scratch, sized at the first
 * run and reused, so steady-state steps allocate nothing. */
typedef enum nb_padding {
    NB_PAD_VALID = 0, /* no padding ("valid") */
    NB_PAD_SAME = 1   /* out = ceil(in / stride) ("same") */
} nb_padding;

/* 2-D convolution (cross-correlation, as tf.nn.conv2d and Keras Conv2D):
 *   out[b, i, j, o] = bias[o] + Σ_{ky, kx, c} x[b, i*sh + ky*dh - pt, j*sw + kx*dw - pl, c]
 *                                            * kernel[ky, kx, c, o]
 * x (B, H, W, C), kernel (KH, KW, C, O), bias (O) or NULL -> (B, OH, OW, O), with
 * OH, OW and the top/left padding pt, pl from the padding rule above. Strides and
 * dilations >= 1 (both may exceed 1 together). Computed as one BLIS GEMM over an
 * im2col matrix (B*OH*OW, KH*KW*C), kept in the node's scratch for the kernel's
 * gradient; a 1x1, stride-1 convolution without padding multiplies x directly.
 * Backward: dkernel += colᵀ · dout, dbias += column sums of dout, and only when x
 * keeps a gradient (not for an nb_input image), dx += col2im(dout · kernelᵀ).
 * Described as "3x3 stride 2 same" (plus " dilation 2" when > 1). */
nb_tensor *nb_conv2d(nb_graph *g, nb_tensor *x, nb_tensor *kernel, nb_tensor *bias, int stride_h, int stride_w,
                     nb_padding padding, int dilation_h, int dilation_w);

/* Max pooling (tf.nn.max_pool2d, Keras MaxPooling2D): x (B, H, W, C) -> (B, OH,
 * OW, C), the maximum over each pool_h x pool_w window moved by the strides
 * (Keras's default strides are the pool size; pass them explicitly here). The
 * window position of each maximum is kept in scratch; the gradient goes to the
 * FIRST maximum of the window in row-major order when several elements tie.
 * Described as "pool 2x2 stride 2 valid". */
nb_tensor *nb_max_pool2d(nb_graph *g, nb_tensor *x, int pool_h, int pool_w, int stride_h, int stride_w,
                         nb_padding padding);

/* Average pooling (tf.nn.avg_pool2d, Keras AveragePooling2D): as max pooling but
 * the mean of each window. With NB_PAD_SAME a window that hangs over the border
 * is averaged over the elements inside the image only (TensorFlow's rule; the
 * padding is not counted as zeros). The gradient spreads dout / count evenly. */
nb_tensor *nb_avg_pool2d(nb_graph *g, nb_tensor *x, int pool_h, int pool_w, int stride_h, int stride_w,
                         nb_padding padding);

/* Global average pooling (Keras GlobalAveragePooling2D): x (B, H, W, C) -> (B, C),
 * the mean over H and W. */
nb_tensor *nb_global_avg_pool2d(nb_graph *g, nb_tensor *x);

/* Keras's defaults for BatchNormalization. */
#define NB_BN_MOMENTUM 0.99f
#define NB_BN_EPSILON 1e-3f

/* Batch normalisation (Keras BatchNormalization, axis -1): x of rank >= 2, the
 * last axis its C channels; statistics over every other axis (N = size / C
 * values per channel).
 *   training mode (nb_graph_training(g), read at every run):
 *     mean, var = the batch's per-channel mean and BIASED variance (Σ (x - mean)² / N,
 *     as tf.nn.moments computes it; Keras 3 uses it both to normalise and for the
 *     moving average, whereas PyTorch, and TensorFlow's fused kernel, feed the
 *     unbiased Σ (x - mean)² / (N - 1) to the running variance);
 *     moving_mean = moving_mean * momentum + mean * (1 - momentum), the same for
 *     moving_var, updated in place once per nb_forward;
 *   inference mode: mean, var = moving_mean, moving_var (nothing is updated);
 *   out = gamma * (x - mean) / sqrt(var + epsilon) + beta.
 * gamma, beta: (C) parameters, or NULL for 1 and 0 (Keras's scale / center off).
 * moving_mean, moving_var: (C) nb_state leaves (no gradient; Keras starts them at
 * 0 and 1, the caller fills them; any other kind of tensor is NB_ERR_ARG). Keras's defaults: momentum NB_BN_MOMENTUM
 * (0.99), epsilon NB_BN_EPSILON (1e-3). The evaluation done when the node is
 * built does NOT update the moving statistics (building a graph is not a training
 * step: a model may build several graphs over the same state); every later
 * nb_forward in training mode does, including those of nb_gradcheck.
 * Backward, in the mode of the last forward: training mode the closed form
 *   dx = gamma / sqrt(var + eps) * (dy - mean(dy) - x̂ * mean(dy * x̂)), x̂ = normalised x;
 * inference mode the affine map dx = gamma / sqrt(moving_var + eps) * dy;
 * dgamma += Σ dy * x̂, dbeta += Σ dy in both. Momentum must be in [0, 1] and epsilon
 * > 0 (NB_ERR_ARG). Described as "momentum 0.99 eps 0.001". */
nb_tensor *nb_batch_norm(nb_graph *g, nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, nb_tensor *moving_mean,
                         nb_tensor *moving_var, float momentum, float epsilon);


/* ---- the op table ---- */
typedef enum nb_op_kind {
    NB_OP_MATMUL,
    NB_OP_DENSE,
    NB_OP_ADD,
    NB_OP_SUB,
    NB_OP_MUL,
    NB_OP_SCALE,
    NB_OP_RELU,
    NB_OP_SIGMOID,
    NB_OP_TANH,
    NB_OP_SOFTMAX,
    NB_OP_LOG_SOFTMAX,
    NB_OP_SPARSE_SOFTMAX_XENT,
    NB_OP_SOFTMAX_XENT,
    NB_OP_SPARSE_CATEGORICAL_XENT_PROBS, /* Keras from-probabilities form */
    NB_OP_CATEGORICAL_XENT_PROBS,
    NB_OP_MSE,
    NB_OP_SUM,
    NB_OP_MEAN,
    NB_OP_RESHAPE,

    /* -- math: broadcasting binaries, unary math, activations, axis reductions -- */


    /* -- structure: layout, indexing, batched matmul, normalisation, dropout, masks -- */


    /* -- convolution, pooling, batch normalisation -- */
    NB_OP_CONV2D,
    NB_OP_MAX_POOL2D,
    NB_OP_AVG_POOL2D,
    NB_OP_GLOBAL_AVG_POOL2D,
    NB_OP_BATCH_NORM,


    NB_OP_COUNT
} nb_op_kind;

/* Every op definition, indexed by kind (static data, never NULL). */
extern const nb_op *const nb_op_table[NB_OP_COUNT];

/* The kind of op that made t, or -1 for a leaf or an op not in the table. */
int nb_op_kind_of(const nb_tensor *t);

/* Row-wise softmax of n rows of k floats, in place (for predictions),
 * max-subtracted. Does nothing for a NULL x or n, k < 1. */
void nb_softmax_rows(float *x, int n, int k);

#ifdef __cplusplus
}
#endif
#endif
