/* test_ops_layout.c — the structure ops: transpose, slice, concat, split,
 * broadcast_to, gather, one_hot, batch_matmul, layer_norm, dropout and the
 * causal softmax. Each against a plain nested-loop reference, each through
 * finite-difference gradient checks over its options, and each given bad input
 * (NULL, wrong dtypes, bad permutations and axes, out-of-range indices) that
 * must return NULL with a message naming the op and the shapes. */
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

static int setup(void **state)
{
    (void)state;
    nb_rng_seed(&rng, 4321);
    return 0;
}

static nb_tensor *param(nb_graph *g, int ndim, const int *shape)
{
    nb_tensor *p = nb_param(g, ndim, shape);
    assert_non_null(p);
    fill(p, -1.0f, 1.0f);
    return p;
}

static void assert_shape(const nb_tensor *t, int ndim, const int *shape)
{
    assert_non_null(t);
    assert_int_equal(t->ndim, ndim);
    for (int d = 0; d < ndim; d++)
        if (t->shape[d] != shape[d]) fail_msg("axis %d: got %d, want %d", d, t->shape[d], shape[d]);
}

/* Expect the last build to have failed with status s and exactly message msg. */
static void assert_fails(nb_graph *g, const nb_tensor *t, const char *msg)
{
    assert_null(t);
    assert_non_null(nb_graph_error(g));
    assert_string_equal(nb_graph_error(g), msg);
    nb_graph_clear_error(g);
}

/* Flat index <-> multi-index, row-major. */
static void unravel(size_t i, int nd, const int *shape, int *idx)
{
    for (int d = nd - 1; d >= 0; d--) {
        idx[d] = (int)(i % (size_t)shape[d]);
        i /= (size_t)shape[d];
    }
}
static size_t ravel(int nd, const int *shape, const int *idx)
{
    size_t i = 0;
    for (int d = 0; d < nd; d++) i = i * (size_t)shape[d] + (size_t)idx[d];
    return i;
}

/* The description nb_graph_print shows for node t (its last column). */
static void describe(const nb_tensor *t, char *buf, size_t len)
{
    buf[0] = '\0';
    assert_non_null(t->op->describe);
    t->op->describe(t, buf, len);
}

/* ---- transpose ---- */

/* out[i] == a[j] with j[perm[d]] = i[d], for every element. */
static void check_transpose(const nb_tensor *a, const nb_tensor *out, const int *perm)
{
    int io[NB_MAX_DIMS], ia[NB_MAX_DIMS];
    assert_int_equal(out->size, a->size);
    for (size_t i = 0; i < out->size; i++) {
        unravel(i, out->ndim, out->shape, io);
        for (int d = 0; d < a->ndim; d++) ia[perm[d]] = io[d];
        size_t j = ravel(a->ndim, a->shape, ia);
        if (a->dtype == NB_I32) assert_int_equal(out->idata[i], a->idata[j]);
        else if (out->data[i] != a->data[j]) fail_msg("element %zu: got %g, want %g", i, out->data[i], a->data[j]);
    }
}

/* Every permutation of n axes, in lexicographic order, into perms (n! rows). */
static int all_perms(int n, int perms[][4])
{
    int count = 0, p[4] = {0, 1, 2, 3};
    for (;;) {
        memcpy(perms[count++], p, sizeof p);
        int i = n - 2;
        while (i >= 0 && p[i] > p[i + 1]) i--;
        if (i < 0) return count;
        int j = n - 1;
        while (p[j] < p[i]) j--;
        int tmp = p[i];
        p[i] = p[j];
        p[j] = tmp;
        for (int l = i + 1, r = n - 1; l < r; l++, r--) {
            tmp = p[l];
            p[l] = p[r];
            p[r] = tmp;
        }
    }
}

static void test_transpose(void **state)
{
    (void)state;
    int perms[24][4];
    for (int nd = 3; nd <= 4; nd++) {
        int n = all_perms(nd, perms);
        assert_int_equal(n, nd == 3 ? 6 : 24);
        for (int k = 0; k < n; k++) {
            nb_graph *g = nb_graph_new();
            nb_tensor *a = param(g, nd, (int[]){2, 3, 4, 3});
            nb_tensor *y = nb_transpose(g, a, perms[k]);
            assert_non_null(y);
            for (int d = 0; d < nd; d++) assert_int_equal(y->shape[d], a->shape[perms[k][d]]);
            check_transpose(a, y, perms[k]);
            assert_gradcheck(g, weighted_loss(g, y));
            nb_graph_free(g);
        }
    }
    /* NULL reverses the axes; int32 tensors are moved the same way */
    nb_graph *g = nb_graph_new();
    nb_tensor *a = param(g, 3, (int[]){2, 3, 4});
    nb_tensor *r = nb_transpose(g, a, NULL);
    assert_shape(r, 3, (int[]){4, 3, 2});
    check_transpose(a, r, (int[]){2, 1, 0});
    nb_tensor *ix = nb_input(g, NB_I32, 2, (int[]){3, 5});
    for (int i = 0; i < 15; i++) ix->idata[i] = i * 7;
    nb_tensor *it = nb_transpose(g, ix, (int[]){1, 0});
    assert_shape(it, 2, (int[]){5, 3});
    assert_int_equal(it->dtype, NB_I32);
    check_transpose(ix, it, (int[]){1, 0});
    assert_null(it->grad);
    nb_tensor *p = nb_transpose(g, param(g, 4, (int[]){2, 2, 2, 2}), (int[]){0, 2, 1, 3});
    char buf[128];
    describe(p, buf, sizeof buf);
    assert_string_equal(buf, "perm=[0,2,1,3]");
    nb_graph_free(g);
}

/* ---- slice ---- */

/* Python's slice bounds, the reference: from, and the element count. */
static int py_slice(int start, int stop, int step, int n, int *from)
{
    if (start < 0) start += n;
    if (stop < 0) stop += n;
    start = start < 0 ? 0 : start > n ? n : start;
    stop = stop < 0 ? 0 : stop > n ? n : stop;
    *from = start;
    return stop > start ? (stop - start + step - 1) / step : 0;
}

static void check_slice(const nb_tensor *a, const nb_tensor *y, const int *start, const int *stop, const int *step)
{
    int from[NB_MAX_DIMS], io[NB_MAX_DIMS], ia[NB_MAX_DIMS];
    for (int d = 0; d < a->ndim; d++) assert_int_equal(y->shape[d], py_slice(start[d], stop[d], step[d], a->shape[d], &from[d]));
    for (size_t i = 0; i < y->size; i++) {
        unravel(i, y->ndim, y->shape, io);
        for (int d = 0; d < a->ndim; d++) ia[d] = from[d] + io[d] * step[d];
        size_t j = ravel(a->ndim, a->shape, ia);
        if (a->dtype == NB_I32) assert_int_equal(y->idata[i], a->idata[j]);
        else assert_true(y->data[i] == a->data[j]);
    }
}

static void test_slice(void **state)
{
    (void)state;
    static const struct {
        int start[3], stop[3], step[3];
    } cases[] = {
        {{0, 0, 0}, {NB_SLICE_END, NB_SLICE_END, NB_SLICE_END}, {1, 1, 1}}, /* everything */
        {{1, -3, 0}, {3, -1, 5}, {1, 1, 2}},                                 /* negative start and stop */
        {{-1, 0, -4}, {NB_SLICE_END, 4, NB_SLICE_END}, {1, 3, 2}},           /* steps > 1 */
        {{-100, 1, 1}, {100, 2, -1}, {2, 1, 3}},                             /* clamped */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nb_graph *g = nb_graph_new();
        nb_tensor *a = param(g, 3, (int[]){4, 5, 6});
        nb_tensor *y = nb_slice(g, a, cases[c].start, cases[c].stop, cases[c].step);
        assert_non_null(y);
        check_slice(a, y, cases[c].start, cases[c].stop, cases[c].step);
        assert_gradcheck(g, weighted_loss(g, y));
        nb_graph_free(g);
    }
    nb_graph *g = nb_graph_new();
    /* NULL start/stop/step: a copy; shape of case 2 written out */
    nb_tensor *a = param(g, 3, (int[]){4, 5, 6});
    nb_tensor *all = nb_slice(g, a, NULL, NULL, NULL);
    assert_shape(all, 3, (int[]){4, 5, 6});
    assert_memory_equal(all->data, a->data, a->size * sizeof(float));
    nb_tensor *y = nb_slice(g, a, cases[2].start, cases[2].stop, cases[2].step);
    assert_shape(y, 3, (int[]){1, 2, 2});
    char buf[128];
    describe(y, buf, sizeof buf);
    assert_string_equal(buf, "start=[-1,0,-4] stop=[end,4,end] step=[1,3,2]");
    /* int32, and a slice of a batch input follows the batch: the last 2 rows */
    nb_tensor *x = nb_input(g, NB_I32, 2, (int[]){5, 3});
    for (int i = 0; i < 15; i++) x->idata[i] = i;
    nb_tensor *last = nb_slice(g, x, (int[]){-2, 0}, (int[]){NB_SLICE_END, NB_SLICE_END}, NULL);
    assert_shape(last, 2, (int[]){2, 3});
    assert_int_equal(last->idata[0], 9);
    int32_t more[24];
    for (int i = 0; i < 24; i++) more[i] = 100 + i;
    assert_int_equal(nb_input_set(x, more, 8), NB_OK);
    assert_int_equal(nb_forward(g), NB_OK);
    assert_int_equal(last->shape[0], 2);
    assert_int_equal(last->idata[0], 118);
    assert_int_equal(last->idata[5], 123);
    nb_graph_free(g);
}

/* ---- concat and split ---- */

static void test_concat(void **state)
{
    (void)state;
    /* three inputs on the middle axis, and the same with axis -2 */
    for (int axis = 1; axis >= -2; axis -= 3) {
        nb_graph *g = nb_graph_new();
        nb_tensor *xs[3] = {param(g, 3, (int[]){2, 1, 4}), param(g, 3, (int[]){2, 3, 4}), param(g, 3, (int[]){2, 2, 4})};
        nb_tensor *y = nb_concat(g, 3, xs, axis);
        assert_shape(y, 3, (int[]){2, 6, 4});
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 6; j++)
                for (int k = 0; k < 4; k++) {
                    int src = j < 1 ? 0 : j < 4 ? 1 : 2, jj = j < 1 ? j : j < 4 ? j - 1 : j - 4;
                    float want = xs[src]->data[(i * xs[src]->shape[1] + jj) * 4 + k];
                    assert_true(y->data[(i * 6 + j) * 4 + k] == want);
                }
        char buf[64];
        describe(y, buf, sizeof buf);
        assert_string_equal(buf, "axis=1");
        assert_gradcheck(g, weighted_loss(g, y));
        nb_graph_free(g);
    }
    /* more inputs than one node holds: a chain; last axis; int32 */
    nb_graph *g = nb_graph_new();
    enum { N = 19 };
    nb_tensor *xs[N];
    for (int i = 0; i < N; i++) {
        xs[i] = param(g, 2, (int[]){2, 1 + i % 2});
        for (size_t j = 0; j < xs[i]->size; j++) xs[i]->data[j] = (float)(100 * i + (int)j);
    }
    nb_tensor *y = nb_concat(g, N, xs, -1);
    int width = 0;
    for (int i = 0; i < N; i++) width += 1 + i % 2;
    assert_shape(y, 2, (int[]){2, width});
    for (int r = 0, at = 0; r < 2; r++)
        for (int i = 0; i < N; i++)
            for (int j = 0; j < 1 + i % 2; j++) assert_true(y->data[at++] == (float)(100 * i + r * (1 + i % 2) + j));
    for (int i = 0; i < N; i++) fill(xs[i], -1, 1); /* small values for the finite differences */
    assert_gradcheck(g, weighted_loss(g, y));
    nb_tensor *ia = nb_input(g, NB_I32, 1, (int[]){2}), *ib = nb_input(g, NB_I32, 1, (int[]){3});
    for (int i = 0; i < 3; i++) ia->idata[i % 2] = i, ib->idata[i] = 10 + i;
    nb_tensor *ic = nb_concat(g, 2, (nb_tensor *[]){ia, ib}, 0);
    assert_shape(ic, 1, (int[]){5});
    assert_int_equal(ic->dtype, NB_I32);
    assert_int_equal(ic->idata[1], 1);
    assert_int_equal(ic->idata[4], 12);
    nb_graph_free(g);
}

static void test_split(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *a = param(g, 3, (int[]){2, 6, 3});
    nb_tensor *parts[3];
    assert_int_equal(nb_split(g, a, -2, 3, (int[]){1, 3, 2}, parts), NB_OK);
    assert_shape(parts[0], 3, (int[]){2, 1, 3});
    assert_shape(parts[1], 3, (int[]){2, 3, 3});
    assert_shape(parts[2], 3, (int[]){2, 2, 3});
    /* joined back, the parts are a again */
    nb_tensor *back = nb_concat(g, 3, parts, 1);
    assert_memory_equal(back->data, a->data, a->size * sizeof(float));
    char buf[96];
    describe(parts[1], buf, sizeof buf);
    assert_string_equal(buf, "axis=1 part=1/3 offset=1 size=3");
    /* gradient: part 1 unused, so those rows of a get exactly 0 */
    nb_tensor *loss = nb_add(g, weighted_loss(g, parts[0]), weighted_loss(g, parts[2]));
    assert_gradcheck(g, loss);
    for (int i = 0; i < 2; i++)
        for (int j = 1; j < 4; j++)
            for (int k = 0; k < 3; k++) assert_true(a->grad[(i * 6 + j) * 3 + k] == 0.0f);
    nb_graph_free(g);
    /* equal parts of a batch input follow the batch */
    g = nb_graph_new();
    nb_tensor *x = nb_input(g, NB_F32, 2, (int[]){4, 2});
    for (int i = 0; i < 8; i++) x->data[i] = (float)i;
    nb_tensor *halves[2];
    assert_int_equal(nb_split(g, x, 0, 2, NULL, halves), NB_OK);
    assert_shape(halves[1], 2, (int[]){2, 2});
    assert_true(halves[1]->data[0] == 4.0f);
    float more[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    assert_int_equal(nb_input_set(x, more, 6), NB_OK);
    assert_int_equal(nb_forward(g), NB_OK);
    assert_shape(halves[1], 2, (int[]){3, 2});
    assert_true(halves[1]->data[0] == 6.0f);
    assert_int_equal(nb_input_set(x, more, 5), NB_OK);
    assert_int_equal(nb_forward(g), NB_ERR_SHAPE);
    assert_string_equal(nb_last_error(), "split: axis 0 of (5, 2) does not split into equal parts: 2");
    nb_graph_free(g);
}

/* ---- broadcast_to ---- */

static void test_broadcast_to(void **state)
{
    (void)state;
    static const struct {
        int ndim, shape[4];
    } from[] = {{2, {3, 1}}, {1, {4}}, {3, {1, 3, 1}}, {3, {2, 3, 4}}, {0, {0}}};
    const int target[3] = {2, 3, 4};
    for (size_t c = 0; c < sizeof from / sizeof from[0]; c++) {
        nb_graph *g = nb_graph_new();
        nb_tensor *a = from[c].ndim ? param(g, from[c].ndim, from[c].shape) : nb_param(g, 0, from[c].shape);
        assert_non_null(a);
        fill(a, -1, 1);
        nb_tensor *y = nb_broadcast_to(g, a, 3, target);
        assert_shape(y, 3, target);
        int io[3], ia[3], lead = 3 - a->ndim;
        for (size_t i = 0; i < y->size; i++) {
            unravel(i, 3, target, io);
            for (int d = 0; d < a->ndim; d++) ia[d] = a->shape[d] == 1 ? 0 : io[lead + d];
            assert_true(y->data[i] == a->data[ravel(a->ndim, a->shape, ia)]);
        }
        assert_gradcheck(g, weighted_loss(g, y));
        char buf[64];
        describe(y, buf, sizeof buf);
        assert_string_equal(buf, "shape=[2,3,4]");
        nb_graph_free(g);
    }
}

/* ---- gather and one_hot ---- */

static void test_gather(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *table = param(g, 2, (int[]){5, 3});
    nb_tensor *idx = nb_input(g, NB_I32, 2, (int[]){2, 3});
    const int32_t ids[6] = {4, 0, 4, 2, 4, 0}; /* repeated indices; rows 1 and 3 unused */
    memcpy(idx->idata, ids, sizeof ids);
    nb_tensor *y = nb_gather(g, table, idx);
    assert_shape(y, 3, (int[]){2, 3, 3});
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 3; j++) assert_true(y->data[i * 3 + j] == table->data[ids[i] * 3 + j]);
    /* backward: each table row receives the sum of the rows that read it */
    nb_tensor *loss = weighted_loss(g, y);
    const float *w = loss->src[0]->src[1]->data;
    nb_zero_grad(g);
    assert_int_equal(nb_backward(g, loss), NB_OK);
    double want[15] = {0};
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 3; j++) want[ids[i] * 3 + j] += w[i * 3 + j];
    for (int i = 0; i < 15; i++) assert_true(fabs(table->grad[i] - want[i]) < 1e-6);
    assert_gradcheck(g, loss);
    assert_null(idx->grad);
    nb_graph_free(g);
    /* a 3-D table and 1-D indices */
    g = nb_graph_new();
    table = param(g, 3, (int[]){4, 2, 3});
    idx = nb_input(g, NB_I32, 1, (int[]){5});
    for (int i = 0; i < 5; i++) idx->idata[i] = (i * 3) % 4;
    y = nb_gather(g, table, idx);
    assert_shape(y, 3, (int[]){5, 2, 3});
    for (int i = 0; i < 5; i++) assert_memory_equal(y->data + i * 6, table->data + idx->idata[i] * 6, 6 * sizeof(float));
    assert_gradcheck(g, weighted_loss(g, y));
    /* out of range at a later forward: the run fails naming the position */
    idx->idata[3] = 4;
    assert_int_equal(nb_forward(g), NB_ERR_ARG);
    assert_string_equal(nb_last_error(), "gather: indices[3] = 4 is outside the valid range [0, 4) of table (4, 2, 3)");
    nb_graph_free(g);
}

static void test_one_hot(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *idx = nb_input(g, NB_I32, 2, (int[]){2, 3});
    const int32_t ids[6] = {0, 3, 1, -1, 4, 3}; /* -1 and 4 are out of range: zero rows */
    memcpy(idx->idata, ids, sizeof ids);
    nb_tensor *y = nb_one_hot(g, idx, 4);
    assert_shape(y, 3, (int[]){2, 3, 4});
    assert_int_equal(y->dtype, NB_F32);
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 4; j++) assert_true(y->data[i * 4 + j] == (ids[i] == j ? 1.0f : 0.0f));
    assert_null(y->grad);
    char buf[32];
    describe(y, buf, sizeof buf);
    assert_string_equal(buf, "depth=4");
    /* re-run with new indices: the old ones are cleared */
    idx->idata[0] = 2;
    assert_int_equal(nb_forward(g), NB_OK);
    assert_true(y->data[0] == 0.0f && y->data[2] == 1.0f);
    nb_graph_free(g);
}

/* ---- batch_matmul ---- */

/* The reference: c (batch..., M, N) from a, b with broadcast batch axes and
 * logical transposes, in double. */
static void ref_bmm(double *c, const nb_tensor *a, const nb_tensor *b, bool ta, bool tb, const nb_tensor *out)
{
    int nd = out->ndim, nb = nd - 2, M = out->shape[nd - 2], N = out->shape[nd - 1];
    int K = ta ? a->shape[a->ndim - 2] : a->shape[a->ndim - 1];
    size_t items = out->size / ((size_t)M * N);
    int io[NB_MAX_DIMS], ia[NB_MAX_DIMS], ib[NB_MAX_DIMS];
    for (size_t it = 0; it < items; it++) {
        unravel(it, nb, out->shape, io);
        for (int d = 0; d < a->ndim - 2; d++) {
            int od = d + nb - (a->ndim - 2);
            ia[d] = a->shape[d] == 1 ? 0 : io[od];
        }
        for (int d = 0; d < b->ndim - 2; d++) {
            int od = d + nb - (b->ndim - 2);
            ib[d] = b->shape[d] == 1 ? 0 : io[od];
        }
        size_t ba = ravel(a->ndim - 2, a->shape, ia) * (size_t)M * K, bb = ravel(b->ndim - 2, b->shape, ib) * (size_t)K * N;
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                double s = 0;
                for (int k = 0; k < K; k++) {
                    float x = a->data[ba + (ta ? (size_t)k * M + m : (size_t)m * K + k)];
                    float y = b->data[bb + (tb ? (size_t)n * K + k : (size_t)k * N + n)];
                    s += (double)x * y;
                }
                c[it * (size_t)M * N + (size_t)m * N + n] = s;
            }
    }
}

static void check_bmm(const nb_tensor *c, const nb_tensor *a, const nb_tensor *b, bool ta, bool tb)
{
    double *want = malloc(c->size * sizeof *want);
    assert_non_null(want);
    ref_bmm(want, a, b, ta, tb, c);
    for (size_t i = 0; i < c->size; i++)
        if (!(fabs(c->data[i] - want[i]) <= 1e-4 * fmax(1.0, fabs(want[i]))))
            fail_msg("element %zu: got %.7g, want %.7g", i, c->data[i], want[i]);
    free(want);
}

/* Stored shape of an operand: logical (..., R, C), swapped when transposed. */
static nb_tensor *operand(nb_graph *g, int nd, const int *shape, bool t)
{
    int s[NB_MAX_DIMS];
    memcpy(s, shape, (size_t)nd * sizeof *s);
    if (t) s[nd - 2] = shape[nd - 1], s[nd - 1] = shape[nd - 2];
    return param(g, nd, s);
}

static void test_batch_matmul(void **state)
{
    (void)state;
    static const struct {
        int na, a[4], nb, b[4], nc, c[4];
    } cases[] = {
        {3, {2, 3, 4}, 3, {2, 4, 5}, 3, {2, 3, 5}},                   /* plain batch */
        {4, {2, 2, 3, 4}, 2, {4, 3}, 4, {2, 2, 3, 3}},                /* (B, H, T, D) x (D, E) */
        {4, {1, 2, 3, 4}, 4, {3, 2, 4, 2}, 4, {3, 2, 3, 2}},          /* (1, H, ..) x (B, H, ..) */
        {3, {2, 1, 3}, 4, {2, 1, 3, 2}, 4, {2, 2, 1, 2}},             /* both broadcast, M = 1 */
        {2, {3, 4}, 3, {2, 4, 2}, 3, {2, 3, 2}},                       /* a without batch */
        {2, {3, 4}, 2, {4, 5}, 2, {3, 5}},                             /* plain matrices */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int flags = 0; flags < 4; flags++) {
            bool ta = flags & 1, tb = flags & 2;
            nb_graph *g = nb_graph_new();
            nb_tensor *a = operand(g, cases[c].na, cases[c].a, ta), *b = operand(g, cases[c].nb, cases[c].b, tb);
            nb_tensor *y = nb_batch_matmul(g, a, b, ta, tb);
            if (!y) fail_msg("case %zu flags %d: %s", c, flags, nb_graph_error(g));
            assert_shape(y, cases[c].nc, cases[c].c);
            check_bmm(y, a, b, ta, tb);
            assert_gradcheck(g, weighted_loss(g, y));
            char buf[64];
            describe(y, buf, sizeof buf);
            assert_string_equal(buf, flags == 3 ? "transpose_a transpose_b" : flags == 2 ? "transpose_b"
                                     : flags == 1 ? "transpose_a" : "");
            nb_graph_free(g);
        }
}

/* Bigger products on one and two threads (items shared over the pool;
 * operands broadcast or not; items small enough for the plain kernel and large
 * enough for BLIS), against the reference, the backward against one thread. */
static void test_batch_matmul_threads(void **state)
{
    (void)state;
    static const struct {
        int na, a[4], nb, b[4], nc, c[4];
    } cases[] = {{3, {8, 24, 40}, 4, {2, 1, 40, 32}, 4, {2, 8, 24, 32}},  /* small items: the plain kernel */
                 {4, {2, 8, 24, 40}, 4, {2, 8, 40, 32}, 4, {2, 8, 24, 32}},
                 {3, {3, 72, 80}, 3, {3, 80, 66}, 3, {3, 72, 66}},        /* large items: BLIS */
                 {3, {1, 72, 80}, 3, {3, 80, 66}, 3, {3, 72, 66}}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int flags = 0; flags < 4; flags++) {
            bool ta = flags & 1, tb = flags & 2;
            float *keep[2] = {NULL, NULL}; /* one thread's dA, dB */
            for (int th = 1; th <= 2; th++) {
                nb_set_num_threads(th);
                nb_rng_seed(&rng, 99);
                nb_graph *g = nb_graph_new();
                nb_tensor *a = operand(g, cases[c].na, cases[c].a, ta), *b = operand(g, cases[c].nb, cases[c].b, tb);
                nb_tensor *y = nb_batch_matmul(g, a, b, ta, tb);
                assert_shape(y, cases[c].nc, cases[c].c);
                check_bmm(y, a, b, ta, tb);
                assert_int_equal(nb_backward(g, weighted_loss(g, y)), NB_OK);
                nb_tensor *ab[2] = {a, b};
                for (int k = 0; k < 2; k++) {
                    if (th == 1) {
                        keep[k] = malloc(ab[k]->size * sizeof(float));
                        memcpy(keep[k], ab[k]->grad, ab[k]->size * sizeof(float));
                        continue;
                    }
                    for (size_t i = 0; i < ab[k]->size; i++)
                        if (!(fabsf(keep[k][i] - ab[k]->grad[i]) < 1e-4f)) fail_msg("operand %d element %zu", k, i);
                    free(keep[k]);
                }
                nb_graph_free(g);
            }
        }
    nb_set_num_threads(1);
}

/* ---- layer_norm ---- */

static void test_layer_norm(void **state)
{
    (void)state;
    enum { R = 6, D = 5 };
    for (int opt = 0; opt < 4; opt++) {
        bool with_gamma = opt & 1, with_beta = opt & 2;
        nb_graph *g = nb_graph_new();
        nb_tensor *x = param(g, 3, (int[]){2, 3, D});
        nb_tensor *gm = with_gamma ? param(g, 1, (int[]){D}) : NULL, *bt = with_beta ? param(g, 1, (int[]){D}) : NULL;
        float eps = opt == 3 ? NB_TORCH_LAYER_NORM_EPSILON : NB_KERAS_LAYER_NORM_EPSILON;
        nb_tensor *y = nb_layer_norm(g, x, gm, bt, eps);
        assert_shape(y, 3, (int[]){2, 3, D});
        for (int r = 0; r < R; r++) { /* the direct two-pass computation, in double */
            const float *xr = x->data + r * D;
            double mean = 0, var = 0;
            for (int j = 0; j < D; j++) mean += xr[j];
            mean /= D;
            for (int j = 0; j < D; j++) var += (xr[j] - mean) * (xr[j] - mean);
            var /= D;
            for (int j = 0; j < D; j++) {
                double want = (xr[j] - mean) / sqrt(var + eps) * (gm ? gm->data[j] : 1.0) + (bt ? bt->data[j] : 0.0);
                if (!(fabs(y->data[r * D + j] - want) < 1e-5)) fail_msg("row %d col %d: got %.7g want %.7g", r, j, y->data[r * D + j], want);
            }
        }
        assert_gradcheck(g, weighted_loss(g, y));
        char buf[64];
        describe(y, buf, sizeof buf);
        const char *want = opt == 0 ? "epsilon=0.001" : opt == 1 ? "epsilon=0.001 gamma" : opt == 2 ? "epsilon=0.001 beta"
                                                                                                    : "epsilon=1e-05 gamma beta";
        assert_string_equal(buf, want);
        nb_graph_free(g);
    }
}

/* ---- dropout ---- */

static void test_dropout(void **state)
{
    (void)state;
    enum { N = 20000 };
    const float rate = 0.3f;
    nb_graph *g = nb_graph_new();
    nb_tensor *x = nb_input(g, NB_F32, 2, (int[]){N / 100, 100});
    fill(x, 0.5f, 1.5f);
    nb_tensor *y = nb_dropout(g, x, rate);
    /* not training: identity */
    assert_false(nb_graph_training(g));
    assert_memory_equal(y->data, x->data, N * sizeof(float));
    /* training: about 1 - rate kept, each scaled by 1 / (1 - rate) */
    nb_graph_set_training(g, true);
    nb_graph_seed(g, 7);
    assert_int_equal(nb_forward(g), NB_OK);
    int kept = 0;
    for (int i = 0; i < N; i++) {
        if (y->data[i] == 0.0f) continue;
        kept++;
        assert_true(fabsf(y->data[i] - x->data[i] / (1.0f - rate)) <= 1e-6f * fabsf(y->data[i]));
    }
    double frac = (double)kept / N, sd = sqrt(rate * (1 - rate) / N);
    if (!(fabs(frac - (1 - rate)) < 5 * sd)) fail_msg("kept %.4f of the values, want %.4f", frac, 1 - rate);
    /* the same seed gives the same mask; the next run another one, independent of
     * it, and neighbours are independent too: both kept about (1 - rate)^2 of the time */
    float *first = malloc(N * sizeof(float));
    memcpy(first, y->data, N * sizeof(float));
    assert_int_equal(nb_forward(g), NB_OK);
    assert_true(memcmp(first, y->data, N * sizeof(float)) != 0);
    int both_runs = 0, both_neighbours = 0;
    for (int i = 0; i < N; i++) both_runs += first[i] != 0.0f && y->data[i] != 0.0f;
    for (int i = 0; i + 1 < N; i++) both_neighbours += first[i] != 0.0f && first[i + 1] != 0.0f;
    double p2 = (1 - rate) * (1 - rate), sd2 = sqrt(p2 * (1 - p2) / N);
    if (!(fabs((double)both_runs / N - p2) < 5 * sd2) || !(fabs((double)both_neighbours / N - p2) < 5 * sd2))
        fail_msg("kept in both runs %.4f, both neighbours %.4f, want %.4f", (double)both_runs / N,
                 (double)both_neighbours / N, p2);
    nb_graph_seed(g, 7);
    assert_int_equal(nb_forward(g), NB_OK);
    assert_memory_equal(first, y->data, N * sizeof(float));
    free(first);
    /* back to inference: identity again */
    nb_graph_set_training(g, false);
    assert_int_equal(nb_forward(g), NB_OK);
    assert_memory_equal(y->data, x->data, N * sizeof(float));
    char buf[32];
    describe(y, buf, sizeof buf);
    assert_string_equal(buf, "rate=0.3");
    nb_graph_free(g);
}

static void test_dropout_gradient(void **state)
{
    (void)state;
    for (int training = 0; training <= 1; training++) {
        nb_graph *g = nb_graph_new();
        nb_graph_set_training(g, training);
        nb_graph_seed(g, 3);
        nb_tensor *a = param(g, 3, (int[]){2, 3, 4});
        nb_tensor *y = nb_dropout(g, a, 0.5f);
        nb_tensor *loss = weighted_loss(g, y);
        assert_gradcheck(g, loss);
        /* dx = dy * mask: zero exactly where the output was dropped */
        const float *w = loss->src[0]->src[1]->data;
        for (size_t i = 0; i < a->size; i++) {
            float mask = y->data[i] == 0.0f ? 0.0f : training ? 2.0f : 1.0f;
            assert_true(fabsf(a->grad[i] - w[i] * mask) < 1e-6f);
        }
        nb_graph_free(g);
    }
}

/* ---- causal softmax ---- */

static void test_causal_softmax(void **state)
{
    (void)state;
    enum { T = 5 };
    nb_graph *g = nb_graph_new();
    nb_tensor *s = param(g, 4, (int[]){2, 3, T, T});
    for (size_t i = 0; i < s->size; i++) s->data[i] *= 3.0f;
    nb_tensor *y = nb_causal_softmax(g, s);
    assert_shape(y, 4, (int[]){2, 3, T, T});
    for (size_t m = 0; m < s->size / (T * T); m++)
        for (int i = 0; i < T; i++) {
            const float *z = s->data + m * T * T + i * T, *p = y->data + m * T * T + i * T;
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j <= i; j++) mx = fmax(mx, z[j]);
            for (int j = 0; j <= i; j++) sum += exp(z[j] - mx);
            for (int j = 0; j < T; j++) {
                if (j > i) assert_true(p[j] == 0.0f); /* exactly */
                else assert_true(fabs(p[j] - exp(z[j] - mx) / sum) < 1e-6);
            }
        }
    assert_gradcheck(g, weighted_loss(g, y));
    /* the exponential over a wide range: the last row of a (64, 64) matrix holds
     * scores 0, -0.5, ..., -31.5 (and a few far below), against exp in double */
    nb_graph *g2 = nb_graph_new();
    nb_tensor *w = nb_param(g2, 2, (int[]){64, 64});
    for (int j = 0; j < 64; j++) w->data[63 * 64 + j] = j < 60 ? -0.5f * (float)j + 3.0f : -90.0f - (float)j;
    nb_tensor *wy = nb_causal_softmax(g2, w);
    assert_non_null(wy);
    double wsum = 0;
    for (int j = 0; j < 64; j++) wsum += exp((double)w->data[63 * 64 + j] - 3.0);
    for (int j = 0; j < 64; j++) {
        double want = exp((double)w->data[63 * 64 + j] - 3.0) / wsum;
        float got = wy->data[63 * 64 + j];
        if (!(fabs(got - want) <= 1e-6 * want + 1e-37)) fail_msg("score %g: got %.9g, want %.9g", w->data[63 * 64 + j], got, want);
    }
    nb_graph_free(g2);
    /* masked scores are never read: +inf there changes nothing */
    s->data[1] = INFINITY;
    assert_int_equal(nb_forward(g), NB_OK);
    assert_true(y->data[0] == 1.0f && y->data[1] == 0.0f);
    nb_graph_free(g);
}

/* ---- bad input ---- */

/* NULL sources and graphs. */
static void test_bad_input(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *a = param(g, 3, (int[]){2, 3, 4}), *m = param(g, 2, (int[]){3, 4});
    /* NULL sources and graphs */
    assert_fails(g, nb_transpose(g, NULL, NULL), "transpose: input 0 is NULL");
    assert_fails(g, nb_slice(g, NULL, NULL, NULL, NULL), "slice: input 0 is NULL");
    assert_fails(g, nb_concat(g, 2, (nb_tensor *[]){a, NULL}, 0), "concat: input 1 is NULL");
    assert_fails(g, nb_concat(g, 0, NULL, 0), "concat: needs at least one input (got 0, xs NULL)");
    assert_fails(g, nb_broadcast_to(g, NULL, 1, (int[]){3}), "broadcast_to: input 0 is NULL");
    assert_fails(g, nb_gather(g, m, NULL), "gather: input 1 is NULL");
    assert_fails(g, nb_one_hot(g, NULL, 3), "one_hot: input 0 is NULL");
    assert_fails(g, nb_batch_matmul(g, NULL, m, false, false), "batch_matmul: input 0 is NULL");
    assert_fails(g, nb_layer_norm(g, NULL, NULL, NULL, 1e-3f), "layer_norm: input 0 is NULL");
    assert_fails(g, nb_dropout(g, NULL, 0.5f), "dropout: input 0 is NULL");
    assert_fails(g, nb_causal_softmax(g, NULL), "causal_softmax: input 0 is NULL");
    nb_tensor *out[2] = {a, a};
    assert_int_equal(nb_split(g, NULL, 0, 2, NULL, out), NB_ERR_ARG);
    assert_null(out[0]);
    assert_string_equal(nb_graph_error(g), "split: input 0 is NULL");
    nb_graph_clear_error(g);
    assert_null(nb_transpose(NULL, a, NULL));
    assert_null(nb_concat(NULL, 1, &a, 0));
    assert_null(nb_batch_matmul(NULL, a, a, false, false));
    assert_null(nb_layer_norm(NULL, a, NULL, NULL, 0.0f));
    assert_null(nb_dropout(NULL, a, 2.0f));
    /* a NULL source keeps the graph's first message */
    assert_null(nb_transpose(g, NULL, NULL));
    assert_null(nb_layer_norm(g, nb_transpose(g, NULL, NULL), NULL, NULL, 1e-3f));
    assert_null(nb_slice(g, NULL, NULL, NULL, NULL));
    assert_fails(g, nb_dropout(g, NULL, 0.5f), "transpose: input 0 is NULL");
    nb_graph_free(g);
}

/* Wrong dtypes, then bad permutations, axes and attributes. */
static void test_bad_types_and_attributes(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *a = param(g, 3, (int[]){2, 3, 4}), *m = param(g, 2, (int[]){3, 4});
    nb_tensor *iv = nb_input(g, NB_I32, 2, (int[]){2, 3}), *fv = nb_input(g, NB_F32, 1, (int[]){3});
    nb_tensor *out[2];
    assert_fails(g, nb_gather(g, iv, iv), "gather: needs an NB_F32 table and NB_I32 indices, got NB_I32 and NB_I32");
    assert_fails(g, nb_gather(g, m, fv), "gather: needs an NB_F32 table and NB_I32 indices, got NB_F32 and NB_F32");
    assert_fails(g, nb_one_hot(g, fv, 3), "one_hot: indices must be an NB_I32 tensor, got a float tensor");
    assert_fails(g, nb_batch_matmul(g, iv, m, false, false), "batch_matmul: inputs must be float tensors");
    assert_fails(g, nb_layer_norm(g, iv, NULL, NULL, 1e-3f), "layer_norm: inputs must be float tensors");
    assert_fails(g, nb_dropout(g, iv, 0.1f), "dropout: input must be a float tensor");
    assert_fails(g, nb_causal_softmax(g, iv), "causal_softmax: scores must be a float tensor");
    assert_fails(g, nb_broadcast_to(g, iv, 2, (int[]){2, 3}), "broadcast_to: input must be a float tensor");
    assert_fails(g, nb_concat(g, 2, (nb_tensor *[]){m, nb_input(g, NB_I32, 2, (int[]){3, 4})}, 0),
                 "concat: input 1 is int32, input 0 float (all inputs need one dtype)");
    /* bad permutations, axes, attributes */
    assert_fails(g, nb_transpose(g, a, (int[]){0, 0, 1}), "transpose: perm=[0,0,1] is not a permutation of the 3 axes of (2, 3, 4)");
    assert_fails(g, nb_transpose(g, a, (int[]){0, 3, 1}), "transpose: perm=[0,3,1] is not a permutation of the 3 axes of (2, 3, 4)");
    assert_fails(g, nb_slice(g, a, NULL, NULL, (int[]){1, 0, 1}), "slice: step 0 on axis 1 of (2, 3, 4) (need >= 1)");
    assert_fails(g, nb_slice(g, a, (int[]){0, 2, 0}, (int[]){2, 1, 4}, NULL),
                 "slice: axis 1 of (2, 3, 4) is empty from 2 to 1 (start 2, stop 1)");
    assert_fails(g, nb_slice(g, a, (int[]){0, 0, 5}, NULL, NULL), "slice: axis 2 of (2, 3, 4) is empty from 4 to 4 (start 5, stop end)");
    assert_fails(g, nb_concat(g, 2, (nb_tensor *[]){a, a}, 3), "concat: axis 3 is out of range for (2, 3, 4) (need -3..2)");
    assert_fails(g, nb_concat(g, 2, (nb_tensor *[]){a, m}, 0), "concat: input 1 (3, 4) does not fit input 0 (2, 3, 4) on axis 0");
    assert_fails(g, nb_concat(g, 2, (nb_tensor *[]){a, param(g, 3, (int[]){2, 4, 4})}, 2),
                 "concat: input 1 (2, 4, 4) does not fit input 0 (2, 3, 4) on axis 2");
    assert_int_equal(nb_split(g, a, -4, 2, NULL, out), NB_ERR_ARG);
    assert_fails(g, out[0], "split: axis -4 is out of range for (2, 3, 4) (need -3..2)");
    assert_int_equal(nb_split(g, a, 1, 2, NULL, out), NB_ERR_SHAPE);
    assert_fails(g, out[1], "split: axis 1 of (2, 3, 4) does not split into equal parts: 2");
    assert_int_equal(nb_split(g, a, 2, 2, (int[]){1, 2}, out), NB_ERR_SHAPE);
    assert_fails(g, out[0], "split: axis 2 of (2, 3, 4) does not split into sizes totalling 3");
    assert_int_equal(nb_split(g, a, 2, 2, (int[]){4, 0}, out), NB_ERR_ARG);
    assert_fails(g, out[0], "split: part 1 has size 0 (need >= 1)");
    assert_int_equal(nb_split(g, a, 2, 0, NULL, out), NB_ERR_ARG);
    assert_fails(g, NULL, "split: needs n >= 1 and an output array (got n 0)");
    assert_fails(g, nb_broadcast_to(g, m, 3, (int[]){2, 4, 4}), "broadcast_to: cannot broadcast (3, 4) to (2, 4, 4)");
    assert_fails(g, nb_broadcast_to(g, a, 2, (int[]){3, 4}), "broadcast_to: cannot broadcast (2, 3, 4) to (3, 4)");
    assert_fails(g, nb_broadcast_to(g, m, 2, (int[]){3, 0}), "broadcast_to: dimension 1 is 0 (need >= 1)");
    assert_fails(g, nb_broadcast_to(g, m, 7, (int[]){1, 1, 1, 1, 1, 3, 4}),
                 "broadcast_to: ndim must be 0..6 with a shape array (got ndim 7)");
    assert_fails(g, nb_one_hot(g, iv, 0), "one_hot: depth 0 (need >= 1)");
    assert_fails(g, nb_dropout(g, a, 1.0f), "dropout: rate 1 is outside [0, 1)");
    assert_fails(g, nb_dropout(g, a, -0.1f), "dropout: rate -0.1 is outside [0, 1)");
    assert_fails(g, nb_dropout(g, a, NAN), "dropout: rate nan is outside [0, 1)");
    assert_fails(g, nb_layer_norm(g, a, NULL, NULL, 0.0f), "layer_norm: epsilon 0 (need a finite value > 0)");
    nb_graph_free(g);
}

/* Shapes that do not fit, and out-of-range indices at build. */
static void test_bad_shapes(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *a = param(g, 3, (int[]){2, 3, 4}), *m = param(g, 2, (int[]){3, 4});
    nb_tensor *iv = nb_input(g, NB_I32, 2, (int[]){2, 3}), *fv = nb_input(g, NB_F32, 1, (int[]){3});
    assert_fails(g, nb_batch_matmul(g, a, m, false, false),
                 "batch_matmul: cannot multiply (2, 3, 4) by (3, 4) (need (..., M, K) and (..., K, N) with broadcastable batch axes)");
    assert_fails(g, nb_batch_matmul(g, a, param(g, 3, (int[]){3, 4, 2}), false, false),
                 "batch_matmul: cannot multiply (2, 3, 4) by (3, 4, 2) (need (..., M, K) and (..., K, N) with broadcastable batch axes)");
    assert_fails(g, nb_batch_matmul(g, a, m, true, true),
                 "batch_matmul: cannot multiply (2, 3, 4) transposed by (3, 4) transposed (need (..., M, K) and (..., K, N) with broadcastable batch axes)");
    assert_fails(g, nb_batch_matmul(g, fv, m, false, false),
                 "batch_matmul: cannot multiply (3,) by (3, 4) (need (..., M, K) and (..., K, N) with broadcastable batch axes)");
    assert_fails(g, nb_layer_norm(g, a, fv, NULL, 1e-3f), "layer_norm: gamma (3,) does not fit input (2, 3, 4) (need (4,))");
    assert_fails(g, nb_layer_norm(g, a, NULL, m, 1e-3f), "layer_norm: beta (3, 4) does not fit input (2, 3, 4) (need (4,))");
    assert_fails(g, nb_causal_softmax(g, a), "causal_softmax: scores (2, 3, 4) are not (..., T, T)");
    assert_fails(g, nb_causal_softmax(g, fv), "causal_softmax: scores (3,) are not (..., T, T)");
    assert_fails(g, nb_gather(g, m, nb_input(g, NB_I32, 6, (int[]){1, 1, 1, 1, 1, 2})),
                 "gather: table (3, 4) with indices (1, 1, 1, 1, 1, 2) (need a table of at least 1 axis and at most 6 axes in the result)");
    /* out-of-range index at build */
    iv->idata[4] = 3;
    assert_fails(g, nb_gather(g, m, iv), "gather: indices[1, 1] = 3 is outside the valid range [0, 3) of table (3, 4)");
    iv->idata[4] = -1;
    assert_fails(g, nb_gather(g, m, iv), "gather: indices[1, 1] = -1 is outside the valid range [0, 3) of table (3, 4)");
    nb_graph_free(g);
}

/* ---- the attributes as nb_graph_print shows them ---- */
static void test_print_attributes(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *x = param(g, 4, (int[]){2, 3, 4, 4});
    nb_tensor *t = nb_transpose(g, x, (int[]){0, 2, 1, 3});
    nb_tensor *s = nb_slice(g, t, (int[]){0, 1, 0, 0}, NULL, (int[]){1, 1, 2, 1});
    nb_tensor *c = nb_concat(g, 2, (nb_tensor *[]){s, s}, 1);
    nb_tensor *d = nb_dropout(g, nb_causal_softmax(g, x), 0.5f);
    nb_tensor *m = nb_batch_matmul(g, d, x, false, true);
    assert_non_null(c);
    assert_non_null(m);
    FILE *f = tmpfile();
    assert_non_null(f);
    nb_graph_print(g, f);
    rewind(f);
    char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    static const char *const want[] = {"transpose", "perm=[0,2,1,3]", "start=[0,1,0,0] stop=[end,end,end,end] step=[1,1,2,1]",
                                       "axis=1", "causal_softmax", "rate=0.5", "batch_matmul", "transpose_b"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(text, want[i])) fail_msg("nb_graph_print lacks \"%s\":\n%s", want[i], text);
    nb_graph_free(g);
}

/* ---- a small attention block: steady state allocates nothing ---- */
static void test_no_alloc_attention(void **state)
{
    (void)state;
    enum { B = 4, T = 6, V = 11, D = 8, H = 2 };
    nb_graph *g = nb_graph_new();
    nb_graph_set_training(g, true);
    nb_tensor *tok = nb_input(g, NB_I32, 2, (int[]){B, T});
    for (int i = 0; i < B * T; i++) tok->idata[i] = (i * 5) % V;
    nb_tensor *emb = param(g, 2, (int[]){V, D}), *wqkv = param(g, 2, (int[]){D, 3 * D});
    nb_tensor *gm = param(g, 1, (int[]){D}), *bt = param(g, 1, (int[]){D});
    nb_tensor *x = nb_layer_norm(g, nb_gather(g, emb, tok), gm, bt, NB_KERAS_LAYER_NORM_EPSILON);
    nb_tensor *qkv = nb_batch_matmul(g, x, wqkv, false, false); /* (B, T, 3D) */
    nb_tensor *parts[3];
    assert_int_equal(nb_split(g, qkv, -1, 3, NULL, parts), NB_OK);
    nb_tensor *heads[3];
    for (int i = 0; i < 3; i++) /* (B, T, H, D/H) -> (B, H, T, D/H) */
        heads[i] = nb_transpose(g, nb_reshape(g, parts[i], 4, (int[]){-1, T, H, D / H}), (int[]){0, 2, 1, 3});
    nb_tensor *att = nb_dropout(g, nb_causal_softmax(g, nb_batch_matmul(g, heads[0], heads[1], false, true)), 0.1f);
    nb_tensor *ctx = nb_transpose(g, nb_batch_matmul(g, att, heads[2], false, false), (int[]){0, 2, 1, 3});
    nb_tensor *y = nb_slice(g, nb_concat(g, 2, (nb_tensor *[]){ctx, ctx}, -1), (int[]){0, -1, 0, 0}, NULL, NULL);
    nb_tensor *loss = nb_sum(g, nb_mul(g, y, nb_broadcast_to(g, gm, 2, (int[]){1, D}))); /* a row of y's last axis */
    assert_non_null(loss);
    assert_gradcheck(g, loss);
    unsigned long before = nb_alloc_count();
    for (int step = 0; step < 5; step++) {
        int batch = B - step % 3;
        assert_int_equal(nb_input_set_batch(tok, batch), NB_OK);
        nb_zero_grad(g);
        assert_int_equal(nb_forward(g), NB_OK);
        assert_int_equal(nb_backward(g, loss), NB_OK);
    }
    assert_int_equal(nb_alloc_count() - before, 0);
    nb_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_transpose, setup),
        cmocka_unit_test_setup(test_slice, setup),
        cmocka_unit_test_setup(test_concat, setup),
        cmocka_unit_test_setup(test_split, setup),
        cmocka_unit_test_setup(test_broadcast_to, setup),
        cmocka_unit_test_setup(test_gather, setup),
        cmocka_unit_test_setup(test_one_hot, setup),
        cmocka_unit_test_setup(test_batch_matmul, setup),
        cmocka_unit_test_setup(test_batch_matmul_threads, setup),
        cmocka_unit_test_setup(test_layer_norm, setup),
        cmocka_unit_test_setup(test_dropout, setup),
        cmocka_unit_test_setup(test_dropout_gradient, setup),
        cmocka_unit_test_setup(test_causal_softmax, setup),
        cmocka_unit_test_setup(test_bad_input, setup),
        cmocka_unit_test_setup(test_bad_types_and_attributes, setup),
        cmocka_unit_test_setup(test_bad_shapes, setup),
        cmocka_unit_test_setup(test_print_attributes, setup),
        cmocka_unit_test_setup(test_no_alloc_attention, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
