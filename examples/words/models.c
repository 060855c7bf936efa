/* models.c — the words example's models (models.h), their training loop,
 * sampling, and the MLP's step written out in ops for drawing. */
#include "models.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"

#define LN_EPSILON 1e-5f        /* PyTorch's LayerNorm default (Keras's is 1e-3) */
#define CHUNK_ROWS (1L << 20)   /* most example rows gathered for one nb_fit call */
#define MAX_CONTEXT 1024        /* longest context words_sample accepts */

int words_context(words_kind kind) { return kind == WORDS_MLP ? WORDS_MLP_CONTEXT : WORDS_TRANSFORMER_CONTEXT; }

/* Make y the output of m; m, or NULL (freed) when a call failed. */
static nb_model *finish(nb_model *m, nb_sym y)
{
    if (m && nb_model_set_output(m, y) == NB_OK) return m;
    nb_model_free(m);
    return NULL;
}

/* Bengio, Ducharme, Vincent & Jauvin (2003), "A Neural Probabilistic Language
 * Model": the previous characters' embeddings side by side, one tanh hidden
 * layer, a score for every next character. */
static nb_model *build_mlp(void)
{
    nb_model *m = nb_model_new();
    nb_sym x = nb_model_input(m, NB_I32, 1, (int[]){WORDS_MLP_CONTEXT});     /* (3) symbols */
    nb_sym h = nb_call(nb_layer_embedding(m, WORDS_SYMBOLS, 16), x);         /* (3, 16) */
    h = nb_call(nb_layer_flatten(m), h);                                     /* (48) */
    h = nb_call(nb_layer_dense(m, 256, NB_TANH), h);                         /* (256) */
    return finish(m, nb_call(nb_layer_dense(m, WORDS_SYMBOLS, NB_LINEAR), h)); /* (27) logits */
}

/* One pre-LayerNorm block (GPT-2; Xiong et al. 2020): x + MHA(LN(x)), then
 * x + Dense(64)(Dense(256, gelu)(LN(x))). x is (T, 64). */
static nb_sym block(nb_model *m, nb_sym x)
{
    nb_sym a = nb_call(nb_layer_layer_norm(m, LN_EPSILON), x);
    a = nb_call(nb_layer_attention(m, 4, 16, true), a);               /* 4 heads of 16, causal */
    x = nb_call_n(nb_layer_add(m), 2, (nb_sym[]){x, a});
    nb_sym f = nb_call(nb_layer_layer_norm(m, LN_EPSILON), x);
    f = nb_call(nb_layer_dense(m, 256, NB_GELU), f);                  /* (T, 256) */
    f = nb_call(nb_layer_dense(m, 64, NB_LINEAR), f);                 /* (T, 64) */
    return nb_call_n(nb_layer_add(m), 2, (nb_sym[]){x, f});
}

/* A small decoder-only transformer (Vaswani et al. 2017; Radford et al. 2019)
 * read at its last position: the next character after 16 of context. */
static nb_model *build_transformer(void)
{
    nb_model *m = nb_model_new();
    nb_sym x = nb_model_input(m, NB_I32, 1, (int[]){WORDS_TRANSFORMER_CONTEXT}); /* (16) symbols */
    nb_sym h = nb_call(nb_layer_embedding(m, WORDS_SYMBOLS, 64), x);             /* (16, 64) */
    h = nb_call(nb_layer_position_embedding(m), h);                              /* + learned positions */
    for (int i = 0; i < 2; i++) h = block(m, h);
    h = nb_call(nb_layer_layer_norm(m, LN_EPSILON), h);
    h = nb_call(nb_layer_last_position(m), h);                                   /* (64) */
    return finish(m, nb_call(nb_layer_dense(m, WORDS_SYMBOLS, NB_LINEAR), h));    /* (27) logits */
}

/* ---- PyTorch's initialisation ----
 * Keras's Embedding starts at U[-0.05, 0.05]; the MLP then learns the letters'
 * embeddings slowly and ends 0.2 nats/char above PyTorch after 20000 steps (so
 * does PyTorch given those weights). So both models draw their weights as
 * PyTorch's modules do: Embedding N(0, 1); Linear kernel and bias U[-1/sqrt(in),
 * 1/sqrt(in)]; MultiheadAttention's query/key/value Glorot-uniform over the
 * (3 d, d) stack with zero biases and its output Linear with a zero bias;
 * LayerNorm 1 and 0; positions N(0, 0.02) (GPT-2). The model's weights are one
 * array, layer by layer in creation order, each kernel (in, out) then bias. */
typedef struct filler {
    float *w;
    size_t at;
    nb_rng r;
} filler;

static void fill_normal(filler *f, size_t n, float std)
{
    for (size_t i = 0; i < n; i++) f->w[f->at++] = std * nb_rng_normal(&f->r);
}

static void fill_uniform(filler *f, size_t n, float lim)
{
    for (size_t i = 0; i < n; i++) f->w[f->at++] = nb_rng_uniform_range(&f->r, -lim, lim);
}

static void fill_const(filler *f, size_t n, float v)
{
    for (size_t i = 0; i < n; i++) f->w[f->at++] = v;
}

static void fill_linear(filler *f, int in, int out)
{
    fill_uniform(f, (size_t)in * out, 1.0f / sqrtf((float)in));
    fill_uniform(f, (size_t)out, 1.0f / sqrtf((float)in));
}

static void fill_layer_norm(filler *f, int d)
{
    fill_const(f, (size_t)d, 1.0f);
    fill_const(f, (size_t)d, 0.0f);
}

static void fill_transformer(filler *f)
{
    const int d = 64, t = WORDS_TRANSFORMER_CONTEXT;
    fill_normal(f, (size_t)WORDS_SYMBOLS * d, 1.0f);
    fill_normal(f, (size_t)t * d, 0.02f);
    for (int b = 0; b < 2; b++) {
        fill_layer_norm(f, d);
        for (int i = 0; i < 3; i++) { /* query, key, value: rows of one (3 d, d) Glorot matrix */
            fill_uniform(f, (size_t)d * d, sqrtf(6.0f / (float)(d + 3 * d)));
            fill_const(f, (size_t)d, 0.0f);
        }
        fill_uniform(f, (size_t)d * d, 1.0f / sqrtf((float)d)); /* output */
        fill_const(f, (size_t)d, 0.0f);
        fill_layer_norm(f, d);
        fill_linear(f, d, 4 * d);
        fill_linear(f, 4 * d, d);
    }
    fill_layer_norm(f, d);
    fill_linear(f, d, WORDS_SYMBOLS);
}

static nb_status init_torch(nb_model *m, words_kind kind, uint64_t seed)
{
    size_t n = nb_model_param_count(m);
    filler f = {.w = malloc(n * sizeof(float))};
    if (!f.w) return nb_fail(NB_ERR_NOMEM, "words: out of memory for %zu weights", n);
    nb_rng_seed(&f.r, seed);
    if (kind == WORDS_MLP) {
        fill_normal(&f, (size_t)WORDS_SYMBOLS * 16, 1.0f);
        fill_linear(&f, WORDS_MLP_CONTEXT * 16, 256);
        fill_linear(&f, 256, WORDS_SYMBOLS);
    } else {
        fill_transformer(&f);
    }
    nb_status s = f.at == n ? nb_model_set_weights(m, f.w, n)
                            : nb_fail(NB_ERR_STATE, "words: the model has %zu weights, the initialiser drew %zu", n, f.at);
    free(f.w);
    return s;
}

nb_model *words_build(words_kind kind, uint64_t seed)
{
    nb_model *m = kind == WORDS_MLP ? build_mlp() : build_transformer();
    if (m && (nb_model_set_seed(m, seed) != NB_OK || init_torch(m, kind, seed) != NB_OK)) {
        nb_model_free(m);
        return NULL;
    }
    return m;
}

nb_status words_compile(nb_model *m, float lr)
{
    return nb_compile(m, &(nb_compile_opts){.loss = NB_SPARSE_CATEGORICAL_CROSSENTROPY,
                                            .from_logits = true,
                                            .optimizer = nb_adam(lr)});
}

/* ---- training ---- */

/* Counts the allocations made by the steps after an nb_fit call's first. */
typedef struct step_count {
    unsigned long at_first, extra;
} step_count;

static void count_step(void *ctx, int epoch, int step, int steps, double loss, double acc)
{
    (void)epoch, (void)loss, (void)acc;
    step_count *c = ctx;
    if (step == 0) c->at_first = nb_alloc_count();
    if (step == steps - 1) c->extra += nb_alloc_count() - c->at_first;
}

/* Draw rows examples of train into x, y. */
static void draw(const words_set *train, nb_rng *r, long rows, int32_t *x, int32_t *y)
{
    const int c = train->context;
    for (long i = 0; i < rows; i++) {
        long k = (long)nb_rng_below(r, (uint32_t)train->n);
        memcpy(x + i * c, train->x + k * c, (size_t)c * sizeof *x);
        y[i] = train->y[k];
    }
}

nb_status words_train(nb_model *m, const words_set *train, int steps, int batch, uint64_t seed, FILE *out,
                      words_trained *result)
{
    memset(result, 0, sizeof *result);
    if (!m || !train || train->n < 1 || train->n > UINT32_MAX || steps < 1 || batch < 1)
        return nb_fail(NB_ERR_ARG, "words_train: bad arguments");
    long chunk = (steps + 9) / 10, most = CHUNK_ROWS / batch > 0 ? CHUNK_ROWS / batch : 1;
    if (chunk > most) chunk = most;
    int32_t *x = malloc((size_t)(chunk * batch) * (size_t)train->context * sizeof *x);
    int32_t *y = malloc((size_t)(chunk * batch) * sizeof *y);
    if (!x || !y) {
        free(x), free(y);
        return nb_fail(NB_ERR_NOMEM, "words_train: out of memory for %ld examples", chunk * batch);
    }
    nb_rng r;
    nb_rng_seed(&r, seed ^ 0x9e3779b97f4a7c15ull); /* a stream apart from the weights' */
    step_count count = {0};
    nb_fit_opts fo = {.batch_size = batch, .no_shuffle = true, .verbose = NB_VERBOSE_SILENT, .on_step = count_step,
                      .ctx = &count};
    nb_status s = NB_OK;
    double t0 = nb_now();
    for (long done = 0; done < steps && s == NB_OK;) {
        long n = steps - done < chunk ? steps - done : chunk;
        draw(train, &r, n * batch, x, y);
        nb_history h;
        s = nb_fit_data(m, &(nb_dataset){.n = (int)(n * batch), .x_i32 = x, .labels = y}, &fo, &h);
        if (s == NB_OK) {
            if (done == 0) result->first_loss = h.loss[0];
            result->last_loss = h.loss[0];
            done += n;
            if (out) fprintf(out, "step %6ld/%d  loss %.4f  %.1f s\n", done, steps, h.loss[0], nb_now() - t0), fflush(out);
        }
        nb_history_free(&h);
    }
    result->seconds = nb_now() - t0;
    result->step_allocs = count.extra;
    free(x);
    free(y);
    return s;
}

/* ---- sampling ---- */

/* Index drawn from softmax(logits / temperature) over k values. */
static int draw_symbol(const float *logits, int k, float temperature, nb_rng *r)
{
    float top = logits[0], p[WORDS_SYMBOLS];
    for (int j = 1; j < k; j++) top = logits[j] > top ? logits[j] : top;
    double sum = 0;
    for (int j = 0; j < k; j++) sum += p[j] = expf((logits[j] - top) / temperature);
    double u = nb_rng_uniform(r) * sum;
    for (int j = 0; j < k; j++)
        if ((u -= p[j]) < 0) return j;
    return k - 1;
}

nb_status words_sample(nb_model *m, nb_rng *r, float temperature, const char *prefix, char *buf)
{
    int ctx = nb_model_input_width(m);
    size_t len = prefix ? strlen(prefix) : 0;
    if (ctx < 1 || ctx > MAX_CONTEXT || nb_model_output_width(m) != WORDS_SYMBOLS)
        return nb_fail(NB_ERR_ARG, "words_sample: the model maps %d symbols to %d scores; a word model reads at most %d "
                                   "and gives %d", ctx, nb_model_output_width(m), MAX_CONTEXT, WORDS_SYMBOLS);
    if (len > WORDS_MAX_WORD) return nb_fail(NB_ERR_ARG, "words_sample: the prefix is over %d letters", WORDS_MAX_WORD);
    for (size_t i = 0; i < len; i++)
        if (words_symbol(prefix[i]) < 1) return nb_fail(NB_ERR_ARG, "words_sample: the prefix '%s' is not all a-z", prefix);
    if (!(temperature > 0)) return nb_fail(NB_ERR_ARG, "words_sample: temperature must be > 0");
    memcpy(buf, prefix, len);
    int32_t x[MAX_CONTEXT];
    float logits[WORDS_SYMBOLS];
    while (len < WORDS_MAX_WORD) {
        for (int j = 0; j < ctx; j++) {
            long at = (long)len - ctx + j; /* < 0: the '.' before the word */
            x[j] = at < 0 ? 0 : words_symbol(buf[at]);
        }
        nb_status s = nb_predict_data(m, &(nb_dataset){.n = 1, .x_i32 = x}, logits);
        if (s != NB_OK) return s;
        int c = draw_symbol(logits, WORDS_SYMBOLS, temperature, r);
        if (c == 0) break;
        buf[len++] = words_char(c);
    }
    buf[len] = '\0';
    return NB_OK;
}

/* ---- the MLP's step in ops ---- */

/* A parameter of g holding the next n weights of *w. */
static nb_tensor *param_from(nb_graph *g, int ndim, const int *shape, const float **w, const char *name)
{
    nb_tensor *t = nb_set_name(nb_param(g, ndim, shape), name);
    if (t) memcpy(t->data, *w, t->size * sizeof *t->data);
    if (t) *w += t->size;
    return t;
}

nb_graph *words_mlp_step_graph(const nb_model *m, const words_set *set, int batch, float *loss)
{
    if (!m || !set || set->context != WORDS_MLP_CONTEXT || batch < 1 || batch > set->n ||
        nb_model_param_count(m) != 19915) {
        nb_fail(NB_ERR_ARG, "words_mlp_step_graph: needs the MLP and at least %d examples of context %d", batch,
                WORDS_MLP_CONTEXT);
        return NULL;
    }
    nb_graph *g = nb_graph_new();
    if (!g) return NULL;
    const float *w = nb_model_weights(m); /* layer by layer: table, kernel, bias, kernel, bias */
    nb_tensor *ids = nb_set_name(nb_input(g, NB_I32, 2, (int[]){batch, WORDS_MLP_CONTEXT}), "context");
    nb_tensor *next = nb_set_name(nb_input(g, NB_I32, 1, (int[]){batch}), "next");
    nb_tensor *table = param_from(g, 2, (int[]){WORDS_SYMBOLS, 16}, &w, "embedding");
    nb_tensor *w1 = param_from(g, 2, (int[]){3 * 16, 256}, &w, "W1");
    nb_tensor *b1 = param_from(g, 1, (int[]){256}, &w, "b1");
    nb_tensor *w2 = param_from(g, 2, (int[]){256, WORDS_SYMBOLS}, &w, "W2");
    nb_tensor *b2 = param_from(g, 1, (int[]){WORDS_SYMBOLS}, &w, "b2");
    if (ids) nb_input_set(ids, set->x, batch);
    if (next) nb_input_set(next, set->y, batch);
    nb_tensor *e = nb_flatten(g, nb_gather(g, table, ids));                   /* (B, 48) */
    nb_tensor *h = nb_set_name(nb_dense(g, e, w1, b1, NB_TANH), "hidden");   /* (B, 256) */
    nb_tensor *z = nb_set_name(nb_dense(g, h, w2, b2, NB_LINEAR), "logits"); /* (B, 27) */
    nb_tensor *l = nb_set_name(nb_sparse_categorical_crossentropy(g, z, next, true), "loss");
    nb_status s = l ? nb_forward(g) : nb_fail(nb_graph_status(g), "words_mlp_step_graph: %s", nb_graph_error(g));
    if (s == NB_OK) s = nb_backward(g, l);
    if (s != NB_OK) {
        nb_graph_free(g);
        return NULL;
    }
    *loss = l->data[0];
    return g;
}
