/* nb_optim.h — optimizers behind one small interface.
 *
 * An optimizer updates a flat array of n parameters w from their gradients g:
 * nb_optimizer_step(opt, w, g, n). With nb_graph_pack_params every parameter of a
 * graph lives in one buffer, so a training step is a single call:
 *
 *     nb_optimizer *opt = nb_adam(0.001f);
 *     nb_graph_pack_params(g);
 *     ...  nb_zero_grad(g); nb_forward(g); nb_backward(g, loss);
 *     nb_optimizer_step(opt, nb_graph_param_data(g), nb_graph_param_grad(g), nb_graph_param_count(g));
 *     ...
 *     nb_optimizer_free(opt);
 *
 * State (Adam's m and v, SGD's velocity) is allocated once, at nb_optimizer_init
 * or at the first step, and never again: steps allocate nothing. The state is
 * public (slots, iterations, hyperparameters) so a model file can store it and
 * training can resume bit for bit.
 *
 * Writing a new optimizer is one file: fill an nb_optimizer_def (name,
 * hyperparameter count, step, create) and add it to the list in optim.c so that
 * nb_optimizer_create can rebuild it from a saved file. */
#ifndef NB_OPTIM_H
#define NB_OPTIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nabla/nb_base.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NB_OPTIM_MAX_HPARAMS 8 /* hyperparameters an optimizer may keep */
#define NB_OPTIM_MAX_SLOTS 4   /* per-parameter state vectors an optimizer may keep */

typedef struct nb_optimizer nb_optimizer;

/* The definition of one optimizer kind (one static instance per kind). */
typedef struct nb_optimizer_def {
    const char *name; /* "adam", "sgd": stored in model files */
    int n_hparams;    /* hyperparameters in nb_optimizer.hparams (hparams[0] is the learning rate) */
    /* Update elements [begin, end) of w (o->n) from g (o->n) using the state in
     * o->slots (slot s of element i is o->slots[s * o->n + i]); o->iterations is
     * the number of steps taken before this one (the generic code increments it).
     * The generic code splits [0, n) over the threads, so elements must be
     * updated independently of each other. */
    void (*step)(nb_optimizer *o, float *w, const float *g, size_t begin, size_t end);
    /* Build an optimizer of this kind from n_hparams values (as saved); NULL with
     * nb_last_error on a bad value. Used by nb_optimizer_create. */
    nb_optimizer *(*create)(const float *hparams);
} nb_optimizer_def;

/* An optimizer. Read the fields freely; change them only through the functions
 * below (or when restoring saved state). */
struct nb_optimizer {
    const nb_optimizer_def *def;          /* its kind */
    float hparams[NB_OPTIM_MAX_HPARAMS];  /* def->n_hparams values; [0] = learning rate */
    int n_slots;                          /* per-parameter state vectors (Adam 2: m, v) */
    size_t n;                             /* parameters the state is sized for; 0 before init */
    float *slots;                         /* (n_slots, n) state, one allocation; NULL before init */
    uint64_t iterations;                  /* steps taken */
};

/* ---- Adam (optim/adam.c) --------------------------------------------------
 * Keras form (default, keras/src/optimizers/adam.py), with t = iterations + 1:
 *   α = lr·√(1−β2ᵗ)/(1−β1ᵗ);  m += (g−m)(1−β1);  v += (g²−v)(1−β2);  θ −= α·m/(√v + ε)
 * (ε is added to √v before bias correction: "epsilon hat").
 * PyTorch form (torch.optim.Adam): m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ);  θ −= lr·m̂/(√v̂ + ε). */
typedef struct nb_adam_opts {
    float learning_rate; /* 0 means 0.001 */
    float beta_1;        /* 0 means 0.9 */
    float beta_2;        /* 0 means 0.999 */
    float epsilon;       /* 0 means 1e-7 (Keras form) or 1e-8 (PyTorch form) */
    bool pytorch;        /* use PyTorch's update rule instead of Keras's */
} nb_adam_opts;

/* Adam with Keras defaults and learning rate lr (> 0). Returns NULL with
 * nb_last_error (NB_ERR_ARG) for a bad lr, or NB_ERR_NOMEM. Free with
 * nb_optimizer_free unless a model took it over (nb_compile). */
nb_optimizer *nb_adam(float lr);

/* Adam with explicit options (NULL: all defaults). Fails like nb_adam, also for
 * betas outside [0, 1) or a negative epsilon. */
nb_optimizer *nb_adam_ex(const nb_adam_opts *opts);

/* ---- SGD (optim/sgd.c), Keras semantics (keras/src/optimizers/sgd.py) ------
 * momentum 0:  w −= lr·g
 * momentum μ:  v = μ·v − lr·g;  w += v            (nesterov: w += μ·v − lr·g) */
typedef struct nb_sgd_opts {
    float learning_rate; /* 0 means 0.01 (Keras default) */
    float momentum;      /* in [0, 1); 0: plain SGD, no state */
    bool nesterov;
} nb_sgd_opts;

/* SGD with learning rate lr (> 0), no momentum. NULL with nb_last_error on a
 * bad lr or out of memory. */
nb_optimizer *nb_sgd(float lr);

/* SGD with explicit options (NULL: all defaults). */
nb_optimizer *nb_sgd_ex(const nb_sgd_opts *opts);

/* ---- Generic interface (optim/optim.c) ------------------------------------ */

/* Allocate zeroed state for n parameters now (otherwise the first step does).
 * Calling it again with the same n keeps the state; a different n is
 * NB_ERR_STATE. NB_ERR_ARG for NULL or n == 0, NB_ERR_NOMEM when out of memory. */
nb_status nb_optimizer_init(nb_optimizer *o, size_t n);

/* One update of w (n) from g (n). The first call allocates the state (unless
 * nb_optimizer_init did); later calls allocate nothing. NB_ERR_ARG for NULL
 * pointers or n == 0; NB_ERR_STATE when n differs from the state's size. */
nb_status nb_optimizer_step(nb_optimizer *o, float *w, const float *g, size_t n);

/* nb_optimizer_step, then g set to zero, block by block while it is still in
 * the cache: the update and the next step's nb_zero_grad of the parameters in one
 * pass. Fails like nb_optimizer_step (and then leaves g untouched). */
nb_status nb_optimizer_step_clear(nb_optimizer *o, float *w, float *g, size_t n);

/* State vector i (n floats), or NULL before init or for i out of range. */
float *nb_optimizer_slot(nb_optimizer *o, int i);

/* Forget the state (zero the slots and the step count), keeping the allocation. */
void nb_optimizer_reset(nb_optimizer *o);

/* The learning rate (hparams[0]); set it between steps for a schedule.
 * nb_optimizer_set_lr returns NB_ERR_ARG for NULL or lr <= 0. */
float nb_optimizer_lr(const nb_optimizer *o);
nb_status nb_optimizer_set_lr(nb_optimizer *o, float lr);

/* Rebuild an optimizer by kind name ("adam", "sgd") from saved hyperparameters
 * (n of them, must equal the kind's count). The state is empty. NULL with
 * nb_last_error (NB_ERR_FORMAT) for an unknown name or a count mismatch. */
nb_optimizer *nb_optimizer_create(const char *name, const float *hparams, int n);

/* Free the optimizer and its state. NULL is a no-op. */
void nb_optimizer_free(nb_optimizer *o);

/* For optimizer implementations: allocate an optimizer of kind def with the
 * given hyperparameters and slot count. NULL with NB_ERR_NOMEM. */
nb_optimizer *nb_optimizer_alloc(const nb_optimizer_def *def, const float *hparams, int n_slots);

#ifdef __cplusplus
}
#endif
#endif
