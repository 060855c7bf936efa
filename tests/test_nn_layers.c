/* test_nn_layers.c — layers and functional models: building with symbolic
 * tensors, shared layers, residual connections, the summary's shapes and
 * connections, saving and loading any graph, gradients checked at layer level,
 * and one home for the weights. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <nabla/nabla.h>
#include "nb_blis.h" /* bli_finalize: release BLIS's pools so a leak check sees only ours */
#include "tmpdir.h"

enum { N = 64, IN = 6, K = 3 };
static float xs[N * IN];
static int32_t ys[N];

static int setup(void **state)
{
    nb_rng r;
    nb_rng_seed(&r, 5);
    for (int i = 0; i < N; i++) {
        ys[i] = i % K;
        for (int j = 0; j < IN; j++) xs[i * IN + j] = nb_rng_uniform_range(&r, -1, 1) + (j == ys[i] ? 1.5f : 0.0f);
    }
    return tmpdir_setup(state);
}

/* x -> dense(6, tanh) -> add(x, .) -> dense(3): a residual block. */
static nb_model *residual(void)
{
    nb_model *m = nb_model_new();
    nb_sym x = nb_model_input(m, NB_F32, 1, (int[]){IN});
    nb_sym h = nb_call(nb_layer_dense(m, IN, NB_TANH), x);
    h = nb_call_n(nb_layer_add(m), 2, (nb_sym[]){x, h});
    assert_int_equal(nb_model_set_output(m, nb_call(nb_layer_dense(m, K, NB_LINEAR), h)), NB_OK);
    return m;
}

static nb_status compile(nb_model *m)
{
    return nb_compile(m, &(nb_compile_opts){.loss = NB_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
                                             .optimizer = nb_adam(0.01f)});
}

static const nb_fit_opts quiet = {.verbose = NB_VERBOSE_SILENT, .epochs = 20, .batch_size = 16};

static void test_residual_trains(void **state)
{
    (void)state;
    nb_model *m = residual();
    assert_int_equal(nb_model_param_count(m), (size_t)(IN * IN + IN + IN * K + K));
    assert_int_equal(compile(m), NB_OK);
    float loss0, loss1, acc;
    assert_int_equal(nb_evaluate(m, xs, ys, N, &loss0, &acc), NB_OK);
    assert_int_equal(nb_fit(m, xs, ys, N, &quiet, NULL), NB_OK);
    assert_int_equal(nb_evaluate(m, xs, ys, N, &loss1, &acc), NB_OK);
    assert_true(loss1 < 0.5f * loss0);
    assert_true(acc > 0.9f);
    double worst;
    nb_dataset d = {.n = 8, .x = xs, .labels = ys};
    assert_int_equal(nb_model_gradcheck(m, &d, true, 1e-2f, &worst), NB_OK);
    assert_true(worst < 2e-2);
    nb_model_free(m);
}

/* One layer called twice shares its weights: counted once, one gradient sum. */
static void test_shared_layer(void **state)
{
    (void)state;
    nb_model *m = nb_model_new();
    nb_sym x = nb_model_input(m, NB_F32, 1, (int[]){IN});
    nb_layer *d = nb_layer_dense(m, IN, NB_TANH);
    nb_sym h = nb_call(d, nb_call(d, x));
    assert_int_equal(nb_model_set_output(m, nb_call(nb_layer_dense(m, K, NB_LINEAR), h)), NB_OK);
    assert_int_equal(nb_model_param_count(m), (size_t)(IN * IN + IN + IN * K + K));
    assert_int_equal(compile(m), NB_OK);
    double worst;
    nb_dataset data = {.n = 5, .x = xs, .labels = ys};
    assert_int_equal(nb_model_gradcheck(m, &data, true, 1e-2f, &worst), NB_OK);
    assert_true(worst < 2e-2);
    /* a shared layer on another shape is refused, naming the layer */
    nb_model *b = nb_model_new();
    nb_sym a = nb_model_input(b, NB_F32, 1, (int[]){4});
    nb_layer *e = nb_layer_dense(b, 3, NB_RELU);
    nb_sym y = nb_call(e, a);
    assert_int_equal(nb_call(e, y), -1);
    assert_non_null(strstr(nb_last_error(), "dense"));
    assert_non_null(strstr(nb_last_error(), "same shapes"));
    nb_model_free(b);
    nb_model_free(m);
}

static void test_bad_building(void **state)
{
    (void)state;
    nb_model *m = nb_model_new();
    nb_sym x = nb_model_input(m, NB_F32, 1, (int[]){4});
    assert_int_equal(nb_model_input(m, NB_F32, 1, (int[]){0}), -1);
    assert_int_equal(nb_model_input(m, (nb_dtype)7, 1, (int[]){4}), -1);
    assert_null(nb_layer_dense(m, 0, NB_RELU));
    assert_non_null(strstr(nb_last_error(), "units"));
    assert_null(nb_layer_dense(m, 4, (nb_activation)99));
    assert_int_equal(nb_call(NULL, x), -1);
    /* Add of two shapes */
    nb_sym h = nb_call(nb_layer_dense(m, 5, NB_RELU), x);
    nb_sym bad = nb_call_n(nb_layer_add(m), 2, (nb_sym[]){x, h});
    assert_int_equal(bad, -1);
    assert_non_null(strstr(nb_last_error(), "(None, 4) and (None, 5)"));
    /* a failure propagates to set_output, with its status */
    nb_sym after = nb_call(nb_layer_dense(m, 2, NB_LINEAR), bad);
    assert_int_equal(after, -1);
    assert_int_equal(nb_model_set_output(m, after), NB_ERR_SHAPE);
    assert_int_equal(nb_model_set_output(m, 12345), NB_ERR_ARG);
    assert_int_equal(nb_model_set_output(m, x), NB_ERR_ARG); /* an input is no output */
    /* a functional model is not Sequential */
    assert_int_equal(nb_add_dense(m, 3, NB_RELU), NB_ERR_ARG);
    /* a layer of another model */
    nb_model *o = nb_sequential(4);
    assert_int_equal(nb_add_layer(o, nb_layer_dense(m, 3, NB_RELU)), NB_ERR_ARG);
    assert_int_equal(nb_add_layer(o, NULL), NB_ERR_ARG);
    nb_model_free(o);
    /* after compile nothing changes */
    assert_int_equal(nb_model_set_output(m, h), NB_OK);
    assert_int_equal(nb_compile(m, &(nb_compile_opts){.loss = NB_MEAN_SQUARED_ERROR, .optimizer = nb_sgd(0.1f)}), NB_OK);
    assert_null(nb_layer_flatten(m));
    assert_int_equal(nb_last_status(), NB_ERR_STATE);
    assert_int_equal(nb_call(nb_layer_dense(m, 2, NB_RELU), h), -1);
    nb_model_free(m);
}

static char *capture_summary(const nb_model *m)
{
    static char buf[8192];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    nb_model_summary(m, f);
    fclose(f);
    return buf;
}

static void test_summary(void **state)
{
    (void)state;
    nb_model *m = residual();
    const char *s = capture_summary(m);
    assert_non_null(strstr(s, "Model: \"functional\""));
    assert_non_null(strstr(s, "Connected to"));
    assert_non_null(strstr(s, "input_layer (InputLayer)"));
    assert_non_null(strstr(s, "add (Add)"));
    assert_non_null(strstr(s, "input_layer, dense"));
    assert_non_null(strstr(s, "dense_1 (Dense)"));
    assert_non_null(strstr(s, "(None, 3)"));
    assert_non_null(strstr(s, "Total params: 63"));
    nb_model_free(m);
    m = nb_sequential_shape(3, (int[]){4, 4, 2});
    assert_int_equal(nb_add_layer(m, nb_layer_flatten(m)), NB_OK);
    assert_int_equal(nb_add_dense(m, 5, NB_RELU), NB_OK);
    s = capture_summary(m);
    assert_non_null(strstr(s, "flatten (Flatten)           (None, 32)"));
    assert_non_null(strstr(s, "dense (Dense)               (None, 5)                 165"));
    assert_null(strstr(s, "Connected to"));
    nb_model_free(m);
}

static void test_save_load_functional(void **state)
{
    (void)state;
    nb_model *m = residual();
    assert_int_equal(compile(m), NB_OK);
    nb_fit_opts o = quiet;
    o.epochs = 2;
    assert_int_equal(nb_fit(m, xs, ys, N, &o, NULL), NB_OK);
    assert_int_equal(nb_save(m, at("f.nb")), NB_OK);
    nb_model *l = nb_load(at("f.nb"));
    assert_non_null(l);
    assert_int_equal(nb_model_layer_count(l), 3);
    assert_string_equal(nb_model_layer_kind(l, 1), "Add");
    assert_string_equal(nb_model_layer_name(l, 2), "dense_1");
    float pm[N * K], pl[N * K];
    assert_int_equal(nb_predict(m, xs, N, pm), NB_OK);
    assert_int_equal(nb_predict(l, xs, N, pl), NB_OK);
    assert_memory_equal(pm, pl, sizeof pm);
    /* training resumes identically */
    o.seed = 9;
    assert_int_equal(nb_fit(m, xs, ys, N, &o, NULL), NB_OK);
    assert_int_equal(nb_fit(l, xs, ys, N, &o, NULL), NB_OK);
    assert_memory_equal(nb_model_weights(m), nb_model_weights(l), nb_model_param_count(m) * sizeof(float));
    nb_model_free(l);
    nb_model_free(m);
}

/* The weights have one home: what fit's step callback reads is what the step
 * just wrote, and predict sees it without any copy. */
typedef struct probe {
    nb_model *m;
    float prev[64];
    int changed, steps;
} probe;

static void on_step(void *ctx, int epoch, int step, int steps, double loss, double acc)
{
    (void)epoch, (void)step, (void)steps, (void)loss, (void)acc;
    probe *p = ctx;
    float now[64];
    size_t n = nb_model_param_count(p->m);
    assert_int_equal(nb_model_get_weights(p->m, now, n), NB_OK);
    if (p->steps++ && memcmp(now, p->prev, n * sizeof *now) != 0) p->changed++;
    memcpy(p->prev, now, n * sizeof *now);
}

static void test_one_home(void **state)
{
    (void)state;
    probe p = {.m = residual()};
    assert_int_equal(compile(p.m), NB_OK);
    float before[N * K], after[N * K];
    assert_int_equal(nb_predict(p.m, xs, N, before), NB_OK);
    nb_fit_opts o = quiet;
    o.epochs = 1;
    o.on_step = on_step;
    o.ctx = &p;
    assert_int_equal(nb_fit(p.m, xs, ys, N, &o, NULL), NB_OK);
    assert_int_equal(p.steps, 4);
    assert_int_equal(p.changed, 3); /* every step's callback sees the previous step's update */
    assert_int_equal(nb_predict(p.m, xs, N, after), NB_OK);
    assert_memory_not_equal(before, after, sizeof before);
    /* setting weights is seen by the next predict */
    float zero[64] = {0};
    assert_int_equal(nb_model_set_weights(p.m, zero, nb_model_param_count(p.m)), NB_OK);
    assert_int_equal(nb_predict(p.m, xs, N, after), NB_OK);
    for (int i = 0; i < N * K; i++) assert_true(after[i] == 0.0f);
    nb_model_free(p.m);
}

/* A small convnet: every conv layer kind, batch norm (with states) and
 * dropout; its backward checked in training and inference mode. */
static nb_model *small_cnn(void)
{
    nb_model *m = nb_sequential_shape(3, (int[]){6, 5, 2});
    assert_int_equal(nb_add_layer(m, nb_layer_conv2d(m, 3, 3, 2, 1, NB_PAD_SAME, NB_TANH)), NB_OK);
    assert_int_equal(nb_add_layer(m, nb_layer_batch_norm(m)), NB_OK);
    assert_int_equal(nb_add_layer(m, nb_layer_max_pool2d(m, 2, 0, NB_PAD_VALID)), NB_OK);
    assert_int_equal(nb_add_layer(m, nb_layer_conv2d(m, 4, 2, 2, 1, NB_PAD_VALID, NB_LINEAR)), NB_OK);
    assert_int_equal(nb_add_layer(m, nb_layer_flatten(m)), NB_OK);
    assert_int_equal(nb_add_layer(m, nb_layer_dropout(m, 0.25f)), NB_OK);
    assert_int_equal(nb_add_dense(m, K, NB_LINEAR), NB_OK);
    return m;
}

/* Nodes of the given op kind in the model's training graph. */
static int count_kind(nb_model *m, int kind)
{
    nb_graph *g = nb_model_training_graph(m);
    int n = 0;
    for (int i = 0; i < nb_graph_size(g); i++) n += nb_op_kind_of(nb_graph_node(g, i)) == kind;
    return n;
}

/* A relu Conv2D read only by a MaxPooling2D builds as one fused node, whose
 * gradients pass the finite-difference check; one read by two layers does not. */
static void test_conv_pool_fused(void **state)
{
    (void)state;
    nb_model *m = nb_sequential_shape(3, (int[]){9, 8, 2});
    assert_int_equal(nb_add_layer(m, nb_layer_conv2d(m, 3, 3, 3, 1, NB_PAD_VALID, NB_RELU)), NB_OK);
    assert_int_equal(nb_add_layer(m, nb_layer_max_pool2d(m, 2, 0, NB_PAD_SAME)), NB_OK);
    assert_int_equal(nb_add_layer(m, nb_layer_flatten(m)), NB_OK);
    assert_int_equal(nb_add_dense(m, K, NB_LINEAR), NB_OK);
    assert_int_equal(compile(m), NB_OK);
    assert_int_equal(count_kind(m, NB_OP_CONV2D_RELU_MAX_POOL2D), 1);
    assert_int_equal(count_kind(m, NB_OP_CONV2D) + count_kind(m, NB_OP_MAX_POOL2D), 0);
    static float img[8 * 144];
    nb_rng r;
    nb_rng_seed(&r, 5);
    for (int i = 0; i < 8 * 144; i++) img[i] = nb_rng_uniform_range(&r, -1, 1);
    nb_dataset d = {.n = 8, .x = img, .labels = ys};
    double worst;
    assert_int_equal(nb_model_gradcheck(m, &d, true, 1e-3f, &worst), NB_OK);
    assert_true(worst < 1e-2);
    nb_model_free(m);

    m = nb_model_new(); /* the convolution's output also feeds a global average */
    nb_sym x = nb_model_input(m, NB_F32, 3, (int[]){9, 8, 2});
    nb_sym c = nb_call(nb_layer_conv2d(m, 3, 3, 3, 1, NB_PAD_VALID, NB_RELU), x);
    nb_sym p = nb_call(nb_layer_global_avg_pool2d(m), nb_call(nb_layer_max_pool2d(m, 2, 0, NB_PAD_VALID), c));
    nb_sym h = nb_call_n(nb_layer_add(m), 2, (nb_sym[]){p, nb_call(nb_layer_global_avg_pool2d(m), c)});
    assert_int_equal(nb_model_set_output(m, nb_call(nb_layer_dense(m, K, NB_LINEAR), h)), NB_OK);
    assert_int_equal(compile(m), NB_OK);
    assert_int_equal(count_kind(m, NB_OP_CONV2D_RELU_MAX_POOL2D), 0);
    assert_int_equal(count_kind(m, NB_OP_CONV2D), 1);
    assert_int_equal(nb_model_gradcheck(m, &d, true, 1e-3f, &worst), NB_OK);
    assert_true(worst < 1e-2);
    nb_model_free(m);
}

static void test_cnn_layers(void **state)
{
    (void)state;
    nb_model *m = small_cnn();
    /* conv 3*2*2*3 + 3, bn 4*3 (6 trainable), conv 2*2*3*4 + 4, dense 8*3 + 3 */
    assert_int_equal(nb_model_param_count(m), (size_t)(39 + 6 + 52 + 27));
    assert_int_equal(nb_model_state_count(m), 6u);
    const char *s = capture_summary(m);
    assert_non_null(strstr(s, "conv2d (Conv2D)             (None, 6, 5, 3)           39"));
    assert_non_null(strstr(s, "batch_normalization (BatchNormalization)"));
    assert_non_null(strstr(s, "max_pooling2d (MaxPooling2D) (None, 3, 2, 3)"));
    assert_non_null(strstr(s, "conv2d_1 (Conv2D)           (None, 2, 1, 4)           52"));
    assert_non_null(strstr(s, "Non-trainable params: 6"));
    assert_int_equal(compile(m), NB_OK);
    static float img[8 * 60];
    nb_rng r;
    nb_rng_seed(&r, 3);
    for (int i = 0; i < 8 * 60; i++) img[i] = nb_rng_uniform_range(&r, -1, 1);
    nb_dataset d = {.n = 8, .x = img, .labels = ys};
    double worst;
    /* a small step: max pooling's kinks are within 1e-2 of these inputs */
    assert_int_equal(nb_model_gradcheck(m, &d, false, 1e-3f, &worst), NB_OK);
    assert_true(worst < 1e-2);
    assert_int_equal(nb_model_gradcheck(m, &d, true, 1e-3f, &worst), NB_OK);
    assert_true(worst < 1e-2);
    /* training moves the moving statistics; they are saved and loaded */
    nb_fit_opts o = quiet;
    o.epochs = 2;
    o.batch_size = 4;
    assert_int_equal(nb_fit_data(m, &d, &o, NULL), NB_OK);
    assert_int_equal(nb_save(m, at("cnn.nb")), NB_OK);
    nb_model *l = nb_load(at("cnn.nb"));
    assert_non_null(l);
    assert_int_equal(nb_model_state_count(l), 6u);
    float pm[8 * K], pl[8 * K];
    assert_int_equal(nb_predict(m, img, 8, pm), NB_OK);
    assert_int_equal(nb_predict(l, img, 8, pl), NB_OK);
    assert_memory_equal(pm, pl, sizeof pm);
    nb_model_free(l);
    /* bad settings and shapes are refused, naming the layer */
    assert_null(nb_layer_conv2d(m, 0, 3, 3, 1, NB_PAD_VALID, NB_RELU));
    nb_model *b = nb_sequential(10);
    assert_int_equal(nb_add_layer(b, nb_layer_conv2d(b, 2, 3, 3, 1, NB_PAD_VALID, NB_RELU)), NB_ERR_SHAPE);
    assert_non_null(strstr(nb_last_error(), "needs images"));
    nb_model_free(b);
    b = nb_sequential_shape(3, (int[]){2, 2, 1});
    assert_int_equal(nb_add_layer(b, nb_layer_conv2d(b, 2, 3, 3, 1, NB_PAD_VALID, NB_RELU)), NB_ERR_SHAPE);
    assert_non_null(strstr(nb_last_error(), "does not fit"));
    assert_int_equal(nb_model_layer_count(b), 0); /* the failed layer is dropped */
    nb_model_free(b);
    nb_model_free(m);
}

/* A one-block causal transformer over token ids, checked at layer level. */
static void test_sequence_layers(void **state)
{
    (void)state;
    enum { T = 5, V = 7, D = 8 };
    nb_model *m = nb_model_new();
    nb_sym x = nb_model_input(m, NB_I32, 1, (int[]){T});
    nb_sym h = nb_call(nb_layer_position_embedding(m), nb_call(nb_layer_embedding(m, V, D), x));
    nb_sym a = nb_call(nb_layer_attention(m, 2, 4, true), nb_call(nb_layer_layer_norm(m, 1e-5f), h));
    h = nb_call_n(nb_layer_add(m), 2, (nb_sym[]){h, a});
    nb_sym f = nb_call(nb_layer_dense(m, D, NB_LINEAR), nb_call(nb_layer_dense(m, 2 * D, NB_GELU), h));
    h = nb_call_n(nb_layer_add(m), 2, (nb_sym[]){h, f});
    h = nb_call(nb_layer_last_position(m), nb_call(nb_layer_layer_norm(m, 1e-5f), h));
    assert_int_equal(nb_model_set_output(m, nb_call(nb_layer_dense(m, V, NB_LINEAR), h)), NB_OK);
    /* embedding 56, positions 40, ln 16, attention 4 * (8*8 + 8), dense 8*16+16, 16*8+8, ln 16, head 8*7+7 */
    assert_int_equal(nb_model_param_count(m), (size_t)(56 + 40 + 16 + 288 + 144 + 136 + 16 + 63));
    const char *s = capture_summary(m);
    assert_non_null(strstr(s, "multi_head_attention (MultiHeadAttention)"));
    assert_non_null(strstr(s, "(None, 5, 8)"));
    assert_int_equal(compile(m), NB_OK);
    int32_t ids[6 * T], labels[6];
    for (int i = 0; i < 6 * T; i++) ids[i] = (i * 3) % V;
    for (int i = 0; i < 6; i++) labels[i] = (i * 5) % V;
    nb_dataset d = {.n = 6, .x_i32 = ids, .labels = labels};
    double worst;
    assert_int_equal(nb_model_gradcheck(m, &d, true, 1e-2f, &worst), NB_OK);
    assert_true(worst < 2e-2);
    /* float features for a token model are refused */
    nb_dataset wrong = {.n = 6, .x = xs, .labels = labels};
    assert_int_equal(nb_fit_data(m, &wrong, &quiet, NULL), NB_ERR_ARG);
    assert_non_null(strstr(nb_last_error(), "x_i32"));
    /* an id outside the vocabulary fails the step, it is not read out of bounds */
    ids[3] = V;
    assert_int_equal(nb_fit_data(m, &d, &quiet, NULL), NB_ERR_ARG);
    ids[3] = 0;
    /* it learns the 6 sequences, and survives a save/load */
    nb_fit_opts o = quiet;
    o.epochs = 60;
    o.batch_size = 6;
    float loss0, loss1;
    assert_int_equal(nb_evaluate_data(m, &d, &loss0, NULL), NB_OK);
    assert_int_equal(nb_fit_data(m, &d, &o, NULL), NB_OK);
    assert_int_equal(nb_evaluate_data(m, &d, &loss1, NULL), NB_OK);
    assert_true(loss1 < 0.5f * loss0);
    assert_int_equal(nb_save(m, at("seq.nb")), NB_OK);
    nb_model *l = nb_load(at("seq.nb"));
    assert_non_null(l);
    float pm[6 * V], pl[6 * V];
    assert_int_equal(nb_predict_data(m, &d, pm), NB_OK);
    assert_int_equal(nb_predict_data(l, &d, pl), NB_OK);
    assert_memory_equal(pm, pl, sizeof pm);
    nb_model_free(l);
    nb_model_free(m);
}

/* train_on_batch: one step per call, nothing allocated after the first. */
static void test_train_on_batch(void **state)
{
    (void)state;
    nb_model *m = residual();
    assert_null(nb_model_training_graph(m));
    assert_int_equal(nb_train_on_batch(m, &(nb_dataset){.n = 4, .x = xs, .labels = ys}, NULL, NULL), NB_ERR_STATE);
    assert_int_equal(compile(m), NB_OK);
    assert_non_null(nb_model_training_graph(m));
    float first = 0, loss = 0, acc;
    for (int step = 0; step < 200; step++) {
        int at = (step * 16) % (N - 16);
        nb_dataset b = {.n = 16, .x = xs + at * IN, .labels = ys + at};
        unsigned long before = nb_alloc_count();
        assert_int_equal(nb_train_on_batch(m, &b, &loss, &acc), NB_OK);
        if (step > 0) assert_int_equal(nb_alloc_count() - before, 0);
        if (step == 0) first = loss;
    }
    assert_true(loss < 0.3f * first);
    assert_int_equal(nb_train_on_batch(m, &(nb_dataset){.n = 0, .x = xs, .labels = ys}, NULL, NULL), NB_ERR_ARG);
    nb_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_residual_trains), cmocka_unit_test(test_shared_layer),
        cmocka_unit_test(test_bad_building),    cmocka_unit_test(test_summary),
        cmocka_unit_test(test_save_load_functional), cmocka_unit_test(test_one_home),
        cmocka_unit_test(test_cnn_layers),      cmocka_unit_test(test_sequence_layers),
        cmocka_unit_test(test_train_on_batch),    cmocka_unit_test(test_conv_pool_fused),
    };
    int failed = cmocka_run_group_tests(tests, setup, tmpdir_teardown);
    bli_finalize();
    return failed;
}
