/* norm.c — layer normalisation over the last axis, one fused node.
 *
 * Key: x (R, D) in its matrix view (R rows of the last axis D); gamma and beta
 * (D). Per row: mean μ = Σ x / D, variance σ² = Σ (x - μ)² / D (two passes, the
 * biased estimate both Keras and PyTorch use), r = 1 / √(σ² + ε),
 * x̂ = (x - μ) r, y = x̂ γ + β. The row's μ and r are kept in scratch (2R
 * floats) for the backward, which is the closed form: with g = dy γ,
 *   dx = r (g - mean(g) - x̂ mean(g x̂)),  dγ += Σ_rows dy x̂,  dβ += Σ_rows dy. */
#include <string.h>

#include "ops_private.h"

typedef struct layer_norm_attr {
    float epsilon;
    int has_gamma, has_beta; /* sources: x, then gamma when present, then beta */
} layer_norm_attr;

static const nb_tensor *ln_gamma(const nb_tensor *t)
{
    return NB_ATTR(t, layer_norm_attr)->has_gamma ? t->src[1] : NULL;
}
static const nb_tensor *ln_beta(const nb_tensor *t)
{
    return NB_ATTR(t, layer_norm_attr)->has_beta ? t->src[t->n_src - 1] : NULL;
}

static nb_status layer_norm_shape(nb_tensor *t)
{
    const nb_tensor *x = t->src[0];
    char sx[64], sp[64];
    for (int i = 0; i < t->n_src; i++)
        if (t->src[i]->dtype != NB_F32) return nb_node_fail(t, NB_ERR_ARG, "layer_norm: inputs must be float tensors");
    if (x->ndim < 1) return nb_node_fail(t, NB_ERR_SHAPE, "layer_norm: input is a scalar (need at least one axis)");
    for (int i = 1; i < t->n_src; i++) {
        const nb_tensor *p = t->src[i];
        if (p->size != (size_t)nb_cols(x) || nb_cols(p) != nb_cols(x))
            return nb_node_fail(t, NB_ERR_SHAPE, "layer_norm: %s %s does not fit input %s (need (%d,))",
                                p == ln_gamma(t) ? "gamma" : "beta", nb_shape_str(p, sp, sizeof sp),
                                nb_shape_str(x, sx, sizeof sx), nb_cols(x));
    }
    t->ndim = x->ndim;
    memcpy(t->shape, x->shape, sizeof t->shape);
    return NB_OK;
}

static nb_status layer_norm_forward(nb_tensor *t)
{
    const nb_tensor *x = t->src[0], *gm = ln_gamma(t), *bt = ln_beta(t);
    int R = nb_rows(x), D = nb_cols(x);
    float eps = NB_ATTR(t, layer_norm_attr)->epsilon;
    float *stats = nb_scratch(t, 2 * (size_t)R); /* (R, 2): mean, 1/std */
    if (!stats) return NB_ERR_NOMEM;
    for (int r = 0; r < R; r++) {
        const float *restrict xr = x->data + (size_t)r * D;
        float *restrict y = t->data + (size_t)r * D;
        float sum = 0.0f, sq = 0.0f;
        for (int j = 0; j < D; j++) sum += xr[j];
        float mean = sum / (float)D;
        for (int j = 0; j < D; j++) sq += (xr[j] - mean) * (xr[j] - mean);
        float rstd = 1.0f / sqrtf(sq / (float)D + eps);
        stats[2 * r] = mean;
        stats[2 * r + 1] = rstd;
        if (gm && bt) /* one pass for each combination, no branch inside */
            for (int j = 0; j < D; j++) y[j] = (xr[j] - mean) * rstd * gm->data[j] + bt->data[j];
        else if (gm)
            for (int j = 0; j < D; j++) y[j] = (xr[j] - mean) * rstd * gm->data[j];
        else if (bt)
            for (int j = 0; j < D; j++) y[j] = (xr[j] - mean) * rstd + bt->data[j];
        else
            for (int j = 0; j < D; j++) y[j] = (xr[j] - mean) * rstd;
    }
    return NB_OK;
}

static void layer_norm_backward(nb_tensor *t)
{
    nb_tensor *x = t->src[0];
    const nb_tensor *gm = ln_gamma(t), *bt = ln_beta(t);
    float *dgamma = gm ? gm->grad : NULL, *dbeta = bt ? bt->grad : NULL;
    int R = nb_rows(x), D = nb_cols(x);
    const float *stats = t->scratch;
    for (int r = 0; r < R; r++) {
        const float *restrict xr = x->data + (size_t)r * D, *restrict dy = t->grad + (size_t)r * D;
        float mean = stats[2 * r], rstd = stats[2 * r + 1];
        float m1 = 0.0f, m2 = 0.0f; /* Σ g, Σ g x̂ */
        for (int j = 0; j < D; j++) {
            float xh = (xr[j] - mean) * rstd, g = gm ? dy[j] * gm->data[j] : dy[j];
            m1 += g;
            m2 += g * xh;
            if (dgamma) dgamma[j] += dy[j] * xh;
            if (dbeta) dbeta[j] += dy[j];
        }
        if (!x->grad) continue;
        m1 /= (float)D;
        m2 /= (float)D;
        float *restrict dx = x->grad + (size_t)r * D;
        for (int j = 0; j < D; j++) {
            float xh = (xr[j] - mean) * rstd, g = gm ? dy[j] * gm->data[j] : dy[j];
            dx[j] += rstd * (g - m1 - xh * m2);
        }
    }
}

static void layer_norm_describe(const nb_tensor *t, char *buf, size_t len)
{
    const layer_norm_attr *la = NB_ATTR(t, layer_norm_attr);
    snprintf(buf, len, "epsilon=%g%s%s", (double)la->epsilon, la->has_gamma ? " gamma" : "",
             la->has_beta ? " beta" : "");
}

const nb_op nb_op_layer_norm = {.name = "layer_norm", .n_src = NB_VARIADIC, .shape = layer_norm_shape,
                                .forward = layer_norm_forward, .backward = layer_norm_backward,
                                .describe = layer_norm_describe};

nb_tensor *nb_layer_norm(nb_graph *g, nb_tensor *x, nb_tensor *gamma, nb_tensor *beta, float epsilon)
{
    if (g && !(epsilon > 0.0f && isfinite(epsilon)))
        return nb_graph_fail(g, NB_ERR_ARG, "layer_norm: epsilon %g (need a finite value > 0)", (double)epsilon);
    layer_norm_attr attr = {.epsilon = epsilon, .has_gamma = gamma != NULL, .has_beta = beta != NULL};
    nb_tensor *src[3] = {x};
    int n = 1;
    if (gamma) src[n++] = gamma;
    if (beta) src[n++] = beta;
    return nb_node(g, &nb_op_layer_norm, src, n, &attr, sizeof attr);
}
