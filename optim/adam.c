/* adam.c — Adam (Kingma & Ba 2015) in Keras's form (keras/src/optimizers/adam.py)
 * and PyTorch's (torch/optim/adam.py, _single_tensor_adam). One pass over the
 * parameters per step; the loop has no branches and no calls but sqrtf (the build
 * uses -fno-math-errno), so it vectorises.
 *
 * hparams: [0] lr, [1] β1, [2] β2, [3] ε, [4] form (0 Keras, 1 PyTorch).
 * slots:   [0] m (first moment), [1] v (second moment). */
#include <math.h>

#include <nabla/nb_optim.h>

/* NB_HOT_LOOP (meson.build): compiled for AVX-512, AVX2 and the baseline in a portable build */
#ifndef NB_HOT_LOOP
#define NB_HOT_LOOP
#endif

#define KERAS_LR 0.001f
#define KERAS_BETA_1 0.9f
#define KERAS_BETA_2 0.999f
#define KERAS_EPSILON 1e-7f  /* keras/src/optimizers/adam.py */
#define TORCH_EPSILON 1e-8f  /* torch.optim.Adam */

enum { LR, BETA_1, BETA_2, EPSILON, FORM, N_HPARAMS };

NB_HOT_LOOP static void adam_step(nb_optimizer *o, float *restrict w, const float *restrict g, size_t begin, size_t end)
{
    const double t = (double)o->iterations + 1.0;
    const float lr = o->hparams[LR], b1 = o->hparams[BETA_1], b2 = o->hparams[BETA_2], eps = o->hparams[EPSILON];
    const double bc1 = 1.0 - pow((double)b1, t), bc2 = 1.0 - pow((double)b2, t);
    float *restrict m = o->slots, *restrict v = o->slots + o->n;
    const float one_b1 = 1.0f - b1, one_b2 = 1.0f - b2;
    if (o->hparams[FORM] == 0.0f) {
        /* Keras: α = lr·√(1−β2ᵗ)/(1−β1ᵗ); θ −= α·m/(√v + ε) */
        const float alpha = (float)((double)lr * sqrt(bc2) / bc1);
        for (size_t i = begin; i < end; i++) {
            float gi = g[i];
            float mi = m[i] + (gi - m[i]) * one_b1;
            float vi = v[i] + (gi * gi - v[i]) * one_b2;
            m[i] = mi;
            v[i] = vi;
            w[i] -= alpha * mi / (sqrtf(vi) + eps);
        }
    } else {
        /* PyTorch: m.lerp_(g, 1−β1); v = β2·v + (1−β2)·g²;
         * θ −= (lr/(1−β1ᵗ)) · m / (√v/√(1−β2ᵗ) + ε) */
        const float step = (float)((double)lr / bc1), inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
        for (size_t i = begin; i < end; i++) {
            float gi = g[i];
            float mi = m[i] + (gi - m[i]) * one_b1;
            float vi = v[i] * b2 + one_b2 * gi * gi;
            m[i] = mi;
            v[i] = vi;
            w[i] -= step * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
        }
    }
}

static nb_optimizer *adam_create(const float *hp)
{
    return nb_adam_ex(&(nb_adam_opts){.learning_rate = hp[LR], .beta_1 = hp[BETA_1], .beta_2 = hp[BETA_2],
                                      .epsilon = hp[EPSILON], .pytorch = hp[FORM] != 0.0f});
}

const nb_optimizer_def nb_adam_def = {"adam", N_HPARAMS, adam_step, adam_create};

nb_optimizer *nb_adam_ex(const nb_adam_opts *opts)
{
    nb_adam_opts o = opts ? *opts : (nb_adam_opts){0};
    float lr = o.learning_rate != 0.0f ? o.learning_rate : KERAS_LR;
    float b1 = o.beta_1 != 0.0f ? o.beta_1 : KERAS_BETA_1;
    float b2 = o.beta_2 != 0.0f ? o.beta_2 : KERAS_BETA_2;
    float eps = o.epsilon != 0.0f ? o.epsilon : o.pytorch ? TORCH_EPSILON : KERAS_EPSILON;
    if (!(lr > 0.0f) || !isfinite(lr)) {
        nb_fail(NB_ERR_ARG, "nb_adam: learning rate must be > 0, got %g", (double)lr);
        return NULL;
    }
    if (!(b1 >= 0.0f && b1 < 1.0f) || !(b2 >= 0.0f && b2 < 1.0f)) {
        nb_fail(NB_ERR_ARG, "nb_adam: beta_1 and beta_2 must be in [0, 1), got %g and %g", (double)b1, (double)b2);
        return NULL;
    }
    if (!(eps >= 0.0f) || !isfinite(eps)) {
        nb_fail(NB_ERR_ARG, "nb_adam: epsilon must be >= 0, got %g", (double)eps);
        return NULL;
    }
    return nb_optimizer_alloc(&nb_adam_def, (float[N_HPARAMS]){lr, b1, b2, eps, o.pytorch ? 1.0f : 0.0f}, 2);
}

nb_optimizer *nb_adam(float lr)
{
    if (!(lr > 0.0f)) {
        nb_fail(NB_ERR_ARG, "nb_adam: learning rate must be > 0, got %g", (double)lr);
        return NULL;
    }
    return nb_adam_ex(&(nb_adam_opts){.learning_rate = lr});
}
