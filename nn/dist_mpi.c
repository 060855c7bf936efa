/* dist_mpi.c — nb_dist.h over MPI (built with -DNB_HAVE_MPI when meson finds
 * MPI). Every call goes through a private duplicate of MPI_COMM_WORLD whose
 * errors return codes (MPI_ERRORS_RETURN) instead of aborting, so a failing call
 * becomes NB_ERR_IO with MPI's own message. Before nb_dist_init (or when it
 * failed) every function acts as a single process. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <mpi.h>

#include "dist_internal.h"

static MPI_Comm comm = MPI_COMM_NULL; /* nabla's communicator; NULL before init */
static bool we_started;               /* nb_dist_init called MPI_Init_thread */
static int my_rank = 0, n_ranks = 1;

/* NB_ERR_IO naming the MPI function, fn, and MPI's description of rc. */
static nb_status mpi_fail(const char *where, const char *fn, int rc)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "error %d", rc);
    return nb_fail(NB_ERR_IO, "%s: %s failed: %s", where, fn, text);
}

nb_status nb_dist_init(int *argc, char ***argv)
{
    if (comm != MPI_COMM_NULL) return NB_OK;
    int up = 0, down = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    if (down) return nb_fail(NB_ERR_STATE, "nb_dist_init: MPI was already finalized in this process");
    if (!up) {
        int provided = 0;
        int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) return mpi_fail("nb_dist_init", "MPI_Init_thread", rc);
        we_started = true;
    }
    MPI_Comm c;
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &c);
    if (rc != MPI_SUCCESS) return mpi_fail("nb_dist_init", "MPI_Comm_dup", rc);
    MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c, &my_rank);
    MPI_Comm_size(c, &n_ranks);
    comm = c;
    return NB_OK;
}

void nb_dist_finalize(void)
{
    if (comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
    comm = MPI_COMM_NULL;
    my_rank = 0;
    n_ranks = 1;
    int down = 0;
    MPI_Finalized(&down);
    if (we_started && !down) MPI_Finalize();
    we_started = false;
}

bool nb_dist_enabled(void) { return comm != MPI_COMM_NULL; }
int nb_dist_rank(void) { return my_rank; }
int nb_dist_size(void) { return n_ranks; }

/* True when there is someone to talk to. */
static bool active(void) { return comm != MPI_COMM_NULL && n_ranks > 1; }

nb_status nb_dist_broadcast(float *data, size_t n)
{
    if (!data && n) return nb_fail(NB_ERR_ARG, "nb_dist_broadcast: data is NULL");
    if (!active()) return NB_OK;
    for (size_t at = 0; at < n; at += NB__DIST_MAX_COUNT) {
        size_t len = n - at < NB__DIST_MAX_COUNT ? n - at : NB__DIST_MAX_COUNT;
        int rc = MPI_Bcast(data + at, (int)len, MPI_FLOAT, 0, comm);
        if (rc != MPI_SUCCESS) return mpi_fail("nb_dist_broadcast", "MPI_Bcast", rc);
    }
    return NB_OK;
}

nb_status nb__dist_sum_floats(float *data, size_t n)
{
    if (!active()) return NB_OK;
    for (size_t at = 0; at < n; at += NB__DIST_MAX_COUNT) {
        size_t len = n - at < NB__DIST_MAX_COUNT ? n - at : NB__DIST_MAX_COUNT;
        int rc = MPI_Allreduce(MPI_IN_PLACE, data + at, (int)len, MPI_FLOAT, MPI_SUM, comm);
        if (rc != MPI_SUCCESS) return mpi_fail("nb_dist_allreduce", "MPI_Allreduce", rc);
    }
    return NB_OK;
}

nb_status nb_dist_allreduce_mean(float *data, size_t n)
{
    if (!data && n) return nb_fail(NB_ERR_ARG, "nb_dist_allreduce_mean: data is NULL");
    if (!active()) return NB_OK;
    nb_status s = nb__dist_sum_floats(data, n);
    if (s != NB_OK) return s;
    float inv = 1.0f / (float)n_ranks;
    for (size_t i = 0; i < n; i++) data[i] *= inv;
    return NB_OK;
}

nb_status nb_dist_sum(double *v, int n)
{
    if ((!v && n) || n < 0) return nb_fail(NB_ERR_ARG, "nb_dist_sum: v is NULL or n (%d) < 0", n);
    if (!active() || n == 0) return NB_OK;
    int rc = MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, comm);
    return rc == MPI_SUCCESS ? NB_OK : mpi_fail("nb_dist_sum", "MPI_Allreduce", rc);
}

/* The lowest rank for which `mine` is true (n_ranks when none). */
static nb_status lowest_rank(bool mine, int *out, const char *where)
{
    int r = mine ? my_rank : n_ranks;
    int rc = MPI_Allreduce(MPI_IN_PLACE, &r, 1, MPI_INT, MPI_MIN, comm);
    if (rc != MPI_SUCCESS) return mpi_fail(where, "MPI_Allreduce", rc);
    *out = r;
    return NB_OK;
}

#define AGREE_MSG 400

nb_status nb_dist_agree(nb_status local, const char *local_msg)
{
    if (!active()) {
        if (local == NB_OK) return NB_OK;
        char msg[AGREE_MSG + 1];
        snprintf(msg, sizeof msg, "%s", local_msg ? local_msg : nb_last_error());
        return nb_fail(local, "rank 0: %s", msg);
    }
    int failed = 0;
    nb_status s = lowest_rank(local != NB_OK, &failed, "nb_dist_agree");
    if (s != NB_OK) return s;
    if (failed == n_ranks) return NB_OK;
    struct {
        int status;
        char msg[AGREE_MSG + 1];
    } word = {(int)local, ""};
    if (my_rank == failed) snprintf(word.msg, sizeof word.msg, "%s", local_msg ? local_msg : nb_last_error());
    int rc = MPI_Bcast(&word, (int)sizeof word, MPI_BYTE, failed, comm);
    if (rc != MPI_SUCCESS) return mpi_fail("nb_dist_agree", "MPI_Bcast", rc);
    word.msg[AGREE_MSG] = '\0';
    return nb_fail((nb_status)word.status, "rank %d: %s", failed, word.msg);
}

/* FNV-1a, 64 bits, over the bytes and then the length. */
static uint64_t hash_bytes(const unsigned char *p, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    for (size_t i = 0; i < sizeof n; i++) h = (h ^ ((n >> (8 * i)) & 0xff)) * 1099511628211ull;
    return h;
}

nb_status nb_dist_check_same(const void *bytes, size_t n, const char *what)
{
    if (!bytes && n) return nb_fail(NB_ERR_ARG, "nb_dist_check_same: bytes is NULL");
    if (!active()) return NB_OK;
    uint64_t mine = hash_bytes(bytes, n), root = mine;
    int rc = MPI_Bcast(&root, 1, MPI_UINT64_T, 0, comm);
    if (rc != MPI_SUCCESS) return mpi_fail("nb_dist_check_same", "MPI_Bcast", rc);
    int differs = 0;
    nb_status s = lowest_rank(mine != root, &differs, "nb_dist_check_same");
    if (s != NB_OK) return s;
    if (differs == n_ranks) return NB_OK;
    return nb_fail(NB_ERR_STATE, "rank %d's %s differs from rank 0's", differs, what ? what : "data");
}

/* ---- the transport of dist_grads.c ---- */

void *nb__dist_reqs_new(int n)
{
    MPI_Request *r = nb_malloc((size_t)(n > 0 ? n : 1) * sizeof *r);
    if (r)
        for (int i = 0; i < n; i++) r[i] = MPI_REQUEST_NULL;
    return r;
}

void nb__dist_reqs_free(void *reqs) { nb_free(reqs); }

nb_status nb__dist_isum(float *data, size_t n, void *reqs, int k)
{
    MPI_Request *r = reqs;
    r[k] = MPI_REQUEST_NULL;
    if (!active()) return NB_OK;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, data, (int)n, MPI_FLOAT, MPI_SUM, comm, &r[k]);
    return rc == MPI_SUCCESS ? NB_OK : mpi_fail("nb_dist_grads", "MPI_Iallreduce", rc);
}

nb_status nb__dist_progress(void *reqs, int n)
{
    if (!active()) return NB_OK;
    int done = 0;
    int rc = MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE);
    return rc == MPI_SUCCESS ? NB_OK : mpi_fail("nb_dist_grads", "MPI_Testall", rc);
}

nb_status nb__dist_wait(void *reqs, int n)
{
    if (!active()) return NB_OK;
    int rc = MPI_Waitall(n, reqs, MPI_STATUSES_IGNORE);
    return rc == MPI_SUCCESS ? NB_OK : mpi_fail("nb_dist_grads", "MPI_Waitall", rc);
}
