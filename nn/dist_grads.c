/* dist_grads.c — bucketed, overlapped gradient averaging (nb_dist_grads), the
 * same with or without MPI: the transport is dist_mpi.c or dist_none.c.
 *
 * Bucket k covers [lo[k], hi[k]) of the gradient block, counted from the end
 * (bucket 0 ends at n). During backward the block becomes final from the end
 * towards the start, so buckets start in the order 0, 1, 2, ... on every rank
 * (MPI requires collectives, non-blocking ones included, to start in the same
 * order everywhere). */
#include <string.h>

#include "dist_internal.h"

struct nb_dist_grads {
    float *grad;       /* (n) the packed gradient block, borrowed */
    size_t n;
    int nb;            /* buckets */
    size_t *lo, *hi;   /* (nb) bucket k is grad[lo[k] .. hi[k]) */
    void *reqs;        /* (nb) requests of the transport */
    int next;          /* buckets 0 .. next-1 are started this step */
    bool overlap;
    double weight;     /* this rank's factor before the sum; < 0: 1/P */
    nb_status err;     /* first transport error of this step */
    nb_graph *graph;   /* attached graph (its backward hook is ours), or NULL */
    size_t *done_from; /* (n_nodes) block final from this offset after node i's backward */
    int n_nodes;
};

nb_dist_grads *nb_dist_grads_new(float *grad, size_t n, size_t bucket_bytes)
{
    if (!grad || n == 0) {
        nb_fail(NB_ERR_ARG, "nb_dist_grads_new: %s", grad ? "n is 0" : "grad is NULL");
        return NULL;
    }
    size_t per = (bucket_bytes ? bucket_bytes : NB_DIST_DEFAULT_BUCKET_BYTES) / sizeof(float);
    if (per == 0) per = 1;
    if (per > NB__DIST_MAX_COUNT) per = NB__DIST_MAX_COUNT;
    size_t nb = (n + per - 1) / per;
    if (nb > 1u << 20) {
        nb_fail(NB_ERR_ARG, "nb_dist_grads_new: %zu buckets of %zu bytes is too many (at most 2^20)", nb, bucket_bytes);
        return NULL;
    }
    nb_dist_grads *d = nb_calloc(1, sizeof *d);
    if (d) {
        d->lo = nb_malloc(nb * sizeof *d->lo);
        d->hi = nb_malloc(nb * sizeof *d->hi);
        d->reqs = nb__dist_reqs_new((int)nb);
    }
    if (!d || !d->lo || !d->hi || !d->reqs) {
        nb_dist_grads_free(d);
        nb_fail(NB_ERR_NOMEM, "nb_dist_grads_new: out of memory for %zu buckets", nb);
        return NULL;
    }
    for (size_t k = 0; k < nb; k++) {
        d->hi[k] = n - k * per;
        d->lo[k] = d->hi[k] > per ? d->hi[k] - per : 0;
    }
    d->grad = grad;
    d->n = n;
    d->nb = (int)nb;
    d->overlap = true;
    d->weight = -1;
    return d;
}

void nb_dist_grads_set_overlap(nb_dist_grads *d, bool on)
{
    if (d) d->overlap = on;
}

void nb_dist_grads_set_share(nb_dist_grads *d, size_t local_rows, size_t global_rows)
{
    if (d) d->weight = global_rows ? (double)local_rows / (double)global_rows : -1;
}

/* Weight grad[lo, hi) by this rank's factor (zeros for a rank with no rows). */
static void weigh(const nb_dist_grads *d, size_t lo, size_t hi)
{
    float *restrict g = d->grad;
    if (d->weight == 0) {
        memset(g + lo, 0, (hi - lo) * sizeof *g);
        return;
    }
    float w = (float)(d->weight < 0 ? 1.0 / nb_dist_size() : d->weight);
    if (w == 1.0f) return;
    for (size_t i = lo; i < hi; i++) g[i] *= w;
}

/* Start buckets next .. while they lie inside [done_from, n). */
static void start_from(nb_dist_grads *d, size_t done_from)
{
    while (d->next < d->nb && d->lo[d->next] >= done_from) {
        int k = d->next++;
        weigh(d, d->lo[k], d->hi[k]);
        nb_status s = nb__dist_isum(d->grad + d->lo[k], d->hi[k] - d->lo[k], d->reqs, k);
        if (s != NB_OK && d->err == NB_OK) d->err = s;
    }
}

nb_status nb_dist_grads_ready(nb_dist_grads *d, size_t done_from)
{
    if (!d) return nb_fail(NB_ERR_ARG, "nb_dist_grads_ready: d is NULL");
    if (!d->overlap) return NB_OK;
    start_from(d, done_from);
    if (d->next > 0 && d->err == NB_OK) {
        nb_status s = nb__dist_progress(d->reqs, d->next);
        if (s != NB_OK) d->err = s;
    }
    return d->err;
}

nb_status nb_dist_grads_finish(nb_dist_grads *d)
{
    if (!d) return nb_fail(NB_ERR_ARG, "nb_dist_grads_finish: d is NULL");
    if (d->overlap || d->next > 0) { /* buckets already in flight keep their way */
        start_from(d, 0);
        nb_status s = nb__dist_wait(d->reqs, d->next);
        if (s != NB_OK && d->err == NB_OK) d->err = s;
    } else {
        weigh(d, 0, d->n);
        nb_status s = nb__dist_sum_floats(d->grad, d->n);
        if (s != NB_OK && d->err == NB_OK) d->err = s;
        d->next = d->nb;
    }
    nb_status s = d->err;
    d->err = NB_OK;
    d->next = 0;
    return s;
}

int nb_dist_grads_bucket_count(const nb_dist_grads *d) { return d ? d->nb : 0; }
int nb_dist_grads_started(const nb_dist_grads *d) { return d ? d->next : 0; }

/* The backward hook: node `id` and every later node are done. */
static void grads_hook(void *ctx, int id)
{
    nb_dist_grads *d = ctx;
    if (id >= 0 && id < d->n_nodes) nb_dist_grads_ready(d, d->done_from[id]);
}

/* done_from[i] = the end of the last parameter (in the block) whose earliest
 * consumer comes before node i: everything after it is final once node i's
 * backward has run. contrib[j] (kept in done_from[j] first) is the largest end
 * of the parameters first read by node j. */
static nb_status plan(nb_dist_grads *d, nb_graph *g)
{
    int nn = nb_graph_size(g);
    size_t *df = nb_calloc(nn > 0 ? (size_t)nn : 1, sizeof *df);
    int *first = nb_malloc((nn > 0 ? (size_t)nn : 1) * sizeof *first);
    if (!df || !first) {
        nb_free(df);
        nb_free(first);
        return nb_fail(NB_ERR_NOMEM, "nb_dist_grads_attach: out of memory for %d nodes", nn);
    }
    for (int i = 0; i < nn; i++) first[i] = -1;
    for (int i = 0; i < nn; i++) {
        nb_tensor *t = nb_graph_node(g, i);
        for (int s = 0; s < t->n_src; s++) {
            nb_tensor *p = t->src[s];
            if (!p || !(p->flags & NB_FLAG_PARAM) || first[p->id] >= 0) continue;
            first[p->id] = i;
            size_t end = (size_t)(p->grad - d->grad) + p->size;
            if (end > df[i]) df[i] = end;
        }
    }
    size_t run = 0; /* prefix maximum over j < i */
    for (int i = 0; i < nn; i++) {
        size_t c = df[i];
        df[i] = run;
        if (c > run) run = c;
    }
    nb_free(first);
    nb_free(d->done_from);
    d->done_from = df;
    d->n_nodes = nn;
    return NB_OK;
}

nb_status nb_dist_grads_attach(nb_dist_grads *d, nb_graph *g)
{
    if (!d) return nb_fail(NB_ERR_ARG, "nb_dist_grads_attach: d is NULL");
    if (g) {
        for (int i = 0; i < nb_graph_size(g); i++) {
            nb_tensor *p = nb_graph_node(g, i);
            if (!(p->flags & NB_FLAG_PARAM)) continue;
            if (!p->grad || p->grad < d->grad || p->grad + p->size > d->grad + d->n)
                return nb_fail(NB_ERR_ARG, "nb_dist_grads_attach: parameter node %d's gradient is not in the block "
                                           "(bind the graph's parameters to it with nb_graph_bind_params)", i);
        }
        nb_status s = plan(d, g);
        if (s != NB_OK) return s;
    }
    if (d->graph && d->graph != g) nb_graph_set_backward_hook(d->graph, NULL, NULL);
    d->graph = g;
    if (g) nb_graph_set_backward_hook(g, grads_hook, d);
    return NB_OK;
}

void nb_dist_grads_free(nb_dist_grads *d)
{
    if (!d) return;
    if (d->graph) nb_graph_set_backward_hook(d->graph, NULL, NULL);
    if (d->reqs && d->next > 0) nb__dist_wait(d->reqs, d->next);
    nb__dist_reqs_free(d->reqs);
    nb_free(d->lo);
    nb_free(d->hi);
    nb_free(d->done_from);
    nb_free(d);
}
