/* model.c — models as graphs of layer calls: inputs, layers, calls, outputs,
 * Sequential as the special case of a chain, weights, seeds and class names. */
#include <stdio.h>
#include <string.h>

#include "nn_internal.h"

/* The shuffling stream is the model's seed on its own PCG stream selector. */
static void seed_rngs(nb_model *m, uint64_t seed)
{
    m->seed = seed;
    nb_rng_seed(&m->init_rng, seed);
    nb_rng_seed(&m->shuffle_rng, seed);
    m->shuffle_rng.inc = (0x5eed5eedULL << 1u) | 1u;
    nb_rng_u32(&m->shuffle_rng);
}

const char *nb_loss_name(nb_loss loss)
{
    switch (loss) {
    case NB_LOSS_NONE: return "none";
    case NB_SPARSE_CATEGORICAL_CROSSENTROPY: return "sparse_categorical_crossentropy";
    case NB_CATEGORICAL_CROSSENTROPY: return "categorical_crossentropy";
    case NB_MEAN_SQUARED_ERROR: return "mean_squared_error";
    }
    return "?";
}

nb_model *nn_model_alloc(const char *fn)
{
    nb_model *m = nb_calloc(1, sizeof *m);
    if (!m) {
        nb_fail(NB_ERR_NOMEM, "%s: out of memory", fn);
        return NULL;
    }
    m->output = -1;
    seed_rngs(m, NB_DEFAULT_SEED);
    return m;
}

nb_model *nb_model_new(void) { return nn_model_alloc("nb_model_new"); }

bool nn_compiled(const nb_model *m) { return m->train.g != NULL; }

static void free_class_names(nb_model *m)
{
    for (int i = 0; i < m->n_classes; i++) nb_free(m->class_names[i]);
    nb_free(m->class_names);
    m->class_names = NULL;
    m->n_classes = 0;
}

void nb_model_free(nb_model *m)
{
    if (!m) return;
    nb_dist_grads_free(m->dist);
    nn_graph_free(&m->train);
    nn_graph_free(&m->infer);
    nb_optimizer_free(m->opt);
    free_class_names(m);
    for (int i = 0; i < m->n_layers; i++) nb_free(m->layers[i]);
    nb_free(m->layers);
    nb_free(m->built);
    nb_free(m->nodes);
    nb_free(m->w);
    nb_free(m->grad);
    nb_free(m->state);
    nb_free(m);
}

/* ---- nodes ---- */

static int push_node(nb_model *m, const nn_node *n, const char *fn)
{
    if (m->n_nodes == m->cap_nodes) {
        int cap = m->cap_nodes ? 2 * m->cap_nodes : 16;
        nn_node *p = nb_realloc(m->nodes, (size_t)cap * sizeof *p);
        if (!p) return nb_fail(NB_ERR_NOMEM, "%s: out of memory", fn), -1;
        m->nodes = p;
        m->cap_nodes = cap;
    }
    m->nodes[m->n_nodes] = *n;
    return m->n_nodes++;
}

static bool changeable(nb_model *m, const char *fn)
{
    if (!m) return nb_fail(NB_ERR_ARG, "%s: model is NULL", fn), false;
    if (nn_compiled(m) || m->infer.g)
        return nb_fail(NB_ERR_STATE, "%s: the model is compiled or has predicted; build it completely first", fn), false;
    return true;
}

nb_sym nb_model_input(nb_model *m, nb_dtype dtype, int ndim, const int *shape)
{
    if (!changeable(m, "nb_model_input")) return -1;
    if (m->n_inputs >= NN_MAX_INPUTS) return nb_fail(NB_ERR_ARG, "nb_model_input: at most %d inputs", NN_MAX_INPUTS), -1;
    if ((dtype != NB_F32 && dtype != NB_I32) || ndim < 1 || ndim >= NB_MAX_DIMS || !shape)
        return nb_fail(NB_ERR_ARG, "nb_model_input: need a float or int32 dtype and 1..%d dimensions (without the batch)",
                       NB_MAX_DIMS - 1), -1;
    nn_node n = {.layer = -1, .dtype = dtype, .shape = {.ndim = ndim}};
    size_t size = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1 || shape[i] > NB_MAX_UNITS || (size *= (size_t)shape[i]) > NB_MAX_UNITS)
            return nb_fail(NB_ERR_ARG, "nb_model_input: dimension %d is %d; each must be >= 1 and the sample at most %d values",
                           i, shape[i], NB_MAX_UNITS), -1;
        n.shape.d[i] = shape[i];
    }
    int id = push_node(m, &n, "nb_model_input");
    if (id >= 0) m->inputs[m->n_inputs++] = id;
    return id;
}

/* ---- layers ---- */

static nb_status check_fields(const nn_kind *k, const nn_config *c, const char *fn)
{
    for (int i = 0; i < k->n_fields; i++) {
        const nn_field *f = &k->fields[i];
        const char *at = (const char *)c + f->offset;
        double v = f->type == NN_INT ? *(const int *)(const void *)at : *(const float *)(const void *)at;
        if (!(v >= f->lo && v <= f->hi))
            return nb_fail(NB_ERR_ARG, "%s: %s must be in [%g, %g], got %g", fn, f->name, f->lo, f->hi, v);
    }
    return NB_OK;
}

/* A new layer of kind k owned by m, named after its kind ("dense", "dense_1"). */
nb_layer *nn_layer_new(nb_model *m, const nn_kind *k, const nn_config *cfg, const char *fn)
{
    if (!changeable(m, fn) || check_fields(k, cfg, fn) != NB_OK) return NULL;
    if (m->n_layers >= NB_MAX_LAYERS) return nb_fail(NB_ERR_ARG, "%s: at most %d layers", fn, NB_MAX_LAYERS), NULL;
    if (m->n_layers == m->cap_layers) {
        int cap = m->cap_layers ? 2 * m->cap_layers : 8;
        nb_layer **p = nb_realloc(m->layers, (size_t)cap * sizeof *p);
        if (p) m->layers = p;
        int *b = p ? nb_realloc(m->built, (size_t)cap * sizeof *b) : NULL;
        if (!b) return nb_fail(NB_ERR_NOMEM, "%s: out of memory", fn), NULL;
        m->built = b;
        m->cap_layers = cap;
    }
    nb_layer *L = nb_calloc(1, sizeof *L);
    if (!L) return nb_fail(NB_ERR_NOMEM, "%s: out of memory", fn), NULL;
    int same = 0;
    for (int i = 0; i < m->n_layers; i++) same += m->layers[i]->kind == k;
    if (same) snprintf(L->name, sizeof L->name, "%s_%d", k->name, same);
    else snprintf(L->name, sizeof L->name, "%s", k->name);
    L->kind = k;
    L->cfg = *cfg;
    L->model = m;
    m->layers[m->n_layers++] = L;
    return L;
}

/* Grow a model block by `add` floats (zeroed). */
static nb_status grow(float **block, size_t n, size_t add, const char *fn)
{
    if (add == 0) return NB_OK;
    if (n + add > ((size_t)1 << 40)) return nb_fail(NB_ERR_ARG, "%s: too large: the model would exceed 2^40 weights", fn);
    float *p = nb_realloc(*block, (n + add) * sizeof *p);
    if (!p) return nb_fail(NB_ERR_NOMEM, "%s: out of memory for %zu weights", fn, n + add);
    memset(p + n, 0, add * sizeof *p);
    *block = p;
    return NB_OK;
}

/* Draw L's weights and initial states (Keras's initialisers) into the blocks. */
static void draw(nb_model *m, const nb_layer *L)
{
    if (!L->kind->init) return;
    float *p[NN_MAX_PARAMS], *s[NN_MAX_STATES];
    for (int j = 0; j < L->n_params; j++) p[j] = m->w + L->poff[j];
    for (int j = 0; j < L->n_states; j++) s[j] = m->state + L->soff[j];
    L->kind->init(L, &m->init_rng, p, s);
}

/* Give layer i its weights at the end of the model's blocks and draw them. */
static nb_status allocate(nb_model *m, int i, const char *fn)
{
    nb_layer *L = m->layers[i];
    size_t np = 0, ns = 0;
    for (int i = 0; i < L->n_params; i++) np += nn_shape_size(&L->pshape[i]);
    for (int i = 0; i < L->n_states; i++) ns += nn_shape_size(&L->sshape[i]);
    nb_status s = grow(&m->w, m->n_params, np, fn);
    if (s == NB_OK) s = grow(&m->state, m->n_state, ns, fn);
    if (s != NB_OK) return s;
    for (int j = 0; j < L->n_params; j++) {
        L->poff[j] = m->n_params;
        m->n_params += nn_shape_size(&L->pshape[j]);
    }
    for (int j = 0; j < L->n_states; j++) {
        L->soff[j] = m->n_state;
        m->n_state += nn_shape_size(&L->sshape[j]);
    }
    draw(m, L);
    L->built = true;
    m->built[m->n_built++] = i;
    return NB_OK;
}

static int layer_index(const nb_model *m, const nb_layer *L)
{
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i] == L) return i;
    return -1;
}

/* Shapes of the call's inputs, checked against the layer's first call. */
static nb_status call_inputs(nb_model *m, nb_layer *L, int n, const nb_sym *xs, nn_shape *in, const char *fn)
{
    const nn_kind *k = L->kind;
    if (n < k->min_in || n > k->max_in)
        return nb_fail(NB_ERR_ARG, "%s: %s takes %d..%d inputs, got %d", fn, L->name, k->min_in, k->max_in, n);
    for (int i = 0; i < n; i++) {
        if (xs[i] >= m->n_nodes) return nb_fail(NB_ERR_ARG, "%s: input %d (%d) is not a tensor of this model", fn, i, xs[i]);
        const nn_node *src = &m->nodes[xs[i]];
        if ((src->dtype == NB_I32) != (k->int_input != 0))
            return nb_fail(NB_ERR_ARG, "%s: %s takes %s inputs", fn, L->name, k->int_input ? "int32 (token id)" : "float");
        in[i] = src->shape;
    }
    if (!L->built) return NB_OK;
    for (int i = 0; i < n; i++)
        if (n != L->n_in || in[i].ndim != L->in_shape[i].ndim ||
            memcmp(in[i].d, L->in_shape[i].d, (size_t)in[i].ndim * sizeof(int)) != 0) {
            char a[64], b[64];
            return nb_fail(NB_ERR_SHAPE, "%s: %s was first called on %s; a shared layer needs the same shapes, got %s", fn,
                           L->name, nn_shape_str(&L->in_shape[i < L->n_in ? i : 0], a, sizeof a),
                           nn_shape_str(&in[i], b, sizeof b));
        }
    return NB_OK;
}

nb_sym nb_call_n(nb_layer *L, int n, const nb_sym *xs)
{
    const char *fn = "nb_call";
    if (!L) return nb_fail(NB_ERR_ARG, "%s: layer is NULL", fn), -1;
    nb_model *m = L->model;
    if (!changeable(m, fn)) return -1;
    if (n < 0 || n > NN_MAX_CALL_IN || (n && !xs)) return nb_fail(NB_ERR_ARG, "%s: bad input list (%d)", fn, n), -1;
    for (int i = 0; i < n; i++)
        if (xs[i] < 0) return -1; /* an earlier call failed: its message stands */
    nn_shape in[NN_MAX_CALL_IN];
    nn_node node = {.layer = layer_index(m, L), .n_in = n, .dtype = NB_F32};
    nb_status s = call_inputs(m, L, n, xs, in, fn);
    if (s == NB_OK) {
        nb_layer probe = *L; /* the shape rule also lists the weights: keep the real list */
        probe.n_params = probe.n_states = 0;
        s = L->kind->infer(&probe, in, n, &node.shape);
        if (s == NB_OK && !L->built) {
            L->n_params = probe.n_params;
            L->n_states = probe.n_states;
            memcpy(L->pshape, probe.pshape, sizeof L->pshape);
            memcpy(L->sshape, probe.sshape, sizeof L->sshape);
            memcpy(L->in_shape, in, sizeof in);
            L->n_in = n;
            s = allocate(m, node.layer, fn);
        }
    }
    if (s == NB_OK && (node.shape.ndim < 1 || nn_shape_size(&node.shape) > ((size_t)1 << 30)))
        s = nb_fail(NB_ERR_SHAPE, "%s: %s's output has no feature axis or is too large", fn, L->name);
    if (s != NB_OK) {
        if (m->build_error == NB_OK) m->build_error = s;
        return -1;
    }
    memcpy(node.in, xs, (size_t)n * sizeof *xs);
    return push_node(m, &node, fn);
}

nb_sym nb_call(nb_layer *L, nb_sym x) { return nb_call_n(L, 1, &x); }

nb_status nb_model_set_output(nb_model *m, nb_sym y)
{
    if (!changeable(m, "nb_model_set_output")) return nb_last_status();
    if (y < 0)
        return m->build_error != NB_OK ? m->build_error
                                       : nb_fail(NB_ERR_ARG, "nb_model_set_output: the output is not a tensor (%d)", y);
    if (y >= m->n_nodes || m->nodes[y].layer < 0)
        return nb_fail(NB_ERR_ARG, "nb_model_set_output: %d is not a layer's output in this model", y);
    m->output = y;
    return NB_OK;
}

const nn_node *nn_output_node(const nb_model *m)
{
    if (m->output >= 0) return &m->nodes[m->output];
    return m->n_nodes ? &m->nodes[m->n_nodes - 1] : NULL;
}

size_t nn_input_size(const nb_model *m, int i)
{
    return i < m->n_inputs ? nn_shape_size(&m->nodes[m->inputs[i]].shape) : 0;
}
size_t nn_output_size(const nb_model *m)
{
    const nn_node *n = nn_output_node(m);
    return n ? nn_shape_size(&n->shape) : 0;
}

/* ---- Sequential ---- */

nb_model *nb_sequential_shape(int ndim, const int *shape)
{
    nb_model *m = nn_model_alloc("nb_sequential");
    if (m && nb_model_input(m, NB_F32, ndim, shape) < 0) {
        nb_model_free(m);
        return NULL;
    }
    if (m) m->sequential = true;
    return m;
}

nb_model *nb_sequential(int input_width)
{
    if (input_width < 1 || input_width > NB_MAX_UNITS) {
        nb_fail(NB_ERR_ARG, "nb_sequential: input width must be 1..%d, got %d", NB_MAX_UNITS, input_width);
        return NULL;
    }
    return nb_sequential_shape(1, &input_width);
}

nb_status nb_add_layer(nb_model *m, nb_layer *L)
{
    if (!m || !L) return nb_fail(NB_ERR_ARG, "nb_add_layer: model or layer is NULL (did the layer's constructor fail?)");
    if (!m->sequential) return nb_fail(NB_ERR_ARG, "nb_add_layer: not a Sequential model; call layers with nb_call");
    if (L->model != m) return nb_fail(NB_ERR_ARG, "nb_add_layer: the layer belongs to another model");
    nb_sym y = nb_call(L, m->n_nodes - 1);
    if (y < 0) {
        /* the layer was not used: forget it, so the model is unchanged */
        if (m->layers[m->n_layers - 1] == L && !L->built) nb_free(m->layers[--m->n_layers]);
        return nb_last_status();
    }
    m->output = y;
    return NB_OK;
}

nb_status nb_add_dense(nb_model *m, int units, nb_activation activation)
{
    if (!m) return nb_fail(NB_ERR_ARG, "nb_add_dense: model is NULL");
    if (units < 1 || units > NB_MAX_UNITS)
        return nb_fail(NB_ERR_ARG, "nb_add_dense: units must be 1..%d, got %d", NB_MAX_UNITS, units);
    if ((unsigned)activation >= NB_ACTIVATION_COUNT)
        return nb_fail(NB_ERR_ARG, "nb_add_dense: unknown activation %d", (int)activation);
    if (nn_compiled(m)) return nb_fail(NB_ERR_STATE, "nb_add_dense: the model is compiled; add every layer before nb_compile");
    return nb_add_layer(m, nb_layer_dense(m, units, activation));
}

/* ---- queries ---- */

int nb_model_input_width(const nb_model *m) { return m ? (int)nn_input_size(m, 0) : 0; }
int nb_model_output_width(const nb_model *m)
{
    const nn_node *n = m ? nn_output_node(m) : NULL;
    return n ? (int)nn_shape_size(&n->shape) : 0;
}
int nb_model_layer_count(const nb_model *m) { return m ? m->n_layers : 0; }
const char *nb_model_layer_name(const nb_model *m, int i)
{
    return m && i >= 0 && i < m->n_layers ? m->layers[i]->name : NULL;
}
const char *nb_model_layer_kind(const nb_model *m, int i)
{
    return m && i >= 0 && i < m->n_layers ? m->layers[i]->kind->keras : NULL;
}
int nb_model_layer_units(const nb_model *m, int i)
{
    if (!m || i < 0 || i >= m->n_layers) return 0;
    const nb_layer *L = m->layers[i];
    return L->kind == &nn_kind_dense ? L->cfg.units : 0;
}
nb_activation nb_model_layer_activation(const nb_model *m, int i)
{
    if (!m || i < 0 || i >= m->n_layers) return NB_LINEAR;
    const nb_layer *L = m->layers[i];
    return L->kind == &nn_kind_dense ? (nb_activation)L->cfg.activation : NB_LINEAR;
}
size_t nb_model_param_count(const nb_model *m) { return m ? m->n_params : 0; }
size_t nb_model_state_count(const nb_model *m) { return m ? m->n_state : 0; }

/* ---- weights: the model's blocks are the only copy, so these read and write them ---- */

nb_status nb_model_get_weights(const nb_model *m, float *dst, size_t n)
{
    if (!m || !dst) return nb_fail(NB_ERR_ARG, "nb_model_get_weights: model or destination NULL");
    if (n != m->n_params) return nb_fail(NB_ERR_ARG, "nb_model_get_weights: the model has %zu weights, not %zu", m->n_params, n);
    if (n) memcpy(dst, m->w, n * sizeof *dst);
    return NB_OK;
}

nb_status nb_model_set_weights(nb_model *m, const float *src, size_t n)
{
    if (!m || !src) return nb_fail(NB_ERR_ARG, "nb_model_set_weights: model or source NULL");
    if (n != m->n_params) return nb_fail(NB_ERR_ARG, "nb_model_set_weights: the model has %zu weights, not %zu", m->n_params, n);
    if (n) memcpy(m->w, src, n * sizeof *src);
    return NB_OK;
}

const float *nb_model_weights(const nb_model *m) { return m ? m->w : NULL; }

nb_status nb_model_set_seed(nb_model *m, uint64_t seed)
{
    if (!m) return nb_fail(NB_ERR_ARG, "nb_model_set_seed: model is NULL");
    if (nn_compiled(m)) return nb_fail(NB_ERR_STATE, "nb_model_set_seed: the model is compiled; set the seed before nb_compile");
    seed_rngs(m, seed);
    for (int k = 0; k < m->n_built; k++) draw(m, m->layers[m->built[k]]); /* in the order first drawn */
    return NB_OK;
}

/* ---- class names ---- */

nb_status nb_model_set_class_names(nb_model *m, const char *const *names, int k)
{
    if (!m) return nb_fail(NB_ERR_ARG, "nb_model_set_class_names: model is NULL");
    if (k < 0 || k > 65536 || (k > 0 && !names))
        return nb_fail(NB_ERR_ARG, "nb_model_set_class_names: need 0..65536 names, got %d%s", k, names ? "" : " (names NULL)");
    for (int i = 0; i < k; i++)
        if (!names[i] || strlen(names[i]) > 255)
            return nb_fail(NB_ERR_ARG, "nb_model_set_class_names: name %d is NULL or longer than 255 bytes", i);
    char **copy = k ? nb_calloc((size_t)k, sizeof *copy) : NULL;
    if (k && !copy) return nb_fail(NB_ERR_NOMEM, "nb_model_set_class_names: out of memory");
    for (int i = 0; i < k; i++) {
        size_t len = strlen(names[i]);
        copy[i] = nb_malloc(len + 1);
        if (!copy[i]) {
            for (int j = 0; j < i; j++) nb_free(copy[j]);
            nb_free(copy);
            return nb_fail(NB_ERR_NOMEM, "nb_model_set_class_names: out of memory");
        }
        memcpy(copy[i], names[i], len + 1);
    }
    free_class_names(m);
    m->class_names = copy;
    m->n_classes = k;
    return NB_OK;
}

int nb_model_class_count(const nb_model *m) { return m ? m->n_classes : 0; }
const char *nb_model_class_name(const nb_model *m, int i)
{
    return m && i >= 0 && i < m->n_classes ? m->class_names[i] : NULL;
}
