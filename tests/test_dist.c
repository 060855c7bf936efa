/* test_dist.c — nb_dist.h in one process (with or without MPI built in): the
 * collectives leave values as they are, failures carry their message, and the
 * gradient buckets are cut from the end of the block and start exactly when
 * backward has finished with them. The multi-process behaviour is tested by
 * dist_train.c under mpirun. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <nabla/nabla.h>
#include <nabla/nb_dist.h>

static void test_single_process(void **state)
{
    (void)state;
    assert_int_equal(nb_dist_rank(), 0);
    assert_int_equal(nb_dist_size(), 1);
#ifdef NB_HAVE_MPI
    assert_true(nb_dist_enabled());
#else
    assert_false(nb_dist_enabled());
#endif
    assert_int_equal(nb_dist_init(NULL, NULL), NB_OK); /* again: a no-op */
    float x[3] = {1, 2, 3};
    assert_int_equal(nb_dist_broadcast(x, 3), NB_OK);
    assert_int_equal(nb_dist_allreduce_mean(x, 3), NB_OK);
    assert_true(x[0] == 1 && x[1] == 2 && x[2] == 3);
    double v[2] = {0.5, 7};
    assert_int_equal(nb_dist_sum(v, 2), NB_OK);
    assert_true(v[0] == 0.5 && v[1] == 7);
    assert_int_equal(nb_dist_broadcast(NULL, 0), NB_OK);
    assert_int_equal(nb_dist_broadcast(NULL, 3), NB_ERR_ARG);
    assert_int_equal(nb_dist_allreduce_mean(NULL, 3), NB_ERR_ARG);
    assert_int_equal(nb_dist_sum(NULL, 1), NB_ERR_ARG);
    assert_int_equal(nb_dist_sum(v, -1), NB_ERR_ARG);
    assert_int_equal(nb_dist_check_same("abc", 3, "model"), NB_OK);
    assert_int_equal(nb_dist_check_same(NULL, 3, "model"), NB_ERR_ARG);
}

static void test_agree(void **state)
{
    (void)state;
    nb_fail(NB_ERR_IO, "earlier");
    assert_int_equal(nb_dist_agree(NB_OK, NULL), NB_OK);
    assert_string_equal(nb_last_error(), "earlier"); /* untouched on success */
    assert_int_equal(nb_dist_agree(NB_ERR_LABEL, "bad data at step 2"), NB_ERR_LABEL);
    assert_string_equal(nb_last_error(), "rank 0: bad data at step 2");
    nb_fail(NB_ERR_FORMAT, "model.nb: bad magic");
    assert_int_equal(nb_dist_agree(NB_ERR_FORMAT, NULL), NB_ERR_FORMAT); /* NULL: nb_last_error */
    assert_string_equal(nb_last_error(), "rank 0: model.nb: bad magic");
    char longmsg[1000];
    memset(longmsg, 'x', sizeof longmsg - 1);
    longmsg[sizeof longmsg - 1] = '\0';
    assert_int_equal(nb_dist_agree(NB_ERR_IO, longmsg), NB_ERR_IO);
    assert_int_equal(strlen(nb_last_error()), strlen("rank 0: ") + 400);
}

static void test_buckets(void **state)
{
    (void)state;
    assert_null(nb_dist_grads_new(NULL, 4, 0));
    assert_non_null(strstr(nb_last_error(), "grad is NULL"));
    float g[10];
    assert_null(nb_dist_grads_new(g, 0, 0));
    assert_int_equal(nb_dist_grads_bucket_count(NULL), 0);
    for (int i = 0; i < 10; i++) g[i] = (float)i;
    nb_dist_grads *d = nb_dist_grads_new(g, 10, 4 * sizeof(float)); /* [6,10) [2,6) [0,2) */
    assert_non_null(d);
    assert_int_equal(nb_dist_grads_bucket_count(d), 3);
    assert_int_equal(nb_dist_grads_ready(d, 7), NB_OK);
    assert_int_equal(nb_dist_grads_started(d), 0);
    assert_int_equal(nb_dist_grads_ready(d, 6), NB_OK);
    assert_int_equal(nb_dist_grads_started(d), 1);
    assert_int_equal(nb_dist_grads_ready(d, 1), NB_OK);
    assert_int_equal(nb_dist_grads_started(d), 2);
    assert_int_equal(nb_dist_grads_finish(d), NB_OK);
    assert_int_equal(nb_dist_grads_started(d), 0); /* ready for the next step */
    for (int i = 0; i < 10; i++) assert_true(g[i] == (float)i); /* the mean over one rank */
    nb_dist_grads_set_share(d, 1, 4);                           /* 1 row of a global 4 */
    assert_int_equal(nb_dist_grads_finish(d), NB_OK);
    for (int i = 0; i < 10; i++) assert_true(g[i] == (float)i * 0.25f);
    nb_dist_grads_set_share(d, 0, 4); /* no rows: zeros */
    nb_dist_grads_set_overlap(d, false);
    assert_int_equal(nb_dist_grads_ready(d, 0), NB_OK);
    assert_int_equal(nb_dist_grads_started(d), 0); /* overlap off: nothing starts early */
    assert_int_equal(nb_dist_grads_finish(d), NB_OK);
    for (int i = 0; i < 10; i++) assert_true(g[i] == 0);
    nb_dist_grads_free(d);
    nb_dist_grads_free(NULL);
    d = nb_dist_grads_new(g, 10, 1); /* less than a float: one float per bucket */
    assert_int_equal(nb_dist_grads_bucket_count(d), 10);
    nb_dist_grads_free(d);
    d = nb_dist_grads_new(g, 10, 0); /* the default: one bucket */
    assert_int_equal(nb_dist_grads_bucket_count(d), 1);
    nb_dist_grads_free(d);
}

/* An identity op whose backward records how many buckets had started by then. */
static nb_dist_grads *probe_d;
static int probe_seen = -1;
static nb_status probe_shape(nb_tensor *t)
{
    t->ndim = t->src[0]->ndim;
    memcpy(t->shape, t->src[0]->shape, sizeof t->shape);
    return NB_OK;
}
static nb_status probe_forward(nb_tensor *t)
{
    memcpy(t->data, t->src[0]->data, t->size * sizeof *t->data);
    return NB_OK;
}
static void probe_backward(nb_tensor *t)
{
    probe_seen = nb_dist_grads_started(probe_d);
    if (t->src[0]->grad)
        for (size_t i = 0; i < t->size; i++) t->src[0]->grad[i] += t->grad[i];
}
static const nb_op probe_op = {.name = "probe", .n_src = 1, .shape = probe_shape, .forward = probe_forward,
                               .backward = probe_backward};

/* x (4, 3) -> dense 4 relu -> probe -> dense 2 -> sparse softmax cross-entropy.
 * Parameter block: W1 [0,12) b1 [12,16) W2 [16,24) b2 [24,26). */
typedef struct mlp {
    nb_graph *g;
    nb_tensor *x, *y, *loss;
} mlp;

static mlp mlp_new(void)
{
    mlp m;
    m.g = nb_graph_new();
    m.x = nb_input(m.g, NB_F32, 2, (int[]){4, 3});
    m.y = nb_input(m.g, NB_I32, 1, (int[]){4});
    nb_tensor *w1 = nb_param(m.g, 2, (int[]){3, 4}), *b1 = nb_param(m.g, 1, (int[]){4});
    nb_tensor *h = nb_dense(m.g, m.x, w1, b1, NB_RELU);
    h = nb_node(m.g, &probe_op, (nb_tensor *[]){h}, 1, NULL, 0);
    nb_tensor *w2 = nb_param(m.g, 2, (int[]){4, 2}), *b2 = nb_param(m.g, 1, (int[]){2});
    m.loss = nb_sparse_categorical_crossentropy(m.g, nb_dense(m.g, h, w2, b2, NB_LINEAR), m.y, true);
    assert_non_null(m.loss);
    for (int i = 0; i < 12; i++) m.x->data[i] = (float)(i % 5) * 0.3f - 0.5f;
    for (int i = 0; i < 4; i++) m.y->idata[i] = i % 2;
    return m;
}

static void test_attach_overlap(void **state)
{
    (void)state;
    float w[26], gr[26], ref[26];
    for (int i = 0; i < 26; i++) w[i] = 0.1f * (float)((i * 7) % 11) - 0.4f;
    mlp m = mlp_new();
    nb_dist_grads *d = nb_dist_grads_new(gr, 26, 2 * sizeof(float)); /* 13 buckets of 2 */
    probe_d = d;
    assert_int_equal(nb_dist_grads_attach(d, m.g), NB_ERR_ARG); /* parameters not in the block */
    assert_non_null(strstr(nb_last_error(), "nb_graph_bind_params"));
    assert_int_equal(nb_graph_bind_params(m.g, w, gr, 26), NB_OK);
    /* reference gradients, nothing attached */
    nb_zero_grad(m.g);
    assert_int_equal(nb_forward(m.g), NB_OK);
    assert_int_equal(nb_backward(m.g, m.loss), NB_OK);
    memcpy(ref, gr, sizeof ref);
    assert_int_equal(nb_dist_grads_attach(d, m.g), NB_OK);
    unsigned long allocs = nb_alloc_count();
    for (int step = 0; step < 2; step++) {
        nb_zero_grad(m.g);
        probe_seen = -1;
        assert_int_equal(nb_forward(m.g), NB_OK);
        assert_int_equal(nb_backward(m.g, m.loss), NB_OK);
        /* at the probe, layer 2 ([16, 26): buckets 0..4) is final, layer 1 is not */
        assert_int_equal(probe_seen, 5);
        assert_int_equal(nb_dist_grads_started(d), 13); /* all by node 0 */
        assert_int_equal(nb_dist_grads_finish(d), NB_OK);
        assert_memory_equal(gr, ref, sizeof ref);
    }
    assert_int_equal(nb_alloc_count(), allocs); /* steps allocate nothing */
    assert_int_equal(nb_dist_grads_attach(d, NULL), NB_OK); /* detached: no more hook */
    nb_zero_grad(m.g);
    assert_int_equal(nb_backward(m.g, m.loss), NB_OK);
    assert_int_equal(nb_dist_grads_started(d), 0);
    assert_int_equal(nb_dist_grads_finish(d), NB_OK);
    assert_int_equal(nb_dist_grads_attach(d, m.g), NB_OK);
    nb_dist_grads_free(d); /* detaches itself */
    probe_d = NULL;
    nb_zero_grad(m.g);
    assert_int_equal(nb_backward(m.g, m.loss), NB_OK);
    nb_graph_free(m.g);
    assert_int_equal(nb_dist_grads_attach(NULL, NULL), NB_ERR_ARG);
    assert_int_equal(nb_dist_grads_ready(NULL, 0), NB_ERR_ARG);
    assert_int_equal(nb_dist_grads_finish(NULL), NB_ERR_ARG);
}

int main(int argc, char **argv)
{
    if (nb_dist_init(&argc, &argv) != NB_OK) {
        fprintf(stderr, "nb_dist_init: %s\n", nb_last_error());
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_process),
        cmocka_unit_test(test_agree),
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_attach_overlap),
    };
    int failed = cmocka_run_group_tests_name("dist", tests, NULL, NULL);
    nb_dist_finalize();
    nb_dist_finalize(); /* twice: harmless */
    return failed;
}
