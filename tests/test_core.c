/* test_core.c — the graph engine: shapes, ownership, forward re-runs, backward,
 * accumulation, diamonds, batch changes, errors, allocation, RNG, gradcheck. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <nabla/nabla.h>
#include "nb_blis.h"

/* A local op: the sum of all elements, written against nb_plugin.h only, so the core
 * is tested without depending on ops/ beyond add and mul. */
static nb_status total_shape(nb_tensor *t) { t->ndim = 0; return NB_OK; }
static nb_status total_forward(nb_tensor *t)
{
    double s = 0;
    for (size_t i = 0; i < t->src[0]->size; i++) s += t->src[0]->data[i];
    t->data[0] = (float)s;
    return NB_OK;
}
static void total_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0];
    if (a->grad)
        for (size_t i = 0; i < a->size; i++) a->grad[i] += t->grad[0];
}
static const nb_op total_op = {.name = "total", .n_src = 1, .shape = total_shape, .forward = total_forward, .backward = total_backward};
static nb_tensor *total(nb_graph *g, nb_tensor *a) { return nb_node(g, &total_op, (nb_tensor *[]){a}, 1, NULL, 0); }

static void test_shapes_and_ownership(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    assert_non_null(g);
    nb_tensor *x = nb_input(g, NB_F32, 2, (int[]){4, 3});
    nb_tensor *w = nb_param(g, 1, (int[]){3});
    nb_tensor *lab = nb_input(g, NB_I32, 1, (int[]){4});
    assert_non_null(x);
    assert_non_null(w);
    assert_non_null(lab);
    assert_int_equal(x->size, 12);
    assert_non_null(x->data);
    assert_null(x->grad); /* inputs keep no gradient */
    assert_non_null(w->grad);
    assert_null(lab->data);
    assert_non_null(lab->idata);
    assert_true(x->flags & NB_FLAG_INPUT);
    assert_true(w->flags & NB_FLAG_PARAM);
    nb_tensor *y = nb_add(g, x, w); /* row broadcast */
    assert_non_null(y);
    assert_int_equal(y->ndim, 2);
    assert_int_equal(y->shape[0], 4);
    assert_int_equal(y->shape[1], 3);
    assert_ptr_equal(y->src[0], x);
    assert_ptr_equal(y->src[1], w);
    assert_ptr_equal(y->graph, g);
    assert_int_equal(nb_graph_size(g), 4);
    assert_ptr_equal(nb_graph_node(g, 3), y);
    assert_null(nb_graph_node(g, 4));
    assert_true(y->flags & NB_FLAG_NEEDS_GRAD);
    nb_tensor *xx = nb_mul(g, x, x); /* no parameter involved: no gradient buffer */
    assert_null(xx->grad);
    char buf[64];
    assert_string_equal(nb_shape_str(y, buf, sizeof buf), "(4, 3)");
    assert_string_equal(nb_shape_str(w, buf, sizeof buf), "(3,)");
    nb_graph_free(g);
    nb_graph_free(NULL);
}

static void test_eager_and_rerun(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *x = nb_input(g, NB_F32, 2, (int[]){1, 2});
    nb_tensor *w = nb_param(g, 1, (int[]){2});
    x->data[0] = 1, x->data[1] = 2;
    w->data[0] = 3, w->data[1] = 4;
    nb_tensor *y = total(g, nb_mul(g, x, w));
    assert_float_equal(y->data[0], 11.0f, 0); /* evaluated when built */
    x->data[0] = 10;
    assert_int_equal(nb_forward(g), NB_OK);
    assert_float_equal(y->data[0], 38.0f, 0);
    nb_graph_free(g);
}

static void test_backward_accumulates(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *x = nb_input(g, NB_F32, 2, (int[]){1, 2});
    nb_tensor *w = nb_param(g, 1, (int[]){2});
    x->data[0] = 1, x->data[1] = 2;
    w->data[0] = 3, w->data[1] = 4;
    nb_tensor *loss = total(g, nb_mul(g, x, w));
    assert_int_equal(nb_backward(g, loss), NB_OK);
    assert_float_equal(w->grad[0], 1.0f, 0);
    assert_float_equal(w->grad[1], 2.0f, 0);
    assert_int_equal(nb_backward(g, loss), NB_OK); /* accumulates */
    assert_float_equal(w->grad[0], 2.0f, 0);
    assert_float_equal(w->grad[1], 4.0f, 0);
    nb_zero_grad(g);
    assert_float_equal(w->grad[0], 0.0f, 0);
    assert_int_equal(nb_backward(g, loss), NB_OK); /* intermediates restart from zero */
    assert_float_equal(w->grad[1], 2.0f, 0);
    nb_graph_free(g);
}

static void test_diamond(void **state)
{
    (void)state;
    /* y = a*b + a*c with b = a, c = a + a: f(a) = a^2 + 2a^2 = 3a^2, df/da = 6a */
    nb_graph *g = nb_graph_new();
    nb_tensor *a = nb_param(g, 1, (int[]){1});
    a->data[0] = 1.5f;
    nb_tensor *c = nb_add(g, a, a);
    nb_tensor *y = total(g, nb_add(g, nb_mul(g, a, a), nb_mul(g, a, c)));
    assert_float_equal(y->data[0], 3 * 1.5f * 1.5f, 1e-6);
    assert_int_equal(nb_backward(g, y), NB_OK);
    assert_float_equal(a->grad[0], 6 * 1.5f, 1e-6);
    nb_graph_free(g);
}

static void test_batch_change(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *x = nb_input(g, NB_F32, 2, (int[]){4, 2});
    nb_tensor *b = nb_param(g, 1, (int[]){2});
    b->data[0] = 1, b->data[1] = -1;
    nb_tensor *y = nb_add(g, x, b);
    nb_tensor *loss = total(g, nb_mul(g, y, y));
    float rows[3][2] = {{1, 2}, {3, 4}, {5, 6}};
    assert_int_equal(nb_input_set(x, rows, 3), NB_OK);
    assert_int_equal(nb_forward(g), NB_OK);
    assert_int_equal(y->shape[0], 3);
    assert_int_equal(y->size, 6);
    /* (2^2 + 1^2) + (4^2 + 3^2) + (6^2 + 5^2) = 91 */
    assert_float_equal(loss->data[0], 91.0f, 0);
    nb_zero_grad(g);
    assert_int_equal(nb_backward(g, loss), NB_OK);
    assert_float_equal(b->grad[0], 2 * (2 + 4 + 6), 0);
    assert_float_equal(b->grad[1], 2 * (1 + 3 + 5), 0);
    /* growing past the first size reallocates and still works */
    float big[8][2] = {{0}};
    assert_int_equal(nb_input_set(x, big, 8), NB_OK);
    assert_int_equal(nb_forward(g), NB_OK);
    assert_float_equal(loss->data[0], 8 * 2, 0);
    assert_int_equal(nb_input_set_batch(x, 0), NB_ERR_ARG);
    assert_int_equal(nb_input_set_batch(b, 2), NB_ERR_ARG); /* not an input */
    nb_graph_free(g);
}

static void test_errors_propagate(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *x = nb_input(g, NB_F32, 2, (int[]){4, 3});
    nb_tensor *w = nb_param(g, 2, (int[]){2, 5});
    assert_null(nb_graph_error(g));
    nb_tensor *bad = nb_add(g, x, w);
    assert_null(bad);
    const char *want = "add: shapes (4, 3) and (2, 5) do not broadcast (sizes 3 and 5 at axis -1)";
    assert_string_equal(nb_graph_error(g), want);
    assert_string_equal(nb_last_error(), want);
    /* NULLs propagate and the first message is kept */
    nb_tensor *y = total(g, nb_mul(g, bad, x));
    assert_null(y);
    assert_string_equal(nb_graph_error(g), want);
    int n = nb_graph_size(g);
    assert_int_equal(n, 2); /* failed nodes are not added */
    nb_graph_clear_error(g);
    assert_null(nb_graph_error(g));
    assert_null(nb_mul(g, NULL, x));
    assert_string_equal(nb_graph_error(g), "mul: input 0 is NULL");
    /* bad leaves */
    nb_graph_clear_error(g);
    assert_null(nb_input(g, NB_F32, 2, (int[]){0, 3}));
    assert_string_equal(nb_graph_error(g), "nb_input: every dimension must be >= 1 (total below 2^31), got (0, 3)");
    assert_null(nb_param(g, NB_MAX_DIMS + 1, (int[]){1, 1, 1, 1, 1, 1, 1}));
    assert_null(nb_input(NULL, NB_F32, 1, (int[]){1}));
    assert_null(nb_input(g, NB_F32, 2, NULL));
    /* tensors from another graph */
    nb_graph *h = nb_graph_new();
    nb_tensor *other = nb_param(h, 1, (int[]){3});
    nb_graph_clear_error(g);
    assert_null(nb_add(g, x, other));
    assert_string_equal(nb_graph_error(g), "add: input 1 belongs to another graph");
    /* backward needs a scalar loss of this graph */
    assert_int_equal(nb_backward(g, x), NB_ERR_ARG);
    assert_string_equal(nb_last_error(),
                        "nb_backward: loss must be a single float, got shape (4, 3) (reduce it with nb_sum or nb_mean)");
    assert_int_equal(nb_backward(g, other), NB_ERR_ARG);
    assert_int_equal(nb_backward(g, NULL), NB_ERR_ARG);
    assert_int_equal(nb_forward(NULL), NB_ERR_ARG);
    /* a batch change that breaks a shape rule is reported by forward */
    nb_tensor *x2 = nb_input(g, NB_F32, 2, (int[]){4, 3});
    assert_non_null(nb_add(g, x, x2));
    assert_int_equal(nb_input_set_batch(x, 2), NB_OK);
    assert_int_equal(nb_forward(g), NB_ERR_SHAPE);
    assert_non_null(strstr(nb_last_error(), "add: shapes (2, 3) and (4, 3)"));
    nb_graph_free(h);
    nb_graph_free(g);
}

static void test_no_allocation_in_steady_state(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *x = nb_input(g, NB_F32, 2, (int[]){32, 8});
    nb_tensor *w = nb_param(g, 1, (int[]){8});
    nb_tensor *loss = total(g, nb_mul(g, nb_add(g, x, w), w));
    assert_int_equal(nb_graph_pack_params(g), NB_OK);
    assert_int_equal(nb_forward(g), NB_OK);
    assert_int_equal(nb_backward(g, loss), NB_OK);
    unsigned long before = nb_alloc_count();
    for (int step = 0; step < 10; step++) {
        assert_int_equal(nb_input_set_batch(x, step % 2 ? 32 : 7), NB_OK);
        nb_zero_grad(g);
        assert_int_equal(nb_forward(g), NB_OK);
        assert_int_equal(nb_backward(g, loss), NB_OK);
    }
    assert_int_equal(nb_alloc_count(), before);
    nb_graph_free(g);
}

static void test_pack_params(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *a = nb_param(g, 1, (int[]){3});
    nb_tensor *x = nb_input(g, NB_F32, 2, (int[]){1, 2});
    nb_tensor *b = nb_param(g, 2, (int[]){1, 2});
    for (int i = 0; i < 3; i++) a->data[i] = (float)i;
    b->data[0] = 7, b->data[1] = 8;
    x->data[0] = 1, x->data[1] = 1;
    nb_tensor *loss = total(g, nb_add(g, nb_mul(g, x, b), total(g, a)));
    assert_null(nb_graph_param_data(g));
    assert_int_equal(nb_graph_pack_params(g), NB_OK);
    assert_int_equal(nb_graph_param_count(g), 5);
    float *p = nb_graph_param_data(g);
    assert_ptr_equal(a->data, p);
    assert_ptr_equal(b->data, p + 3);
    assert_float_equal(p[4], 8, 0);
    assert_int_equal(nb_forward(g), NB_OK);
    assert_float_equal(loss->data[0], 7 + 8 + 2 * 3, 0);
    assert_int_equal(nb_backward(g, loss), NB_OK);
    float *gp = nb_graph_param_grad(g);
    assert_float_equal(gp[0], 2, 0); /* total(a) is added to both columns */
    assert_float_equal(gp[3], 1, 0);
    assert_int_equal(nb_graph_pack_params(g), NB_OK); /* again: still consistent */
    assert_float_equal(b->data[1], 8, 0);
    nb_graph_free(g);
}

static void test_rng_pinned(void **state)
{
    (void)state;
    /* the PCG32 reference demo (pcg32-demo, seed 42, stream 54) prints these first values */
    nb_rng r;
    nb_rng_seed(&r, 42);
    assert_int_equal(nb_rng_u32(&r), 0xa15c02b7u);
    assert_int_equal(nb_rng_u32(&r), 0x7b47f409u);
    assert_int_equal(nb_rng_u32(&r), 0xba1d3330u);
    nb_rng a, b;
    nb_rng_seed(&a, 7);
    nb_rng_seed(&b, 7);
    for (int i = 0; i < 1000; i++) {
        float u = nb_rng_uniform(&a);
        assert_true(u >= 0 && u < 1);
        assert_true(u == nb_rng_uniform(&b));
    }
    double sum = 0, sq = 0;
    for (int i = 0; i < 20000; i++) {
        float z = nb_rng_normal(&a);
        sum += z;
        sq += (double)z * z;
    }
    assert_true(sum / 20000 < 0.05 && sum / 20000 > -0.05);
    assert_true(sq / 20000 > 0.95 && sq / 20000 < 1.05);
    for (int i = 0; i < 1000; i++) assert_true(nb_rng_below(&a, 10) < 10);
    int32_t idx[10];
    for (int i = 0; i < 10; i++) idx[i] = i;
    nb_rng_shuffle(&a, idx, 10);
    int seen = 0;
    for (int i = 0; i < 10; i++) seen |= 1 << idx[i];
    assert_int_equal(seen, 0x3ff);
}

static void test_gradcheck_composite(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_rng r;
    nb_rng_seed(&r, 1);
    nb_tensor *x = nb_input(g, NB_F32, 2, (int[]){3, 4});
    nb_tensor *w = nb_param(g, 2, (int[]){3, 4});
    nb_tensor *b = nb_param(g, 1, (int[]){4});
    for (size_t i = 0; i < x->size; i++) x->data[i] = nb_rng_uniform_range(&r, -1, 1);
    for (size_t i = 0; i < w->size; i++) w->data[i] = nb_rng_uniform_range(&r, -1, 1);
    for (size_t i = 0; i < b->size; i++) b->data[i] = nb_rng_uniform_range(&r, -1, 1);
    /* sum(((x*w + b) * w - x) * 0.5) */
    nb_tensor *h = nb_add(g, nb_mul(g, x, w), b);
    nb_tensor *loss = total(g, nb_scale(g, nb_sub(g, nb_mul(g, h, w), x), 0.5f));
    assert_non_null(loss);
    double err;
    assert_int_equal(nb_gradcheck(g, loss, NULL, 0, 1e-3f, &err), NB_OK);
    assert_true(err >= 0 && err < 1e-2);
    nb_graph_free(g);
}

static void test_print_and_dot(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *w = nb_set_name(nb_param(g, 1, (int[]){2}), "w");
    nb_tensor *loss = nb_set_name(total(g, nb_mul(g, w, w)), "loss");
    nb_backward(g, loss);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    nb_graph_print(g, f);
    assert_int_equal(nb_graph_dot(g, f, NB_DOT_VALUES | NB_DOT_GRADS), NB_OK);
    fclose(f);
    assert_non_null(strstr(buf, "total"));
    assert_non_null(strstr(buf, "digraph nabla"));
    assert_non_null(strstr(buf, "n0 -> n1"));
    free(buf);
    w->data[0] = 0.0f / 0.0f;
    nb_forward(g);
    assert_int_equal(nb_check_numerics(g), NB_ERR_NUMERIC);
    assert_non_null(strstr(nb_last_error(), "node 0 (param w, shape (2,)) holds NaN at element 0"));
    nb_graph_free(g);
}

/* nb_sgemm against a plain triple loop, on shapes that split by rows, by columns
 * and not at all, with odd sizes, strides of transposed operands and beta 0 / 1,
 * for one to three threads. */
static void test_sgemm_threads(void **state)
{
    (void)state;
    static const int shapes[][3] = {{37, 300, 129}, {300, 37, 129}, {5, 7, 3}, {64, 512, 40}, {513, 17, 77}};
    nb_rng r;
    nb_rng_seed(&r, 3);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n);
        float *c = malloc(sizeof(float) * m * n), *want = malloc(sizeof(float) * m * n);
        for (int i = 0; i < m * k; i++) a[i] = nb_rng_uniform_range(&r, -1, 1);
        for (int i = 0; i < k * n; i++) b[i] = nb_rng_uniform_range(&r, -1, 1);
        for (int threads = 1; threads <= 3; threads++) {
            nb_set_num_threads(threads);
            assert_int_equal(nb_get_num_threads(), threads);
            for (int transposed = 0; transposed < 2; transposed++) {
                for (int i = 0; i < m * n; i++) c[i] = want[i] = 0.5f;
                for (int beta = 0; beta < 2; beta++) {
                    /* a is (m, k) row-major; "transposed" reads b as the transpose
                     * of a (n, k) row-major buffer, i.e. strides (1, k) */
                    for (int i = 0; i < m; i++)
                        for (int j = 0; j < n; j++) {
                            double acc = 0;
                            for (int q = 0; q < k; q++)
                                acc += (double)a[i * k + q] * (transposed ? b[j * k + q] : b[q * n + j]);
                            want[i * n + j] = (float)(acc + (beta ? want[i * n + j] : 0.0));
                        }
                    if (transposed) nb_sgemm(m, n, k, a, k, 1, b, 1, k, (float)beta, c, n);
                    else nb_sgemm(m, n, k, a, k, 1, b, n, 1, (float)beta, c, n);
                    for (int i = 0; i < m * n; i++) assert_float_equal(c[i], want[i], 1e-4 * (1 + k));
                }
            }
        }
        free(a), free(b), free(c), free(want);
    }
    nb_set_num_threads(1);
}

static void add_part(void *ctx, int part, int parts)
{
    int *hits = ctx;
    size_t lo, hi;
    nb_split_range(1000, part, parts, 16, &lo, &hi);
    assert_true(lo % 16 == 0);
    for (size_t i = lo; i < hi; i++) hits[i]++;
}

static void test_parallel_for(void **state)
{
    (void)state;
    static int hits[1000];
    for (int threads = 1; threads <= 4; threads++) {
        nb_set_num_threads(threads);
        for (int parts = 1; parts <= 7; parts++) {
            memset(hits, 0, sizeof hits);
            for (int rep = 0; rep < 50; rep++) nb_parallel_for(parts, add_part, hits);
            for (int i = 0; i < 1000; i++) assert_int_equal(hits[i], 50); /* every item once per call */
        }
    }
    nb_set_num_threads(0); /* below 1 means 1 */
    assert_int_equal(nb_get_num_threads(), 1);
    /* more parts than aligned blocks: the parts still tile [0, n), some empty */
    size_t covered = 0, empty = 0;
    for (int p = 0; p < 4; p++) {
        size_t lo, hi;
        nb_split_range(10, p, 4, 16, &lo, &hi);
        assert_int_equal(lo, covered);
        covered = hi;
        empty += lo == hi;
    }
    assert_int_equal(covered, 10);
    assert_int_equal(empty, 3);
}

static void test_profile(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *w = nb_param(g, 1, (int[]){4});
    nb_tensor *loss = total(g, nb_mul(g, w, w));
    nb_profile_reset();
    nb_profile_enable(true);
    for (int i = 0; i < 3; i++) {
        nb_forward(g);
        nb_backward(g, loss);
    }
    nb_profile_enable(false);
    nb_forward(g); /* not counted */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(nb_profile_print(f), 2); /* mul and total */
    fclose(f);
    assert_non_null(strstr(buf, "mul"));
    assert_non_null(strstr(buf, "total"));
    assert_non_null(strstr(buf, " 3 ")); /* three forward calls each */
    free(buf);
    nb_graph_free(g);
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(nb_status_name(NB_OK), "NB_OK");
    assert_string_equal(nb_status_name(NB_ERR_LABEL), "NB_ERR_LABEL");
    assert_string_equal(nb_status_name((nb_status)99), "NB_ERR_UNKNOWN");
    nb_fail(NB_ERR_IO, "x %d", 3);
    assert_string_equal(nb_last_error(), "x 3");
    nb_clear_error();
    assert_string_equal(nb_last_error(), "");
}

/* The backward hook: called for every node from the loss down to 0, after that
 * node's backward; a parameter's gradient is final once the hook has reached its
 * earliest consumer. */
typedef struct hook_log {
    int ids[16];
    int n;
    nb_tensor *w1;     /* its final gradient is seen at its earliest consumer */
    int w1_first_use;
    float w1_grad_at_use;
} hook_log;

static void log_hook(void *ctx, int node_id)
{
    hook_log *h = ctx;
    if (h->n < 16) h->ids[h->n++] = node_id;
    if (node_id == h->w1_first_use) h->w1_grad_at_use = h->w1->grad[0];
}

static void test_backward_hook(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *x = nb_input(g, NB_F32, 1, (int[]){1});    /* 0 */
    nb_tensor *w1 = nb_param(g, 1, (int[]){1});           /* 1 */
    nb_tensor *h = nb_mul(g, x, w1);                      /* 2: first use of w1 */
    nb_tensor *w2 = nb_param(g, 1, (int[]){1});           /* 3 */
    nb_tensor *y = nb_mul(g, nb_add(g, h, w2), w1);       /* 4, 5: w1 used again */
    nb_tensor *loss = total(g, y);                        /* 6 */
    x->data[0] = 2, w1->data[0] = 3, w2->data[0] = 5;
    assert_int_equal(nb_forward(g), NB_OK);
    hook_log log = {.w1 = w1, .w1_first_use = h->id, .w1_grad_at_use = -1};
    nb_graph_set_backward_hook(g, log_hook, &log);
    assert_int_equal(nb_backward(g, loss), NB_OK);
    assert_int_equal(log.n, 7);
    for (int i = 0; i < 7; i++) assert_int_equal(log.ids[i], 6 - i);
    /* loss = (x w1 + w2) w1: d/dw1 = 2 x w1 + w2 = 17, complete at node 2 */
    assert_float_equal(w1->grad[0], 17.0f, 1e-6);
    assert_float_equal(log.w1_grad_at_use, 17.0f, 1e-6);
    nb_graph_set_backward_hook(g, NULL, &log); /* removed: no more calls */
    assert_int_equal(nb_backward(g, loss), NB_OK);
    assert_int_equal(log.n, 7);
    nb_graph_set_backward_hook(NULL, log_hook, &log); /* a NULL graph is a no-op */
    nb_graph_free(g);
}

/* An input reading the caller's rows in place gives what a copy gives, and
 * gets its own buffer back on release or on the next set. */
static void test_input_borrow(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *x = nb_input(g, NB_F32, 2, (int[]){1, 3});
    nb_tensor *w = nb_param(g, 2, (int[]){3, 2});
    for (int i = 0; i < 6; i++) w->data[i] = (float)(i + 1);
    nb_tensor *y = nb_matmul(g, x, w);
    float rows[12] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1};
    assert_int_equal(nb_input_borrow(x, rows, 4), NB_OK);
    assert_ptr_equal(x->data, rows);
    assert_int_equal(nb_forward(g), NB_OK);
    float want[8] = {1, 2, 3, 4, 5, 6, 9, 12};
    assert_memory_equal(y->data, want, sizeof want);
    nb_input_release(x);
    assert_ptr_not_equal(x->data, rows);
    assert_true(x->shape[0] >= 1 && x->size <= x->cap);
    assert_int_equal(nb_input_borrow(x, rows, 4), NB_OK);
    assert_int_equal(nb_input_set(x, rows, 2), NB_OK); /* a set copies into the own buffer */
    assert_ptr_not_equal(x->data, rows);
    assert_int_equal(nb_forward(g), NB_OK);
    assert_memory_equal(y->data, want, 4 * sizeof(float));
    nb_tensor *ids = nb_input(g, NB_I32, 1, (int[]){2});
    assert_int_equal(nb_input_borrow(ids, rows, 2), NB_ERR_ARG);
    assert_int_equal(nb_input_borrow(w, rows, 2), NB_ERR_ARG);
    assert_int_equal(nb_input_borrow(x, NULL, 2), NB_ERR_ARG);
    assert_int_equal(nb_input_borrow(x, rows, 4), NB_OK);
    nb_graph_free(g); /* frees the own buffer, never the caller's */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes_and_ownership),
        cmocka_unit_test(test_eager_and_rerun),
        cmocka_unit_test(test_backward_accumulates),
        cmocka_unit_test(test_diamond),
        cmocka_unit_test(test_batch_change),
        cmocka_unit_test(test_errors_propagate),
        cmocka_unit_test(test_no_allocation_in_steady_state),
        cmocka_unit_test(test_pack_params),
        cmocka_unit_test(test_rng_pinned),
        cmocka_unit_test(test_gradcheck_composite),
        cmocka_unit_test(test_print_and_dot),
        cmocka_unit_test(test_sgemm_threads),
        cmocka_unit_test(test_parallel_for),
        cmocka_unit_test(test_profile),
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_backward_hook),
        cmocka_unit_test(test_input_borrow),
    };
    int failed = cmocka_run_group_tests_name("core", tests, NULL, NULL);
    bli_finalize(); /* release BLIS's pools so a leak check sees only ours */
    return failed;
}
