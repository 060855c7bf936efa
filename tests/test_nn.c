/* test_nn.c — models: Glorot initialisation and seeds, the Keras softmax lab in
 * both forms, fit semantics (history, validation split, steps, partial batches,
 * determinism, allocation-free steps), evaluate / predict, progress output,
 * summary, save / load (round trip, resume, every corruption, atomic writes). */
#include <dirent.h>
#include <math.h>
#include <regex.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include <nabla/nabla.h>
#include "failalloc.h"
#include "nb_blis.h" /* bli_finalize: release BLIS's pools so a leak check sees only ours */

/* ---- data: the Keras softmax lab's four Gaussian blobs in 2-D ---- */

enum { BLOBS = 2000 };
static float blob_x[BLOBS * 2];
static int32_t blob_y[BLOBS];
static float blob_onehot[BLOBS * 4];

static void make_blobs(void)
{
    static const float centre[4][2] = {{-5, 2}, {-2, -2}, {1, 2}, {5, -2}};
    nb_rng r;
    nb_rng_seed(&r, 2024);
    for (int i = 0; i < BLOBS; i++) {
        int k = (int)nb_rng_below(&r, 4);
        blob_y[i] = k;
        blob_x[2 * i] = centre[k][0] + nb_rng_normal(&r);
        blob_x[2 * i + 1] = centre[k][1] + nb_rng_normal(&r);
        for (int j = 0; j < 4; j++) blob_onehot[4 * i + j] = j == k ? 1.0f : 0.0f;
    }
}

/* Dense(25 relu) -> Dense(15 relu) -> Dense(4, last) */
static nb_model *lab_model(nb_activation last, uint64_t seed)
{
    nb_model *m = nb_sequential(2);
    assert_non_null(m);
    assert_int_equal(nb_model_set_seed(m, seed), NB_OK);
    assert_int_equal(nb_add_dense(m, 25, NB_RELU), NB_OK);
    assert_int_equal(nb_add_dense(m, 15, NB_RELU), NB_OK);
    assert_int_equal(nb_add_dense(m, 4, last), NB_OK);
    return m;
}

static nb_model *lab_compiled(nb_activation last, bool from_logits, uint64_t seed)
{
    nb_model *m = lab_model(last, seed);
    assert_int_equal(nb_compile(m, &(nb_compile_opts){.loss = NB_SPARSE_CATEGORICAL_CROSSENTROPY,
                                                      .from_logits = from_logits, .optimizer = nb_adam(0.001f)}),
                     NB_OK);
    return m;
}

static float *weights_of(const nb_model *m)
{
    size_t n = nb_model_param_count(m);
    float *w = malloc(n * sizeof *w);
    assert_non_null(w);
    assert_int_equal(nb_model_get_weights(m, w, n), NB_OK);
    return w;
}

static const nb_fit_opts quiet = {.verbose = NB_VERBOSE_SILENT};

/* ---- initialisation ---- */

static void test_glorot_bounds_and_seed(void **state)
{
    (void)state;
    nb_model *m = nb_sequential(784);
    assert_int_equal(nb_add_dense(m, 128, NB_RELU), NB_OK);
    assert_int_equal(nb_add_dense(m, 10, NB_LINEAR), NB_OK);
    assert_int_equal(nb_model_param_count(m), 784 * 128 + 128 + 128 * 10 + 10);
    assert_int_equal(nb_model_output_width(m), 10);
    assert_int_equal(nb_model_layer_units(m, 0), 128);
    assert_int_equal(nb_model_layer_activation(m, 0), NB_RELU);
    float *w = weights_of(m);
    const struct { size_t at, nk, nb; double limit; } layers[] = {
        {0, 784 * 128, 128, 0.0811107},
        {784 * 128 + 128, 128 * 10, 10, 0.2085144},
    };
    for (int l = 0; l < 2; l++) {
        double lo = 1, hi = -1, sum = 0;
        for (size_t i = 0; i < layers[l].nk; i++) {
            float v = w[layers[l].at + i];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            sum += v;
        }
        assert_true(lo >= -layers[l].limit - 1e-7 && hi <= layers[l].limit + 1e-7);
        assert_true(hi > 0.97 * layers[l].limit && lo < -0.97 * layers[l].limit); /* the whole range is used */
        assert_true(fabs(sum / layers[l].nk) < 0.05 * layers[l].limit);       /* centred */
        for (size_t i = 0; i < layers[l].nb; i++) assert_true(w[layers[l].at + layers[l].nk + i] == 0.0f);
    }
    /* same (default) seed: same weights; another seed: different ones */
    nb_model *m2 = nb_sequential(784);
    nb_add_dense(m2, 128, NB_RELU);
    nb_add_dense(m2, 10, NB_LINEAR);
    float *w2 = weights_of(m2);
    assert_memory_equal(w, w2, nb_model_param_count(m) * sizeof *w);
    assert_int_equal(nb_model_set_seed(m2, 7), NB_OK);
    free(w2);
    w2 = weights_of(m2);
    assert_true(memcmp(w, w2, nb_model_param_count(m) * sizeof *w) != 0);
    /* set_seed after adding equals seeding first */
    nb_model *m3 = nb_sequential(784);
    nb_model_set_seed(m3, 7);
    nb_add_dense(m3, 128, NB_RELU);
    nb_add_dense(m3, 10, NB_LINEAR);
    float *w3 = weights_of(m3);
    assert_memory_equal(w2, w3, nb_model_param_count(m) * sizeof *w);
    free(w);
    free(w2);
    free(w3);
    nb_model_free(m);
    nb_model_free(m2);
    nb_model_free(m3);
}

/* ---- the softmax lab, both forms ---- */

static void check_lab(nb_activation last, bool from_logits)
{
    nb_model *m = lab_compiled(last, from_logits, 1);
    nb_history h;
    nb_fit_opts o = quiet;
    o.epochs = 10;
    assert_int_equal(nb_fit(m, blob_x, blob_y, BLOBS, &o, &h), NB_OK);
    assert_int_equal(h.epochs, 10);
    assert_true(h.accuracy[9] >= 0.95f);
    assert_true(h.loss[9] < h.loss[0]);
    float loss, acc;
    assert_int_equal(nb_evaluate(m, blob_x, blob_y, BLOBS, &loss, &acc), NB_OK);
    assert_true(acc >= 0.95f);
    assert_true(loss < 0.3f);
    /* predictions: probabilities for a softmax last layer, logits otherwise */
    float out[16];
    assert_int_equal(nb_predict(m, blob_x, 4, out), NB_OK);
    if (last == NB_SOFTMAX) {
        for (int i = 0; i < 4; i++)
            assert_float_equal(out[4 * i] + out[4 * i + 1] + out[4 * i + 2] + out[4 * i + 3], 1.0, 1e-5);
    } else {
        nb_softmax_rows(out, 4, 4);
    }
    for (int i = 0; i < 4; i++) {
        int best = 0;
        for (int j = 1; j < 4; j++)
            if (out[4 * i + j] > out[4 * i + best]) best = j;
        assert_int_equal(best, blob_y[i]); /* these four are easy points */
    }
    nb_history_free(&h);
    nb_model_free(m);
}

static void test_lab_standard(void **state)
{
    (void)state;
    check_lab(NB_SOFTMAX, false);
}

static void test_lab_preferred(void **state)
{
    (void)state;
    check_lab(NB_LINEAR, true);
}

/* Both forms compute the same loss from the same weights (Keras uses the
 * softmax's logits when from_logits is false). */
static void test_lab_forms_agree(void **state)
{
    (void)state;
    nb_model *a = lab_compiled(NB_SOFTMAX, false, 3), *b = lab_compiled(NB_LINEAR, true, 3);
    float la, lb, aa, ab;
    assert_int_equal(nb_evaluate(a, blob_x, blob_y, BLOBS, &la, &aa), NB_OK);
    assert_int_equal(nb_evaluate(b, blob_x, blob_y, BLOBS, &lb, &ab), NB_OK);
    assert_float_equal(la, lb, 1e-5);
    assert_float_equal(aa, ab, 0);
    nb_model_free(a);
    nb_model_free(b);
}

/* Categorical cross-entropy with one-hot targets, and MSE regression. */
static void test_other_losses(void **state)
{
    (void)state;
    nb_model *m = lab_model(NB_SOFTMAX, 5);
    assert_int_equal(nb_compile(m, &(nb_compile_opts){.loss = NB_CATEGORICAL_CROSSENTROPY, .optimizer = nb_adam(0.003f)}),
                     NB_OK);
    nb_history h;
    nb_fit_opts o = quiet;
    o.epochs = 5;
    assert_int_equal(nb_fit(m, blob_x, blob_onehot, BLOBS, &o, &h), NB_OK);
    assert_true(h.accuracy[4] >= 0.95f);
    nb_history_free(&h);
    nb_model_free(m);

    /* y = 2 x0 - x1 + 1 with a linear model and SGD */
    enum { N = 256 };
    static float x[N * 2], y[N];
    nb_rng r;
    nb_rng_seed(&r, 9);
    for (int i = 0; i < N; i++) {
        x[2 * i] = nb_rng_uniform_range(&r, -1, 1);
        x[2 * i + 1] = nb_rng_uniform_range(&r, -1, 1);
        y[i] = 2 * x[2 * i] - x[2 * i + 1] + 1;
    }
    m = nb_sequential(2);
    nb_add_dense(m, 1, NB_LINEAR);
    assert_int_equal(nb_compile(m, &(nb_compile_opts){.loss = NB_MEAN_SQUARED_ERROR,
                                                      .optimizer = nb_sgd_ex(&(nb_sgd_opts){.learning_rate = 0.1f, .momentum = 0.9f})}),
                     NB_OK);
    o.epochs = 20;
    assert_int_equal(nb_fit(m, x, y, N, &o, &h), NB_OK);
    assert_true(isnan(h.accuracy[0])); /* no accuracy for regression */
    float loss, acc;
    assert_int_equal(nb_evaluate(m, x, y, N, &loss, &acc), NB_OK);
    assert_true(loss < 1e-4f);
    float w[3];
    nb_model_get_weights(m, w, 3);
    assert_float_equal(w[0], 2, 1e-2);
    assert_float_equal(w[1], -1, 1e-2);
    assert_float_equal(w[2], 1, 1e-2);
    nb_history_free(&h);
    nb_model_free(m);
}

/* ---- fit semantics ---- */

typedef struct steps_seen {
    int calls, per_epoch[8], last_step[8];
    double last_loss[8], last_acc[8];
    unsigned long allocs[64];
} steps_seen;

static void on_step(void *ctx, int epoch, int step, int steps, double loss, double acc)
{
    steps_seen *s = ctx;
    if (s->calls < 64) s->allocs[s->calls] = nb_alloc_count();
    s->calls++;
    if (epoch < 8) {
        s->per_epoch[epoch]++;
        s->last_step[epoch] = step;
        s->last_loss[epoch] = loss;
        s->last_acc[epoch] = acc;
    }
    assert_true(step < steps);
}

static void test_history_and_steps(void **state)
{
    (void)state;
    nb_model *m = lab_compiled(NB_LINEAR, true, 11);
    steps_seen seen = {0};
    nb_fit_opts o = quiet;
    o.epochs = 3;
    o.on_step = on_step;
    o.ctx = &seen;
    nb_history h;
    /* 100 samples, batch 32: 4 steps, the last of 4 samples */
    assert_int_equal(nb_fit(m, blob_x, blob_y, 100, &o, &h), NB_OK);
    assert_int_equal(h.epochs, 3);
    assert_int_equal(h.steps_per_epoch, 4);
    assert_int_equal(h.train_samples, 100);
    assert_int_equal(h.val_samples, 0);
    assert_null(h.val_loss);
    assert_null(h.val_accuracy);
    assert_int_equal(seen.calls, 12);
    for (int e = 0; e < 3; e++) {
        assert_int_equal(seen.per_epoch[e], 4);
        assert_int_equal(seen.last_step[e], 3);
        /* the history holds the epoch's final running means */
        assert_float_equal(h.loss[e], seen.last_loss[e], 1e-6);
        assert_float_equal(h.accuracy[e], seen.last_acc[e], 1e-6);
        assert_true(h.accuracy[e] >= 0 && h.accuracy[e] <= 1);
        /* an accuracy over 100 samples is a multiple of 1/100 */
        assert_float_equal(h.accuracy[e] * 100, roundf(h.accuracy[e] * 100), 1e-3);
    }
    nb_history_free(&h);
    nb_history_free(&h); /* zeroed: a second free is harmless */

    /* batch 64 over 1000 samples: ceil -> 16 steps; a history may be NULL */
    memset(&seen, 0, sizeof seen);
    o.epochs = 1;
    o.batch_size = 64;
    assert_int_equal(nb_fit(m, blob_x, blob_y, 1000, &o, NULL), NB_OK);
    assert_int_equal(seen.calls, 16);
    nb_model_free(m);
}

/* The running loss is the batch-size-weighted mean of the per-batch losses
 * computed before each update: with a tiny learning rate the weights barely
 * move, so the epoch's loss matches an evaluation before training. */
static void test_running_mean_loss(void **state)
{
    (void)state;
    nb_model *m = lab_model(NB_LINEAR, 4);
    nb_compile(m, &(nb_compile_opts){.loss = NB_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
                                     .optimizer = nb_sgd(1e-9f)});
    float before, acc;
    assert_int_equal(nb_evaluate(m, blob_x, blob_y, 100, &before, &acc), NB_OK);
    nb_history h;
    nb_fit_opts o = quiet;
    o.batch_size = 30; /* 30, 30, 30, 10 */
    assert_int_equal(nb_fit(m, blob_x, blob_y, 100, &o, &h), NB_OK);
    assert_float_equal(h.loss[0], before, 1e-5);
    assert_float_equal(h.accuracy[0], acc, 1e-6);
    nb_history_free(&h);
    nb_model_free(m);
}

/* validation_split takes the LAST samples before shuffling. */
static void test_validation_split(void **state)
{
    (void)state;
    nb_model *m = lab_compiled(NB_LINEAR, true, 12);
    nb_history h;
    nb_fit_opts o = quiet;
    o.validation_split = 0.2f;
    assert_int_equal(nb_fit(m, blob_x, blob_y, 10, &o, &h), NB_OK);
    assert_int_equal(h.train_samples, 8);
    assert_int_equal(h.val_samples, 2);
    assert_int_equal(h.steps_per_epoch, 1);
    /* the reported validation values are those of samples 8 and 9 after the epoch */
    float vl, va, fl, fa;
    assert_int_equal(nb_evaluate(m, blob_x + 16, blob_y + 8, 2, &vl, &va), NB_OK);
    assert_int_equal(nb_evaluate(m, blob_x, blob_y, 2, &fl, &fa), NB_OK);
    assert_float_equal(h.val_loss[0], vl, 1e-6);
    assert_float_equal(h.val_accuracy[0], va, 1e-6);
    assert_true(fabsf(h.val_loss[0] - fl) > 1e-4f);
    nb_history_free(&h);

    /* explicit validation data */
    nb_dataset val = {.n = 3, .x = blob_x + 40, .labels = blob_y + 20};
    o.validation_split = 0;
    o.validation_data = &val;
    assert_int_equal(nb_fit(m, blob_x, blob_y, 20, &o, &h), NB_OK);
    assert_int_equal(h.val_samples, 3);
    assert_int_equal(nb_evaluate(m, blob_x + 40, blob_y + 20, 3, &vl, &va), NB_OK);
    assert_float_equal(h.val_loss[0], vl, 1e-6);
    nb_history_free(&h);

    /* bad splits */
    o.validation_data = NULL;
    o.validation_split = 1.0f;
    assert_int_equal(nb_fit(m, blob_x, blob_y, 10, &o, &h), NB_ERR_ARG);
    o.validation_split = 0.01f; /* nothing left for validation out of 10 */
    assert_int_equal(nb_fit(m, blob_x, blob_y, 10, &o, &h), NB_ERR_ARG);
    assert_non_null(strstr(nb_last_error(), "validation_split"));
    nb_model_free(m);

    /* Keras's figures: 60000 samples, split 0.2 -> 48000 / 12000, 1500 steps */
    enum { BIG = 60000 };
    float *x = calloc(BIG, sizeof *x), *y = calloc(BIG, sizeof *y);
    m = nb_sequential(1);
    nb_add_dense(m, 1, NB_LINEAR);
    nb_compile(m, &(nb_compile_opts){.loss = NB_MEAN_SQUARED_ERROR, .optimizer = nb_sgd(0.01f)});
    steps_seen seen = {0};
    o = quiet;
    o.validation_split = 0.2f;
    o.on_step = on_step;
    o.ctx = &seen;
    assert_int_equal(nb_fit(m, x, y, BIG, &o, &h), NB_OK);
    assert_int_equal(h.train_samples, 48000);
    assert_int_equal(h.val_samples, 12000);
    assert_int_equal(h.steps_per_epoch, 1500);
    assert_int_equal(seen.calls, 1500);
    nb_history_free(&h);
    o.validation_split = 0;
    memset(&seen, 0, sizeof seen);
    assert_int_equal(nb_fit(m, x, y, BIG, &o, &h), NB_OK);
    assert_int_equal(h.steps_per_epoch, 1875);
    nb_history_free(&h);
    free(x);
    free(y);
    nb_model_free(m);
}

/* Same seed, same data: bit-identical weights; shuffling matters. */
static void test_determinism(void **state)
{
    (void)state;
    nb_fit_opts o = quiet;
    o.epochs = 2;
    o.validation_split = 0.1f;
    nb_model *a = lab_compiled(NB_LINEAR, true, 99), *b = lab_compiled(NB_LINEAR, true, 99);
    assert_int_equal(nb_fit(a, blob_x, blob_y, 500, &o, NULL), NB_OK);
    assert_int_equal(nb_fit(b, blob_x, blob_y, 500, &o, NULL), NB_OK);
    float *wa = weights_of(a), *wb = weights_of(b);
    size_t n = nb_model_param_count(a);
    assert_memory_equal(wa, wb, n * sizeof *wa);
    /* a fit seed changes the order, hence the weights */
    nb_model *c = lab_compiled(NB_LINEAR, true, 99);
    o.seed = 5;
    assert_int_equal(nb_fit(c, blob_x, blob_y, 500, &o, NULL), NB_OK);
    float *wc = weights_of(c);
    assert_true(memcmp(wa, wc, n * sizeof *wa) != 0);
    /* bytes scaled per batch give exactly the floats they stand for */
    enum { NU = 300 };
    static uint8_t xu[NU * 2];
    static float xf[NU * 2];
    static uint8_t yu[NU];
    for (int i = 0; i < NU * 2; i++) {
        xu[i] = (uint8_t)(i * 37 % 256);
        xf[i] = (float)xu[i] * (1.0f / 255.0f);
    }
    for (int i = 0; i < NU; i++) yu[i] = (uint8_t)blob_y[i];
    nb_model *d = lab_compiled(NB_LINEAR, true, 3), *e = lab_compiled(NB_LINEAR, true, 3);
    o.seed = 0;
    o.validation_split = 0;
    assert_int_equal(nb_fit(d, xf, blob_y, NU, &o, NULL), NB_OK);
    nb_dataset du = {.n = NU, .x_u8 = xu, .x_scale = 1.0f / 255.0f, .labels_u8 = yu};
    assert_int_equal(nb_fit_data(e, &du, &o, NULL), NB_OK);
    float *wd = weights_of(d), *we = weights_of(e);
    assert_memory_equal(wd, we, n * sizeof *wd);
    float pd[8], pe[8];
    assert_int_equal(nb_predict(d, xf, 2, pd), NB_OK);
    du.n = 2;
    assert_int_equal(nb_predict_data(e, &du, pe), NB_OK);
    assert_memory_equal(pd, pe, sizeof pd);
    free(wa);
    free(wb);
    free(wc);
    free(wd);
    free(we);
    nb_model_free(a);
    nb_model_free(b);
    nb_model_free(c);
    nb_model_free(d);
    nb_model_free(e);
}

/* The thread count barely changes results: GEMMs and the optimizer are split by
 * output rows/columns and by parameters, never inside a sum, but BLIS may pick a
 * kernel with another summation order for a smaller piece of a product (its
 * small-matrix path), so the last bits may differ. The same count twice gives
 * identical weights. The model is large enough that both are actually shared. */
static void test_threads_bit_identical(void **state)
{
    (void)state;
    enum { N = 96, IN = 300, HID = 256, OUT = 10 };
    float *x = malloc(sizeof(float) * N * IN);
    int32_t y[N];
    nb_rng r;
    nb_rng_seed(&r, 11);
    for (int i = 0; i < N * IN; i++) x[i] = nb_rng_uniform(&r);
    for (int i = 0; i < N; i++) y[i] = (int32_t)nb_rng_below(&r, OUT);
    float *w[4] = {NULL, NULL, NULL, NULL};
    size_t n = 0;
    int threads[4] = {1, 2, 3, 2};
    for (int t = 0; t < 4; t++) {
        nb_set_num_threads(threads[t]);
        nb_model *m = nb_sequential(IN);
        assert_int_equal(nb_add_dense(m, HID, NB_RELU), NB_OK);
        assert_int_equal(nb_add_dense(m, OUT, NB_LINEAR), NB_OK);
        assert_int_equal(nb_compile(m, &(nb_compile_opts){.loss = NB_SPARSE_CATEGORICAL_CROSSENTROPY,
                                                         .from_logits = true, .optimizer = nb_adam(0.001f)}),
                         NB_OK);
        nb_fit_opts o = quiet;
        o.epochs = 2;
        o.batch_size = 64;
        assert_int_equal(nb_fit(m, x, y, N, &o, NULL), NB_OK);
        n = nb_model_param_count(m);
        w[t] = weights_of(m);
        nb_model_free(m);
    }
    nb_set_num_threads(1);
    assert_memory_equal(w[1], w[3], n * sizeof(float)); /* same count: bit for bit */
    for (int t = 1; t < 3; t++)
        for (size_t i = 0; i < n; i++) assert_float_equal(w[t][i], w[0][i], 1e-5 + 1e-4 * fabsf(w[0][i]));
    for (int t = 0; t < 4; t++) free(w[t]);
    free(x);
}

/* After the first step, training steps allocate nothing (library allocations). */
static void test_zero_allocations_per_step(void **state)
{
    (void)state;
    nb_model *m = lab_compiled(NB_SOFTMAX, false, 8);
    steps_seen seen = {0};
    nb_fit_opts o = quiet;
    o.epochs = 3;
    o.validation_split = 0.1f;
    o.on_step = on_step;
    o.ctx = &seen;
    /* 180 training samples: 6 steps of 32 with a partial batch of 20; 20 validation */
    assert_int_equal(nb_fit(m, blob_x, blob_y, 200, &o, NULL), NB_OK);
    assert_int_equal(seen.calls, 18);
    for (int i = 1; i < seen.calls; i++) assert_int_equal(seen.allocs[i], seen.allocs[0]);
    /* a second fit and predictions after warm-up allocate only per call, not per batch */
    memset(&seen, 0, sizeof seen);
    unsigned long before = nb_alloc_count();
    assert_int_equal(nb_fit(m, blob_x, blob_y, 200, &o, NULL), NB_OK);
    assert_true(seen.allocs[0] - before <= 5); /* the history's four arrays and the index array */
    for (int i = 1; i < seen.calls; i++) assert_int_equal(seen.allocs[i], seen.allocs[0]);
    float out[BLOBS * 4];
    assert_int_equal(nb_predict(m, blob_x, BLOBS, out), NB_OK);
    before = nb_alloc_count();
    assert_int_equal(nb_predict(m, blob_x, BLOBS, out), NB_OK);
    float l, a;
    assert_int_equal(nb_evaluate(m, blob_x, blob_y, BLOBS, &l, &a), NB_OK);
    assert_int_equal(nb_alloc_count(), before);
    nb_model_free(m);
}

/* ---- errors ---- */

static void test_errors(void **state)
{
    (void)state;
    assert_null(nb_sequential(0));
    assert_null(nb_sequential(NB_MAX_UNITS + 1));
    assert_non_null(strstr(nb_last_error(), "input width"));
    nb_model *m = nb_sequential(2);
    assert_int_equal(nb_add_dense(m, 0, NB_RELU), NB_ERR_ARG);
    assert_int_equal(nb_add_dense(m, 4, (nb_activation)17), NB_ERR_ARG);
    assert_int_equal(nb_add_dense(NULL, 4, NB_RELU), NB_ERR_ARG);
    assert_int_equal(nb_model_layer_count(m), 0);
    /* compile needs a layer, a loss and an optimizer */
    assert_int_equal(nb_compile(m, &(nb_compile_opts){.loss = NB_MEAN_SQUARED_ERROR, .optimizer = nb_adam(0.01f)}),
                     NB_ERR_ARG);
    nb_add_dense(m, 3, NB_LINEAR);
    /* fit / evaluate before compile */
    assert_int_equal(nb_fit(m, blob_x, blob_y, 10, NULL, NULL), NB_ERR_STATE);
    assert_non_null(strstr(nb_last_error(), "compile"));
    assert_int_equal(nb_evaluate(m, blob_x, blob_y, 10, NULL, NULL), NB_ERR_STATE);
    /* predict works without compile */
    float out[6];
    assert_int_equal(nb_predict(m, blob_x, 2, out), NB_OK);
    assert_int_equal(nb_compile(m, NULL), NB_ERR_ARG);
    assert_int_equal(nb_compile(m, &(nb_compile_opts){.loss = NB_MEAN_SQUARED_ERROR}), NB_ERR_ARG);
    assert_non_null(strstr(nb_last_error(), "optimizer"));
    assert_int_equal(nb_compile(m, &(nb_compile_opts){.loss = (nb_loss)9, .optimizer = nb_adam(0.01f)}), NB_ERR_ARG);
    assert_int_equal(nb_compile(m, &(nb_compile_opts){.loss = NB_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
                                                      .optimizer = nb_adam(0.01f)}),
                     NB_OK);
    assert_int_equal(nb_model_loss(m), NB_SPARSE_CATEGORICAL_CROSSENTROPY);
    assert_true(nb_model_from_logits(m));
    assert_non_null(nb_model_optimizer(m));
    assert_int_equal(nb_add_dense(m, 3, NB_LINEAR), NB_ERR_STATE);
    assert_int_equal(nb_model_set_seed(m, 1), NB_ERR_STATE);
    /* labels out of range: reported before any update */
    float *w0 = weights_of(m);
    int32_t bad[4] = {0, 1, 3, 2};
    assert_int_equal(nb_fit(m, blob_x, bad, 4, &quiet, NULL), NB_ERR_LABEL);
    assert_non_null(strstr(nb_last_error(), "label 3"));
    float *w1 = weights_of(m);
    assert_memory_equal(w0, w1, nb_model_param_count(m) * sizeof *w0);
    int32_t neg[2] = {0, -1};
    assert_int_equal(nb_evaluate(m, blob_x, neg, 2, NULL, NULL), NB_ERR_LABEL);
    /* bad arguments */
    assert_int_equal(nb_fit(m, NULL, blob_y, 4, &quiet, NULL), NB_ERR_ARG);
    assert_int_equal(nb_fit(m, blob_x, NULL, 4, &quiet, NULL), NB_ERR_ARG);
    assert_int_equal(nb_fit(m, blob_x, blob_y, 0, &quiet, NULL), NB_ERR_ARG);
    assert_int_equal(nb_fit(NULL, blob_x, blob_y, 4, &quiet, NULL), NB_ERR_ARG);
    assert_int_equal(nb_fit(m, blob_x, blob_y, 4, &(nb_fit_opts){.epochs = -1}, NULL), NB_ERR_ARG);
    assert_int_equal(nb_fit(m, blob_x, blob_y, 4, &(nb_fit_opts){.batch_size = -2}, NULL), NB_ERR_ARG);
    assert_int_equal(nb_predict(m, NULL, 2, out), NB_ERR_ARG);
    assert_int_equal(nb_predict(m, blob_x, 2, NULL), NB_ERR_ARG);
    assert_int_equal(nb_model_get_weights(m, w0, 3), NB_ERR_ARG);
    assert_int_equal(nb_model_set_weights(m, w0, 3), NB_ERR_ARG);
    /* weights set after compile are the ones predicted with */
    for (size_t i = 0; i < nb_model_param_count(m); i++) w0[i] = 0;
    w0[nb_model_param_count(m) - 1] = 5; /* last bias */
    assert_int_equal(nb_model_set_weights(m, w0, nb_model_param_count(m)), NB_OK);
    assert_int_equal(nb_predict(m, blob_x, 2, out), NB_OK);
    assert_true(out[0] == 0 && out[2] == 5 && out[5] == 5);
    /* compiling again keeps the weights and takes the new optimizer; a failed
     * compile keeps the previous compilation (and frees the optimizer it got) */
    assert_int_equal(nb_compile(m, &(nb_compile_opts){.loss = NB_MEAN_SQUARED_ERROR, .optimizer = nb_sgd(0.1f)}), NB_OK);
    assert_string_equal(nb_model_optimizer(m)->def->name, "sgd");
    assert_int_equal(nb_model_loss(m), NB_MEAN_SQUARED_ERROR);
    assert_int_equal(nb_compile(m, &(nb_compile_opts){.loss = (nb_loss)0, .optimizer = nb_adam(0.1f)}), NB_ERR_ARG);
    assert_string_equal(nb_model_optimizer(m)->def->name, "sgd");
    free(w1);
    w1 = weights_of(m);
    assert_memory_equal(w0, w1, nb_model_param_count(m) * sizeof *w0);
    free(w0);
    free(w1);
    nb_model_free(m);
    nb_model_free(NULL);
    nb_history_free(NULL);
}

/* ---- output ---- */

static char *cap_buf; /* open_memstream's target (static: it outlives the call) */
static size_t cap_len;

static char *capture_fit(nb_model *m, nb_verbosity v, int epochs, int n)
{
    FILE *f = open_memstream(&cap_buf, &cap_len);
    assert_non_null(f);
    nb_fit_opts o = {.epochs = epochs, .validation_split = 0.2f, .verbose = v, .out = f};
    assert_int_equal(nb_fit(m, blob_x, blob_y, n, &o, NULL), NB_OK);
    fclose(f);
    return cap_buf;
}

static void test_progress_output(void **state)
{
    (void)state;
    nb_model *m = lab_compiled(NB_LINEAR, true, 21);
    /* verbose 2 (and AUTO when not a terminal): one line per epoch */
    const char *line =
        "^ *[0-9]+/[0-9]+ - [0-9]+s - loss: [0-9]\\.[0-9]{4} - accuracy: [0-9]\\.[0-9]{4} - val_loss: [0-9]\\.[0-9]{4} - "
        "val_accuracy: [0-9]\\.[0-9]{4} - [0-9]+(s|ms|us)/epoch - [0-9]+(s|ms|us)/step$";
    regex_t re;
    assert_int_equal(regcomp(&re, line, REG_EXTENDED | REG_NOSUB), 0);
    for (int v = 0; v < 2; v++) {
        char *out = capture_fit(m, v ? NB_VERBOSE_EPOCH : NB_VERBOSE_AUTO, 2, 1000);
        /* 800 training samples: 25 steps */
        char *save = NULL, *l1 = strtok_r(out, "\n", &save), *l2 = strtok_r(NULL, "\n", &save);
        char *l3 = strtok_r(NULL, "\n", &save), *l4 = strtok_r(NULL, "\n", &save);
        assert_string_equal(l1, "Epoch 1/2");
        assert_int_equal(regexec(&re, l2, 0, NULL, 0), 0);
        assert_true(strncmp(l2, "25/25 - ", 8) == 0);
        assert_string_equal(l3, "Epoch 2/2");
        assert_int_equal(regexec(&re, l4, 0, NULL, 0), 0);
        assert_null(strtok_r(NULL, "\n", &save));
        free(out);
    }
    regfree(&re);
    /* one epoch: no header */
    char *out = capture_fit(m, NB_VERBOSE_EPOCH, 1, 1000);
    assert_true(strncmp(out, "25/25 - ", 8) == 0);
    free(out);
    /* silent */
    out = capture_fit(m, NB_VERBOSE_SILENT, 2, 1000);
    assert_string_equal(out, "");
    free(out);
    /* the bar: redrawn with '\r', ends with the full bar, the step time and val metrics */
    out = capture_fit(m, NB_VERBOSE_BAR, 1, 1000);
    assert_non_null(strchr(out, '\r'));
    char *last = strrchr(out, '\r');
    assert_int_equal(regcomp(&re,
                             "^\r25/25 \\[==============================\\] - [0-9]+s [0-9]+(s|ms|us)/step - loss: "
                             "[0-9]\\.[0-9]{4} - accuracy: [0-9]\\.[0-9]{4} - val_loss: [0-9]\\.[0-9]{4} - "
                             "val_accuracy: [0-9]\\.[0-9]{4} *\n$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    assert_int_equal(regexec(&re, last, 0, NULL, 0), 0);
    regfree(&re);
    /* while running: " - ETA: ", a '>' head and dots */
    assert_non_null(strstr(out, " 1/25 [>.............................] - ETA: "));
    free(out);
    nb_model_free(m);
}

static void test_summary(void **state)
{
    (void)state;
    nb_model *m = nb_sequential(784);
    nb_add_dense(m, 128, NB_RELU);
    nb_add_dense(m, 10, NB_SOFTMAX);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    nb_model_summary(m, f);
    fclose(f);
    assert_non_null(strstr(buf, "Model: \"sequential\""));
    assert_non_null(strstr(buf, " Layer (type)                Output Shape              Param #"));
    assert_non_null(strstr(buf, " dense (Dense)               (None, 128)               100,480"));
    assert_non_null(strstr(buf, " dense_1 (Dense)             (None, 10)                1,290"));
    assert_non_null(strstr(buf, "Total params: 101,770 (397.54 KB)"));
    assert_non_null(strstr(buf, "Trainable params: 101,770 (397.54 KB)"));
    assert_non_null(strstr(buf, "Non-trainable params: 0"));
    free(buf);
    nb_model_free(m);
}

/* ---- save / load ---- */

static char tmpdir[64];

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/nabla_test_nn_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)))
            if (e->d_name[0] != '.') {
                snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(tmpdir);
    return 0;
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*len ? *len : 1);
    assert_int_equal(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void write_all(const char *path, const unsigned char *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, len, f), len);
    fclose(f);
}

static const char *const fashion[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                        "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

static void test_save_load_roundtrip(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/lab.nb", tmpdir);
    nb_model *m = lab_compiled(NB_SOFTMAX, false, 31);
    assert_int_equal(nb_model_set_class_names(m, fashion, 4), NB_OK);
    nb_fit_opts o = quiet;
    o.epochs = 2;
    assert_int_equal(nb_fit(m, blob_x, blob_y, 400, &o, NULL), NB_OK);
    assert_int_equal(nb_save(m, path), NB_OK);
    nb_model *l = nb_load(path);
    assert_non_null(l);
    /* architecture, compile settings, names */
    assert_int_equal(nb_model_input_width(l), 2);
    assert_int_equal(nb_model_layer_count(l), 3);
    assert_int_equal(nb_model_layer_units(l, 1), 15);
    assert_int_equal(nb_model_layer_activation(l, 2), NB_SOFTMAX);
    assert_int_equal(nb_model_loss(l), NB_SPARSE_CATEGORICAL_CROSSENTROPY);
    assert_false(nb_model_from_logits(l));
    assert_int_equal(nb_model_class_count(l), 4);
    assert_string_equal(nb_model_class_name(l, 3), "Dress");
    assert_null(nb_model_class_name(l, 4));
    /* predictions: bit-identical */
    float pm[BLOBS * 4], pl[BLOBS * 4];
    assert_int_equal(nb_predict(m, blob_x, BLOBS, pm), NB_OK);
    assert_int_equal(nb_predict(l, blob_x, BLOBS, pl), NB_OK);
    assert_memory_equal(pm, pl, sizeof pm);
    /* optimizer state: resuming gives the same weights as training on */
    nb_optimizer *om = nb_model_optimizer(m), *ol = nb_model_optimizer(l);
    assert_int_equal(om->iterations, ol->iterations);
    assert_int_equal(ol->iterations, 2 * 13);
    assert_memory_equal(om->hparams, ol->hparams, sizeof om->hparams);
    assert_memory_equal(nb_optimizer_slot(om, 1), nb_optimizer_slot(ol, 1), om->n * sizeof(float));
    o.seed = 77; /* the same shuffle in both */
    assert_int_equal(nb_fit(m, blob_x, blob_y, 400, &o, NULL), NB_OK);
    assert_int_equal(nb_fit(l, blob_x, blob_y, 400, &o, NULL), NB_OK);
    float *wm = weights_of(m), *wl = weights_of(l);
    assert_memory_equal(wm, wl, nb_model_param_count(m) * sizeof *wm);
    free(wm);
    free(wl);
    nb_model_free(l);

    /* an uncompiled model round-trips too */
    nb_model *u = lab_model(NB_LINEAR, 2);
    assert_int_equal(nb_save(u, path), NB_OK);
    l = nb_load(path);
    assert_non_null(l);
    assert_int_equal(nb_model_loss(l), NB_LOSS_NONE);
    assert_null(nb_model_optimizer(l));
    assert_int_equal(nb_predict(u, blob_x, 10, pm), NB_OK);
    assert_int_equal(nb_predict(l, blob_x, 10, pl), NB_OK);
    assert_memory_equal(pm, pl, 40 * sizeof(float));
    nb_model_free(l);
    nb_model_free(u);
    nb_model_free(m);

    assert_int_equal(nb_save(NULL, path), NB_ERR_ARG);
    assert_null(nb_load(NULL));
    snprintf(path, sizeof path, "%s/missing.nb", tmpdir);
    assert_null(nb_load(path));
    assert_non_null(strstr(nb_last_error(), "missing.nb"));
}

/* Put a fresh CRC (and file_size) on an edited file. */
static void refresh(unsigned char *b, size_t len)
{
    for (int i = 0; i < 8; i++) b[12 + i] = (unsigned char)((uint64_t)len >> (8 * i));
    uint32_t c = (uint32_t)crc32(0L, b, (uInt)(len - 4));
    for (int i = 0; i < 4; i++) b[len - 4 + i] = (unsigned char)(c >> (8 * i));
}

static void expect_load_error(const char *path, const unsigned char *b, size_t len, const char *what)
{
    write_all(path, b, len);
    nb_clear_error();
    nb_model *m = nb_load(path);
    if (m) fprintf(stderr, "loaded a corrupt file (%s)\n", what ? what : "");
    assert_null(m);
    assert_true(nb_last_error()[0] != '\0');
    assert_non_null(strstr(nb_last_error(), "bad.nb"));
    if (what && !strstr(nb_last_error(), what)) fprintf(stderr, "expected \"%s\" in: %s\n", what, nb_last_error());
    if (what) assert_non_null(strstr(nb_last_error(), what));
}

static void test_load_corruption(void **state)
{
    (void)state;
    char good[128], bad[128];
    snprintf(good, sizeof good, "%s/good.nb", tmpdir);
    snprintf(bad, sizeof bad, "%s/bad.nb", tmpdir);
    /* a version 1 file (tests/data/README.md): its fields sit at fixed offsets */
    size_t len;
    unsigned char *b = read_all(NB_TEST_DATA "/v1_corrupt.nb", &len);
    write_all(good, b, len);

    unsigned char *c = malloc(len);
    /* the layout of this file (nn/FORMAT.md) */
    const size_t layers_at = 28, loss_at = layers_at + 16, names_at = loss_at + 8;
    const size_t params_at = names_at + 4 + 4 + 11 + 4 + 7 + 8; /* after the two names and the seed */
    assert_int_equal(len, params_at + 8 + 4 * 26 + 4 + 4 + 4 + 4 + 4 * 5 + 8 + 4 + 8 + 4 * 2 * 26 + 4);

    /* every truncation */
    for (size_t cut = 0; cut < len; cut++) expect_load_error(bad, b, cut, NULL);
    /* every byte flipped (one bit, then all bits) */
    for (size_t i = 0; i < len; i++) {
        for (int mask = 0; mask < 2; mask++) {
            memcpy(c, b, len);
            c[i] ^= mask ? 0xff : 0x10;
            expect_load_error(bad, c, len, NULL);
        }
    }
    /* named failures */
    memcpy(c, b, len);
    c[0] = 'X';
    expect_load_error(bad, c, len, "magic");
    memcpy(c, b, len);
    c[8] = 3; /* a version this build does not know */
    expect_load_error(bad, c, len, "version");
    expect_load_error(bad, b, len - 1, "truncated");
    /* fields out of range, with a valid CRC: each must be named */
    struct { size_t at; uint32_t v; const char *what; } edits[] = {
        {20, 0, "input_width"},
        {20, (1u << 24) + 1, "input_width"},
        {24, 5000, "n_layers"},
        {24, 3, NULL}, /* one more layer than the file holds: the rest is misread */
        {layers_at, (1u << 24) + 1, "layer 0 units"},
        {layers_at, 1u << 20, "do not fit"},
        {layers_at + 4, 9, "layer 0 activation"},
        {loss_at, 7, "loss"},
        {loss_at + 4, 2, "from_logits"},
        {names_at, 70000, "n_class_names"},
        {names_at, 100000, "n_class_names"},
        {names_at + 4, 300, "class name 0 length"},
        {params_at, 27, "n_params"},
        {params_at + 4, 1, "n_params"},
        {params_at + 8 + 4 * 26, 2, "has_optimizer"},
        {params_at + 8 + 4 * 26 + 4, 40, "optimizer name length"},
        {params_at + 8 + 4 * 26 + 4 + 4, 0x7878, "optimizer"}, /* "xxam": unknown kind */
        {params_at + 8 + 4 * 26 + 12, 9, "optimizer n_hparams"},
        {params_at + 8 + 4 * 26 + 12, 4, "hyperparameters"},
        {params_at + 8 + 4 * 26 + 16 + 20 + 8, 1, "state vectors"},
        {params_at + 8 + 4 * 26 + 16 + 20 + 12, 5, "slot_length"},
    };
    for (size_t e = 0; e < sizeof edits / sizeof edits[0]; e++) {
        memcpy(c, b, len);
        for (int i = 0; i < 4; i++) c[edits[e].at + i] = (unsigned char)(edits[e].v >> (8 * i));
        refresh(c, len);
        expect_load_error(bad, c, len, edits[e].what);
    }
    /* a valid CRC over trailing junk */
    unsigned char *longer = malloc(len + 8);
    memcpy(longer, b, len - 4);
    memset(longer + len - 4, 0, 8);
    refresh(longer, len + 8);
    expect_load_error(bad, longer, len + 8, "unexpected bytes");
    /* not a regular file */
    nb_clear_error();
    assert_null(nb_load(tmpdir));
    assert_true(nb_last_error()[0] != '\0');
    /* the good file still loads */
    nb_model *l = nb_load(good);
    assert_non_null(l);
    nb_model_free(l);
    free(longer);
    free(b);
    free(c);
}

/* The current format: every truncation and every flipped byte is refused, the
 * intact file loads. */
static void test_load_corruption_v2(void **state)
{
    (void)state;
    char good[128], bad[128];
    snprintf(good, sizeof good, "%s/good2.nb", tmpdir);
    snprintf(bad, sizeof bad, "%s/bad.nb", tmpdir);
    nb_model *m = nb_sequential(3);
    nb_add_dense(m, 4, NB_TANH);
    nb_add_dense(m, 2, NB_SOFTMAX);
    nb_model_set_class_names(m, fashion, 2);
    nb_compile(m, &(nb_compile_opts){.loss = NB_CATEGORICAL_CROSSENTROPY, .optimizer = nb_adam(0.01f)});
    float x[6] = {1, 2, 3, 4, 5, 6}, y[4] = {1, 0, 0, 1};
    assert_int_equal(nb_fit(m, x, y, 2, &quiet, NULL), NB_OK);
    assert_int_equal(nb_save(m, good), NB_OK);
    size_t len;
    unsigned char *b = read_all(good, &len), *c = malloc(len);
    assert_int_equal(b[8], 2); /* version 2 */
    for (size_t cut = 0; cut < len; cut++) expect_load_error(bad, b, cut, NULL);
    for (size_t i = 0; i < len; i++) {
        memcpy(c, b, len);
        c[i] ^= 0x10;
        expect_load_error(bad, c, len, NULL);
    }
    /* fields edited under a valid CRC are named: the first layer's kind */
    memcpy(c, b, len);
    size_t kind_at = 20 + 4 + 4 + 4; /* sequential, n_layers, the kind's length */
    assert_memory_equal(c + kind_at, "dense", 5);
    c[kind_at] = 'x';
    refresh(c, len);
    expect_load_error(bad, c, len, "unknown kind \"xense\"");
    nb_model *l = nb_load(good);
    assert_non_null(l);
    float pm[4], pl[4];
    assert_int_equal(nb_predict(m, x, 2, pm), NB_OK);
    assert_int_equal(nb_predict(l, x, 2, pl), NB_OK);
    assert_memory_equal(pm, pl, sizeof pm);
    nb_model_free(l);
    nb_model_free(m);
    free(b);
    free(c);
}

/* A file written by version 1 loads and predicts what it predicted then. */
static void test_load_v1_fixture(void **state)
{
    (void)state;
    nb_model *m = nb_load(NB_TEST_DATA "/v1_mlp.nb");
    assert_non_null(m);
    assert_int_equal(nb_model_input_width(m), 4);
    assert_int_equal(nb_model_layer_count(m), 2);
    assert_int_equal(nb_model_layer_units(m, 0), 8);
    assert_int_equal(nb_model_layer_activation(m, 0), NB_TANH);
    assert_string_equal(nb_model_class_name(m, 2), "gamma");
    float x[24], out[18];
    for (int i = 0; i < 24; i++) x[i] = (float)((i * 7) % 11) / 11.0f - 0.4f;
    assert_int_equal(nb_predict(m, x, 6, out), NB_OK);
    FILE *f = fopen(NB_TEST_DATA "/v1_mlp.expected", "r");
    assert_non_null(f);
    for (int i = 0; i < 18; i++) {
        double want;
        assert_int_equal(fscanf(f, "%lf", &want), 1);
        assert_true(fabs(out[i] - want) <= 1e-6 * (1 + fabs(want)));
    }
    unsigned long long iters;
    assert_int_equal(fscanf(f, " adam iterations %llu", &iters), 1);
    fclose(f);
    assert_int_equal(nb_model_optimizer(m)->iterations, iters);
    /* saved again, it is a version 2 file that predicts the same */
    char path[128];
    snprintf(path, sizeof path, "%s/v1_again.nb", tmpdir);
    assert_int_equal(nb_save(m, path), NB_OK);
    nb_model *l = nb_load(path);
    assert_non_null(l);
    float again[18];
    assert_int_equal(nb_predict(l, x, 6, again), NB_OK);
    assert_memory_equal(out, again, sizeof out);
    nb_model_free(l);
    nb_model_free(m);
}

static bool no_temp_files(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    bool ok = true;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp")) ok = false;
    closedir(d);
    return ok;
}

/* A save that fails leaves the old file intact and no temporary file behind. */
static void test_atomic_save(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/keep.nb", tmpdir);
    nb_model *small = lab_model(NB_LINEAR, 1);
    assert_int_equal(nb_save(small, path), NB_OK);
    size_t len0;
    unsigned char *before = read_all(path, &len0);

    /* a write that runs out of space: the file-size limit makes writes fail with EFBIG */
    nb_model *big = nb_sequential(100);
    nb_add_dense(big, 100, NB_RELU);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 4096;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    nb_status s = nb_save(big, path);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    assert_int_equal(s, NB_ERR_IO);
    assert_non_null(strstr(nb_last_error(), "keep.nb"));
    size_t len1;
    unsigned char *after = read_all(path, &len1);
    assert_int_equal(len0, len1);
    assert_memory_equal(before, after, len0);
    free(after);
    assert_true(no_temp_files());

    /* a folder that does not exist */
    char nodir[160];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/m.nb", tmpdir);
    assert_int_equal(nb_save(small, nodir), NB_ERR_IO);
    assert_non_null(strstr(nb_last_error(), "m.nb"));

    /* an unwritable folder (root may write anyway: then the save simply succeeds) */
    if (geteuid() != 0) {
        chmod(tmpdir, 0555);
        assert_int_equal(nb_save(big, path), NB_ERR_IO);
        chmod(tmpdir, 0755);
        after = read_all(path, &len1);
        assert_memory_equal(before, after, len0);
        free(after);
    }
    /* replacing works when nothing fails */
    assert_int_equal(nb_save(big, path), NB_OK);
    nb_model *l = nb_load(path);
    assert_non_null(l);
    assert_int_equal(nb_model_input_width(l), 100);
    assert_true(no_temp_files());
    nb_model_free(l);
    free(before);
    nb_model_free(small);
    nb_model_free(big);
}

/* ---- failure injection: fail the k-th allocation of a whole model program ---- */

/* Returns 0 when every step succeeded; each failure must leave a message. */
static int model_program(const char *path)
{
    int rc = 1;
    nb_model *m = nb_sequential(2), *l = NULL;
    float out[8];
    nb_history h = {0};
    if (!m) goto done;
    if (nb_add_dense(m, 5, NB_RELU) || nb_add_dense(m, 4, NB_SOFTMAX)) goto done;
    if (nb_model_set_class_names(m, fashion, 4)) goto done;
    if (nb_predict(m, blob_x, 2, out)) goto done;
    if (nb_compile(m, &(nb_compile_opts){.loss = NB_SPARSE_CATEGORICAL_CROSSENTROPY, .optimizer = nb_adam(0.01f)}))
        goto done;
    nb_fit_opts o = quiet;
    o.epochs = 2;
    o.validation_split = 0.25f;
    if (nb_fit(m, blob_x, blob_y, 40, &o, &h)) goto done;
    if (nb_predict(m, blob_x, 2, out)) goto done;
    if (nb_save(m, path)) goto done;
    l = nb_load(path);
    if (!l) goto done;
    rc = 0;
done:
    if (rc) assert_true(nb_last_error()[0] != '\0');
    nb_history_free(&h);
    nb_model_free(l);
    nb_model_free(m);
    return rc;
}

static void test_failure_injection(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/fi.nb", tmpdir);
    nb_set_allocator(&failalloc);
    int failures = 0;
    for (long k = 0;; k++) {
        failalloc_arm(k);
        nb_clear_error();
        int rc = model_program(path);
        assert_int_equal(failalloc_live(), 0); /* everything freed, also after a failure */
        if (rc == 0) break;
        failures++;
        assert_true(k < 10000);
    }
    failalloc_arm(-1);
    nb_set_allocator(NULL);
    assert_true(failures > 20); /* the program does allocate; each failure was survived */
    assert_true(no_temp_files());
}

int main(void)
{
    make_blobs();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glorot_bounds_and_seed),
        cmocka_unit_test(test_lab_standard),
        cmocka_unit_test(test_lab_preferred),
        cmocka_unit_test(test_lab_forms_agree),
        cmocka_unit_test(test_other_losses),
        cmocka_unit_test(test_history_and_steps),
        cmocka_unit_test(test_running_mean_loss),
        cmocka_unit_test(test_validation_split),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_threads_bit_identical),
        cmocka_unit_test(test_zero_allocations_per_step),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_progress_output),
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_save_load_roundtrip),
        cmocka_unit_test(test_load_corruption),
        cmocka_unit_test(test_load_corruption_v2),
        cmocka_unit_test(test_load_v1_fixture),
        cmocka_unit_test(test_atomic_save),
        cmocka_unit_test(test_failure_injection),
    };
    int failed = cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
    bli_finalize();
    return failed;
}
