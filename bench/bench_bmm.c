/* bench_bmm.c — nb_batch_matmul through the graph (nb_forward / nb_backward)
 * against a direct loop of bli_sgemm calls on the same data, in GFLOP/s.
 *
 * Shapes are attention-like: 64 sequences x 4 heads of 16 x 16 blocks (the
 * scores Q·Kᵀ, transpose_b, and the weighted values P·V), 32 x (128 x 64 ·
 * 64 x 128), and a (64, 16, 64) activation times a shared (64, 192) kernel (the
 * q/k/v projection, done as one tall GEMM). Forward is 2·items·M·N·K flops,
 * backward twice that (dA and dB). The backward graph is batch_matmul then
 * nb_sum, so nabla's backward also pays for seeding and clearing the graph's
 * gradients, which the direct loop does not. Each figure is the median of DIRECT_RUNS
 * runs, each repeated until it takes about 20 ms; nabla and direct runs
 * alternate so drift hits both alike.
 *
 * Usage: bench_bmm [threads]   (default: NB_NUM_THREADS or 1) */
#include <stdio.h>
#include <stdlib.h>

#include <nabla/nabla.h>
#include "direct_gemm.h"

typedef struct job {
    nb_graph *g;
    nb_tensor *a, *b, *c, *loss; /* loss NULL for the forward job */
    int items, M, K, N;          /* items of (M, K) · (K, N) */
    bool tb, shared_b;           /* b stored (N, K); b one matrix for every item */
} job;

static void nabla_forward(void *ctx) { nb_forward(((job *)ctx)->g); }
static void nabla_backward(void *ctx) { nb_backward(((job *)ctx)->g, ((job *)ctx)->loss); }

/* B of item i: (K, N) strides, or (N, K) read transposed. */
static const float *b_of(const job *j, int i, int *rs, int *cs)
{
    *rs = j->tb ? 1 : j->N;
    *cs = j->tb ? j->K : 1;
    return j->b->data + (j->shared_b ? 0 : (size_t)i * j->K * j->N);
}

static void direct_forward(void *ctx)
{
    const job *j = ctx;
    size_t mk = (size_t)j->M * j->K, mn = (size_t)j->M * j->N;
    for (int i = 0; i < j->items; i++) {
        int rsb, csb;
        const float *b = b_of(j, i, &rsb, &csb);
        direct_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, j->M, j->N, j->K, j->a->data + i * mk, j->K, 1, b, rsb, csb,
                     0.0f, j->c->data + i * mn, j->N);
    }
}
static void direct_backward(void *ctx)
{
    const job *j = ctx;
    size_t mk = (size_t)j->M * j->K, mn = (size_t)j->M * j->N, kn = (size_t)j->K * j->N;
    for (int i = 0; i < j->items; i++) {
        int rsb, csb;
        const float *b = b_of(j, i, &rsb, &csb), *dc = j->c->grad + i * mn, *a = j->a->data + i * mk;
        float *db = j->b->grad + (j->shared_b ? 0 : i * kn);
        /* dA (M, K) += dC · Bᵀ */
        direct_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, j->M, j->K, j->N, dc, j->N, 1, b, csb, rsb, 1.0f,
                     j->a->grad + i * mk, j->K);
        if (j->tb) /* dB stored (N, K) += dCᵀ · A */
            direct_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, j->N, j->K, j->M, dc, 1, j->N, a, j->K, 1, 1.0f, db, j->K);
        else /* dB (K, N) += Aᵀ · dC */
            direct_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, j->K, j->N, j->M, a, 1, j->K, dc, j->N, 1, 1.0f, db, j->N);
    }
}

static int make(job *j, bool backward, nb_rng *rng)
{
    j->g = nb_graph_new();
    if (!j->g) return 1;
    int bs[3] = {j->items, j->tb ? j->N : j->K, j->tb ? j->K : j->N};
    j->a = nb_param(j->g, 3, (int[]){j->items, j->M, j->K});
    j->b = j->shared_b ? nb_param(j->g, 2, bs + 1) : nb_param(j->g, 3, bs);
    if (!j->a || !j->b) return 1;
    for (size_t i = 0; i < j->a->size; i++) j->a->data[i] = nb_rng_uniform_range(rng, -1, 1);
    for (size_t i = 0; i < j->b->size; i++) j->b->data[i] = nb_rng_uniform_range(rng, -1, 1);
    j->c = nb_batch_matmul(j->g, j->a, j->b, false, j->tb);
    j->loss = backward ? nb_sum(j->g, j->c) : NULL;
    if (!j->c || (backward && !j->loss)) {
        fprintf(stderr, "bench_bmm: %s\n", nb_graph_error(j->g));
        return 1;
    }
    return 0;
}

static int bench(const char *what, int items, int M, int K, int N, bool tb, bool shared_b)
{
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    job fw = {.items = items, .M = M, .K = K, .N = N, .tb = tb, .shared_b = shared_b}, bw = fw;
    if (make(&fw, false, &rng) || make(&bw, true, &rng)) return 1;
    double flops = 2.0 * items * M * N * K, tn, td, bn, bd;
    direct_compare(nabla_forward, direct_forward, &fw, &tn, &td);
    nb_backward(bw.g, bw.loss); /* c->grad now holds the seed (ones) for the direct calls */
    direct_compare(nabla_backward, direct_backward, &bw, &bn, &bd);
    printf("%-34s forward : nabla %7.2f GFLOP/s  bli_sgemm loop %7.2f GFLOP/s  ratio %.3f\n", what,
           flops / tn * 1e-9, flops / td * 1e-9, td / tn);
    printf("%-34s backward: nabla %7.2f GFLOP/s  bli_sgemm loop %7.2f GFLOP/s  ratio %.3f\n", "",
           2 * flops / bn * 1e-9, 2 * flops / bd * 1e-9, bd / bn);
    nb_graph_free(fw.g);
    nb_graph_free(bw.g);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1) nb_set_num_threads(atoi(argv[1]));
    printf("bench_bmm: %d thread(s); median of %d runs; ratio = nabla speed / direct speed\n", nb_get_num_threads(),
           DIRECT_RUNS);
    int fail = bench("(256,16,16) . (256,16,16)", 256, 16, 16, 16, false, false) ||
               bench("(256,16,16) . (256,16,16)^T  (QK^T)", 256, 16, 16, 16, true, false) ||
               bench("(32,128,64) . (32,64,128)", 32, 128, 64, 128, false, false) ||
               bench("(32,128,64) . (32,128,64)^T", 32, 128, 64, 128, true, false) ||
               bench("(64,16,64) . (64,192) shared", 64, 16, 64, 192, false, true);
    return fail;
}
