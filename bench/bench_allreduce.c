/* bench_allreduce.c — the cost of averaging gradients across ranks.
 *
 *   mpirun -np P build/bench/bench_allreduce [--reps 50]
 *   mpirun -np P build/bench/bench_allreduce --train 64 [--layers 784,128,10] [--reps 50]
 *
 * For gradient blocks of real models, times
 *   blocking  nb_dist_allreduce_mean over the whole block (one MPI_Allreduce);
 *   bucketed  nb_dist_grads with the default 1 MiB buckets, every bucket started
 *             at once and waited for (MPI_Iallreduce per bucket, then Waitall):
 *             the communication a step pays when backward hides none of it;
 *   latency   a one-float allreduce: the per-message cost α of the step-time model.
 * Each repetition starts after a barrier; its time is the slowest rank's; the
 * median over the repetitions is printed, in microseconds, with two rates:
 *   algbw = bytes / time, and busbw = 2(P−1)/P · bytes / time (the bytes each
 *   rank actually sends and receives in a ring allreduce), in GB/s (1e9 B/s).
 * Sizes: 34,826 floats (Keras's "simple MNIST convnet": conv 3x3x1x32 + 32,
 * conv 3x3x32x64 + 64, dense 1600x10 + 10), 101,770 (the MLP 784-128-10:
 * 784·128 + 128 + 128·10 + 10) and 1,000,000.
 *
 * --train B: whole training steps (forward, backward, gradient averaging; no
 * optimizer) of an MLP (--layers, ReLU hidden layers, sparse softmax
 * cross-entropy) with B rows per rank: compute only (no communication), overlap
 * off (one blocking allreduce after backward) and overlap on with several bucket
 * sizes, median step time in microseconds. The difference to compute-only is
 * what communication costs a step; overlap hides the part that runs while
 * backward is still busy with earlier layers. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nabla/nabla.h>
#include <nabla/nb_dist.h>

#define MAX_REPS 1000

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Exit with the library's message unless s is NB_OK. */
static void must(nb_status s)
{
    if (s != NB_OK) {
        fprintf(stderr, "bench_allreduce: %s\n", nb_last_error());
        exit(1);
    }
}

/* Round r's time, as the slowest rank's (rounds below 0 warm up). */
static void record(double *t, int r, double dt)
{
    MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (r >= 0) t[r] = dt;
}

/* The median of reps recorded times, in microseconds. */
static double median_of(double *t, int reps)
{
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    return 1e6 * t[reps / 2];
}

typedef enum { BLOCKING, BUCKETED } method;

/* Median over reps of the slowest rank's time for one average of n floats. */
static double median_us(method how, float *buf, size_t n, int reps)
{
    static double t[MAX_REPS];
    nb_dist_grads *d = how == BUCKETED ? nb_dist_grads_new(buf, n, 0) : NULL;
    must(how == BUCKETED && !d ? NB_ERR_NOMEM : NB_OK);
    for (int r = -3; r < reps; r++) { /* 3 warm-up rounds */
        for (size_t i = 0; i < n; i++) buf[i] = 1.0f;
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        nb_status s = how == BLOCKING ? nb_dist_allreduce_mean(buf, n) : nb_dist_grads_finish(d);
        double dt = MPI_Wtime() - t0;
        must(s);
        record(t, r, dt);
    }
    nb_dist_grads_free(d);
    return median_of(t, reps);
}

/* ---- --train: whole steps ---- */

typedef struct mlp {
    nb_graph *g;
    nb_tensor *loss;
    float *w, *gr;
    size_t n;
} mlp;

static mlp mlp_new(const int *layers, int nl, int batch)
{
    mlp m = {nb_graph_new(), NULL, NULL, NULL, 0};
    nb_tensor *x = nb_input(m.g, NB_F32, 2, (int[]){batch, layers[0]});
    nb_tensor *y = nb_input(m.g, NB_I32, 1, (int[]){batch});
    nb_rng r;
    nb_rng_seed(&r, 3);
    for (size_t i = 0; x && i < x->size; i++) x->data[i] = nb_rng_uniform(&r);
    for (int i = 0; y && i < batch; i++) y->idata[i] = (int32_t)nb_rng_below(&r, (uint32_t)layers[nl - 1]);
    nb_tensor *h = x;
    for (int l = 1; l < nl; l++) {
        nb_tensor *w = nb_param(m.g, 2, (int[]){layers[l - 1], layers[l]}), *b = nb_param(m.g, 1, (int[]){layers[l]});
        for (size_t i = 0; w && i < w->size; i++) w->data[i] = nb_rng_uniform_range(&r, -0.05f, 0.05f);
        h = nb_dense(m.g, h, w, b, l + 1 < nl ? NB_RELU : NB_LINEAR);
    }
    m.loss = nb_sparse_categorical_crossentropy(m.g, h, y, true);
    if (!m.loss || nb_graph_pack_params(m.g) != NB_OK) {
        fprintf(stderr, "bench_allreduce: %s\n", nb_graph_error(m.g) ? nb_graph_error(m.g) : nb_last_error());
        exit(1);
    }
    m.w = nb_graph_param_data(m.g);
    m.gr = nb_graph_param_grad(m.g);
    m.n = nb_graph_param_count(m.g);
    return m;
}

/* Median step time (slowest rank) with d (NULL: compute only). */
static double step_us(mlp *m, nb_dist_grads *d, int reps)
{
    static double t[MAX_REPS];
    for (int r = -3; r < reps; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        nb_zero_grad(m->g);
        nb_status s = nb_forward(m->g);
        if (s == NB_OK) s = nb_backward(m->g, m->loss);
        if (s == NB_OK && d) s = nb_dist_grads_finish(d);
        double dt = MPI_Wtime() - t0;
        must(s);
        record(t, r, dt);
    }
    return median_of(t, reps);
}

static void bench_train(const int *layers, int nl, int batch, int reps)
{
    mlp m = mlp_new(layers, nl, batch);
    int P = nb_dist_size();
    char model[128] = "";
    for (int l = 0; l < nl; l++)
        snprintf(model + strlen(model), sizeof model - strlen(model), "%s%d", l ? "-" : "", layers[l]);
    double base = step_us(&m, NULL, reps);
    if (nb_dist_rank() == 0)
        printf("step ranks=%d model=%s params=%zu batch_per_rank=%d method=compute-only median_us=%.1f\n", P, model,
               m.n, batch, base);
    static const size_t buckets[] = {0, 64 << 10, 256 << 10, 1 << 20};
    for (int k = 0; k < 4; k++) {
        nb_dist_grads *d = nb_dist_grads_new(m.gr, m.n, buckets[k] ? buckets[k] : (size_t)1 << 30);
        must(d ? nb_dist_grads_attach(d, m.g) : NB_ERR_NOMEM);
        nb_dist_grads_set_overlap(d, buckets[k] != 0);
        double us = step_us(&m, d, reps);
        if (nb_dist_rank() == 0)
            printf("step ranks=%d model=%s params=%zu batch_per_rank=%d method=%s bucket_kib=%zu buckets=%d "
                   "median_us=%.1f comm_us=%.1f\n", P, model, m.n, batch, buckets[k] ? "overlap" : "blocking",
                   buckets[k] >> 10, nb_dist_grads_bucket_count(d), us, us - base);
        nb_dist_grads_free(d);
    }
    nb_graph_free(m.g);
}

int main(int argc, char **argv)
{
    if (nb_dist_init(&argc, &argv) != NB_OK) {
        fprintf(stderr, "bench_allreduce: %s\n", nb_last_error());
        return 1;
    }
    int reps = 50, train = 0, layers[8] = {784, 128, 10}, nl = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--train") && i + 1 < argc) train = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) {
            nl = 0;
            for (char *p = argv[++i]; *p && nl < 8; p += *p == ',') layers[nl++] = (int)strtol(p, &p, 10);
        } else {
            if (nb_dist_rank() == 0)
                fprintf(stderr, "usage: mpirun -np P bench_allreduce [--reps 50] [--train BATCH [--layers 784,128,10]]\n");
            nb_dist_finalize();
            return 2;
        }
    }
    if (reps < 1 || reps > MAX_REPS) reps = 50;
    if (train > 0) {
        if (nl < 2) {
            fprintf(stderr, "bench_allreduce: --layers needs at least two sizes\n");
            nb_dist_finalize();
            return 2;
        }
        bench_train(layers, nl, train, reps);
        nb_dist_finalize();
        return 0;
    }
    int P = nb_dist_size(), me = nb_dist_rank();
    static const struct { const char *name; size_t n; } sizes[] = {
        {"latency-1float", 1}, {"cnn-keras-mnist", 34826}, {"mlp-784-128-10", 101770}, {"1M", 1000000}};
    float *buf = malloc(1000000 * sizeof *buf);
    if (!buf) return 1;
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        for (int how = BLOCKING; how <= BUCKETED; how++) {
            if (sizes[k].n == 1 && how == BUCKETED) continue;
            double us = median_us((method)how, buf, sizes[k].n, reps);
            double bytes = 4.0 * (double)sizes[k].n, sec = us * 1e-6;
            double alg = P > 1 && sec > 0 ? bytes / sec / 1e9 : 0, bus = alg * 2.0 * (P - 1) / P;
            if (me == 0)
                printf("allreduce ranks=%d size=%s floats=%zu method=%s median_us=%.1f algbw_GBps=%.3f busbw_GBps=%.3f%s\n",
                       P, sizes[k].name, sizes[k].n, how == BLOCKING ? "blocking" : "bucketed", us, alg, bus,
                       P == 1 ? " (one rank: nothing to send)" : "");
        }
    }
    free(buf);
    nb_dist_finalize();
    return 0;
}
