/* sgd.c — stochastic gradient descent with optional (Nesterov) momentum, Keras
 * semantics (keras/src/optimizers/sgd.py):
 *   momentum 0:  w −= lr·g
 *   momentum μ:  v = μ·v − lr·g;  w += v          nesterov: w += μ·v − lr·g
 * hparams: [0] lr, [1] μ, [2] nesterov (0/1). slots: [0] v (velocity) when μ > 0. */
#include <math.h>

#include <nabla/nb_optim.h>

/* NB_HOT_LOOP (meson.build): compiled for AVX-512, AVX2 and the baseline in a portable build */
#ifndef NB_HOT_LOOP
#define NB_HOT_LOOP
#endif

#define KERAS_SGD_LR 0.01f

enum { LR, MOMENTUM, NESTEROV, N_HPARAMS };

NB_HOT_LOOP static void sgd_step(nb_optimizer *o, float *restrict w, const float *restrict g, size_t begin, size_t end)
{
    const float lr = o->hparams[LR], mu = o->hparams[MOMENTUM];
    if (o->n_slots == 0) {
        for (size_t i = begin; i < end; i++) w[i] -= lr * g[i];
        return;
    }
    float *restrict v = o->slots;
    if (o->hparams[NESTEROV] != 0.0f) {
        for (size_t i = begin; i < end; i++) {
            float vi = mu * v[i] - lr * g[i];
            v[i] = vi;
            w[i] += mu * vi - lr * g[i];
        }
    } else {
        for (size_t i = begin; i < end; i++) {
            float vi = mu * v[i] - lr * g[i];
            v[i] = vi;
            w[i] += vi;
        }
    }
}

static nb_optimizer *sgd_create(const float *hp)
{
    return nb_sgd_ex(&(nb_sgd_opts){.learning_rate = hp[LR], .momentum = hp[MOMENTUM], .nesterov = hp[NESTEROV] != 0.0f});
}

const nb_optimizer_def nb_sgd_def = {"sgd", N_HPARAMS, sgd_step, sgd_create};

nb_optimizer *nb_sgd_ex(const nb_sgd_opts *opts)
{
    nb_sgd_opts o = opts ? *opts : (nb_sgd_opts){0};
    float lr = o.learning_rate != 0.0f ? o.learning_rate : KERAS_SGD_LR;
    if (!(lr > 0.0f) || !isfinite(lr)) {
        nb_fail(NB_ERR_ARG, "nb_sgd: learning rate must be > 0, got %g", (double)lr);
        return NULL;
    }
    if (!(o.momentum >= 0.0f && o.momentum < 1.0f)) {
        nb_fail(NB_ERR_ARG, "nb_sgd: momentum must be in [0, 1), got %g", (double)o.momentum);
        return NULL;
    }
    return nb_optimizer_alloc(&nb_sgd_def, (float[N_HPARAMS]){lr, o.momentum, o.nesterov ? 1.0f : 0.0f},
                              o.momentum > 0.0f ? 1 : 0);
}

nb_optimizer *nb_sgd(float lr)
{
    if (!(lr > 0.0f)) {
        nb_fail(NB_ERR_ARG, "nb_sgd: learning rate must be > 0, got %g", (double)lr);
        return NULL;
    }
    return nb_sgd_ex(&(nb_sgd_opts){.learning_rate = lr});
}
