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


/* ==== convolution, pooling, batch normalisation (NHWC) ==== */


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
