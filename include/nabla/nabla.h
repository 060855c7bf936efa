/* nabla.h — reverse-mode automatic differentiation in C11.
 *
 * One header for the whole library. nabla records every op on a graph
 * (nb_graph); building an op also computes its value at once, so you can print
 * it right away. nb_backward walks the record in reverse and accumulates
 * gradients into every parameter. A complete program:
 *
 *     #include <nabla/nabla.h>
 *     #include <stdio.h>
 *
 *     int main(void)
 *     {
 *         nb_graph *g = nb_graph_new();
 *         nb_tensor *x = nb_input(g, NB_F32, 2, (int[]){1, 3});   // (batch 1, 3)
 *         nb_tensor *w = nb_param(g, 1, (int[]){3});              // trainable
 *         for (int i = 0; i < 3; i++) { x->data[i] = i + 1.0f; w->data[i] = 0.5f; }
 *         nb_tensor *loss = nb_sum(g, nb_mul(g, x, w));           // sum(x * w)
 *         if (!loss) { fprintf(stderr, "%s\n", nb_graph_error(g)); return 1; }
 *         nb_backward(g, loss);                                   // d loss / d w = x
 *         printf("loss %g, dw = [%g %g %g]\n", loss->data[0], w->grad[0], w->grad[1], w->grad[2]);
 *         nb_graph_free(g);                                       // frees every tensor
 *         return 0;
 *     }
 *
 * Modules (each has its own header under <nabla/>, all included here; the
 * library is layered core <- ops, optim <- nn, and each module is compiled
 * seeing only the headers below it):
 *   nb_base.h   status codes, nb_last_error, the allocator hook, threads
 *   nb_tensor.h tensors, graphs, inputs and parameters, forward / backward
 *   nb_plugin.h how an op plugs into the graph (for writing new ops)
 *   nb_rng.h    the seeded random generator (PCG32)
 *   nb_parallel.h  nb_parallel_for and nb_sgemm (threads: nb_set_num_threads)
 *   nb_debug.h  nb_graph_print, nb_graph_dot, nb_gradcheck, nb_check_numerics
 *   nb_ops.h    the ops: matmul, dense, add/sub/mul/scale, activations,
 *               softmax, the cross-entropy losses, reductions, reshape
 *   nb_optim.h  optimizers (Adam, SGD with momentum) over a flat parameter array
 *   nb_nn.h     Keras-style models: Sequential, Dense, compile / fit / evaluate /
 *               predict, summary, save / load
 *
 * Ownership: a graph owns all its tensors; every tensor pointer is borrowed and
 * valid until nb_graph_free. Errors: ops return NULL and record a message on the
 * graph (nb_graph_error); other functions return an nb_status and set
 * nb_last_error(). Nothing in nabla aborts on bad input. */
#ifndef NABLA_H
#define NABLA_H

#include <nabla/nb_base.h>
#include <nabla/nb_tensor.h>
#include <nabla/nb_plugin.h>
#include <nabla/nb_rng.h>
#include <nabla/nb_debug.h>
#include <nabla/nb_parallel.h>
#include <nabla/nb_ops.h>
#include <nabla/nb_optim.h>
#include <nabla/nb_nn.h>
#include <nabla/nb_dist.h>

#endif
