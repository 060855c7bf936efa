/* summary.c — nb_model_summary, after tf-keras's print_summary: one row per
 * layer call with Keras's names, output shapes "(None, 26, 26, 32)" and weight
 * counts; functional models also list their inputs and a "Connected to" column. */
#include <stdio.h>
#include <string.h>

#include "nn_internal.h"

static void rule(FILE *out, char c, int width)
{
    for (int i = 0; i < width; i++) fputc(c, out);
    fputc('\n', out);
}

/* 101770 -> "101,770" */
static const char *commas(size_t v, char *buf, size_t len)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%zu", v), at = 0;
    for (int i = 0; i < n && (size_t)at + 2 < len; i++) {
        if (i > 0 && (n - i) % 3 == 0) buf[at++] = ',';
        buf[at++] = tmp[i];
    }
    buf[at] = '\0';
    return buf;
}

static void bytes_str(size_t floats, char *buf, size_t len)
{
    double b = (double)floats * 4.0;
    if (b < 1024) snprintf(buf, len, "%.2f Byte", b);
    else if (b < 1024.0 * 1024) snprintf(buf, len, "%.2f KB", b / 1024);
    else if (b < 1024.0 * 1024 * 1024) snprintf(buf, len, "%.2f MB", b / (1024.0 * 1024));
    else snprintf(buf, len, "%.2f GB", b / (1024.0 * 1024 * 1024));
}

static size_t layer_weights(const nb_layer *L, bool states)
{
    size_t n = 0;
    for (int i = 0; i < (states ? L->n_states : L->n_params); i++)
        n += nn_shape_size(states ? &L->sshape[i] : &L->pshape[i]);
    return n;
}

/* The name of node i as "Connected to" shows it. */
static const char *node_name(const nb_model *m, int i, char *buf, size_t len)
{
    const nn_node *n = &m->nodes[i];
    if (n->layer >= 0) return m->layers[n->layer]->name;
    int k = 0;
    while (m->inputs[k] != i) k++;
    snprintf(buf, len, k ? "input_layer_%d" : "input_layer", k);
    return buf;
}

static void node_row(const nb_model *m, int i, bool functional, size_t *seen, FILE *out)
{
    const nn_node *n = &m->nodes[i];
    char name[96], shape[64], num[32], nb[48];
    const char *kind = n->layer >= 0 ? m->layers[n->layer]->kind->keras : "InputLayer";
    size_t count = 0;
    if (n->layer >= 0 && !seen[n->layer]++) /* a shared layer's weights count once */
        count = layer_weights(m->layers[n->layer], false) + layer_weights(m->layers[n->layer], true);
    snprintf(name, sizeof name, "%s (%s)", node_name(m, i, nb, sizeof nb), kind);
    nn_shape_str(&n->shape, shape, sizeof shape);
    int len = (int)strlen(name); /* a long name keeps one space before the shape */
    fprintf(out, " %s%*s%-26s%-10s", name, len < 28 ? 28 - len : 1, "", shape, commas(count, num, sizeof num));
    for (int j = 0; functional && j < n->n_in; j++)
        fprintf(out, "%s%s", j ? ", " : " ", node_name(m, n->in[j], nb, sizeof nb));
    fputc('\n', out);
}

void nb_model_summary(const nb_model *m, FILE *out)
{
    if (!out) return;
    if (!m) {
        fprintf(out, "(no model)\n");
        return;
    }
    bool functional = !m->sequential;
    int width = functional ? 90 : 65;
    size_t *seen = nb_calloc((size_t)m->n_layers + 1, sizeof *seen);
    if (!seen) return;
    fprintf(out, "Model: \"%s\"\n", functional ? "functional" : "sequential");
    rule(out, '_', width);
    fprintf(out, " %-28s%-26s%-10s%s\n", "Layer (type)", "Output Shape", "Param #", functional ? "Connected to" : "");
    rule(out, '=', width);
    bool first = true;
    for (int i = 0; i < m->n_nodes; i++) {
        if (!functional && m->nodes[i].layer < 0) continue;
        if (!first) fputc('\n', out);
        first = false;
        node_row(m, i, functional, seen, out);
    }
    nb_free(seen);
    rule(out, '=', width);
    size_t trainable = m->n_params, total = m->n_params + m->n_state;
    char num[32], b[32];
    bytes_str(total, b, sizeof b);
    fprintf(out, "Total params: %s (%s)\n", commas(total, num, sizeof num), b);
    bytes_str(trainable, b, sizeof b);
    fprintf(out, "Trainable params: %s (%s)\n", commas(trainable, num, sizeof num), b);
    bytes_str(m->n_state, b, sizeof b);
    fprintf(out, "Non-trainable params: %s (%s)\n", commas(m->n_state, num, sizeof num), b);
    fprintf(out, "Matrix products: BLIS, %s kernels\n", nb_blis_kernels());
    rule(out, '_', width);
}
