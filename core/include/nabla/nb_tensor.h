/* nb_tensor.h — tensors and the computation graph.
 *
 * A graph (nb_graph) owns every tensor made in it; nb_graph_free releases them
 * all, so every nb_tensor pointer the library returns is borrowed from its graph.
 * Nodes are kept in creation order, which is a topological order: a node can only
 * use nodes made before it.
 *
 * Building a node EVALUATES it at once (eager), so values can be printed right
 * away. nb_forward(g) re-runs every node from the current leaf data, so a
 * training loop builds the graph once and then only refills the inputs.
 * nb_backward(g, loss) walks the nodes in reverse and accumulates (+=) into each
 * parameter's gradient; call nb_zero_grad(g) before each step that should start
 * from zero.
 *
 * Shapes: up to NB_MAX_DIMS dimensions, row-major and contiguous. The leading
 * dimension of inputs is the batch dimension; it may change between forward runs
 * (nb_input_set_batch) and every node's shape is re-derived without rebuilding.
 * Buffers only grow, so after the first step at the largest batch no forward,
 * backward or zero_grad call allocates. */
#ifndef NB_TENSOR_H
#define NB_TENSOR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <nabla/nb_base.h>
#include <nabla/nb_rng.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NB_MAX_DIMS 6   /* NHWC images and (batch, heads, time, time) scores need 4 */
#define NB_MAX_SRC 8    /* inputs of one node; variadic ops (concat) chain beyond it */
#define NB_NAME_LEN 32

typedef struct nb_graph nb_graph;
typedef struct nb_tensor nb_tensor;
typedef struct nb_op nb_op;

/* Element type. Float tensors use `data`; integer tensors (class labels) use `idata`. */
typedef enum nb_dtype { NB_F32 = 0, NB_I32 = 1 } nb_dtype;

/* Tensor flags. */
enum {
    NB_FLAG_INPUT = 1 << 0,      /* a leaf whose data the user sets per batch */
    NB_FLAG_PARAM = 1 << 1,      /* a trainable leaf: data persists, gradient kept */
    NB_FLAG_NEEDS_GRAD = 1 << 2, /* grad is allocated: a parameter, or a node that depends on one
                                    (through ops that have a backward) */
    NB_FLAG_STATE = 1 << 3       /* a non-trainable leaf whose data persists and that ops may update
                                    in training mode (batch norm's moving mean and variance) */
};

/* Op attributes: the constants an op is built with (a scale factor, axes, a
 * permutation). The core stores them as bytes; each op reads and writes them
 * through its own named struct with NB_ATTR(t, type), so `attr` never means
 * "i[0]" to one op and something else to the next. */
#define NB_ATTR_BYTES 128
typedef union nb_attr {
    unsigned char bytes[NB_ATTR_BYTES];
    double align_d_;   /* alignment for any field an op struct may hold */
    void *align_p_;
    long long align_ll_;
} nb_attr;

/* t's attributes seen as the op's struct `type` (a compile error when the
 * struct is larger than NB_ATTR_BYTES). */
#define NB_ATTR(t, type) \
    ((type *)(void *)((t)->attr.bytes + 0 * sizeof(char[sizeof(type) <= NB_ATTR_BYTES ? 1 : -1])))

/* A tensor: a node of the graph. The struct is public and meant to be read
 * (teaching code prints t->data and t->grad); change only `data` of inputs and
 * parameters, and only between runs. */
struct nb_tensor {
    int ndim;                 /* number of dimensions, 1..NB_MAX_DIMS (0 for a scalar) */
    int shape[NB_MAX_DIMS];   /* sizes, outermost first; shape[0] is the batch for inputs */
    size_t size;              /* number of elements: the product of shape[] (1 for a scalar) */
    nb_dtype dtype;           /* NB_F32 (data) or NB_I32 (idata) */
    float *data;              /* (shape) values, row-major; NULL for NB_I32 */
    int32_t *idata;           /* (shape) integer values, row-major; NULL for NB_F32 */
    float *grad;              /* (shape) d(loss)/d(this); NULL unless NB_FLAG_NEEDS_GRAD */
    int flags;                /* NB_FLAG_* */
    const nb_op *op;          /* the op that computes this node; NULL for leaves */
    nb_tensor *src[NB_MAX_SRC]; /* the op's inputs, n_src of them */
    int n_src;
    nb_attr attr;             /* the op's constants, read with NB_ATTR(t, type) */
    int id;                   /* position in the graph's creation order */
    char name[NB_NAME_LEN];   /* debug name ("" unless set); shown by print and dot */
    nb_graph *graph;          /* the owning graph */
    /* internal: allocated element counts and op scratch space */
    size_t cap;               /* elements allocated for data/idata and grad */
    float *scratch;           /* op-private buffer (see nb_scratch) */
    size_t scratch_cap;       /* floats allocated in scratch */
    float *own_data;          /* an input's own buffer while `data` points at the caller's (nb_input_borrow) */
};

/* ---- Graphs -------------------------------------------------------------- */

/* A new, empty graph. Returns NULL (and sets nb_last_error) when out of memory.
 * Free it with nb_graph_free. */
nb_graph *nb_graph_new(void);

/* Free the graph and every tensor made in it. NULL is a no-op. */
void nb_graph_free(nb_graph *g);

/* The first error recorded while building this graph, or NULL when none.
 * Owned by the graph. */
const char *nb_graph_error(const nb_graph *g);

/* The status that came with that first error (NB_ERR_SHAPE, NB_ERR_NOMEM, ...),
 * NB_OK when none; NB_ERR_ARG for a NULL graph. Callers that build graphs pass
 * it on unchanged instead of guessing from the message. */
nb_status nb_graph_status(const nb_graph *g);

/* Forget the graph's recorded error and status (e.g. after handling a failed
 * forward). */
void nb_graph_clear_error(nb_graph *g);

/* Gradients on or off for the parameters made from now on (on for a new graph).
 * An inference graph turns them off before building: its parameters and every
 * node computed from them then keep no gradient buffer (torch.no_grad), and
 * nb_graph_bind_params takes a NULL gradient block. */
void nb_graph_set_grad_enabled(nb_graph *g, bool enabled);

/* Training mode: a property of the graph that ops such as dropout and batch
 * normalisation read on every forward run (off for a new graph). Turning it on
 * or off takes effect at the next nb_forward; nothing is rebuilt. */
void nb_graph_set_training(nb_graph *g, bool training);
bool nb_graph_training(const nb_graph *g);

/* The graph's random generator (for ops that draw, e.g. dropout masks), seeded
 * with NB_GRAPH_DEFAULT_SEED at creation. Borrowed from the graph; NULL for a
 * NULL graph. nb_graph_seed re-seeds it, so the same seed gives the same draws. */
#define NB_GRAPH_DEFAULT_SEED 42u
nb_rng *nb_graph_rng(nb_graph *g);
void nb_graph_seed(nb_graph *g, uint64_t seed);

/* Number of nodes, and the i-th node in creation order (NULL when out of range). */
int nb_graph_size(const nb_graph *g);
nb_tensor *nb_graph_node(const nb_graph *g, int i);

/* ---- Leaves -------------------------------------------------------------- */

/* An input leaf of the given shape (shape[0] is the batch size), zero-filled.
 * dtype NB_F32 for features, NB_I32 for class labels. Returns NULL and records
 * a message on the graph for a NULL graph/shape or a dimension < 1. */
nb_tensor *nb_input(nb_graph *g, nb_dtype dtype, int ndim, const int *shape);

/* A trainable parameter (float, gradient kept), zero-filled; fill `data` with an
 * initializer. Returns NULL and records a message on bad arguments. */
nb_tensor *nb_param(nb_graph *g, int ndim, const int *shape);

/* A non-trainable state leaf (float, no gradient), zero-filled: values an op
 * keeps across runs and updates itself, such as batch normalisation's moving
 * statistics. Models save them with the weights. Fails as nb_param does. */
nb_tensor *nb_state(nb_graph *g, int ndim, const int *shape);

/* Let float input t read `batch` rows straight from the caller's `data` (no
 * copy) until nb_input_release or the next nb_input_set_batch / nb_input_set /
 * nb_input_borrow on it; the caller keeps the rows alive and unchanged until
 * then. For inference on the caller's own arrays (nb_predict). NB_ERR_ARG for a
 * non-input, an int32 input, NULL data or batch < 1. */
nb_status nb_input_borrow(nb_tensor *t, const float *data, int batch);

/* Give input t its own buffer back (its values are then undefined). A no-op for
 * an input that does not borrow, or NULL. */
void nb_input_release(nb_tensor *t);

/* Change an input's leading (batch) dimension to `batch` (>= 1). Grows its
 * buffer when needed (the only allocation), keeping nothing of the old values.
 * Call nb_forward afterwards. Returns NB_ERR_ARG for a non-input or batch < 1. */
nb_status nb_input_set_batch(nb_tensor *t, int batch);

/* Copy `batch` rows from `src` into input `t` (sets the batch first). `src`
 * holds batch * (t->size / t->shape[0]) floats, or int32 values for NB_I32. */
nb_status nb_input_set(nb_tensor *t, const void *src, int batch);

/* Give a tensor a debug name (truncated to NB_NAME_LEN-1). Returns t. */
nb_tensor *nb_set_name(nb_tensor *t, const char *name);

/* ---- Running ------------------------------------------------------------- */

/* Re-run every node in creation order from the current leaf data, re-deriving
 * shapes from the inputs' batch sizes. On failure (e.g. a label out of range)
 * returns the status, records the message (nb_last_error, nb_graph_error) and
 * stops; values after the failing node are stale. */
nb_status nb_forward(nb_graph *g);

/* Reverse-mode pass from `loss`, which must hold one element: seeds
 * d(loss)/d(loss) = 1, clears the gradients of intermediate nodes, then runs each
 * op's backward from `loss` down to the first node. Parameter gradients are
 * ACCUMULATED (+=), so call nb_zero_grad first unless you mean to sum over
 * several backward passes. A node used twice receives the sum of both paths.
 * Returns NB_ERR_ARG for a NULL or non-scalar loss, or one from another graph. */
nb_status nb_backward(nb_graph *g, nb_tensor *loss);

/* Backward hook: fn(ctx, i) is called by nb_backward once for every node i
 * from the loss down to node 0, right after node i's backward ran (or was
 * skipped: leaves and nodes without a gradient get the call too; no calls when
 * the loss depends on no parameter). When it is
 * called with i, every node with id >= i has finished its backward, so a
 * parameter's gradient is final once i has reached the earliest node that reads
 * the parameter (the smallest id among its consumers). Distributed training uses
 * it to start reducing gradients while backward is still running. The hook runs
 * on the calling thread, must not run forward or backward on this graph, and
 * should be quick (it sits between two ops). NULL fn removes it; a NULL graph
 * is a no-op. ctx is passed back untouched and never freed. */
void nb_graph_set_backward_hook(nb_graph *g, void (*fn)(void *ctx, int node_id), void *ctx);

/* Set every gradient in the graph to zero. */
void nb_zero_grad(nb_graph *g);

/* ---- Parameters as one flat buffer ---------------------------------------
 * Optimizers want every parameter in one contiguous array so an update is a
 * single loop. nb_graph_pack_params moves all parameters' data and gradients into
 * two contiguous buffers (in creation order; each tensor's data/grad pointers are
 * re-pointed into them). Parameters made afterwards are not packed: call it again.
 * Returns NB_ERR_NOMEM on allocation failure (the graph is left unchanged). */
nb_status nb_graph_pack_params(nb_graph *g);

/* Bind the parameters to blocks the CALLER owns instead: every parameter's data
 * and grad (creation order) are re-pointed into data / grad, which hold n floats
 * (the sum of the parameters' sizes, else NB_ERR_ARG) and must outlive the
 * graph. The values in the blocks are used as they are (what the parameters held
 * is dropped). This is how several graphs (training, inference, another batch
 * size) share one model's weights with no copy. The graph never frees them.
 * grad may be NULL when the graph's parameters keep no gradient
 * (nb_graph_set_grad_enabled(g, false) before they were made). */
nb_status nb_graph_bind_params(nb_graph *g, float *data, float *grad, size_t n);

/* The same for the state leaves (nb_state), into one caller-owned block of n
 * floats (NB_ERR_ARG when n is not their total). */
nb_status nb_graph_bind_state(nb_graph *g, float *data, size_t n);

/* Total elements of the graph's state leaves. */
size_t nb_graph_state_count(const nb_graph *g);

/* The packed (or bound) blocks and their length in floats (NULL / 0 before). */
float *nb_graph_param_data(const nb_graph *g);
float *nb_graph_param_grad(const nb_graph *g);
size_t nb_graph_param_count(const nb_graph *g);

/* ---- Shapes as text ------------------------------------------------------ */

/* Write t's shape as "(32, 784)" into buf (at most len bytes, always
 * NUL-terminated; "(null)" for NULL). Returns buf. */
char *nb_shape_str(const nb_tensor *t, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
