/* test_ops_math.c — the math ops: broadcasting binaries against a naive
 * multi-index reference and finite differences over leading, middle and
 * trailing broadcast axes, size-1 dims and rank mismatches; unary math and the
 * activations against closed forms (double precision libm); reductions over
 * axes (negative, several, keepdims on and off, all) against nested-loop
 * references; argmax; the shared row-softmax kernel; errors; threads; and
 * steady-state allocation. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <nabla/nabla.h>
#include "op_check.h"
#include "nb_blis.h" /* bli_finalize: release BLIS's pools so a leak check sees only ours */

static int setup(void **state)
{
    (void)state;
    nb_rng_seed(&rng, 4321);
    return 0;
}

/* values from the grid {-1, -0.6, ..., 1} plus `offset`: two tensors with offsets
 * 0 and 0.1 differ by at least 0.1 everywhere (no ties for maximum / minimum) */
static void fill_grid(nb_tensor *t, float offset)
{
    for (size_t i = 0; i < t->size; i++) t->data[i] = -1.0f + 0.4f * (float)nb_rng_below(&rng, 6) + offset;
}

/* distinct values (a shuffled ramp): no ties for reduce_max */
static void fill_distinct(nb_tensor *t)
{
    for (size_t i = 0; i < t->size; i++) t->data[i] = 0.05f * (float)i - 1.0f;
    for (size_t i = t->size; i > 1; i--) {
        size_t j = nb_rng_below(&rng, (uint32_t)i);
        float v = t->data[i - 1];
        t->data[i - 1] = t->data[j];
        t->data[j] = v;
    }
}

static nb_tensor *param(nb_graph *g, int ndim, const int *shape)
{
    nb_tensor *t = nb_param(g, ndim, shape);
    assert_non_null(t);
    return t;
}

static void assert_near(double got, double want, double rel, const char *what)
{
    double tol = rel * fmax(1.0, fabs(want));
    if (isinf(want) && got == want) return;
    if (isnan(want) && isnan(got)) return;
    if (!(fabs(got - want) <= tol)) fail_msg("%s: got %.9g, want %.9g", what, got, want);
}

/* ---- broadcasting binaries ---- */

enum { ADD, SUB, MUL, DIV, MAX, MIN, N_BIN };
static const char *bin_name[N_BIN] = {"add", "sub", "mul", "div", "maximum", "minimum"};

static nb_tensor *binary(nb_graph *g, int op, nb_tensor *a, nb_tensor *b)
{
    switch (op) {
    case ADD: return nb_add(g, a, b);
    case SUB: return nb_sub(g, a, b);
    case MUL: return nb_mul(g, a, b);
    case DIV: return nb_div(g, a, b);
    case MAX: return nb_maximum(g, a, b);
    default: return nb_minimum(g, a, b);
    }
}

static double bin_ref(int op, double x, double y)
{
    switch (op) {
    case ADD: return x + y;
    case SUB: return x - y;
    case MUL: return x * y;
    case DIV: return x / y;
    case MAX: return x >= y ? x : y;
    default: return x <= y ? x : y;
    }
}

/* flat index into src of the element that broadcasts to out's multi-index idx (nd dims) */
static size_t src_index(const nb_tensor *src, int nd, const int *idx)
{
    size_t k = 0;
    for (int d = 0; d < src->ndim; d++) k = k * (size_t)src->shape[d] + (src->shape[d] == 1 ? 0 : (size_t)idx[d + nd - src->ndim]);
    return k;
}

static void unflatten(size_t i, int nd, const int *shape, int *idx)
{
    for (int d = nd - 1; d >= 0; d--) {
        idx[d] = (int)(i % (size_t)shape[d]);
        i /= (size_t)shape[d];
    }
}

typedef struct shape_pair {
    int na, a[6], nb, b[6], nout, out[6];
} shape_pair;

/* same; trailing row (two forms); scalar; column; rank mismatch (2,3,4)+(3,1);
 * middle axis; both broadcast; a the smaller; 4-D and 6-D */
static const shape_pair pairs[] = {
    {2, {3, 4}, 2, {3, 4}, 2, {3, 4}},
    {2, {3, 4}, 1, {4}, 2, {3, 4}},
    {2, {3, 4}, 2, {1, 4}, 2, {3, 4}},
    {2, {3, 4}, 1, {1}, 2, {3, 4}},
    {2, {3, 4}, 2, {3, 1}, 2, {3, 4}},
    {3, {2, 3, 4}, 2, {3, 1}, 3, {2, 3, 4}},
    {3, {2, 3, 4}, 3, {2, 1, 4}, 3, {2, 3, 4}},
    {3, {2, 1, 4}, 2, {3, 1}, 3, {2, 3, 4}},
    {1, {4}, 3, {2, 3, 4}, 3, {2, 3, 4}},
    {3, {1, 3, 1}, 3, {2, 1, 4}, 3, {2, 3, 4}},
    {4, {2, 3, 1, 5}, 3, {3, 4, 1}, 4, {2, 3, 4, 5}},
    {6, {2, 1, 3, 1, 2, 2}, 6, {1, 2, 1, 3, 1, 2}, 6, {2, 2, 3, 3, 2, 2}},
    {1, {1}, 1, {1}, 1, {1}},
};
#define N_PAIRS (sizeof pairs / sizeof pairs[0])

static void test_broadcast_values(void **state)
{
    (void)state;
    for (size_t s = 0; s < N_PAIRS; s++)
        for (int op = 0; op < N_BIN; op++) {
            const shape_pair *p = &pairs[s];
            nb_graph *g = nb_graph_new();
            nb_tensor *a = param(g, p->na, p->a), *b = param(g, p->nb, p->b);
            fill_grid(a, 0.0f);
            fill_grid(b, 0.1f);
            nb_tensor *y = binary(g, op, a, b);
            assert_non_null(y);
            assert_int_equal(y->ndim, p->nout);
            for (int d = 0; d < p->nout; d++) assert_int_equal(y->shape[d], p->out[d]);
            int idx[6];
            for (size_t i = 0; i < y->size; i++) {
                unflatten(i, y->ndim, y->shape, idx);
                double want = bin_ref(op, a->data[src_index(a, y->ndim, idx)], b->data[src_index(b, y->ndim, idx)]);
                assert_near(y->data[i], want, 1e-6, bin_name[op]);
            }
            /* the backward against the reference: each input's gradient is the
             * upstream gradient summed over its broadcast axes */
            nb_tensor *loss = weighted_loss(g, y);
            const float *w = loss->src[0]->src[1]->data;
            assert_int_equal(nb_backward(g, loss), NB_OK);
            double ga[720] = {0}, gb[720] = {0};
            for (size_t i = 0; i < y->size; i++) {
                unflatten(i, y->ndim, y->shape, idx);
                size_t ka = src_index(a, y->ndim, idx), kb = src_index(b, y->ndim, idx);
                double x = a->data[ka], v = b->data[kb];
                double da = op == ADD || op == SUB ? 1 : op == MUL ? v : op == DIV ? 1 / v : op == MAX ? x >= v : x <= v;
                double db = op == ADD ? 1 : op == SUB ? -1 : op == MUL ? x : op == DIV ? -x / (v * v) : op == MAX ? x < v : x > v;
                ga[ka] += w[i] * da;
                gb[kb] += w[i] * db;
            }
            for (size_t i = 0; i < a->size; i++) assert_near(a->grad[i], ga[i], 1e-5, bin_name[op]);
            for (size_t i = 0; i < b->size; i++) assert_near(b->grad[i], gb[i], 1e-5, bin_name[op]);
            nb_graph_free(g);
        }
}

static void test_broadcast_gradcheck(void **state)
{
    (void)state;
    for (size_t s = 0; s < N_PAIRS; s++) {
        if (pairs[s].nout == 6) continue; /* 216 elements: checked against the reference above */
        for (int op = 0; op < N_BIN; op++) {
            const shape_pair *p = &pairs[s];
            nb_graph *g = nb_graph_new();
            nb_tensor *a = param(g, p->na, p->a), *b = param(g, p->nb, p->b);
            fill_grid(a, 0.0f);
            fill_grid(b, 0.1f);
            if (op == DIV) fill_away_from_zero(b, 0.5f, 2.0f);
            assert_gradcheck_at(g, weighted_loss(g, binary(g, op, a, b)), bin_name[op]);
            nb_graph_free(g);
        }
    }
}

/* the old row-broadcast forms still work: (B, K) + (K), (1, K), one element */
static void test_broadcast_inputs_without_grad(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *x = nb_input(g, NB_F32, 3, (int[]){2, 3, 4});
    nb_tensor *b = param(g, 2, (int[]){3, 1});
    fill(x, -1, 1);
    fill(b, -1, 1);
    nb_tensor *y = nb_mul(g, x, b);
    assert_null(x->grad);
    assert_gradcheck_at(g, weighted_loss(g, y), "mul, a an input");
    nb_tensor *z = nb_sub(g, b, x); /* the broadcast operand first */
    assert_gradcheck_at(g, weighted_loss(g, z), "sub, b an input");
    /* a scalar (0-d) operand, from a reduction */
    nb_tensor *s = nb_reduce_mean(g, b, 0, NULL, false);
    assert_int_equal(s->ndim, 0);
    nb_tensor *q = nb_div(g, x, nb_add(g, s, nb_exp(g, b)));
    assert_int_equal(q->ndim, 3);
    assert_gradcheck_at(g, weighted_loss(g, q), "div by scalar + (3, 1)");
    nb_tensor *s0 = nb_param(g, 0, (int[]){1}); /* ndim 0: the shape is not read */
    assert_non_null(s0);
    s0->data[0] = 0.7f;
    nb_tensor *ss = nb_mul(g, s0, s0);
    assert_int_equal(ss->ndim, 0);
    assert_true(ss->data[0] == 0.7f * 0.7f);
    assert_gradcheck_at(g, weighted_loss(g, nb_sub(g, b, s0)), "sub of a 0-d parameter");
    nb_graph_free(g);
}

/* maximum: ties give the gradient to a; minimum likewise */
static void test_maximum_minimum_ties(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *a = param(g, 1, (int[]){3}), *b = param(g, 1, (int[]){3});
    memcpy(a->data, (float[]){1, 2, 3}, sizeof(float) * 3);
    memcpy(b->data, (float[]){1, 5, 0}, sizeof(float) * 3);
    nb_tensor *mx = nb_maximum(g, a, b), *mn = nb_minimum(g, a, b);
    assert_true(mx->data[0] == 1 && mx->data[1] == 5 && mx->data[2] == 3);
    assert_true(mn->data[0] == 1 && mn->data[1] == 2 && mn->data[2] == 0);
    assert_int_equal(nb_backward(g, nb_sum(g, mx)), NB_OK);
    assert_true(a->grad[0] == 1 && a->grad[1] == 0 && a->grad[2] == 1);
    assert_true(b->grad[0] == 0 && b->grad[1] == 1 && b->grad[2] == 0);
    nb_zero_grad(g);
    assert_int_equal(nb_backward(g, nb_sum(g, mn)), NB_OK);
    assert_true(a->grad[0] == 1 && a->grad[1] == 1 && a->grad[2] == 0);
    assert_true(b->grad[0] == 0 && b->grad[1] == 0 && b->grad[2] == 1);
    /* NaN in either input gives NaN */
    nb_tensor *n = nb_input(g, NB_F32, 1, (int[]){2});
    n->data[0] = NAN, n->data[1] = 1.0f;
    nb_tensor *m = nb_input(g, NB_F32, 1, (int[]){2});
    m->data[0] = 1.0f, m->data[1] = NAN;
    nb_tensor *outs[] = {nb_maximum(g, n, m), nb_minimum(g, n, m), nb_maximum(g, m, n), nb_minimum(g, m, n)};
    for (int k = 0; k < 4; k++) assert_true(isnan(outs[k]->data[0]) && isnan(outs[k]->data[1]));
    nb_tensor *r = nb_reduce_max(g, nb_input(g, NB_F32, 2, (int[]){2, 2}), 1, (int[]){1}, false);
    memcpy(r->src[0]->data, (float[]){NAN, 1, 2, NAN}, 4 * sizeof(float));
    assert_int_equal(nb_forward(g), NB_OK);
    assert_true(isnan(r->data[0]) && isnan(r->data[1]));
    nb_graph_free(g);
}

static void test_broadcast_errors(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *a = param(g, 2, (int[]){2, 3}), *b = param(g, 2, (int[]){4, 3}), *c = param(g, 3, (int[]){2, 3, 4});
    nb_tensor *lab = nb_input(g, NB_I32, 1, (int[]){3});
    expect_op_fail(g, nb_add(g, a, b), "add: shapes (2, 3) and (4, 3) do not broadcast (sizes 2 and 4 at axis -2)");
    expect_op_fail(g, nb_div(g, a, c), "div: shapes (2, 3) and (2, 3, 4) do not broadcast (sizes 3 and 4 at axis -1)");
    expect_op_fail(g, nb_maximum(g, c, b), "maximum: shapes (2, 3, 4) and (4, 3)");
    expect_op_fail(g, nb_minimum(g, a, lab), "minimum: inputs must be float tensors, got float (2, 3) and int32 (3,)");
    expect_op_fail(g, nb_div(g, lab, a), "div: inputs must be float tensors");
    expect_op_fail(g, nb_maximum(g, NULL, a), "maximum: input 0 is NULL");
    assert_null(nb_div(NULL, a, a));
    /* a batch change that breaks broadcasting is reported by nb_forward */
    nb_tensor *x = nb_input(g, NB_F32, 2, (int[]){2, 3});
    assert_non_null(nb_div(g, x, a));
    assert_int_equal(nb_input_set_batch(x, 3), NB_OK);
    assert_int_equal(nb_forward(g), NB_ERR_SHAPE);
    assert_non_null(strstr(nb_last_error(), "div: shapes (3, 3) and (2, 3)"));
    nb_graph_free(g);
}

/* ---- unary math ---- */

enum { NEG, EXP, LOG, SQRT, SQUARE, ABS, CLIP, POW, N_UN };
static const char *un_name[N_UN] = {"neg", "exp", "log", "sqrt", "square", "abs", "clip", "pow"};

static nb_tensor *unary(nb_graph *g, int op, nb_tensor *a, float p)
{
    switch (op) {
    case NEG: return nb_neg(g, a);
    case EXP: return nb_exp(g, a);
    case LOG: return nb_log(g, a);
    case SQRT: return nb_sqrt(g, a);
    case SQUARE: return nb_square(g, a);
    case ABS: return nb_abs(g, a);
    case CLIP: return nb_clip(g, a, -0.5f, p);
    default: return nb_pow(g, a, p);
    }
}
static double un_ref(int op, double x, double p)
{
    switch (op) {
    case NEG: return -x;
    case EXP: return exp(x);
    case LOG: return log(x);
    case SQRT: return sqrt(x);
    case SQUARE: return x * x;
    case ABS: return fabs(x);
    case CLIP: return x < -0.5 ? -0.5 : x > p ? p : x;
    default: return pow(x, p);
    }
}

static void test_unary_values(void **state)
{
    (void)state;
    static const float xs[] = {-3.5f, -1.0f, -0.25f, 0.0f, 1e-3f, 0.3f, 1.0f, 2.5f, 7.0f};
    const int n = sizeof xs / sizeof xs[0];
    nb_graph *g = nb_graph_new();
    nb_tensor *a = nb_input(g, NB_F32, 1, (int[]){n});
    memcpy(a->data, xs, sizeof xs);
    for (int op = 0; op < N_UN; op++) {
        float p = op == CLIP ? 0.75f : 3.0f;
        nb_tensor *y = unary(g, op, a, p);
        assert_non_null(y);
        for (int i = 0; i < n; i++) assert_near(y->data[i], un_ref(op, xs[i], p), 3e-7, un_name[op]);
    }
    const float ps[] = {0.5f, -1.0f, 2.0f, 0.0f, 1.0f, -2.5f};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        nb_tensor *y = nb_pow(g, a, ps[k]);
        for (int i = 0; i < n; i++) assert_near(y->data[i], pow(xs[i], ps[k]), 3e-7, "pow");
    }
    /* exp over its whole float range: relative error of a few ulp, 0 and Inf at the ends */
    nb_tensor *e = nb_input(g, NB_F32, 1, (int[]){2001});
    for (int i = 0; i <= 2000; i++) e->data[i] = -87.3f + (88.7f + 87.3f) * (float)i / 2000.0f;
    nb_tensor *ey = nb_exp(g, e);
    for (int i = 0; i <= 2000; i++)
        if (!(fabs(ey->data[i] / exp(e->data[i]) - 1) < 3e-7)) fail_msg("exp(%.9g) = %.9g", e->data[i], ey->data[i]);
    nb_tensor *ends = nb_input(g, NB_F32, 1, (int[]){5});
    memcpy(ends->data, (float[]){-1000.0f, -88.0f, 89.0f, INFINITY, NAN}, 5 * sizeof(float));
    nb_tensor *ee = nb_exp(g, ends);
    assert_true(ee->data[0] == 0.0f && ee->data[1] == 0.0f && isinf(ee->data[2]) && isinf(ee->data[3]));
    assert_true(isnan(ee->data[4]));
    nb_graph_free(g);
}

static void test_unary_gradcheck(void **state)
{
    (void)state;
    static const int shapes[][3] = {{1, 1, 1}, {2, 3, 4}};
    const int ndims[] = {1, 3};
    for (int s = 0; s < 2; s++)
        for (int op = 0; op < N_UN; op++) {
            const float ps[] = {3.0f, 0.5f, -1.5f, 2.0f, 1.0f, 0.0f};
            int np = op == POW ? 6 : 1;
            for (int k = 0; k < np; k++) {
                nb_graph *g = nb_graph_new();
                nb_tensor *a = param(g, ndims[s], shapes[s]);
                if (op == LOG || op == SQRT || op == POW) fill(a, 0.5f, 2.0f);
                else if (op == CLIP) { /* away from the bounds -0.5 and 0.75 */
                    for (size_t i = 0; i < a->size; i++)
                        a->data[i] = (float[]){-1.2f, -0.7f, -0.3f, 0.1f, 0.6f, 0.9f, 1.4f}[nb_rng_below(&rng, 7)];
                } else fill_away_from_zero(a, 0.1f, 2.0f);
                assert_gradcheck_at(g, weighted_loss(g, unary(g, op, a, op == CLIP ? 0.75f : ps[k])), un_name[op]);
                nb_graph_free(g);
            }
        }
}

/* clip passes the gradient on [lo, hi], bounds included, and none outside */
static void test_clip_and_abs_kinks(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *a = param(g, 1, (int[]){5});
    memcpy(a->data, (float[]){-2, -1, 0, 1, 2}, 5 * sizeof(float));
    nb_tensor *c = nb_clip(g, a, -1, 1);
    assert_true(c->data[0] == -1 && c->data[2] == 0 && c->data[4] == 1);
    assert_int_equal(nb_backward(g, nb_sum(g, c)), NB_OK);
    const float want[5] = {0, 1, 1, 1, 0};
    for (int i = 0; i < 5; i++) assert_true(a->grad[i] == want[i]);
    nb_zero_grad(g);
    assert_int_equal(nb_backward(g, nb_sum(g, nb_abs(g, a))), NB_OK);
    const float sign[5] = {-1, -1, 0, 1, 1};
    for (int i = 0; i < 5; i++) assert_true(a->grad[i] == sign[i]);
    nb_zero_grad(g);
    assert_int_equal(nb_backward(g, nb_sum(g, nb_pow(g, a, 0.0f))), NB_OK); /* x^0: gradient 0, even at 0 */
    for (int i = 0; i < 5; i++) assert_true(a->grad[i] == 0);
    expect_op_fail(g, nb_clip(g, a, 1, -1), "clip: min 1 must not exceed max -1");
    expect_op_fail(g, nb_clip(g, a, NAN, 1), "clip");
    expect_op_fail(g, nb_pow(g, a, INFINITY), "pow: the exponent must be finite");
    nb_tensor *lab = nb_input(g, NB_I32, 1, (int[]){3});
    for (int op = 0; op < N_UN; op++) expect_op_fail(g, unary(g, op, lab, 1.0f), un_name[op]);
    expect_op_fail(g, nb_sqrt(g, lab), "sqrt: input must be a float tensor, got int32 (3,)");
    nb_graph_free(g);
}

/* ---- activations ---- */

static double gelu_ref(double x, int approximate)
{
    if (approximate) return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    return 0.5 * x * (1 + erf(x / sqrt(2.0)));
}

static void test_activation_values(void **state)
{
    (void)state;
    static const float xs[] = {-1000.0f, -20.0f, -3.0f, -1.0f, -0.1f, 0.0f, 0.1f, 1.0f, 3.0f, 20.0f, 1000.0f};
    const int n = sizeof xs / sizeof xs[0];
    nb_graph *g = nb_graph_new();
    nb_tensor *a = nb_input(g, NB_F32, 1, (int[]){n});
    memcpy(a->data, xs, sizeof xs);
    nb_tensor *lr = nb_activate(g, a, NB_LEAKY_RELU), *lr2 = nb_leaky_relu(g, a, 0.2f), *el = nb_elu(g, a);
    nb_tensor *ge = nb_gelu(g, a, false), *gt = nb_gelu(g, a, true), *si = nb_silu(g, a), *sp = nb_softplus(g, a);
    for (int i = 0; i < n; i++) {
        double x = xs[i];
        assert_near(lr->data[i], x >= 0 ? x : 0.3 * x, 1e-7, "leaky_relu 0.3");
        assert_near(lr2->data[i], x >= 0 ? x : 0.2 * x, 1e-7, "leaky_relu 0.2");
        assert_near(el->data[i], x > 0 ? x : expm1(x), 3e-7, "elu");
        assert_near(ge->data[i], gelu_ref(x, 0), 3e-7, "gelu");
        assert_near(gt->data[i], gelu_ref(x, 1), 3e-7, "gelu tanh");
        assert_near(si->data[i], x / (1 + exp(-x)), 3e-7, "silu");
        assert_near(sp->data[i], x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)), 3e-7, "softplus");
    }
    /* Keras's documented values: gelu(1) = 0.8413447 exact, 0.8411920 with the tanh form */
    assert_near(ge->data[7], 0.8413447, 1e-7, "gelu(1)");
    assert_near(gt->data[7], 0.8411920, 1e-7, "gelu(1) tanh");
    /* a sweep: both gelu forms, silu and elu to float precision */
    nb_tensor *sw = nb_input(g, NB_F32, 1, (int[]){4001});
    for (int i = 0; i <= 4000; i++) sw->data[i] = -12.0f + 24.0f * (float)i / 4000.0f;
    nb_tensor *se = nb_gelu(g, sw, false), *st = nb_gelu(g, sw, true), *ss = nb_silu(g, sw), *sl = nb_elu(g, sw);
    for (int i = 0; i <= 4000; i++) {
        double x = sw->data[i];
        assert_near(se->data[i], gelu_ref(x, 0), 4e-7, "gelu sweep");
        assert_near(st->data[i], gelu_ref(x, 1), 4e-7, "gelu tanh sweep");
        assert_near(ss->data[i], x / (1 + exp(-x)), 4e-7, "silu sweep");
        assert_near(sl->data[i], x > 0 ? x : expm1(x), 4e-7, "elu sweep");
    }
    assert_int_equal(nb_check_numerics(g), NB_OK);
    nb_graph_free(g);
}

static nb_tensor *activation(nb_graph *g, int k, nb_tensor *a)
{
    switch (k) {
    case 0: return nb_leaky_relu(g, a, 0.2f);
    case 1: return nb_activate(g, a, NB_LEAKY_RELU);
    case 2: return nb_elu(g, a);
    case 3: return nb_gelu(g, a, false);
    case 4: return nb_gelu(g, a, true);
    case 5: return nb_silu(g, a);
    default: return nb_softplus(g, a);
    }
}

static void test_activation_gradcheck(void **state)
{
    (void)state;
    static const int shapes[][3] = {{1, 1, 1}, {2, 3, 4}};
    const int ndims[] = {1, 3};
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < 7; k++) {
            nb_graph *g = nb_graph_new();
            nb_tensor *a = param(g, ndims[s], shapes[s]);
            fill_away_from_zero(a, 0.1f, 4.0f);
            assert_gradcheck_at(g, weighted_loss(g, activation(g, k, a)), "activation");
            nb_graph_free(g);
        }
}

/* leaky_relu and elu at 0: the negative side's slope (alpha; e^0 = 1 for elu) */
static void test_activation_kinks(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *a = param(g, 1, (int[]){1});
    a->data[0] = 0.0f;
    assert_int_equal(nb_backward(g, nb_sum(g, nb_leaky_relu(g, a, 0.25f))), NB_OK);
    assert_true(a->grad[0] == 0.25f);
    nb_zero_grad(g);
    assert_int_equal(nb_backward(g, nb_sum(g, nb_elu(g, a))), NB_OK);
    assert_true(a->grad[0] == 1.0f);
    expect_op_fail(g, nb_leaky_relu(g, a, NAN), "leaky_relu: alpha must be finite");
    nb_tensor *lab = nb_input(g, NB_I32, 1, (int[]){3});
    for (int k = 0; k < 7; k++) expect_op_fail(g, activation(g, k, lab), "must be a float tensor, got int32 (3,)");
    nb_graph_free(g);
}

/* the enum, names, nb_activate and nb_dense with the new activations */
static void test_activation_enum_and_dense(void **state)
{
    (void)state;
    const nb_activation acts[] = {NB_LEAKY_RELU, NB_ELU, NB_GELU, NB_SILU, NB_SOFTPLUS};
    const char *names[] = {"leaky_relu", "elu", "gelu", "silu", "softplus"};
    const int kinds[] = {NB_OP_LEAKY_RELU, NB_OP_ELU, NB_OP_GELU, NB_OP_SILU, NB_OP_SOFTPLUS};
    assert_int_equal(NB_SOFTMAX, 4); /* the earlier values are unchanged */
    for (int k = 0; k < 5; k++) {
        assert_string_equal(nb_activation_name(acts[k]), names[k]);
        nb_graph *g = nb_graph_new();
        nb_tensor *x = param(g, 2, (int[]){4, 3}), *w = param(g, 2, (int[]){3, 2}), *b = param(g, 1, (int[]){2});
        fill(x, 0.3f, 1.0f);
        for (int j = 0; j < 2; j++) { /* each kernel column of one sign: x·w + b away from the kinks */
            float sign = j ? -1.0f : 1.0f;
            for (int i = 0; i < 3; i++) w->data[i * 2 + j] = sign * nb_rng_uniform_range(&rng, 0.2f, 0.8f);
            b->data[j] = sign * 0.1f;
        }
        nb_tensor *y = nb_dense(g, x, w, b, acts[k]);
        assert_non_null(y);
        assert_int_equal(nb_op_kind_of(y), kinds[k]);
        assert_int_equal(nb_op_kind_of(y->src[0]), NB_OP_DENSE);
        nb_tensor *y2 = nb_activate(g, nb_add(g, nb_matmul(g, x, w), b), acts[k]);
        for (size_t i = 0; i < y->size; i++) assert_near(y->data[i], y2->data[i], 1e-6, names[k]);
        assert_gradcheck_at(g, weighted_loss(g, y), names[k]);
        assert_null(nb_dense(g, x, w, b, (nb_activation)(NB_SOFTPLUS + 1)));
        nb_graph_free(g);
    }
}

/* ---- reductions over axes ---- */

enum { RSUM, RMEAN, RMAX, RLSE, N_RED };
static const char *red_name[N_RED] = {"reduce_sum", "reduce_mean", "reduce_max", "logsumexp"};

static nb_tensor *reduction(nb_graph *g, int op, nb_tensor *a, int n, const int *axes, bool keep)
{
    switch (op) {
    case RSUM: return nb_reduce_sum(g, a, n, axes, keep);
    case RMEAN: return nb_reduce_mean(g, a, n, axes, keep);
    case RMAX: return nb_reduce_max(g, a, n, axes, keep);
    default: return nb_logsumexp(g, a, n, axes, keep);
    }
}

typedef struct red_case {
    int nd, shape[4], n_axes, axes[4];
} red_case;

static const red_case red_cases[] = {
    {2, {3, 4}, 1, {1}},        {2, {3, 4}, 1, {-1}},        {2, {3, 4}, 1, {0}},       {2, {3, 4}, 0, {0}},
    {3, {2, 3, 4}, 1, {1}},     {3, {2, 3, 4}, 2, {0, 2}},   {3, {2, 3, 4}, 2, {-1, 0}}, {3, {2, 3, 4}, 2, {1, 2}},
    {3, {2, 3, 4}, 3, {2, 0, 1}}, {4, {2, 1, 3, 2}, 2, {1, 3}}, {4, {2, 3, 2, 2}, 1, {-3}}, {1, {5}, 1, {0}},
    {3, {1, 4, 1}, 1, {1}},
};
#define N_RED_CASES (sizeof red_cases / sizeof red_cases[0])

/* naive reference: out (kept shape) by a loop over every element of a */
static void red_ref(int op, const nb_tensor *a, const int *mask, double *out, size_t n_out)
{
    double m[64];
    size_t cnt[64] = {0};
    for (size_t k = 0; k < n_out; k++) out[k] = op == RMAX ? -INFINITY : 0, m[k] = -INFINITY;
    for (int pass = 0; pass < (op == RLSE ? 2 : 1); pass++)
        for (size_t i = 0; i < a->size; i++) {
            int idx[6];
            unflatten(i, a->ndim, a->shape, idx);
            size_t k = 0;
            for (int d = 0; d < a->ndim; d++) k = k * (size_t)(mask[d] ? 1 : a->shape[d]) + (size_t)(mask[d] ? 0 : idx[d]);
            double x = a->data[i];
            if (op == RLSE && pass == 0) m[k] = fmax(m[k], x);
            else if (op == RLSE) out[k] += exp(x - m[k]);
            else if (op == RMAX) out[k] = fmax(out[k], x);
            else out[k] += x, cnt[k]++;
        }
    for (size_t k = 0; k < n_out; k++) {
        if (op == RMEAN) out[k] /= (double)cnt[k];
        if (op == RLSE) out[k] = m[k] + log(out[k]);
    }
}

static void test_reduce_values(void **state)
{
    (void)state;
    for (size_t c = 0; c < N_RED_CASES; c++)
        for (int op = 0; op < N_RED; op++)
            for (int keep = 0; keep < 2; keep++) {
                const red_case *rc = &red_cases[c];
                nb_graph *g = nb_graph_new();
                nb_tensor *a = param(g, rc->nd, rc->shape);
                fill(a, -3, 3);
                nb_tensor *y = reduction(g, op, a, rc->n_axes, rc->n_axes ? rc->axes : NULL, keep);
                assert_non_null(y);
                int mask[4] = {0}, nd = 0;
                for (int i = 0; i < rc->n_axes; i++) mask[(rc->axes[i] + rc->nd) % rc->nd] = 1;
                for (int d = 0; d < rc->nd; d++) {
                    if (rc->n_axes == 0) mask[d] = 1;
                    if (!mask[d]) assert_int_equal(y->shape[nd++], rc->shape[d]);
                    else if (keep) assert_int_equal(y->shape[nd++], 1);
                }
                assert_int_equal(y->ndim, nd);
                double want[64];
                red_ref(op, a, mask, want, y->size);
                for (size_t k = 0; k < y->size; k++) assert_near(y->data[k], want[k], 1e-6, red_name[op]);
                nb_graph_free(g);
            }
}

static void test_reduce_gradcheck(void **state)
{
    (void)state;
    for (size_t c = 0; c < N_RED_CASES; c++)
        for (int op = 0; op < N_RED; op++)
            for (int keep = 0; keep < 2; keep++) {
                const red_case *rc = &red_cases[c];
                nb_graph *g = nb_graph_new();
                nb_tensor *a = param(g, rc->nd, rc->shape);
                fill_distinct(a); /* no ties for max */
                nb_tensor *y = reduction(g, op, a, rc->n_axes, rc->axes, keep);
                assert_gradcheck_at(g, weighted_loss(g, y), red_name[op]);
                nb_graph_free(g);
            }
}

/* reduce_max's gradient goes to the first maximum of each group only */
static void test_reduce_max_first(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *a = param(g, 2, (int[]){2, 4});
    memcpy(a->data, (float[]){1, 3, 3, 0, 2, 2, 2, 2}, 8 * sizeof(float));
    nb_tensor *m = nb_reduce_max(g, a, 1, (int[]){-1}, false);
    assert_true(m->data[0] == 3 && m->data[1] == 2);
    assert_int_equal(nb_backward(g, nb_sum(g, m)), NB_OK);
    const float want[8] = {0, 1, 0, 0, 1, 0, 0, 0};
    for (int i = 0; i < 8; i++) assert_true(a->grad[i] == want[i]);
    /* over the leading axis: the first row wins ties */
    nb_zero_grad(g);
    nb_tensor *m0 = nb_reduce_max(g, a, 1, (int[]){0}, true);
    assert_int_equal(m0->ndim, 2);
    assert_int_equal(nb_backward(g, nb_sum(g, m0)), NB_OK);
    const float want0[8] = {0, 1, 1, 0, 1, 0, 0, 1};
    for (int i = 0; i < 8; i++) assert_true(a->grad[i] == want0[i]);
    nb_graph_free(g);
}

static void test_logsumexp_stable(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *a = param(g, 2, (int[]){3, 3});
    memcpy(a->data, (float[]){1000, 0, -1000, -1000, -1000, -1000, -INFINITY, -INFINITY, -INFINITY}, 9 * sizeof(float));
    nb_tensor *l = nb_logsumexp(g, a, 1, (int[]){1}, false);
    assert_true(l->data[0] == 1000.0f);
    assert_near(l->data[1], -1000 + log(3.0), 1e-7, "logsumexp");
    assert_true(isinf(l->data[2]) && l->data[2] < 0);
    /* its gradient is the row softmax */
    nb_tensor *b = param(g, 2, (int[]){2, 3});
    memcpy(b->data, (float[]){2, 1, 0.1f, -1, 0, 1}, 6 * sizeof(float));
    assert_int_equal(nb_backward(g, nb_sum(g, nb_logsumexp(g, b, 1, (int[]){-1}, true))), NB_OK);
    const double sm[6] = {0.6590011, 0.2424330, 0.0985659, 0.0900306, 0.2447285, 0.6652410};
    for (int i = 0; i < 6; i++) assert_near(b->grad[i], sm[i], 1e-6, "logsumexp gradient");
    nb_graph_free(g);
}

static void test_reduce_errors(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *a = param(g, 3, (int[]){2, 3, 4});
    nb_tensor *lab = nb_input(g, NB_I32, 2, (int[]){2, 3});
    expect_op_fail(g, nb_reduce_sum(g, a, 1, (int[]){3}, false), "reduce_sum: axis 3 is out of range for shape (2, 3, 4)");
    expect_op_fail(g, nb_reduce_mean(g, a, 1, (int[]){-4}, true), "reduce_mean: axis -4 is out of range");
    expect_op_fail(g, nb_reduce_max(g, a, 2, (int[]){1, -2}, false), "reduce_max: axis -2 is repeated (as 1) for shape (2, 3, 4)");
    expect_op_fail(g, nb_logsumexp(g, a, 7, (int[]){0, 1, 2, 0, 1, 2, 0}, false), "logsumexp: n_axes must be 0..6, got 7");
    expect_op_fail(g, nb_logsumexp(g, a, -1, NULL, false), "logsumexp: n_axes must be 0..6, got -1");
    expect_op_fail(g, nb_reduce_sum(g, lab, 0, NULL, false), "reduce_sum: input must be a float tensor, got int32 (2, 3)");
    expect_op_fail(g, nb_argmax(g, a, 3), "argmax: axis 3 is out of range for shape (2, 3, 4)");
    expect_op_fail(g, nb_argmax(g, lab, 0), "argmax: input must be a float tensor");
    expect_op_fail(g, nb_reduce_sum(g, NULL, 0, NULL, false), "reduce_sum: input 0 is NULL");
    assert_null(nb_reduce_sum(NULL, a, 0, NULL, false));
    /* all axes: a scalar; the sum and mean agree with nb_sum / nb_mean */
    fill(a, -1, 1);
    nb_tensor *s = nb_reduce_sum(g, a, 0, NULL, false), *m = nb_reduce_mean(g, a, 3, (int[]){0, 1, 2}, false);
    assert_int_equal(s->ndim, 0);
    assert_near(s->data[0], nb_sum(g, a)->data[0], 1e-6, "sum");
    assert_near(m->data[0], nb_mean(g, a)->data[0], 1e-6, "mean");
    nb_graph_free(g);
}

/* ---- argmax ---- */
static void test_argmax(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *a = param(g, 3, (int[]){2, 3, 4});
    fill(a, -2, 2);
    for (int axis = -3; axis < 3; axis++) {
        nb_tensor *y = nb_argmax(g, a, axis);
        assert_non_null(y);
        assert_int_equal(y->dtype, NB_I32);
        assert_null(y->grad);
        assert_int_equal(y->ndim, 2);
        int ax = (axis + 3) % 3, idx[3];
        for (size_t i = 0; i < a->size; i++) { /* a[i] <= the element y points to, strictly less before it */
            unflatten(i, 3, a->shape, idx);
            size_t k = 0;
            for (int d = 0; d < 3; d++)
                if (d != ax) k = k * (size_t)a->shape[d] + (size_t)idx[d];
            int best = y->idata[k], bidx[3] = {idx[0], idx[1], idx[2]};
            bidx[ax] = best;
            float bv = a->data[((size_t)bidx[0] * 3 + (size_t)bidx[1]) * 4 + (size_t)bidx[2]];
            assert_true(a->data[i] <= bv);
            if (idx[ax] < best) assert_true(a->data[i] < bv);
        }
    }
    nb_tensor *t = nb_input(g, NB_F32, 2, (int[]){3, 4});
    memcpy(t->data, (float[]){1, 5, 5, 2, NAN, 1, NAN, 3, NAN, NAN, NAN, NAN}, 12 * sizeof(float));
    nb_tensor *y = nb_argmax(g, t, -1);
    assert_true(y->idata[0] == 1 && y->idata[1] == 3 && y->idata[2] == 0); /* first max; NaN skipped; all NaN: 0 */
    nb_graph_free(g);
}

/* ---- attributes shown by nb_graph_print / nb_graph_dot ---- */
static void test_describe(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *a = param(g, 3, (int[]){2, 3, 4});
    struct {
        nb_tensor *t;
        const char *want;
    } cases[] = {
        {nb_reduce_sum(g, a, 2, (int[]){1, -1}, true), "axes=[1, -1] keepdims"},
        {nb_reduce_max(g, a, 0, NULL, false), "axes=all"},
        {nb_logsumexp(g, a, 1, (int[]){0}, false), "axes=[0]"},
        {nb_clip(g, a, -1, 2.5f), "min=-1 max=2.5"},
        {nb_pow(g, a, 3), "exponent=3"},
        {nb_leaky_relu(g, a, 0.3f), "alpha=0.3"},
        {nb_gelu(g, a, true), "approximate (tanh)"},
        {nb_gelu(g, a, false), "exact (erf)"},
        {nb_argmax(g, a, -1), "axis=-1"},
        {nb_scale(g, a, 0.5f), "s=0.5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64];
        assert_non_null(cases[i].t->op->describe);
        cases[i].t->op->describe(cases[i].t, buf, sizeof buf);
        assert_string_equal(buf, cases[i].want);
    }
    nb_graph_free(g);
}

/* ---- one row-softmax kernel: softmax, log_softmax, nb_softmax_rows and the
 * losses give the same numbers ---- */
static void test_softmax_kernel_shared(void **state)
{
    (void)state;
    enum { B = 6, K = 9 };
    nb_graph *g = nb_graph_new();
    nb_tensor *z = param(g, 2, (int[]){B, K});
    fill(z, -5, 5);
    nb_tensor *p = nb_softmax(g, z), *lp = nb_log_softmax(g, z);
    float rows[B * K];
    memcpy(rows, z->data, sizeof rows);
    nb_softmax_rows(rows, B, K);
    assert_memory_equal(rows, p->data, sizeof rows); /* bit for bit */
    nb_tensor *y = nb_input(g, NB_I32, 1, (int[]){B});
    for (int r = 0; r < B; r++) y->idata[r] = r % K;
    nb_tensor *ce = nb_sparse_softmax_cross_entropy_with_logits(g, z, y);
    nb_tensor *lse = nb_logsumexp(g, z, 1, (int[]){-1}, false);
    for (int r = 0; r < B; r++) {
        assert_near(ce->data[r], -lp->data[r * K + y->idata[r]], 1e-6, "loss vs log_softmax");
        assert_near(ce->data[r], lse->data[r] - z->data[r * K + y->idata[r]], 1e-6, "loss vs logsumexp");
        for (int j = 0; j < K; j++) assert_near(expf(lp->data[r * K + j]), p->data[r * K + j], 1e-6, "exp(log_softmax)");
    }
    nb_graph_free(g);
}

/* ---- threads: large inputs split over the pool give the same bits ---- */
static void test_threads_same_result(void **state)
{
    (void)state;
    enum { R = 700, C = 150, N_OUT = 10 }; /* 105000 elements: above the split threshold */
    float *ref[N_OUT] = {0};
    for (int threads = 1; threads <= 2; threads++) {
        nb_set_num_threads(threads);
        nb_rng_seed(&rng, 99);
        nb_graph *g = nb_graph_new();
        nb_tensor *a = param(g, 2, (int[]){R, C}), *b = param(g, 2, (int[]){R, C}), *r = param(g, 1, (int[]){C});
        fill(a, -2, 2);
        fill(b, 0.5f, 2);
        fill(r, -1, 1);
        nb_tensor *outs[] = {nb_div(g, a, b),
                             nb_add(g, a, r),
                             nb_gelu(g, a, true),
                             nb_exp(g, a),
                             nb_reduce_sum(g, a, 1, (int[]){-1}, true),
                             nb_logsumexp(g, b, 1, (int[]){1}, false),
                             nb_reduce_max(g, a, 1, (int[]){-1}, false),
                             nb_reduce_mean(g, b, 1, (int[]){0}, false)};
        nb_tensor *loss = nb_sum(g, nb_add(g, nb_add(g, outs[0], outs[1]), nb_mul(g, outs[2], outs[3])));
        for (int k = 4; k < 8; k++) loss = nb_add(g, loss, nb_sum(g, outs[k]));
        assert_int_equal(nb_backward(g, loss), NB_OK);
        nb_tensor *got[N_OUT] = {outs[0], outs[1], outs[2], outs[3], outs[4], outs[5], outs[6], outs[7], a, b};
        for (int k = 0; k < N_OUT; k++) {
            const float *v = k < 8 ? got[k]->data : got[k]->grad;
            size_t bytes = got[k]->size * sizeof(float);
            if (threads == 1) {
                ref[k] = malloc(bytes);
                memcpy(ref[k], v, bytes);
            } else {
                assert_memory_equal(ref[k], v, bytes);
                free(ref[k]);
            }
        }
        nb_graph_free(g);
    }
    nb_set_num_threads(1);
}

/* ---- steady state: no allocation per step, batch changes included ---- */
static void test_no_alloc_steady_state(void **state)
{
    (void)state;
    enum { B = 16, K = 5 };
    nb_graph *g = nb_graph_new();
    nb_tensor *x = nb_input(g, NB_F32, 3, (int[]){B, 3, K});
    nb_tensor *w = param(g, 2, (int[]){3, 1}), *v = param(g, 1, (int[]){K});
    fill(x, -1, 1);
    fill(w, 0.5f, 1);
    fill(v, -1, 1);
    nb_tensor *h = nb_gelu(g, nb_div(g, nb_add(g, x, v), nb_exp(g, w)), false);
    nb_tensor *m = nb_reduce_max(g, h, 1, (int[]){1}, true);
    nb_tensor *l = nb_logsumexp(g, nb_sub(g, h, m), 2, (int[]){-1, 1}, false);
    nb_tensor *loss = nb_reduce_mean(g, nb_add(g, l, nb_reduce_sum(g, nb_softplus(g, h), 2, (int[]){1, 2}, false)), 0, NULL, false);
    assert_non_null(loss);
    assert_non_null(nb_argmax(g, h, -1));
    assert_int_equal(nb_backward(g, loss), NB_OK);
    unsigned long before = nb_alloc_count();
    for (int step = 0; step < 6; step++) {
        assert_int_equal(nb_input_set_batch(x, step < 3 ? B : B - step), NB_OK);
        nb_zero_grad(g);
        assert_int_equal(nb_forward(g), NB_OK);
        assert_int_equal(nb_backward(g, loss), NB_OK);
    }
    assert_int_equal(nb_alloc_count() - before, 0);
    assert_int_equal(l->shape[0], B - 5);
    nb_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_broadcast_values, setup),
        cmocka_unit_test_setup(test_broadcast_gradcheck, setup),
        cmocka_unit_test_setup(test_broadcast_inputs_without_grad, setup),
        cmocka_unit_test_setup(test_maximum_minimum_ties, setup),
        cmocka_unit_test_setup(test_broadcast_errors, setup),
        cmocka_unit_test_setup(test_unary_values, setup),
        cmocka_unit_test_setup(test_unary_gradcheck, setup),
        cmocka_unit_test_setup(test_clip_and_abs_kinks, setup),
        cmocka_unit_test_setup(test_activation_values, setup),
        cmocka_unit_test_setup(test_activation_gradcheck, setup),
        cmocka_unit_test_setup(test_activation_kinks, setup),
        cmocka_unit_test_setup(test_activation_enum_and_dense, setup),
        cmocka_unit_test_setup(test_reduce_values, setup),
        cmocka_unit_test_setup(test_reduce_gradcheck, setup),
        cmocka_unit_test_setup(test_reduce_max_first, setup),
        cmocka_unit_test_setup(test_logsumexp_stable, setup),
        cmocka_unit_test_setup(test_reduce_errors, setup),
        cmocka_unit_test_setup(test_argmax, setup),
        cmocka_unit_test_setup(test_describe, setup),
        cmocka_unit_test_setup(test_softmax_kernel_shared, setup),
        cmocka_unit_test_setup(test_threads_same_result, setup),
        cmocka_unit_test_setup(test_no_alloc_steady_state, setup),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    bli_finalize();
    return failed;
}
