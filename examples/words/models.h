/* models.h — the words example's two models, their training loop and sampling.
 *
 *   MLP (Bengio et al. 2003): 3 previous characters -> Embedding(27, 16) ->
 *       Flatten -> Dense(256, tanh) -> Dense(27) logits.            19 915 weights
 *   Transformer: 16 previous characters -> Embedding(27, 64) + learned positions
 *       -> 2 pre-LayerNorm blocks (causal 4-head attention, GELU MLP 256) ->
 *       LayerNorm -> the last position -> Dense(27) logits.        104 603 weights
 *
 * Both output logits over the 27 symbols of data.h and train with sparse
 * categorical cross-entropy from logits and Adam. Errors: NULL or an nb_status,
 * with nb_last_error() saying why. */
#ifndef WORDS_MODELS_H
#define WORDS_MODELS_H

#include <stdint.h>
#include <stdio.h>

#include <nabla/nabla.h>

#define WORDS_MLP_CONTEXT 3
#define WORDS_TRANSFORMER_CONTEXT 16
#define WORDS_MAX_WORD 64 /* sampling stops a word at this many characters */

typedef enum words_kind { WORDS_MLP, WORDS_TRANSFORMER } words_kind;

/* The characters of context a model of this kind reads. */
int words_context(words_kind kind);

/* A new, uncompiled model of the kind, its weights drawn from `seed`. NULL with
 * nb_last_error on failure. Free with nb_model_free. */
nb_model *words_build(words_kind kind, uint64_t seed);

/* Compile for training: sparse categorical cross-entropy from logits, Adam(lr)
 * (Keras's form, epsilon 1e-7). */
nb_status words_compile(nb_model *m, float lr);

/* Training examples: n rows of `context` symbols and n next symbols (borrowed). */
typedef struct words_set {
    long n;
    int context;
    const int32_t *x; /* (n, context) */
    const int32_t *y; /* (n) */
} words_set;

/* What words_train measured. */
typedef struct words_trained {
    double first_loss;       /* mean training loss of the first progress interval */
    double last_loss;        /* ... and of the last */
    double seconds;          /* wall time of the steps (drawing the batches included) */
    unsigned long step_allocs; /* allocations made by steps after the first of each nb_fit call */
} words_trained;

/* Train for `steps` steps of `batch` examples drawn uniformly with replacement
 * from `train` with an nb_rng seeded from `seed`. The draws of up to a chunk of
 * steps are gathered into one buffer and trained by one nb_fit call (epochs 1,
 * no shuffling), so a step costs a forward, a backward and an Adam update and
 * allocates nothing. Prints a progress line per tenth of the steps to `out`
 * (NULL: silent). NB_ERR_NOMEM, or nb_fit's status. */
nb_status words_train(nb_model *m, const words_set *train, int steps, int batch, uint64_t seed, FILE *out,
                      words_trained *result);

/* Make up one word: start from `prefix` (a-z, may be ""), then draw each next
 * character from softmax(logits / temperature) with r until '.' or
 * WORDS_MAX_WORD characters. Writes the word (prefix included) NUL-terminated to
 * buf (WORDS_MAX_WORD + 1 bytes). NB_ERR_ARG for a bad prefix; nb_predict's status. */
nb_status words_sample(nb_model *m, nb_rng *r, float temperature, const char *prefix, char *buf);

/* The MLP's training step built directly from ops on a graph of its own, with
 * the model's current weights and the first `batch` examples of `set`: forward
 * and backward are run, so the graph holds values and gradients (for
 * nb_graph_dot). *loss receives the step's loss. NULL with nb_last_error. The
 * caller frees the graph. */
nb_graph *words_mlp_step_graph(const nb_model *m, const words_set *set, int batch, float *loss);

#endif
