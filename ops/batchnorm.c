/* batchnorm.c — batch normalisation over the last axis (Keras BatchNormalization).
 *
 * Key: x is seen as (N, C): C channels (the last axis), N = size / C values of each
 * (every other axis: batch, height, width). Per channel c:
 *   training:  mean_c = Σ x / N,  var_c = Σ (x - mean_c)² / N (biased, two passes),
 *              moving = moving * momentum + batch * (1 - momentum) for both stats;
 *   inference: mean_c, var_c = moving_mean_c, moving_var_c;
 *   istd_c = 1 / sqrt(var_c + eps),  x̂ = (x - mean_c) * istd_c,  y = gamma_c * x̂ + beta_c,
 * computed as y = x * scale_c + shift_c with scale = gamma * istd and
 * shift = beta - mean * scale (tf.nn.batch_normalization's form).
 *
 * Backward of the training form (mean and var depend on x), with g = dy:
 *   dx = gamma * istd * (g - Σg / N - x̂ * Σ(g x̂) / N),  dgamma = Σ g x̂,  dbeta = Σ g;
 * of the inference form (constants): dx = gamma * istd * g, dgamma and dbeta alike.
 * Channel sums accumulate in double. The scratch holds, per channel, two double
 * accumulators, then mean, istd, scale and shift (floats) from the last forward,
 * which the backward reuses, and two per-channel means of the backward. */
#include "ops_private.h"

/* Attributes. momentum/epsilon/has_* are the builder's; `live` is set once the
 * build-time evaluation is over (only later runs update the moving statistics);
 * `trained` records the mode of the last forward for the backward. */
typedef struct bn_attr {
    float momentum, epsilon;
    int has_gamma, has_beta;
    int live, trained;
} bn_attr;

/* Sources: x, moving_mean, moving_var, then gamma (when given), then beta. */
static const nb_tensor *bn_gamma(const nb_tensor *t)
{
    return NB_ATTR(t, bn_attr)->has_gamma ? t->src[3] : NULL;
}
static const nb_tensor *bn_beta(const nb_tensor *t)
{
    const bn_attr *a = NB_ATTR(t, bn_attr);
    return a->has_beta ? t->src[3 + a->has_gamma] : NULL;
}

/* The scratch's parts for C channels. */
typedef struct bn_bufs {
    double *acc, *acc2;                /* (C) each */
    float *mean, *istd, *scale, *shift; /* (C) each, from the forward */
    float *gmean, *gxmean;              /* (C) each: Σg / N and Σ(g x̂) / N in the backward */
} bn_bufs;

static bn_bufs bufs(float *s, int C)
{
    double *d = (double *)(void *)s; /* the buffer is malloc'ed: aligned for double */
    float *f = s + 4 * (size_t)C;
    return (bn_bufs){d, d + C, f, f + C, f + 2 * (size_t)C, f + 3 * (size_t)C, f + 4 * (size_t)C, f + 5 * (size_t)C};
}

static nb_status bn_shape(nb_tensor *t)
{
    const nb_tensor *x = t->src[0];
    char sx[64], sp[64];
    for (int i = 0; i < t->n_src; i++)
        if (t->src[i]->dtype != NB_F32) return nb_node_fail(t, NB_ERR_ARG, "batch_norm: inputs must be float tensors");
    if (x->ndim < 2)
        return nb_node_fail(t, NB_ERR_SHAPE, "batch_norm: input %s needs rank >= 2 (batch, ..., channels)",
                            nb_shape_str(x, sx, sizeof sx));
    static const char *const names[] = {"input", "moving_mean", "moving_var", "gamma", "beta"};
    int C = nb_cols(x);
    for (int i = 1; i < t->n_src; i++) {
        const nb_tensor *p = t->src[i];
        int k = i < 3 ? i : i == 3 && NB_ATTR(t, bn_attr)->has_gamma ? 3 : 4;
        if (p->ndim != 1 || p->shape[0] != C)
            return nb_node_fail(t, NB_ERR_SHAPE, "batch_norm: %s %s does not fit input %s (need (%d,))", names[k],
                                nb_shape_str(p, sp, sizeof sp), nb_shape_str(x, sx, sizeof sx), C);
        if (i < 3 && !(p->flags & NB_FLAG_STATE))
            return nb_node_fail(t, NB_ERR_ARG, "batch_norm: %s must be a state leaf (nb_state)", names[k]);
    }
    t->ndim = x->ndim;
    for (int d = 0; d < x->ndim; d++) t->shape[d] = x->shape[d];
    return NB_OK;
}

/* Batch mean and biased variance of x (N, C) into mean and var (stored in istd). */
static void batch_moments(const float *restrict x, size_t N, int C, bn_bufs b)
{
    double *restrict s = b.acc, *restrict s2 = b.acc2;
    for (int c = 0; c < C; c++) s[c] = 0, s2[c] = 0;
    for (size_t r = 0; r < N; r++, x += C)
        for (int c = 0; c < C; c++) s[c] += x[c];
    for (int c = 0; c < C; c++) b.mean[c] = (float)(s[c] / (double)N);
    const float *restrict m = b.mean;
    x -= N * (size_t)C;
    for (size_t r = 0; r < N; r++, x += C)
        for (int c = 0; c < C; c++) {
            double d = (double)x[c] - m[c];
            s2[c] += d * d;
        }
    for (int c = 0; c < C; c++) b.istd[c] = (float)(s2[c] / (double)N);
}

static nb_status bn_forward(nb_tensor *t)
{
    const nb_tensor *x = t->src[0], *gamma = bn_gamma(t), *beta = bn_beta(t);
    nb_tensor *mm = t->src[1], *mv = t->src[2];
    bn_attr *a = NB_ATTR(t, bn_attr);
    const int C = nb_cols(x);
    const size_t N = x->size / (size_t)C;
    float *s = nb_scratch(t, 10 * (size_t)C);
    if (!s) return NB_ERR_NOMEM;
    bn_bufs b = bufs(s, C);
    a->trained = nb_graph_training(t->graph);
    if (a->trained) {
        batch_moments(x->data, N, C, b); /* b.istd holds the variance for now */
        if (a->live)
            for (int c = 0; c < C; c++) {
                mm->data[c] = mm->data[c] * a->momentum + b.mean[c] * (1.0f - a->momentum);
                mv->data[c] = mv->data[c] * a->momentum + b.istd[c] * (1.0f - a->momentum);
            }
    } else {
        for (int c = 0; c < C; c++) b.mean[c] = mm->data[c], b.istd[c] = mv->data[c];
    }
    for (int c = 0; c < C; c++) {
        b.istd[c] = 1.0f / sqrtf(b.istd[c] + a->epsilon);
        b.scale[c] = (gamma ? gamma->data[c] : 1.0f) * b.istd[c];
        b.shift[c] = (beta ? beta->data[c] : 0.0f) - b.mean[c] * b.scale[c];
    }
    const float *restrict xd = x->data, *restrict sc = b.scale, *restrict sh = b.shift;
    float *restrict y = t->data;
    for (size_t r = 0; r < N; r++, xd += C, y += C)
        for (int c = 0; c < C; c++) y[c] = xd[c] * sc[c] + sh[c];
    return NB_OK;
}

static void bn_backward(nb_tensor *t)
{
    const nb_tensor *x = t->src[0];
    nb_tensor *gamma = (nb_tensor *)bn_gamma(t), *beta = (nb_tensor *)bn_beta(t);
    const int C = nb_cols(x);
    const size_t N = x->size / (size_t)C;
    bn_bufs b = bufs(t->scratch, C); /* sized and filled by the forward */
    const float *restrict m = b.mean, *restrict is = b.istd;
    double *restrict sdy = b.acc, *restrict sdyx = b.acc2;
    for (int c = 0; c < C; c++) sdy[c] = 0, sdyx[c] = 0;
    const float *restrict xd = x->data, *restrict dy = t->grad;
    for (size_t r = 0; r < N; r++, xd += C, dy += C)
        for (int c = 0; c < C; c++) {
            sdy[c] += dy[c];
            sdyx[c] += dy[c] * ((xd[c] - m[c]) * is[c]);
        }
    if (gamma && gamma->grad)
        for (int c = 0; c < C; c++) gamma->grad[c] += (float)sdyx[c];
    if (beta && beta->grad)
        for (int c = 0; c < C; c++) beta->grad[c] += (float)sdy[c];
    float *restrict dx = x->grad;
    if (!dx) return;
    /* scale = gamma * istd; the training form also removes the mean of g and its part along x̂ */
    const float *restrict sc = b.scale;
    xd = x->data, dy = t->grad;
    if (!NB_ATTR(t, bn_attr)->trained) {
        for (size_t r = 0; r < N; r++, dy += C, dx += C)
            for (int c = 0; c < C; c++) dx[c] += sc[c] * dy[c];
        return;
    }
    float *restrict gm = b.gmean, *restrict gxm = b.gxmean;
    for (int c = 0; c < C; c++) gm[c] = (float)(sdy[c] / (double)N), gxm[c] = (float)(sdyx[c] / (double)N);
    for (size_t r = 0; r < N; r++, xd += C, dy += C, dx += C)
        for (int c = 0; c < C; c++) dx[c] += sc[c] * (dy[c] - gm[c] - (xd[c] - m[c]) * is[c] * gxm[c]);
}

static void bn_describe(const nb_tensor *t, char *buf, size_t len)
{
    const bn_attr *a = NB_ATTR(t, bn_attr);
    snprintf(buf, len, "momentum %g eps %g", (double)a->momentum, (double)a->epsilon);
}

const nb_op nb_op_batch_norm = {.name = "batch_norm", .n_src = NB_VARIADIC, .shape = bn_shape, .forward = bn_forward,
                                .backward = bn_backward, .describe = bn_describe};

nb_tensor *nb_batch_norm(nb_graph *g, nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, nb_tensor *moving_mean,
                         nb_tensor *moving_var, float momentum, float epsilon)
{
    if (!g) {
        nb_fail(NB_ERR_ARG, "batch_norm: graph is NULL");
        return NULL;
    }
    if (!(momentum >= 0.0f && momentum <= 1.0f) || !(epsilon > 0.0f))
        return nb_graph_fail(g, NB_ERR_ARG, "batch_norm: momentum %g must be in [0, 1] and epsilon %g > 0",
                             (double)momentum, (double)epsilon);
    if ((!moving_mean || !moving_var) && !nb_graph_error(g))
        return nb_graph_fail(g, NB_ERR_ARG, "batch_norm: moving_mean and moving_var are required");
    if (!moving_mean || !moving_var) return NULL;
    bn_attr attr = {.momentum = momentum, .epsilon = epsilon, .has_gamma = gamma != NULL, .has_beta = beta != NULL};
    nb_tensor *src[5] = {x, moving_mean, moving_var};
    int n = 3;
    if (gamma) src[n++] = gamma;
    if (beta) src[n++] = beta;
    nb_tensor *t = nb_node(g, &nb_op_batch_norm, src, n, &attr, sizeof attr);
    if (t) NB_ATTR(t, bn_attr)->live = 1; /* from now on, training runs update the moving statistics */
    return t;
}
