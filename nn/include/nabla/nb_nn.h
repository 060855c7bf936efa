/* nb_nn.h — Keras-style models: Sequential stacks and functional graphs of
 * layers, compile / fit / evaluate / predict, summary, save / load.
 *
 *     nb_model *m = nb_sequential(784);                  // input width
 *     nb_add_dense(m, 128, NB_RELU);                     // Glorot-uniform kernel, zero bias
 *     nb_add_dense(m, 10, NB_LINEAR);                    // logits
 *     nb_compile(m, &(nb_compile_opts){.loss = NB_SPARSE_CATEGORICAL_CROSSENTROPY,
 *                                      .from_logits = true, .optimizer = nb_adam(0.001f)});
 *     nb_history h;
 *     nb_fit(m, x, labels, n, &(nb_fit_opts){.epochs = 5, .validation_split = 0.2f}, &h);
 *     nb_history_free(&h);
 *     nb_evaluate(m, x_test, labels_test, n_test, &loss, &accuracy);
 *     nb_predict(m, x, n, out);                          // logits; nb_softmax_rows for probabilities
 *     nb_save(m, "model.nb");
 *     nb_model_free(m);
 *     m = nb_load("model.nb");
 *
 * Data: x is n rows of input_width floats, row-major. Targets depend on the loss:
 *   NB_SPARSE_CATEGORICAL_CROSSENTROPY  y is n int32_t class ids in [0, units of the last layer)
 *   NB_CATEGORICAL_CROSSENTROPY         y is n rows of K floats (one-hot or soft), K = last layer's units
 *   NB_MEAN_SQUARED_ERROR               y is n rows of K floats
 * nb_dataset describes the same with other storage (bytes scaled per batch, byte
 * labels), so a large set never has to exist as floats: nb_fit_data & co.
 * Nothing is copied: the arrays are read as each batch is gathered.
 *
 * Ownership: a model owns its layers, graphs, optimizer (handed over in
 * nb_compile) and class names; nb_model_free releases all. Arrays passed in are
 * borrowed for the call only. Errors: functions return an nb_status (NB_OK is 0)
 * or NULL and leave a message in nb_last_error(); nothing aborts on bad input.
 *
 * Functional models (Keras's functional API): inputs and layer calls on symbolic
 * tensors, so layers can be shared, branches added back (residuals) and any
 * graph built:
 *
 *     nb_model *m = nb_model_new();
 *     nb_sym x = nb_model_input(m, NB_F32, 1, (int[]){64});
 *     nb_layer *d = nb_layer_dense(m, 64, NB_RELU);
 *     nb_sym h = nb_call(d, x);
 *     h = nb_call_n(nb_layer_add(m), 2, (nb_sym[]){x, h});  // residual
 *     nb_model_set_output(m, nb_call(nb_layer_dense(m, 10, NB_LINEAR), h));
 *
 * A Sequential model is the special case of a chain: nb_add_layer calls a layer
 * on the last output.
 *
 * Weights: a model keeps its weights, their gradients and its states (moving
 * statistics) in three blocks of its own, the only copy: the training graph
 * nb_compile builds and the inference graph of nb_predict bind those blocks, so
 * nb_model_get_weights reads what the next step will use, even from fit's step
 * callback. Gradients: nb_backward adds into the gradient block, the
 * optimizer's step zeroes it; between steps it is all zero.
 *
 * Determinism: kernels and shuffling draw from the model's seeded generator
 * (default seed NB_DEFAULT_SEED); the same seed and data give the same weights,
 * bit for bit, on the same build. */
#ifndef NB_NN_H
#define NB_NN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <nabla/nb_base.h>
#include <nabla/nb_ops.h>
#include <nabla/nb_optim.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NB_DEFAULT_SEED 42u
#define NB_MAX_UNITS (1 << 24)   /* largest layer (and input) width accepted */
#define NB_MAX_LAYERS 1024       /* most layers in a model */

typedef struct nb_model nb_model;
typedef struct nb_layer nb_layer; /* owned by its model, freed with it */

/* A symbolic tensor of a model being built: the id of a model input or of a
 * layer call's output. A negative value means the call that made it failed; it
 * can be passed on (calls on it return -1 without a new message) and is reported
 * once by nb_model_set_output. */
typedef int nb_sym;

/* Loss functions (Keras names; reduction: mean over the batch). */
typedef enum nb_loss {
    NB_LOSS_NONE = 0,                   /* not compiled */
    NB_SPARSE_CATEGORICAL_CROSSENTROPY, /* int class ids */
    NB_CATEGORICAL_CROSSENTROPY,        /* one-hot / soft float targets */
    NB_MEAN_SQUARED_ERROR               /* float targets */
} nb_loss;

/* Name of a loss ("sparse_categorical_crossentropy"), "?" when out of range. */
const char *nb_loss_name(nb_loss loss);

/* ---- Building ------------------------------------------------------------ */

/* A new, empty Sequential model taking rows of input_width floats
 * (1..NB_MAX_UNITS). Seeded with NB_DEFAULT_SEED. NULL with nb_last_error
 * (NB_ERR_ARG, NB_ERR_NOMEM). Free with nb_model_free. */
nb_model *nb_sequential(int input_width);

/* A new Sequential model whose samples have the given shape (without the batch
 * axis; 1..NB_MAX_DIMS-1 dimensions), e.g. (28, 28, 1) images. */
nb_model *nb_sequential_shape(int ndim, const int *shape);

/* A new, empty functional model: add inputs with nb_model_input, call layers,
 * then nb_model_set_output. NULL when out of memory. */
nb_model *nb_model_new(void);

/* Free the model and everything it owns (layers, optimizer). NULL is a no-op. */
void nb_model_free(nb_model *m);

/* An input of the model: dtype NB_F32 (features) or NB_I32 (token ids), shape of
 * one sample without the batch axis. At most 4 inputs; fit, evaluate and predict
 * feed models with one. -1 with nb_last_error on bad arguments or after compile. */
nb_sym nb_model_input(nb_model *m, nb_dtype dtype, int ndim, const int *shape);

/* Apply layer L (of model m) to x / to n inputs: the output's symbolic tensor.
 * The first call fixes the layer's input shapes and draws its weights; later
 * calls share those weights and need the same shapes (NB_ERR_SHAPE otherwise).
 * -1 with nb_last_error on a bad call; -1 without a new message when an input is
 * already -1. */
nb_sym nb_call(nb_layer *L, nb_sym x);
nb_sym nb_call_n(nb_layer *L, int n, const nb_sym *xs);

/* Make y the model's output (the last layer call when never set). Reports the
 * first failed call's status when y is -1. */
nb_status nb_model_set_output(nb_model *m, nb_sym y);

/* Sequential: call L on the model's current output and make it the new output.
 * NB_ERR_ARG for a NULL layer (its constructor failed: nb_last_error says why)
 * or a functional model; the call's status otherwise (the layer is dropped). */
nb_status nb_add_layer(nb_model *m, nb_layer *L);

/* ---- Layers ----------------------------------------------------------------
 * Each constructor returns a new layer owned by m (named after its kind:
 * "dense", "dense_1", ...), or NULL with nb_last_error (NB_ERR_ARG for settings
 * out of range, NB_ERR_STATE once m is compiled). Weights are drawn at the
 * layer's first call from the model's generator. */

/* Dense(units, activation) over the last axis: kernel (in, units) Glorot-uniform,
 * bias zero. On inputs of more than one axis it applies to every position. */
nb_layer *nb_layer_dense(nb_model *m, int units, nb_activation activation);
/* Flatten: (B, d1, ..., dn) -> (B, d1 * ... * dn). */
nb_layer *nb_layer_flatten(nb_model *m);
/* Add: the sum of 2..8 inputs of one shape (residual connections). */
nb_layer *nb_layer_add(nb_model *m);

/* Convolutional layers, on images (None, height, width, channels) (NHWC).
 * Conv2D(filters, (kernel_h, kernel_w), strides=stride, padding, activation):
 * kernel (kh, kw, in, filters) Glorot-uniform over the receptive field, bias
 * zero; with relu, the convolution, bias and relu are one graph node, and when
 * a MaxPooling2D alone reads its output, the pooling joins that node too
 * (nb_conv2d_relu_max_pool2d: the same values and gradients, faster, less memory).
 * Pools: window pool x pool, stride 0 meaning the pool size (Keras's default). GlobalAveragePooling2D: (H, W, C) -> (C). BatchNormalization over
 * the channels, momentum 0.99 and epsilon 1e-3 (Keras): batch statistics while
 * training (fit), moving ones in evaluate/predict; its moving mean and variance
 * are the model's states (saved with it, counted as non-trainable). Dropout(rate):
 * inverted dropout while training, identity otherwise; rate in [0, 1). */
nb_layer *nb_layer_conv2d(nb_model *m, int filters, int kernel_h, int kernel_w, int stride, nb_padding padding,
                          nb_activation activation);
nb_layer *nb_layer_max_pool2d(nb_model *m, int pool, int stride, nb_padding padding);
nb_layer *nb_layer_avg_pool2d(nb_model *m, int pool, int stride, nb_padding padding);
nb_layer *nb_layer_global_avg_pool2d(nb_model *m);
nb_layer *nb_layer_batch_norm(nb_model *m);
nb_layer *nb_layer_dropout(nb_model *m, float rate);

/* Sequence layers. Embedding(input_dim, output_dim): int32 ids (T) -> (T,
 * output_dim), a table uniform in [-0.05, 0.05] (Keras); ids outside
 * [0, input_dim) fail the forward pass with NB_ERR_ARG. PositionEmbedding: adds
 * a learned (T, D) table to (T, D) inputs. LayerNormalization over the last axis
 * (epsilon <= 0: Keras's 1e-3). MultiHeadAttention(heads, key_dim, causal):
 * self-attention on (T, D) with Keras's query/key/value/output projections, a
 * causal mask when asked. LastPosition: (T, D) -> (D), the last step. */
nb_layer *nb_layer_embedding(nb_model *m, int input_dim, int output_dim);
nb_layer *nb_layer_position_embedding(nb_model *m);
nb_layer *nb_layer_layer_norm(nb_model *m, float epsilon);
nb_layer *nb_layer_attention(nb_model *m, int heads, int key_dim, bool causal);
nb_layer *nb_layer_last_position(nb_model *m);

/* Append Dense(units, activation): kernel (in, units) drawn Glorot-uniform
 * U[-l, l], l = sqrt(6 / (in + units)), from the model's generator; bias zero.
 * NB_SOFTMAX is built as a linear dense node followed by an nb_softmax node, so a
 * cross-entropy loss can use the logits (as Keras does). NB_ERR_ARG for bad
 * units (1..NB_MAX_UNITS) or activation, NB_ERR_STATE after nb_compile,
 * NB_ERR_NOMEM. On failure the model is unchanged. */
nb_status nb_add_dense(nb_model *m, int units, nb_activation activation);

/* Re-seed the model's generator and re-draw every kernel already added, so the
 * result equals creating the model with this seed. Shuffling in nb_fit then also
 * starts from this seed. NB_ERR_STATE after nb_compile. */
nb_status nb_model_set_seed(nb_model *m, uint64_t seed);

/* Shape queries (0 / NULL for NULL or an index out of range). */
int nb_model_input_width(const nb_model *m);  /* values per sample of the first input */
int nb_model_output_width(const nb_model *m); /* values per sample of the output; the input's when no layer */
int nb_model_layer_count(const nb_model *m);
const char *nb_model_layer_name(const nb_model *m, int i); /* "conv2d_1" */
const char *nb_model_layer_kind(const nb_model *m, int i); /* Keras's class: "Conv2D" */
int nb_model_layer_units(const nb_model *m, int i);        /* a Dense layer's units, else 0 */
nb_activation nb_model_layer_activation(const nb_model *m, int i); /* a Dense layer's, else NB_LINEAR */

/* ---- Weights --------------------------------------------------------------
 * All weights form one array, layer by layer: kernel (in, units) row-major, then
 * bias (units). */

/* Number of weights (trainable parameters), and of state values (non-trainable:
 * batch normalisation's moving statistics). */
size_t nb_model_param_count(const nb_model *m);
size_t nb_model_state_count(const nb_model *m);

/* The weights themselves (nb_model_param_count floats, borrowed: the model's
 * only copy, valid until the model is changed or freed). NULL for NULL. */
const float *nb_model_weights(const nb_model *m);

/* Copy the n = nb_model_param_count weights out / in. NB_ERR_ARG for NULL or a
 * wrong n. Setting weights keeps the optimizer state. */
nb_status nb_model_get_weights(const nb_model *m, float *dst, size_t n);
nb_status nb_model_set_weights(nb_model *m, const float *src, size_t n);

/* ---- Class names (optional, stored by nb_save) ---------------------------- */

/* Copy k names (each < 256 bytes, no NUL inside) into the model, replacing any
 * before; k 0 clears them. NB_ERR_ARG for NULL names or a bad length. */
nb_status nb_model_set_class_names(nb_model *m, const char *const *names, int k);

/* The number of class names, and name i (borrowed; NULL when out of range). */
int nb_model_class_count(const nb_model *m);
const char *nb_model_class_name(const nb_model *m, int i);

/* ---- Compiling ----------------------------------------------------------- */

typedef struct nb_compile_opts {
    nb_loss loss;             /* required */
    bool from_logits;         /* the model outputs logits (cross-entropy losses) */
    nb_optimizer *optimizer;  /* required, e.g. nb_adam(0.001f); taken over by the model, even on failure */
} nb_compile_opts;

/* Build the training graph (input, layers, loss) once, and take over the
 * optimizer. May be called again (new loss or optimizer; weights kept, optimizer
 * state starts fresh). NB_ERR_ARG for NULL opts, an unknown loss, a NULL
 * optimizer (e.g. nb_adam given a bad rate), or a model with no layer; NB_ERR_NOMEM. On failure the model keeps its previous compilation. */
nb_status nb_compile(nb_model *m, const nb_compile_opts *opts);

/* The loss the model was compiled with (NB_LOSS_NONE before), the from_logits
 * flag, and the optimizer (borrowed; NULL before compile). */
nb_loss nb_model_loss(const nb_model *m);
bool nb_model_from_logits(const nb_model *m);
nb_optimizer *nb_model_optimizer(nb_model *m);

/* ---- Data sets ----------------------------------------------------------- */

/* A view of n samples; set one x and, for fit / evaluate, the targets the loss
 * needs. Nothing is copied; every array must hold n rows. */
typedef struct nb_dataset {
    int n;                     /* samples */
    const float *x;            /* (n, input_width) features, or */
    const uint8_t *x_u8;       /* (n, input_width) bytes, multiplied by x_scale as each batch is gathered, or */
    const int32_t *x_i32;      /* (n, input_width) token ids, for a model whose input is NB_I32 */
    float x_scale;             /* for x_u8; 0 means 1 (e.g. 1/255.0f for pixels) */
    const int32_t *labels;     /* (n) class ids (sparse categorical), or */
    const uint8_t *labels_u8;  /* (n) class ids as bytes */
    const float *y;            /* (n, K) targets (categorical, mean squared error) */
} nb_dataset;

/* ---- Training ------------------------------------------------------------ */

/* How fit reports progress. */
typedef enum nb_verbosity {
    NB_VERBOSE_AUTO = 0, /* Keras verbose=1: a progress bar on a terminal, one line per epoch otherwise */
    NB_VERBOSE_SILENT,   /* Keras verbose=0: nothing */
    NB_VERBOSE_BAR,      /* the bar, redrawn with '\r' even when not a terminal */
    NB_VERBOSE_EPOCH     /* Keras verbose=2: one line per epoch */
} nb_verbosity;

/* Called after each training step with the running means so far (before the
 * step's update, weighted by batch size). epoch and step count from 0. */
typedef void (*nb_step_fn)(void *ctx, int epoch, int step, int steps, double loss, double accuracy);

/* Zero means the default everywhere, so a compound literal names only what differs. */
typedef struct nb_fit_opts {
    int epochs;               /* default 1 */
    int batch_size;           /* default 32; under MPI the global batch, split over the ranks */
    float validation_split;   /* in [0, 1): the LAST fraction of the samples, taken before shuffling */
    const nb_dataset *validation_data; /* or explicit validation samples (overrides the split) */
    bool no_shuffle;          /* default: shuffle the training samples before each epoch */
    bool no_overlap;          /* under MPI: average the gradients in one call after backward instead of
                                 in buckets that start while backward runs (for comparison) */
    uint64_t seed;            /* non-zero: seed the shuffling with this instead of the model's generator */
    nb_verbosity verbose;     /* default NB_VERBOSE_AUTO */
    FILE *out;                /* progress output; NULL: stdout */
    nb_step_fn on_step;       /* optional per-step callback */
    void *ctx;                /* passed to on_step */
} nb_fit_opts;

/* Per-epoch results of nb_fit. Free the arrays with nb_history_free. */
typedef struct nb_history {
    int epochs;           /* entries in each array */
    int steps_per_epoch;  /* ceil(train_samples / batch_size) */
    int train_samples, val_samples;
    float *loss;          /* (epochs) mean training loss */
    float *accuracy;      /* (epochs) training accuracy; NaN for mean squared error */
    float *val_loss;      /* (epochs) validation loss; NULL without validation */
    float *val_accuracy;  /* (epochs) validation accuracy; NULL without validation */
} nb_history;

/* Free the history's arrays and zero it (the struct itself is the caller's).
 * NULL is a no-op. */
void nb_history_free(nb_history *h);

/* Train on n samples: x (n, input_width) floats; y as the loss needs (int32_t
 * labels for sparse categorical cross-entropy, (n, K) floats otherwise — see the
 * top of this file). Steps per epoch = ceil(n_train / batch), the last partial
 * batch included. The training graph is reused; after the first step, steps
 * allocate nothing. opts NULL: all defaults. history may be NULL; when given it is
 * filled (free with nb_history_free) — also with the epochs done when training
 * fails part-way. NB_ERR_STATE before nb_compile; NB_ERR_ARG for bad arguments;
 * NB_ERR_LABEL for a label out of range (checked before the first step);
 * NB_ERR_NUMERIC when the loss becomes NaN or Inf. */
nb_status nb_fit(nb_model *m, const float *x, const void *y, int n, const nb_fit_opts *opts, nb_history *history);

/* Data-parallel training: when the program runs on several MPI ranks
 * (nb_dist_init in <nabla/nb_dist.h>, started with mpirun), nb_fit checks that
 * every rank holds the same model and data sizes, starts every rank from rank
 * 0's weights and states, splits each global batch of batch_size samples (drawn
 * in the same shuffled order on every rank) into contiguous shares, averages
 * the gradients weighted by share in buckets that start while backward runs, so
 * P ranks take the steps one process would take with the same global batch (to
 * float rounding). Losses and accuracies are reduced over the ranks; only rank 0
 * shows progress. A failure on any rank (bad labels, a NaN) stops every rank
 * with that rank's message. nb_evaluate splits its samples the same way. */

/* nb_fit over a dataset view. */
nb_status nb_fit_data(nb_model *m, const nb_dataset *data, const nb_fit_opts *opts, nb_history *history);

/* One training step (Keras's train_on_batch) on the batch's n samples as one
 * batch: forward in training mode, backward, one optimizer update. *loss and
 * *accuracy (either may be NULL) receive the batch's values before the update.
 * For loops that draw their own batches (a language model sampling contexts):
 * after the first call at the largest batch size, calls allocate nothing. Under
 * MPI the batch is split over the ranks as in nb_fit (the first call broadcasts
 * rank 0's weights). Needs nb_compile; fails like nb_fit. */
nb_status nb_train_on_batch(nb_model *m, const nb_dataset *batch, float *loss, float *accuracy);

/* The graph nb_compile built (inputs, layers, loss), borrowed from the model,
 * for teaching and debugging (nb_graph_print, nb_graph_dot); NULL before
 * compile. Its nodes hold the values of the last step. */
nb_graph *nb_model_training_graph(nb_model *m);

/* Mean loss and accuracy over all n samples (batches of 32, no update). loss /
 * accuracy may be NULL; accuracy is NaN for mean squared error. Needs nb_compile.
 * Fails like nb_fit. */
nb_status nb_evaluate(nb_model *m, const float *x, const void *y, int n, float *loss, float *accuracy);
nb_status nb_evaluate_data(nb_model *m, const nb_dataset *data, float *loss, float *accuracy);

/* Outputs of the model for n samples into out (n, output_width): logits for
 * a linear last layer, probabilities for a softmax one. Runs an inference graph
 * (no gradients, dropout off, batch norm on its moving statistics) bound to the
 * model's weights, in batches of up to 1024 samples (fewer when a sample's
 * activations are large, keeping them near 64 MiB); built at the first call, after which calls
 * allocate nothing. No compile needed. NB_ERR_ARG for bad arguments; a failure
 * to build the graph passes its status on (NB_ERR_NOMEM, NB_ERR_SHAPE, ...). */
nb_status nb_predict(nb_model *m, const float *x, int n, float *out);
nb_status nb_predict_data(nb_model *m, const nb_dataset *data, float *out);

/* ---- Inspection ---------------------------------------------------------- */

/* Compare the model's backward pass with central finite differences of its
 * loss (nb_gradcheck) on the n samples of data as one batch, in training mode
 * (dropout drawing the same mask in every pass) or inference mode. h: the step
 * (<= 0: 1e-3). *worst receives the largest relative error. Leaves the weights
 * unchanged and the gradients zero. Needs nb_compile; fails like nb_evaluate. */
nb_status nb_model_gradcheck(nb_model *m, const nb_dataset *data, bool training, float h, double *worst);

/* Print a Keras-like summary: one row per layer call (name, type, output shape
 * "(None, 26, 26, 32)", weight count; functional models also list their inputs
 * and what each call is connected to), then total / trainable / non-trainable
 * parameters. */
void nb_model_summary(const nb_model *m, FILE *out); /* ends with the BLIS kernel set in use */

/* ---- Files ----------------------------------------------------------------
 * nb_save writes the architecture, compile settings, class names, weights and
 * the optimizer's state (to resume training) in the format described in
 * nn/FORMAT.md, atomically: a temporary file in the same folder is written,
 * flushed, synced and renamed over path, so a failure leaves any old file intact.
 * NB_ERR_ARG for NULL arguments; NB_ERR_IO (message names the file) on failure. */
nb_status nb_save(nb_model *m, const char *path);

/* Read a model written by nb_save (compiled when it was saved compiled, with the
 * optimizer state restored). Everything is validated (magic, version, sizes,
 * activations, CRC-32) before use. NULL with nb_last_error naming the file and
 * the field on failure (NB_ERR_IO, NB_ERR_FORMAT, NB_ERR_NOMEM). */
nb_model *nb_load(const char *path);

#ifdef __cplusplus
}
#endif
#endif
