/* optim.c — the generic optimizer interface: state allocation, stepping, the
 * list of kinds that saved models can name. */
#include <math.h>
#include <string.h>

#include <nabla/nb_optim.h>
#include <nabla/nb_parallel.h>

/* Every kind nb_optimizer_create can rebuild (defined in their own files). */
extern const nb_optimizer_def nb_adam_def;
extern const nb_optimizer_def nb_sgd_def;
static const nb_optimizer_def *const kinds[] = {&nb_adam_def, &nb_sgd_def};

nb_optimizer *nb_optimizer_alloc(const nb_optimizer_def *def, const float *hparams, int n_slots)
{
    if (!def || def->n_hparams < 1 || def->n_hparams > NB_OPTIM_MAX_HPARAMS || n_slots < 0 ||
        n_slots > NB_OPTIM_MAX_SLOTS) {
        nb_fail(NB_ERR_ARG, "nb_optimizer_alloc: bad optimizer definition");
        return NULL;
    }
    nb_optimizer *o = nb_calloc(1, sizeof *o);
    if (!o) {
        nb_fail(NB_ERR_NOMEM, "%s: out of memory", def->name);
        return NULL;
    }
    o->def = def;
    memcpy(o->hparams, hparams, (size_t)def->n_hparams * sizeof *hparams);
    o->n_slots = n_slots;
    return o;
}

nb_status nb_optimizer_init(nb_optimizer *o, size_t n)
{
    if (!o) return nb_fail(NB_ERR_ARG, "nb_optimizer_init: optimizer is NULL");
    if (n == 0) return nb_fail(NB_ERR_ARG, "nb_optimizer_init: %s needs n >= 1 parameters", o->def->name);
    if (o->n == n) return NB_OK;
    if (o->n != 0)
        return nb_fail(NB_ERR_STATE, "nb_optimizer_init: %s holds state for %zu parameters, not %zu", o->def->name,
                       o->n, n);
    if (o->n_slots > 0) {
        if (n > (size_t)-1 / sizeof(float) / (size_t)o->n_slots)
            return nb_fail(NB_ERR_NOMEM, "%s: %zu parameters is too many", o->def->name, n);
        o->slots = nb_calloc((size_t)o->n_slots * n, sizeof *o->slots);
        if (!o->slots) return nb_fail(NB_ERR_NOMEM, "%s: out of memory for the state of %zu parameters", o->def->name, n);
    }
    o->n = n;
    o->iterations = 0;
    return NB_OK;
}

/* Updates of fewer parameters than this run on one thread. */
#define STEP_SHARE_MIN 16384

/* Clearing gradients as they are consumed: blocks of this many floats (16 KiB)
 * are updated and then zeroed while still in the L1 cache. */
#define CLEAR_BLOCK 4096

struct step_job {
    nb_optimizer *o;
    float *w;
    const float *g;
    float *clear; /* g again when the gradients are to be zeroed, else NULL */
};

static void step_part(void *ctx, int part, int parts)
{
    struct step_job *j = ctx;
    size_t begin, end;
    nb_split_range(j->o->n, part, parts, 16, &begin, &end); /* 16 floats: one cache line */
    if (!j->clear) {
        if (end > begin) j->o->def->step(j->o, j->w, j->g, begin, end);
        return;
    }
    for (size_t at = begin; at < end; at += CLEAR_BLOCK) {
        size_t stop = end - at < CLEAR_BLOCK ? end : at + CLEAR_BLOCK;
        j->o->def->step(j->o, j->w, j->g, at, stop);
        memset(j->clear + at, 0, (stop - at) * sizeof *j->clear);
    }
}

static nb_status step(nb_optimizer *o, float *w, const float *g, float *clear, size_t n, const char *fn)
{
    if (!o || !w || !g) return nb_fail(NB_ERR_ARG, "%s: optimizer, parameters or gradients NULL", fn);
    if (n == 0) return nb_fail(NB_ERR_ARG, "%s: %s needs n >= 1 parameters", fn, o->def->name);
    if (o->n != n) {
        nb_status s = nb_optimizer_init(o, n);
        if (s != NB_OK) return s;
    }
    struct step_job job = {o, w, g, clear};
    int parts = n >= STEP_SHARE_MIN ? nb_get_num_threads() : 1;
    nb_parallel_for(parts, step_part, &job);
    o->iterations++;
    return NB_OK;
}

nb_status nb_optimizer_step(nb_optimizer *o, float *w, const float *g, size_t n)
{
    return step(o, w, g, NULL, n, "nb_optimizer_step");
}

nb_status nb_optimizer_step_clear(nb_optimizer *o, float *w, float *g, size_t n)
{
    return step(o, w, g, g, n, "nb_optimizer_step_clear");
}

float *nb_optimizer_slot(nb_optimizer *o, int i)
{
    if (!o || !o->slots || i < 0 || i >= o->n_slots) return NULL;
    return o->slots + (size_t)i * o->n;
}

void nb_optimizer_reset(nb_optimizer *o)
{
    if (!o) return;
    if (o->slots) memset(o->slots, 0, (size_t)o->n_slots * o->n * sizeof *o->slots);
    o->iterations = 0;
}

float nb_optimizer_lr(const nb_optimizer *o) { return o ? o->hparams[0] : 0.0f; }

nb_status nb_optimizer_set_lr(nb_optimizer *o, float lr)
{
    if (!o) return nb_fail(NB_ERR_ARG, "nb_optimizer_set_lr: optimizer is NULL");
    if (!(lr > 0.0f) || !isfinite(lr))
        return nb_fail(NB_ERR_ARG, "nb_optimizer_set_lr: learning rate must be > 0, got %g", (double)lr);
    o->hparams[0] = lr;
    return NB_OK;
}

nb_optimizer *nb_optimizer_create(const char *name, const float *hparams, int n)
{
    if (!name || !hparams) {
        nb_fail(NB_ERR_ARG, "nb_optimizer_create: name or hyperparameters NULL");
        return NULL;
    }
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        if (strcmp(kinds[k]->name, name) != 0) continue;
        if (n != kinds[k]->n_hparams) {
            nb_fail(NB_ERR_FORMAT, "optimizer \"%s\" takes %d hyperparameters, got %d", name, kinds[k]->n_hparams, n);
            return NULL;
        }
        return kinds[k]->create(hparams);
    }
    nb_fail(NB_ERR_FORMAT, "unknown optimizer \"%s\"", name);
    return NULL;
}

void nb_optimizer_free(nb_optimizer *o)
{
    if (!o) return;
    nb_free(o->slots);
    nb_free(o);
}
