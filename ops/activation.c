/* activation.c — relu, sigmoid, tanh (elementwise; out has a's shape).
 *
 * Each derivative is written in terms of the output y, so the backward reads
 * only t->data: relu' = [y > 0], sigmoid' = y (1 - y), tanh' = 1 - y². */

#include "ops_private.h"

/* ---- relu: y = max(x, 0) ---- */
static nb_status relu_forward(nb_tensor *t)
{
    const float *x = t->src[0]->data;
    for (size_t i = 0; i < t->size; i++) t->data[i] = x[i] > 0.0f ? x[i] : 0.0f;
    return NB_OK;
}
static void relu_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0];
    if (a->grad)
        for (size_t i = 0; i < t->size; i++) a->grad[i] += t->data[i] > 0.0f ? t->grad[i] : 0.0f;
}

/* ---- sigmoid: y = 1 / (1 + e^-x), stable for large |x| (nb_sigmoidf) ---- */
static nb_status sigmoid_forward(nb_tensor *t)
{
    const float *x = t->src[0]->data;
    for (size_t i = 0; i < t->size; i++) t->data[i] = nb_sigmoidf(x[i]);
    return NB_OK;
}
static void sigmoid_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0];
    if (a->grad)
        for (size_t i = 0; i < t->size; i++) a->grad[i] += t->grad[i] * t->data[i] * (1.0f - t->data[i]);
}

/* ---- tanh ---- */
static nb_status tanh_forward(nb_tensor *t)
{
    const float *x = t->src[0]->data;
    for (size_t i = 0; i < t->size; i++) t->data[i] = tanhf(x[i]);
    return NB_OK;
}
static void tanh_backward(nb_tensor *t)
{
    nb_tensor *a = t->src[0];
    if (a->grad)
        for (size_t i = 0; i < t->size; i++) a->grad[i] += t->grad[i] * (1.0f - t->data[i] * t->data[i]);
}

const nb_op nb_op_relu = {.name = "relu", .n_src = 1, .shape = nb_same_shape, .forward = relu_forward, .backward = relu_backward};
const nb_op nb_op_sigmoid = {.name = "sigmoid", .n_src = 1, .shape = nb_same_shape, .forward = sigmoid_forward, .backward = sigmoid_backward};
const nb_op nb_op_tanh = {.name = "tanh", .n_src = 1, .shape = nb_same_shape, .forward = tanh_forward, .backward = tanh_backward};

nb_tensor *nb_relu(nb_graph *g, nb_tensor *a) { return nb_node(g, &nb_op_relu, (nb_tensor *[]){a}, 1, NULL, 0); }
nb_tensor *nb_sigmoid(nb_graph *g, nb_tensor *a) { return nb_node(g, &nb_op_sigmoid, (nb_tensor *[]){a}, 1, NULL, 0); }
nb_tensor *nb_tanh(nb_graph *g, nb_tensor *a) { return nb_node(g, &nb_op_tanh, (nb_tensor *[]){a}, 1, NULL, 0); }

nb_tensor *nb_activate(nb_graph *g, nb_tensor *a, nb_activation act)
{
    if (!g) {
        nb_fail(NB_ERR_ARG, "activate: graph is NULL");
        return NULL;
    }
    switch (act) {
    case NB_LINEAR:
        if (!a && !nb_graph_error(g)) return nb_graph_fail(g, NB_ERR_ARG, "activate: input 0 is NULL");
        return a; /* identity: no node */
    case NB_RELU: return nb_relu(g, a);
    case NB_SIGMOID: return nb_sigmoid(g, a);
    case NB_TANH: return nb_tanh(g, a);
    case NB_SOFTMAX: return nb_softmax(g, a);
    case NB_ACTIVATION_COUNT: break;
    }
    return nb_graph_fail(g, NB_ERR_ARG, "activate: unknown activation %d", (int)act);
}

const char *nb_activation_name(nb_activation a)
{
    switch (a) {
    case NB_LINEAR: return "linear";
    case NB_RELU: return "relu";
    case NB_SIGMOID: return "sigmoid";
    case NB_TANH: return "tanh";
    case NB_SOFTMAX: return "softmax";
    case NB_ACTIVATION_COUNT: break;
    }
    return "?";
}
