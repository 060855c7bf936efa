/* nn_internal.h — the model, its layers and the layer-kind table, shared by nn/'s files.
 *
 * A model is a list of layers (each owning its settings and knowing where its
 * weights sit in the model's blocks) and a list of nodes: the model's inputs and
 * every call of a layer on earlier nodes. Sequential models are the special case
 * of a chain. The weights have one home, the model's packed blocks `w` (values),
 * `grad` (gradients) and `state` (non-trainable values such as moving averages);
 * every graph the model builds (training, inference) binds those blocks, so all
 * readers see the same floats at every moment and nothing is ever copied.
 *
 * Who clears gradients: nb_backward zeroes the gradients of the graph's
 * intermediate nodes before each pass and only adds into parameters'; the
 * optimizer's step (nb_optimizer_step_clear) zeroes the parameter gradients it
 * consumes; so between steps `grad` is all zero, which fit relies on (and restores
 * when a step fails part-way). */
#ifndef NN_INTERNAL_H
#define NN_INTERNAL_H

#include <nabla/nb_dist.h>
#include <nabla/nb_nn.h>
#include <nabla/nb_rng.h>

#define NN_MAX_CALL_IN 8  /* inputs of one layer call (Add) */
#define NN_MAX_PARAMS 8   /* weight tensors of one layer (attention: 4 kernels, 4 biases) */
#define NN_MAX_STATES 2   /* state tensors of one layer (batch norm: moving mean, variance) */
#define NN_MAX_INPUTS 4   /* inputs of a model */

/* A shape without the batch axis. */
typedef struct nn_shape {
    int ndim;
    int d[NB_MAX_DIMS];
} nn_shape;

/* Every kind's settings in one struct; each kind's table entry names the fields
 * it uses (those are what files store, by name). */
typedef struct nn_config {
    int units, activation, use_bias;             /* dense */
    int filters, kernel_h, kernel_w;             /* conv2d */
    int stride_h, stride_w, padding;             /* conv2d, pools (padding: nb_padding) */
    int pool_h, pool_w;                          /* pools */
    int input_dim, output_dim;                   /* embedding, positional embedding */
    int heads, key_dim, causal;                  /* multi-head attention */
    int approximate;                             /* gelu activation layer */
    float rate;                                  /* dropout */
    float momentum, epsilon;                     /* batch / layer normalisation */
} nn_config;

typedef enum nn_field_type { NN_INT, NN_FLOAT } nn_field_type;

/* One setting of a kind: its name in files, where it sits in nn_config and the
 * range a loaded value must fall in. */
typedef struct nn_field {
    const char *name;
    nn_field_type type;
    size_t offset;
    double lo, hi;
} nn_field;

#define NN_FIELD(n, type, lo, hi) {#n, type, offsetof(nn_config, n), lo, hi}
#define NN_MAX_FIELDS 12

typedef struct nn_kind nn_kind;

struct nb_layer {
    const nn_kind *kind;
    nn_config cfg;
    char name[NB_NAME_LEN];   /* "dense_1", unique in the model */
    nb_model *model;
    bool built;               /* weights allocated: the first call fixed the input shapes */
    nn_shape in_shape[NN_MAX_CALL_IN]; /* shapes of the first call's inputs */
    int n_in;
    int n_params, n_states;
    nn_shape pshape[NN_MAX_PARAMS], sshape[NN_MAX_STATES];
    size_t poff[NN_MAX_PARAMS], soff[NN_MAX_STATES]; /* offsets in the model's w / state blocks */
};

/* What a layer kind must say: its settings, its shapes, its initial weights and
 * the graph nodes it stands for. */
struct nn_kind {
    const char *name;          /* "dense": key in files, prefix of layer names */
    const char *keras;         /* "Dense": the summary's type column */
    nn_field fields[NN_MAX_FIELDS];
    int n_fields;
    int min_in, max_in;        /* inputs per call */
    int int_input;             /* 1: takes int32 token ids (Embedding); 0: floats */
    /* Output shape, and the shapes of the weights and states the layer needs, for
     * inputs of these shapes; a mismatch is nb_fail(NB_ERR_SHAPE, ...) naming the
     * layer. n_params / n_states arrive as 0. */
    nb_status (*infer)(nb_layer *L, const nn_shape *in, int n_in, nn_shape *out);
    /* Draw fresh weights (Keras's initialisers) into p[i] (pshape[i] floats each)
     * and initial states into s[i]. NULL: zeros. */
    void (*init)(const nb_layer *L, nb_rng *rng, float *const *p, float *const *s);
    /* The layer's nodes on g for inputs x[], weights p[], states s[]; NULL with
     * a message on g. */
    nb_tensor *(*build)(nb_graph *g, const nb_layer *L, nb_tensor *const *x, int n_in, nb_tensor *const *p,
                        nb_tensor *const *s);
};

/* The kind named `name`, or NULL. */
const nn_kind *nn_kind_find(const char *name);
extern const nn_kind nn_kind_dense;
extern const nn_kind nn_kind_conv2d, nn_kind_max_pool2d, nn_kind_avg_pool2d, nn_kind_global_avg_pool2d,
    nn_kind_batch_norm, nn_kind_dropout; /* layers_conv.c */
extern const nn_kind nn_kind_embedding, nn_kind_position_embedding, nn_kind_layer_norm, nn_kind_attention,
    nn_kind_last_position; /* layers_seq.c */

/* Whether a call of `conv` read only by a call of `pool` builds as one fused
 * node (a relu Conv2D followed by MaxPooling2D), and that node for input x and
 * the convolution's weights p (layers_conv.c). */
bool nn_conv_pool_fuses(const nb_layer *conv, const nb_layer *pool);
nb_tensor *nn_conv_pool_build(nb_graph *g, const nb_layer *conv, const nb_layer *pool, nb_tensor *x,
                              nb_tensor *const *p);

/* act(x · w + b) over the last axis of x of any rank (reshaped to rows and back). */
nb_tensor *nn_dense_any(nb_graph *g, nb_tensor *x, nb_tensor *w, nb_tensor *b, nb_activation act);
/* n values drawn uniformly from [lo, hi]. */
void nn_uniform(nb_rng *rng, float *w, size_t n, float lo, float hi);

/* Layer helpers for the kinds' files. */
size_t nn_shape_size(const nn_shape *s);
char *nn_shape_str(const nn_shape *s, char *buf, size_t len); /* "(None, 26, 26, 32)" */
void nn_glorot_uniform(nb_rng *rng, float *w, size_t n, double fan_in, double fan_out);
nb_status nn_add_param(nb_layer *L, int ndim, const int *d);
nb_status nn_add_state(nb_layer *L, int ndim, const int *d);

/* A node of the model: an input (layer -1) or a layer called on earlier nodes. */
typedef struct nn_node {
    int layer;
    int n_in, in[NN_MAX_CALL_IN];
    nn_shape shape;
    nb_dtype dtype;
} nn_node;

/* A graph the model built, with the tensors the model reads and writes. */
typedef struct nn_graph {
    nb_graph *g;
    nb_tensor *x[NN_MAX_INPUTS]; /* the model's inputs */
    nb_tensor *out;              /* the model's output */
    nb_tensor *y, *loss;         /* training graph: targets and loss */
} nn_graph;

struct nb_model {
    nb_layer **layers;         /* (n_layers) owned */
    int n_layers, cap_layers;
    int *built;                /* (n_built) indices of the layers in the order they were built, which
                                  is the order of their weights in the blocks (cap_layers allocated) */
    int n_built;
    nn_node *nodes;            /* (n_nodes) */
    int n_nodes, cap_nodes;
    int inputs[NN_MAX_INPUTS], n_inputs; /* node ids */
    int output;                /* node id; -1 until set */
    bool sequential;           /* nb_sequential: layers are added to the end of a chain */
    nb_status build_error;     /* the first failed nb_call, kept for nb_model_set_output */

    float *w, *grad;           /* (n_params) the weights and their gradients: the only copy */
    size_t n_params;
    float *state;              /* (n_state) non-trainable values (moving statistics) */
    size_t n_state;
    uint64_t seed;
    nb_rng init_rng;           /* initial weights */
    nb_rng shuffle_rng;        /* nb_fit's shuffling */

    nn_graph train;            /* built by nb_compile: inputs -> model -> loss(out, y) */
    nn_graph infer;            /* built at the first predict: no gradients */
    int predict_batch;         /* samples per inference pass, from the graph's size per sample */
    nb_loss loss;
    bool from_logits;
    nb_optimizer *opt;
    nb_dist_grads *dist;       /* gradient averaging over MPI ranks (fit with more than one rank) */

    char **class_names;        /* (n_classes) owned strings */
    int n_classes;
};

/* model.c */
nb_model *nn_model_alloc(const char *fn);
/* A new layer of kind k with settings cfg (checked against the kind's ranges),
 * owned by m and named after its kind; NULL with a message. */
nb_layer *nn_layer_new(nb_model *m, const nn_kind *k, const nn_config *cfg, const char *fn);
bool nn_compiled(const nb_model *m);
/* Shape of the output node (the last node when none was set), without the batch. */
const nn_node *nn_output_node(const nb_model *m);
/* Elements per sample of input i / of the output. */
size_t nn_input_size(const nb_model *m, int i);
size_t nn_output_size(const nb_model *m);

/* build.c: the model's graph (inputs, weights bound to the model's blocks, every
 * node); with_grad false for inference. Status of the failure (message set). */
nb_status nn_build_graph(nb_model *m, bool with_grad, nn_graph *out, const char *fn);
void nn_graph_free(nn_graph *ng);

/* save.c / save_v1.c: reading model files (fileio.h has the reader). */
struct nn_reader;
struct nn_writer;
/* The body of a version 1 file (after its header checks) into a new *out. */
nb_status nn_parse_v1(struct nn_reader *r, nb_model **out);
/* Fields both versions share: class names; has_optimizer and the optimizer
 * (which compiles m with loss / from_logits and restores its state). */
nb_status nn_get_class_names(struct nn_reader *r, nb_model *m);
nb_status nn_get_optimizer(struct nn_reader *r, nb_model *m, uint32_t loss, bool from_logits);
void nn_put_optimizer(struct nn_writer *w, const nb_optimizer *o);

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

void nn_progbar_epoch(nn_progbar *p, FILE *out, nb_verbosity v, int epoch, int epochs, int target);
void nn_progbar_update(nn_progbar *p, int current, const nn_metrics *mt);
void nn_progbar_finish(nn_progbar *p, const nn_metrics *mt);

#endif
