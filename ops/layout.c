/* layout.c — transpose, slice, concat, split and broadcast_to. Every op here
 * COPIES: its output is a new contiguous tensor, never a view of its input.
 *
 * Transpose, slice and broadcast_to are one walk: the output is visited in
 * row-major order while a source offset moves by a per-axis stride (a permuted
 * stride for transpose, stride·step for slice, 0 on a broadcast axis). The walk
 * copies a whole innermost row with memcpy when that row is contiguous in the
 * source. Their backward is the same walk adding the output's gradient back
 * (on a broadcast axis several outputs add into one source element: the sum).
 *
 * Concat and split move whole blocks: seen as (outer, axis, inner) with
 * outer = Π shape[:axis] and inner = Π shape[axis+1:], each input contributes
 * one contiguous run of axis·inner elements per outer index.
 *
 * Float tensors, and NB_I32 for transpose, slice, concat and split (4-byte
 * elements either way; integers carry no gradient). */
#include <stddef.h>
#include <string.h>

#include "ops_private.h"

/* ---- shared helpers ---- */

void nb_describe_ints(char *buf, size_t len, const char *key, const int *v, int n)
{
    size_t at = strlen(buf);
    if (at >= len) return;
    at += (size_t)snprintf(buf + at, len - at, "%s%s=[", at ? " " : "", key);
    for (int i = 0; i < n && at < len; i++) {
        if (v[i] == NB_SLICE_END) at += (size_t)snprintf(buf + at, len - at, i ? ",end" : "end");
        else at += (size_t)snprintf(buf + at, len - at, i ? ",%d" : "%d", v[i]);
    }
    if (at < len) snprintf(buf + at, len - at, "]");
}

/* The element buffer of a float or int32 tensor (both 4-byte elements). */
static unsigned char *elems(const nb_tensor *t)
{
    return t->dtype == NB_I32 ? (unsigned char *)t->idata : (unsigned char *)t->data;
}

/* Row-major strides (in elements) of t's shape. */
static void strides_of(const nb_tensor *t, ptrdiff_t *st)
{
    ptrdiff_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        st[d] = s;
        s *= t->shape[d];
    }
}

/* An output visited in row-major order: its shape and, per axis, how far the
 * source offset moves (in elements) for one step along that axis. */
typedef struct walk {
    int ndim;
    const int *shape;              /* (ndim) the output's shape */
    ptrdiff_t stride[NB_MAX_DIMS]; /* source stride per output axis (0: broadcast) */
    ptrdiff_t base;                /* source offset of output element 0 */
} walk;

/* Step the multi-index idx over axes nd-1 .. 0 (the caller handles the
 * innermost axis itself, so it passes nd = ndim - 1); returns the offset change. */
static ptrdiff_t walk_next(const walk *w, int *idx, int nd)
{
    ptrdiff_t delta = 0;
    for (int d = nd - 1; d >= 0; d--) {
        delta += w->stride[d];
        if (++idx[d] < w->shape[d]) return delta;
        delta -= w->stride[d] * w->shape[d];
        idx[d] = 0;
    }
    return delta;
}

/* dst (output, contiguous) = the walked source elements (4 bytes each). */
static void walk_copy(unsigned char *restrict dst, const unsigned char *restrict src, const walk *w, size_t total)
{
    int nd = w->ndim, idx[NB_MAX_DIMS] = {0};
    size_t n = nd ? (size_t)w->shape[nd - 1] : 1;
    ptrdiff_t s = nd ? w->stride[nd - 1] : 0, off = w->base;
    for (size_t done = 0; done < total; done += n, dst += 4 * n) {
        const unsigned char *p = src + 4 * off;
        if (s == 1) memcpy(dst, p, 4 * n);
        else
            for (size_t j = 0; j < n; j++) memcpy(dst + 4 * j, p + 4 * (ptrdiff_t)j * s, 4);
        off += walk_next(w, idx, nd - 1);
    }
}

/* dsrc (the source's gradient) += the output's gradient g, walked back. */
static void walk_add(float *restrict dsrc, const float *restrict g, const walk *w, size_t total)
{
    int nd = w->ndim, idx[NB_MAX_DIMS] = {0};
    size_t n = nd ? (size_t)w->shape[nd - 1] : 1;
    ptrdiff_t s = nd ? w->stride[nd - 1] : 0, off = w->base;
    for (size_t done = 0; done < total; done += n, g += n) {
        float *p = dsrc + off;
        if (s == 1) {
            for (size_t j = 0; j < n; j++) p[j] += g[j];
        } else if (s == 0) {
            float sum = 0.0f;
            for (size_t j = 0; j < n; j++) sum += g[j];
            p[0] += sum;
        } else {
            for (size_t j = 0; j < n; j++) p[(ptrdiff_t)j * s] += g[j];
        }
        off += walk_next(w, idx, nd - 1);
    }
}

/* Shared forward/backward of the walked ops, given the op's walk builder. */
static nb_status walked_forward(nb_tensor *t, void (*plan)(const nb_tensor *, walk *))
{
    walk w;
    plan(t, &w);
    walk_copy(elems(t), elems(t->src[0]), &w, t->size);
    return NB_OK;
}
static void walked_backward(nb_tensor *t, void (*plan)(const nb_tensor *, walk *))
{
    if (!t->src[0]->grad) return;
    walk w;
    plan(t, &w);
    walk_add(t->src[0]->grad, t->grad, &w, t->size);
}

/* A builder whose source is NULL or foreign: let nb_node record or keep the error. */
static bool bad_source(nb_graph *g, const nb_tensor *a) { return !g || !a || a->graph != g; }

/* ---- transpose: out[i_0, .., i_n] = a[j] with j[perm[d]] = i_d ----
 * out.shape[d] = a.shape[perm[d]]. */
typedef struct transpose_attr {
    int ndim;
    int perm[NB_MAX_DIMS];
} transpose_attr;

static nb_status transpose_shape(nb_tensor *t)
{
    const nb_tensor *a = t->src[0];
    const transpose_attr *ta = NB_ATTR(t, transpose_attr);
    if (a->ndim != ta->ndim) {
        char sa[64];
        return nb_node_fail(t, NB_ERR_SHAPE, "transpose: input %s has %d axes, the permutation %d",
                            nb_shape_str(a, sa, sizeof sa), a->ndim, ta->ndim);
    }
    t->dtype = a->dtype;
    t->ndim = a->ndim;
    for (int d = 0; d < a->ndim; d++) t->shape[d] = a->shape[ta->perm[d]];
    return NB_OK;
}
static void transpose_plan(const nb_tensor *t, walk *w)
{
    ptrdiff_t st[NB_MAX_DIMS];
    strides_of(t->src[0], st);
    w->ndim = t->ndim;
    w->shape = t->shape;
    w->base = 0;
    for (int d = 0; d < t->ndim; d++) w->stride[d] = st[NB_ATTR(t, transpose_attr)->perm[d]];
}
static nb_status transpose_forward(nb_tensor *t) { return walked_forward(t, transpose_plan); }
static void transpose_backward(nb_tensor *t) { walked_backward(t, transpose_plan); }
static void transpose_describe(const nb_tensor *t, char *buf, size_t len)
{
    const transpose_attr *ta = NB_ATTR(t, transpose_attr);
    buf[0] = '\0';
    nb_describe_ints(buf, len, "perm", ta->perm, ta->ndim);
}

const nb_op nb_op_transpose = {.name = "transpose", .n_src = 1, .shape = transpose_shape, .forward = transpose_forward,
                               .backward = transpose_backward, .describe = transpose_describe};

nb_tensor *nb_transpose(nb_graph *g, nb_tensor *a, const int *perm)
{
    if (bad_source(g, a)) return nb_node(g, &nb_op_transpose, (nb_tensor *[]){a}, 1, NULL, 0);
    transpose_attr attr = {.ndim = a->ndim};
    int seen[NB_MAX_DIMS] = {0};
    for (int d = 0; d < a->ndim; d++) {
        int p = perm ? perm[d] : a->ndim - 1 - d;
        if (p < 0 || p >= a->ndim || seen[p]++) {
            char sa[64], sp[64] = "";
            nb_describe_ints(sp, sizeof sp, "perm", perm, a->ndim);
            return nb_graph_fail(g, NB_ERR_ARG, "transpose: %s is not a permutation of the %d axes of %s", sp, a->ndim,
                                 nb_shape_str(a, sa, sizeof sa));
        }
        attr.perm[d] = p;
    }
    return nb_node(g, &nb_op_transpose, (nb_tensor *[]){a}, 1, &attr, sizeof attr);
}

/* ---- slice: out[i] = a[from + i * step] per axis ----
 * slice_attr holds the start/stop/step as given (Python rules, resolved against
 * the input's shape on every run) and the resolved first index `from`. */
typedef struct slice_attr {
    int ndim;
    int start[NB_MAX_DIMS], stop[NB_MAX_DIMS], step[NB_MAX_DIMS];
    int from[NB_MAX_DIMS]; /* resolved by the shape rule */
} slice_attr;

/* Python's slice index: negative counts from the end, then clamped to [0, n]. */
static int slice_index(int i, int n)
{
    if (i < 0) i = i < -n ? 0 : i + n;
    return i > n ? n : i;
}

static nb_status slice_shape(nb_tensor *t)
{
    const nb_tensor *a = t->src[0];
    slice_attr *sa = NB_ATTR(t, slice_attr);
    char s[64];
    if (a->ndim != sa->ndim)
        return nb_node_fail(t, NB_ERR_SHAPE, "slice: input %s has %d axes, the slice %d", nb_shape_str(a, s, sizeof s),
                            a->ndim, sa->ndim);
    for (int d = 0; d < a->ndim; d++) {
        int from = slice_index(sa->start[d], a->shape[d]), to = slice_index(sa->stop[d], a->shape[d]);
        if (to <= from) {
            char stop[16] = "end";
            if (sa->stop[d] != NB_SLICE_END) snprintf(stop, sizeof stop, "%d", sa->stop[d]);
            return nb_node_fail(t, NB_ERR_SHAPE, "slice: axis %d of %s is empty from %d to %d (start %d, stop %s)", d,
                                nb_shape_str(a, s, sizeof s), from, to, sa->start[d], stop);
        }
        sa->from[d] = from;
        t->shape[d] = (to - from + sa->step[d] - 1) / sa->step[d];
    }
    t->ndim = a->ndim;
    t->dtype = a->dtype;
    return NB_OK;
}
static void slice_plan(const nb_tensor *t, walk *w)
{
    const slice_attr *sa = NB_ATTR(t, slice_attr);
    ptrdiff_t st[NB_MAX_DIMS];
    strides_of(t->src[0], st);
    w->ndim = t->ndim;
    w->shape = t->shape;
    w->base = 0;
    for (int d = 0; d < t->ndim; d++) {
        w->stride[d] = st[d] * sa->step[d];
        w->base += st[d] * sa->from[d];
    }
}
static nb_status slice_forward(nb_tensor *t) { return walked_forward(t, slice_plan); }
static void slice_backward(nb_tensor *t) { walked_backward(t, slice_plan); }
static void slice_describe(const nb_tensor *t, char *buf, size_t len)
{
    const slice_attr *sa = NB_ATTR(t, slice_attr);
    buf[0] = '\0';
    nb_describe_ints(buf, len, "start", sa->start, sa->ndim);
    nb_describe_ints(buf, len, "stop", sa->stop, sa->ndim);
    nb_describe_ints(buf, len, "step", sa->step, sa->ndim);
}

const nb_op nb_op_slice = {.name = "slice", .n_src = 1, .shape = slice_shape, .forward = slice_forward,
                           .backward = slice_backward, .describe = slice_describe};

nb_tensor *nb_slice(nb_graph *g, nb_tensor *a, const int *start, const int *stop, const int *step)
{
    if (bad_source(g, a)) return nb_node(g, &nb_op_slice, (nb_tensor *[]){a}, 1, NULL, 0);
    slice_attr attr = {.ndim = a->ndim};
    for (int d = 0; d < a->ndim; d++) {
        attr.start[d] = start ? start[d] : 0;
        attr.stop[d] = stop ? stop[d] : NB_SLICE_END;
        attr.step[d] = step ? step[d] : 1;
        if (attr.step[d] < 1) {
            char sa[64];
            return nb_graph_fail(g, NB_ERR_ARG, "slice: step %d on axis %d of %s (need >= 1)", attr.step[d], d,
                                 nb_shape_str(a, sa, sizeof sa));
        }
    }
    return nb_node(g, &nb_op_slice, (nb_tensor *[]){a}, 1, &attr, sizeof attr);
}

/* ---- broadcast_to: out (shape) = a repeated along its size-1 and missing axes ---- */
typedef struct broadcast_attr {
    int ndim;
    int shape[NB_MAX_DIMS];
} broadcast_attr;

static nb_status broadcast_shape(nb_tensor *t)
{
    const nb_tensor *a = t->src[0];
    const broadcast_attr *ba = NB_ATTR(t, broadcast_attr);
    t->ndim = ba->ndim;
    memcpy(t->shape, ba->shape, sizeof t->shape);
    int lead = ba->ndim - a->ndim;
    if (a->dtype != NB_F32) return nb_node_fail(t, NB_ERR_ARG, "broadcast_to: input must be a float tensor");
    for (int d = 0; d < a->ndim && lead >= 0; d++)
        if (a->shape[d] != 1 && a->shape[d] != ba->shape[lead + d]) lead = -1;
    if (lead < 0) {
        char sa[64], st[64];
        return nb_node_fail(t, NB_ERR_SHAPE, "broadcast_to: cannot broadcast %s to %s", nb_shape_str(a, sa, sizeof sa),
                            nb_shape_str(t, st, sizeof st));
    }
    return NB_OK;
}
static void broadcast_plan(const nb_tensor *t, walk *w)
{
    const nb_tensor *a = t->src[0];
    ptrdiff_t st[NB_MAX_DIMS];
    strides_of(a, st);
    int lead = t->ndim - a->ndim;
    w->ndim = t->ndim;
    w->shape = t->shape;
    w->base = 0;
    for (int d = 0; d < t->ndim; d++)
        w->stride[d] = d < lead || a->shape[d - lead] == 1 ? 0 : st[d - lead];
}
static nb_status broadcast_forward(nb_tensor *t) { return walked_forward(t, broadcast_plan); }
static void broadcast_backward(nb_tensor *t) { walked_backward(t, broadcast_plan); }
static void broadcast_describe(const nb_tensor *t, char *buf, size_t len)
{
    buf[0] = '\0';
    nb_describe_ints(buf, len, "shape", NB_ATTR(t, broadcast_attr)->shape, NB_ATTR(t, broadcast_attr)->ndim);
}

const nb_op nb_op_broadcast_to = {.name = "broadcast_to", .n_src = 1, .shape = broadcast_shape,
                                  .forward = broadcast_forward, .backward = broadcast_backward,
                                  .describe = broadcast_describe};

nb_tensor *nb_broadcast_to(nb_graph *g, nb_tensor *a, int ndim, const int *shape)
{
    if (g && (ndim < 0 || ndim > NB_MAX_DIMS || (ndim && !shape)))
        return nb_graph_fail(g, NB_ERR_ARG, "broadcast_to: ndim must be 0..%d with a shape array (got ndim %d%s)",
                             NB_MAX_DIMS, ndim, shape ? "" : ", shape NULL");
    broadcast_attr attr = {.ndim = ndim};
    for (int d = 0; g && d < ndim; d++) {
        if (shape[d] < 1)
            return nb_graph_fail(g, NB_ERR_ARG, "broadcast_to: dimension %d is %d (need >= 1)", d, shape[d]);
        attr.shape[d] = shape[d];
    }
    return nb_node(g, &nb_op_broadcast_to, (nb_tensor *[]){a}, 1, &attr, sizeof attr);
}

/* ---- block copies along one axis (concat, split) ---- */

/* Π shape[:axis] and Π shape[axis+1:] of t. */
static void outer_inner(const nb_tensor *t, int axis, size_t *outer, size_t *inner)
{
    *outer = *inner = 1;
    for (int d = 0; d < axis; d++) *outer *= (size_t)t->shape[d];
    for (int d = axis + 1; d < t->ndim; d++) *inner *= (size_t)t->shape[d];
}

/* dst[o] (len floats at dst + o*dst_row) += src[o] (at src + o*src_row), o < outer. */
static void add_blocks(float *dst, size_t dst_row, const float *src, size_t src_row, size_t outer, size_t len)
{
    for (size_t o = 0; o < outer; o++) {
        float *restrict d = dst + o * dst_row;
        const float *restrict s = src + o * src_row;
        for (size_t j = 0; j < len; j++) d[j] += s[j];
    }
}

/* ---- concat: out = a_0 | a_1 | ... along axis ---- */
typedef struct concat_attr {
    int axis; /* resolved, 0..ndim-1 */
} concat_attr;

static nb_status concat_shape(nb_tensor *t)
{
    const nb_tensor *a = t->src[0];
    int axis = NB_ATTR(t, concat_attr)->axis, total = 0;
    for (int i = 0; i < t->n_src; i++) {
        const nb_tensor *x = t->src[i];
        char s0[64], si[64];
        if (x->dtype != a->dtype)
            return nb_node_fail(t, NB_ERR_ARG, "concat: input %d is %s, input 0 %s (all inputs need one dtype)", i,
                                x->dtype == NB_I32 ? "int32" : "float", a->dtype == NB_I32 ? "int32" : "float");
        int fits = x->ndim == a->ndim && axis < x->ndim;
        for (int d = 0; fits && d < a->ndim; d++) fits = d == axis || x->shape[d] == a->shape[d];
        if (!fits)
            return nb_node_fail(t, NB_ERR_SHAPE, "concat: input %d %s does not fit input 0 %s on axis %d", i,
                                nb_shape_str(x, si, sizeof si), nb_shape_str(a, s0, sizeof s0), axis);
        total += x->shape[axis];
    }
    t->dtype = a->dtype;
    t->ndim = a->ndim;
    memcpy(t->shape, a->shape, sizeof t->shape);
    t->shape[axis] = total;
    return NB_OK;
}
static nb_status concat_forward(nb_tensor *t)
{
    int axis = NB_ATTR(t, concat_attr)->axis;
    size_t outer, inner, at = 0;
    outer_inner(t, axis, &outer, &inner);
    size_t row = (size_t)t->shape[axis] * inner;
    for (int i = 0; i < t->n_src; i++) {
        const nb_tensor *x = t->src[i];
        size_t len = (size_t)x->shape[axis] * inner;
        const unsigned char *s = elems(x);
        unsigned char *d = elems(t) + 4 * at;
        for (size_t o = 0; o < outer; o++) memcpy(d + 4 * o * row, s + 4 * o * len, 4 * len);
        at += len;
    }
    return NB_OK;
}
static void concat_backward(nb_tensor *t)
{
    int axis = NB_ATTR(t, concat_attr)->axis;
    size_t outer, inner, at = 0;
    outer_inner(t, axis, &outer, &inner);
    size_t row = (size_t)t->shape[axis] * inner;
    for (int i = 0; i < t->n_src; i++) {
        nb_tensor *x = t->src[i];
        size_t len = (size_t)x->shape[axis] * inner;
        if (x->grad) add_blocks(x->grad, len, t->grad + at, row, outer, len);
        at += len;
    }
}
static void concat_describe(const nb_tensor *t, char *buf, size_t len)
{
    snprintf(buf, len, "axis=%d", NB_ATTR(t, concat_attr)->axis);
}

const nb_op nb_op_concat = {.name = "concat", .n_src = NB_VARIADIC, .shape = concat_shape, .forward = concat_forward,
                            .backward = concat_backward, .describe = concat_describe};

nb_tensor *nb_concat(nb_graph *g, int n, nb_tensor *const *xs, int axis)
{
    if (!g) return nb_node(NULL, &nb_op_concat, NULL, 0, NULL, 0);
    if (n < 1 || !xs) return nb_graph_fail(g, NB_ERR_ARG, "concat: needs at least one input (got %d%s)", n, xs ? "" : ", xs NULL");
    for (int i = 0; i < n; i++) { /* nb_graph_fail keeps an earlier message */
        if (!xs[i]) return nb_graph_fail(g, NB_ERR_ARG, "concat: input %d is NULL", i);
        if (xs[i]->graph != g) return nb_graph_fail(g, NB_ERR_ARG, "concat: input %d belongs to another graph", i);
    }
    int nd = xs[0]->ndim;
    if (axis < -nd || axis >= nd) {
        char s[64];
        return nb_graph_fail(g, NB_ERR_ARG, "concat: axis %d is out of range for %s (need -%d..%d)", axis,
                             nb_shape_str(xs[0], s, sizeof s), nd, nd - 1);
    }
    concat_attr attr = {.axis = axis < 0 ? axis + nd : axis};
    /* at most NB_MAX_SRC inputs per node: chain, the running result first */
    nb_tensor *acc = NULL;
    int i = 0;
    while (i < n) {
        nb_tensor *part[NB_MAX_SRC];
        int k = 0;
        if (acc) part[k++] = acc;
        while (k < NB_MAX_SRC && i < n) part[k++] = xs[i++];
        acc = nb_node(g, &nb_op_concat, part, k, &attr, sizeof attr);
        if (!acc) return NULL;
    }
    return acc;
}

/* ---- split: out = part `part` of n along axis ----
 * With sizes, each part's offset and size are fixed and the input's axis must
 * hold their total; without, the axis is cut into n equal parts on every run. */
typedef struct split_attr {
    int axis, part, n;
    int offset, size, total; /* total 0: equal parts */
} split_attr;

static nb_status split_shape(nb_tensor *t)
{
    const nb_tensor *a = t->src[0];
    split_attr *sp = NB_ATTR(t, split_attr);
    int dim = sp->axis < a->ndim ? a->shape[sp->axis] : -1;
    char s[64];
    if (sp->total ? dim != sp->total : dim < 0 || dim % sp->n != 0)
        return nb_node_fail(t, NB_ERR_SHAPE, "split: axis %d of %s does not split into %s %d", sp->axis,
                            nb_shape_str(a, s, sizeof s), sp->total ? "sizes totalling" : "equal parts:",
                            sp->total ? sp->total : sp->n);
    if (!sp->total) {
        sp->size = dim / sp->n;
        sp->offset = sp->part * sp->size;
    }
    t->dtype = a->dtype;
    t->ndim = a->ndim;
    memcpy(t->shape, a->shape, sizeof t->shape);
    t->shape[sp->axis] = sp->size;
    return NB_OK;
}
static nb_status split_forward(nb_tensor *t)
{
    const split_attr *sp = NB_ATTR(t, split_attr);
    const nb_tensor *a = t->src[0];
    size_t outer, inner;
    outer_inner(a, sp->axis, &outer, &inner);
    size_t row = (size_t)a->shape[sp->axis] * inner, len = (size_t)sp->size * inner;
    const unsigned char *s = elems(a) + 4 * (size_t)sp->offset * inner;
    unsigned char *d = elems(t);
    for (size_t o = 0; o < outer; o++) memcpy(d + 4 * o * len, s + 4 * o * row, 4 * len);
    return NB_OK;
}
static void split_backward(nb_tensor *t)
{
    const split_attr *sp = NB_ATTR(t, split_attr);
    nb_tensor *a = t->src[0];
    if (!a->grad) return;
    size_t outer, inner;
    outer_inner(a, sp->axis, &outer, &inner);
    size_t row = (size_t)a->shape[sp->axis] * inner, len = (size_t)sp->size * inner;
    add_blocks(a->grad + (size_t)sp->offset * inner, row, t->grad, len, outer, len);
}
static void split_describe(const nb_tensor *t, char *buf, size_t len)
{
    const split_attr *sp = NB_ATTR(t, split_attr);
    snprintf(buf, len, "axis=%d part=%d/%d offset=%d size=%d", sp->axis, sp->part, sp->n, sp->offset, sp->size);
}

const nb_op nb_op_split = {.name = "split", .n_src = 1, .shape = split_shape, .forward = split_forward,
                           .backward = split_backward, .describe = split_describe};

/* Record a split failure on g (keeping a first message already there). */
static nb_status split_fail(nb_graph *g, nb_tensor *a)
{
    nb_node(g, &nb_op_split, (nb_tensor *[]){a}, 1, NULL, 0); /* NULL / foreign source: records or keeps */
    return NB_ERR_ARG;
}

nb_status nb_split(nb_graph *g, nb_tensor *a, int axis, int n, const int *sizes, nb_tensor **out)
{
    for (int i = 0; out && i < n; i++) out[i] = NULL;
    if (bad_source(g, a)) return split_fail(g, a);
    char s[64];
    if (!out || n < 1) {
        nb_graph_fail(g, NB_ERR_ARG, "split: needs n >= 1 and an output array (got n %d%s)", n, out ? "" : ", out NULL");
        return NB_ERR_ARG;
    }
    if (axis < -a->ndim || axis >= a->ndim) {
        nb_graph_fail(g, NB_ERR_ARG, "split: axis %d is out of range for %s (need -%d..%d)", axis,
                      nb_shape_str(a, s, sizeof s), a->ndim, a->ndim - 1);
        return NB_ERR_ARG;
    }
    split_attr attr = {.axis = axis < 0 ? axis + a->ndim : axis, .n = n};
    for (int i = 0; sizes && i < n; i++) {
        if (sizes[i] < 1) {
            nb_graph_fail(g, NB_ERR_ARG, "split: part %d has size %d (need >= 1)", i, sizes[i]);
            return NB_ERR_ARG;
        }
        attr.total += sizes[i];
    }
    for (int i = 0, at = 0; i < n; i++) {
        attr.part = i;
        attr.offset = at;
        attr.size = sizes ? sizes[i] : 0;
        at += attr.size;
        out[i] = nb_node(g, &nb_op_split, (nb_tensor *[]){a}, 1, &attr, sizeof attr);
        if (!out[i]) {
            for (int j = 0; j < i; j++) out[j] = NULL;
            return NB_ERR_SHAPE;
        }
    }
    return NB_OK;
}
