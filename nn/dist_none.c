/* dist_none.c — nb_dist.h without MPI: one process, rank 0 of 1. Every
 * collective returns at once (a sum or mean over one rank is the value itself);
 * the failure functions still format their messages as the MPI build does, so
 * callers see the same text either way. */
#include <stdio.h>

#include "dist_internal.h"

nb_status nb_dist_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return NB_OK;
}

void nb_dist_finalize(void) {}
bool nb_dist_enabled(void) { return false; }
int nb_dist_rank(void) { return 0; }
int nb_dist_size(void) { return 1; }

nb_status nb_dist_broadcast(float *data, size_t n)
{
    return !data && n ? nb_fail(NB_ERR_ARG, "nb_dist_broadcast: data is NULL") : NB_OK;
}

nb_status nb_dist_allreduce_mean(float *data, size_t n)
{
    return !data && n ? nb_fail(NB_ERR_ARG, "nb_dist_allreduce_mean: data is NULL") : NB_OK;
}

nb_status nb_dist_sum(double *v, int n)
{
    return (!v && n) || n < 0 ? nb_fail(NB_ERR_ARG, "nb_dist_sum: v is NULL or n (%d) < 0", n) : NB_OK;
}

nb_status nb_dist_agree(nb_status local, const char *local_msg)
{
    if (local == NB_OK) return NB_OK;
    char msg[401];
    snprintf(msg, sizeof msg, "%s", local_msg ? local_msg : nb_last_error());
    return nb_fail(local, "rank 0: %s", msg);
}

nb_status nb_dist_check_same(const void *bytes, size_t n, const char *what)
{
    (void)what;
    return !bytes && n ? nb_fail(NB_ERR_ARG, "nb_dist_check_same: bytes is NULL") : NB_OK;
}

/* ---- the transport of dist_grads.c: nothing to send ---- */

void *nb__dist_reqs_new(int n)
{
    (void)n;
    return nb_malloc(1);
}

void nb__dist_reqs_free(void *reqs) { nb_free(reqs); }

nb_status nb__dist_isum(float *data, size_t n, void *reqs, int k)
{
    (void)data, (void)n, (void)reqs, (void)k;
    return NB_OK;
}

nb_status nb__dist_progress(void *reqs, int n)
{
    (void)reqs, (void)n;
    return NB_OK;
}

nb_status nb__dist_wait(void *reqs, int n)
{
    (void)reqs, (void)n;
    return NB_OK;
}

nb_status nb__dist_sum_floats(float *data, size_t n)
{
    (void)data, (void)n;
    return NB_OK;
}
