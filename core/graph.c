/* graph.c — the graph: tensors, leaves, nodes, forward, backward, packed parameters. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core_internal.h"
#include <nabla/nb_plugin.h>

enum { FLAG_PACKED = 1 << 8 }; /* internal: data/grad live in a packed block (the graph's or bound) */

/* Every float buffer gets PAD spare elements past its end: BLIS's generic GEMM
 * kernels (the fallback on CPUs Debian's BLIS does not recognise) read a few
 * elements past the end of the output matrix when beta != 0. */
#define PAD 16

/* Largest tensor accepted: 2^31 - 1 elements (8 GiB of floats). */
#define MAX_ELEMENTS ((size_t)0x7fffffff)

struct nb_graph {
    nb_tensor **nodes; /* (n) in creation order */
    int n, cap;
    char error[512];   /* first build error, "" when none */
    float *pdata;      /* (pcount) packed parameter values, NULL before packing */
    float *pgrad;      /* (pcount) packed parameter gradients */
    size_t pcount;
    bool bound;        /* pdata/pgrad belong to the caller (nb_graph_bind_params) */
    bool training;     /* nb_graph_set_training */
    bool no_grad;      /* nb_graph_set_grad_enabled(g, false): parameters made now keep no gradient */
    nb_status status;  /* status of the first error, NB_OK when none */
    nb_rng rng;        /* nb_graph_rng: draws of ops such as dropout */
    void (*bw_hook)(void *ctx, int node_id); /* nb_graph_set_backward_hook; NULL when none */
    void *bw_hook_ctx;
};

nb_graph *nb_graph_new(void)
{
    nb_graph *g = nb_calloc(1, sizeof *g);
    if (!g) nb_fail(NB_ERR_NOMEM, "nb_graph_new: out of memory");
    else nb_rng_seed(&g->rng, NB_GRAPH_DEFAULT_SEED);
    return g;
}

static void tensor_free(nb_tensor *t)
{
    nb_input_release(t);
    if (!(t->flags & FLAG_PACKED)) {
        nb_free(t->data);
        nb_free(t->grad);
    }
    nb_free(t->idata);
    nb_free(t->scratch);
    nb_free(t);
}

void nb_graph_free(nb_graph *g)
{
    if (!g) return;
    for (int i = 0; i < g->n; i++) tensor_free(g->nodes[i]);
    nb_free(g->nodes);
    if (!g->bound) {
        nb_free(g->pdata);
        nb_free(g->pgrad);
    }
    nb_free(g);
}

const char *nb_graph_error(const nb_graph *g) { return g && g->error[0] ? g->error : NULL; }

void nb_graph_clear_error(nb_graph *g)
{
    if (g) {
        g->error[0] = '\0';
        g->status = NB_OK;
    }
}

nb_status nb_graph_status(const nb_graph *g) { return g ? g->status : NB_ERR_ARG; }

void nb_graph_set_grad_enabled(nb_graph *g, bool enabled)
{
    if (g) g->no_grad = !enabled;
}

void nb_graph_set_training(nb_graph *g, bool training)
{
    if (g) g->training = training;
}

bool nb_graph_training(const nb_graph *g) { return g && g->training; }

nb_rng *nb_graph_rng(nb_graph *g) { return g ? &g->rng : NULL; }

void nb_graph_seed(nb_graph *g, uint64_t seed)
{
    if (g) nb_rng_seed(&g->rng, seed);
}

int nb_graph_size(const nb_graph *g) { return g ? g->n : 0; }

nb_tensor *nb_graph_node(const nb_graph *g, int i) { return g && i >= 0 && i < g->n ? g->nodes[i] : NULL; }

/* Keep msg as the graph's error when it has none yet; always set nb_last_error. */
static void record(nb_graph *g, nb_status s, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    nb_fail(s, "%s", msg);
    if (g && !g->error[0]) {
        snprintf(g->error, sizeof g->error, "%s", msg);
        g->status = s;
    }
}

nb_tensor *nb_graph_fail(nb_graph *g, nb_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(g, s, fmt, ap);
    va_end(ap);
    return NULL;
}

nb_status nb_node_fail(nb_tensor *t, nb_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(t ? t->graph : NULL, s, fmt, ap);
    va_end(ap);
    return s;
}

char *nb_shape_str(const nb_tensor *t, char *buf, size_t len)
{
    if (!buf || len == 0) return buf;
    if (!t) {
        snprintf(buf, len, "(null)");
        return buf;
    }
    size_t at = (size_t)snprintf(buf, len, "(");
    for (int d = 0; d < t->ndim && at < len; d++)
        at += (size_t)snprintf(buf + at, len - at, d ? ", %d" : "%d", t->shape[d]);
    if (at < len) snprintf(buf + at, len - at, t->ndim == 1 ? ",)" : ")");
    return buf;
}

/* Product of the shape, or 0 when a dimension is < 1 or the total is too large. */
static size_t shape_size(int ndim, const int *shape)
{
    size_t n = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 1 || (size_t)shape[d] > MAX_ELEMENTS / n) return 0;
        n *= (size_t)shape[d];
    }
    return n;
}

/* Make room for n elements in t's value (and gradient) buffers. */
static nb_status ensure_cap(nb_tensor *t, size_t n)
{
    if (n <= t->cap) return NB_OK;
    assert(!(t->flags & FLAG_PACKED)); /* parameters never change size */
    if (t->dtype == NB_I32) {
        int32_t *p = nb_realloc(t->idata, (n + PAD) * sizeof *p);
        if (!p) return nb_node_fail(t, NB_ERR_NOMEM, "out of memory for a tensor of %zu elements", n);
        t->idata = p;
    } else {
        float *p = nb_realloc(t->data, (n + PAD) * sizeof *p);
        if (!p) return nb_node_fail(t, NB_ERR_NOMEM, "out of memory for a tensor of %zu elements", n);
        memset(p + n, 0, PAD * sizeof *p);
        t->data = p;
    }
    if (t->flags & NB_FLAG_NEEDS_GRAD) {
        float *p = nb_realloc(t->grad, (n + PAD) * sizeof *p);
        if (!p) return nb_node_fail(t, NB_ERR_NOMEM, "out of memory for a gradient of %zu elements", n);
        t->grad = p;
        memset(t->grad, 0, (n + PAD) * sizeof *p);
    }
    t->cap = n;
    return NB_OK;
}

static nb_status append(nb_graph *g, nb_tensor *t)
{
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 16;
        nb_tensor **p = nb_realloc(g->nodes, (size_t)cap * sizeof *p);
        if (!p) return nb_node_fail(t, NB_ERR_NOMEM, "out of memory for the graph's node list");
        g->nodes = p;
        g->cap = cap;
    }
    t->id = g->n;
    g->nodes[g->n++] = t;
    return NB_OK;
}

static nb_tensor *leaf(nb_graph *g, const char *fn, nb_dtype dtype, int ndim, const int *shape, int flags)
{
    if (!g) {
        nb_fail(NB_ERR_ARG, "%s: graph is NULL", fn);
        return NULL;
    }
    if (ndim < 0 || ndim > NB_MAX_DIMS || (ndim > 0 && !shape))
        return nb_graph_fail(g, NB_ERR_ARG, "%s: ndim must be 0..%d with a shape array (got ndim %d%s)", fn,
                             NB_MAX_DIMS, ndim, shape ? "" : ", shape NULL");
    if (dtype != NB_F32 && dtype != NB_I32) return nb_graph_fail(g, NB_ERR_ARG, "%s: unknown dtype %d", fn, dtype);
    size_t size = shape_size(ndim, shape);
    if (size == 0) {
        nb_tensor tmp = {.ndim = ndim};
        memcpy(tmp.shape, shape, (size_t)ndim * sizeof *shape);
        char s[64];
        return nb_graph_fail(g, NB_ERR_ARG, "%s: every dimension must be >= 1 (total below 2^31), got %s", fn,
                             nb_shape_str(&tmp, s, sizeof s));
    }
    nb_tensor *t = nb_calloc(1, sizeof *t);
    if (!t) return nb_graph_fail(g, NB_ERR_NOMEM, "%s: out of memory", fn);
    t->graph = g;
    t->ndim = ndim;
    if (ndim) memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->size = size;
    t->dtype = dtype;
    t->flags = flags;
    if (ensure_cap(t, size) != NB_OK || append(g, t) != NB_OK) {
        tensor_free(t);
        return NULL;
    }
    if (dtype == NB_I32) memset(t->idata, 0, size * sizeof *t->idata);
    else memset(t->data, 0, size * sizeof *t->data);
    return t;
}

nb_tensor *nb_input(nb_graph *g, nb_dtype dtype, int ndim, const int *shape)
{
    if (g && ndim < 1) return nb_graph_fail(g, NB_ERR_ARG, "nb_input: an input needs a batch dimension (ndim >= 1), got %d", ndim);
    return leaf(g, "nb_input", dtype, ndim, shape, NB_FLAG_INPUT);
}

nb_tensor *nb_param(nb_graph *g, int ndim, const int *shape)
{
    return leaf(g, "nb_param", NB_F32, ndim, shape, NB_FLAG_PARAM | (g && g->no_grad ? 0 : NB_FLAG_NEEDS_GRAD));
}

nb_tensor *nb_state(nb_graph *g, int ndim, const int *shape)
{
    return leaf(g, "nb_state", NB_F32, ndim, shape, NB_FLAG_STATE);
}

void nb_input_release(nb_tensor *t)
{
    if (!t || !t->own_data) return;
    t->data = t->own_data;
    t->own_data = NULL;
    size_t row = t->size / (size_t)t->shape[0];
    if (t->size > t->cap) { /* the borrowed batch was larger than the buffer: shrink the view */
        t->shape[0] = (int)(t->cap / row);
        t->size = row * (size_t)t->shape[0];
    }
}

nb_status nb_input_borrow(nb_tensor *t, const float *data, int batch)
{
    if (!t || !(t->flags & NB_FLAG_INPUT) || t->dtype != NB_F32)
        return nb_fail(NB_ERR_ARG, "nb_input_borrow: not a float input tensor");
    if (!data || batch < 1) return nb_fail(NB_ERR_ARG, "nb_input_borrow: data NULL or batch %d < 1", batch);
    size_t row = t->size / (size_t)t->shape[0];
    if ((size_t)batch > MAX_ELEMENTS / row)
        return nb_fail(NB_ERR_ARG, "nb_input_borrow: batch %d makes the input too large", batch);
    if (!t->own_data) t->own_data = t->data;
    t->data = (float *)(uintptr_t)data; /* read only: no op writes its inputs */
    t->shape[0] = batch;
    t->size = row * (size_t)batch;
    return NB_OK;
}

nb_status nb_input_set_batch(nb_tensor *t, int batch)
{
    if (!t || !(t->flags & NB_FLAG_INPUT)) return nb_fail(NB_ERR_ARG, "nb_input_set_batch: not an input tensor");
    nb_input_release(t);
    if (batch < 1) return nb_fail(NB_ERR_ARG, "nb_input_set_batch: batch must be >= 1, got %d", batch);
    size_t row = t->size / (size_t)t->shape[0];
    if ((size_t)batch > MAX_ELEMENTS / row)
        return nb_fail(NB_ERR_ARG, "nb_input_set_batch: batch %d makes the input too large", batch);
    nb_status s = ensure_cap(t, row * (size_t)batch);
    if (s != NB_OK) return s;
    t->shape[0] = batch;
    t->size = row * (size_t)batch;
    return NB_OK;
}

nb_status nb_input_set(nb_tensor *t, const void *src, int batch)
{
    if (!src) return nb_fail(NB_ERR_ARG, "nb_input_set: source is NULL");
    nb_status s = nb_input_set_batch(t, batch);
    if (s != NB_OK) return s;
    if (t->dtype == NB_I32) memcpy(t->idata, src, t->size * sizeof *t->idata);
    else memcpy(t->data, src, t->size * sizeof *t->data);
    return NB_OK;
}

nb_tensor *nb_set_name(nb_tensor *t, const char *name)
{
    if (t && name) snprintf(t->name, sizeof t->name, "%s", name);
    return t;
}

/* Run t's shape rule and size its buffers. */
static nb_status derive(nb_tensor *t)
{
    t->dtype = NB_F32;
    nb_status s = t->op->shape(t);
    if (s != NB_OK) return s;
    t->size = shape_size(t->ndim, t->shape);
    if (t->size == 0) {
        char shp[64];
        return nb_node_fail(t, NB_ERR_SHAPE, "%s: result shape %s is empty or too large", t->op->name,
                            nb_shape_str(t, shp, sizeof shp));
    }
    return ensure_cap(t, t->size);
}

nb_tensor *nb_node(nb_graph *g, const nb_op *op, nb_tensor *const *src, int n_src, const void *attr,
                   size_t attr_size)
{
    if (!g) {
        nb_fail(NB_ERR_ARG, "%s: graph is NULL", op && op->name ? op->name : "nb_node");
        return NULL;
    }
    if (!op || !op->shape || !op->forward || (op->n_src != NB_VARIADIC && n_src != op->n_src) ||
        (op->n_src == NB_VARIADIC && n_src < 1) || n_src < 0 || n_src > NB_MAX_SRC || (n_src > 0 && !src))
        return nb_graph_fail(g, NB_ERR_ARG, "nb_node: bad op definition or input count (%d)", n_src);
    if (attr_size > sizeof(nb_attr) || (attr_size && !attr))
        return nb_graph_fail(g, NB_ERR_ARG, "%s: attributes of %zu bytes (at most %zu)", op->name, attr_size,
                             sizeof(nb_attr));
    int needs_grad = 0;
    for (int i = 0; i < n_src; i++) {
        if (!src[i]) {
            if (g->error[0]) return NULL; /* propagate: keep the first message */
            return nb_graph_fail(g, NB_ERR_ARG, "%s: input %d is NULL", op->name, i);
        }
        if (src[i]->graph != g) return nb_graph_fail(g, NB_ERR_ARG, "%s: input %d belongs to another graph", op->name, i);
        if (src[i]->flags & NB_FLAG_NEEDS_GRAD) needs_grad = 1;
    }
    nb_tensor *t = nb_calloc(1, sizeof *t);
    if (!t) return nb_graph_fail(g, NB_ERR_NOMEM, "%s: out of memory", op->name);
    t->graph = g;
    t->op = op;
    t->n_src = n_src;
    for (int i = 0; i < n_src; i++) t->src[i] = src[i];
    if (attr_size) memcpy(t->attr.bytes, attr, attr_size);
    if (needs_grad && op->backward) t->flags |= NB_FLAG_NEEDS_GRAD;
    if (derive(t) != NB_OK || op->forward(t) != NB_OK || append(g, t) != NB_OK) {
        tensor_free(t);
        return NULL;
    }
    return t;
}

float *nb_scratch(nb_tensor *t, size_t n)
{
    if (n <= t->scratch_cap) return t->scratch;
    float *p = nb_realloc(t->scratch, (n + PAD) * sizeof *p);
    if (!p) {
        nb_node_fail(t, NB_ERR_NOMEM, "%s: out of memory for %zu floats of scratch", t->op ? t->op->name : "tensor", n);
        return NULL;
    }
    memset(p + n, 0, PAD * sizeof *p);
    t->scratch = p;
    t->scratch_cap = n;
    return p;
}

nb_status nb_forward(nb_graph *g)
{
    if (!g) return nb_fail(NB_ERR_ARG, "nb_forward: graph is NULL");
    for (int i = 0; i < g->n; i++) {
        nb_tensor *t = g->nodes[i];
        if (!t->op) continue;
        double t0 = nb__profiling ? nb_now() : 0;
        nb_status s = derive(t);
        if (s == NB_OK) s = t->op->forward(t);
        if (s != NB_OK) return s;
        if (nb__profiling) nb__profile_add(t->op, false, nb_now() - t0);
    }
    return NB_OK;
}

nb_status nb_backward(nb_graph *g, nb_tensor *loss)
{
    if (!g) return nb_fail(NB_ERR_ARG, "nb_backward: graph is NULL");
    if (!loss) return nb_fail(NB_ERR_ARG, "nb_backward: loss is NULL");
    if (loss->graph != g) return nb_fail(NB_ERR_ARG, "nb_backward: loss belongs to another graph");
    if (loss->size != 1 || loss->dtype != NB_F32) {
        char s[64];
        return nb_fail(NB_ERR_ARG, "nb_backward: loss must be a single float, got shape %s (reduce it with nb_sum or nb_mean)",
                       nb_shape_str(loss, s, sizeof s));
    }
    if (!(loss->flags & NB_FLAG_NEEDS_GRAD)) return NB_OK; /* depends on no parameter */
    for (int i = 0; i <= loss->id; i++) {
        nb_tensor *t = g->nodes[i];
        if (t->op && t->grad) memset(t->grad, 0, t->size * sizeof *t->grad);
    }
    loss->grad[0] += 1.0f;
    for (int i = loss->id; i >= 0; i--) {
        nb_tensor *t = g->nodes[i];
        if (t->op && t->grad) {
            double t0 = nb__profiling ? nb_now() : 0;
            t->op->backward(t);
            if (nb__profiling) nb__profile_add(t->op, true, nb_now() - t0);
        }
        if (g->bw_hook) g->bw_hook(g->bw_hook_ctx, i);
    }
    return NB_OK;
}

void nb_graph_set_backward_hook(nb_graph *g, void (*fn)(void *ctx, int node_id), void *ctx)
{
    if (!g) return;
    g->bw_hook = fn;
    g->bw_hook_ctx = fn ? ctx : NULL;
}

void nb_zero_grad(nb_graph *g)
{
    if (!g) return;
    if (g->pgrad) memset(g->pgrad, 0, g->pcount * sizeof *g->pgrad);
    for (int i = 0; i < g->n; i++) {
        nb_tensor *t = g->nodes[i];
        if (t->grad && !(t->flags & FLAG_PACKED)) memset(t->grad, 0, t->size * sizeof *t->grad);
    }
}

/* Total elements of the tensors carrying `flag`. */
static size_t flagged_size(const nb_graph *g, int flag)
{
    size_t total = 0;
    for (int i = 0; i < g->n; i++)
        if (g->nodes[i]->flags & flag) total += g->nodes[i]->size;
    return total;
}

/* Point each tensor carrying `flag` (creation order) into data (and grad when
 * given), copying its current values when `copy`, and freeing what it owned. */
static void repoint(nb_graph *g, int flag, float *data, float *grad, bool copy)
{
    size_t at = 0;
    for (int i = 0; i < g->n; i++) {
        nb_tensor *t = g->nodes[i];
        if (!(t->flags & flag)) continue;
        if (copy) memcpy(data + at, t->data, t->size * sizeof *data);
        if (copy && grad && t->grad) memcpy(grad + at, t->grad, t->size * sizeof *grad);
        if (!(t->flags & FLAG_PACKED)) {
            nb_free(t->data);
            nb_free(t->grad);
        }
        t->data = data + at;
        t->grad = grad ? grad + at : NULL;
        t->flags |= FLAG_PACKED;
        at += t->size;
    }
}

nb_status nb_graph_pack_params(nb_graph *g)
{
    if (!g) return nb_fail(NB_ERR_ARG, "nb_graph_pack_params: graph is NULL");
    if (g->bound) return nb_fail(NB_ERR_STATE, "nb_graph_pack_params: the parameters are bound to the caller's blocks");
    size_t total = flagged_size(g, NB_FLAG_PARAM);
    if (total == 0) return NB_OK;
    float *pd = nb_calloc(total + PAD, sizeof *pd), *pg = nb_calloc(total + PAD, sizeof *pg);
    if (!pd || !pg) {
        nb_free(pd);
        nb_free(pg);
        return nb_fail(NB_ERR_NOMEM, "nb_graph_pack_params: out of memory for %zu parameters", total);
    }
    repoint(g, NB_FLAG_PARAM, pd, pg, true);
    nb_free(g->pdata);
    nb_free(g->pgrad);
    g->pdata = pd;
    g->pgrad = pg;
    g->pcount = total;
    return NB_OK;
}

nb_status nb_graph_bind_params(nb_graph *g, float *data, float *grad, size_t n)
{
    if (!g || !data) return nb_fail(NB_ERR_ARG, "nb_graph_bind_params: graph or block is NULL");
    for (int i = 0; !grad && i < g->n; i++)
        if ((g->nodes[i]->flags & NB_FLAG_PARAM) && (g->nodes[i]->flags & NB_FLAG_NEEDS_GRAD))
            return nb_fail(NB_ERR_ARG, "nb_graph_bind_params: the parameters keep gradients; pass a gradient block");
    size_t total = flagged_size(g, NB_FLAG_PARAM);
    if (n != total)
        return nb_fail(NB_ERR_ARG, "nb_graph_bind_params: the graph has %zu parameter values, the blocks %zu", total, n);
    repoint(g, NB_FLAG_PARAM, data, grad, false);
    if (!g->bound) {
        nb_free(g->pdata);
        nb_free(g->pgrad);
    }
    g->pdata = data;
    g->pgrad = grad;
    g->pcount = n;
    g->bound = true;
    return NB_OK;
}

nb_status nb_graph_bind_state(nb_graph *g, float *data, size_t n)
{
    if (!g || (!data && n)) return nb_fail(NB_ERR_ARG, "nb_graph_bind_state: graph or block is NULL");
    size_t total = flagged_size(g, NB_FLAG_STATE);
    if (n != total)
        return nb_fail(NB_ERR_ARG, "nb_graph_bind_state: the graph has %zu state values, the block %zu", total, n);
    if (n) repoint(g, NB_FLAG_STATE, data, NULL, false);
    return NB_OK;
}

size_t nb_graph_state_count(const nb_graph *g) { return g ? flagged_size(g, NB_FLAG_STATE) : 0; }

float *nb_graph_param_data(const nb_graph *g) { return g ? g->pdata : NULL; }
float *nb_graph_param_grad(const nb_graph *g) { return g ? g->pgrad : NULL; }
size_t nb_graph_param_count(const nb_graph *g) { return g ? g->pcount : 0; }
