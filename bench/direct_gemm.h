/* direct_gemm.h — the measuring stick for the benchmarks: a bare bli_sgemm call
 * using BLIS's own threading with as many threads as nabla is set to use
 * (nabla itself keeps BLIS single-threaded and splits products on its own). */
#ifndef NB_BENCH_DIRECT_GEMM_H
#define NB_BENCH_DIRECT_GEMM_H

#include <stdlib.h>

#include <nabla/nabla.h>
#include "nb_blis.h"

static inline void direct_sgemm(trans_t ta, trans_t tb, int m, int n, int k, const float *a, int rsa, int csa,
                                const float *b, int rsb, int csb, float beta, float *c, int rsc)
{
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(nb_get_num_threads(), &rntm);
    float one = 1.0f;
    bli_sgemm_ex(ta, tb, m, n, k, &one, (float *)a, rsa, csa, (float *)b, rsb, csb, &beta, c, rsc, 1, NULL, &rntm);
}

/* ---- timing two ways to do the same work, alternated ---- */
enum { DIRECT_RUNS = 9 };

/* Seconds per call of f(ctx) over reps calls. */
static inline double direct_time_run(void (*f)(void *), void *ctx, int reps)
{
    double t0 = nb_now();
    for (int r = 0; r < reps; r++) f(ctx);
    return (nb_now() - t0) / reps;
}

static inline int direct_cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* Median seconds per call of f and of g over DIRECT_RUNS runs, the two
 * alternated run by run, each run repeated until it takes about 20 ms. */
static inline void direct_compare(void (*f)(void *), void (*g)(void *), void *ctx, double *tf, double *tg)
{
    f(ctx), g(ctx); /* warm up */
    int reps = 1;
    while (direct_time_run(f, ctx, reps) * reps < 0.02 && reps < (1 << 20)) reps *= 2;
    double sf[DIRECT_RUNS], sg[DIRECT_RUNS];
    for (int r = 0; r < DIRECT_RUNS; r++) {
        sf[r] = direct_time_run(f, ctx, reps);
        sg[r] = direct_time_run(g, ctx, reps);
    }
    qsort(sf, DIRECT_RUNS, sizeof *sf, direct_cmp_double);
    qsort(sg, DIRECT_RUNS, sizeof *sg, direct_cmp_double);
    *tf = sf[DIRECT_RUNS / 2];
    *tg = sg[DIRECT_RUNS / 2];
}

#endif
