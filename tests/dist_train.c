/* dist_train.c — data-parallel training under mpirun, checked against one
 * process doing the same global batches.
 *
 *   mpirun -np 2 dist_train [--steps N] [--fail-rank R --fail-step S] [--differ-rank R]
 *
 * A small MLP (8-16-3, ReLU, sparse softmax cross-entropy from logits, Adam) is
 * trained with the raw graph API on a fixed synthetic data set. Every global
 * batch of B rows is split across the P ranks (rank r takes rows r·B/P ..
 * (r+1)·B/P - 1); the weights start as rank 0's (every other rank draws
 * different ones, which the broadcast must overwrite); gradients are averaged
 * with the bucketed, overlapped nb_dist_grads, and also with overlap off.
 * Rank 0 then trains the same model on the whole global batches in one graph and
 * requires the weights to agree (see TOL).
 *
 * --fail-rank R --fail-step S: rank R plants label 99 in its rows at step S, so
 * its forward fails; every rank must stop at that step with rank R's message
 * and exit 1. --differ-rank R: rank R's copy of the data set differs by one
 * value; nb_dist_check_same must catch it on every rank. Exit 0 on success. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nabla/nabla.h>
#include <nabla/nb_dist.h>

enum { F = 8, H = 16, K = 3, N_DATA = 96, B = 16 };
#define NPARAM (F * H + H + H * K + K)

/* Weights may differ from the single-process run only by float rounding: the
 * gradient of the mean loss is summed in another order (two partial means of
 * B/2 rows, each halved, then added, instead of one mean over B rows), which
 * changes it by a few units in the last place (relative ~1e-7). Adam divides m
 * by sqrt(v), so a relative change ε of g changes a step by at most about
 * lr·ε·(1 + |m|/sqrt(v)) <= 2·lr·ε; over 10 steps with lr 0.01 that is ~1e-8 per
 * weight, far below TOL. TOL = 1e-5 leaves room for elements whose gradient is
 * nearly zero (there m/sqrt(v) is most sensitive), yet a real error (a missing
 * 1/P, a bucket summed twice or not at all, a rank using the wrong rows) moves
 * the weights by ~lr = 1e-2 per step, a thousand times more. */
#define TOL 1e-5f

static float X[N_DATA * F];
static int32_t Y[N_DATA];

static void make_data(void)
{
    nb_rng r;
    nb_rng_seed(&r, 7);
    for (int i = 0; i < N_DATA; i++) {
        float s = 0;
        for (int j = 0; j < F; j++) s += X[i * F + j] = nb_rng_uniform_range(&r, -1, 1);
        Y[i] = s > 0.5f ? 2 : s < -0.5f ? 0 : 1;
    }
}

static void init_weights(float *w, uint64_t seed)
{
    nb_rng r;
    nb_rng_seed(&r, seed);
    for (int i = 0; i < NPARAM; i++) w[i] = nb_rng_uniform_range(&r, -0.5f, 0.5f);
}

typedef struct net {
    nb_graph *g;
    nb_tensor *x, *y, *loss;
} net;

/* The MLP for `rows` rows per step, its parameters bound to w and gr. */
static net net_new(int rows, float *w, float *gr)
{
    net m = {nb_graph_new(), NULL, NULL, NULL};
    m.x = nb_input(m.g, NB_F32, 2, (int[]){rows, F});
    m.y = nb_input(m.g, NB_I32, 1, (int[]){rows});
    nb_tensor *w1 = nb_param(m.g, 2, (int[]){F, H}), *b1 = nb_param(m.g, 1, (int[]){H});
    nb_tensor *w2 = nb_param(m.g, 2, (int[]){H, K}), *b2 = nb_param(m.g, 1, (int[]){K});
    nb_tensor *h = nb_dense(m.g, m.x, w1, b1, NB_RELU);
    m.loss = nb_sparse_categorical_crossentropy(m.g, nb_dense(m.g, h, w2, b2, NB_LINEAR), m.y, true);
    if (!m.loss || nb_graph_bind_params(m.g, w, gr, NPARAM) != NB_OK) {
        fprintf(stderr, "dist_train: building the model: %s\n", nb_graph_error(m.g) ? nb_graph_error(m.g) : nb_last_error());
        exit(2);
    }
    return m;
}

/* One process, whole global batches: the reference. */
static void train_single(const float *w0, int steps, float *w)
{
    static float gr[NPARAM];
    memcpy(w, w0, sizeof(float) * NPARAM);
    memset(gr, 0, sizeof gr);
    net m = net_new(B, w, gr);
    nb_optimizer *opt = nb_adam(0.01f);
    for (int step = 0; step < steps; step++) {
        int base = (step * B) % N_DATA;
        nb_input_set(m.x, X + base * F, B);
        nb_input_set(m.y, Y + base, B);
        if (nb_forward(m.g) != NB_OK || nb_backward(m.g, m.loss) != NB_OK ||
            nb_optimizer_step_clear(opt, w, gr, NPARAM) != NB_OK) {
            fprintf(stderr, "dist_train: single-process step %d: %s\n", step, nb_last_error());
            exit(2);
        }
    }
    nb_optimizer_free(opt);
    nb_graph_free(m.g);
}

typedef struct opts {
    int steps, fail_rank, fail_step, differ_rank;
} opts;

/* Every rank, its share of each global batch. Returns the agreed status; on
 * failure *failed_step is the step where every rank stopped. */
static nb_status train_dist(const opts *o, const float *w0, bool overlap, float *w, int *failed_step)
{
    static float gr[NPARAM];
    int P = nb_dist_size(), r = nb_dist_rank(), lo = r * B / P, rows = (r + 1) * B / P - lo;
    memcpy(w, w0, sizeof(float) * NPARAM);
    memset(gr, 0, sizeof gr);
    net m = net_new(rows, w, gr);
    nb_optimizer *opt = nb_adam(0.01f);
    nb_dist_grads *d = nb_dist_grads_new(gr, NPARAM, 16 * sizeof(float)); /* 13 buckets */
    nb_status s = d ? nb_dist_grads_attach(d, m.g) : NB_ERR_NOMEM;
    nb_dist_grads_set_overlap(d, overlap);
    nb_dist_grads_set_share(d, (size_t)rows, B);
    s = nb_dist_agree(s, NULL);
    for (int step = 0; step < o->steps && s == NB_OK; step++) {
        int base = (step * B) % N_DATA + lo;
        nb_input_set(m.x, X + base * F, rows);
        nb_input_set(m.y, Y + base, rows);
        if (r == o->fail_rank && step == o->fail_step) m.y->idata[rows > 5 ? 5 : 0] = 99; /* bad data */
        nb_status local = nb_forward(m.g);
        if (local == NB_OK) local = nb_backward(m.g, m.loss);
        nb_status c = nb_dist_grads_finish(d); /* every rank, even one that failed */
        s = nb_dist_agree(local != NB_OK ? local : c, NULL);
        if (s != NB_OK) {
            *failed_step = step;
            break;
        }
        double loss[2] = {m.loss->data[0] * rows, rows};
        nb_dist_sum(loss, 2);
        if (r == 0 && step == o->steps - 1)
            printf("dist_train: overlap %s: last global loss %.6f over %g rows\n", overlap ? "on" : "off",
                   loss[0] / loss[1], loss[1]);
        s = nb_optimizer_step_clear(opt, w, gr, NPARAM);
    }
    nb_dist_grads_free(d);
    nb_optimizer_free(opt);
    nb_graph_free(m.g);
    return s;
}

static opts parse(int argc, char **argv)
{
    opts o = {.steps = 10, .fail_rank = -1, .fail_step = -1, .differ_rank = -1};
    for (int i = 1; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--steps")) o.steps = v;
        else if (!strcmp(argv[i], "--fail-rank")) o.fail_rank = v;
        else if (!strcmp(argv[i], "--fail-step")) o.fail_step = v;
        else if (!strcmp(argv[i], "--differ-rank")) o.differ_rank = v;
        else {
            fprintf(stderr, "dist_train: unknown option %s\n", argv[i]);
            exit(2);
        }
    }
    return o;
}

/* Stop every rank with the agreed message (all ranks get here together). */
static int stop(const char *what, int step)
{
    fprintf(stderr, "dist_train: rank %d stopped %s %d: %s\n", nb_dist_rank(), what, step, nb_last_error());
    nb_dist_finalize();
    return 1;
}

int main(int argc, char **argv)
{
    if (nb_dist_init(&argc, &argv) != NB_OK) {
        fprintf(stderr, "dist_train: %s\n", nb_last_error());
        return 2;
    }
    opts o = parse(argc, argv);
    int rank = nb_dist_rank();
    /* the plain collectives: the mean of rank + 1 is (P + 1) / 2 (up to the rounding
     * of the factor 1/P); the sum of 1 is P */
    float v[3] = {(float)rank + 1, 2.0f * ((float)rank + 1), -1};
    double c[2] = {1, (double)rank};
    nb_status s = nb_dist_allreduce_mean(v, 3);
    if (s == NB_OK) s = nb_dist_sum(c, 2);
    int P = nb_dist_size();
    if (s == NB_OK && (fabsf(v[0] - (P + 1) / 2.0f) > 1e-6f * P || fabsf(v[1] - (P + 1)) > 1e-6f * P || v[2] != -1 || c[0] != P ||
                       c[1] != P * (P - 1) / 2.0))
        s = nb_fail(NB_ERR_NUMERIC, "allreduce: got mean %g %g %g, sum %g %g", v[0], v[1], v[2], c[0], c[1]);
    if (nb_dist_agree(s, NULL) != NB_OK) return stop("before step", 0);
    make_data();
    if (rank == o.differ_rank) X[3] += 1e-3f;
    if (nb_dist_check_same(X, sizeof X, "data set") != NB_OK) return stop("before step", 0);
    float w0[NPARAM], w[NPARAM], ref[NPARAM];
    init_weights(w0, rank == 0 ? 1 : 1000 + (uint64_t)rank); /* only rank 0's may survive */
    if (nb_dist_broadcast(w0, NPARAM) != NB_OK) return stop("before step", 0);
    if (nb_dist_check_same(w0, sizeof w0, "initial weights") != NB_OK) return stop("before step", 0);
    if (rank == 0) train_single(w0, o.steps, ref);
    for (int overlap = 1; overlap >= 0; overlap--) {
        int step = -1;
        if (train_dist(&o, w0, overlap, w, &step) != NB_OK) return stop("at step", step);
        if (nb_dist_check_same(w, sizeof w, "trained weights") != NB_OK) return stop("after step", o.steps);
        nb_status verdict = NB_OK;
        if (rank == 0) {
            float worst = 0, moved = 0;
            for (int i = 0; i < NPARAM; i++) {
                worst = fmaxf(worst, fabsf(w[i] - ref[i]));
                moved = fmaxf(moved, fabsf(w[i] - w0[i]));
            }
            printf("dist_train: overlap %s: max |w_dist - w_single| = %.3g (tolerance %g; weights moved up to %.3g) "
                   "on %d ranks\n", overlap ? "on" : "off", worst, TOL, moved, nb_dist_size());
            if (!(worst <= TOL) || !(moved > 100 * TOL))
                verdict = nb_fail(NB_ERR_NUMERIC, "overlap %s: distributed weights differ from the single-process run",
                                  overlap ? "on" : "off");
        }
        if (nb_dist_agree(verdict, NULL) != NB_OK) return stop("after step", o.steps);
    }
    if (rank == 0) printf("dist_train: ok\n");
    nb_dist_finalize();
    return 0;
}
