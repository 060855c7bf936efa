/* dist_internal.h — what the bucket logic (dist_grads.c) needs from the
 * transport: dist_mpi.c with MPI, dist_none.c without. Not installed. */
#ifndef NB_DIST_INTERNAL_H
#define NB_DIST_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <nabla/nb_dist.h>

/* Requests for n buckets in flight, all idle; NULL when out of memory. */
void *nb__dist_reqs_new(int n);
void nb__dist_reqs_free(void *reqs);

/* Start the in-place sum of data (n floats, n <= NB__DIST_MAX_COUNT) over the
 * ranks as request k of reqs. Completes at once with one process. */
nb_status nb__dist_isum(float *data, size_t n, void *reqs, int k);

/* Let MPI progress the first n requests; wait for all of them. */
nb_status nb__dist_progress(void *reqs, int n);
nb_status nb__dist_wait(void *reqs, int n);

/* Blocking in-place sum of data (any n) over the ranks. */
nb_status nb__dist_sum_floats(float *data, size_t n);

/* The most elements one MPI call takes (its counts are ints). */
#define NB__DIST_MAX_COUNT ((size_t)1 << 30)

#endif
