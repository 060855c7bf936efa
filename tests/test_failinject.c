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

#include <nabla/nabla.h>
#include "failalloc.h"

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
    nb_set_allocator(&failalloc);
    failalloc_arm(-1);
    assert_int_equal(program(), 0); /* succeeds without injection */
    assert_int_equal(failalloc_live(), 0);
    int k;
    for (k = 0; k < 10000; k++) {
        failalloc_arm(k);
        nb_clear_error();
        int rc = program();
        assert_int_equal(failalloc_live(), 0); /* nothing leaked */
        if (!failalloc_failed()) {             /* k is past the program's last allocation */
            assert_int_equal(rc, 0);
            break;
        }
        assert_int_equal(rc, 1);               /* the failure was reported */
    }
    assert_true(k > 5);
    failalloc_arm(-1);
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
