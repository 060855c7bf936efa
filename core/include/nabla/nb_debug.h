/* nb_debug.h — teaching and debugging tools: a table of the graph, Graphviz DOT,
 * a finite-difference gradient checker and a numerics check. */
#ifndef NB_DEBUG_H
#define NB_DEBUG_H

#include <stdbool.h>
#include <stdio.h>

#include <nabla/nb_tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Print one line per node to `out`: id, name, op, inputs, shape, and summaries
 * (min / mean / max) of the value and, when kept, the gradient. */
void nb_graph_print(const nb_graph *g, FILE *out);

/* Flags for nb_graph_dot. */
enum { NB_DOT_VALUES = 1, NB_DOT_GRADS = 2 };

/* Write the graph as a Graphviz DOT digraph to `out` (render with
 * `dot -Tpng`). With NB_DOT_VALUES / NB_DOT_GRADS, each node's label also shows
 * its first values / gradients. Returns NB_ERR_IO when writing fails. */
nb_status nb_graph_dot(const nb_graph *g, FILE *out, int flags);

/* Compare nb_backward's gradients of `loss` with central finite differences
 * (f(x+h) - f(x-h)) / 2h for every element of the n tensors in `params` (NULL:
 * every parameter of the graph, at most 256), each of which must keep a gradient.
 * Uses h when > 0, else 1e-3. On NB_OK, *worst is the largest error
 * |analytic - numeric| / max(1, |analytic|, |numeric|). Random ops (dropout)
 * draw the same values in every pass: the graph's generator is restored before
 * each one. Fails with NB_ERR_ARG (bad arguments), the forward/backward pass's
 * status, or NB_ERR_NUMERIC (a NaN loss); *worst is then NaN. Leaves data
 * unchanged and the gradients equal to one backward pass from zero. */
nb_status nb_gradcheck(nb_graph *g, nb_tensor *loss, nb_tensor *const *params, int n, float h, double *worst);

/* Scan every float node's value for NaN or Inf, in creation order. Returns NB_OK,
 * or NB_ERR_NUMERIC with a message naming the first node that holds one, its op,
 * the element and its inputs. */
nb_status nb_check_numerics(const nb_graph *g);

/* ---- Per-op timing ---------------------------------------------------------
 * When enabled, nb_forward and nb_backward time every node and add the time to
 * its op's row (process-wide, all graphs). Off by default; when off it costs one
 * branch per node. Not thread-safe: profile one training loop at a time. */
void nb_profile_enable(bool on);
void nb_profile_reset(void);

/* One row per op seen since the last reset: calls, forward and backward time in
 * milliseconds, sorted by total time. Returns the number of rows printed. */
int nb_profile_print(FILE *out);

#ifdef __cplusplus
}
#endif
#endif
