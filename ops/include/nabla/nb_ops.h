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
    NB_SOFTMAX, /* over the last axis; nn builds it as its own nb_softmax node */
    NB_LEAKY_RELU, /* slope NB_LEAKY_RELU_ALPHA (0.3, Keras's LeakyReLU layer) below 0 */
    NB_ELU,        /* alpha 1 */
    NB_GELU,       /* the exact erf form (Keras's gelu, approximate=False) */
    NB_SILU,       /* x * sigmoid(x), also called swish */
    NB_SOFTPLUS,   /* log(1 + e^x) */

    NB_ACTIVATION_COUNT /* not an activation: the number of them */
} nb_activation;

/* The negative slope NB_LEAKY_RELU uses: 0.3, the default of Keras's LeakyReLU
 * layer. keras.activations.leaky_relu, keras.ops.leaky_relu and TensorFlow's
 * tf.nn.leaky_relu default to 0.2 instead; call nb_leaky_relu for any other. */
#define NB_LEAKY_RELU_ALPHA 0.3f

/* Name of an activation ("relu"), or "?" when out of range. */
const char *nb_activation_name(nb_activation a);

/* ---- linear algebra (ops/matmul.c) ---- */

/* (M, K) · (K, N) -> (M, N) with BLIS bli_sgemm; the backward passes use BLIS's
 * strides instead of materialised transposes. Both inputs must be 2-D floats
 * with matching inner sizes (NB_ERR_SHAPE names both shapes otherwise). */
nb_tensor *nb_matmul(nb_graph *g, nb_tensor *a, nb_tensor *b);

/* Fused dense layer: act(x · w + b), x (B, in) (or (..., in): every leading
 * position is a row, the output (..., out)), w (in, out), b (out) or (1, out),
 * or NULL for no bias; act one of NB_LINEAR, NB_RELU, NB_SIGMOID, NB_TANH: one
 * node (GEMM, then one pass for bias and activation; its backward keeps a (B, out)
 * scratch buffer). Any other activation gives a linear dense node followed by
 * the activation's own node (nb_activate); for NB_SOFTMAX that is nb_softmax,
 * so the Keras losses below find the logits. Gradients go only to the sources
 * that keep one. An unknown activation is NB_ERR_ARG. */
nb_tensor *nb_dense(nb_graph *g, nb_tensor *x, nb_tensor *w, nb_tensor *b, nb_activation act);

/* ---- elementwise (ops/elementwise.c) ----
 * Binary ops broadcast with NumPy's rules over any axes: the shapes are
 * right-aligned, a missing leading dimension counts as 1, each pair of sizes must
 * be equal or contain a 1, and out takes the larger of each pair, so (B, K) + (K)
 * adds a bias to every row, (2, 3, 4) + (3, 1) gives (2, 3, 4) and (B, 1) * (1, K)
 * an outer product. Each input's gradient is summed over the axes it was
 * broadcast along, so it has the input's shape. Both inputs must be float
 * tensors (NB_ERR_ARG otherwise); shapes that do not broadcast are NB_ERR_SHAPE,
 * the message naming the op and both shapes. See also the math section below
 * (nb_div, nb_maximum, nb_minimum). */
nb_tensor *nb_add(nb_graph *g, nb_tensor *a, nb_tensor *b);
nb_tensor *nb_sub(nb_graph *g, nb_tensor *a, nb_tensor *b);
nb_tensor *nb_mul(nb_graph *g, nb_tensor *a, nb_tensor *b);
/* a * s for a constant s; out has a's shape. */
nb_tensor *nb_scale(nb_graph *g, nb_tensor *a, float s);

/* ---- activations (ops/activation.c) ----
 * Elementwise, out has a's shape; a must be a float tensor. The sigmoid is
 * evaluated without overflow for any |x|. */
nb_tensor *nb_relu(nb_graph *g, nb_tensor *a);
nb_tensor *nb_sigmoid(nb_graph *g, nb_tensor *a);
nb_tensor *nb_tanh(nb_graph *g, nb_tensor *a);
/* An activation by enum: nb_relu, nb_sigmoid, nb_tanh, nb_softmax, and the math
 * section's nb_leaky_relu (alpha NB_LEAKY_RELU_ALPHA), nb_elu, nb_gelu (exact),
 * nb_silu, nb_softplus. NB_LINEAR returns a itself (no node); an unknown value is
 * NB_ERR_ARG. */
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

/* ---- more broadcasting binaries (ops/elementwise.c) ----
 * Shapes, broadcasting, gradients and failures as nb_add above. */

/* a / b. Gradients g / b and -g a / b² (IEEE results where b is 0). */
nb_tensor *nb_div(nb_graph *g, nb_tensor *a, nb_tensor *b);
/* max(a, b) / min(a, b) elementwise. The gradient of each element goes to one
 * input: for nb_maximum to a where a >= b, else to b; for nb_minimum to a where
 * a <= b, else to b. Ties therefore go to a, as TensorFlow's gradients do. A
 * NaN in either input gives NaN (TensorFlow since 2.4, NumPy). */
nb_tensor *nb_maximum(nb_graph *g, nb_tensor *a, nb_tensor *b);
nb_tensor *nb_minimum(nb_graph *g, nb_tensor *a, nb_tensor *b);

/* ---- unary math (ops/unary.c) ----
 * Elementwise: out has a's shape; a must be a float tensor (NB_ERR_ARG names the
 * op otherwise). Values outside a function's domain give IEEE results (log of a
 * negative number is NaN, of 0 is -Inf) rather than errors; nb_check_numerics
 * finds them. */
nb_tensor *nb_neg(nb_graph *g, nb_tensor *a);    /* -a */
nb_tensor *nb_exp(nb_graph *g, nb_tensor *a);    /* e^a (0 below -87.3, +Inf above 88.7) */
nb_tensor *nb_log(nb_graph *g, nb_tensor *a);    /* natural log; gradient g / a */
nb_tensor *nb_sqrt(nb_graph *g, nb_tensor *a);   /* gradient g / (2 sqrt a): +Inf at 0 */
nb_tensor *nb_square(nb_graph *g, nb_tensor *a); /* a²; gradient 2 a g */
/* |a|; gradient sign(a) g, 0 at a = 0 (as TensorFlow). */
nb_tensor *nb_abs(nb_graph *g, nb_tensor *a);
/* a clipped to [lo, hi] (tf.clip_by_value, keras.ops.clip). The gradient is g
 * where lo <= a <= hi, bounds included (TensorFlow's convention), 0 outside.
 * lo > hi or a NaN bound is NB_ERR_ARG. */
nb_tensor *nb_clip(nb_graph *g, nb_tensor *a, float lo, float hi);
/* a^p for a constant exponent p (powf); gradient p a^(p-1) g. p = 2 is exact
 * (a * a) and p = 0 gives 1 with gradient 0. A non-finite p is NB_ERR_ARG. */
nb_tensor *nb_pow(nb_graph *g, nb_tensor *a, float p);

/* ---- more activations (ops/activation.c) ----
 * Elementwise, out has a's shape, a must be a float tensor. */
/* x for x >= 0, alpha x below (Keras's LeakyReLU layer; alpha 0.3 there, 0.2 in
 * keras.activations.leaky_relu and tf.nn.leaky_relu). Gradient 1 for x > 0,
 * alpha for x <= 0 (at 0 the slope of the negative side, as TensorFlow). A
 * non-finite alpha is NB_ERR_ARG. */
nb_tensor *nb_leaky_relu(nb_graph *g, nb_tensor *a, float alpha);
/* Keras's elu with alpha 1: x for x > 0, e^x - 1 otherwise; gradient 1 for
 * x > 0, e^x = y + 1 otherwise. */
nb_tensor *nb_elu(nb_graph *g, nb_tensor *a);
/* Gaussian error linear unit, as Keras's gelu(x, approximate): the exact
 * 0.5 x (1 + erf(x / √2)) when approximate is false (Keras's default), or the
 * tanh form 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))) when true. The gradient
 * is that of the form chosen. Both are evaluated to float precision without
 * libm calls (the erf form through a Chebyshev fit of erfc), so they vectorise. */
nb_tensor *nb_gelu(nb_graph *g, nb_tensor *a, bool approximate);
/* x * sigmoid(x) (Keras's silu, also swish); gradient s (1 + x (1 - s)). */
nb_tensor *nb_silu(nb_graph *g, nb_tensor *a);
/* log(1 + e^x), computed as max(x, 0) + log1p(e^-|x|): no overflow for any x;
 * gradient sigmoid(x). */
nb_tensor *nb_softplus(nb_graph *g, nb_tensor *a);

/* ---- reductions over axes (ops/reduce_axes.c) ----
 * tf.reduce_* semantics: `axes` lists n_axes axes of a (negative counts from the
 * end, -1 the last); n_axes 0 or axes NULL reduces over every axis. keepdims
 * keeps each reduced axis with size 1 (so the result broadcasts against a);
 * otherwise they are removed (all of them removed gives a scalar). a must be a
 * float tensor. A repeated or out-of-range axis, or n_axes outside
 * 0..NB_MAX_DIMS, is NB_ERR_ARG naming the op, the axis and a's shape. */
nb_tensor *nb_reduce_sum(nb_graph *g, nb_tensor *a, int n_axes, const int *axes, bool keepdims);
/* The mean over the axes: the sum divided by the number of elements reduced. */
nb_tensor *nb_reduce_mean(nb_graph *g, nb_tensor *a, int n_axes, const int *axes, bool keepdims);
/* The maximum over the axes. The gradient goes to the FIRST maximum of each
 * reduced group (in row-major order), all of it; TensorFlow instead shares it
 * equally among tied maxima. A NaN in a group gives NaN (and no gradient). */
nb_tensor *nb_reduce_max(nb_graph *g, nb_tensor *a, int n_axes, const int *axes, bool keepdims);
/* log Σ exp(a) over the axes (tf.reduce_logsumexp), max-subtracted: finite for
 * any finite a (±1000 included). Gradient softmax over each group. */
nb_tensor *nb_logsumexp(nb_graph *g, nb_tensor *a, int n_axes, const int *axes, bool keepdims);
/* Index of the first maximum along one axis (negative counts from the end) ->
 * an NB_I32 tensor of a's shape without that axis (tf.math.argmax, int32). NaNs
 * are skipped unless a whole line is NaN (index 0). No gradient. A bad axis is
 * NB_ERR_ARG. */
nb_tensor *nb_argmax(nb_graph *g, nb_tensor *a, int axis);


/* ==== structure: views and layout, indexing, batched matmul, normalisation, dropout ==== */

/* ---- layout (ops/layout.c) ----
 * These ops COPY: each output is a new contiguous tensor, not a view of its
 * input, and its backward adds the gradient back where each element came from.
 * transpose, slice, concat and split also take NB_I32 tensors (no gradient);
 * broadcast_to takes floats only. Node descriptions (nb_graph_print / dot) show
 * the attributes: "perm=[0,2,1,3]", "start=[0,-1] stop=[end,end] step=[1,2]",
 * "axis=1", "shape=[2,3,4]", "axis=1 part=0/3 offset=0 size=2". */

/* Axes permuted: out.shape[d] = a.shape[perm[d]] (NumPy / tf.transpose). perm
 * holds a->ndim distinct axes 0..ndim-1; NULL reverses the axes (a matrix
 * transpose for 2-D). A perm that is not a permutation is NB_ERR_ARG naming
 * the perm and a's shape. */
nb_tensor *nb_transpose(nb_graph *g, nb_tensor *a, const int *perm);

/* Marks "to the end of the axis" in nb_slice's stop array. */
#define NB_SLICE_END 0x7fffffff

/* a[start:stop:step] on every axis, Python rules: start, stop and step are
 * arrays of a->ndim ints (NULL: start 0, stop NB_SLICE_END, step 1 on every
 * axis). A negative start or stop counts from the end (-1 is the last element),
 * then both are clamped to [0, dim]; the axis keeps ceil((stop - start) / step)
 * elements. Indices are resolved against the input's shape on every run, so a
 * slice of a batch input follows the batch. step < 1 is NB_ERR_ARG (no reversed
 * slices); an axis left empty is NB_ERR_SHAPE (tensors have no zero sizes). */
nb_tensor *nb_slice(nb_graph *g, nb_tensor *a, const int *start, const int *stop, const int *step);

/* xs[0] | xs[1] | ... joined along `axis` (negative counts from the end, -1
 * the last). All n >= 1 inputs have one dtype and the same shape except along
 * axis (else NB_ERR_SHAPE naming the input). A node holds at most NB_MAX_SRC
 * inputs: beyond that the result is a chain of concat nodes (the running result
 * is the first input of the next), one extra copy of the running result per
 * NB_MAX_SRC - 1 further inputs. Returns the last node. */
nb_tensor *nb_concat(nb_graph *g, int n, nb_tensor *const *xs, int axis);

/* Cut a along `axis` (negative counts from the end) into n parts, written to
 * out[0..n-1] (one node each, borrowed from g). sizes (n entries, each >= 1)
 * gives each part's length and must total a's length on that axis at every run;
 * NULL cuts n equal parts (the length must divide by n at every run, so a split
 * of the batch axis follows the batch). Returns NB_OK, or a status with every
 * out[i] NULL and a message on g (NB_ERR_ARG for bad n/axis/sizes, NB_ERR_SHAPE
 * when the axis does not divide as asked). */
nb_status nb_split(nb_graph *g, nb_tensor *a, int axis, int n, const int *sizes, nb_tensor **out);

/* a repeated to `shape` (ndim axes) by NumPy's broadcasting rules: shapes are
 * aligned at the last axis, and each axis of a must equal the target's or be 1
 * (missing leading axes count as 1). The backward sums the gradient over the
 * repeated axes. The target shape is fixed when built. Incompatible shapes are
 * NB_ERR_SHAPE naming both; ndim outside 0..NB_MAX_DIMS or a dimension < 1 is
 * NB_ERR_ARG. */
nb_tensor *nb_broadcast_to(nb_graph *g, nb_tensor *a, int ndim, const int *shape);

/* ---- indexing (ops/index.c) ---- */

/* tf.gather on axis 0, the embedding lookup: table (V, d1, ...) floats, indices
 * an NB_I32 tensor of any shape -> (indices.shape, d1, ...) with out[i] =
 * table[indices[i]] (one row memcpy per index). An index outside [0, V) is
 * NB_ERR_ARG, at build and at any later nb_forward, naming its position:
 * "gather: indices[1, 2] = 7 is outside the valid range [0, 5) of table (5, 4)".
 * The backward adds each output row into the table's gradient row it came from
 * (a repeated index receives the sum); indices get no gradient. */
nb_tensor *nb_gather(nb_graph *g, nb_tensor *table, nb_tensor *indices);

/* tf.one_hot: NB_I32 indices of any shape -> floats (indices.shape, depth) with
 * 1 at [..., indices[...]] and 0 elsewhere. As in TensorFlow, an index outside
 * [0, depth) (negative included) gives a row of zeros, not an error. No
 * gradient. depth < 1 is NB_ERR_ARG; float indices are NB_ERR_ARG. */
nb_tensor *nb_one_hot(nb_graph *g, nb_tensor *indices, int depth);

/* ---- batched matmul (ops/bmm.c) ---- */

/* tf.linalg.matmul / np.matmul on stacks of matrices: a (..., M, K) · b (..., K, N)
 * -> (..., M, N). transpose_a reads a stored as (..., K, M), transpose_b b stored
 * as (..., N, K) (the last two axes swapped; BLIS strides, no copy). Both inputs
 * have at least 2 axes; their leading batch axes broadcast by NumPy's rules (e.g.
 * (B, H, T, D) · (D, E), or (1, H, T, D) · (B, H, D, T)), and the gradient of a
 * broadcast operand is summed over the items that reused it. Each batch item is
 * a BLIS GEMM, or for small items (up to 64 x 64 x 64) a register-tiled kernel
 * that avoids BLIS's fixed cost per call; items are shared over the thread
 * pool, and when b has no batch and a is not transposed they form one tall
 * GEMM. Mismatched inner sizes or batch axes are NB_ERR_SHAPE naming both
 * shapes (e.g. "batch_matmul: cannot multiply (2, 3, 4) by (3, 4) (need
 * (..., M, K) and (..., K, N) with broadcastable batch axes)"); non-float inputs
 * NB_ERR_ARG. Its description is "transpose_a", "transpose_b", both, or empty. */
nb_tensor *nb_batch_matmul(nb_graph *g, nb_tensor *a, nb_tensor *b, bool transpose_a, bool transpose_b);

/* ---- normalisation, dropout, causal softmax (ops/norm.c, ops/dropout.c, ops/mask.c) ---- */

/* Default epsilons of the two references: Keras LayerNormalization uses 1e-3,
 * torch.nn.LayerNorm 1e-5. */
#define NB_KERAS_LAYER_NORM_EPSILON 1e-3f
#define NB_TORCH_LAYER_NORM_EPSILON 1e-5f

/* Layer normalisation over the last axis (one fused node): x (..., D) ->
 * (x - mean) / sqrt(var + epsilon) * gamma + beta per row, with the biased
 * variance Σ (x - mean)² / D. gamma and beta are (D) (or any shape of D elements
 * ending in D), or NULL for none (scale 1, shift 0). epsilon must be finite and
 * > 0 (NB_ERR_ARG). Keeps each row's mean and 1/std (2 floats per row) for a
 * closed-form backward to x, gamma and beta. Described as "epsilon=0.001 gamma beta". */
nb_tensor *nb_layer_norm(nb_graph *g, nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, float epsilon);

/* Inverted dropout (Keras Dropout, torch.nn.Dropout): in training mode
 * (nb_graph_training, read at every nb_forward) each element is zeroed with
 * probability `rate` and the rest are scaled by 1 / (1 - rate); otherwise (and
 * at rate 0) the output is a copy of x. The mask is drawn from the graph's
 * generator (nb_graph_rng) at each training forward, so nb_graph_seed reproduces
 * it, and kept for the backward (one float per element, allocated at the first
 * training forward). rate outside [0, 1) is NB_ERR_ARG. Described as "rate=0.5". */
nb_tensor *nb_dropout(nb_graph *g, nb_tensor *x, float rate);

/* Softmax over the last axis with a causal mask, for attention: scores
 * (..., T, T), row i (a query position) sees columns j <= i only, softmax over
 * those, and y[..., i, j] is exactly 0 for j > i (the scores there are never
 * read). Equal to softmax(scores + M) with M = -inf above the diagonal, in one
 * node with no mask tensor; masked positions get no gradient. Scores that are
 * not square in their last two axes are NB_ERR_SHAPE, non-float NB_ERR_ARG. */
nb_tensor *nb_causal_softmax(nb_graph *g, nb_tensor *scores);


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
 * dilations >= 1 (both may exceed 1 together). Computed as BLIS GEMMs over the
 * im2col matrix (B*OH*OW, KH*KW*C), a chunk of images at a time (about 1 MB of
 * col and output rows, so they stay in cache), the batch split by images over
 * the threads; a 1x1, stride-1 convolution without padding multiplies x
 * directly. Backward: dkernel += colᵀ · dout (col kept from the forward when at
 * most 8 MB, else rebuilt per chunk), dbias += column sums of dout, and only
 * when x keeps a gradient (not for an nb_input image), dx += col2im(dout · kernelᵀ).
 * Described as "3x3 stride 2 same" (plus " dilation 2" when > 1). */
nb_tensor *nb_conv2d(nb_graph *g, nb_tensor *x, nb_tensor *kernel, nb_tensor *bias, int stride_h, int stride_w,
                     nb_padding padding, int dilation_h, int dilation_w);

/* nb_relu(nb_conv2d(...)) as one node (what Conv2D(activation="relu") builds):
 * the bias and the relu are applied in one pass after the GEMM, and the backward
 * masks the output gradient itself, with no separate relu node, tensor or pass.
 * Same arguments, shapes and failures as nb_conv2d; described with " relu". */
nb_tensor *nb_conv2d_relu(nb_graph *g, nb_tensor *x, nb_tensor *kernel, nb_tensor *bias, int stride_h, int stride_w,
                          nb_padding padding, int dilation_h, int dilation_w);

/* Max pooling (tf.nn.max_pool2d, Keras MaxPooling2D): x (B, H, W, C) -> (B, OH,
 * OW, C), the maximum over each pool_h x pool_w window moved by the strides
 * (Keras's default strides are the pool size; pass them explicitly here). The
 * window position of each maximum is kept in scratch; the gradient goes to the
 * FIRST maximum of the window in row-major order when several elements tie.
 * Described as "pool 2x2 stride 2 valid". */
nb_tensor *nb_max_pool2d(nb_graph *g, nb_tensor *x, int pool_h, int pool_w, int stride_h, int stride_w,
                         nb_padding padding);

/* A max-pooling window: pool size, strides and padding (nb_max_pool2d's). */
typedef struct nb_pool_window {
    int pool_h, pool_w, stride_h, stride_w;
    nb_padding padding;
} nb_pool_window;

/* nb_max_pool2d(nb_conv2d_relu(x, kernel, bias, strides, padding, 1, 1), pool)
 * as one node, equal to that pair in values and in every gradient (the model
 * builds it for a Conv2D with relu whose only reader is a MaxPooling2D). Each
 * chunk of images is convolved and pooled while in the core's cache, so the
 * convolution's output, its gradient and their passes through memory never
 * exist; the scratch keeps the pooled maxima's positions. Same failures as the
 * pair (no dilation); described as "3x3 stride 1 valid relu, pool 2x2 stride 2 valid". */
nb_tensor *nb_conv2d_relu_max_pool2d(nb_graph *g, nb_tensor *x, nb_tensor *kernel, nb_tensor *bias, int stride_h,
                                     int stride_w, nb_padding padding, nb_pool_window pool);

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
    NB_OP_DIV,
    NB_OP_MAXIMUM,
    NB_OP_MINIMUM,
    NB_OP_NEG,
    NB_OP_EXP,
    NB_OP_LOG,
    NB_OP_SQRT,
    NB_OP_SQUARE,
    NB_OP_ABS,
    NB_OP_CLIP,
    NB_OP_POW,
    NB_OP_LEAKY_RELU,
    NB_OP_ELU,
    NB_OP_GELU,
    NB_OP_SILU,
    NB_OP_SOFTPLUS,
    NB_OP_REDUCE_SUM,
    NB_OP_REDUCE_MEAN,
    NB_OP_REDUCE_MAX,
    NB_OP_LOGSUMEXP,
    NB_OP_ARGMAX, /* no gradient: its backward is NULL */


    /* -- structure: layout, indexing, batched matmul, normalisation, dropout, masks -- */
    NB_OP_TRANSPOSE,
    NB_OP_SLICE,
    NB_OP_CONCAT,
    NB_OP_SPLIT,
    NB_OP_BROADCAST_TO,
    NB_OP_GATHER,
    NB_OP_ONE_HOT,
    NB_OP_BATCH_MATMUL,
    NB_OP_LAYER_NORM,
    NB_OP_DROPOUT,
    NB_OP_CAUSAL_SOFTMAX,


    /* -- convolution, pooling, batch normalisation -- */
    NB_OP_CONV2D,
    NB_OP_MAX_POOL2D,
    NB_OP_AVG_POOL2D,
    NB_OP_GLOBAL_AVG_POOL2D,
    NB_OP_BATCH_NORM,
    NB_OP_CONV2D_RELU_MAX_POOL2D,


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
