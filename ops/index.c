/* index.c — gather (the embedding lookup) and one_hot.
 *
 * Key: V rows of the table, R = Π table.shape[1:] floats per row, N indices.
 * gather's forward copies one row per index (memcpy); its backward adds each
 * row of the output's gradient back into the table's gradient row it came
 * from, so an index that appears k times receives the sum of k rows. */
#include <string.h>

#include "ops_private.h"

/* Write the multi-index of flat position i in t's shape as "[1, 2]". */
static void position_str(const nb_tensor *t, size_t i, char *buf, size_t len)
{
    int idx[NB_MAX_DIMS];
    for (int d = t->ndim - 1; d >= 0; d--) {
        idx[d] = (int)(i % (size_t)t->shape[d]);
        i /= (size_t)t->shape[d];
    }
    size_t at = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < t->ndim && at < len; d++) at += (size_t)snprintf(buf + at, len - at, d ? ", %d" : "%d", idx[d]);
    if (at < len) snprintf(buf + at, len - at, "]");
}

/* ---- gather: out (indices.shape, table.shape[1:]) = table[indices] ---- */
static nb_status gather_shape(nb_tensor *t)
{
    const nb_tensor *table = t->src[0], *idx = t->src[1];
    char st[64], si[64];
    if (table->dtype != NB_F32 || idx->dtype != NB_I32)
        return nb_node_fail(t, NB_ERR_ARG, "gather: needs an NB_F32 table and NB_I32 indices, got %s and %s",
                            table->dtype == NB_I32 ? "NB_I32" : "NB_F32", idx->dtype == NB_I32 ? "NB_I32" : "NB_F32");
    if (table->ndim < 1 || idx->ndim + table->ndim - 1 > NB_MAX_DIMS)
        return nb_node_fail(t, NB_ERR_SHAPE, "gather: table %s with indices %s (need a table of at least 1 axis and "
                            "at most %d axes in the result)", nb_shape_str(table, st, sizeof st),
                            nb_shape_str(idx, si, sizeof si), NB_MAX_DIMS);
    t->ndim = idx->ndim + table->ndim - 1;
    memcpy(t->shape, idx->shape, (size_t)idx->ndim * sizeof *t->shape);
    memcpy(t->shape + idx->ndim, table->shape + 1, (size_t)(table->ndim - 1) * sizeof *t->shape);
    return NB_OK;
}
static nb_status gather_forward(nb_tensor *t)
{
    const nb_tensor *table = t->src[0], *idx = t->src[1];
    int V = table->shape[0];
    size_t R = table->size / (size_t)V;
    for (size_t i = 0; i < idx->size; i++) {
        int32_t v = idx->idata[i];
        if (v < 0 || v >= V) {
            char pos[64], st[64];
            position_str(idx, i, pos, sizeof pos);
            return nb_node_fail(t, NB_ERR_ARG, "gather: indices%s = %d is outside the valid range [0, %d) of table %s",
                                pos, (int)v, V, nb_shape_str(table, st, sizeof st));
        }
        memcpy(t->data + i * R, table->data + (size_t)v * R, R * sizeof *t->data);
    }
    return NB_OK;
}
static void gather_backward(nb_tensor *t)
{
    nb_tensor *table = t->src[0];
    const nb_tensor *idx = t->src[1];
    if (!table->grad) return;
    int V = table->shape[0];
    size_t R = table->size / (size_t)V;
    for (size_t i = 0; i < idx->size; i++) {
        int32_t v = idx->idata[i];
        if (v < 0 || v >= V) continue; /* changed since the forward; that forward would have failed */
        float *restrict d = table->grad + (size_t)v * R;
        const float *restrict g = t->grad + i * R;
        for (size_t j = 0; j < R; j++) d[j] += g[j];
    }
}

const nb_op nb_op_gather = {.name = "gather", .n_src = 2, .shape = gather_shape, .forward = gather_forward,
                            .backward = gather_backward};

nb_tensor *nb_gather(nb_graph *g, nb_tensor *table, nb_tensor *indices)
{
    return nb_node(g, &nb_op_gather, (nb_tensor *[]){table, indices}, 2, NULL, 0);
}

/* ---- one_hot: out (indices.shape, depth) = 1 where j == index, else 0 ---- */
typedef struct one_hot_attr {
    int depth;
} one_hot_attr;

static nb_status one_hot_shape(nb_tensor *t)
{
    const nb_tensor *idx = t->src[0];
    char si[64];
    if (idx->dtype != NB_I32) return nb_node_fail(t, NB_ERR_ARG, "one_hot: indices must be an NB_I32 tensor, got a float tensor");
    if (idx->ndim >= NB_MAX_DIMS)
        return nb_node_fail(t, NB_ERR_SHAPE, "one_hot: indices %s leave no room for the depth axis (at most %d axes)",
                            nb_shape_str(idx, si, sizeof si), NB_MAX_DIMS);
    t->ndim = idx->ndim + 1;
    memcpy(t->shape, idx->shape, (size_t)idx->ndim * sizeof *t->shape);
    t->shape[idx->ndim] = NB_ATTR(t, one_hot_attr)->depth;
    return NB_OK;
}
static nb_status one_hot_forward(nb_tensor *t)
{
    const nb_tensor *idx = t->src[0];
    int depth = NB_ATTR(t, one_hot_attr)->depth;
    memset(t->data, 0, t->size * sizeof *t->data);
    for (size_t i = 0; i < idx->size; i++) {
        int32_t v = idx->idata[i];
        if (v >= 0 && v < depth) t->data[i * (size_t)depth + (size_t)v] = 1.0f;
    }
    return NB_OK;
}
/* Integer indices carry no gradient; the node never keeps one (its only source
 * is an NB_I32 tensor), so this is never called with work to do. */
static void one_hot_backward(nb_tensor *t) { (void)t; }
static void one_hot_describe(const nb_tensor *t, char *buf, size_t len)
{
    snprintf(buf, len, "depth=%d", NB_ATTR(t, one_hot_attr)->depth);
}

const nb_op nb_op_one_hot = {.name = "one_hot", .n_src = 1, .shape = one_hot_shape, .forward = one_hot_forward,
                             .backward = one_hot_backward, .describe = one_hot_describe};

nb_tensor *nb_one_hot(nb_graph *g, nb_tensor *indices, int depth)
{
    if (g && depth < 1) return nb_graph_fail(g, NB_ERR_ARG, "one_hot: depth %d (need >= 1)", depth);
    one_hot_attr attr = {.depth = depth};
    return nb_node(g, &nb_op_one_hot, (nb_tensor *[]){indices}, 1, &attr, sizeof attr);
}
