/* nb_parallel.h — the library's two ways of using several cores: a parallel loop
 * over a few parts, and the GEMM every op uses.
 *
 * nabla keeps nb_get_num_threads() - 1 worker threads (started at the first
 * parallel call, stopped at exit). Between calls they spin briefly, then sleep,
 * so back-to-back small jobs (the GEMMs and the optimizer update of one training
 * step) do not pay a thread wake-up each. BLIS itself always runs single-
 * threaded inside each part. */
#ifndef NB_PARALLEL_H
#define NB_PARALLEL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Run fn(ctx, part, parts) for part = 0 .. parts-1, at most nb_get_num_threads()
 * at a time; the caller runs part 0 itself and returns when all are done.
 * parts <= 1, a single thread, or a call from inside a part runs everything in
 * the calling thread. fn must not fail; it gets disjoint work by part. */
void nb_parallel_for(int parts, void (*fn)(void *ctx, int part, int parts), void *ctx);

/* The contiguous slice [*begin, *end) of n items that part `part` of `parts`
 * handles, with boundaries rounded to multiples of `align` (>= 1). */
void nb_split_range(size_t n, int part, int parts, size_t align, size_t *begin, size_t *end);

/* c (m, n) = a (m, k) · b (k, n) + beta * c, through BLIS bli_sgemm. Each operand
 * is given by its row and column strides (a transpose is the same buffer with the
 * strides swapped); c has row stride rsc and column stride 1. beta 0 overwrites
 * c, 1 accumulates into it. Products large enough to share are split over the
 * threads by rows or columns of c (each part owns its rows/columns of c, so the
 * result is the same for a given thread count). Called from inside a part of
 * nb_parallel_for, it runs whole on the calling thread. */
void nb_sgemm(int m, int n, int k, const float *a, int rsa, int csa, const float *b, int rsb, int csb, float beta,
              float *c, int rsc);

#ifdef __cplusplus
}
#endif
#endif
