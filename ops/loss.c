/* loss.c — fused softmax cross-entropies, the Keras crossentropy losses and MSE.
 *
 * Key: B rows (examples), K classes. logits / probabilities are (B, K) floats;
 * sparse labels are an NB_I32 tensor of B values, shape (B) or (B, 1); dense
 * labels are (B, K) floats. loss_attr.batch_mean asks for the batch mean (Keras's
 * sum_over_batch_size) instead of per-example losses (B); the 1/B is folded into
 * the backward.
 *
 * Stable form (TensorFlow, core/kernels/sparse_xent_op.h): shifted = z - max(z);
 * loss = log Σ exp(shifted) - shifted[y]; dlogits = softmax(z) - onehot(y).
 * The Keras from-probabilities forms follow keras/src/backend/tensorflow/nn.py. */
#include <math.h>
#include <string.h>

#include "ops_private.h"

/* The losses' one attribute: reduce to the batch mean (Keras's reduction
 * sum_over_batch_size), or keep one loss per example (the tf.nn forms). */
typedef struct loss_attr {
    bool batch_mean;
} loss_attr;

/* Keras's backend epsilon (keras/src/backend/config.py, epsilon() = 1e-7), used by
 * keras/src/backend/tensorflow/nn.py to clip probabilities to [eps, 1 - eps]. */
#define NB_KERAS_EPSILON 1e-7f

/* Check logits-or-probabilities (B, K) floats; returns 0 or fails t. */
static nb_status check_pred(nb_tensor *t, const nb_tensor *z, const char *what)
{
    char sz[64];
    if (z->dtype != NB_F32) return nb_node_fail(t, NB_ERR_ARG, "%s: %s must be a float tensor", t->op->name, what);
    if (z->ndim != 2)
        return nb_node_fail(t, NB_ERR_SHAPE, "%s: %s must be (batch, classes), got %s", t->op->name, what,
                            nb_shape_str(z, sz, sizeof sz));
    return NB_OK;
}

/* Shape rule for sparse labels: z (B, K) floats, labels (B) or (B, 1) int32. */
static nb_status sparse_shape(nb_tensor *t)
{
    const nb_tensor *z = t->src[0], *lab = t->src[1];
    char sz[64], sl[64];
    nb_status s = check_pred(t, z, t->op == &nb_op_sparse_softmax_xent ? "logits" : "y_pred");
    if (s != NB_OK) return s;
    if (lab->dtype != NB_I32)
        return nb_node_fail(t, NB_ERR_ARG, "%s: labels must be an NB_I32 tensor of class indices, got a float tensor",
                            t->op->name);
    if (!(lab->ndim == 1 || (lab->ndim == 2 && lab->shape[1] == 1)) || lab->shape[0] != z->shape[0])
        return nb_node_fail(t, NB_ERR_SHAPE, "%s: labels %s do not match %s (need (%d,) or (%d, 1))", t->op->name,
                            nb_shape_str(lab, sl, sizeof sl), nb_shape_str(z, sz, sizeof sz), z->shape[0], z->shape[0]);
    t->ndim = NB_ATTR(t, loss_attr)->batch_mean ? 0 : 1;
    t->shape[0] = z->shape[0];
    return NB_OK;
}

/* Shape rule for dense labels: z and labels both (B, K) floats. */
static nb_status dense_labels_shape(nb_tensor *t)
{
    const nb_tensor *z = t->src[0], *lab = t->src[1];
    char sz[64], sl[64];
    nb_status s = check_pred(t, z, t->op == &nb_op_softmax_xent ? "logits" : "y_pred");
    if (s != NB_OK) return s;
    if (lab->dtype != NB_F32) return nb_node_fail(t, NB_ERR_ARG, "%s: labels must be a float tensor", t->op->name);
    if (lab->ndim != 2 || lab->shape[0] != z->shape[0] || lab->shape[1] != z->shape[1])
        return nb_node_fail(t, NB_ERR_SHAPE, "%s: labels %s do not match %s", t->op->name,
                            nb_shape_str(lab, sl, sizeof sl), nb_shape_str(z, sz, sizeof sz));
    t->ndim = NB_ATTR(t, loss_attr)->batch_mean ? 0 : 1;
    t->shape[0] = z->shape[0];
    return NB_OK;
}

/* TF's wording (sparse_xent_op.cc), with the row. */
static nb_status label_error(nb_tensor *t, int row, int label, int k)
{
    return nb_node_fail(t, NB_ERR_LABEL, "%s: row %d: received a label value of %d which is outside the valid range of [0, %d)",
                        t->op->name, row, label, k);
}

/* ---- sparse_softmax_cross_entropy_with_logits: loss_r = lse(z_r) - z_r[y_r] ----
 * scratch (B, K) keeps the softmax for the backward. */
static nb_status sparse_xent_forward(nb_tensor *t)
{
    const nb_tensor *z = t->src[0];
    const int32_t *y = t->src[1]->idata;
    int B = z->shape[0], K = z->shape[1];
    float *p = nb_scratch(t, z->size);
    if (!p) return NB_ERR_NOMEM;
    double total = 0;
    for (int r = 0; r < B; r++) {
        if (y[r] < 0 || y[r] >= K) return label_error(t, r, y[r], K);
        const float *zr = z->data + (size_t)r * K;
        float mx, lse = nb_softmax_row(p + (size_t)r * K, zr, K, &mx);
        float loss = lse - (zr[y[r]] - mx);
        if (NB_ATTR(t, loss_attr)->batch_mean) total += loss;
        else t->data[r] = loss;
    }
    if (NB_ATTR(t, loss_attr)->batch_mean) t->data[0] = (float)(total / B);
    return NB_OK;
}
static void sparse_xent_backward(nb_tensor *t)
{
    nb_tensor *z = t->src[0];
    if (!z->grad) return;
    const int32_t *y = t->src[1]->idata;
    int B = z->shape[0], K = z->shape[1];
    for (int r = 0; r < B; r++) {
        const float *p = t->scratch + (size_t)r * K;
        float *dz = z->grad + (size_t)r * K;
        float dloss = NB_ATTR(t, loss_attr)->batch_mean ? t->grad[0] / (float)B : t->grad[r];
        for (int j = 0; j < K; j++) {
            float indicator = j == y[r] ? 1.0f : 0.0f;
            dz[j] += (p[j] - indicator) * dloss;
        }
    }
}

/* ---- softmax_cross_entropy_with_logits: loss_r = Σ_j y_j (lse - shifted_j) ----
 * Gradient (Σ_j y_j) p - y: TF's p - y when the labels sum to 1, exact otherwise.
 * scratch (B, K) keeps the softmax. Labels get no gradient. */
static nb_status xent_forward(nb_tensor *t)
{
    const nb_tensor *z = t->src[0], *lab = t->src[1];
    int B = z->shape[0], K = z->shape[1];
    float *p = nb_scratch(t, z->size);
    if (!p) return NB_ERR_NOMEM;
    double total = 0;
    for (int r = 0; r < B; r++) {
        const float *zr = z->data + (size_t)r * K, *yr = lab->data + (size_t)r * K;
        float mx, lse = nb_softmax_row(p + (size_t)r * K, zr, K, &mx);
        float loss = 0.0f;
        for (int j = 0; j < K; j++) loss += yr[j] * (lse - (zr[j] - mx));
        if (NB_ATTR(t, loss_attr)->batch_mean) total += loss;
        else t->data[r] = loss;
    }
    if (NB_ATTR(t, loss_attr)->batch_mean) t->data[0] = (float)(total / B);
    return NB_OK;
}
static void xent_backward(nb_tensor *t)
{
    nb_tensor *z = t->src[0];
    if (!z->grad) return;
    const float *lab = t->src[1]->data;
    int B = z->shape[0], K = z->shape[1];
    for (int r = 0; r < B; r++) {
        const float *p = t->scratch + (size_t)r * K, *yr = lab + (size_t)r * K;
        float *dz = z->grad + (size_t)r * K;
        float dloss = NB_ATTR(t, loss_attr)->batch_mean ? t->grad[0] / (float)B : t->grad[r];
        float ysum = 0.0f;
        for (int j = 0; j < K; j++) ysum += yr[j];
        for (int j = 0; j < K; j++) dz[j] += (ysum * p[j] - yr[j]) * dloss;
    }
}

/* ---- Keras sparse categorical crossentropy from probabilities (batch mean) ----
 * keras/src/backend/tensorflow/nn.py, sparse_categorical_crossentropy with
 * from_logits=False: output = log(clip(p, eps, 1 - eps)) fed as logits to the
 * sparse softmax cross-entropy, i.e. with c = clip(p), S = Σ_j c_j:
 *   loss_r = log S - log c_y.
 * The clip passes gradient only where eps <= p <= 1 - eps. */
static inline float clipf(float x) { return x < NB_KERAS_EPSILON ? NB_KERAS_EPSILON : x > 1.0f - NB_KERAS_EPSILON ? 1.0f - NB_KERAS_EPSILON : x; }
static inline int inside(float x) { return x >= NB_KERAS_EPSILON && x <= 1.0f - NB_KERAS_EPSILON; }

static nb_status sparse_probs_forward(nb_tensor *t)
{
    const nb_tensor *p = t->src[0];
    const int32_t *y = t->src[1]->idata;
    int B = p->shape[0], K = p->shape[1];
    double total = 0;
    for (int r = 0; r < B; r++) {
        if (y[r] < 0 || y[r] >= K) return label_error(t, r, y[r], K);
        const float *pr = p->data + (size_t)r * K;
        float S = 0.0f;
        for (int j = 0; j < K; j++) S += clipf(pr[j]);
        total += logf(S) - logf(clipf(pr[y[r]]));
    }
    t->data[0] = (float)(total / B);
    return NB_OK;
}
/* d loss_r / d p_j = [p_j inside] (1/S - [j = y] / c_y) */
static void sparse_probs_backward(nb_tensor *t)
{
    nb_tensor *p = t->src[0];
    if (!p->grad) return;
    const int32_t *y = t->src[1]->idata;
    int B = p->shape[0], K = p->shape[1];
    float dloss = t->grad[0] / (float)B;
    for (int r = 0; r < B; r++) {
        const float *pr = p->data + (size_t)r * K;
        float *dp = p->grad + (size_t)r * K;
        float S = 0.0f;
        for (int j = 0; j < K; j++) S += clipf(pr[j]);
        float invS = 1.0f / S, invcy = 1.0f / clipf(pr[y[r]]);
        for (int j = 0; j < K; j++)
            if (inside(pr[j])) dp[j] += dloss * (invS - (j == y[r] ? invcy : 0.0f));
    }
}

/* ---- Keras categorical crossentropy from probabilities (batch mean) ----
 * keras/src/backend/tensorflow/nn.py, categorical_crossentropy with
 * from_logits=False: q = p / Σ p (renormalise first), c = clip(q, eps, 1 - eps),
 *   loss_r = -Σ_j y_j log c_j.
 * Backward: g_j = -[q_j inside] y_j / c_j, then through q = p / s:
 *   d loss / d p_k = (g_k - Σ_j g_j q_j) / s. Labels get no gradient. */
static nb_status cat_probs_forward(nb_tensor *t)
{
    const nb_tensor *p = t->src[0], *lab = t->src[1];
    int B = p->shape[0], K = p->shape[1];
    double total = 0;
    for (int r = 0; r < B; r++) {
        const float *pr = p->data + (size_t)r * K, *yr = lab->data + (size_t)r * K;
        float s = 0.0f, loss = 0.0f;
        for (int j = 0; j < K; j++) s += pr[j];
        float inv = 1.0f / s;
        for (int j = 0; j < K; j++)
            if (yr[j] != 0.0f) loss -= yr[j] * logf(clipf(pr[j] * inv));
        total += loss;
    }
    t->data[0] = (float)(total / B);
    return NB_OK;
}
static void cat_probs_backward(nb_tensor *t)
{
    nb_tensor *p = t->src[0];
    if (!p->grad) return;
    const float *lab = t->src[1]->data;
    int B = p->shape[0], K = p->shape[1];
    float dloss = t->grad[0] / (float)B;
    for (int r = 0; r < B; r++) {
        const float *pr = p->data + (size_t)r * K, *yr = lab + (size_t)r * K;
        float *dp = p->grad + (size_t)r * K;
        float s = 0.0f, gq = 0.0f; /* gq = Σ_j g_j q_j */
        for (int j = 0; j < K; j++) s += pr[j];
        float inv = 1.0f / s;
        for (int j = 0; j < K; j++)
            if (inside(pr[j] * inv)) gq -= yr[j]; /* g_j q_j = -y_j where c_j = q_j */
        for (int j = 0; j < K; j++) {
            float q = pr[j] * inv, gj = inside(q) ? -yr[j] / q : 0.0f;
            dp[j] += dloss * (gj - gq) * inv;
        }
    }
}

/* ---- mean squared error: mean over all elements of (p - y)², scalar ---- */
static nb_status mse_shape(nb_tensor *t)
{
    const nb_tensor *p = t->src[0], *y = t->src[1];
    char sp[64], sy[64];
    if (p->dtype != NB_F32 || y->dtype != NB_F32)
        return nb_node_fail(t, NB_ERR_ARG, "mean_squared_error: inputs must be float tensors");
    int same = p->ndim == y->ndim;
    for (int d = 0; same && d < p->ndim; d++) same = p->shape[d] == y->shape[d];
    if (!same)
        return nb_node_fail(t, NB_ERR_SHAPE, "mean_squared_error: y_pred %s and y_true %s differ in shape",
                            nb_shape_str(p, sp, sizeof sp), nb_shape_str(y, sy, sizeof sy));
    t->ndim = 0;
    return NB_OK;
}
static nb_status mse_forward(nb_tensor *t)
{
    const float *p = t->src[0]->data, *y = t->src[1]->data;
    size_t n = t->src[0]->size;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)(p[i] - y[i]) * (p[i] - y[i]);
    t->data[0] = (float)(s / (double)n);
    return NB_OK;
}
static void mse_backward(nb_tensor *t)
{
    nb_tensor *pt = t->src[0];
    if (!pt->grad) return;
    const float *p = pt->data, *y = t->src[1]->data;
    size_t n = pt->size;
    float d = 2.0f * t->grad[0] / (float)n;
    for (size_t i = 0; i < n; i++) pt->grad[i] += d * (p[i] - y[i]);
}

const nb_op nb_op_sparse_softmax_xent = {.name = "sparse_softmax_cross_entropy_with_logits", .n_src = 2, .shape = sparse_shape, .forward = sparse_xent_forward, .backward = sparse_xent_backward};
const nb_op nb_op_softmax_xent = {.name = "softmax_cross_entropy_with_logits", .n_src = 2, .shape = dense_labels_shape, .forward = xent_forward, .backward = xent_backward};
const nb_op nb_op_sparse_categorical_xent_probs = {.name = "sparse_categorical_crossentropy", .n_src = 2, .shape = sparse_shape, .forward = sparse_probs_forward, .backward = sparse_probs_backward};
const nb_op nb_op_categorical_xent_probs = {.name = "categorical_crossentropy", .n_src = 2, .shape = dense_labels_shape, .forward = cat_probs_forward, .backward = cat_probs_backward};
const nb_op nb_op_mse = {.name = "mean_squared_error", .n_src = 2, .shape = mse_shape, .forward = mse_forward, .backward = mse_backward};

static const loss_attr per_example = {.batch_mean = false}, batch_mean = {.batch_mean = true};

nb_tensor *nb_sparse_softmax_cross_entropy_with_logits(nb_graph *g, nb_tensor *logits, nb_tensor *labels)
{
    return nb_node(g, &nb_op_sparse_softmax_xent, (nb_tensor *[]){logits, labels}, 2, &per_example, sizeof per_example);
}

nb_tensor *nb_softmax_cross_entropy_with_logits(nb_graph *g, nb_tensor *logits, nb_tensor *labels)
{
    return nb_node(g, &nb_op_softmax_xent, (nb_tensor *[]){logits, labels}, 2, &per_example, sizeof per_example);
}

/* Keras (keras/src/backend/tensorflow/nn.py): when the probabilities come
 * straight out of a softmax, use its logits and skip the clipping. */
static nb_tensor *softmax_logits(nb_tensor *y_pred)
{
    return nb_op_kind_of(y_pred) == NB_OP_SOFTMAX ? y_pred->src[0] : NULL;
}

nb_tensor *nb_sparse_categorical_crossentropy(nb_graph *g, nb_tensor *y_pred, nb_tensor *labels, bool from_logits)
{
    nb_tensor *z = from_logits ? y_pred : softmax_logits(y_pred);
    if (z) return nb_node(g, &nb_op_sparse_softmax_xent, (nb_tensor *[]){z, labels}, 2, &batch_mean, sizeof batch_mean);
    return nb_node(g, &nb_op_sparse_categorical_xent_probs, (nb_tensor *[]){y_pred, labels}, 2, &batch_mean, sizeof batch_mean);
}

nb_tensor *nb_categorical_crossentropy(nb_graph *g, nb_tensor *y_pred, nb_tensor *y_true, bool from_logits)
{
    nb_tensor *z = from_logits ? y_pred : softmax_logits(y_pred);
    if (z) return nb_node(g, &nb_op_softmax_xent, (nb_tensor *[]){z, y_true}, 2, &batch_mean, sizeof batch_mean);
    return nb_node(g, &nb_op_categorical_xent_probs, (nb_tensor *[]){y_pred, y_true}, 2, &batch_mean, sizeof batch_mean);
}

nb_tensor *nb_mean_squared_error(nb_graph *g, nb_tensor *y_pred, nb_tensor *y_true)
{
    return nb_node(g, &nb_op_mse, (nb_tensor *[]){y_pred, y_true}, 2, NULL, 0);
}
