/* build.c — from a model's layer calls to a graph, and nb_compile.
 *
 * Every graph a model builds creates its weight tensors in the order the
 * weights were drawn (the order of the model's blocks), then its inputs and
 * nodes, and finally binds the weights to the model's own blocks: the graphs
 * hold no copy of any weight. */
#include <stdio.h>
#include <string.h>

#include "nn_internal.h"

void nn_graph_free(nn_graph *ng)
{
    nb_graph_free(ng->g);
    memset(ng, 0, sizeof *ng);
}

/* The weight and state tensors of every built layer, in block order. */
static nb_status make_weights(nb_model *m, nb_graph *g, nb_tensor *(*P)[NN_MAX_PARAMS], nb_tensor *(*S)[NN_MAX_STATES])
{
    for (int k = 0; k < m->n_built; k++) {
        int i = m->built[k];
        const nb_layer *L = m->layers[i];
        for (int j = 0; j < L->n_params; j++)
            if (!(P[i][j] = nb_param(g, L->pshape[j].ndim, L->pshape[j].d))) return nb_graph_status(g);
        for (int j = 0; j < L->n_states; j++)
            if (!(S[i][j] = nb_state(g, L->sshape[j].ndim, L->sshape[j].d))) return nb_graph_status(g);
    }
    return NB_OK;
}

/* The node reading model node i when it is the only one, else -1. */
static int sole_reader(const nb_model *m, int i)
{
    int reader = -1;
    for (int j = i + 1; j < m->n_nodes; j++)
        for (int k = 0; k < m->nodes[j].n_in; k++)
            if (m->nodes[j].in[k] == i) {
                if (reader >= 0) return -1;
                reader = j;
            }
    return reader;
}

/* Whether model node i is a convolution built together with the max pooling that
 * alone reads it (one fused node: its output never exists on its own). */
static bool fused_into_reader(const nb_model *m, int i)
{
    const nn_node *n = &m->nodes[i];
    int j = n->layer >= 0 && n != nn_output_node(m) ? sole_reader(m, i) : -1;
    return j >= 0 && m->nodes[j].layer >= 0 && nn_conv_pool_fuses(m->layers[n->layer], m->layers[m->nodes[j].layer]);
}

/* One node of the model on g: an input at batch 1, or a layer's nodes. */
static nb_tensor *make_node(nb_model *m, nb_graph *g, const nn_node *n, nb_tensor **T, nb_tensor *(*P)[NN_MAX_PARAMS],
                            nb_tensor *(*S)[NN_MAX_STATES])
{
    if (n->layer < 0) {
        int shape[NB_MAX_DIMS] = {1};
        memcpy(shape + 1, n->shape.d, (size_t)n->shape.ndim * sizeof *shape);
        return nb_input(g, n->dtype, n->shape.ndim + 1, shape);
    }
    nb_tensor *x[NN_MAX_CALL_IN];
    for (int i = 0; i < n->n_in; i++) x[i] = T[n->in[i]];
    const nb_layer *L = m->layers[n->layer];
    if (n->n_in == 1 && fused_into_reader(m, n->in[0])) { /* the convolution before this pooling, with it */
        const nn_node *c = &m->nodes[n->in[0]];
        return nn_conv_pool_build(g, m->layers[c->layer], L, T[c->in[0]], P[c->layer]);
    }
    return L->kind->build(g, L, x, n->n_in, P[n->layer], S[n->layer]);
}

static nb_status build_nodes(nb_model *m, nb_graph *g, bool with_grad, nn_graph *ng)
{
    nb_tensor *(*P)[NN_MAX_PARAMS] = nb_calloc((size_t)m->n_layers + 1, sizeof *P);
    nb_tensor *(*S)[NN_MAX_STATES] = nb_calloc((size_t)m->n_layers + 1, sizeof *S);
    nb_tensor **T = nb_calloc((size_t)m->n_nodes, sizeof *T);
    nb_status s = P && S && T ? make_weights(m, g, P, S) : NB_ERR_NOMEM;
    for (int i = 0; s == NB_OK && i < m->n_nodes; i++)
        if (!fused_into_reader(m, i) && !(T[i] = make_node(m, g, &m->nodes[i], T, P, S))) s = nb_graph_status(g);
    if (s == NB_OK && m->n_params) s = nb_graph_bind_params(g, m->w, with_grad ? m->grad : NULL, m->n_params);
    if (s == NB_OK && m->n_state) s = nb_graph_bind_state(g, m->state, m->n_state);
    if (s == NB_OK) {
        for (int i = 0; i < m->n_inputs; i++) ng->x[i] = T[m->inputs[i]];
        ng->out = T[nn_output_node(m) - m->nodes];
    }
    nb_free(P);
    nb_free(S);
    nb_free(T);
    return s;
}

nb_status nn_build_graph(nb_model *m, bool with_grad, nn_graph *ng, const char *fn)
{
    memset(ng, 0, sizeof *ng);
    const nn_node *out = nn_output_node(m);
    if (!out || out->layer < 0) return nb_fail(NB_ERR_STATE, "%s: the model has no layer", fn);
    if (with_grad && !m->grad && m->n_params) {
        m->grad = nb_calloc(m->n_params, sizeof *m->grad);
        if (!m->grad) return nb_fail(NB_ERR_NOMEM, "%s: out of memory for %zu gradients", fn, m->n_params);
    }
    nb_graph *g = nb_graph_new();
    if (!g) return nb_fail(NB_ERR_NOMEM, "%s: out of memory", fn);
    nb_graph_set_grad_enabled(g, with_grad);
    nb_graph_seed(g, m->seed ^ 0x9e3779b97f4a7c15ULL); /* dropout masks follow the model's seed */
    nb_status s = build_nodes(m, g, with_grad, ng);
    if (s != NB_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", nb_graph_error(g) ? nb_graph_error(g) : nb_last_error());
        nb_graph_free(g);
        return nb_fail(s, "%s: building the %s graph failed: %s", fn, with_grad ? "training" : "inference", msg);
    }
    ng->g = g;
    return NB_OK;
}

/* ---- compile ---- */

/* Targets and loss on the training graph. */
static nb_status add_loss(nb_model *m, nn_graph *ng, const nb_compile_opts *o)
{
    nb_graph *g = ng->g;
    int k = (int)nn_output_size(m);
    if (o->loss != NB_MEAN_SQUARED_ERROR && ng->out->ndim != 2) {
        char s[64];
        return nb_fail(NB_ERR_SHAPE, "nb_compile: %s needs an output of shape (batch, classes), the model gives %s",
                       nb_loss_name(o->loss), nb_shape_str(ng->out, s, sizeof s));
    }
    switch (o->loss) {
    case NB_SPARSE_CATEGORICAL_CROSSENTROPY:
        ng->y = nb_input(g, NB_I32, 1, (int[]){1});
        ng->loss = nb_sparse_categorical_crossentropy(g, ng->out, ng->y, o->from_logits);
        break;
    case NB_CATEGORICAL_CROSSENTROPY:
        ng->y = nb_input(g, NB_F32, 2, (int[]){1, k});
        if (ng->y) ng->y->data[0] = 1.0f; /* a valid one-hot row while building */
        ng->loss = nb_categorical_crossentropy(g, ng->out, ng->y, o->from_logits);
        break;
    default:
        ng->y = nb_input(g, NB_F32, ng->out->ndim, ng->out->shape);
        ng->loss = nb_mean_squared_error(g, ng->out, ng->y);
        break;
    }
    if (!ng->loss)
        return nb_fail(nb_graph_status(g), "nb_compile: building the loss failed: %s", nb_graph_error(g));
    nb_set_name(ng->y, "y");
    nb_set_name(ng->loss, "loss");
    return NB_OK;
}

static nb_status check_compile(nb_model *m, const nb_compile_opts *opts, nb_optimizer *opt, const char *prev)
{
    if (!m) return nb_fail(NB_ERR_ARG, "nb_compile: model is NULL");
    if (!opts) return nb_fail(NB_ERR_ARG, "nb_compile: options are NULL");
    if (!opt) return nb_fail(NB_ERR_ARG, "nb_compile: optimizer is NULL (did its constructor fail? last error: \"%s\")", prev);
    if (opts->loss < NB_SPARSE_CATEGORICAL_CROSSENTROPY || opts->loss > NB_MEAN_SQUARED_ERROR)
        return nb_fail(NB_ERR_ARG, "nb_compile: unknown loss %d", (int)opts->loss);
    if (m->n_layers == 0) return nb_fail(NB_ERR_ARG, "nb_compile: the model has no layer; add one with nb_add_dense");
    return NB_OK;
}

nb_status nb_compile(nb_model *m, const nb_compile_opts *opts)
{
    nb_optimizer *opt = opts ? opts->optimizer : NULL;
    char prev[256];
    snprintf(prev, sizeof prev, "%s", nb_last_error());
    nb_status s = check_compile(m, opts, opt, prev);
    nn_graph ng = {0};
    if (s == NB_OK) s = nn_build_graph(m, true, &ng, "nb_compile");
    if (s == NB_OK) s = add_loss(m, &ng, opts);
    if (s == NB_OK) s = nb_optimizer_init(opt, m->n_params);
    if (s != NB_OK) {
        nn_graph_free(&ng);
        if (!m || opt != m->opt) nb_optimizer_free(opt);
        return s;
    }
    nb_set_name(ng.x[0], "x");
    nb_dist_grads_free(m->dist); /* attached to the old graph; fit attaches a new one */
    m->dist = NULL;
    nn_graph_free(&m->train);
    if (m->opt != opt) nb_optimizer_free(m->opt);
    nb_optimizer_reset(opt);
    m->train = ng;
    m->loss = opts->loss;
    m->from_logits = opts->from_logits;
    m->opt = opt;
    return NB_OK;
}

nb_loss nb_model_loss(const nb_model *m) { return m ? m->loss : NB_LOSS_NONE; }
bool nb_model_from_logits(const nb_model *m) { return m && m->from_logits; }
nb_optimizer *nb_model_optimizer(nb_model *m) { return m ? m->opt : NULL; }

nb_graph *nb_model_training_graph(nb_model *m) { return m ? m->train.g : NULL; }
