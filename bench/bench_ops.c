/* bench_ops.c — memory throughput of the elementwise ops and a reduction, beside
 * memcpy moving the same number of bytes.
 *
 * For n = 1e4, 1e6 and 1e7 floats: nb_add with two inputs of the same shape,
 * nb_add of a (n / 1000, 1000) matrix and a (1000) row, nb_exp, nb_gelu (exact
 * and tanh forms) and nb_reduce_sum over the last axis of (n / 1000, 1000). Each
 * op is timed through nb_forward on a graph that holds only its inputs and its
 * node. GB/s counts the bytes the op must move: every input read once and the
 * output written once (an add: 12 n bytes; exp: 8 n; the row sum: 4 n + 4 n/1000).
 * The memcpy column copies half that many bytes (a copy reads and writes each
 * byte once), so both columns count the same traffic; "ratio" is op / memcpy.
 * Each figure is the best of RUNS runs of about 5 ms each (short runs, so that
 * the best of them is rarely disturbed on a shared machine).
 *
 * Usage: bench_ops [threads]   (default: NB_NUM_THREADS or 1) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nabla/nabla.h>

enum { RUNS = 30, ROW = 1000 };

/* Best seconds per call of nb_forward(g) (or of memcpy when g is NULL). */
static double best_time(nb_graph *g, void *dst, const void *src, size_t bytes)
{
    int reps = 1;
    for (;;) { /* calibrate: about 5 ms per run */
        double t0 = nb_now();
        for (int r = 0; r < reps; r++)
            if (g) nb_forward(g);
            else memcpy(dst, src, bytes);
        double t = nb_now() - t0;
        if (t > 0.005 || reps > (1 << 24)) break;
        reps *= t < 0.0005 ? 10 : 2;
    }
    double best = 1e30;
    for (int run = 0; run < RUNS; run++) {
        double t0 = nb_now();
        for (int r = 0; r < reps; r++)
            if (g) nb_forward(g);
            else memcpy(dst, src, bytes);
        double t = (nb_now() - t0) / reps;
        best = t < best ? t : best;
    }
    return best;
}

enum { ADD_SAME, ADD_ROW, EXP, GELU, GELU_TANH, SUM_LAST, N_OPS };
static const char *names[N_OPS] = {"add (same shape)", "add (row bcast)", "exp", "gelu (erf)", "gelu (tanh)",
                                   "reduce_sum (last)"};

/* A graph with the op's inputs (random) and node; *bytes = its traffic. */
static nb_graph *build(int op, size_t n, double *bytes)
{
    nb_graph *g = nb_graph_new();
    int rows = (int)(n / ROW);
    nb_tensor *a = nb_input(g, NB_F32, 2, (int[]){rows, ROW});
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    for (size_t i = 0; i < a->size; i++) a->data[i] = nb_rng_uniform_range(&rng, -3, 3);
    nb_tensor *y = NULL;
    switch (op) {
    case ADD_SAME: {
        nb_tensor *b = nb_input(g, NB_F32, 2, (int[]){rows, ROW});
        y = nb_add(g, a, b);
        *bytes = 12.0 * (double)n;
        break;
    }
    case ADD_ROW:
        y = nb_add(g, a, nb_input(g, NB_F32, 1, (int[]){ROW}));
        *bytes = 8.0 * (double)n + 4.0 * ROW;
        break;
    case EXP: y = nb_exp(g, a), *bytes = 8.0 * (double)n; break;
    case GELU: y = nb_gelu(g, a, false), *bytes = 8.0 * (double)n; break;
    case GELU_TANH: y = nb_gelu(g, a, true), *bytes = 8.0 * (double)n; break;
    default:
        y = nb_reduce_sum(g, a, 1, (int[]){-1}, false);
        *bytes = 4.0 * (double)n + 4.0 * rows;
        break;
    }
    if (!y) {
        fprintf(stderr, "bench_ops: %s\n", nb_last_error());
        exit(1);
    }
    return g;
}

int main(int argc, char **argv)
{
    if (argc > 1) nb_set_num_threads(atoi(argv[1]));
    const size_t sizes[] = {10000, 1000000, 10000000};
    char *src = malloc(sizeof(float) * 10000000 * 2), *dst = malloc(sizeof(float) * 10000000 * 2);
    if (!src || !dst) return 1;
    memset(src, 1, sizeof(float) * 10000000 * 2);
    memset(dst, 0, sizeof(float) * 10000000 * 2);
    printf("threads=%d; GB/s = bytes the op must move / time (best of %d)\n", nb_get_num_threads(), RUNS);
    printf("%10s  %-18s %9s %12s %7s\n", "floats", "op", "op GB/s", "memcpy GB/s", "ratio");
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int op = 0; op < N_OPS; op++) {
            double bytes;
            nb_graph *g = build(op, sizes[s], &bytes);
            double t = best_time(g, NULL, NULL, 0);
            double tc = best_time(NULL, dst, src, (size_t)(bytes / 2));
            double gbs = bytes / t * 1e-9, gbc = bytes / tc * 1e-9;
            printf("%10zu  %-18s %9.2f %12.2f %7.2f\n", sizes[s], names[op], gbs, gbc, gbs / gbc);
            nb_graph_free(g);
        }
    free(src);
    free(dst);
    return 0;
}
