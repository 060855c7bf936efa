/* direct_gemm.h — the measuring stick for the benchmarks: a bare bli_sgemm call
 * using BLIS's own threading with as many threads as nabla is set to use
 * (nabla itself keeps BLIS single-threaded and splits products on its own). */
#ifndef NB_BENCH_DIRECT_GEMM_H
#define NB_BENCH_DIRECT_GEMM_H

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

#endif
