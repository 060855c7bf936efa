/* test_optim.c — Adam (Keras and PyTorch forms) and SGD (momentum, Nesterov)
 * against their update rules computed by hand in double precision; state
 * allocation, reset, errors and the rebuild-by-name used by model files. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <nabla/nabla.h>

/* Values from docs/KERAS_SEMANTICS.md: one Adam step from θ = 1 with a constant gradient. */
static void test_adam_one_step_values(void **state)
{
    (void)state;
    struct { float g; int pytorch; double want; } cases[] = {
        {0.5f, 0, 0.9990000063245},
        {1e-6f, 0, 0.9997597469},
        {1e-6f, 1, 0.9990099010},
        {0.5f, 1, 0.999},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nb_optimizer *o = nb_adam_ex(&(nb_adam_opts){.pytorch = cases[c].pytorch});
        assert_non_null(o);
        assert_string_equal(o->def->name, "adam");
        float w = 1.0f, g = cases[c].g;
        assert_int_equal(nb_optimizer_step(o, &w, &g, 1), NB_OK);
        assert_float_equal(w, cases[c].want, 2e-7);
        assert_int_equal(o->iterations, 1);
        nb_optimizer_free(o);
    }
}

/* The update rules in double precision, three steps with changing gradients. */
static void adam_ref(double *w, double *m, double *v, const double *g, int n, int t, double lr, double b1, double b2,
                     double eps, int pytorch)
{
    double bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t);
    for (int i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        if (pytorch) w[i] -= lr * (m[i] / bc1) / (sqrt(v[i] / bc2) + eps);
        else w[i] -= lr * sqrt(bc2) / bc1 * m[i] / (sqrt(v[i]) + eps);
    }
}

static void test_adam_three_steps(void **state)
{
    (void)state;
    enum { N = 5 };
    for (int pytorch = 0; pytorch < 2; pytorch++) {
        nb_optimizer *o = nb_adam_ex(&(nb_adam_opts){.learning_rate = 0.01f, .pytorch = pytorch});
        assert_non_null(o);
        assert_int_equal(nb_optimizer_init(o, N), NB_OK);
        float w[N] = {1, -2, 0.5f, 3, 0};
        double wr[N], m[N] = {0}, v[N] = {0};
        for (int i = 0; i < N; i++) wr[i] = w[i];
        for (int t = 1; t <= 3; t++) {
            float g[N];
            double gd[N];
            for (int i = 0; i < N; i++) gd[i] = g[i] = (float)(0.3 * (i - 2) * t + 0.01 * t * t - (i == 4 ? 1e-6 : 0));
            assert_int_equal(nb_optimizer_step(o, w, g, N), NB_OK);
            adam_ref(wr, m, v, gd, N, t, 0.01, 0.9, 0.999, pytorch ? 1e-8 : 1e-7, pytorch);
            for (int i = 0; i < N; i++) assert_float_equal(w[i], wr[i], 1e-6);
        }
        for (int i = 0; i < N; i++) {
            assert_float_equal(nb_optimizer_slot(o, 0)[i], m[i], 1e-6);
            assert_float_equal(nb_optimizer_slot(o, 1)[i], v[i], 1e-6);
        }
        assert_int_equal(o->iterations, 3);
        nb_optimizer_free(o);
    }
}

/* Three Keras steps with a constant gradient (docs/KERAS_SEMANTICS.md), by hand. */
static void test_adam_three_steps_constant(void **state)
{
    (void)state;
    nb_optimizer *o = nb_adam(0.001f);
    float w = 1.0f, g = 0.5f;
    double wr = 1, m = 0, v = 0, gd = 0.5;
    for (int t = 1; t <= 3; t++) {
        nb_optimizer_step(o, &w, &g, 1);
        adam_ref(&wr, &m, &v, &gd, 1, t, 0.001, 0.9, 0.999, 1e-7, 0);
        assert_float_equal(w, wr, 2e-7);
    }
    /* a constant gradient moves θ by about lr per step */
    assert_float_equal(w, 0.997, 1e-5);
    nb_optimizer_free(o);
}

static void test_adam_defaults_and_errors(void **state)
{
    (void)state;
    nb_optimizer *o = nb_adam_ex(NULL);
    assert_non_null(o);
    assert_float_equal(o->hparams[0], 0.001, 1e-9);
    assert_float_equal(o->hparams[1], 0.9, 1e-7);
    assert_float_equal(o->hparams[2], 0.999, 1e-7);
    assert_float_equal(o->hparams[3], 1e-7, 1e-12);
    assert_int_equal(o->n_slots, 2);
    assert_null(nb_optimizer_slot(o, 0)); /* nothing allocated before the first step */
    assert_float_equal(nb_optimizer_lr(o), 0.001, 1e-9);
    assert_int_equal(nb_optimizer_set_lr(o, 0.5f), NB_OK);
    assert_float_equal(nb_optimizer_lr(o), 0.5, 1e-9);
    assert_int_equal(nb_optimizer_set_lr(o, -1.0f), NB_ERR_ARG);
    nb_optimizer_free(o);
    o = nb_adam_ex(&(nb_adam_opts){.pytorch = true});
    assert_float_equal(o->hparams[3], 1e-8, 1e-13);
    nb_optimizer_free(o);

    assert_null(nb_adam(0.0f));
    assert_non_null(strstr(nb_last_error(), "learning rate"));
    assert_null(nb_adam(-1.0f));
    assert_null(nb_adam(NAN));
    assert_null(nb_adam_ex(&(nb_adam_opts){.beta_1 = 1.0f}));
    assert_non_null(strstr(nb_last_error(), "beta"));
    assert_null(nb_adam_ex(&(nb_adam_opts){.beta_2 = 1.5f}));
    assert_null(nb_adam_ex(&(nb_adam_opts){.epsilon = -1.0f}));
    nb_optimizer_free(NULL);
}

static void test_state_allocation(void **state)
{
    (void)state;
    nb_optimizer *o = nb_adam(0.001f);
    float w[4] = {0}, g[4] = {1, 2, 3, 4};
    assert_int_equal(nb_optimizer_step(NULL, w, g, 4), NB_ERR_ARG);
    assert_int_equal(nb_optimizer_step(o, NULL, g, 4), NB_ERR_ARG);
    assert_int_equal(nb_optimizer_step(o, w, NULL, 4), NB_ERR_ARG);
    assert_int_equal(nb_optimizer_step(o, w, g, 0), NB_ERR_ARG);
    assert_int_equal(nb_optimizer_init(o, 0), NB_ERR_ARG);
    unsigned long before = nb_alloc_count();
    assert_int_equal(nb_optimizer_step(o, w, g, 4), NB_OK); /* allocates the state */
    unsigned long after_first = nb_alloc_count();
    assert_true(after_first > before);
    for (int i = 0; i < 100; i++) assert_int_equal(nb_optimizer_step(o, w, g, 4), NB_OK);
    assert_int_equal(nb_alloc_count(), after_first); /* steps allocate nothing */
    assert_int_equal(o->iterations, 101);
    /* a different size is a state error, with a message */
    assert_int_equal(nb_optimizer_step(o, w, g, 3), NB_ERR_STATE);
    assert_non_null(strstr(nb_last_error(), "4"));
    assert_int_equal(nb_optimizer_init(o, 4), NB_OK);
    assert_null(nb_optimizer_slot(o, 2));
    assert_null(nb_optimizer_slot(o, -1));
    nb_optimizer_reset(o);
    assert_int_equal(o->iterations, 0);
    for (int i = 0; i < 4; i++) assert_float_equal(nb_optimizer_slot(o, 0)[i], 0, 0);
    /* after a reset the next step equals a first step */
    float w1 = 1.0f, g1 = 0.5f, w2[4] = {1, 1, 1, 1}, g2[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    nb_optimizer *fresh = nb_adam(0.001f);
    nb_optimizer_step(fresh, &w1, &g1, 1);
    nb_optimizer_step(o, w2, g2, 4);
    assert_true(w1 == w2[0] && w1 == w2[3]);
    nb_optimizer_free(fresh);
    nb_optimizer_free(o);
}

/* Keras SGD: v = μv − lr·g; w += v (Nesterov: w += μv − lr·g), by hand. */
static void test_sgd(void **state)
{
    (void)state;
    /* plain: w -= lr g */
    nb_optimizer *o = nb_sgd(0.1f);
    assert_non_null(o);
    assert_int_equal(o->n_slots, 0);
    float w[2] = {1, -1}, g[2] = {0.5f, -2};
    nb_optimizer_step(o, w, g, 2);
    assert_float_equal(w[0], 0.95, 1e-7);
    assert_float_equal(w[1], -0.8, 1e-7);
    nb_optimizer_free(o);

    /* momentum 0.9, lr 0.1, g = 1 three times from w = 0:
     * v1 = -0.1, w1 = -0.1; v2 = -0.19, w2 = -0.29; v3 = -0.271, w3 = -0.561 */
    o = nb_sgd_ex(&(nb_sgd_opts){.learning_rate = 0.1f, .momentum = 0.9f});
    assert_int_equal(o->n_slots, 1);
    float x = 0, one = 1;
    const double plain[] = {-0.1, -0.29, -0.561};
    for (int t = 0; t < 3; t++) {
        nb_optimizer_step(o, &x, &one, 1);
        assert_float_equal(x, plain[t], 1e-6);
    }
    assert_float_equal(nb_optimizer_slot(o, 0)[0], -0.271, 1e-6);
    nb_optimizer_free(o);

    /* Nesterov: w += μ v − lr g with the new v:
     * v1 = -0.1, w1 = -0.09 - 0.1 = -0.19; v2 = -0.19, w2 = -0.19 - 0.171 - 0.1 = -0.461;
     * v3 = -0.271, w3 = -0.461 - 0.2439 - 0.1 = -0.8049 */
    o = nb_sgd_ex(&(nb_sgd_opts){.learning_rate = 0.1f, .momentum = 0.9f, .nesterov = true});
    x = 0;
    const double nest[] = {-0.19, -0.461, -0.8049};
    for (int t = 0; t < 3; t++) {
        nb_optimizer_step(o, &x, &one, 1);
        assert_float_equal(x, nest[t], 1e-6);
    }
    nb_optimizer_free(o);

    o = nb_sgd_ex(NULL);
    assert_float_equal(nb_optimizer_lr(o), 0.01, 1e-9);
    nb_optimizer_free(o);
    assert_null(nb_sgd(0.0f));
    assert_null(nb_sgd_ex(&(nb_sgd_opts){.momentum = 1.0f}));
    assert_non_null(strstr(nb_last_error(), "momentum"));
    assert_null(nb_sgd_ex(&(nb_sgd_opts){.momentum = -0.5f}));
}

/* Rebuilding by name gives the same kind with the same hyperparameters. */
/* step_clear = step, then the gradients zeroed; over several blocks and threads. */
static void test_step_clear(void **state)
{
    (void)state;
    enum { N = 50000 }; /* several clearing blocks, and large enough to be shared */
    static float w1[N], w2[N], g1[N], g2[N];
    for (int threads = 1; threads <= 2; threads++) {
        nb_set_num_threads(threads);
        nb_optimizer *a = nb_adam(0.01f), *b = nb_adam(0.01f);
        for (int i = 0; i < N; i++) w1[i] = w2[i] = (float)(i % 13) * 0.1f;
        for (int step = 0; step < 3; step++) {
            for (int i = 0; i < N; i++) g1[i] = g2[i] = (float)((i * 7 + step) % 11) - 5.0f;
            assert_int_equal(nb_optimizer_step(a, w1, g1, N), NB_OK);
            assert_int_equal(nb_optimizer_step_clear(b, w2, g2, N), NB_OK);
            assert_memory_equal(w1, w2, sizeof w1);
            for (int i = 0; i < N; i++) assert_true(g2[i] == 0.0f);
        }
        assert_int_equal(nb_optimizer_step_clear(b, NULL, g2, N), NB_ERR_ARG);
        assert_non_null(strstr(nb_last_error(), "nb_optimizer_step_clear"));
        nb_optimizer_free(a);
        nb_optimizer_free(b);
    }
    nb_set_num_threads(1);
}

static void test_create_by_name(void **state)
{
    (void)state;
    nb_optimizer *a = nb_adam_ex(&(nb_adam_opts){.learning_rate = 0.02f, .beta_1 = 0.8f, .pytorch = true});
    nb_optimizer *b = nb_optimizer_create(a->def->name, a->hparams, a->def->n_hparams);
    assert_non_null(b);
    assert_ptr_equal(a->def, b->def);
    assert_memory_equal(a->hparams, b->hparams, sizeof a->hparams);
    float wa = 1, wb = 1, g = 0.25f;
    for (int i = 0; i < 3; i++) {
        nb_optimizer_step(a, &wa, &g, 1);
        nb_optimizer_step(b, &wb, &g, 1);
    }
    assert_true(wa == wb);
    nb_optimizer_free(a);
    nb_optimizer_free(b);

    nb_optimizer *s = nb_sgd_ex(&(nb_sgd_opts){.learning_rate = 0.05f, .momentum = 0.5f, .nesterov = true});
    nb_optimizer *t = nb_optimizer_create("sgd", s->hparams, 3);
    assert_non_null(t);
    assert_int_equal(t->n_slots, 1);
    assert_memory_equal(s->hparams, t->hparams, sizeof s->hparams);
    nb_optimizer_free(s);
    nb_optimizer_free(t);

    assert_null(nb_optimizer_create("rmsprop", (float[]){0.1f}, 1));
    assert_non_null(strstr(nb_last_error(), "rmsprop"));
    assert_null(nb_optimizer_create("adam", (float[]){0.1f}, 1));
    assert_null(nb_optimizer_create("sgd", (float[]){-1.0f, 0, 0}, 3)); /* bad value */
    assert_null(nb_optimizer_create(NULL, (float[]){0.1f}, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adam_one_step_values),
        cmocka_unit_test(test_adam_three_steps),
        cmocka_unit_test(test_adam_three_steps_constant),
        cmocka_unit_test(test_adam_defaults_and_errors),
        cmocka_unit_test(test_state_allocation),
        cmocka_unit_test(test_sgd),
        cmocka_unit_test(test_step_clear),
        cmocka_unit_test(test_create_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
