/* elementwise.c — broadcasting binary ops (add, sub, mul, div, maximum, minimum),
 * scale, and the broadcast walk they share with the axis reductions.
 *
 * Broadcasting follows NumPy: shapes are right-aligned, a missing leading
 * dimension counts as 1, and each pair of sizes must be equal or contain a 1;
 * out takes the larger of each pair. The backward sums each input's gradient
 * over the dimensions it was broadcast along.
 *
 * Speed: the walk (nb_bcast_plan) drops size-1 dimensions and merges neighbours,
 * so same shapes become one flat run [SAME], (B, K) + (K) becomes B runs of K
 * with b restarting each row [ROW], and a single element stays put in a flat run
 * [SCALAR]; the kernels below are plain loops over such a run, with the stride
 * of each operand 0 or 1, specialised per case so that they vectorise. Anything
 * else (a column (B, 1), a middle axis) is the same walk with more runs. */
#include <string.h>

#include <nabla/nb_parallel.h>
#include "ops_private.h"

/* ---- the broadcast walk ---- */

void nb_bcast_plan(nb_bcast *p, int ndim, const int *full, int a_ndim, const int *a, int b_ndim, const int *b)
{
    size_t sa = 1, sb = 1; /* contiguous strides of a and b, innermost first */
    int nd = 0;
    size_t shape[NB_MAX_DIMS], st[2][NB_MAX_DIMS];
    for (int d = ndim - 1; d >= 0; d--) { /* innermost first, then reversed */
        int da = d - (ndim - a_ndim) >= 0 ? a[d - (ndim - a_ndim)] : 1;
        int db = d - (ndim - b_ndim) >= 0 ? b[d - (ndim - b_ndim)] : 1;
        if (full[d] == 1) continue;
        size_t xa = da == 1 ? 0 : sa, xb = db == 1 ? 0 : sb;
        if (nd > 0 && xa == st[0][nd - 1] * shape[nd - 1] && xb == st[1][nd - 1] * shape[nd - 1]) {
            shape[nd - 1] *= (size_t)full[d]; /* merge with the inner neighbour */
        } else {
            shape[nd] = (size_t)full[d];
            st[0][nd] = xa;
            st[1][nd] = xb;
            nd++;
        }
        sa *= (size_t)da;
        sb *= (size_t)db;
    }
    if (nd == 0) { /* a single element */
        shape[0] = 1;
        st[0][0] = st[1][0] = 1;
        nd = 1;
    }
    p->nd = nd;
    for (int d = 0; d < nd; d++) {
        p->shape[d] = shape[nd - 1 - d];
        p->st[0][d] = st[0][nd - 1 - d];
        p->st[1][d] = st[1][nd - 1 - d];
    }
}

void nb_bcast_walk(const nb_bcast *p, size_t begin, size_t end, nb_bcast_fn fn, void *ctx)
{
    int nd = p->nd, last = nd - 1;
    size_t idx[NB_MAX_DIMS], ao = 0, bo = 0, rem = begin;
    for (int d = last; d >= 0; d--) { /* multi-index of `begin` */
        idx[d] = rem % p->shape[d];
        rem /= p->shape[d];
        ao += idx[d] * p->st[0][d];
        bo += idx[d] * p->st[1][d];
    }
    size_t pos = begin, ia = p->st[0][last], ib = p->st[1][last];
    while (pos < end) {
        size_t n = p->shape[last] - idx[last];
        if (n > end - pos) n = end - pos;
        fn(ctx, pos, ao, ia, bo, ib, n);
        pos += n;
        ao += n * ia;
        bo += n * ib;
        idx[last] += n;
        for (int d = last; d > 0 && idx[d] == p->shape[d]; d--) { /* carry */
            ao += p->st[0][d - 1] - idx[d] * p->st[0][d];
            bo += p->st[1][d - 1] - idx[d] * p->st[1][d];
            idx[d] = 0;
            idx[d - 1]++;
        }
    }
}

/* Blocks of up to 1024 floats summed in 32 float lanes (several independent
 * vector accumulators whatever the vector width, so it vectorises well), folded
 * pairwise, each block's sum added in double; the tail in double. */
double nb_sum_f(const float *x, size_t n)
{
    double s = 0;
    size_t i = 0;
    while (n - i >= 32) {
        size_t e = n - i >= 1024 ? i + 1024 : i + (n - i) / 32 * 32;
        float acc[32] = {0};
        for (; i < e; i += 32)
            for (int l = 0; l < 32; l++) acc[l] += x[i + l];
        for (int w = 16; w > 0; w /= 2)
            for (int l = 0; l < w; l++) acc[l] += acc[l + w];
        s += acc[0];
    }
    for (; i < n; i++) s += x[i];
    return s;
}

typedef struct range_job {
    size_t n;
    void (*fn)(void *ctx, size_t begin, size_t end);
    void *ctx;
} range_job;

static void range_part(void *ctx, int part, int parts)
{
    range_job *j = ctx;
    size_t b, e;
    nb_split_range(j->n, part, parts, 16, &b, &e);
    if (b < e) j->fn(j->ctx, b, e);
}

void nb_parallel_range(size_t n, void (*fn)(void *ctx, size_t begin, size_t end), void *ctx)
{
    int threads = nb_get_num_threads();
    if (n < NB_PARALLEL_MIN || threads < 2) {
        fn(ctx, 0, n);
        return;
    }
    range_job j = {.n = n, .fn = fn, .ctx = ctx};
    nb_parallel_for(threads, range_part, &j);
}

/* ---- shapes ---- */

/* Shape rule of the broadcasting binaries: out is the NumPy broadcast of a and b. */
static nb_status binary_shape(nb_tensor *t)
{
    const nb_tensor *a = t->src[0], *b = t->src[1];
    char sa[64], sb[64];
    if (a->dtype != NB_F32 || b->dtype != NB_F32)
        return nb_node_fail(t, NB_ERR_ARG, "%s: inputs must be float tensors, got %s %s and %s %s", t->op->name,
                            a->dtype == NB_F32 ? "float" : "int32", nb_shape_str(a, sa, sizeof sa),
                            b->dtype == NB_F32 ? "float" : "int32", nb_shape_str(b, sb, sizeof sb));
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int d = nd - 1; d >= 0; d--) { /* innermost first: the message names the last mismatch */
        int da = d - (nd - a->ndim) >= 0 ? a->shape[d - (nd - a->ndim)] : 1;
        int db = d - (nd - b->ndim) >= 0 ? b->shape[d - (nd - b->ndim)] : 1;
        if (da != db && da != 1 && db != 1)
            return nb_node_fail(t, NB_ERR_SHAPE, "%s: shapes %s and %s do not broadcast (sizes %d and %d at axis %d)",
                                t->op->name, nb_shape_str(a, sa, sizeof sa), nb_shape_str(b, sb, sizeof sb), da, db,
                                d - nd);
        t->shape[d] = da == 1 ? db : da;
    }
    t->ndim = nd;
    return NB_OK;
}

static void plan_of(nb_bcast *p, const nb_tensor *t)
{
    const nb_tensor *a = t->src[0], *b = t->src[1];
    nb_bcast_plan(p, t->ndim, t->shape, a->ndim, a->shape, b->ndim, b->shape);
}

/* ---- forward: out = f(a, b) over each run ---- */

typedef float (*binary_fn)(float x, float y);

/* One run: o (n) = f(a, b), a and b moving by ia / ib (0 or 1, not both 0).
 * always_inline, so each op's copy has its f inlined and vectorises. */
static inline __attribute__((always_inline)) void binary_run(binary_fn f, float *restrict o, const float *restrict a,
                                                             size_t ia, const float *restrict b, size_t ib, size_t n)
{
    if (ia && ib)
        for (size_t i = 0; i < n; i++) o[i] = f(a[i], b[i]);
    else if (ia) {
        const float y = b[0];
        for (size_t i = 0; i < n; i++) o[i] = f(a[i], y);
    } else {
        const float x = a[0];
        for (size_t i = 0; i < n; i++) o[i] = f(x, b[i]);
    }
}

typedef struct binary_job {
    nb_tensor *t;
    nb_bcast plan;
    nb_bcast_fn run; /* the op's run kernel */
} binary_job;

static void binary_range(void *ctx, size_t begin, size_t end)
{
    binary_job *j = ctx;
    nb_bcast_walk(&j->plan, begin, end, j->run, j->t);
}

static nb_status binary_forward(nb_tensor *t, nb_bcast_fn run)
{
    binary_job j = {.t = t, .run = run};
    plan_of(&j.plan, t);
    nb_parallel_range(t->size, binary_range, &j);
    return NB_OK;
}

static inline float add_f(float x, float y) { return x + y; }
static inline float sub_f(float x, float y) { return x - y; }
static inline float mul_f(float x, float y) { return x * y; }
static inline float div_f(float x, float y) { return x / y; }
/* a NaN in either input gives NaN, as TensorFlow's Maximum / Minimum (since 2.4) */
static inline float max_f(float x, float y) { return x >= y || x != x ? x : y; }
static inline float min_f(float x, float y) { return x <= y || x != x ? x : y; }

/* The per-op run kernels (nb_bcast_fn) and forwards. */
#define BINARY_OP(name, f)                                                                                        \
    static void name##_run(void *ctx, size_t o, size_t ao, size_t ia, size_t bo, size_t ib, size_t n)           \
    {                                                                                                             \
        nb_tensor *t = ctx;                                                                                       \
        binary_run(f, t->data + o, t->src[0]->data + ao, ia, t->src[1]->data + bo, ib, n);                        \
    }                                                                                                             \
    static nb_status name##_forward(nb_tensor *t) { return binary_forward(t, name##_run); }
BINARY_OP(add, add_f)
BINARY_OP(sub, sub_f)
BINARY_OP(mul, mul_f)
BINARY_OP(div, div_f)
BINARY_OP(maximum, max_f)
BINARY_OP(minimum, min_f)

/* ---- backward: da += Σ g · ∂f/∂a, db += Σ g · ∂f/∂b, each summed over its broadcast axes ----
 * A local derivative is a function of (x = a, y = b, z = out, g = dout). */

typedef float (*grad_fn)(float x, float y, float z, float g);

enum { CHUNK = 256 };

/* One run of the gradient of one input: d moves by id (0: every element of the
 * run sums into d[0]); a, b move by ia / ib; z and g are contiguous. */
static inline __attribute__((always_inline)) void grad_run(grad_fn f, float *restrict d, size_t id,
                                                           const float *restrict a, size_t ia, const float *restrict b,
                                                           size_t ib, const float *restrict z, const float *restrict g,
                                                           size_t n)
{
    if (id) {
        if (ia && ib)
            for (size_t i = 0; i < n; i++) d[i] += f(a[i], b[i], z[i], g[i]);
        else if (ia) {
            const float y = b[0];
            for (size_t i = 0; i < n; i++) d[i] += f(a[i], y, z[i], g[i]);
        } else {
            const float x = a[0];
            for (size_t i = 0; i < n; i++) d[i] += f(x, b[i], z[i], g[i]);
        }
        return;
    }
    float l[CHUNK]; /* local gradients of a chunk, then summed */
    for (size_t c = 0; c < n; c += CHUNK) {
        size_t m = n - c < CHUNK ? n - c : CHUNK;
        const float *ac = a + c * ia, *bc = b + c * ib, *zc = z + c, *gc = g + c;
        if (ia && ib)
            for (size_t i = 0; i < m; i++) l[i] = f(ac[i], bc[i], zc[i], gc[i]);
        else if (ia) {
            const float y = bc[0];
            for (size_t i = 0; i < m; i++) l[i] = f(ac[i], y, zc[i], gc[i]);
        } else {
            const float x = ac[0];
            for (size_t i = 0; i < m; i++) l[i] = f(x, bc[i], zc[i], gc[i]);
        }
        d[0] += (float)nb_sum_f(l, m);
    }
}

typedef struct grad_job {
    nb_tensor *t;
    int which; /* 0: a's gradient, 1: b's */
} grad_job;

#define BINARY_GRAD(name, fa, fb)                                                                                 \
    static void name##_grad_run(void *ctx, size_t o, size_t ao, size_t ia, size_t bo, size_t ib, size_t n)      \
    {                                                                                                             \
        grad_job *j = ctx;                                                                                        \
        nb_tensor *t = j->t, *a = t->src[0], *b = t->src[1];                                                      \
        if (j->which == 0)                                                                                        \
            grad_run(fa, a->grad + ao, ia, a->data + ao, ia, b->data + bo, ib, t->data + o, t->grad + o, n);      \
        else                                                                                                      \
            grad_run(fb, b->grad + bo, ib, a->data + ao, ia, b->data + bo, ib, t->data + o, t->grad + o, n);      \
    }                                                                                                             \
    static void name##_backward(nb_tensor *t) { binary_backward(t, name##_grad_run); }

typedef struct grad_range_job {
    grad_job g;
    nb_bcast plan;
    nb_bcast_fn run;
} grad_range_job;

static void grad_range(void *ctx, size_t begin, size_t end)
{
    grad_range_job *j = ctx;
    nb_bcast_walk(&j->plan, begin, end, j->run, &j->g);
}

/* Each input's gradient in its own walk; an input of out's shape is split over
 * the threads when large, a broadcast one (whose elements collect sums) is not. */
static void binary_backward(nb_tensor *t, nb_bcast_fn run)
{
    grad_range_job j = {.g = {.t = t}, .run = run};
    plan_of(&j.plan, t);
    for (int k = 0; k < 2; k++) {
        const nb_tensor *s = t->src[k];
        if (!s->grad) continue;
        j.g.which = k;
        if (s->size == t->size) nb_parallel_range(t->size, grad_range, &j);
        else grad_range(&j, 0, t->size);
    }
}

static inline float g_pos(float x, float y, float z, float g) { (void)x, (void)y, (void)z; return g; }
static inline float g_neg(float x, float y, float z, float g) { (void)x, (void)y, (void)z; return -g; }
static inline float mul_ga(float x, float y, float z, float g) { (void)x, (void)z; return g * y; }
static inline float mul_gb(float x, float y, float z, float g) { (void)y, (void)z; return g * x; }
static inline float div_ga(float x, float y, float z, float g) { (void)x, (void)z; return g / y; }
static inline float div_gb(float x, float y, float z, float g) { (void)x; return -g * z / y; } /* -g a / b² */
/* maximum: the gradient goes to a where a >= b (ties to a), as TensorFlow's
 * _MaximumGrad; minimum: to a where a <= b. */
static inline float max_ga(float x, float y, float z, float g) { (void)z; return x >= y ? g : 0.0f; }
static inline float max_gb(float x, float y, float z, float g) { (void)z; return x >= y ? 0.0f : g; }
static inline float min_ga(float x, float y, float z, float g) { (void)z; return x <= y ? g : 0.0f; }
static inline float min_gb(float x, float y, float z, float g) { (void)z; return x <= y ? 0.0f : g; }

BINARY_GRAD(add, g_pos, g_pos)
BINARY_GRAD(sub, g_pos, g_neg)
BINARY_GRAD(mul, mul_ga, mul_gb)
BINARY_GRAD(div, div_ga, div_gb)
BINARY_GRAD(maximum, max_ga, max_gb)
BINARY_GRAD(minimum, min_ga, min_gb)

/* Shape rule of every op whose output has its float input's shape (declared in ops_private.h). */
nb_status nb_same_shape(nb_tensor *t)
{
    const nb_tensor *a = t->src[0];
    char sa[64];
    if (a->dtype != NB_F32)
        return nb_node_fail(t, NB_ERR_ARG, "%s: input must be a float tensor, got int32 %s", t->op->name,
                            nb_shape_str(a, sa, sizeof sa));
    t->ndim = a->ndim;
    memcpy(t->shape, a->shape, sizeof t->shape);
    return NB_OK;
}

/* ---- scale: out = a * s, s = scale_attr.s ---- */
typedef struct scale_attr {
    float s;
} scale_attr;

static nb_status scale_forward(nb_tensor *t)
{
    const float *restrict a = t->src[0]->data;
    float *restrict y = t->data;
    float s = NB_ATTR(t, scale_attr)->s;
    for (size_t i = 0; i < t->size; i++) y[i] = a[i] * s;
    return NB_OK;
}
static void scale_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0];
    float s = NB_ATTR(t, scale_attr)->s;
    if (a->grad)
        for (size_t i = 0; i < t->size; i++) a->grad[i] += t->grad[i] * s;
}
static void scale_describe(const nb_tensor *t, char *buf, size_t len)
{
    snprintf(buf, len, "s=%g", (double)NB_ATTR(t, scale_attr)->s);
}

#define BINARY_DEF(var, nm) \
    const nb_op nb_op_##var = {.name = #nm, .n_src = 2, .shape = binary_shape, .forward = nm##_forward, .backward = nm##_backward}
BINARY_DEF(add, add);
BINARY_DEF(sub, sub);
BINARY_DEF(mul, mul);
BINARY_DEF(div, div);
BINARY_DEF(maximum, maximum);
BINARY_DEF(minimum, minimum);
const nb_op nb_op_scale = {.name = "scale", .n_src = 1, .shape = nb_same_shape, .forward = scale_forward,
                           .backward = scale_backward, .describe = scale_describe};

static nb_tensor *binary(nb_graph *g, const nb_op *op, nb_tensor *a, nb_tensor *b)
{
    return nb_node(g, op, (nb_tensor *[]){a, b}, 2, NULL, 0);
}
nb_tensor *nb_add(nb_graph *g, nb_tensor *a, nb_tensor *b) { return binary(g, &nb_op_add, a, b); }
nb_tensor *nb_sub(nb_graph *g, nb_tensor *a, nb_tensor *b) { return binary(g, &nb_op_sub, a, b); }
nb_tensor *nb_mul(nb_graph *g, nb_tensor *a, nb_tensor *b) { return binary(g, &nb_op_mul, a, b); }
nb_tensor *nb_div(nb_graph *g, nb_tensor *a, nb_tensor *b) { return binary(g, &nb_op_div, a, b); }
nb_tensor *nb_maximum(nb_graph *g, nb_tensor *a, nb_tensor *b) { return binary(g, &nb_op_maximum, a, b); }
nb_tensor *nb_minimum(nb_graph *g, nb_tensor *a, nb_tensor *b) { return binary(g, &nb_op_minimum, a, b); }
nb_tensor *nb_scale(nb_graph *g, nb_tensor *a, float s)
{
    return nb_node(g, &nb_op_scale, (nb_tensor *[]){a}, 1, &(scale_attr){.s = s}, sizeof(scale_attr));
}
