/* nn_internal.h — the model struct and helpers shared by nn/'s files. */
#ifndef NN_INTERNAL_H
#define NN_INTERNAL_H

#include <nabla/nb_nn.h>
#include <nabla/nb_rng.h>

typedef struct nb_layer {
    int in, units;         /* kernel (in, units), bias (units) */
    nb_activation act;
} nb_layer;

/* The model. Its weights live in `w` (canonical outside nb_fit); the training
 * graph holds a copy that fit updates and copies back at its end; the inference
 * graph is built at the first predict and refreshed from `w` when stale. */
struct nb_model {
    int input_width;
    nb_layer *layers;      /* (n_layers) */
    int n_layers, cap_layers;
    float *w;              /* (n_params) layer by layer: kernel (in, units) then bias (units) */
    size_t n_params;
    uint64_t seed;
    nb_rng init_rng;       /* kernels */
    nb_rng shuffle_rng;    /* nb_fit's shuffling */

    /* training graph: x (B, in) -> dense... [-> softmax] -> loss(out, y) */
    nb_graph *tg;
    nb_tensor *tx, *ty, *tout, *tloss;
    nb_loss loss;
    bool from_logits;
    nb_optimizer *opt;

    /* inference graph: x (B, in) -> dense... [-> softmax] */
    nb_graph *ig;
    nb_tensor *ix, *iout;
    bool ig_stale;         /* w changed since ig's weights were copied */

    char **class_names;    /* (n_classes) owned strings */
    int n_classes;
};

/* Build x -> layers [-> softmax] on g with parameters in creation order; returns
 * the output node or NULL (message on g). *x_out receives the input node. */
nb_tensor *nn_build_layers(const nb_model *m, nb_graph *g, nb_tensor **x_out);

/* Copy w into a graph's packed parameters (same order). */
void nn_weights_to_graph(const nb_model *m, nb_graph *g);

/* Index of the largest of k values (the first on ties). */
static inline int nn_argmax(const float *v, int k)
{
    int best = 0;
    for (int j = 1; j < k; j++)
        if (v[j] > v[best]) best = j;
    return best;
}

/* ---- progress bar (progress.c) ---- */
typedef struct nn_progbar {
    FILE *out;
    int mode;              /* 0 silent, 1 bar, 2 one line per epoch */
    bool dynamic;          /* redraw with '\r' */
    int target;            /* steps in the epoch */
    double start, after_first, last_draw;
    int prev_width;        /* characters of the last bar drawn */
} nn_progbar;

/* Metrics shown after the bar; has_acc / has_val select which. */
typedef struct nn_metrics {
    double loss, acc, val_loss, val_acc;
    bool has_acc, has_val;
} nn_metrics;

double nn_now(void);
void nn_progbar_epoch(nn_progbar *p, FILE *out, nb_verbosity v, int epoch, int epochs, int target);
void nn_progbar_update(nn_progbar *p, int current, const nn_metrics *mt);
void nn_progbar_finish(nn_progbar *p, const nn_metrics *mt);

#endif
