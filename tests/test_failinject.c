/* test_failinject.c — failure injection: the allocator hook fails the k-th
 * allocation, for every k a program makes. Each failure must surface as a NULL or
 * an error status with a message, and everything allocated must still be freed
 * (run under ASan or valgrind to see leaks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nabla.h"

/* An allocator that fails once its countdown reaches zero; counts live blocks. */
static long countdown = -1; /* -1: never fail */
static long live;
static int failed;

static void *fi_alloc(void *ctx, size_t n)
{
    (void)ctx;
    if (countdown == 0) {
        failed = 1;
        return NULL;
    }
    if (countdown > 0) countdown--;
    void *p = malloc(n);
    if (p) live++;
    return p;
}
static void *fi_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    if (countdown == 0) {
        failed = 1;
        return NULL;
    }
    if (countdown > 0) countdown--;
    void *q = realloc(p, n);
    if (q && !p) live++;
    return q;
}
static void fi_free(void *ctx, void *p)
{
    (void)ctx;
    if (p) live--;
    free(p);
}
static const nb_allocator failing = {fi_alloc, fi_realloc, fi_free, NULL};

/* A small program on the graph API; returns 0 on success, 1 when something
 * reported a failure (each failure must come with a message). */
static int graph_program(void)
{
    nb_graph *g = nb_graph_new();
    if (!g) return assert_true(nb_last_error()[0]), 1;
    int rc = 1;
    nb_tensor *x = nb_input(g, NB_F32, 2, (int[]){4, 3});
    nb_tensor *w = nb_param(g, 2, (int[]){1, 3});
    nb_tensor *b = nb_param(g, 1, (int[]){3});
    nb_tensor *loss = nb_mean(g, nb_mul(g, nb_add(g, x, b), nb_add(g, x, nb_scale(g, w, 2.0f))));
    if (!loss) {
        assert_non_null(nb_graph_error(g));
        goto done;
    }
    if (nb_graph_pack_params(g) != NB_OK || nb_input_set_batch(x, 16) != NB_OK || nb_forward(g) != NB_OK ||
        nb_backward(g, loss) != NB_OK) {
        assert_true(nb_last_error()[0]);
        goto done;
    }
    rc = 0;
done:
    nb_graph_free(g);
    return rc;
}

static void run_every_k(int (*program)(void))
{
    nb_set_allocator(&failing);
    countdown = -1;
    live = 0;
    assert_int_equal(program(), 0); /* succeeds without injection */
    assert_int_equal(live, 0);
    int k;
    for (k = 0; k < 10000; k++) {
        countdown = k;
        failed = 0;
        live = 0;
        nb_clear_error();
        int rc = program();
        assert_int_equal(live, 0);           /* nothing leaked */
        if (!failed) {                       /* k is past the program's last allocation */
            assert_int_equal(rc, 0);
            break;
        }
        assert_int_equal(rc, 1);             /* the failure was reported */
    }
    assert_true(k > 5);
    countdown = -1;
    nb_set_allocator(NULL);
}

static void test_graph_every_allocation(void **state)
{
    (void)state;
    run_every_k(graph_program);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graph_every_allocation),
    };
    return cmocka_run_group_tests_name("failinject", tests, NULL, NULL);
}
