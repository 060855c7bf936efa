/* dropout.c — inverted dropout (Srivastava et al. 2014, scaled at training time
 * as Keras and PyTorch do).
 *
 * In training mode (nb_graph_training, read on every forward) each element is
 * kept with probability 1 - rate and then scaled by 1 / (1 - rate), so the
 * expected value of every output equals its input and inference needs no
 * rescaling; the rest are set to 0. Each forward draws one 64-bit key from the
 * graph's generator (nb_graph_rng); element i's 32-bit draw is a keyed hash of
 * i (two rounds of the lowbias32 integer hash, C. Wellons's "Hash Prospector",
 * 2018, each a bijection of 32 bits), kept when the draw is >= rate · 2³². The
 * same seed gives the same masks, and the draws need no sequential state, so
 * the loop vectorises (a sequential generator cost 5 ns per element). The mask, already holding
 * 0 or 1 / (1 - rate), stays in scratch (one float per element) for the
 * backward, dx += dy · mask. Outside training mode (or at rate 0) the node is a
 * copy and its backward passes dy through. */
#include <string.h>

#include "ops_private.h"

typedef struct dropout_attr {
    float rate;
    int masked; /* set by each forward: 1 when it applied a mask (training mode, rate > 0) */
} dropout_attr;

static nb_status dropout_shape(nb_tensor *t)
{
    const nb_tensor *x = t->src[0];
    if (x->dtype != NB_F32) return nb_node_fail(t, NB_ERR_ARG, "dropout: input must be a float tensor");
    t->ndim = x->ndim;
    memcpy(t->shape, x->shape, sizeof t->shape);
    return NB_OK;
}

static inline uint32_t lowbias32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

/* mask[i] = keep or 0 by element i's draw; y = x ⊙ mask. */
NB_HOT_LOOP static void masked_copy(float *restrict y, float *restrict mask, const float *restrict x, size_t n,
                                    uint64_t key, uint32_t cut, float keep)
{
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (size_t i = 0; i < n; i++) {
        float m = lowbias32(lowbias32((uint32_t)i ^ k0) + k1) >= cut ? keep : 0.0f;
        mask[i] = m;
        y[i] = x[i] * m;
    }
}

static nb_status dropout_forward(nb_tensor *t)
{
    const nb_tensor *x = t->src[0];
    dropout_attr *da = NB_ATTR(t, dropout_attr);
    size_t n = t->size;
    da->masked = nb_graph_training(t->graph) && da->rate > 0.0f;
    if (!da->masked) {
        memcpy(t->data, x->data, n * sizeof *t->data);
        return NB_OK;
    }
    float *mask = nb_scratch(t, n);
    if (!mask) return NB_ERR_NOMEM;
    nb_rng *rng = nb_graph_rng(t->graph);
    uint32_t cut = (uint32_t)((double)da->rate * 4294967296.0); /* rate < 1: below 2^32 */
    float keep = 1.0f / (1.0f - da->rate);
    uint64_t key = (uint64_t)nb_rng_u32(rng) << 32 | nb_rng_u32(rng);
    masked_copy(t->data, mask, x->data, n, key, cut, keep);
    return NB_OK;
}

static void dropout_backward(nb_tensor *t)
{
    nb_tensor *x = t->src[0];
    if (!x->grad) return;
    size_t n = t->size;
    float *restrict dx = x->grad;
    const float *restrict dy = t->grad, *restrict mask = t->scratch;
    if (NB_ATTR(t, dropout_attr)->masked)
        for (size_t i = 0; i < n; i++) dx[i] += dy[i] * mask[i];
    else
        for (size_t i = 0; i < n; i++) dx[i] += dy[i];
}

static void dropout_describe(const nb_tensor *t, char *buf, size_t len)
{
    snprintf(buf, len, "rate=%g", (double)NB_ATTR(t, dropout_attr)->rate);
}

const nb_op nb_op_dropout = {.name = "dropout", .n_src = 1, .shape = dropout_shape, .forward = dropout_forward,
                             .backward = dropout_backward, .describe = dropout_describe};

nb_tensor *nb_dropout(nb_graph *g, nb_tensor *x, float rate)
{
    if (g && !(rate >= 0.0f && rate < 1.0f))
        return nb_graph_fail(g, NB_ERR_ARG, "dropout: rate %g is outside [0, 1)", (double)rate);
    dropout_attr attr = {.rate = rate};
    return nb_node(g, &nb_op_dropout, (nb_tensor *[]){x}, 1, &attr, sizeof attr);
}
