/* train.c — fit, evaluate and predict: data checks, batch gathering, metrics.
 *
 * Keras semantics (keras/src/trainers/trainer.py, data_adapters): the validation
 * split takes the last samples before shuffling; training samples are shuffled
 * by index before each epoch; steps = ceil(n_train / batch) with the last partial
 * batch kept; the loss and accuracy shown are batch-size-weighted running means
 * of values computed before each update. Each step: gather the batch straight
 * into the graph's inputs, forward, backward, one optimizer pass over the packed
 * parameters. Nothing is allocated per step once the first has sized the buffers. */
#include <math.h>
#include <string.h>

#include <nabla/nb_debug.h>
#include <nabla/nb_dist.h>

#include "nn_internal.h"

/* ---- data ---- */

static bool is_sparse(const nb_model *m) { return m->loss == NB_SPARSE_CATEGORICAL_CROSSENTROPY; }
static bool has_accuracy(const nb_model *m) { return m->loss != NB_MEAN_SQUARED_ERROR; }

/* Check a dataset for the model: sizes, arrays present, labels in range. */
static nb_status check_data(const nb_model *m, const nb_dataset *d, const char *fn, const char *what, bool need_y)
{
    if (!d) return nb_fail(NB_ERR_ARG, "%s: %s is NULL", fn, what);
    if (d->n < 1) return nb_fail(NB_ERR_ARG, "%s: %s needs n >= 1 samples, got %d", fn, what, d->n);
    if ((d->x != NULL) + (d->x_u8 != NULL) + (d->x_i32 != NULL) != 1)
        return nb_fail(NB_ERR_ARG, "%s: %s needs exactly one of x (floats), x_u8 (bytes) and x_i32 (token ids)", fn, what);
    if (m->n_inputs != 1)
        return nb_fail(NB_ERR_ARG, "%s: the model has %d inputs; datasets feed models of one input", fn, m->n_inputs);
    if ((d->x_i32 != NULL) != (m->nodes[m->inputs[0]].dtype == NB_I32))
        return nb_fail(NB_ERR_ARG, "%s: the model's input takes %s; give %s", fn,
                       d->x_i32 ? "floats" : "int32 token ids", d->x_i32 ? "x or x_u8" : "x_i32");
    if (!need_y) return NB_OK;
    if (is_sparse(m)) {
        if (!d->labels == !d->labels_u8)
            return nb_fail(NB_ERR_ARG, "%s: %s needs class labels (labels or labels_u8) for %s", fn, what, nb_loss_name(m->loss));
        int k = (int)nn_output_size(m);
        for (int i = 0; i < d->n; i++) {
            int32_t c = d->labels ? d->labels[i] : (int32_t)d->labels_u8[i];
            if (c < 0 || c >= k)
                return nb_fail(NB_ERR_LABEL, "%s: %s label %d of sample %d is outside the valid range [0, %d)", fn, what,
                               (int)c, i, k);
        }
    } else if (!d->y) {
        return nb_fail(NB_ERR_ARG, "%s: %s needs float targets y (n x %d) for %s", fn, what, nb_model_output_width(m),
                       nb_loss_name(m->loss));
    }
    return NB_OK;
}

/* Fill x (and y when given) with `count` samples: sample i is idx[start + i], or
 * start + i when idx is NULL. */
static nb_status gather(const nb_model *m, const nb_dataset *d, const int32_t *idx, int start, int count, nb_tensor *x,
                        nb_tensor *y)
{
    nb_status s = nb_input_set_batch(x, count);
    if (s == NB_OK && y) s = nb_input_set_batch(y, count);
    if (s != NB_OK) return s;
    const size_t in = nn_input_size(m, 0), k = y && y->dtype == NB_F32 ? y->size / (size_t)count : 0;
    const float scale = d->x_scale != 0.0f ? d->x_scale : 1.0f;
    for (int i = 0; i < count; i++) {
        size_t r = idx ? (size_t)idx[start + i] : (size_t)(start + i);
        if (d->x) {
            memcpy(x->data + (size_t)i * in, d->x + r * in, in * sizeof *x->data);
        } else if (d->x_i32) {
            memcpy(x->idata + (size_t)i * in, d->x_i32 + r * in, in * sizeof *x->idata);
        } else {
            const uint8_t *src = d->x_u8 + r * in;
            float *dst = x->data + (size_t)i * in;
            for (size_t j = 0; j < in; j++) dst[j] = (float)src[j] * scale;
        }
        if (!y) continue;
        if (y->dtype == NB_I32) y->idata[i] = d->labels ? d->labels[r] : (int32_t)d->labels_u8[r];
        else memcpy(y->data + (size_t)i * k, d->y + r * k, k * sizeof *y->data);
    }
    return NB_OK;
}

/* Correct predictions in the current batch of the training graph. */
static int count_correct(const nb_model *m)
{
    const nb_tensor *out = m->train.out, *y = m->train.y;
    int b = out->shape[0], k = nb_cols(out), correct = 0;
    for (int i = 0; i < b; i++) {
        int p = nb_index_of_max(out->data + (size_t)i * k, k);
        int t = y->dtype == NB_I32 ? y->idata[i] : nb_index_of_max(y->data + (size_t)i * k, k);
        correct += p == t;
    }
    return correct;
}

/* Forward one batch; adds batch * loss and the correct count to the sums. */
static nb_status run_batch(nb_model *m, double *loss_sum, double *correct)
{
    nb_status s = nb_forward(m->train.g);
    if (s != NB_OK) return s;
    int b = m->train.x[0]->shape[0];
    *loss_sum += (double)m->train.loss->data[0] * b;
    if (has_accuracy(m)) *correct += count_correct(m);
    return NB_OK;
}

/* This rank's rows [*lo, *lo + *count) of b rows split over the ranks (all of
 * them in one process). */
static void rank_rows(int b, int *lo, int *count)
{
    long p = nb_dist_size() > 0 ? nb_dist_size() : 1, r = nb_dist_rank();
    *lo = (int)((long)b * r / p);
    *count = (int)((long)b * (r + 1) / p) - *lo;
}

/* Mean loss / accuracy over samples [0, n) of d, in batches of `batch`, in
 * inference mode (dropout off, batch norm on its moving statistics). Under MPI
 * each rank takes its share of the samples and the sums are reduced, so every
 * rank returns the figures of the whole set. */
static nb_status evaluate(nb_model *m, const nb_dataset *d, int batch, double *loss, double *acc)
{
    double sums[2] = {0, 0}; /* loss * samples, correct */
    int lo, count;
    rank_rows(d->n, &lo, &count);
    nb_status s = NB_OK;
    nb_graph_set_training(m->train.g, false);
    for (int at = lo; at < lo + count && s == NB_OK; at += batch) {
        int b = lo + count - at < batch ? lo + count - at : batch;
        s = gather(m, d, NULL, at, b, m->train.x[0], m->train.y);
        if (s == NB_OK) s = run_batch(m, &sums[0], &sums[1]);
    }
    if (nb_dist_size() > 1) {
        s = nb_dist_agree(s, NULL);
        if (s == NB_OK) s = nb_dist_sum(sums, 2);
    }
    if (s != NB_OK) return s;
    *loss = sums[0] / d->n;
    *acc = has_accuracy(m) ? sums[1] / d->n : NAN;
    return NB_OK;
}

static nb_dataset make_data(const nb_model *m, const float *x, const void *y, int n)
{
    nb_dataset d = {.n = n, .x = x};
    if (m && is_sparse(m)) d.labels = y;
    else d.y = y;
    return d;
}

/* ---- history ---- */

void nb_history_free(nb_history *h)
{
    if (!h) return;
    nb_free(h->loss);
    nb_free(h->accuracy);
    nb_free(h->val_loss);
    nb_free(h->val_accuracy);
    memset(h, 0, sizeof *h);
}

static nb_status history_alloc(nb_history *h, int epochs, bool val)
{
    memset(h, 0, sizeof *h);
    h->loss = nb_calloc((size_t)epochs, sizeof *h->loss);
    h->accuracy = nb_calloc((size_t)epochs, sizeof *h->accuracy);
    if (val) {
        h->val_loss = nb_calloc((size_t)epochs, sizeof *h->val_loss);
        h->val_accuracy = nb_calloc((size_t)epochs, sizeof *h->val_accuracy);
    }
    if (!h->loss || !h->accuracy || (val && (!h->val_loss || !h->val_accuracy))) {
        nb_history_free(h);
        return nb_fail(NB_ERR_NOMEM, "nb_fit: out of memory for the history");
    }
    return NB_OK;
}

/* ---- fit ---- */

/* The options with defaults filled in, checked. */
static nb_status fit_options(const nb_fit_opts *opts, nb_fit_opts *o)
{
    *o = opts ? *opts : (nb_fit_opts){0};
    if (!o->epochs) o->epochs = 1;
    if (!o->batch_size) o->batch_size = 32;
    if (o->epochs < 1) return nb_fail(NB_ERR_ARG, "nb_fit: epochs must be >= 1, got %d", o->epochs);
    if (o->batch_size < 1) return nb_fail(NB_ERR_ARG, "nb_fit: batch_size must be >= 1, got %d", o->batch_size);
    if (!(o->validation_split >= 0.0f && o->validation_split < 1.0f))
        return nb_fail(NB_ERR_ARG, "nb_fit: validation_split must be in [0, 1), got %g", (double)o->validation_split);
    if ((unsigned)o->verbose > NB_VERBOSE_EPOCH) return nb_fail(NB_ERR_ARG, "nb_fit: unknown verbose value %d", (int)o->verbose);
    return NB_OK;
}

/* Training and validation sets: explicit validation data, or Keras's split of
 * the last samples (split_at = ceil(n * (1 - validation_split))). */
static nb_status fit_split(const nb_model *m, const nb_dataset *data, const nb_fit_opts *o, nb_dataset *train,
                           nb_dataset *val, bool *has_val)
{
    *train = *data;
    *has_val = false;
    if (o->validation_data) {
        nb_status s = check_data(m, o->validation_data, "nb_fit", "validation_data", true);
        if (s != NB_OK) return s;
        *val = *o->validation_data;
        *has_val = true;
    } else if (o->validation_split > 0.0f) {
        int split_at = (int)ceil((double)data->n * (1.0 - (double)o->validation_split));
        if (split_at < 1 || split_at >= data->n)
            return nb_fail(NB_ERR_ARG, "nb_fit: validation_split %g of %d samples leaves %d for training and %d for validation",
                           (double)o->validation_split, data->n, split_at, data->n - split_at);
        size_t in = nn_input_size(m, 0), k = nn_output_size(m);
        train->n = split_at;
        *val = *data;
        val->n = data->n - split_at;
        if (val->x) val->x += (size_t)split_at * in;
        if (val->x_u8) val->x_u8 += (size_t)split_at * in;
        if (val->x_i32) val->x_i32 += (size_t)split_at * in;
        if (val->labels) val->labels += split_at;
        if (val->labels_u8) val->labels_u8 += split_at;
        if (val->y) val->y += (size_t)split_at * k;
        *has_val = true;
    }
    return NB_OK;
}

/* One training step on samples idx[start, start + b): forward in training mode,
 * backward, one optimizer pass over the model's blocks (which also zeroes the
 * gradients for the next step). Under MPI this rank takes its share of the b
 * rows, the gradients are averaged over the ranks (in buckets that start while
 * backward runs) and every rank learns of any rank's failure. */
static nb_status fit_step(nb_model *m, const nb_dataset *train, const int32_t *idx, int start, int b, double *loss_sum,
                          double *correct, int epoch, int step)
{
    int lo, count;
    rank_rows(b, &lo, &count);
    if (m->dist) nb_dist_grads_set_share(m->dist, (size_t)count, (size_t)b);
    nb_graph_set_training(m->train.g, true);
    nb_status s = count ? gather(m, train, idx, start + lo, count, m->train.x[0], m->train.y) : NB_OK;
    if (s == NB_OK && count) s = run_batch(m, loss_sum, correct);
    if (s == NB_OK && count && !isfinite(m->train.loss->data[0]))
        s = nb_fail(NB_ERR_NUMERIC, "nb_fit: the loss became %g at epoch %d, step %d", (double)m->train.loss->data[0],
                    epoch + 1, step + 1);
    if (s == NB_OK && count) s = nb_backward(m->train.g, m->train.loss);
    if (m->dist) {
        nb_status c = nb_dist_grads_finish(m->dist); /* collective: every rank, every step */
        s = nb_dist_agree(s != NB_OK ? s : c, NULL);
    }
    if (s == NB_OK) s = nb_optimizer_step_clear(m->opt, m->w, m->grad, m->n_params);
    if (s != NB_OK && m->n_params) memset(m->grad, 0, m->n_params * sizeof *m->grad); /* keep "zero between steps" */
    return s;
}

/* The running means over every rank: loss and correct sums, samples seen. */
static void running_means(const nb_model *m, double loss_sum, double correct, int seen, nn_metrics *mt)
{
    double v[2] = {loss_sum, correct};
    if (m->dist) nb_dist_sum(v, 2);
    mt->loss = v[0] / seen;
    mt->acc = mt->has_acc ? v[1] / seen : NAN;
}

/* One epoch: shuffle, every step, progress, the metrics into mt. */
static nb_status fit_epoch(nb_model *m, const nb_dataset *train, int32_t *idx, nb_rng *shuffle, const nb_fit_opts *o,
                           int e, nn_progbar *bar, nn_metrics *mt)
{
    const int n = train->n, batch = o->batch_size, steps = (n + batch - 1) / batch;
    if (!o->no_shuffle) nb_rng_shuffle(shuffle, idx, n);
    nn_progbar_epoch(bar, o->out, o->verbose, e, o->epochs, steps);
    double loss_sum = 0, correct = 0;
    *mt = (nn_metrics){.has_acc = has_accuracy(m)};
    for (int step = 0; step < steps; step++) {
        int start = step * batch, b = n - start < batch ? n - start : batch;
        nb_status s = fit_step(m, train, idx, start, b, &loss_sum, &correct, e, step);
        if (s != NB_OK) return s;
        running_means(m, loss_sum, correct, start + b, mt);
        nn_progbar_update(bar, step + 1, mt);
        if (o->on_step) o->on_step(o->ctx, e, step, steps, mt->loss, mt->acc);
    }
    return NB_OK;
}

/* Under MPI (more than one rank): every rank checks that it holds the same
 * model and data sizes, starts from rank 0's weights and states, draws its own
 * dropout masks, and averages gradients through buckets attached to its
 * training graph; only rank 0 reports progress. */
static nb_status dist_begin(nb_model *m, nb_fit_opts *o, const nb_dataset *train)
{
    if (nb_dist_size() <= 1) return NB_OK;
    uint64_t sizes[4] = {m->n_params, m->n_state, (uint64_t)train->n, (uint64_t)o->batch_size};
    nb_status s = nb_dist_check_same(sizes, sizeof sizes, "model size, training set size or batch size");
    if (s == NB_OK && m->n_params) s = nb_dist_broadcast(m->w, m->n_params);
    if (s == NB_OK && m->n_state) s = nb_dist_broadcast(m->state, m->n_state);
    if (s == NB_OK && !m->dist && m->n_params) {
        m->dist = nb_dist_grads_new(m->grad, m->n_params, 0);
        s = m->dist ? nb_dist_grads_attach(m->dist, m->train.g) : nb_last_status();
    }
    s = nb_dist_agree(s, NULL);
    if (s != NB_OK) return s;
    if (m->dist) nb_dist_grads_set_overlap(m->dist, !o->no_overlap);
    nb_graph_seed(m->train.g, (m->seed ^ 0x9e3779b97f4a7c15ULL) + (uint64_t)nb_dist_rank());
    if (nb_dist_rank() != 0) o->verbose = NB_VERBOSE_SILENT;
    return NB_OK;
}

static nb_status fit_loop(nb_model *m, const nb_dataset *train, const nb_dataset *val, bool has_val,
                          const nb_fit_opts *o, int32_t *idx, nb_history *h)
{
    nb_rng shuffle = m->shuffle_rng;
    if (o->seed) nb_rng_seed(&shuffle, o->seed);
    nn_progbar bar = {0};
    nb_status s = NB_OK;
    for (int e = 0; e < o->epochs && s == NB_OK; e++) {
        nn_metrics mt;
        s = fit_epoch(m, train, idx, &shuffle, o, e, &bar, &mt);
        if (s == NB_OK && has_val) s = evaluate(m, val, o->batch_size, &mt.val_loss, &mt.val_acc);
        if (s != NB_OK) break;
        h->loss[e] = (float)mt.loss;
        h->accuracy[e] = (float)mt.acc;
        if (has_val) {
            mt.has_val = true;
            h->val_loss[e] = (float)mt.val_loss;
            h->val_accuracy[e] = (float)mt.val_acc;
        }
        h->epochs = e + 1;
        nn_progbar_finish(&bar, &mt);
    }
    if (bar.mode == 1 && s != NB_OK && bar.prev_width) fputc('\n', bar.out);
    if (!o->seed) m->shuffle_rng = shuffle;
    nb_graph_set_training(m->train.g, false);
    if (nb_dist_size() > 1 && m->n_state) nb_dist_broadcast(m->state, m->n_state); /* rank 0's moving statistics */
    return s;
}

nb_status nb_fit_data(nb_model *m, const nb_dataset *data, const nb_fit_opts *opts, nb_history *history)
{
    if (history) memset(history, 0, sizeof *history);
    if (!m) return nb_fail(NB_ERR_ARG, "nb_fit: model is NULL");
    if (!nn_compiled(m)) return nb_fail(NB_ERR_STATE, "nb_fit: the model is not compiled; call nb_compile first");
    nb_fit_opts o;
    nb_dataset train, val = {0};
    bool has_val = false;
    nb_status s = fit_options(opts, &o);
    if (s == NB_OK) s = check_data(m, data, "nb_fit", "the training data", true);
    if (s == NB_OK) s = fit_split(m, data, &o, &train, &val, &has_val);
    if (nb_dist_size() > 1) s = nb_dist_agree(s, NULL); /* a bad argument on any rank stops every rank */
    if (s == NB_OK) s = dist_begin(m, &o, &train);
    if (s != NB_OK) return s;
    nb_history h;
    if ((s = history_alloc(&h, o.epochs, has_val)) != NB_OK) return s;
    h.steps_per_epoch = (train.n + o.batch_size - 1) / o.batch_size;
    h.train_samples = train.n;
    h.val_samples = has_val ? val.n : 0;
    int32_t *idx = nb_malloc((size_t)train.n * sizeof *idx);
    if (!idx) s = nb_fail(NB_ERR_NOMEM, "nb_fit: out of memory for %d sample indices", train.n);
    for (int i = 0; idx && i < train.n; i++) idx[i] = i;
    if (s == NB_OK) s = fit_loop(m, &train, &val, has_val, &o, idx, &h);
    nb_free(idx);
    if (history) *history = h;
    else nb_history_free(&h);
    return s;
}

nb_status nb_fit(nb_model *m, const float *x, const void *y, int n, const nb_fit_opts *opts, nb_history *history)
{
    nb_dataset d = make_data(m, x, y, n);
    return nb_fit_data(m, &d, opts, history);
}

/* ---- one step ---- */

nb_status nb_train_on_batch(nb_model *m, const nb_dataset *batch, float *loss, float *accuracy)
{
    if (!m) return nb_fail(NB_ERR_ARG, "nb_train_on_batch: model is NULL");
    if (!nn_compiled(m)) return nb_fail(NB_ERR_STATE, "nb_train_on_batch: the model is not compiled; call nb_compile first");
    nb_status s = check_data(m, batch, "nb_train_on_batch", "the batch", true);
    if (nb_dist_size() > 1) s = nb_dist_agree(s, NULL);
    if (s == NB_OK && nb_dist_size() > 1 && !m->dist) {
        nb_fit_opts o = {.batch_size = batch->n, .verbose = NB_VERBOSE_SILENT};
        s = dist_begin(m, &o, batch);
    }
    double loss_sum = 0, correct = 0;
    if (s == NB_OK) s = fit_step(m, batch, NULL, 0, batch->n, &loss_sum, &correct, 0, 0);
    nb_graph_set_training(m->train.g, false);
    if (s != NB_OK) return s;
    nn_metrics mt = {.has_acc = has_accuracy(m)};
    running_means(m, loss_sum, correct, batch->n, &mt);
    if (loss) *loss = (float)mt.loss;
    if (accuracy) *accuracy = (float)mt.acc;
    return NB_OK;
}

/* ---- evaluate ---- */

nb_status nb_evaluate_data(nb_model *m, const nb_dataset *data, float *loss, float *accuracy)
{
    if (!m) return nb_fail(NB_ERR_ARG, "nb_evaluate: model is NULL");
    if (!nn_compiled(m)) return nb_fail(NB_ERR_STATE, "nb_evaluate: the model is not compiled; call nb_compile first");
    nb_status s = check_data(m, data, "nb_evaluate", "the data", true);
    if (nb_dist_size() > 1) s = nb_dist_agree(s, NULL);
    if (s != NB_OK) return s;
    double l, a;
    s = evaluate(m, data, 32, &l, &a);
    if (s != NB_OK) return s;
    if (loss) *loss = (float)l;
    if (accuracy) *accuracy = (float)a;
    return NB_OK;
}

nb_status nb_evaluate(nb_model *m, const float *x, const void *y, int n, float *loss, float *accuracy)
{
    nb_dataset d = make_data(m, x, y, n);
    return nb_evaluate_data(m, &d, loss, accuracy);
}

/* ---- predict ---- */

/* Samples per forward pass: up to 1024, so the GEMMs run near their peak and
 * each layer's weights are packed once per 1024 samples, but no more than keeps
 * the inference graph's activations near 64 MiB (a convnet's feature maps take
 * far more per sample than an MLP's). */
#define PREDICT_BATCH 1024
#define PREDICT_FLOATS ((size_t)16 << 20)

static int predict_batch(const nb_graph *g)
{
    size_t per_sample = 0; /* the graph was built at batch 1 */
    for (int i = 0; i < nb_graph_size(g); i++) {
        const nb_tensor *t = nb_graph_node(g, i);
        if (!(t->flags & (NB_FLAG_PARAM | NB_FLAG_STATE))) per_sample += t->size + t->scratch_cap;
    }
    size_t b = per_sample ? PREDICT_FLOATS / per_sample : PREDICT_BATCH;
    return b < 1 ? 1 : b > PREDICT_BATCH ? PREDICT_BATCH : (int)b;
}

nb_status nb_predict_data(nb_model *m, const nb_dataset *data, float *out)
{
    if (!m || !out) return nb_fail(NB_ERR_ARG, "nb_predict: model or output NULL");
    if (m->n_layers == 0) return nb_fail(NB_ERR_STATE, "nb_predict: the model has no layer");
    nb_status s = check_data(m, data, "nb_predict", "the data", false);
    if (s != NB_OK) return s;
    if (!m->infer.g) {
        if ((s = nn_build_graph(m, false, &m->infer, "nb_predict")) != NB_OK) return s;
        m->predict_batch = predict_batch(m->infer.g);
    }
    const size_t k = nn_output_size(m), in = nn_input_size(m, 0);
    nb_tensor *x = m->infer.x[0];
    const int chunk = m->predict_batch;
    for (int at = 0; at < data->n && s == NB_OK; at += chunk) {
        int b = data->n - at < chunk ? data->n - at : chunk;
        /* float rows are read where they are; bytes and ids are gathered */
        s = data->x ? nb_input_borrow(x, data->x + (size_t)at * in, b) : gather(m, data, NULL, at, b, x, NULL);
        if (s == NB_OK) s = nb_forward(m->infer.g);
        if (s == NB_OK) memcpy(out + (size_t)at * k, m->infer.out->data, (size_t)b * k * sizeof *out);
    }
    nb_input_release(x); /* never keep a pointer into the caller's array */
    return s;
}

nb_status nb_predict(nb_model *m, const float *x, int n, float *out)
{
    nb_dataset d = {.n = n, .x = x};
    return nb_predict_data(m, &d, out);
}

/* ---- gradient check ---- */

nb_status nb_model_gradcheck(nb_model *m, const nb_dataset *data, bool training, float h, double *worst)
{
    if (!m || !worst) return nb_fail(NB_ERR_ARG, "nb_model_gradcheck: model or result NULL");
    if (!nn_compiled(m)) return nb_fail(NB_ERR_STATE, "nb_model_gradcheck: the model is not compiled");
    nb_status s = check_data(m, data, "nb_model_gradcheck", "the data", true);
    if (s != NB_OK) return s;
    nb_graph_set_training(m->train.g, training);
    s = gather(m, data, NULL, 0, data->n, m->train.x[0], m->train.y);
    if (s == NB_OK) s = nb_gradcheck(m->train.g, m->train.loss, NULL, 0, h, worst);
    if (m->n_params) memset(m->grad, 0, m->n_params * sizeof *m->grad); /* zero between steps, as fit expects */
    nb_graph_set_training(m->train.g, false);
    return s;
}
