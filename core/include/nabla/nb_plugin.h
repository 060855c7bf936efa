/* nb_plugin.h — how an op plugs into the core (the interface every op, built in or
 * written by a user, is written against).
 *
 * The core knows nothing of particular ops: each node carries a pointer to its
 * op's definition (name, shape rule, forward, backward), which ops/ supplies, and
 * the graph runner calls through it. Writing a new op is filling one nb_op and a
 * builder function that calls nb_node. */
#ifndef NB_OP_H
#define NB_OP_H

#include <nabla/nb_tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

struct nb_op {
    const char *name; /* "matmul", shown in messages, print and dot */
    int n_src;        /* number of inputs; NB_VARIADIC: 1..NB_MAX_SRC */
    /* Derive t->ndim, t->shape and t->dtype from t->src and t->attr (t->dtype is
     * NB_F32 on entry). On a mismatch return nb_node_fail(t, NB_ERR_SHAPE or
     * NB_ERR_ARG, ...) naming the op and the shapes; NB_OK otherwise. Called at
     * build time and again on each nb_forward (cheap, allocates nothing). */
    nb_status (*shape)(nb_tensor *t);
    /* Compute t->data from the sources. Returns NB_OK, or a status after calling
     * nb_node_fail (e.g. a label out of range, naming the row and value). */
    nb_status (*forward)(nb_tensor *t);
    /* Add d(loss)/d(src) into src[i]->grad for every src whose grad is non-NULL,
     * given t->grad. Only ever adds (+=). NULL for ops with no gradient. */
    void (*backward)(nb_tensor *t);
    /* Optional: write the node's attributes readably ("axes=[1] keepdims",
     * "rate=0.5") into buf (len bytes, NUL-terminated) for nb_graph_print and
     * nb_graph_dot. NULL when the op has none worth showing. */
    void (*describe)(const nb_tensor *t, char *buf, size_t len);
};

#define NB_VARIADIC (-1)

/* Build a node: checks the sources (a NULL source returns NULL and keeps the
 * graph's first message, or records "<op>: input k is NULL"; sources from another
 * graph are an error), copies the op's attribute struct (`attr`, `attr_size`
 * bytes, at most NB_ATTR_BYTES; NULL/0 for none, leaving all zeros), runs the
 * shape rule, allocates the output (and its gradient when any source needs one
 * and the op has a backward), evaluates it and appends it to the graph.
 * Returns the node, or NULL with a message on g. */
nb_tensor *nb_node(nb_graph *g, const nb_op *op, nb_tensor *const *src, int n_src,
                   const void *attr, size_t attr_size);

/* Record a failure of node t (or of an op being built on t->graph): the message
 * goes to nb_last_error and, when the graph has none yet, to nb_graph_error.
 * Returns `s` for convenience. */
nb_status nb_node_fail(nb_tensor *t, nb_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Record a build error on g (kept only when g has none yet) and return NULL. */
nb_tensor *nb_graph_fail(nb_graph *g, nb_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* An op-private float buffer of at least n floats attached to node t (e.g. the
 * softmax a fused loss keeps for its backward). Grows when n exceeds what was
 * allocated before, so steady-state calls allocate nothing. Returns NULL (after
 * recording NB_ERR_NOMEM) when out of memory. The buffer is owned by the graph. */
float *nb_scratch(nb_tensor *t, size_t n);

/* Rows and columns of a tensor seen as a matrix over its last axis:
 * cols = shape[ndim-1], rows = size / cols (1 x 1 for a scalar). */
static inline int nb_cols(const nb_tensor *t) { return t->ndim ? t->shape[t->ndim - 1] : 1; }
static inline int nb_rows(const nb_tensor *t) { return (int)(t->size / (size_t)nb_cols(t)); }

#ifdef __cplusplus
}
#endif
#endif
