/* fit_timing.h — epoch times of nb_fit for the model benchmarks (bench_mlp,
 * bench_cnn): wall and CPU seconds per epoch, and allocations per step after
 * the first epoch, read from the fit's per-step callback. */
#ifndef NB_BENCH_FIT_TIMING_H
#define NB_BENCH_FIT_TIMING_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <nabla/nabla.h>
#include "direct_gemm.h" /* direct_cmp_double */

/* CPU seconds of the whole process (all threads): on a shared machine it leaves
 * out the time other jobs held the cores, so with one thread it is the steadier
 * measure; with more it also counts the workers' spinning. */
static inline double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct fit_timing {
    double *ends;            /* (epochs) time at each epoch's last step */
    double *cpu_ends;        /* (epochs) CPU time at each epoch's last step */
    unsigned long allocs0;   /* nb_alloc_count at the end of the first epoch */
    unsigned long allocs1;   /* ... at the end of the last */
    int steps_after;         /* steps counted between the two */
} fit_timing;

static inline void fit_timing_step(void *ctx, int epoch, int step, int steps, double loss, double acc)
{
    (void)loss, (void)acc;
    fit_timing *t = ctx;
    /* called after each step: allocs0 after the whole first epoch, allocs1 after the latest step */
    if (epoch > 0) {
        t->allocs1 = nb_alloc_count();
        t->steps_after++;
    } else if (step == steps - 1) {
        t->allocs0 = nb_alloc_count();
    }
    if (step == steps - 1) t->ends[epoch] = nb_now(), t->cpu_ends[epoch] = cpu_now();
}

/* Seconds per epoch of nb_fit over `epochs` epochs at `batch` (the median of the
 * epochs after the first, or the only one); *cpu_s the same in CPU seconds and
 * *allocs_per_step as measured after the first epoch (-1: one epoch), when not
 * NULL. Returns -1 after printing "prog: why" when the fit fails. */
static inline double fit_epoch_seconds(nb_model *m, const nb_dataset *d, int epochs, int batch, const char *prog,
                                       double *allocs_per_step, double *cpu_s)
{
    size_t E = (size_t)epochs;
    double *ends = calloc(E, sizeof *ends), *dts = calloc(E, sizeof *dts), *cends = calloc(E, sizeof *cends),
           *cdts = calloc(E, sizeof *cdts);
    fit_timing t = {.ends = ends, .cpu_ends = cends};
    double start = nb_now(), cpu_start = cpu_now(), result = -1;
    nb_status s = ends && dts && cends && cdts
                      ? nb_fit_data(m, d, &(nb_fit_opts){.epochs = epochs, .batch_size = batch, .verbose = NB_VERBOSE_SILENT,
                                                         .on_step = fit_timing_step, .ctx = &t}, NULL)
                      : NB_ERR_NOMEM;
    if (s == NB_OK) {
        int n = 0;
        for (int e = epochs > 1 ? 1 : 0; e < epochs; e++, n++) {
            dts[n] = ends[e] - (e ? ends[e - 1] : start);
            cdts[n] = cends[e] - (e ? cends[e - 1] : cpu_start);
        }
        qsort(dts, (size_t)n, sizeof *dts, direct_cmp_double);
        qsort(cdts, (size_t)n, sizeof *cdts, direct_cmp_double);
        result = dts[n / 2];
        if (cpu_s) *cpu_s = cdts[n / 2];
        if (allocs_per_step) *allocs_per_step = t.steps_after > 0 ? (double)(t.allocs1 - t.allocs0) / t.steps_after : -1;
    } else fprintf(stderr, "%s: %s\n", prog, s == NB_ERR_NOMEM ? "out of memory" : nb_last_error());
    free(ends);
    free(dts);
    free(cends);
    free(cdts);
    return result;
}

#endif
