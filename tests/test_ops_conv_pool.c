/* test_ops_conv_pool.c — the fused convolution + relu + max pooling node against
 * the pair it replaces (nb_max_pool2d of nb_conv2d_relu): values and the three
 * gradients over convolution and pooling options, on 1 and 2 threads and with
 * images large enough to go a chunk at a time; finite-difference checks; a
 * window whose maximum is 0; bad arguments; the description. */
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

typedef struct fuse_case {
    int B, H, W, C, O, KH, KW, st;
    nb_padding pad;
    nb_pool_window pool;
    bool bias;
} fuse_case;

static const fuse_case cases[] = {
    {2, 8, 8, 1, 4, 3, 3, 1, NB_PAD_VALID, {2, 2, 2, 2, NB_PAD_VALID}, true},
    {2, 7, 9, 3, 4, 2, 3, 2, NB_PAD_SAME, {2, 2, 2, 2, NB_PAD_SAME}, false},
    {3, 6, 5, 2, 3, 3, 3, 1, NB_PAD_SAME, {3, 3, 1, 1, NB_PAD_SAME}, true},
    {2, 6, 6, 4, 5, 1, 1, 1, NB_PAD_VALID, {3, 2, 2, 1, NB_PAD_VALID}, true},  /* pointwise convolution */
    {2, 11, 13, 2, 3, 3, 3, 1, NB_PAD_VALID, {2, 2, 2, 2, NB_PAD_VALID}, true}, /* windows miss the last row, column */
    {2, 9, 10, 2, 3, 2, 2, 1, NB_PAD_VALID, {2, 2, 3, 3, NB_PAD_VALID}, false}, /* gaps between windows */
    {5, 40, 40, 3, 8, 3, 3, 1, NB_PAD_SAME, {2, 2, 2, 2, NB_PAD_VALID}, true}, /* one image per chunk */
};
#define N_CASES (sizeof cases / sizeof cases[0])

typedef struct run {
    nb_graph *g;
    nb_tensor *x, *k, *b, *y, *loss;
} run;

/* The case on a fresh graph, fused or as the pair, with the same values (seeded). */
static run build(const fuse_case *c, bool fused)
{
    run r = {.g = nb_graph_new()};
    nb_rng_seed(&rng, 11);
    r.x = nb_param(r.g, 4, (int[]){c->B, c->H, c->W, c->C});
    r.k = nb_param(r.g, 4, (int[]){c->KH, c->KW, c->C, c->O});
    r.b = c->bias ? nb_param(r.g, 1, (int[]){c->O}) : NULL;
    fill(r.x, -1, 1), fill(r.k, -1, 1);
    if (r.b) fill(r.b, -0.3f, 0.3f);
    const nb_pool_window *p = &c->pool;
    r.y = fused ? nb_conv2d_relu_max_pool2d(r.g, r.x, r.k, r.b, c->st, c->st, c->pad, *p)
                : nb_max_pool2d(r.g, nb_conv2d_relu(r.g, r.x, r.k, r.b, c->st, c->st, c->pad, 1, 1), p->pool_h,
                                p->pool_w, p->stride_h, p->stride_w, p->padding);
    if (!r.y) fail_msg("build: %s", nb_graph_error(r.g));
    r.loss = weighted_loss(r.g, r.y);
    assert_int_equal(nb_forward(r.g), NB_OK);
    nb_zero_grad(r.g);
    assert_int_equal(nb_backward(r.g, r.loss), NB_OK);
    return r;
}

static void assert_close(const char *what, const nb_tensor *got, const nb_tensor *want, bool grad)
{
    assert_int_equal(got->size, want->size);
    const float *a = grad ? got->grad : got->data, *b = grad ? want->grad : want->data;
    for (size_t i = 0; i < got->size; i++)
        if (!(fabsf(a[i] - b[i]) <= 1e-5f * fmaxf(1.0f, fabsf(b[i]))))
            fail_msg("%s element %zu: fused %.7g, pair %.7g", what, i, a[i], b[i]);
}

/* Values and gradients equal the pair's, on 1 and 2 threads. */
static void test_equals_pair(void **state)
{
    (void)state;
    for (int threads = 1; threads <= 2; threads++) {
        nb_set_num_threads(threads);
        for (size_t i = 0; i < N_CASES; i++) {
            run f = build(&cases[i], true), p = build(&cases[i], false);
            for (int d = 0; d < 4; d++) assert_int_equal(f.y->shape[d], p.y->shape[d]);
            assert_close("y", f.y, p.y, false);
            assert_close("dx", f.x, p.x, true);
            assert_close("dkernel", f.k, p.k, true);
            if (f.b) assert_close("dbias", f.b, p.b, true);
            nb_graph_free(f.g), nb_graph_free(p.g);
        }
    }
    nb_set_num_threads(1);
}

/* Finite differences over x, kernel and bias for the small cases (their seeded
 * values keep every window's maximum and every output further than the step
 * from a tie or from 0, where the pair is not differentiable). */
static void test_gradcheck(void **state)
{
    (void)state;
    for (size_t i = 0; i + 1 < N_CASES; i++) {
        run f = build(&cases[i], true);
        assert_gradcheck(f.g, f.loss);
        nb_graph_free(f.g);
    }
}

/* A window whose convolution output is all <= 0 pools to 0 and passes no gradient. */
static void test_zero_window(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *x = nb_param(g, 4, (int[]){1, 4, 4, 1}), *k = nb_param(g, 4, (int[]){1, 1, 1, 1});
    for (int i = 0; i < 16; i++) x->data[i] = i < 8 ? -1.0f - (float)i : 1.0f + (float)i; /* top half negative */
    k->data[0] = 1.0f;
    nb_tensor *y = nb_conv2d_relu_max_pool2d(g, x, k, NULL, 1, 1, NB_PAD_VALID, (nb_pool_window){2, 2, 2, 2, NB_PAD_VALID});
    assert_non_null(y);
    nb_tensor *loss = nb_sum(g, y);
    assert_int_equal(nb_forward(g), NB_OK);
    const float want[4] = {0, 0, 14, 16};
    for (int i = 0; i < 4; i++) assert_float_equal(y->data[i], want[i], 0);
    nb_zero_grad(g);
    assert_int_equal(nb_backward(g, loss), NB_OK);
    for (int i = 0; i < 8; i++) assert_float_equal(x->grad[i], 0, 0);
    assert_float_equal(x->grad[13], 1, 0); /* 14 = x[13], the maximum of the bottom-left window */
    assert_float_equal(k->grad[0], 14 + 16, 1e-6);
    nb_graph_free(g);
}

static void test_bad_input_and_describe(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *x = nb_input(g, NB_F32, 4, (int[]){1, 5, 5, 2}), *k = nb_param(g, 4, (int[]){3, 3, 2, 4});
    nb_pool_window ok = {2, 2, 2, 2, NB_PAD_VALID};
    assert_null(nb_conv2d_relu_max_pool2d(g, x, k, NULL, 0, 1, NB_PAD_VALID, ok));
    assert_int_equal(nb_graph_status(g), NB_ERR_ARG);
    nb_graph_free(g);
    g = nb_graph_new();
    x = nb_input(g, NB_F32, 4, (int[]){1, 5, 5, 2}), k = nb_param(g, 4, (int[]){3, 3, 2, 4});
    assert_null(nb_conv2d_relu_max_pool2d(g, x, k, NULL, 1, 1, NB_PAD_VALID, (nb_pool_window){0, 2, 2, 2, NB_PAD_VALID}));
    assert_int_equal(nb_graph_status(g), NB_ERR_ARG);
    nb_graph_free(g);
    g = nb_graph_new(); /* a 3x3 output cannot hold a 4x4 valid window */
    x = nb_input(g, NB_F32, 4, (int[]){1, 5, 5, 2}), k = nb_param(g, 4, (int[]){3, 3, 2, 4});
    assert_null(nb_conv2d_relu_max_pool2d(g, x, k, NULL, 1, 1, NB_PAD_VALID, (nb_pool_window){4, 4, 1, 1, NB_PAD_VALID}));
    assert_int_equal(nb_graph_status(g), NB_ERR_SHAPE);
    nb_graph_free(g);
    g = nb_graph_new();
    x = nb_input(g, NB_F32, 4, (int[]){1, 5, 5, 3}), k = nb_param(g, 4, (int[]){3, 3, 2, 4});
    assert_null(nb_conv2d_relu_max_pool2d(g, x, k, NULL, 1, 1, NB_PAD_VALID, ok)); /* channels differ */
    assert_int_equal(nb_graph_status(g), NB_ERR_SHAPE);
    nb_graph_free(g);
    g = nb_graph_new();
    x = nb_input(g, NB_F32, 4, (int[]){1, 6, 6, 2}), k = nb_param(g, 4, (int[]){3, 3, 2, 4});
    nb_tensor *y = nb_conv2d_relu_max_pool2d(g, x, k, NULL, 1, 1, NB_PAD_VALID, ok);
    assert_non_null(y);
    assert_int_equal(y->shape[1], 2);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    nb_graph_print(g, f);
    fclose(f);
    if (!strstr(buf, "3x3 stride 1 valid relu, pool 2x2 stride 2 valid")) fail_msg("print lacks the description:\n%s", buf);
    free(buf);
    nb_graph_free(g);
}

/* Steps after the first allocate nothing, at two batch sizes. */
static void test_no_alloc(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *x = nb_input(g, NB_F32, 4, (int[]){4, 12, 12, 2}), *k = nb_param(g, 4, (int[]){3, 3, 2, 4});
    fill(x, -1, 1), fill(k, -1, 1);
    nb_tensor *y = nb_conv2d_relu_max_pool2d(g, x, k, NULL, 1, 1, NB_PAD_VALID, (nb_pool_window){2, 2, 2, 2, NB_PAD_VALID});
    nb_tensor *loss = nb_sum(g, y);
    assert_int_equal(nb_forward(g), NB_OK);
    assert_int_equal(nb_backward(g, loss), NB_OK);
    size_t before = nb_alloc_count();
    for (int step = 0; step < 4; step++) {
        assert_int_equal(nb_input_set_batch(x, step < 2 ? 4 : 2), NB_OK);
        nb_zero_grad(g);
        assert_int_equal(nb_forward(g), NB_OK);
        assert_int_equal(nb_backward(g, loss), NB_OK);
    }
    assert_int_equal(nb_alloc_count() - before, 0);
    nb_graph_free(g);
}

int main(void)
{
    nb_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equals_pair),         cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_zero_window),         cmocka_unit_test(test_bad_input_and_describe),
        cmocka_unit_test(test_no_alloc),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    bli_finalize();
    return failed;
}
