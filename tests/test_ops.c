/* test_ops.c — the ops: matmul against a plain triple loop, finite-difference
 * gradient checks for every op, exact values of softmax and the losses (from
 * docs/KERAS_SEMANTICS.md), numerical stability at ±1000, label and shape errors, NULL
 * propagation, reshape following the batch, and zero allocations per step. */
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
    nb_rng_seed(&rng, 1234);
    return 0;
}

static nb_tensor *param2(nb_graph *g, int r, int c) { return nb_param(g, 2, (int[]){r, c}); }

static void assert_close(float got, double want, double tol)
{
    if (!(fabs(got - want) <= tol)) fail_msg("got %.9g, want %.9g (tol %g)", got, want, tol);
}

/* ---- the plain reference kernel: the definition of the matrix product ----
 * c (m, n) = a (m, k) · b (k, n), each operand read through row/column strides
 * (so the same loop also gives the transposed products of the backward). */
static void ref_matmul(double *c, const float *a, int rsa, int csa, const float *b, int rsb, int csb, int m, int k, int n)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++) s += (double)a[i * rsa + p * csa] * b[p * rsb + j * csb];
            c[i * n + j] = s;
        }
}

static void assert_matches(const float *got, const double *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= 1e-4 * fmax(1.0, fabs(want[i]))))
            fail_msg("element %zu: got %.7g, want %.7g", i, got[i], want[i]);
}

static void test_matmul_vs_reference(void **state)
{
    (void)state;
    static const int sizes[][3] = {{1, 1, 1}, {1, 7, 3}, {5, 1, 4}, {3, 8, 1}, {17, 33, 9}, {64, 31, 48}, {32, 100, 10}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int M = sizes[s][0], K = sizes[s][1], N = sizes[s][2];
        nb_graph *g = nb_graph_new();
        nb_tensor *a = param2(g, M, K), *b = param2(g, K, N);
        fill(a, -1, 1);
        fill(b, -1, 1);
        nb_tensor *c = nb_matmul(g, a, b);
        assert_non_null(c);
        assert_int_equal(c->ndim, 2);
        assert_int_equal(c->shape[0], M);
        assert_int_equal(c->shape[1], N);
        double *want = malloc(sizeof(double) * (size_t)(M * K + K * N + M * N));
        ref_matmul(want, a->data, K, 1, b->data, N, 1, M, K, N);
        assert_matches(c->data, want, (size_t)(M * N));
        /* backward with upstream gradient W: dA = W · Bᵀ, dB = Aᵀ · W */
        nb_tensor *loss = weighted_loss(g, c);
        const float *W = loss->src[0]->src[1]->data;
        assert_int_equal(nb_backward(g, loss), NB_OK);
        ref_matmul(want, W, N, 1, b->data, 1, N, M, N, K);
        assert_matches(a->grad, want, (size_t)(M * K));
        ref_matmul(want, a->data, 1, K, W, N, 1, K, M, N);
        assert_matches(b->grad, want, (size_t)(K * N));
        /* a second backward accumulates */
        assert_int_equal(nb_backward(g, loss), NB_OK);
        for (size_t i = 0; i < (size_t)(K * N); i++) want[i] *= 2;
        assert_matches(b->grad, want, (size_t)(K * N));
        free(want);
        nb_graph_free(g);
    }
}

static void test_gradcheck_matmul(void **state)
{
    (void)state;
    static const int sizes[][3] = {{1, 1, 1}, {1, 4, 3}, {3, 2, 5}, {6, 5, 2}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        nb_graph *g = nb_graph_new();
        nb_tensor *a = param2(g, sizes[s][0], sizes[s][1]), *b = param2(g, sizes[s][1], sizes[s][2]);
        fill(a, -1, 1);
        fill(b, -1, 1);
        assert_gradcheck(g, weighted_loss(g, nb_matmul(g, a, b)));
        nb_graph_free(g);
    }
}

/* dense: every activation, bias (out), (1, out) or NULL, batch 1 and more; also
 * equal to the composed ops act(matmul(x, w) + b), values and gradients. */
static void test_dense(void **state)
{
    (void)state;
    static const int sizes[][3] = {{1, 3, 2}, {4, 5, 3}, {7, 2, 6}};
    const nb_activation acts[] = {NB_LINEAR, NB_RELU, NB_SIGMOID, NB_TANH};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int a = 0; a < 4; a++)
            for (int bias = 0; bias < 3; bias++) {
                int B = sizes[s][0], in = sizes[s][1], out = sizes[s][2];
                nb_graph *g = nb_graph_new();
                nb_tensor *x = param2(g, B, in), *w = param2(g, in, out);
                nb_tensor *b = bias == 0 ? NULL : bias == 1 ? nb_param(g, 1, (int[]){out}) : param2(g, 1, out);
                /* x > 0 and each kernel column of one sign keep x·w + b away from relu's kink */
                fill(x, 0.3f, 1.0f);
                for (int j = 0; j < out; j++) {
                    float sign = j % 2 ? -1.0f : 1.0f;
                    for (int i = 0; i < in; i++) w->data[i * out + j] = sign * nb_rng_uniform_range(&rng, 0.2f, 0.8f);
                    if (b) b->data[j] = sign * nb_rng_uniform_range(&rng, 0.0f, 0.3f);
                }
                nb_tensor *y = nb_dense(g, x, w, b, acts[a]);
                assert_non_null(y);
                assert_int_equal(nb_op_kind_of(y), NB_OP_DENSE);
                assert_int_equal(y->shape[0], B);
                assert_int_equal(y->shape[1], out);
                nb_tensor *loss = weighted_loss(g, y);
                assert_gradcheck(g, loss);
                /* the composed graph, same weights on the output */
                nb_tensor *z = nb_matmul(g, x, w);
                if (b) z = nb_add(g, z, b);
                nb_tensor *y2 = nb_activate(g, z, acts[a]);
                nb_tensor *loss2 = nb_sum(g, nb_mul(g, y2, loss->src[0]->src[1]));
                for (size_t i = 0; i < y->size; i++) assert_close(y->data[i], y2->data[i], 1e-5);
                float gx[64], gw[64], gb[8];
                nb_zero_grad(g);
                nb_backward(g, loss);
                memcpy(gx, x->grad, x->size * sizeof *gx);
                memcpy(gw, w->grad, w->size * sizeof *gw);
                if (b) memcpy(gb, b->grad, b->size * sizeof *gb);
                nb_zero_grad(g);
                nb_backward(g, loss2);
                for (size_t i = 0; i < x->size; i++) assert_close(gx[i], x->grad[i], 1e-5);
                for (size_t i = 0; i < w->size; i++) assert_close(gw[i], w->grad[i], 1e-5);
                if (b)
                    for (size_t i = 0; i < b->size; i++) assert_close(gb[i], b->grad[i], 1e-5);
                nb_graph_free(g);
            }
}

/* act(z) in double, the definition the fused kernels must match */
static double ref_act(double z, nb_activation act)
{
    switch (act) {
    case NB_RELU: return z > 0 ? z : 0;
    case NB_SIGMOID: return 1 / (1 + exp(-z));
    case NB_TANH: return tanh(z);
    default: return z;
    }
}

/* dense forward against the reference on both of its paths (a few rows: one
 * fused sweep over w; more: BLIS then a bias + activation pass), across the
 * block edges (4 rows, 32 columns), with and without bias, on 1 and 2 threads
 * (a wide w shares its columns between threads) */
static void test_dense_paths(void **state)
{
    (void)state;
    static const int sizes[][3] = {{1, 1, 1}, {1, 37, 31}, {3, 5, 32}, {4, 9, 33}, {5, 16, 70}, {8, 3, 64},
                                   {9, 37, 33}, {12, 20, 10}, {3, 600, 450}, {7, 513, 520}};
    const nb_activation acts[] = {NB_LINEAR, NB_RELU, NB_SIGMOID, NB_TANH};
    for (int threads = 1; threads <= 2; threads++) {
        nb_set_num_threads(threads);
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            for (int a = 0; a < 4; a++)
                for (int bias = 0; bias < 2; bias++) {
                    int B = sizes[s][0], in = sizes[s][1], out = sizes[s][2];
                    nb_graph *g = nb_graph_new();
                    nb_tensor *x = nb_input(g, NB_F32, 2, (int[]){B, in}), *w = param2(g, in, out);
                    nb_tensor *b = bias ? nb_param(g, 1, (int[]){out}) : NULL;
                    fill(x, -1, 1);
                    fill(w, -1, 1);
                    if (b) fill(b, -1, 1);
                    nb_tensor *y = nb_dense(g, x, w, b, acts[a]);
                    assert_non_null(y);
                    double *want = malloc(sizeof(double) * (size_t)B * out);
                    assert_non_null(want);
                    ref_matmul(want, x->data, in, 1, w->data, out, 1, B, in, out);
                    for (int i = 0; i < B * out; i++) want[i] = ref_act(want[i] + (b ? b->data[i % out] : 0), acts[a]);
                    assert_matches(y->data, want, (size_t)B * out);
                    free(want);
                    nb_graph_free(g);
                }
    }
    nb_set_num_threads(1);
}

/* dense where x is an input (no gradient) and the bias gradient alone is asked for */
static void test_dense_input_no_grad(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *x = nb_input(g, NB_F32, 2, (int[]){3, 4});
    nb_tensor *w = param2(g, 4, 2), *b = nb_param(g, 1, (int[]){2});
    fill(x, -1, 1);
    fill(w, -1, 1);
    nb_tensor *y = nb_dense(g, x, w, b, NB_SIGMOID);
    assert_null(x->grad);
    assert_gradcheck(g, weighted_loss(g, y));
    /* softmax as a dense activation is a linear dense node followed by a softmax node */
    nb_tensor *p = nb_dense(g, x, w, b, NB_SOFTMAX);
    assert_int_equal(nb_op_kind_of(p), NB_OP_SOFTMAX);
    assert_int_equal(nb_op_kind_of(p->src[0]), NB_OP_DENSE);
    assert_null(nb_dense(g, x, w, b, (nb_activation)42));
    assert_string_equal(nb_graph_error(g), "dense: unknown activation 42");
    nb_graph_free(g);
}

static void test_gradcheck_elementwise(void **state)
{
    (void)state;
    for (int mode = 0; mode < 3; mode++) /* b same shape, a row (K), one element */
        for (int op = 0; op < 4; op++) {
            nb_graph *g = nb_graph_new();
            nb_tensor *a = param2(g, 3, 4);
            nb_tensor *b = mode == 0 ? param2(g, 3, 4) : mode == 1 ? nb_param(g, 1, (int[]){4}) : nb_param(g, 1, (int[]){1});
            fill(a, -1, 1);
            fill(b, -1, 1);
            nb_tensor *y = op == 0 ? nb_add(g, a, b) : op == 1 ? nb_sub(g, a, b) : op == 2 ? nb_mul(g, a, b) : nb_scale(g, a, -2.5f);
            assert_gradcheck(g, weighted_loss(g, y));
            nb_graph_free(g);
        }
}

static void test_gradcheck_activations(void **state)
{
    (void)state;
    static const int shapes[][2] = {{1, 1}, {1, 5}, {4, 3}};
    for (size_t s = 0; s < 3; s++)
        for (int act = NB_RELU; act <= NB_SOFTMAX; act++) {
            nb_graph *g = nb_graph_new();
            nb_tensor *a = param2(g, shapes[s][0], shapes[s][1]);
            fill_away_from_zero(a, 0.1f, 2.0f);
            nb_tensor *y = nb_activate(g, a, (nb_activation)act);
            assert_non_null(y);
            assert_gradcheck(g, weighted_loss(g, y));
            nb_graph_free(g);
        }
    nb_graph *g = nb_graph_new();
    nb_tensor *a = param2(g, 2, 3);
    assert_ptr_equal(nb_activate(g, a, NB_LINEAR), a); /* identity: no node */
    nb_graph_free(g);
}

static void test_gradcheck_softmax(void **state)
{
    (void)state;
    static const int shapes[][2] = {{1, 1}, {1, 6}, {5, 3}};
    for (size_t s = 0; s < 3; s++)
        for (int log = 0; log < 2; log++) {
            nb_graph *g = nb_graph_new();
            nb_tensor *z = param2(g, shapes[s][0], shapes[s][1]);
            fill(z, -3, 3);
            nb_tensor *y = log ? nb_log_softmax(g, z) : nb_softmax(g, z);
            assert_gradcheck(g, weighted_loss(g, y));
            nb_graph_free(g);
        }
    /* a 3-D tensor: softmax over the last axis of every row */
    nb_graph *g = nb_graph_new();
    nb_tensor *z = nb_param(g, 3, (int[]){2, 3, 4});
    fill(z, -2, 2);
    assert_gradcheck(g, weighted_loss(g, nb_softmax(g, z)));
    assert_gradcheck(g, weighted_loss(g, nb_log_softmax(g, z)));
    nb_graph_free(g);
}

/* labels (B) with random classes */
static nb_tensor *labels(nb_graph *g, int B, int K, int ndim)
{
    nb_tensor *y = nb_input(g, NB_I32, ndim, (int[]){B, 1});
    assert_non_null(y);
    for (int r = 0; r < B; r++) y->idata[r] = (int32_t)nb_rng_below(&rng, (uint32_t)K);
    return y;
}

static nb_tensor *soft_labels(nb_graph *g, int B, int K)
{
    nb_tensor *y = nb_input(g, NB_F32, 2, (int[]){B, K});
    fill(y, 0.0f, 1.0f);
    return y;
}

static void test_gradcheck_losses(void **state)
{
    (void)state;
    static const int shapes[][2] = {{1, 2}, {1, 5}, {4, 3}, {6, 10}};
    for (size_t s = 0; s < 4; s++) {
        int B = shapes[s][0], K = shapes[s][1];
        for (int which = 0; which < 9; which++) {
            nb_graph *g = nb_graph_new();
            nb_tensor *z = param2(g, B, K);
            /* logits in [-3, 3]; probabilities in [0.05, 0.9] (not normalised: the
             * Keras forms renormalise) */
            if (which >= 4 && which <= 5) fill(z, 0.05f, 0.9f);
            else fill(z, -3, 3);
            nb_tensor *y;
            switch (which) {
            case 0: y = nb_sparse_softmax_cross_entropy_with_logits(g, z, labels(g, B, K, 1 + (int)(s % 2))); break;
            case 1: y = nb_softmax_cross_entropy_with_logits(g, z, soft_labels(g, B, K)); break;
            case 2: y = nb_sparse_categorical_crossentropy(g, z, labels(g, B, K, 1), true); break;
            case 3: y = nb_categorical_crossentropy(g, z, soft_labels(g, B, K), true); break;
            case 4: y = nb_sparse_categorical_crossentropy(g, z, labels(g, B, K, 1), false); break;
            case 5: y = nb_categorical_crossentropy(g, z, soft_labels(g, B, K), false); break;
            case 6: y = nb_sparse_categorical_crossentropy(g, nb_softmax(g, z), labels(g, B, K, 1), false); break;
            case 7: y = nb_mean_squared_error(g, z, soft_labels(g, B, K)); break;
            default: y = nb_categorical_crossentropy(g, nb_softmax(g, z), soft_labels(g, B, K), false); break;
            }
            assert_non_null(y);
            assert_gradcheck(g, weighted_loss(g, y));
            nb_graph_free(g);
        }
    }
}

static void test_gradcheck_reduce_reshape(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *a = nb_param(g, 3, (int[]){2, 3, 4});
    fill(a, -1, 1);
    assert_gradcheck(g, nb_sum(g, a));
    assert_gradcheck(g, nb_mean(g, a));
    assert_gradcheck(g, weighted_loss(g, nb_reshape(g, a, 2, (int[]){4, -1})));
    assert_gradcheck(g, weighted_loss(g, nb_flatten(g, a)));
    assert_gradcheck(g, weighted_loss(g, nb_reshape(g, a, 4, (int[]){1, 2, 12, 1})));
    nb_graph_free(g);
}

/* ---- exact values (docs/KERAS_SEMANTICS.md) ---- */

static nb_tensor *row_input(nb_graph *g, int k, const float *v)
{
    nb_tensor *t = nb_param(g, 2, (int[]){1, k});
    memcpy(t->data, v, (size_t)k * sizeof *v);
    return t;
}

static void test_softmax_values(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *p = nb_softmax(g, row_input(g, 3, (float[]){2, 1, 0.1f}));
    assert_close(p->data[0], 0.6590011, 1e-6);
    assert_close(p->data[1], 0.2424330, 1e-6);
    assert_close(p->data[2], 0.0985659, 1e-6);
    p = nb_softmax(g, row_input(g, 3, (float[]){-1, 0, 1}));
    assert_close(p->data[0], 0.0900306, 1e-6);
    assert_close(p->data[1], 0.2447285, 1e-6);
    assert_close(p->data[2], 0.6652410, 1e-6);
    nb_tensor *lp = nb_log_softmax(g, row_input(g, 3, (float[]){-1, 0, 1}));
    assert_close(lp->data[0], log(0.0900306), 1e-6);
    assert_close(lp->data[2], log(0.6652410), 1e-6);
    float rows[6] = {2, 1, 0.1f, -1, 0, 1};
    nb_softmax_rows(rows, 2, 3);
    assert_close(rows[0], 0.6590011, 1e-6);
    assert_close(rows[5], 0.6652410, 1e-6);
    nb_softmax_rows(NULL, 2, 3); /* no-op */
    nb_graph_free(g);
}

static void test_sparse_xent_values(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *z = row_input(g, 5, (float[]){2.5f, -1.0f, 0.8f, 4.1f, -0.3f});
    nb_tensor *y = nb_input(g, NB_I32, 1, (int[]){1});
    y->idata[0] = 3;
    nb_tensor *loss = nb_sparse_softmax_cross_entropy_with_logits(g, z, y);
    assert_non_null(loss);
    assert_int_equal(loss->ndim, 1);
    assert_int_equal(loss->shape[0], 1);
    assert_close(loss->data[0], 0.2288503, 1e-7);
    assert_int_equal(nb_backward(g, loss), NB_OK);
    const double grad[5] = {0.1605981, 0.0048496, 0.0293386, -0.2045524, 0.0097660};
    for (int j = 0; j < 5; j++) assert_close(z->grad[j], grad[j], 1e-6);
    nb_graph_free(g);
}

static void test_keras_values(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    /* categorical: [0, 1, 0] vs [0.05, 0.9, 0.05] -> -log 0.9 */
    nb_tensor *p = row_input(g, 3, (float[]){0.05f, 0.9f, 0.05f});
    nb_tensor *onehot = nb_input(g, NB_F32, 2, (int[]){1, 3});
    onehot->data[1] = 1;
    nb_tensor *l = nb_categorical_crossentropy(g, p, onehot, false);
    assert_int_equal(l->ndim, 0);
    assert_close(l->data[0], 0.1053605, 1e-6);
    /* sparse from probabilities: labels [1, 2] */
    nb_tensor *p2 = nb_param(g, 2, (int[]){2, 3});
    memcpy(p2->data, (float[]){0.05f, 0.95f, 0.0f, 0.1f, 0.8f, 0.1f}, 6 * sizeof(float));
    nb_tensor *lab = nb_input(g, NB_I32, 1, (int[]){2});
    lab->idata[0] = 1, lab->idata[1] = 2;
    l = nb_sparse_categorical_crossentropy(g, p2, lab, false);
    assert_int_equal(nb_op_kind_of(l), NB_OP_SPARSE_CATEGORICAL_XENT_PROBS);
    assert_close(l->data[0], 1.1769, 1e-4);
    for (int r = 0; r < 2; r++) { /* per sample, one row at a time */
        nb_tensor *pr = row_input(g, 3, p2->data + 3 * r);
        nb_tensor *lr = nb_input(g, NB_I32, 1, (int[]){1});
        lr->idata[0] = lab->idata[r];
        assert_close(nb_sparse_categorical_crossentropy(g, pr, lr, false)->data[0], r ? 2.3026 : 0.0513, 1e-4);
    }
    /* the largest loss: p_y = 0 -> -ln(1e-7) */
    nb_tensor *p3 = row_input(g, 3, (float[]){1, 0, 0});
    nb_tensor *l3 = nb_input(g, NB_I32, 1, (int[]){1});
    l3->idata[0] = 1;
    assert_close(nb_sparse_categorical_crossentropy(g, p3, l3, false)->data[0], -log(1e-7), 1e-4);
    nb_tensor *oh3 = nb_input(g, NB_F32, 2, (int[]){1, 3});
    oh3->data[1] = 1;
    assert_close(nb_categorical_crossentropy(g, p3, oh3, false)->data[0], -log(1e-7), 1e-4);
    /* MSE: mean of (p - y)^2 */
    nb_tensor *m = nb_mean_squared_error(g, p, onehot);
    assert_close(m->data[0], (0.05 * 0.05 + 0.1 * 0.1 + 0.05 * 0.05) / 3, 1e-7);
    nb_graph_free(g);
}

/* The four losses agree where they should: sparse vs one-hot, from logits vs
 * from nb_softmax probabilities (which use the logits) vs plain probabilities. */
static void test_losses_agree(void **state)
{
    (void)state;
    enum { B = 5, K = 7 };
    nb_graph *g = nb_graph_new();
    nb_tensor *z = param2(g, B, K);
    fill(z, -4, 4);
    nb_tensor *y = labels(g, B, K, 1);
    nb_tensor *onehot = nb_input(g, NB_F32, 2, (int[]){B, K});
    for (int r = 0; r < B; r++) onehot->data[r * K + y->idata[r]] = 1;
    nb_tensor *probs = nb_input(g, NB_F32, 2, (int[]){B, K}); /* softmax(z) as plain data */
    memcpy(probs->data, z->data, sizeof(float) * B * K);
    nb_softmax_rows(probs->data, B, K);

    nb_tensor *per = nb_sparse_softmax_cross_entropy_with_logits(g, z, y);
    nb_tensor *per_dense = nb_softmax_cross_entropy_with_logits(g, z, onehot);
    double mean = 0;
    for (int r = 0; r < B; r++) {
        assert_close(per_dense->data[r], per->data[r], 1e-5);
        mean += per->data[r] / B;
    }
    nb_tensor *sm = nb_softmax(g, z);
    nb_tensor *losses[] = {
        nb_sparse_categorical_crossentropy(g, z, y, true),
        nb_categorical_crossentropy(g, z, onehot, true),
        nb_sparse_categorical_crossentropy(g, sm, y, false),
        nb_categorical_crossentropy(g, sm, onehot, false),
        nb_sparse_categorical_crossentropy(g, probs, y, false),
        nb_categorical_crossentropy(g, probs, onehot, false),
    };
    for (int i = 0; i < 6; i++) {
        assert_non_null(losses[i]);
        assert_close(losses[i]->data[0], mean, 1e-5);
    }
    /* from nb_softmax the losses read the logits directly */
    assert_ptr_equal(losses[2]->src[0], z);
    assert_ptr_equal(losses[3]->src[0], z);
    assert_int_equal(nb_op_kind_of(losses[2]), NB_OP_SPARSE_SOFTMAX_XENT);
    assert_int_equal(nb_op_kind_of(losses[3]), NB_OP_SOFTMAX_XENT);
    /* and the logits' gradient is (softmax - onehot) / B for all four */
    for (int i = 0; i < 4; i++) {
        nb_zero_grad(g);
        assert_int_equal(nb_backward(g, losses[i]), NB_OK);
        for (int k = 0; k < B * K; k++) assert_close(z->grad[k], (probs->data[k] - onehot->data[k]) / B, 1e-6);
    }
    nb_graph_free(g);
}

static void test_stability(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *z = row_input(g, 3, (float[]){1000, 0, -1000});
    nb_tensor *p = nb_softmax(g, z);
    assert_true(p->data[0] == 1.0f && p->data[1] == 0.0f && p->data[2] == 0.0f);
    nb_tensor *lp = nb_log_softmax(g, z);
    assert_true(lp->data[0] == 0.0f && lp->data[1] == -1000.0f && lp->data[2] == -2000.0f);
    nb_tensor *y = nb_input(g, NB_I32, 1, (int[]){1});
    y->idata[0] = 2;
    nb_tensor *ce = nb_sparse_softmax_cross_entropy_with_logits(g, z, y);
    assert_close(ce->data[0], 2000.0, 1e-3);
    assert_int_equal(nb_backward(g, ce), NB_OK);
    assert_close(z->grad[0], 1.0, 0);
    assert_close(z->grad[2], -1.0, 0);
    nb_tensor *oh = nb_input(g, NB_F32, 2, (int[]){1, 3});
    oh->data[0] = 1;
    assert_close(nb_categorical_crossentropy(g, z, oh, true)->data[0], 0.0, 0);
    nb_tensor *sg = nb_sigmoid(g, z), *th = nb_tanh(g, z);
    assert_true(sg->data[0] == 1.0f && sg->data[1] == 0.5f && sg->data[2] == 0.0f);
    assert_true(th->data[0] == 1.0f && th->data[2] == -1.0f);
    nb_tensor *sl = nb_sum(g, nb_softmax(g, row_input(g, 3, (float[]){-1000, -1000, -1000})));
    assert_close(sl->data[0], 1.0, 1e-6);
    assert_int_equal(nb_check_numerics(g), NB_OK);
    nb_graph_free(g);
}

/* ---- errors ---- */

static void test_label_errors(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *z = param2(g, 4, 5);
    nb_tensor *y = nb_input(g, NB_I32, 1, (int[]){4});
    y->idata[3] = 7;
    assert_null(nb_sparse_softmax_cross_entropy_with_logits(g, z, y));
    const char *msg = "sparse_softmax_cross_entropy_with_logits: row 3: received a label value of 7 which is "
                      "outside the valid range of [0, 5)";
    assert_string_equal(nb_graph_error(g), msg);
    assert_string_equal(nb_last_error(), msg);
    nb_graph_clear_error(g);
    y->idata[3] = 4;
    nb_tensor *loss = nb_sparse_categorical_crossentropy(g, z, y, true);
    nb_tensor *loss_p = nb_sparse_categorical_crossentropy(g, nb_sigmoid(g, z), y, false);
    assert_non_null(loss);
    assert_non_null(loss_p);
    y->idata[1] = -1; /* later, at nb_forward */
    assert_int_equal(nb_forward(g), NB_ERR_LABEL);
    assert_string_equal(nb_last_error(), "sparse_softmax_cross_entropy_with_logits: row 1: received a label value of "
                                         "-1 which is outside the valid range of [0, 5)");
    assert_string_equal(nb_graph_error(g), nb_last_error());
    nb_graph_clear_error(g);
    y->idata[1] = 0;
    assert_int_equal(nb_forward(g), NB_OK);
    /* the from-probabilities form checks too */
    nb_tensor *yp = nb_input(g, NB_I32, 1, (int[]){4});
    yp->idata[2] = 5;
    assert_null(nb_sparse_categorical_crossentropy(g, nb_sigmoid(g, z), yp, false));
    assert_string_equal(nb_last_error(), "sparse_categorical_crossentropy: row 2: received a label value of 5 which is "
                                         "outside the valid range of [0, 5)");
    nb_graph_free(g);
}

static void test_shape_errors(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *a = param2(g, 2, 3), *b = param2(g, 4, 5);
    nb_tensor *v = nb_param(g, 1, (int[]){3});
    assert_null(nb_matmul(g, a, b));
    assert_string_equal(nb_graph_error(g), "matmul: cannot multiply (2, 3) by (4, 5) (need (M, K) and (K, N))");
    nb_graph_clear_error(g);
    assert_null(nb_matmul(g, v, b));
    assert_string_equal(nb_graph_error(g), "matmul: cannot multiply (3,) by (4, 5) (need (M, K) and (K, N))");
    nb_graph_clear_error(g);
    assert_null(nb_dense(g, a, b, NULL, NB_RELU));
    assert_string_equal(nb_graph_error(g), "dense: input (2, 3) does not fit kernel (4, 5) (need (B, in) and (in, out))");
    nb_graph_clear_error(g);
    nb_tensor *w = param2(g, 3, 5);
    assert_null(nb_dense(g, a, w, v, NB_RELU));
    assert_string_equal(nb_graph_error(g), "dense: bias (3,) does not fit kernel (3, 5) (need (5,))");
    nb_graph_clear_error(g);
    /* logits vs labels: batch mismatch, dtypes */
    nb_tensor *z = param2(g, 4, 5);
    nb_tensor *y3 = nb_input(g, NB_I32, 1, (int[]){3});
    assert_null(nb_sparse_softmax_cross_entropy_with_logits(g, z, y3));
    assert_string_equal(nb_graph_error(g), "sparse_softmax_cross_entropy_with_logits: labels (3,) do not match (4, 5) "
                                           "(need (4,) or (4, 1))");
    nb_graph_clear_error(g);
    nb_tensor *yf = nb_input(g, NB_F32, 1, (int[]){4});
    assert_null(nb_sparse_categorical_crossentropy(g, z, yf, true));
    assert_string_equal(nb_graph_error(g), "sparse_softmax_cross_entropy_with_logits: labels must be an NB_I32 tensor "
                                           "of class indices, got a float tensor");
    nb_graph_clear_error(g);
    nb_tensor *zi = nb_input(g, NB_I32, 2, (int[]){4, 5});
    nb_tensor *y4 = nb_input(g, NB_I32, 1, (int[]){4});
    assert_null(nb_sparse_softmax_cross_entropy_with_logits(g, zi, y4));
    assert_string_equal(nb_graph_error(g), "sparse_softmax_cross_entropy_with_logits: logits must be a float tensor");
    nb_graph_clear_error(g);
    assert_null(nb_softmax_cross_entropy_with_logits(g, z, a));
    assert_string_equal(nb_graph_error(g), "softmax_cross_entropy_with_logits: labels (2, 3) do not match (4, 5)");
    nb_graph_clear_error(g);
    assert_null(nb_categorical_crossentropy(g, z, a, false));
    assert_string_equal(nb_graph_error(g), "categorical_crossentropy: labels (2, 3) do not match (4, 5)");
    nb_graph_clear_error(g);
    assert_null(nb_mean_squared_error(g, z, a));
    assert_string_equal(nb_graph_error(g), "mean_squared_error: y_pred (4, 5) and y_true (2, 3) differ in shape");
    nb_graph_clear_error(g);
    assert_null(nb_reshape(g, a, 2, (int[]){4, 2}));
    assert_string_equal(nb_graph_error(g), "reshape: cannot reshape (2, 3) (6 elements) into (4, 2)");
    nb_graph_clear_error(g);
    assert_null(nb_reshape(g, a, 2, (int[]){4, -1}));
    assert_string_equal(nb_graph_error(g), "reshape: cannot reshape (2, 3) (6 elements) into (4, -1)");
    nb_graph_clear_error(g);
    assert_null(nb_reshape(g, a, 2, (int[]){-1, -1}));
    assert_string_equal(nb_graph_error(g), "reshape: at most one dimension may be -1, got 2");
    nb_graph_clear_error(g);
    assert_null(nb_reshape(g, a, 2, (int[]){0, 6}));
    assert_string_equal(nb_graph_error(g), "reshape: dimension 0 is 0 (need >= 1, or -1 to infer it)");
    nb_graph_clear_error(g);
    assert_null(nb_reshape(g, a, NB_MAX_DIMS + 1, (int[]){1, 1, 1, 1, 1, 1, 6}));
    assert_string_equal(nb_graph_error(g), "reshape: ndim must be 0..6 with a shape array (got ndim 7)");
    nb_graph_free(g);
}

static void test_null_propagation(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *x = param2(g, 2, 3), *w = param2(g, 3, 4);
    nb_tensor *y = nb_input(g, NB_I32, 1, (int[]){2});
    assert_null(nb_matmul(g, NULL, w));
    assert_string_equal(nb_graph_error(g), "matmul: input 0 is NULL");
    /* everything built on a NULL returns NULL and keeps the first message */
    nb_tensor *h = nb_relu(g, nb_dense(g, x, NULL, NULL, NB_RELU));
    assert_null(h);
    assert_null(nb_dense(g, h, w, NULL, NB_TANH));
    assert_null(nb_activate(g, h, NB_LINEAR));
    assert_null(nb_activate(g, h, NB_SIGMOID));
    assert_null(nb_softmax(g, h));
    assert_null(nb_log_softmax(g, h));
    assert_null(nb_sparse_softmax_cross_entropy_with_logits(g, h, y));
    assert_null(nb_softmax_cross_entropy_with_logits(g, x, h));
    assert_null(nb_sparse_categorical_crossentropy(g, h, y, false));
    assert_null(nb_sparse_categorical_crossentropy(g, x, NULL, true));
    assert_null(nb_categorical_crossentropy(g, h, x, false));
    assert_null(nb_mean_squared_error(g, h, x));
    assert_null(nb_reshape(g, h, 1, (int[]){-1}));
    assert_null(nb_flatten(g, h));
    assert_null(nb_sum(g, h));
    assert_string_equal(nb_graph_error(g), "matmul: input 0 is NULL");
    /* NULL graph */
    assert_null(nb_matmul(NULL, x, w));
    assert_null(nb_dense(NULL, x, w, NULL, NB_RELU));
    assert_null(nb_activate(NULL, x, NB_LINEAR));
    assert_null(nb_reshape(NULL, x, 1, (int[]){6}));
    assert_null(nb_flatten(NULL, x));
    /* a source from another graph */
    nb_graph *g2 = nb_graph_new();
    nb_tensor *x2 = param2(g2, 2, 3);
    assert_null(nb_matmul(g2, x2, w));
    assert_string_equal(nb_graph_error(g2), "matmul: input 1 belongs to another graph");
    assert_null(nb_flatten(g2, x));
    nb_graph_free(g2);
    nb_graph_free(g);
}

/* ---- reshape / flatten follow the batch ---- */
static void test_reshape_follows_batch(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *x = nb_input(g, NB_F32, 3, (int[]){2, 2, 3});
    for (int i = 0; i < 12; i++) x->data[i] = (float)i;
    nb_tensor *f = nb_flatten(g, x), *r = nb_reshape(g, x, 3, (int[]){-1, 3, 2});
    assert_int_equal(f->ndim, 2);
    assert_int_equal(f->shape[0], 2);
    assert_int_equal(f->shape[1], 6);
    assert_int_equal(r->shape[0], 2);
    assert_true(f->data[7] == 7.0f && r->data[11] == 11.0f);
    assert_ptr_equal(nb_flatten(g, f), f); /* already flat */
    float more[30];
    for (int i = 0; i < 30; i++) more[i] = (float)-i;
    assert_int_equal(nb_input_set(x, more, 5), NB_OK);
    assert_int_equal(nb_forward(g), NB_OK);
    assert_int_equal(f->shape[0], 5);
    assert_int_equal(f->size, 30);
    assert_int_equal(r->shape[0], 5);
    assert_true(f->data[29] == -29.0f);
    /* labels (B, 1) -> (B) */
    nb_tensor *y = nb_input(g, NB_I32, 2, (int[]){3, 1});
    y->idata[2] = 9;
    nb_tensor *y1 = nb_reshape(g, y, 1, (int[]){-1});
    assert_int_equal(y1->dtype, NB_I32);
    assert_int_equal(y1->shape[0], 3);
    assert_int_equal(y1->idata[2], 9);
    nb_graph_free(g);
}

/* ---- table ---- */
static void test_op_table(void **state)
{
    (void)state;
    for (int k = 0; k < NB_OP_COUNT; k++) {
        assert_non_null(nb_op_table[k]);
        assert_non_null(nb_op_table[k]->name);
        assert_non_null(nb_op_table[k]->forward);
        if (k != NB_OP_ARGMAX) assert_non_null(nb_op_table[k]->backward); /* argmax has no gradient */
    }
    nb_graph *g = nb_graph_new();
    nb_tensor *x = param2(g, 2, 3), *w = param2(g, 3, 2);
    assert_int_equal(nb_op_kind_of(x), -1);
    assert_int_equal(nb_op_kind_of(NULL), -1);
    assert_int_equal(nb_op_kind_of(nb_matmul(g, x, w)), NB_OP_MATMUL);
    assert_int_equal(nb_op_kind_of(nb_dense(g, x, w, NULL, NB_LINEAR)), NB_OP_DENSE);
    assert_int_equal(nb_op_kind_of(nb_log_softmax(g, x)), NB_OP_LOG_SOFTMAX);
    assert_int_equal(nb_op_kind_of(nb_flatten(g, nb_reshape(g, x, 3, (int[]){2, 1, 3}))), NB_OP_RESHAPE);
    assert_string_equal(nb_activation_name(NB_RELU), "relu");
    assert_string_equal(nb_activation_name(NB_SOFTMAX), "softmax");
    assert_string_equal(nb_activation_name((nb_activation)99), "?");
    nb_graph_free(g);
}

/* ---- steady state: no allocation per step, at the same or a smaller batch ---- */
static void test_no_alloc_steady_state(void **state)
{
    (void)state;
    enum { B = 32, IN = 20, H = 16, K = 10 };
    nb_graph *g = nb_graph_new();
    nb_tensor *x = nb_input(g, NB_F32, 2, (int[]){B, IN});
    nb_tensor *y = nb_input(g, NB_I32, 1, (int[]){B});
    nb_tensor *w1 = param2(g, IN, H), *b1 = nb_param(g, 1, (int[]){H});
    nb_tensor *w2 = param2(g, H, K), *b2 = nb_param(g, 1, (int[]){K});
    fill(x, 0, 1);
    fill(w1, -0.3f, 0.3f);
    fill(w2, -0.3f, 0.3f);
    for (int r = 0; r < B; r++) y->idata[r] = r % K;
    nb_tensor *h = nb_dense(g, x, w1, b1, NB_RELU);
    nb_tensor *loss = nb_sparse_categorical_crossentropy(g, nb_dense(g, h, w2, b2, NB_LINEAR), y, true);
    nb_tensor *t = nb_input(g, NB_F32, 2, (int[]){B, K});
    fill(t, 0, 1);
    nb_tensor *loss2 = nb_categorical_crossentropy(g, nb_sigmoid(g, nb_dense(g, h, w2, NULL, NB_TANH)), t, false);
    assert_non_null(loss);
    assert_non_null(loss2);
    assert_int_equal(nb_graph_pack_params(g), NB_OK);
    nb_zero_grad(g);
    assert_int_equal(nb_forward(g), NB_OK);
    assert_int_equal(nb_backward(g, loss), NB_OK);
    assert_int_equal(nb_backward(g, loss2), NB_OK);
    float first = loss->data[0];
    unsigned long before = nb_alloc_count();
    for (int step = 0; step < 10; step++) {
        int batch = step < 5 ? B : B - 1 - step; /* then smaller batches */
        assert_int_equal(nb_input_set_batch(x, batch), NB_OK);
        assert_int_equal(nb_input_set_batch(y, batch), NB_OK);
        assert_int_equal(nb_input_set_batch(t, batch), NB_OK);
        for (int r = 0; r < batch; r++) y->idata[r] = (r + step) % K;
        nb_zero_grad(g);
        assert_int_equal(nb_forward(g), NB_OK);
        assert_int_equal(nb_backward(g, loss), NB_OK);
        assert_int_equal(nb_backward(g, loss2), NB_OK);
    }
    assert_int_equal(nb_alloc_count() - before, 0);
    assert_int_equal(h->shape[0], B - 10);
    assert_true(isfinite(loss->data[0]) && first > 0);
    nb_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_matmul_vs_reference, setup),
        cmocka_unit_test_setup(test_gradcheck_matmul, setup),
        cmocka_unit_test_setup(test_dense, setup),
        cmocka_unit_test_setup(test_dense_paths, setup),
        cmocka_unit_test_setup(test_dense_input_no_grad, setup),
        cmocka_unit_test_setup(test_gradcheck_elementwise, setup),
        cmocka_unit_test_setup(test_gradcheck_activations, setup),
        cmocka_unit_test_setup(test_gradcheck_softmax, setup),
        cmocka_unit_test_setup(test_gradcheck_losses, setup),
        cmocka_unit_test_setup(test_gradcheck_reduce_reshape, setup),
        cmocka_unit_test_setup(test_softmax_values, setup),
        cmocka_unit_test_setup(test_sparse_xent_values, setup),
        cmocka_unit_test_setup(test_keras_values, setup),
        cmocka_unit_test_setup(test_losses_agree, setup),
        cmocka_unit_test_setup(test_stability, setup),
        cmocka_unit_test_setup(test_label_errors, setup),
        cmocka_unit_test_setup(test_shape_errors, setup),
        cmocka_unit_test_setup(test_null_propagation, setup),
        cmocka_unit_test_setup(test_reshape_follows_batch, setup),
        cmocka_unit_test_setup(test_op_table, setup),
        cmocka_unit_test_setup(test_no_alloc_steady_state, setup),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    bli_finalize();
    return failed;
}
