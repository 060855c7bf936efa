/* test_badinput.c — bad input everywhere a user can hand it in: NULL pointers,
 * zero and negative sizes, mismatched shapes and dtypes, out-of-range labels,
 * NaN and Inf, bad options; and truncated, corrupted, byte-swapped and empty
 * files for every loader (nb_load, the IDX reader, the picture reader). Each
 * case must end in a NULL or an error status with a message that says what was
 * wrong (checked by a fragment), and must not crash, leak (run under ASan or
 * valgrind) or hang. Inputs the fuzzers found are replayed here too. */
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>
#include <dirent.h>

#include <nabla/nabla.h>
#include "op_check.h" /* expect_op_fail */
#include "nb_blis.h" /* bli_finalize: release BLIS's pools so a leak check sees only ours */
#include "../examples/mnist/idx.h"
#include "../examples/mnist/preprocess.h"

/* ---- helpers ---- */
#include "tmpdir.h"

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void write_gz(const char *path, const void *p, size_t n)
{
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(gzwrite(f, p, (unsigned)n), (int)n);
    assert_int_equal(gzclose(f), Z_OK);
}

static uint8_t *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    assert_true(len > 0);
    rewind(f);
    uint8_t *b = malloc((size_t)len);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

/* A failing status with a message containing `frag`. */
#define expect_fail(call, want, frag)                                                                  \
    do {                                                                                               \
        nb_clear_error();                                                                              \
        nb_status s_ = (call);                                                                         \
        if (s_ != (want) || !strstr(nb_last_error(), (frag)))                                          \
            fail_msg("%s: got %s \"%s\", want %s with \"%s\"", #call, nb_status_name(s_), nb_last_error(), \
                     nb_status_name(want), (frag));                                                    \
    } while (0)

/* A NULL pointer result with a message containing `frag`. */
#define expect_null(call, frag)                                                                        \
    do {                                                                                               \
        nb_clear_error();                                                                              \
        const void *p_ = (call);                                                                       \
        if (p_ || !strstr(nb_last_error(), (frag)))                                                    \
            fail_msg("%s: got %p \"%s\", want NULL with \"%s\"", #call, p_, nb_last_error(), (frag));   \
    } while (0)

/* ---- core: graphs, leaves, running ---- */

static void test_core_null_and_sizes(void **state)
{
    (void)state;
    /* NULL graphs and tensors */
    nb_graph_free(NULL);
    assert_null(nb_graph_error(NULL));
    nb_graph_clear_error(NULL);
    assert_int_equal(nb_graph_size(NULL), 0);
    assert_null(nb_graph_node(NULL, 0));
    expect_null(nb_input(NULL, NB_F32, 2, (int[]){1, 2}), "graph is NULL");
    expect_null(nb_param(NULL, 1, (int[]){2}), "graph is NULL");
    expect_fail(nb_forward(NULL), NB_ERR_ARG, "NULL");
    expect_fail(nb_backward(NULL, NULL), NB_ERR_ARG, "NULL");
    nb_zero_grad(NULL);
    expect_fail(nb_graph_pack_params(NULL), NB_ERR_ARG, "NULL");
    assert_null(nb_graph_param_data(NULL));
    assert_null(nb_graph_param_grad(NULL));
    assert_int_equal(nb_graph_param_count(NULL), 0);
    expect_fail(nb_input_set_batch(NULL, 4), NB_ERR_ARG, "not an input");
    assert_null(nb_set_name(NULL, "x"));
    char buf[32];
    assert_string_equal(nb_shape_str(NULL, buf, sizeof buf), "(null)");
    assert_null(nb_shape_str(NULL, NULL, 0));
    expect_fail(nb_check_numerics(NULL), NB_ERR_ARG, "graph is NULL");

    nb_graph *g = nb_graph_new();
    assert_non_null(g);
    expect_op_fail(g, nb_input(g, NB_F32, 0, (int[]){1}), "batch dimension");
    expect_op_fail(g, nb_input(g, NB_F32, -1, (int[]){1}), "batch dimension");
    expect_op_fail(g, nb_input(g, NB_F32, NB_MAX_DIMS + 1, (int[]){1, 1, 1, 1, 1, 1, 1}), "ndim must be");
    expect_op_fail(g, nb_input(g, NB_F32, 2, NULL), "shape NULL");
    expect_op_fail(g, nb_input(g, NB_F32, 2, (int[]){0, 3}), "every dimension must be >= 1");
    expect_op_fail(g, nb_input(g, NB_F32, 2, (int[]){4, -3}), "(4, -3)");
    expect_op_fail(g, nb_input(g, (nb_dtype)7, 1, (int[]){3}), "unknown dtype 7");
    expect_op_fail(g, nb_param(g, 4, (int[]){INT_MAX, INT_MAX, INT_MAX, INT_MAX}), "total below 2^31");
    expect_op_fail(g, nb_param(g, 2, (int[]){1 << 16, 1 << 16}), "total below 2^31");
    assert_int_equal(nb_graph_size(g), 0); /* nothing half-made was kept */

    nb_tensor *x = nb_input(g, NB_F32, 2, (int[]){2, 3});
    nb_tensor *w = nb_param(g, 1, (int[]){3});
    assert_non_null(x);
    assert_non_null(w);
    expect_fail(nb_input_set_batch(w, 4), NB_ERR_ARG, "not an input");
    expect_fail(nb_input_set_batch(x, 0), NB_ERR_ARG, "batch must be >= 1, got 0");
    expect_fail(nb_input_set_batch(x, -7), NB_ERR_ARG, "got -7");
    expect_fail(nb_input_set_batch(x, INT_MAX), NB_ERR_ARG, "too large");
    expect_fail(nb_input_set(x, NULL, 2), NB_ERR_ARG, "source is NULL");
    assert_int_equal(x->shape[0], 2); /* unchanged by the failures */
    assert_null(nb_graph_node(g, -1));
    assert_null(nb_graph_node(g, 2));

    nb_tensor *y = nb_mul(g, x, w);
    assert_non_null(y);
    expect_fail(nb_backward(g, NULL), NB_ERR_ARG, "");
    expect_fail(nb_backward(g, y), NB_ERR_ARG, "");     /* not a scalar */
    nb_graph *other = nb_graph_new();
    nb_tensor *o = nb_param(other, 1, (int[]){1});
    expect_fail(nb_backward(g, o), NB_ERR_ARG, ""); /* another graph's node */
    expect_op_fail(g, nb_add(g, x, o), "");         /* mixing graphs */
    double worst = 0;
    assert_int_equal(nb_gradcheck(g, y, NULL, 0, 0, &worst), NB_ERR_ARG); /* not a scalar loss */
    assert_true(isnan(worst));
    assert_int_equal(nb_gradcheck(g, y, NULL, 0, 0, NULL), NB_ERR_ARG);
    assert_true(nb_last_error()[0] != '\0');
    nb_graph_free(other);
    nb_graph_free(g);
}

/* ---- ops: shapes, dtypes, labels, NULLs ---- */

static void test_ops_shapes_and_dtypes(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *a = nb_input(g, NB_F32, 2, (int[]){2, 3});
    nb_tensor *b = nb_param(g, 2, (int[]){4, 2});
    nb_tensor *v = nb_param(g, 1, (int[]){3});
    nb_tensor *lab = nb_input(g, NB_I32, 1, (int[]){2});
    nb_tensor *a4 = nb_input(g, NB_F32, 2, (int[]){2, 4});
    assert_non_null(lab);

    expect_op_fail(g, nb_matmul(g, a, b), "(2, 3)");  /* inner sizes 3 vs 4 */
    expect_op_fail(g, nb_matmul(g, a, v), "matmul"); /* 1-D */
    expect_op_fail(g, nb_matmul(g, lab, b), "matmul");
    expect_op_fail(g, nb_dense(g, a, b, NULL, NB_RELU), "(2, 3)");
    expect_op_fail(g, nb_dense(g, a4, b, v, NB_RELU), "dense"); /* bias of 3 for 2 outputs */
    expect_op_fail(g, nb_dense(g, a4, b, NULL, (nb_activation)99), "99");
    expect_op_fail(g, nb_add(g, a, a4), "(2, 4)");
    expect_op_fail(g, nb_sub(g, a, b), "sub");
    expect_op_fail(g, nb_mul(g, a, a4), "mul");
    /* dtype mismatches: an int32 label tensor where floats are needed */
    expect_op_fail(g, nb_add(g, a, lab), "add");
    expect_op_fail(g, nb_mul(g, lab, lab), "mul");
    expect_op_fail(g, nb_scale(g, lab, 2.0f), "scale");
    expect_op_fail(g, nb_relu(g, lab), "relu");
    expect_op_fail(g, nb_sigmoid(g, lab), "sigmoid");
    expect_op_fail(g, nb_tanh(g, lab), "tanh");
    expect_op_fail(g, nb_softmax(g, lab), "softmax");
    expect_op_fail(g, nb_log_softmax(g, lab), "log_softmax");
    expect_op_fail(g, nb_sum(g, lab), "sum");
    expect_op_fail(g, nb_mean(g, lab), "mean");
    expect_op_fail(g, nb_sparse_softmax_cross_entropy_with_logits(g, a, a), "label");    /* float labels */
    expect_op_fail(g, nb_sparse_softmax_cross_entropy_with_logits(g, lab, lab), "");     /* int logits */
    expect_op_fail(g, nb_softmax_cross_entropy_with_logits(g, a, lab), "");              /* int dense labels */
    expect_op_fail(g, nb_softmax_cross_entropy_with_logits(g, a, a4), "(2, 4)");
    expect_op_fail(g, nb_categorical_crossentropy(g, a, a4, true), "");
    expect_op_fail(g, nb_mean_squared_error(g, a, a4), "");
    expect_op_fail(g, nb_mean_squared_error(g, a, lab), "");
    /* label shape (B) with a different B */
    nb_tensor *lab3 = nb_input(g, NB_I32, 1, (int[]){3});
    expect_op_fail(g, nb_sparse_softmax_cross_entropy_with_logits(g, a, lab3), "");
    expect_op_fail(g, nb_sparse_categorical_crossentropy(g, a, lab3, false), "");
    /* reshape / flatten / activate */
    expect_op_fail(g, nb_reshape(g, a, 2, (int[]){4, 2}), "(4, 2)");
    expect_op_fail(g, nb_reshape(g, a, 2, (int[]){-1, -1}), "-1");
    expect_op_fail(g, nb_reshape(g, a, 2, (int[]){0, 6}), "reshape");
    expect_op_fail(g, nb_reshape(g, a, 3, (int[]){-2, 3, 1}), "reshape");
    expect_op_fail(g, nb_reshape(g, a, NB_MAX_DIMS + 1, (int[]){1, 1, 2, 3, 1, 1, 1}), "reshape");
    expect_op_fail(g, nb_reshape(g, a, 2, NULL), "reshape");
    expect_op_fail(g, nb_activate(g, a, (nb_activation)-1), "");
    expect_op_fail(g, nb_activate(g, a, (nb_activation)42), "");

    /* NULL sources: NULL result, the first message kept */
    nb_graph_clear_error(g);
    nb_tensor *bad = nb_matmul(g, a, b);
    char first[256];
    snprintf(first, sizeof first, "%s", nb_graph_error(g));
    assert_null(nb_relu(g, nb_add(g, bad, a)));
    assert_null(nb_sum(g, nb_softmax(g, NULL)));
    assert_null(nb_dense(g, NULL, b, NULL, NB_LINEAR));
    assert_null(nb_flatten(g, NULL));
    assert_string_equal(nb_graph_error(g), first);
    nb_graph_clear_error(g);
    expect_op_fail(g, nb_add(g, NULL, a), "NULL");
    /* a NULL graph */
    expect_null(nb_add(NULL, a, a), "");
    expect_null(nb_matmul(NULL, a, b), "");
    expect_null(nb_sparse_softmax_cross_entropy_with_logits(NULL, a, lab), "");
    nb_softmax_rows(NULL, 3, 3);
    float row[3] = {1, 2, 3};
    nb_softmax_rows(row, 0, 3);
    nb_softmax_rows(row, 1, -2);
    assert_true(row[0] == 1 && row[1] == 2 && row[2] == 3);
    assert_string_equal(nb_activation_name((nb_activation)77), "?");
    assert_int_equal(nb_op_kind_of(NULL), -1);
    nb_graph_free(g);
}

static void test_labels_out_of_range(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *z = nb_input(g, NB_F32, 2, (int[]){2, 5});
    nb_tensor *y = nb_input(g, NB_I32, 1, (int[]){2});
    y->idata[1] = 7;
    expect_op_fail(g, nb_sparse_softmax_cross_entropy_with_logits(g, z, y),
                   "row 1: received a label value of 7 which is outside the valid range of [0, 5)");
    y->idata[1] = -1;
    expect_op_fail(g, nb_sparse_categorical_crossentropy(g, z, y, true), "label value of -1");
    y->idata[1] = 5;
    expect_op_fail(g, nb_sparse_categorical_crossentropy(g, nb_softmax(g, z), y, false), "label value of 5");
    nb_tensor *p = nb_sigmoid(g, z);
    expect_op_fail(g, nb_sparse_categorical_crossentropy(g, p, y, false), "label value of 5");
    /* a good build, then a bad label at a later forward */
    y->idata[1] = 4;
    nb_tensor *loss = nb_sparse_categorical_crossentropy(g, z, y, true);
    assert_non_null(loss);
    y->idata[0] = INT_MIN;
    expect_fail(nb_forward(g), NB_ERR_LABEL, "outside the valid range of [0, 5)");
    assert_non_null(nb_graph_error(g));
    y->idata[0] = 0;
    nb_graph_clear_error(g);
    assert_int_equal(nb_forward(g), NB_OK);
    nb_graph_free(g);
}

/* nb_check_numerics names the first node that holds a NaN or an Inf. */
static void test_check_numerics(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_tensor *x = nb_input(g, NB_F32, 2, (int[]){1, 3});
    nb_tensor *w = nb_param(g, 1, (int[]){3});
    for (int i = 0; i < 3; i++) x->data[i] = 1.0f, w->data[i] = 2.0f;
    nb_tensor *h = nb_set_name(nb_mul(g, x, x), "square");
    nb_tensor *loss = nb_sum(g, nb_mul(g, h, w));
    assert_non_null(loss);
    assert_int_equal(nb_check_numerics(g), NB_OK);
    /* overflow inside the graph: 1e30^2 = Inf first appears in node 2, "square" */
    x->data[1] = 1e30f;
    assert_int_equal(nb_forward(g), NB_OK);
    expect_fail(nb_check_numerics(g), NB_ERR_NUMERIC, "node 2 (mul square, shape (1, 3)) holds Inf at element 1 from node 0, 0");
    /* a NaN fed in: the input itself is named */
    x->data[1] = NAN;
    assert_int_equal(nb_forward(g), NB_OK);
    expect_fail(nb_check_numerics(g), NB_ERR_NUMERIC, "node 0 (");
    assert_non_null(strstr(nb_last_error(), "NaN at element 1"));
    /* Inf - Inf in a parameter's path */
    x->data[1] = 1.0f;
    w->data[2] = INFINITY;
    assert_int_equal(nb_forward(g), NB_OK);
    nb_tensor *d = nb_sub(g, w, w); /* node after the loss: Inf - Inf = NaN */
    assert_non_null(d);
    expect_fail(nb_check_numerics(g), NB_ERR_NUMERIC, "node 1 (");
    w->data[2] = 2.0f;
    assert_int_equal(nb_forward(g), NB_OK);
    assert_int_equal(nb_check_numerics(g), NB_OK);
    nb_tensor *s = nb_scale(g, x, NAN);
    assert_non_null(s);
    char frag[64];
    snprintf(frag, sizeof frag, "node %d (scale", s->id);
    expect_fail(nb_check_numerics(g), NB_ERR_NUMERIC, frag);
    nb_graph_free(g);
}

/* ---- optimizers ---- */

static void test_optimizers(void **state)
{
    (void)state;
    expect_null(nb_adam(-0.001f), "learning rate must be > 0");
    expect_null(nb_adam(0.0f), "learning rate must be > 0");
    expect_null(nb_adam(NAN), "learning rate must be > 0");
    expect_null(nb_adam(INFINITY), "learning rate must be > 0");
    expect_null(nb_adam_ex(&(nb_adam_opts){.learning_rate = -1}), "learning rate");
    expect_null(nb_adam_ex(&(nb_adam_opts){.beta_1 = 1.0f}), "beta_1 and beta_2");
    expect_null(nb_adam_ex(&(nb_adam_opts){.beta_2 = -0.5f}), "beta_1 and beta_2");
    expect_null(nb_adam_ex(&(nb_adam_opts){.beta_1 = NAN}), "beta_1 and beta_2");
    expect_null(nb_adam_ex(&(nb_adam_opts){.epsilon = -1e-7f}), "epsilon");
    expect_null(nb_adam_ex(&(nb_adam_opts){.epsilon = NAN}), "epsilon");
    expect_null(nb_sgd(-0.1f), "learning rate must be > 0");
    expect_null(nb_sgd(NAN), "learning rate must be > 0");
    expect_null(nb_sgd_ex(&(nb_sgd_opts){.learning_rate = INFINITY}), "learning rate");
    expect_null(nb_sgd_ex(&(nb_sgd_opts){.momentum = 1.0f}), "momentum");
    expect_null(nb_sgd_ex(&(nb_sgd_opts){.momentum = -0.1f}), "momentum");
    expect_null(nb_sgd_ex(&(nb_sgd_opts){.momentum = NAN}), "momentum");
    /* rebuilding from saved hyperparameters validates them like the constructors */
    expect_null(nb_optimizer_create("adam", (float[]){NAN, 0.9f, 0.999f, 1e-7f, 0}, 5), "learning rate");
    expect_null(nb_optimizer_create("sgd", (float[]){-1, 0, 0}, 3), "learning rate");
    expect_null(nb_optimizer_create("sgd", (float[]){0.1f, 2.0f, 0}, 3), "momentum");
    expect_null(nb_optimizer_create("adam", (float[]){0.1f}, 1), "takes 5 hyperparameters, got 1");
    expect_null(nb_optimizer_create("rmsprop", (float[]){0.1f}, 1), "unknown optimizer \"rmsprop\"");
    expect_null(nb_optimizer_create(NULL, (float[]){0.1f}, 1), "NULL");
    expect_null(nb_optimizer_create("sgd", NULL, 3), "NULL");

    nb_optimizer *o = nb_adam(0.01f);
    assert_non_null(o);
    float w[4] = {1, 2, 3, 4}, gr[4] = {0.5f, -0.5f, 1, 0};
    expect_fail(nb_optimizer_set_lr(o, -1.0f), NB_ERR_ARG, "learning rate must be > 0");
    expect_fail(nb_optimizer_set_lr(o, NAN), NB_ERR_ARG, "learning rate must be > 0");
    expect_fail(nb_optimizer_set_lr(o, INFINITY), NB_ERR_ARG, "learning rate must be > 0");
    expect_fail(nb_optimizer_set_lr(NULL, 0.1f), NB_ERR_ARG, "NULL");
    assert_true(nb_optimizer_lr(o) == 0.01f);
    expect_fail(nb_optimizer_step(NULL, w, gr, 4), NB_ERR_ARG, "NULL");
    expect_fail(nb_optimizer_step(o, NULL, gr, 4), NB_ERR_ARG, "NULL");
    expect_fail(nb_optimizer_step(o, w, NULL, 4), NB_ERR_ARG, "NULL");
    expect_fail(nb_optimizer_step(o, w, gr, 0), NB_ERR_ARG, "n >= 1");
    expect_fail(nb_optimizer_init(NULL, 4), NB_ERR_ARG, "NULL");
    expect_fail(nb_optimizer_init(o, 0), NB_ERR_ARG, "n >= 1");
    expect_fail(nb_optimizer_init(o, SIZE_MAX / 2), NB_ERR_NOMEM, "");
    assert_null(o->slots);
    assert_int_equal(nb_optimizer_step(o, w, gr, 4), NB_OK);
    expect_fail(nb_optimizer_step(o, w, gr, 3), NB_ERR_STATE, "");
    expect_fail(nb_optimizer_init(o, 5), NB_ERR_STATE, "");
    assert_null(nb_optimizer_slot(o, 2));
    assert_null(nb_optimizer_slot(o, -1));
    assert_null(nb_optimizer_slot(NULL, 0));
    nb_optimizer_reset(NULL);
    nb_optimizer_free(o);
    nb_optimizer_free(NULL);
}

/* ---- nn: building, compiling, fit / evaluate / predict, save ---- */

static nb_model *small_model(void)
{
    nb_model *m = nb_sequential(3);
    assert_non_null(m);
    assert_int_equal(nb_add_dense(m, 4, NB_TANH), NB_OK);
    assert_int_equal(nb_add_dense(m, 2, NB_LINEAR), NB_OK);
    return m;
}

static nb_model *small_compiled(void)
{
    nb_model *m = small_model();
    assert_int_equal(nb_compile(m, &(nb_compile_opts){.loss = NB_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
                                                      .optimizer = nb_adam(0.01f)}),
                     NB_OK);
    return m;
}

static void test_nn_building(void **state)
{
    (void)state;
    expect_null(nb_sequential(0), "input width must be 1..");
    expect_null(nb_sequential(-5), "got -5");
    expect_null(nb_sequential(NB_MAX_UNITS + 1), "input width");
    nb_model_free(NULL);
    expect_fail(nb_add_dense(NULL, 3, NB_RELU), NB_ERR_ARG, "model is NULL");

    nb_model *m = nb_sequential(3);
    assert_non_null(m);
    expect_fail(nb_add_dense(m, 0, NB_RELU), NB_ERR_ARG, "units must be 1..");
    expect_fail(nb_add_dense(m, -4, NB_RELU), NB_ERR_ARG, "got -4");
    expect_fail(nb_add_dense(m, NB_MAX_UNITS + 1, NB_RELU), NB_ERR_ARG, "units must be");
    expect_fail(nb_add_dense(m, INT_MAX, NB_RELU), NB_ERR_ARG, "units must be");
    expect_fail(nb_add_dense(m, 3, (nb_activation)NB_ACTIVATION_COUNT), NB_ERR_ARG, "unknown activation");
    expect_fail(nb_add_dense(m, 3, (nb_activation)-1), NB_ERR_ARG, "unknown activation -1");
    assert_int_equal(nb_model_layer_count(m), 0); /* unchanged */
    /* a huge layer after a wide one: refused before any allocation */
    nb_model *wide = nb_sequential(NB_MAX_UNITS);
    assert_non_null(wide);
    expect_fail(nb_add_dense(wide, NB_MAX_UNITS, NB_RELU), NB_ERR_ARG, "too large");
    nb_model_free(wide);
    /* compile: bad options; the optimizer is taken over even on failure */
    expect_fail(nb_compile(m, &(nb_compile_opts){.loss = NB_MEAN_SQUARED_ERROR, .optimizer = nb_sgd(0.1f)}), NB_ERR_ARG,
                "no layer");
    assert_int_equal(nb_add_dense(m, 2, NB_LINEAR), NB_OK);
    expect_fail(nb_compile(NULL, &(nb_compile_opts){.loss = NB_MEAN_SQUARED_ERROR}), NB_ERR_ARG, "model is NULL");
    expect_fail(nb_compile(m, NULL), NB_ERR_ARG, "options are NULL");
    expect_fail(nb_compile(m, &(nb_compile_opts){.loss = NB_MEAN_SQUARED_ERROR}), NB_ERR_ARG, "optimizer is NULL");
    expect_fail(nb_compile(m, &(nb_compile_opts){.loss = NB_MEAN_SQUARED_ERROR, .optimizer = nb_adam(-1)}), NB_ERR_ARG,
                "learning rate must be > 0");
    expect_fail(nb_compile(m, &(nb_compile_opts){.loss = (nb_loss)17, .optimizer = nb_adam(0.1f)}), NB_ERR_ARG,
                "unknown loss 17");
    assert_int_equal(nb_model_loss(m), NB_LOSS_NONE);
    /* shape queries and weights */
    assert_int_equal(nb_model_layer_units(m, 5), 0);
    assert_int_equal(nb_model_layer_units(m, -1), 0);
    assert_int_equal(nb_model_layer_units(NULL, 0), 0);
    assert_int_equal(nb_model_input_width(NULL), 0);
    assert_int_equal(nb_model_param_count(NULL), 0);
    assert_null(nb_model_class_name(m, 0));
    assert_null(nb_model_class_name(NULL, 0));
    float wbuf[8];
    expect_fail(nb_model_get_weights(m, wbuf, 7), NB_ERR_ARG, "has 8 weights, not 7");
    expect_fail(nb_model_get_weights(m, NULL, 8), NB_ERR_ARG, "NULL");
    expect_fail(nb_model_set_weights(m, NULL, 8), NB_ERR_ARG, "NULL");
    expect_fail(nb_model_set_weights(NULL, wbuf, 8), NB_ERR_ARG, "NULL");
    expect_fail(nb_model_set_class_names(m, NULL, 2), NB_ERR_ARG, "names NULL");
    expect_fail(nb_model_set_class_names(m, (const char *[]){"a"}, -1), NB_ERR_ARG, "got -1");
    expect_fail(nb_model_set_class_names(m, (const char *[]){"a", NULL}, 2), NB_ERR_ARG, "name 1 is NULL");
    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    expect_fail(nb_model_set_class_names(m, (const char *[]){longname}, 1), NB_ERR_ARG, "longer than 255");
    assert_int_equal(nb_model_class_count(m), 0);
    expect_fail(nb_model_set_seed(NULL, 3), NB_ERR_ARG, "NULL");
    FILE *devnull = fopen("/dev/null", "w");
    assert_non_null(devnull);
    nb_model_summary(NULL, devnull);
    fclose(devnull);
    assert_string_equal(nb_loss_name((nb_loss)99), "?");
    nb_history_free(NULL);
    nb_model_free(m);
}

static void test_nn_fit_evaluate_predict(void **state)
{
    (void)state;
    enum { N = 10 };
    float x[N * 3], out[N * 2];
    int32_t y[N];
    for (int i = 0; i < N * 3; i++) x[i] = (float)(i % 7) / 7.0f;
    for (int i = 0; i < N; i++) y[i] = i % 2;
    nb_fit_opts q = {.verbose = NB_VERBOSE_SILENT};
    nb_history h;

    nb_model *raw = small_model();
    expect_fail(nb_fit(raw, x, y, N, &q, &h), NB_ERR_STATE, "not compiled");
    assert_null(h.loss);
    expect_fail(nb_evaluate(raw, x, y, N, NULL, NULL), NB_ERR_STATE, "not compiled");
    assert_int_equal(nb_predict(raw, x, N, out), NB_OK); /* no compile needed */
    nb_model_free(raw);

    nb_model *m = small_compiled();
    expect_fail(nb_fit(NULL, x, y, N, &q, NULL), NB_ERR_ARG, "model is NULL");
    expect_fail(nb_fit(m, x, y, 0, &q, &h), NB_ERR_ARG, "n >= 1");
    expect_fail(nb_fit(m, x, y, -3, &q, NULL), NB_ERR_ARG, "got -3");
    expect_fail(nb_fit(m, NULL, y, N, &q, NULL), NB_ERR_ARG, "x");
    expect_fail(nb_fit(m, x, NULL, N, &q, NULL), NB_ERR_ARG, "labels");
    expect_fail(nb_fit(m, x, y, N, &(nb_fit_opts){.batch_size = -1, .verbose = NB_VERBOSE_SILENT}, NULL), NB_ERR_ARG,
                "batch_size must be >= 1, got -1");
    expect_fail(nb_fit(m, x, y, N, &(nb_fit_opts){.epochs = -2, .verbose = NB_VERBOSE_SILENT}, NULL), NB_ERR_ARG,
                "epochs must be >= 1, got -2");
    expect_fail(nb_fit(m, x, y, N, &(nb_fit_opts){.validation_split = 1.5f, .verbose = NB_VERBOSE_SILENT}, NULL),
                NB_ERR_ARG, "validation_split must be in [0, 1), got 1.5");
    expect_fail(nb_fit(m, x, y, N, &(nb_fit_opts){.validation_split = NAN, .verbose = NB_VERBOSE_SILENT}, NULL),
                NB_ERR_ARG, "validation_split must be in [0, 1), got nan");
    expect_fail(nb_fit(m, x, y, N, &(nb_fit_opts){.validation_split = -0.25f, .verbose = NB_VERBOSE_SILENT}, NULL),
                NB_ERR_ARG, "validation_split");
    expect_fail(nb_fit(m, x, y, N, &(nb_fit_opts){.validation_split = 1.0f, .verbose = NB_VERBOSE_SILENT}, NULL),
                NB_ERR_ARG, "validation_split");
    expect_fail(nb_fit(m, x, y, 1, &(nb_fit_opts){.validation_split = 0.5f, .verbose = NB_VERBOSE_SILENT}, NULL),
                NB_ERR_ARG, "leaves");
    expect_fail(nb_fit(m, x, y, N, &(nb_fit_opts){.verbose = (nb_verbosity)12}, NULL), NB_ERR_ARG, "verbose");
    nb_dataset empty_val = {.n = 0, .x = x, .labels = y};
    expect_fail(nb_fit(m, x, y, N, &(nb_fit_opts){.validation_data = &empty_val, .verbose = NB_VERBOSE_SILENT}, NULL),
                NB_ERR_ARG, "validation_data");
    /* labels out of range: checked before the first step */
    y[4] = 2;
    expect_fail(nb_fit(m, x, y, N, &q, NULL), NB_ERR_LABEL, "label 2 of sample 4 is outside the valid range [0, 2)");
    y[4] = -1;
    expect_fail(nb_evaluate(m, x, y, N, NULL, NULL), NB_ERR_LABEL, "label -1 of sample 4");
    y[4] = 0;
    uint8_t ybytes[N] = {0, 1, 0, 1, 0, 1, 0, 1, 0, 200};
    nb_dataset d8 = {.n = N, .x = x, .labels_u8 = ybytes};
    expect_fail(nb_fit_data(m, &d8, &q, NULL), NB_ERR_LABEL, "label 200 of sample 9");
    expect_fail(nb_fit_data(m, NULL, &q, NULL), NB_ERR_ARG, "NULL");
    nb_dataset both = {.n = N, .x = x, .x_u8 = ybytes, .labels = y};
    expect_fail(nb_fit_data(m, &both, &q, NULL), NB_ERR_ARG, "exactly one of x");
    /* a NaN in the data: the loss becomes NaN and fit stops with a message */
    float saved = x[5];
    x[5] = NAN;
    float before[26], after[26]; /* 3*4 + 4 + 4*2 + 2 */
    assert_int_equal(nb_model_param_count(m), 26);
    assert_int_equal(nb_model_get_weights(m, before, 26), NB_OK);
    expect_fail(nb_fit(m, x, y, N, &(nb_fit_opts){.batch_size = N, .verbose = NB_VERBOSE_SILENT}, &h), NB_ERR_NUMERIC,
                "the loss became nan");
    nb_history_free(&h);
    assert_int_equal(nb_model_get_weights(m, after, 26), NB_OK);
    assert_memory_equal(before, after, sizeof before); /* the bad step was not applied */
    x[5] = saved;
    /* an Inf target for mean squared error: the loss is Inf */
    nb_model *r = small_model();
    assert_int_equal(nb_compile(r, &(nb_compile_opts){.loss = NB_MEAN_SQUARED_ERROR, .optimizer = nb_sgd(0.1f)}), NB_OK);
    float t[N * 2] = {0};
    t[3] = INFINITY;
    expect_fail(nb_fit(r, x, t, N, &q, NULL), NB_ERR_NUMERIC, "the loss became inf");
    nb_model_free(r);
    /* evaluate / predict */
    float loss = 0, acc = 0;
    expect_fail(nb_evaluate(m, x, y, 0, &loss, &acc), NB_ERR_ARG, "n >= 1");
    expect_fail(nb_evaluate(m, NULL, y, N, &loss, &acc), NB_ERR_ARG, "x");
    expect_fail(nb_evaluate(NULL, x, y, N, &loss, &acc), NB_ERR_ARG, "model is NULL");
    expect_fail(nb_predict(m, x, N, NULL), NB_ERR_ARG, "output NULL");
    expect_fail(nb_predict(NULL, x, N, out), NB_ERR_ARG, "model or output NULL");
    expect_fail(nb_predict(m, NULL, N, out), NB_ERR_ARG, "x");
    expect_fail(nb_predict(m, x, 0, out), NB_ERR_ARG, "n >= 1");
    expect_fail(nb_predict(m, x, -1, out), NB_ERR_ARG, "got -1");
    expect_fail(nb_predict_data(m, NULL, out), NB_ERR_ARG, "NULL");
    nb_model *none = nb_sequential(3);
    expect_fail(nb_predict(none, x, 1, out), NB_ERR_STATE, "no layer");
    nb_model_free(none);
    /* still trains after all that */
    assert_int_equal(nb_fit(m, x, y, N, &q, NULL), NB_OK);
    assert_int_equal(nb_evaluate(m, x, y, N, &loss, &acc), NB_OK);
    assert_true(isfinite(loss));
    nb_model_free(m);
}

static void test_nn_save_errors(void **state)
{
    (void)state;
    nb_model *m = small_compiled();
    expect_fail(nb_save(NULL, at("a.nb")), NB_ERR_ARG, "NULL");
    expect_fail(nb_save(m, NULL), NB_ERR_ARG, "NULL");
    expect_fail(nb_save(m, "/nonexistent-nabla-dir/sub/m.nb"), NB_ERR_IO, "/nonexistent-nabla-dir/sub/m.nb");
    /* a path under a regular file: no folder to create the temporary file in */
    write_bytes(at("plainfile"), "x", 1);
    expect_fail(nb_save(m, at("plainfile/m.nb")), NB_ERR_IO, "plainfile/m.nb");
    /* a folder where the file should go: the rename fails, nothing is left behind */
    assert_int_equal(mkdir(at("folder.nb"), 0755), 0);
    expect_fail(nb_save(m, at("folder.nb")), NB_ERR_IO, "folder.nb");
    struct stat st;
    assert_int_equal(stat(at("folder.nb"), &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    DIR *d = opendir(dir); /* no temporary file remains next to it */
    assert_non_null(d);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') entries++, assert_null(strstr(e->d_name, ".tmp"));
    closedir(d);
    assert_int_equal(entries, 2); /* plainfile, folder.nb */

    /* what is not a regular file is never replaced: a FIFO, a device (through a
     * link to /dev/full, which also proves links are followed), and the link
     * itself stays a link */
    assert_int_equal(mkfifo(at("fifo.nb"), 0644), 0);
    expect_fail(nb_save(m, at("fifo.nb")), NB_ERR_IO, "FIFO");
    assert_int_equal(lstat(at("fifo.nb"), &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    if (stat("/dev/full", &st) == 0 && S_ISCHR(st.st_mode)) {
        assert_int_equal(symlink("/dev/full", at("full.nb")), 0);
        expect_fail(nb_save(m, at("full.nb")), NB_ERR_IO, "character device");
        assert_int_equal(stat("/dev/full", &st), 0);
        assert_true(S_ISCHR(st.st_mode));
    }
    /* a link to a regular file: the target is replaced, the link kept */
    write_bytes(at("target.nb"), "old", 3);
    assert_int_equal(symlink("target.nb", at("link.nb")), 0);
    assert_int_equal(nb_save(m, at("link.nb")), NB_OK);
    assert_int_equal(lstat(at("link.nb"), &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    nb_model *back = nb_load(at("target.nb"));
    assert_non_null(back);
    nb_model_free(back);
    /* a dangling link is refused (its target cannot be resolved) */
    assert_int_equal(symlink("created.nb", at("dangling.nb")), 0);
    expect_fail(nb_save(m, at("dangling.nb")), NB_ERR_IO, "dangling.nb");
    nb_model_free(m);
}

/* ---- model files ---- */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Rewrite file_size and the CRC so a changed field reaches the parser. */
static void fix_crc(uint8_t *b, size_t n)
{
    for (int i = 0; i < 8; i++) b[12 + i] = (uint8_t)((uint64_t)n >> (8 * i));
    put32(b + n - 4, (uint32_t)crc32(crc32(0L, Z_NULL, 0), b, (uInt)(n - 4)));
}

static void expect_load_fail(const uint8_t *b, size_t n, nb_status want, const char *frag)
{
    const char *p = at("bad.nb");
    write_bytes(p, b, n);
    nb_clear_error();
    nb_model *m = nb_load(p);
    if (m) fail_msg("nb_load accepted a bad file (want \"%s\")", frag);
    (void)want;
    if (!strstr(nb_last_error(), frag) || !strstr(nb_last_error(), p))
        fail_msg("nb_load: \"%s\", want \"%s\" and the path", nb_last_error(), frag);
}

static void test_model_files(void **state)
{
    (void)state;
    /* a version 1 file (tests/data/README.md), whose fields sit at the offsets below */
    size_t n;
    uint8_t *good = read_bytes(NB_TEST_DATA "/v1_small.nb", &n), *b = malloc(n + 8);
    write_bytes(at("good.nb"), good, n);
    assert_non_null(b);
    nb_model *ok = nb_load(at("good.nb"));
    assert_non_null(ok);
    nb_model_free(ok);

    expect_null(nb_load(NULL), "path is NULL");
    expect_null(nb_load(at("missing.nb")), "cannot open");
    expect_null(nb_load(dir), "not a regular file");
    expect_load_fail(good, 0, NB_ERR_FORMAT, "file too short (0 bytes)");
    /* truncated at every length: always refused, never read past the end */
    for (size_t len = 1; len < n; len++) {
        write_bytes(at("cut.nb"), good, len);
        nb_clear_error();
        assert_null(nb_load(at("cut.nb")));
        assert_true(nb_last_error()[0] != '\0');
    }
    expect_load_fail(good, 23, NB_ERR_FORMAT, "too short");
    expect_load_fail(good, n - 1, NB_ERR_FORMAT, "file_size field says");
    /* one more byte at the end */
    memcpy(b, good, n);
    b[n] = 0;
    expect_load_fail(b, n + 1, NB_ERR_FORMAT, "truncated or extended");
    /* a flipped bit anywhere in the body */
    for (size_t i = 20; i < n - 4; i += 7) {
        memcpy(b, good, n);
        b[i] ^= 0x10;
        expect_load_fail(b, n, NB_ERR_FORMAT, "CRC-32 mismatch");
    }
    /* magic and version: wrong, and byte-swapped (a big-endian writer) */
    memcpy(b, good, n);
    memcpy(b, "NABLAMDX", 8);
    expect_load_fail(b, n, NB_ERR_FORMAT, "bad magic");
    memcpy(b, good, n);
    memcpy(b, "LDMALBAN", 8);
    expect_load_fail(b, n, NB_ERR_FORMAT, "bad magic");
    memcpy(b, good, n);
    put32(b + 8, 0x01000000u); /* version 1, big-endian */
    expect_load_fail(b, n, NB_ERR_FORMAT, "unknown format version 16777216");
    memcpy(b, good, n);
    for (int i = 0; i < 8; i++) b[12 + i] = (uint8_t)((uint64_t)n >> (8 * (7 - i))); /* file_size big-endian */
    expect_load_fail(b, n, NB_ERR_FORMAT, "file_size field says");
    /* fields out of range, with a valid CRC (offsets from nn/FORMAT.md) */
    memcpy(b, good, n);
    put32(b + 20, 0);
    fix_crc(b, n);
    expect_load_fail(b, n, NB_ERR_FORMAT, "input_width is 0");
    memcpy(b, good, n);
    put32(b + 20, 0x03000000u); /* 3, byte-swapped */
    fix_crc(b, n);
    expect_load_fail(b, n, NB_ERR_FORMAT, "input_width is 50331648");
    memcpy(b, good, n);
    put32(b + 24, 0x02000000u); /* n_layers 2, byte-swapped */
    fix_crc(b, n);
    expect_load_fail(b, n, NB_ERR_FORMAT, "n_layers");
    memcpy(b, good, n);
    put32(b + 28, 100000); /* layer 0: far more units than the file holds weights for */
    fix_crc(b, n);
    expect_load_fail(b, n, NB_ERR_FORMAT, "do not fit in the file");
    memcpy(b, good, n);
    put32(b + 32, 9); /* layer 0 activation */
    fix_crc(b, n);
    expect_load_fail(b, n, NB_ERR_FORMAT, "layer 0 activation is 9");
    memcpy(b, good, n);
    put32(b + 44, 4); /* loss */
    fix_crc(b, n);
    expect_load_fail(b, n, NB_ERR_FORMAT, "loss is 4");
    memcpy(b, good, n);
    put32(b + 52, 70000); /* n_class_names */
    fix_crc(b, n);
    expect_load_fail(b, n, NB_ERR_FORMAT, "n_class_names");
    memcpy(b, good, n);
    put32(b + 56, 200); /* class name 0 length: beyond the file */
    fix_crc(b, n);
    expect_load_fail(b, n, NB_ERR_FORMAT, "");
    memcpy(b, good, n);
    b[60] = 0; /* a NUL inside a class name */
    fix_crc(b, n);
    expect_load_fail(b, n, NB_ERR_FORMAT, "NUL");
    /* the same bytes with the CRC fixed up but cut short: truncated fields */
    for (size_t len = 24; len < n; len += 5) {
        memcpy(b, good, len);
        fix_crc(b, len);
        write_bytes(at("cut.nb"), b, len);
        nb_clear_error();
        assert_null(nb_load(at("cut.nb")));
        assert_true(nb_last_error()[0] != '\0');
    }
    free(b);
    free(good);
}

/* ---- IDX files ---- */

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static void expect_images_fail(const char *path, nb_status want, const char *frag)
{
    uint8_t *px = NULL;
    int n = -1, r = -1, c = -1;
    expect_fail(idx_read_images(path, &px, &n, &r, &c), want, frag);
    assert_null(px);
    assert_true(strstr(nb_last_error(), path) != NULL || want == NB_ERR_ARG);
}

static void expect_labels_fail(const char *path, nb_status want, const char *frag)
{
    uint8_t *lb = NULL;
    int n = -1;
    expect_fail(idx_read_labels(path, &lb, &n), want, frag);
    assert_null(lb);
}

static void test_idx_files(void **state)
{
    (void)state;
    /* a good 2-image 3x4 file, then variations of it */
    uint8_t f[16 + 24];
    be32(f, IDX_MAGIC_IMAGES);
    be32(f + 4, 2), be32(f + 8, 3), be32(f + 12, 4);
    for (int i = 0; i < 24; i++) f[16 + i] = (uint8_t)(i * 11);
    const char *p = at("img.idx"), *gz = at("img.idx.gz");
    write_bytes(p, f, sizeof f);
    uint8_t *px = NULL;
    int n, r, c;
    assert_int_equal(idx_read_images(p, &px, &n, &r, &c), NB_OK);
    free(px);

    expect_fail(idx_read_images(NULL, &px, &n, &r, &c), NB_ERR_ARG, "NULL argument");
    expect_fail(idx_read_images(p, NULL, &n, &r, &c), NB_ERR_ARG, "NULL argument");
    expect_fail(idx_read_labels(p, NULL, &n), NB_ERR_ARG, "NULL argument");
    expect_images_fail(at("nothing.idx"), NB_ERR_IO, "cannot open");
    expect_images_fail(dir, NB_ERR_IO, "not a regular file");
    write_bytes(p, f, 0);
    expect_images_fail(p, NB_ERR_FORMAT, "too short for an IDX header (0 bytes");
    expect_labels_fail(p, NB_ERR_FORMAT, "too short");
    write_gz(gz, f, 0); /* an empty gzip stream */
    expect_images_fail(gz, NB_ERR_FORMAT, "too short");
    /* truncated at every length, plain and gzip */
    for (size_t len = 1; len < sizeof f; len++) {
        write_bytes(p, f, len);
        expect_images_fail(p, NB_ERR_FORMAT, len < 16 ? "too short" : "truncated");
        write_gz(gz, f, len);
        expect_images_fail(gz, NB_ERR_FORMAT, len < 16 ? "too short" : "truncated");
    }
    /* byte-swapped (little-endian) magic, and byte-swapped sizes */
    uint8_t s[sizeof f];
    memcpy(s, f, sizeof f);
    s[0] = 0x03, s[1] = 0x08, s[2] = 0, s[3] = 0;
    write_bytes(p, s, sizeof s);
    expect_images_fail(p, NB_ERR_FORMAT, "bad magic 0x03080000");
    memcpy(s, f, sizeof f);
    be32(s + 4, 0x02000000u);
    write_bytes(p, s, sizeof s);
    expect_images_fail(p, NB_ERR_FORMAT, "truncated: 33554432 images of 3x4 need 402653184 bytes");
    memcpy(s, f, sizeof f);
    be32(s + 4, 0x00000200u); /* 512 images: plausible, but the data is not there */
    write_bytes(p, s, sizeof s);
    expect_images_fail(p, NB_ERR_FORMAT, "truncated: 512 images of 3x4 need 6144 bytes");
    memcpy(s, f, sizeof f);
    be32(s + 8, 0x03000000u);
    write_bytes(p, s, sizeof s);
    expect_images_fail(p, NB_ERR_FORMAT, "image size 50331648x4 is outside");
    memcpy(s, f, sizeof f);
    be32(s + 12, 0);
    write_bytes(p, s, sizeof s);
    expect_images_fail(p, NB_ERR_FORMAT, "image size 3x0");
    memcpy(s, f, sizeof f);
    be32(s + 4, 0xffffffffu);
    write_bytes(p, s, sizeof s);
    expect_images_fail(p, NB_ERR_FORMAT, "image count 4294967295");
    /* a label file given as images, and the reverse */
    uint8_t l[8 + 3];
    be32(l, IDX_MAGIC_LABELS);
    be32(l + 4, 3);
    l[8] = 1, l[9] = 2, l[10] = 3;
    const char *lp = at("lab.idx");
    write_bytes(lp, l, sizeof l);
    expect_images_fail(lp, NB_ERR_FORMAT, "(this is a label file)");
    write_bytes(p, f, sizeof f);
    expect_labels_fail(p, NB_ERR_FORMAT, "(this is an image file)");
    /* labels: wrong-endian count, out of range, trailing bytes, truncated */
    be32(l + 4, 0x03000000u);
    write_bytes(lp, l, sizeof l);
    expect_labels_fail(lp, NB_ERR_FORMAT, "truncated: 50331648 labels need 50331648 bytes");
    be32(l + 4, 3);
    l[10] = 10;
    write_bytes(lp, l, sizeof l);
    expect_labels_fail(lp, NB_ERR_LABEL, "label 10 at index 2 is outside [0, 9]");
    l[10] = 3;
    be32(l + 4, 2);
    write_bytes(lp, l, sizeof l);
    expect_labels_fail(lp, NB_ERR_FORMAT, "1 bytes of trailing data");
    be32(l + 4, 4);
    write_bytes(lp, l, sizeof l);
    expect_labels_fail(lp, NB_ERR_FORMAT, "truncated");
    be32(l + 4, 0);
    write_bytes(lp, l, 8);
    expect_labels_fail(lp, NB_ERR_FORMAT, "label count 0");
    /* gzip: a stream cut short, and one with corrupt compressed bytes */
    write_gz(gz, f, sizeof f);
    size_t zn;
    uint8_t *z = read_bytes(gz, &zn);
    write_bytes(gz, z, zn / 2);
    expect_images_fail(gz, NB_ERR_FORMAT, "");
    for (size_t i = 10; i < zn - 8; i++) z[i] ^= 0x5a;
    write_bytes(gz, z, zn);
    expect_images_fail(gz, NB_ERR_FORMAT, "");
    /* a gzip header followed by nothing useful */
    write_bytes(gz, (const uint8_t[]){0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3}, 10);
    expect_images_fail(gz, NB_ERR_FORMAT, "");
    free(z);
    /* mnist_load: counts that disagree, missing files, NULLs */
    mnist_set set;
    expect_fail(mnist_load(NULL, "train", &set), NB_ERR_ARG, "NULL");
    expect_fail(mnist_load(dir, "nothing", &set), NB_ERR_IO, "nothing-images-idx3-ubyte");
    write_bytes(at("t-images-idx3-ubyte"), f, sizeof f);
    be32(l + 4, 3);
    write_bytes(at("t-labels-idx1-ubyte"), l, sizeof l);
    expect_fail(mnist_load(dir, "t", &set), NB_ERR_FORMAT, "counts differ");
    assert_null(set.images);
    assert_null(set.labels);
    mnist_set_free(NULL);
    char out[8];
    expect_fail(idx_find(dir, "t-images-idx3-ubyte", out, sizeof out), NB_ERR_IO, "");
    expect_fail(idx_write(at("w.idx"), false, 0, (int[]){1}, f), NB_ERR_ARG, "bad argument");
    expect_fail(idx_write(at("w.idx"), false, 1, (int[]){-2}, f), NB_ERR_ARG, "dimension 0 is -2");
    expect_fail(idx_write("/nonexistent-nabla-dir/w.idx", false, 1, (int[]){2}, f), NB_ERR_IO, "cannot create");
}

/* ---- pictures (the `mnist predict` path) ---- */

/* Found by fuzz_image: a PGM whose width has 58 digits overflows stb_image
 * 2.27's integer parser (signed overflow in stbi__pnm_getinteger). The picture
 * must be refused (or read) cleanly, never crash. */
static const uint8_t pnm_width_overflow[] = {
    0x50, 0x35, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31,
    0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31,
    0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31,
    0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31, 0x0a, 0x32, 0x34, 0x20, 0x31, 0x32,
    0x0a, 0x32, 0x35, 0x35, 0x0a, 0xeb, 0xeb, 0x32, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb,
    0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0x5d, 0xeb, 0xeb, 0x35, 0x0a, 0xeb, 0xeb, 0x32, 0xeb,
    0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb,
    0x00, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0x14, 0x14, 0xeb, 0xeb, 0xeb,
    0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0x14, 0x14, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb,
    0xeb, 0xeb, 0xeb, 0x14, 0x14, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0x14,
    0x14, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0x14, 0x14,
    0xeb, 0xeb, 0xeb, 0xeb, 0x14, 0x14, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb,
    0x14, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0x14, 0x14, 0xeb, 0xeb, 0xeb,
    0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0x14, 0x0b, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb,
    0xeb, 0xeb, 0xeb, 0x14, 0x14, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb,
    0xeb, 0xeb, 0xeb, 0x14, 0x14, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0x14,
    0x14, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0x14, 0x14, 0xeb, 0xeb, 0xeb,
    0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0x14, 0x14, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb,
    0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0x14, 0x14, 0xeb, 0xeb, 0xeb, 0xeb, 0x14,
    0x14, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0x14, 0xeb, 0xeb, 0xeb, 0xeb,
    0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0x14, 0x14, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb,
    0xeb, 0xeb, 0x14, 0x0b, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0x14, 0x14,
    0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb, 0xeb,
};

/* Found by fuzz_image: a PNG whose IDAT chunk lengths make stb_image 2.27 ask
 * for a 2 GiB buffer before it sees that the data is missing. Refused cleanly. */
static const uint8_t png_idat_huge_length[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x0c, 0x08, 0x04, 0x00, 0x00, 0x00, 0xfc, 0x7c, 0x94,
    0x6c, 0x00, 0x00, 0x00, 0x20, 0x49, 0x44, 0x41, 0x54, 0x78, 0x5e, 0x63, 0x89, 0x50, 0x4e, 0x47,
    0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x0c,
    0x00, 0x00, 0x00, 0x0c, 0x08, 0x04, 0x00, 0x00, 0x00, 0x6c, 0x00, 0xfc, 0x00, 0x7c, 0x94, 0x00,
    0x20, 0x49, 0x44, 0x41, 0x54, 0x78, 0x5e, 0x63, 0xa0, 0x08, 0xfc, 0x67, 0xf8, 0x8f, 0xd0, 0xcf,
    0x84, 0xcb, 0xa8, 0x4e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x8c, 0xe4, 0x79, 0x1a, 0x00,
    0x47, 0x4d, 0x03, 0x0c, 0x43, 0xc5, 0xf6, 0x37, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44,
    0xae, 0x42, 0x60, 0x82,
};

static void test_images(void **state)
{
    (void)state;
    float out[PRE_SIDE * PRE_SIDE];
    expect_fail(pre_image_memory(NULL, 10, "x", PRE_MNIST, out), NB_ERR_ARG, "NULL");
    expect_fail(pre_image_memory((const uint8_t *)"abc", 3, "x", PRE_MNIST, NULL), NB_ERR_ARG, "NULL");
    expect_fail(pre_image_memory((const uint8_t *)"abc", 0, "x", PRE_MNIST, out), NB_ERR_FORMAT, "0 bytes");
    expect_fail(pre_image_memory((const uint8_t *)"not a picture at all", 20, "junk", PRE_MNIST, out), NB_ERR_FORMAT,
                "junk: not an image");
    /* a PGM header claiming 100000 x 100000: refused from the header, before decoding */
    const char *huge = "P5\n100000 100000\n255\n\x01\x02";
    expect_fail(pre_image_memory((const uint8_t *)huge, strlen(huge), "huge", PRE_MNIST, out), NB_ERR_FORMAT,
                "too large");
    /* a PNG signature and an IHDR claiming 2^30 x 2^30, nothing after */
    const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                           0x40, 0, 0, 0, 0x40, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0};
    nb_clear_error();
    assert_int_equal(pre_image_memory(png, sizeof png, "png", PRE_MNIST, out), NB_ERR_FORMAT);
    assert_non_null(strstr(nb_last_error(), "png:"));
    /* a binary PGM / PPM with the pixels cut short (stb_image 2.27 would hand
     * back uninitialised memory for the missing ones) */
    const char *cut = "P5\n4 4\n255\n\xff\x00";
    expect_fail(pre_image_memory((const uint8_t *)cut, strlen(cut) + 1, "cut", PRE_MNIST, out), NB_ERR_FORMAT,
                "cut: truncated");
    const char *cut6 = "P6 # comment\n2 # another\n2\n255\n0123456789a";
    expect_fail(pre_image_memory((const uint8_t *)cut6, strlen(cut6), "cut6", PRE_MNIST, out), NB_ERR_FORMAT,
                "cut6: truncated");
    /* found by fuzz_image: 16-bit colour PPM made stb_image 2.27 read past its
     * buffer when reducing to grey (here also truncated) */
    const char *ppm16 = "P66 66 611\n2";
    expect_fail(pre_image_memory((const uint8_t *)ppm16, strlen(ppm16), "ppm16", PRE_MNIST, out), NB_ERR_FORMAT,
                "ppm16: 16-bit colour PPM is not supported");
    uint8_t full16[64];
    int hl = snprintf((char *)full16, sizeof full16, "P6\n2 2\n65535\n");
    memset(full16 + hl, 0x7f, 24);
    expect_fail(pre_image_memory(full16, (size_t)hl + 24, "full16", PRE_MNIST, out), NB_ERR_FORMAT, "16-bit colour");
    uint8_t whole[11 + 16];
    memcpy(whole, "P5\n4 4\n255\n", 11);
    for (int i = 0; i < 16; i++) whole[11 + i] = (uint8_t)(i == 5 || i == 6 || i == 9 || i == 10 ? 250 : 5);
    assert_int_equal(pre_image_memory(whole, sizeof whole, "whole", PRE_MNIST, out), NB_OK);
    nb_status s;
    /* a blank picture */
    uint8_t flat[16 * 16];
    memset(flat, 200, sizeof flat);
    expect_fail(pre_gray(flat, 16, 16, "flat", PRE_MNIST, out), NB_ERR_FORMAT, "flat: no ink found");
    expect_fail(pre_gray(flat, 0, 16, "zero", PRE_MNIST, out), NB_ERR_ARG, "zero: empty picture");
    expect_fail(pre_gray(flat, 16, -1, "neg", PRE_FASHION, out), NB_ERR_ARG, "empty picture");
    expect_fail(pre_gray(NULL, 16, 16, NULL, PRE_FASHION, out), NB_ERR_ARG, "image: empty picture");
    /* files: missing, a folder, empty */
    expect_fail(pre_image_file(NULL, PRE_MNIST, out), NB_ERR_ARG, "NULL");
    expect_fail(pre_image_file(at("none.png"), PRE_MNIST, out), NB_ERR_IO, "cannot open");
    expect_fail(pre_image_file(dir, PRE_MNIST, out), NB_ERR_IO, "not a regular file");
    write_bytes(at("empty.png"), "", 0);
    expect_fail(pre_image_file(at("empty.png"), PRE_MNIST, out), NB_ERR_FORMAT, "0 bytes is not a plausible image size");
    /* the fuzzer's find */
    nb_clear_error();
    s = pre_image_memory(pnm_width_overflow, sizeof pnm_width_overflow, "overflow.pgm", PRE_MNIST, out);
    assert_true(s == NB_OK || strstr(nb_last_error(), "overflow.pgm:"));
    for (int i = 0; s == NB_OK && i < PRE_SIDE * PRE_SIDE; i++) assert_true(out[i] >= 0.0f && out[i] <= 1.0f);
    expect_fail(pre_image_memory(png_idat_huge_length, sizeof png_idat_huge_length, "idat.png", PRE_MNIST, out),
                NB_ERR_FORMAT, "idat.png: cannot decode the image");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_null_and_sizes),
        cmocka_unit_test(test_ops_shapes_and_dtypes),
        cmocka_unit_test(test_labels_out_of_range),
        cmocka_unit_test(test_check_numerics),
        cmocka_unit_test(test_optimizers),
        cmocka_unit_test(test_nn_building),
        cmocka_unit_test(test_nn_fit_evaluate_predict),
        cmocka_unit_test(test_nn_save_errors),
        cmocka_unit_test(test_model_files),
        cmocka_unit_test(test_idx_files),
        cmocka_unit_test(test_images),
    };
    int failed = cmocka_run_group_tests_name("badinput", tests, tmpdir_setup, tmpdir_teardown);
    bli_finalize();
    return failed;
}
