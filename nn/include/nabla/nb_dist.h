/* nb_dist.h — data-parallel training over MPI.
 *
 * P processes ("ranks") each hold a full copy of the model. Every step, each
 * rank runs forward and backward on its own share of the global batch, the
 * gradients are averaged across the ranks, and every rank applies the same
 * optimizer update to the same weights, so the copies stay identical. Rank 0
 * broadcasts the initial weights; only rank 0 prints and saves. See
 * docs/DISTRIBUTED.md for building, running with mpirun and the cost model.
 *
 * The same header serves every build: when nabla is built without MPI (meson
 * option -Dmpi=disabled, or no MPI found) every function below is the trivial
 * single-process version (rank 0 of 1; collectives return at once; averaging a
 * value over one rank leaves it as it is), so callers need no #ifdef.
 *
 * A step with overlapped gradient averaging (what fit does):
 *
 *     nb_dist_init(&argc, &argv);
 *     nb_dist_broadcast(weights, n);                  // rank 0's initial weights
 *     nb_dist_grads *d = nb_dist_grads_new(grads, n, 0);
 *     nb_dist_grads_attach(d, g);                     // g's parameters live in grads
 *     for each step:
 *         copy this rank's rows of the global batch into g's inputs
 *         nb_status s = nb_forward(g);
 *         if (s == NB_OK) s = nb_backward(g, loss);   // starts buckets as they finish
 *         nb_status c = nb_dist_grads_finish(d);      // ALWAYS called (collective)
 *         s = nb_dist_agree(s != NB_OK ? s : c, NULL);// every rank learns any failure
 *         if (s != NB_OK) stop on every rank
 *         nb_optimizer_step_clear(opt, weights, grads, n);
 *     nb_dist_grads_free(d); nb_dist_finalize();
 *
 * Collectives and the sync-point protocol. Every function marked COLLECTIVE
 * must be called by every rank, in the same order, with the same sizes;
 * otherwise ranks wait for each other forever. So a rank that fails locally
 * (bad data, a NaN, a file it cannot read) must NOT return early or exit: it
 * keeps its failure, still makes the collective calls up to the next sync
 * point (nb_dist_grads_finish starts whatever buckets it has not started, so a
 * rank that failed before backward still takes part), and reports it there
 * with nb_dist_agree. nb_dist_agree returns the failure on EVERY rank, so all
 * ranks stop together and none hangs waiting for a peer that left. A process
 * that crashes outright (a signal, exit without nb_dist_finalize) is handled by
 * mpirun, which ends the whole job.
 *
 * MPI errors (a broken connection) make a function return NB_ERR_IO with MPI's
 * own description in nb_last_error(). MPI is only ever called from the thread
 * that called nb_dist_init (MPI_THREAD_FUNNELED); nabla's worker threads never
 * communicate. */
#ifndef NB_DIST_H
#define NB_DIST_H

#include <stdbool.h>
#include <stddef.h>

#include <nabla/nb_base.h>
#include <nabla/nb_tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Setting up ---------------------------------------------------------- */

/* Start MPI (MPI_Init_thread, FUNNELED) unless the program already did, and
 * make a private communicator for nabla (a duplicate of MPI_COMM_WORLD, so
 * nabla's messages never mix with the program's own). argc/argv are passed to
 * MPI as they are (either may be NULL). Calling it again is a no-op. Without
 * MPI it does nothing and returns NB_OK. When MPI cannot start, returns NB_ERR_IO
 * with MPI's message in nb_last_error(); the other functions then act as a
 * single process. */
nb_status nb_dist_init(int *argc, char ***argv);

/* Release nabla's communicator and, if nb_dist_init started MPI, end it
 * (MPI_Finalize; COLLECTIVE). Safe to call twice or without init. After it, MPI
 * cannot be started again in this process (an MPI rule). */
void nb_dist_finalize(void);

/* True when MPI is running (nb_dist_init succeeded in an MPI build), even with
 * one process; false without MPI or before init. */
bool nb_dist_enabled(void);

/* This process's rank in [0, size) (0 without MPI or before init). */
int nb_dist_rank(void);

/* The number of processes (1 without MPI or before init). */
int nb_dist_size(void);

/* ---- Collectives on float and double arrays ---------------------------- */

/* COLLECTIVE. Copy rank 0's n floats of data into every rank's data (the
 * initial weights, the optimizer state after a load). n must be the same on
 * every rank. NB_ERR_ARG for data NULL with n > 0; NB_ERR_IO on an MPI error. */
nb_status nb_dist_broadcast(float *data, size_t n);

/* COLLECTIVE, blocking. Replace data (n floats, same n on every rank) by its
 * mean over the ranks (sum, then times 1/P). Fails like nb_dist_broadcast. */
nb_status nb_dist_allreduce_mean(float *data, size_t n);

/* COLLECTIVE. Replace v (n doubles, n >= 0, same on every rank) by its sum over
 * the ranks: metrics (loss sums, correct counts, sample counts) reduced so every
 * rank reports the global figure. NB_ERR_ARG for v NULL with n > 0 or n < 0. */
nb_status nb_dist_sum(double *v, int n);

/* ---- Failures and consistency ------------------------------------------ */

/* COLLECTIVE: the sync point. Every rank passes its own status (NB_OK or the
 * failure it hit since the last sync point) and a message for it (NULL: its
 * nb_last_error()). When every rank passes NB_OK, returns NB_OK and leaves
 * nb_last_error() alone. Otherwise the lowest failing rank r wins: EVERY rank
 * returns r's status and gets "rank r: <r's message>" in nb_last_error()
 * (messages longer than 400 bytes are cut). NB_ERR_IO when MPI itself fails. */
nb_status nb_dist_agree(nb_status local, const char *local_msg);

/* COLLECTIVE. Check that n bytes (a model file, a data set's sizes, the
 * parameter count) are the same on every rank, by a 64-bit hash of the bytes and
 * of n compared with rank 0's. NB_OK when they match everywhere; otherwise
 * NB_ERR_STATE on every rank with "rank r's <what> differs from rank 0's" (r the
 * lowest rank that differs). NB_ERR_ARG for bytes NULL with n > 0. Two different
 * inputs pass only if their hashes collide (probability about 2^-64). */
nb_status nb_dist_check_same(const void *bytes, size_t n, const char *what);

/* ---- Bucketed, overlapped gradient averaging ---------------------------
 * The packed gradient block (n floats: every parameter's gradient, in the
 * graph's creation order) is cut into buckets of about bucket_bytes, numbered
 * from the END of the block: bucket 0 holds its last elements, because backward
 * finishes the last layers first. As soon as every element of a bucket is final
 * its sum across the ranks starts in the background (MPI_Iallreduce, in place),
 * while backward goes on with the earlier layers; nb_dist_grads_finish waits
 * for the rest. This is how PyTorch's DistributedDataParallel hides most of the
 * communication behind the backward pass. */
typedef struct nb_dist_grads nb_dist_grads;

/* Bucket size used when nb_dist_grads_new is given 0: 1 MiB (262,144 floats).
 * Small enough that a 100k-parameter MLP gets a few buckets to overlap, large
 * enough that each message costs much more than its latency. */
#define NB_DIST_DEFAULT_BUCKET_BYTES ((size_t)1 << 20)

/* A gradient averager for the block grad (n > 0 floats, borrowed: it must
 * outlive the object), in buckets of bucket_bytes (0: the default; rounded down
 * to whole floats, at least one). n and bucket_bytes must be the same on every
 * rank (the buckets are matched by position). Overlap is on. Allocates once, here; the steps
 * allocate nothing. NULL with nb_last_error on NULL grad or n == 0 (NB_ERR_ARG)
 * or out of memory. Free with nb_dist_grads_free. */
nb_dist_grads *nb_dist_grads_new(float *grad, size_t n, size_t bucket_bytes);

/* Overlap on (the default): buckets start during backward. Off: nothing starts
 * before nb_dist_grads_finish, which then makes one blocking allreduce over the
 * whole block (for comparison and for debugging). Change it between steps. */
void nb_dist_grads_set_overlap(nb_dist_grads *d, bool on);

/* This rank's share of the global batch for the coming step: local_rows of
 * global_rows. Each rank's gradients are the mean over its own rows; the global
 * mean is Σ_r local_rows_r · g_r / global_rows, so each rank weights its block by
 * local_rows / global_rows before the sum. Without a share (or with
 * global_rows == 0) the weight is 1/P: the plain average, right when every
 * rank has the same number of rows. A rank with no rows (local_rows 0) sends
 * zeros. The share stays until changed. */
void nb_dist_grads_set_share(nb_dist_grads *d, size_t local_rows, size_t global_rows);

/* Declare the elements at offsets [done_from, n) final (backward has finished
 * with them): every bucket lying wholly inside that range, not yet started this
 * step, is weighted and its sum started (when overlap is on), and MPI is given a
 * chance to progress the buckets in flight. Call it with decreasing done_from
 * during backward (nb_dist_grads_attach does it for you). COLLECTIVE in effect:
 * every rank starts the same buckets in the same order. NB_ERR_IO on an MPI error
 * (also kept and returned again by nb_dist_grads_finish). */
nb_status nb_dist_grads_ready(nb_dist_grads *d, size_t done_from);

/* COLLECTIVE. Start the buckets not yet started (all of them, as one blocking
 * allreduce, when overlap is off), wait for every sum, and leave grad holding
 * the average over the ranks (the weighted mean with nb_dist_grads_set_share).
 * Every rank must call it once per step, even a rank whose forward or backward
 * failed (see the sync-point protocol above). Readies the object for the next
 * step. Returns the first error of this step (NB_ERR_IO from MPI), else NB_OK. */
nb_status nb_dist_grads_finish(nb_dist_grads *d);

/* Drive d from g's backward pass: installs a backward hook on g
 * (nb_graph_set_backward_hook) that calls nb_dist_grads_ready with the offset
 * from which the block is final after each node. A parameter's gradient is final
 * once backward has passed the earliest node that reads the parameter; the
 * offsets are worked out here, once, from the graph. Every parameter's gradient
 * must lie in d's block (nb_graph_bind_params or nb_graph_pack_params with that
 * block), else NB_ERR_ARG. g NULL detaches d from the graph it was attached to.
 * Attaching to another graph detaches the first. Nodes added to g later are
 * ignored by the hook (their buckets start at finish). NB_ERR_NOMEM when out of
 * memory. Detach (or free d) before freeing the graph. */
nb_status nb_dist_grads_attach(nb_dist_grads *d, nb_graph *g);

/* The number of buckets, and how many have been started since the last
 * nb_dist_grads_finish (for tests and for seeing the overlap at work). */
int nb_dist_grads_bucket_count(const nb_dist_grads *d);
int nb_dist_grads_started(const nb_dist_grads *d);

/* Detach from the graph, wait for any bucket still in flight (collective when
 * some are: call nb_dist_grads_finish first), and free. NULL is a no-op. */
void nb_dist_grads_free(nb_dist_grads *d);

#ifdef __cplusplus
}
#endif
#endif
