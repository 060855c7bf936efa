/* bench_matmul.c — nb_matmul through the graph (nb_forward / nb_backward) against
 * direct bli_sgemm calls on the same data, in GFLOP/s.
 *
 * Shapes: 512 x 512 x 512, and the MNIST MLP's (32 x 784 · 784 x 128 and
 * 32 x 128 · 128 x 10). Forward is 2·M·N·K flops; backward is two GEMMs
 * (dA = dC·Bᵀ, dB = Aᵀ·dC), 4·M·N·K. The backward graph is matmul followed by
 * nb_sum, so nabla's backward also pays for seeding and clearing the gradients
 * of the graph, which a direct call does not: that is the graph's overhead.
 * Each figure is the median of DIRECT_RUNS runs, each repeated until it takes about
 * 20 ms; nabla and direct runs alternate so drift hits both alike.
 *
 * Usage: bench_matmul [threads]   (default: NB_NUM_THREADS or 1) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nabla/nabla.h>
#include "direct_gemm.h"

typedef struct job {
    nb_graph *g;          /* the graph being timed */
    nb_tensor *a, *b, *c; /* (M, K), (K, N), (M, N) */
    nb_tensor *loss;      /* sum(c), for backward; NULL for forward */
    int M, K, N;
} job;

static void nabla_forward(void *ctx) { nb_forward(((job *)ctx)->g); }
static void nabla_backward(void *ctx) { nb_backward(((job *)ctx)->g, ((job *)ctx)->loss); }

static void direct_forward(void *ctx)
{
    const job *j = ctx;
    direct_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, j->M, j->N, j->K, j->a->data, j->K, 1, j->b->data, j->N, 1, 0.0f,
                 j->c->data, j->N);
}
static void direct_backward(void *ctx)
{
    const job *j = ctx;
    direct_sgemm(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, j->M, j->K, j->N, j->c->grad, j->N, 1, j->b->data, j->N, 1, 1.0f,
                 j->a->grad, j->K);
    direct_sgemm(BLIS_TRANSPOSE, BLIS_NO_TRANSPOSE, j->K, j->N, j->M, j->a->data, j->K, 1, j->c->grad, j->N, 1, 1.0f,
                 j->b->grad, j->N);
}

static int bench(int M, int K, int N)
{
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    job fw = {.M = M, .K = K, .N = N}, bw = fw;
    fw.g = nb_graph_new();
    bw.g = nb_graph_new();
    if (!fw.g || !bw.g) return 1;
    for (int k = 0; k < 2; k++) {
        job *j = k ? &bw : &fw;
        j->a = nb_param(j->g, 2, (int[]){M, K});
        j->b = nb_param(j->g, 2, (int[]){K, N});
        if (!j->a || !j->b) return 1;
        for (size_t i = 0; i < j->a->size; i++) j->a->data[i] = nb_rng_uniform_range(&rng, -1, 1);
        for (size_t i = 0; i < j->b->size; i++) j->b->data[i] = nb_rng_uniform_range(&rng, -1, 1);
        j->c = nb_matmul(j->g, j->a, j->b);
        if (k) j->loss = nb_sum(j->g, j->c);
        if (!j->c || (k && !j->loss)) {
            fprintf(stderr, "bench_matmul: %s\n", nb_graph_error(j->g));
            return 1;
        }
    }
    double flops = 2.0 * M * N * K, tn, td, bn, bd;
    direct_compare(nabla_forward, direct_forward, &fw, &tn, &td);
    nb_backward(bw.g, bw.loss); /* c->grad now holds the seed (ones) for the direct calls */
    direct_compare(nabla_backward, direct_backward, &bw, &bn, &bd);
    printf("%4d x %4d . %4d x %4d  forward : nabla %7.2f GFLOP/s  bli_sgemm %7.2f GFLOP/s  ratio %.3f\n", M, K, K, N,
           flops / tn * 1e-9, flops / td * 1e-9, td / tn);
    printf("%4s   %4s   %4s   %4s  backward: nabla %7.2f GFLOP/s  bli_sgemm %7.2f GFLOP/s  ratio %.3f\n", "", "", "", "",
           2 * flops / bn * 1e-9, 2 * flops / bd * 1e-9, bd / bn);
    nb_graph_free(fw.g);
    nb_graph_free(bw.g);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1) nb_set_num_threads(atoi(argv[1]));
    printf("bench_matmul: %d thread(s); median of %d runs; ratio = nabla speed / direct speed\n",
           nb_get_num_threads(), DIRECT_RUNS);
    static const int shapes[][3] = {{512, 512, 512}, {32, 784, 128}, {32, 128, 10}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        if (bench(shapes[s][0], shapes[s][1], shapes[s][2])) return 1;
    return 0;
}
