/* reduce_axes.c — reductions over chosen axes (tf.reduce_sum / mean / max,
 * tf.reduce_logsumexp) and argmax.
 *
 * Key: a is the input, out the result; "kept shape" is a's shape with each
 * reduced axis set to 1 (out's shape with keepdims; without it the same data,
 * the size-1 axes dropped). Every kernel is a broadcast walk (nb_bcast_plan) over
 * a's shape with out as the broadcast operand, so the merged runs are either a
 * row reduced into one element (reduce the last axis) or a row added element by
 * element into a row of out (reduce a leading or middle axis); both vectorise. */
#include <string.h>

#include <nabla/nb_parallel.h>
#include "ops_private.h"

/* The reductions' attributes: axes as the caller gave them. */
typedef struct axes_attr {
    int n_axes;            /* 0: every axis */
    int axes[NB_MAX_DIMS]; /* negative counts from the end */
    bool keepdims;         /* keep reduced axes with size 1 */
} axes_attr;

/* Which axes of t's input are reduced (mask[d] = 1); fails t on a bad axis. */
static nb_status reduced_axes(nb_tensor *t, int *mask)
{
    const nb_tensor *a = t->src[0];
    const axes_attr *at = NB_ATTR(t, axes_attr);
    char sa[64];
    for (int d = 0; d < a->ndim; d++) mask[d] = at->n_axes == 0;
    for (int i = 0; i < at->n_axes; i++) {
        int ax = at->axes[i] < 0 ? at->axes[i] + a->ndim : at->axes[i];
        if (ax < 0 || ax >= a->ndim)
            return nb_node_fail(t, NB_ERR_ARG, "%s: axis %d is out of range for shape %s (need -%d..%d)", t->op->name,
                                at->axes[i], nb_shape_str(a, sa, sizeof sa), a->ndim, a->ndim - 1);
        if (mask[ax])
            return nb_node_fail(t, NB_ERR_ARG, "%s: axis %d is repeated (as %d) for shape %s", t->op->name, at->axes[i],
                                ax, nb_shape_str(a, sa, sizeof sa));
        mask[ax] = 1;
    }
    return NB_OK;
}

static nb_status axes_shape(nb_tensor *t)
{
    const nb_tensor *a = t->src[0];
    char sa[64];
    if (a->dtype != NB_F32)
        return nb_node_fail(t, NB_ERR_ARG, "%s: input must be a float tensor, got int32 %s", t->op->name,
                            nb_shape_str(a, sa, sizeof sa));
    int mask[NB_MAX_DIMS];
    nb_status s = reduced_axes(t, mask);
    if (s != NB_OK) return s;
    int nd = 0;
    for (int d = 0; d < a->ndim; d++)
        if (!mask[d]) t->shape[nd++] = a->shape[d];
        else if (NB_ATTR(t, axes_attr)->keepdims) t->shape[nd++] = 1;
    t->ndim = nd;
    return NB_OK;
}

/* The walk over a's shape with out (kept shape) as operand b. */
static void plan_reduce(nb_bcast *p, const nb_tensor *t)
{
    const nb_tensor *a = t->src[0];
    int mask[NB_MAX_DIMS], kept[NB_MAX_DIMS];
    reduced_axes((nb_tensor *)t, mask); /* validated by the shape rule */
    for (int d = 0; d < a->ndim; d++) kept[d] = mask[d] ? 1 : a->shape[d];
    nb_bcast_plan(p, a->ndim, a->shape, a->ndim, a->shape, a->ndim, kept);
}

/* Walk [0, n) of a's elements. Large walks are split over the threads at
 * multiples of `align` elements: align = one index of the outermost merged
 * dimension when that dimension is kept (parts then write disjoint elements of
 * out), any multiple of 16 when each run writes only its own elements (the
 * backward spreads); otherwise (a leading axis reduced) in one thread. */
typedef struct walk_job {
    const nb_bcast *p;
    size_t n, align;
    nb_bcast_fn fn;
    void *ctx;
} walk_job;

static void walk_part(void *ctx, int part, int parts)
{
    walk_job *j = ctx;
    size_t b, e;
    nb_split_range(j->n, part, parts, j->align, &b, &e);
    if (b < e) nb_bcast_walk(j->p, b, e, j->fn, j->ctx);
}

static void walk(const nb_bcast *p, size_t n, bool writes_a, nb_bcast_fn fn, void *ctx)
{
    walk_job j = {.p = p, .n = n, .align = writes_a ? 16 : n / p->shape[0], .fn = fn, .ctx = ctx};
    int threads = nb_get_num_threads();
    if (n < NB_PARALLEL_MIN || threads < 2 || (!writes_a && (p->st[1][0] == 0 || p->shape[0] < 2)))
        nb_bcast_walk(p, 0, n, fn, ctx);
    else nb_parallel_for(threads, walk_part, &j);
}

typedef struct reduce_ctx {
    const float *x; /* a (a's shape) */
    float *y;       /* out (kept shape) */
    float *dx;      /* a's gradient */
    const float *dy; /* out's gradient */
    const float *m; /* (out) the groups' maxima (logsumexp forward), or out's values (the backwards) */
    float *flag;    /* (out) max backward: 1 once a group's gradient is given */
    float c;        /* a constant factor (mean: 1 / n) */
} reduce_ctx;

/* ---- sum and mean ---- */
static void sum_run(void *ctx, size_t o, size_t ao, size_t ia, size_t bo, size_t ib, size_t n)
{
    (void)o, (void)ia;
    reduce_ctx *c = ctx;
    const float *restrict x = c->x + ao;
    float *restrict y = c->y + bo;
    if (ib)
        for (size_t i = 0; i < n; i++) y[i] += x[i];
    else y[0] += (float)nb_sum_f(x, n);
}
static nb_status sum_forward(nb_tensor *t)
{
    nb_bcast p;
    plan_reduce(&p, t);
    memset(t->data, 0, t->size * sizeof *t->data);
    reduce_ctx c = {.x = t->src[0]->data, .y = t->data};
    walk(&p, t->src[0]->size, false, sum_run, &c);
    if (t->op == &nb_op_reduce_mean) {
        float inv = (float)t->size / (float)t->src[0]->size;
        for (size_t i = 0; i < t->size; i++) t->data[i] *= inv;
    }
    return NB_OK;
}
static void spread_run(void *ctx, size_t o, size_t ao, size_t ia, size_t bo, size_t ib, size_t n)
{
    (void)o, (void)ia;
    reduce_ctx *c = ctx;
    float *restrict dx = c->dx + ao;
    const float *restrict dy = c->dy + bo;
    const float k = c->c;
    if (ib)
        for (size_t i = 0; i < n; i++) dx[i] += k * dy[i];
    else {
        const float v = k * dy[0];
        for (size_t i = 0; i < n; i++) dx[i] += v;
    }
}
/* dx += dy (times 1 / n for the mean), spread over the reduced axes */
static void sum_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0];
    if (!a->grad) return;
    nb_bcast p;
    plan_reduce(&p, t);
    float k = t->op == &nb_op_reduce_mean ? (float)t->size / (float)a->size : 1.0f;
    reduce_ctx c = {.dx = a->grad, .dy = t->grad, .c = k};
    walk(&p, a->size, true, spread_run, &c);
}

/* ---- max: out = the maximum; the gradient goes to the first maximum ---- */
static void max_run(void *ctx, size_t o, size_t ao, size_t ia, size_t bo, size_t ib, size_t n)
{
    (void)o, (void)ia;
    reduce_ctx *c = ctx;
    const float *restrict x = c->x + ao;
    float *restrict y = c->y + bo;
    if (ib) /* a NaN wins and stays (TensorFlow's Max propagates NaN) */
        for (size_t i = 0; i < n; i++) y[i] = x[i] > y[i] || x[i] != x[i] ? x[i] : y[i];
    else {
        float m = y[0];
        for (size_t i = 0; i < n; i++) m = x[i] > m || x[i] != x[i] ? x[i] : m;
        y[0] = m;
    }
}
static void max_into(nb_tensor *t, float *y)
{
    nb_bcast p;
    plan_reduce(&p, t);
    for (size_t i = 0; i < t->size; i++) y[i] = -INFINITY;
    reduce_ctx c = {.x = t->src[0]->data, .y = y};
    walk(&p, t->src[0]->size, false, max_run, &c);
}
static nb_status max_forward(nb_tensor *t)
{
    /* the backward's "already given" flags (out's size), sized here where a failure can be reported */
    if (t->grad && !nb_scratch(t, t->size)) return NB_ERR_NOMEM;
    max_into(t, t->data);
    return NB_OK;
}
/* dx += dy at the first element of each group equal to its maximum */
static void max_grad_run(void *ctx, size_t o, size_t ao, size_t ia, size_t bo, size_t ib, size_t n)
{
    (void)o, (void)ia;
    reduce_ctx *c = ctx;
    for (size_t i = 0; i < n; i++) {
        size_t k = bo + i * ib;
        if (c->flag[k] == 0.0f && c->x[ao + i] == c->m[k]) {
            c->dx[ao + i] += c->dy[k];
            c->flag[k] = 1.0f;
        }
    }
}
static void max_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0];
    if (!a->grad) return;
    nb_bcast p;
    plan_reduce(&p, t);
    memset(t->scratch, 0, t->size * sizeof *t->scratch);
    reduce_ctx c = {.x = a->data, .dx = a->grad, .dy = t->grad, .m = t->data, .flag = t->scratch};
    walk(&p, a->size, false, max_grad_run, &c);
}

/* ---- logsumexp: m + log Σ exp(a - m), m the group's max (0 where it is not
 * finite, so all -Inf gives -Inf); gradient dy · exp(a - out) = dy · softmax ---- */
static void expsum_run(void *ctx, size_t o, size_t ao, size_t ia, size_t bo, size_t ib, size_t n)
{
    (void)o, (void)ia;
    reduce_ctx *c = ctx;
    const float *restrict x = c->x + ao, *restrict m = c->m + bo;
    float *restrict y = c->y + bo;
    if (ib)
        for (size_t i = 0; i < n; i++) y[i] += nb_expf(x[i] - m[i]);
    else {
        const float m0 = m[0];
        float l[256];
        for (size_t b = 0; b < n; b += 256) {
            size_t e = n - b < 256 ? n - b : 256;
            for (size_t i = 0; i < e; i++) l[i] = nb_expf(x[b + i] - m0);
            y[0] += (float)nb_sum_f(l, e);
        }
    }
}
static nb_status logsumexp_forward(nb_tensor *t)
{
    float *m = nb_scratch(t, t->size); /* the groups' maxima */
    if (!m) return NB_ERR_NOMEM;
    max_into(t, m);
    for (size_t i = 0; i < t->size; i++) m[i] = isfinite(m[i]) ? m[i] : 0.0f;
    nb_bcast p;
    plan_reduce(&p, t);
    memset(t->data, 0, t->size * sizeof *t->data);
    reduce_ctx c = {.x = t->src[0]->data, .y = t->data, .m = m};
    walk(&p, t->src[0]->size, false, expsum_run, &c);
    for (size_t i = 0; i < t->size; i++) t->data[i] = m[i] + logf(t->data[i]);
    return NB_OK;
}
static void lse_grad_run(void *ctx, size_t o, size_t ao, size_t ia, size_t bo, size_t ib, size_t n)
{
    (void)o, (void)ia;
    reduce_ctx *c = ctx;
    const float *restrict x = c->x + ao, *restrict m = c->m + bo, *restrict dy = c->dy + bo;
    float *restrict dx = c->dx + ao;
    if (ib)
        for (size_t i = 0; i < n; i++) dx[i] += dy[i] * nb_expf(x[i] - m[i]);
    else {
        const float m0 = m[0], d0 = dy[0];
        for (size_t i = 0; i < n; i++) dx[i] += d0 * nb_expf(x[i] - m0);
    }
}
static void logsumexp_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0];
    if (!a->grad) return;
    nb_bcast p;
    plan_reduce(&p, t);
    reduce_ctx c = {.x = a->data, .dx = a->grad, .dy = t->grad, .m = t->data};
    walk(&p, a->size, true, lse_grad_run, &c);
}

static void axes_describe(const nb_tensor *t, char *buf, size_t len)
{
    const axes_attr *at = NB_ATTR(t, axes_attr);
    size_t k = 0;
    if (at->n_axes == 0) k += (size_t)snprintf(buf, len, "axes=all");
    else
        for (int i = 0; i < at->n_axes && k < len; i++)
            k += (size_t)snprintf(buf + k, len - k, "%s%d%s", i ? ", " : "axes=[", at->axes[i], i == at->n_axes - 1 ? "]" : "");
    if (at->keepdims && k < len) snprintf(buf + k, len - k, " keepdims");
}

#define AXES_DEF(var, nm, fwd, bwd)                                                                           \
    const nb_op nb_op_##var = {.name = nm, .n_src = 1, .shape = axes_shape, .forward = fwd, .backward = bwd, \
                               .describe = axes_describe}
AXES_DEF(reduce_sum, "reduce_sum", sum_forward, sum_backward);
AXES_DEF(reduce_mean, "reduce_mean", sum_forward, sum_backward);
AXES_DEF(reduce_max, "reduce_max", max_forward, max_backward);
AXES_DEF(logsumexp, "logsumexp", logsumexp_forward, logsumexp_backward);

static nb_tensor *reduce(nb_graph *g, const nb_op *op, nb_tensor *a, int n_axes, const int *axes, bool keepdims)
{
    if (g && (n_axes < 0 || n_axes > NB_MAX_DIMS))
        return nb_graph_fail(g, NB_ERR_ARG, "%s: n_axes must be 0..%d, got %d", op->name, NB_MAX_DIMS, n_axes);
    axes_attr attr = {.n_axes = axes ? n_axes : 0, .keepdims = keepdims};
    for (int i = 0; i < attr.n_axes; i++) attr.axes[i] = axes[i];
    return nb_node(g, op, (nb_tensor *[]){a}, 1, &attr, sizeof attr);
}
nb_tensor *nb_reduce_sum(nb_graph *g, nb_tensor *a, int n_axes, const int *axes, bool keepdims)
{
    return reduce(g, &nb_op_reduce_sum, a, n_axes, axes, keepdims);
}
nb_tensor *nb_reduce_mean(nb_graph *g, nb_tensor *a, int n_axes, const int *axes, bool keepdims)
{
    return reduce(g, &nb_op_reduce_mean, a, n_axes, axes, keepdims);
}
nb_tensor *nb_reduce_max(nb_graph *g, nb_tensor *a, int n_axes, const int *axes, bool keepdims)
{
    return reduce(g, &nb_op_reduce_max, a, n_axes, axes, keepdims);
}
nb_tensor *nb_logsumexp(nb_graph *g, nb_tensor *a, int n_axes, const int *axes, bool keepdims)
{
    return reduce(g, &nb_op_logsumexp, a, n_axes, axes, keepdims);
}

/* ---- argmax: the index of the first maximum along one axis -> int32 ----
 * a seen as (outer, n, inner) around the axis; out (outer, inner). A running
 * best value per inner position (scratch, inner floats) lets the inner loop
 * run over contiguous memory. NaN never wins unless the whole line is NaN. */
typedef struct argmax_attr {
    int axis; /* negative counts from the end */
} argmax_attr;

static nb_status argmax_shape(nb_tensor *t)
{
    const nb_tensor *a = t->src[0];
    char sa[64];
    if (a->dtype != NB_F32)
        return nb_node_fail(t, NB_ERR_ARG, "argmax: input must be a float tensor, got int32 %s",
                            nb_shape_str(a, sa, sizeof sa));
    int axis = NB_ATTR(t, argmax_attr)->axis, ax = axis < 0 ? axis + a->ndim : axis;
    if (ax < 0 || ax >= a->ndim)
        return nb_node_fail(t, NB_ERR_ARG, "argmax: axis %d is out of range for shape %s", axis,
                            nb_shape_str(a, sa, sizeof sa));
    int nd = 0;
    for (int d = 0; d < a->ndim; d++)
        if (d != ax) t->shape[nd++] = a->shape[d];
    t->ndim = nd;
    t->dtype = NB_I32;
    return NB_OK;
}
static nb_status argmax_forward(nb_tensor *t)
{
    const nb_tensor *a = t->src[0];
    int axis = NB_ATTR(t, argmax_attr)->axis, ax = axis < 0 ? axis + a->ndim : axis;
    size_t outer = 1, inner = 1, n = (size_t)a->shape[ax];
    for (int d = 0; d < ax; d++) outer *= (size_t)a->shape[d];
    for (int d = ax + 1; d < a->ndim; d++) inner *= (size_t)a->shape[d];
    float *best = nb_scratch(t, inner);
    if (!best) return NB_ERR_NOMEM;
    for (size_t o = 0; o < outer; o++) {
        const float *x = a->data + o * n * inner;
        int32_t *restrict idx = t->idata + o * inner;
        for (size_t i = 0; i < inner; i++) best[i] = x[i], idx[i] = 0;
        for (size_t r = 1; r < n; r++)
            for (size_t i = 0; i < inner; i++) {
                float v = x[r * inner + i];
                if (v > best[i] || (best[i] != best[i] && v == v)) best[i] = v, idx[i] = (int32_t)r;
            }
    }
    return NB_OK;
}
static void argmax_describe(const nb_tensor *t, char *buf, size_t len)
{
    snprintf(buf, len, "axis=%d", NB_ATTR(t, argmax_attr)->axis);
}
const nb_op nb_op_argmax = {.name = "argmax", .n_src = 1, .shape = argmax_shape, .forward = argmax_forward,
                            .backward = NULL, .describe = argmax_describe};

nb_tensor *nb_argmax(nb_graph *g, nb_tensor *a, int axis)
{
    argmax_attr attr = {.axis = axis};
    return nb_node(g, &nb_op_argmax, (nb_tensor *[]){a}, 1, &attr, sizeof attr);
}
