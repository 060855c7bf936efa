/* op_check.h — what the op suites share: a seeded generator, random fills, a
 * loss that gives every element its own upstream gradient, the
 * finite-difference check with the tolerance float32 allows, and the check
 * that an op builder fails with a given message. Include after
 * <cmocka.h> and <nabla/nabla.h>; seed `rng` in the suite's setup. */
#ifndef NB_TEST_OP_CHECK_H
#define NB_TEST_OP_CHECK_H

#define FD_H 1e-3f  /* central-difference step */
#define FD_TOL 1e-2 /* relative tolerance for float32 finite differences */

/* An op that must fail on graph g with a graph message containing `frag`; the
 * graph's error is cleared afterwards so the next case records its own. */
#define expect_op_fail(g, call, frag)                                                                        \
    do {                                                                                                     \
        nb_graph_clear_error(g);                                                                             \
        nb_tensor *t_ = (call);                                                                              \
        const char *e_ = nb_graph_error(g);                                                                  \
        if (t_ || !e_ || !strstr(e_, (frag)))                                                                \
            fail_msg("%s: got %p \"%s\", want NULL with \"%s\"", #call, (void *)t_, e_ ? e_ : "(none)", (frag)); \
        nb_graph_clear_error(g);                                                                             \
    } while (0)

static nb_rng rng __attribute__((unused)); /* not every includer draws */

static inline void fill(nb_tensor *t, float lo, float hi)
{
    for (size_t i = 0; i < t->size; i++) t->data[i] = nb_rng_uniform_range(&rng, lo, hi);
}

/* Magnitudes in [lo, hi] with random signs: away from the kinks at 0. */
static inline void fill_away_from_zero(nb_tensor *t, float lo, float hi)
{
    for (size_t i = 0; i < t->size; i++) {
        float v = nb_rng_uniform_range(&rng, lo, hi);
        t->data[i] = nb_rng_u32(&rng) & 1 ? v : -v;
    }
}

/* sum(y * w) with fixed random weights w (an input: no gradient), so each
 * element of y gets a different upstream gradient. A scalar y is returned as is. */
static inline nb_tensor *weighted_loss(nb_graph *g, nb_tensor *y)
{
    if (!y) fail_msg("op failed: %s", nb_last_error());
    if (y->size == 1 && y->ndim == 0) return y;
    nb_tensor *w = nb_input(g, NB_F32, y->ndim, y->shape);
    assert_non_null(w);
    fill(w, -1.0f, 1.0f);
    nb_tensor *loss = nb_sum(g, nb_mul(g, y, w));
    assert_non_null(loss);
    return loss;
}

/* The backward of every parameter of g agrees with central differences of loss
 * (what names the case in the failure message; may be NULL). */
static inline void assert_gradcheck_at(nb_graph *g, nb_tensor *loss, const char *what)
{
    double err;
    nb_status s = nb_gradcheck(g, loss, NULL, 0, FD_H, &err);
    if (s != NB_OK || !(err < FD_TOL))
        fail_msg("%s%sgradcheck error %g (%s)", what ? what : "", what ? ": " : "", err, nb_last_error());
}
static inline void assert_gradcheck(nb_graph *g, nb_tensor *loss) { assert_gradcheck_at(g, loss, NULL); }

#endif
