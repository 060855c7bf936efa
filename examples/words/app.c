/* app.c — the words example: a character-level model of English words that
 * learns to make up new ones.
 *
 *   words train  [--model mlp|transformer] [--steps N] [--batch B] [--lr 0.001] [--seed 1]
 *                [--threads N] [--model-file words.nb] [--words FILE] [--dot FILE]
 *   words sample [--model-file words.nb] [-n 20] [--temperature 1] [--prefix abc] [--seed 1]
 *
 * Data: Debian's word list (package wamerican), the words of lowercase a-z only,
 * shuffled with a fixed seed and split 90 % / 10 % (data.h). The models are in
 * models.c. */
#include "app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cli.h"
#include "data.h"
#include "models.h"

#define DEFAULT_WORDS "/usr/share/dict/american-english"
#define DEFAULT_MODEL_FILE "words.nb"

#define SYNOPSIS                                                                                           \
    "usage: words train  [--model mlp|transformer] [--steps N] [--batch B] [--lr 0.001] [--seed 1]\n"      \
    "                    [--threads N] [--model-file words.nb] [--words FILE] [--dot FILE]\n"            \
    "       words sample [--model-file words.nb] [-n 20] [--temperature 1] [--prefix LETTERS]\n"        \
    "                    [--seed 1] [--threads N]\n"

static const char USAGE[] =
    SYNOPSIS
    "\n"
    "train   learns the next character of a word from the ones before it, on 90 % of the\n"
    "        word list; reports the mean loss on the other 10 % and saves the model\n"
    "sample  makes up new words with a saved model, one per line\n"
    "\n"
    "--model NAME         mlp: Bengio et al. 2003, 3 characters of context (default);\n"
    "                     transformer: 2 causal attention blocks over 16 characters\n"
    "--steps N            training steps (mlp 20000, transformer 5000)\n"
    "--batch B            examples per step, drawn at random (mlp 32, transformer 64)\n"
    "--lr X               Adam's learning rate (0.001)\n"
    "--seed S             seed of the initial weights and the batches, or of sampling (1)\n"
    "--threads N          threads for the matrix products (1, or $NB_NUM_THREADS)\n"
    "--model-file F       where to save / load the model (words.nb)\n"
    "--words FILE         the word list, one word per line (" DEFAULT_WORDS ")\n"
    "--dot FILE           also write the MLP's graph of one training step (Graphviz DOT)\n"
    "-n N, --number N     how many words to make up (20)\n"
    "--temperature T      divides the scores before the softmax: < 1 safer, > 1 wilder (1)\n"
    "--prefix LETTERS     start every word with these letters\n"
    "\n"
    "Flags take their value as --flag VALUE or --flag=VALUE. Exit status: 0 success, 1 failure,\n"
    "2 bad usage.\n";

typedef struct options {
    words_kind kind;
    int steps, batch, threads, number;
    float lr, temperature;
    unsigned long long seed;
    const char *model_file, *words, *dot, *prefix;
} options;

static int fail(const char *what)
{
    fprintf(stderr, "words: %s\n", what);
    return 1;
}

static int fail_status(void) { return fail(nb_last_error()[0] ? nb_last_error() : "unknown failure"); }

/* ---- arguments ---- */

enum { FOR_TRAIN = 1, FOR_SAMPLE = 2, FOR_ALL = 3 };
static const struct {
    struct option opt;
    int commands;
} OPTIONS[] = {
    {{"help", no_argument, NULL, 'h'}, FOR_ALL},
    {{"model-file", required_argument, NULL, 'f'}, FOR_ALL},
    {{"seed", required_argument, NULL, 's'}, FOR_ALL},
    {{"threads", required_argument, NULL, 't'}, FOR_ALL},
    {{"model", required_argument, NULL, 'm'}, FOR_TRAIN},
    {{"steps", required_argument, NULL, 'S'}, FOR_TRAIN},
    {{"batch", required_argument, NULL, 'b'}, FOR_TRAIN},
    {{"lr", required_argument, NULL, 'r'}, FOR_TRAIN},
    {{"words", required_argument, NULL, 'w'}, FOR_TRAIN},
    {{"dot", required_argument, NULL, 'd'}, FOR_TRAIN},
    {{"number", required_argument, NULL, 'n'}, FOR_SAMPLE},
    {{"temperature", required_argument, NULL, 'T'}, FOR_SAMPLE},
    {{"prefix", required_argument, NULL, 'p'}, FOR_SAMPLE},
};
#define N_OPTIONS (int)(sizeof OPTIONS / sizeof OPTIONS[0])

static int set_option(const cli *c, int opt, options *o)
{
    switch (opt) {
    case 'f': o->model_file = c->value; return 0;
    case 'w': o->words = c->value; return 0;
    case 'd': o->dot = c->value; return 0;
    case 'p': o->prefix = c->value; return 0;
    case 's': return cli_u64(c, &o->seed);
    case 't': return cli_int(c, 1, 64, &o->threads);
    case 'S': return cli_int(c, 1, 100000000, &o->steps);
    case 'b': return cli_int(c, 1, 1 << 16, &o->batch);
    case 'n': return cli_int(c, 1, 1000000, &o->number);
    case 'r': return cli_float(c, 0, 10, 1, &o->lr);
    case 'T': return cli_float(c, 0, 100, 1, &o->temperature);
    case 'm':
        if (!strcmp(c->value, "mlp")) o->kind = WORDS_MLP;
        else if (!strcmp(c->value, "transformer")) o->kind = WORDS_TRANSFORMER;
        else return cli_usage_error(c, "--model is mlp or transformer, got '%s'", c->value);
        return 0;
    default: return 2; /* '?': cli_next has said why */
    }
}

/* getopt_long knows only long options besides -h: spell "-n" as "--number"
 * where it stands as an option (not as the value of the option before it). */
static void spell_out_n(int argc, char **argv)
{
    static char number[] = "--number";
    for (int i = 2; i < argc && strcmp(argv[i], "--"); i++) {
        const char *prev = argv[i - 1];
        bool is_value = false;
        for (int k = 0; k < N_OPTIONS; k++)
            is_value |= OPTIONS[k].opt.has_arg == required_argument && !strncmp(prev, "--", 2) &&
                        !strchr(prev, '=') && !strncmp(prev + 2, OPTIONS[k].opt.name, strlen(prev + 2)) && prev[2];
        if (!is_value && !strcmp(argv[i], "-n")) argv[i] = number;
    }
}

/* Parse argv[1..] (argv[1] is `cmd`) into *o: 0, 2 after a usage error, -1 after --help. */
static int parse_args(const char *cmd, int argc, char **argv, options *o)
{
    *o = (options){.seed = 1, .lr = 0.001f, .temperature = 1.0f, .number = 20, .model_file = DEFAULT_MODEL_FILE,
                   .words = DEFAULT_WORDS, .prefix = ""};
    int mask = !strcmp(cmd, "train") ? FOR_TRAIN : FOR_SAMPLE;
    struct option opts[N_OPTIONS + 1];
    int n = 0;
    for (int i = 0; i < N_OPTIONS; i++)
        if (OPTIONS[i].commands & mask) opts[n++] = OPTIONS[i].opt;
    opts[n] = (struct option){0};
    if (mask == FOR_SAMPLE) spell_out_n(argc, argv);
    cli c;
    cli_begin(&c, "words", cmd, SYNOPSIS, argc - 1, argv + 1, opts);
    for (int opt; (opt = cli_next(&c)) != -1;) {
        if (opt == 'h') {
            fputs(USAGE, stdout);
            return -1;
        }
        int rc = set_option(&c, opt, o);
        if (rc) return rc;
    }
    if (c.next_operand < c.argc) return cli_usage_error(&c, "'%s': unexpected argument for '%s'", c.argv[c.next_operand], cmd);
    for (const char *p = o->prefix; *p; p++)
        if (words_symbol(*p) < 1) return cli_usage_error(&c, "--prefix takes letters a-z, got '%s'", o->prefix);
    if (strlen(o->prefix) >= WORDS_MAX_WORD) return cli_usage_error(&c, "--prefix is longer than %d letters", WORDS_MAX_WORD - 1);
    if (o->dot && o->kind != WORDS_MLP) return cli_usage_error(&c, "--dot draws the mlp's step; use it with --model mlp");
    if (!o->steps) o->steps = o->kind == WORDS_MLP ? 20000 : 5000;
    if (!o->batch) o->batch = o->kind == WORDS_MLP ? 32 : 64;
    return 0;
}

/* ---- train ---- */

/* The examples of words [first, first + count) of w, into *set (malloc'ed x, y). */
static int make_set(const words_list *w, int first, int count, int context, words_set *set)
{
    long n = words_examples(w, first, count, context, NULL, NULL);
    int32_t *x = malloc((size_t)n * (size_t)context * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    if (!x || !y || n > 0x7fffffffL) {
        free(x), free(y);
        return fail("out of memory for the examples");
    }
    words_examples(w, first, count, context, x, y);
    *set = (words_set){.n = n, .context = context, .x = x, .y = y};
    return 0;
}

static void free_set(words_set *s)
{
    free((void *)s->x);
    free((void *)s->y);
    memset(s, 0, sizeof *s);
}

/* Read, shuffle and split the list; print what was read. */
static int load_data(const options *o, words_list *w, words_set *train, words_set *val)
{
    if (words_read(o->words, w) != NB_OK) return fail_status();
    printf("data: %s: %d lines, %d words of a-z; left out %d (capitals, apostrophes, ...); skipped %d non-ASCII, "
           "%d over %d bytes\n", o->words, w->lines, w->n, w->other, w->non_ascii, w->too_long, WORDS_MAX_LINE);
    words_shuffle(w, WORDS_SPLIT_SEED);
    int n_train = words_train_count(w->n), context = words_context(o->kind);
    if (n_train < 1 || n_train == w->n) return fail("the word list needs at least 2 words for a training and a validation part");
    if (make_set(w, 0, n_train, context, train) || make_set(w, n_train, w->n - n_train, context, val)) return 1;
    printf("split: %d training words (%ld examples), %d validation words (%ld examples)\n", n_train, train->n,
           w->n - n_train, val->n);
    return 0;
}

/* Write the MLP's step graph on the first `batch` training examples. */
static int write_dot(const nb_model *m, const words_set *train, int batch, const char *path)
{
    float loss;
    nb_graph *g = words_mlp_step_graph(m, train, batch < train->n ? batch : (int)train->n, &loss);
    if (!g) return fail_status();
    FILE *f = fopen(path, "w");
    nb_status s = f ? nb_graph_dot(g, f, NB_DOT_VALUES | NB_DOT_GRADS) : NB_ERR_IO;
    if (f && fclose(f) != 0) s = NB_ERR_IO;
    nb_graph_free(g);
    if (s != NB_OK) {
        fprintf(stderr, "words: %s: cannot write the graph\n", path);
        return 1;
    }
    printf("graph of one step (loss %.4f) written to %s; render with dot -Tsvg\n", loss, path);
    return 0;
}

static int cmd_train(const options *o)
{
    if (o->threads) nb_set_num_threads(o->threads);
    words_list w = {0};
    words_set train = {0}, val = {0};
    nb_model *m = NULL;
    int rc = load_data(o, &w, &train, &val);
    if (rc) goto done;
    if (!(m = words_build(o->kind, o->seed)) || words_compile(m, o->lr)) {
        rc = fail_status();
        goto done;
    }
    printf("model: %s\n", o->kind == WORDS_MLP ? "mlp (Bengio et al. 2003)" : "transformer (2 pre-LayerNorm blocks)");
    nb_model_summary(m, stdout);
    if (o->dot && (rc = write_dot(m, &train, o->batch, o->dot))) goto done;
    printf("training: %d steps of batch %d, Adam %g, seed %llu, %d thread%s\n", o->steps, o->batch, o->lr, o->seed,
           nb_get_num_threads(), nb_get_num_threads() > 1 ? "s" : "");
    fflush(stdout);
    words_trained t;
    if (words_train(m, &train, o->steps, o->batch, o->seed, stdout, &t)) {
        rc = fail_status();
        goto done;
    }
    printf("trained %d steps in %.2f s: %.0f samples/s, %lu allocations in the steps after the first\n", o->steps,
           t.seconds, (double)o->steps * o->batch / t.seconds, t.step_allocs);
    float loss;
    if (nb_evaluate_data(m, &(nb_dataset){.n = (int)val.n, .x_i32 = val.x, .labels = val.y}, &loss, NULL) ||
        (nb_dist_rank() == 0 && nb_save(m, o->model_file))) { /* under mpirun rank 0 saves */
        rc = fail_status();
        goto done;
    }
    printf("model saved to %s\n", o->model_file);
    printf("validation loss: %.4f nats/char\n", loss);
done:
    nb_model_free(m);
    free_set(&train);
    free_set(&val);
    words_free(&w);
    return rc;
}

/* ---- sample ---- */

static int cmd_sample(const options *o)
{
    if (o->threads) nb_set_num_threads(o->threads);
    nb_model *m = nb_load(o->model_file);
    if (!m) return fail_status();
    int rc = 0;
    if (nb_model_output_width(m) != WORDS_SYMBOLS) {
        fprintf(stderr, "words: %s: the model gives %d scores, not one per symbol (%d); not a words model\n",
                o->model_file, nb_model_output_width(m), WORDS_SYMBOLS);
        rc = 1;
    }
    nb_rng r;
    nb_rng_seed(&r, o->seed);
    char word[WORDS_MAX_WORD + 1];
    for (int i = 0; !rc && i < o->number; i++) {
        if (words_sample(m, &r, o->temperature, o->prefix, word)) rc = fail_status();
        else puts(word);
    }
    nb_model_free(m);
    return rc;
}

int words_main(int argc, char **argv)
{
    int status;
    if (!cli_command("words", SYNOPSIS, USAGE, argc, argv, (const char *const[]){"train", "sample", NULL}, &status))
        return status;
    const char *cmd = argv[1];
    options o;
    int rc = parse_args(cmd, argc, argv, &o);
    if (rc < 0) rc = 0; /* --help */
    else if (!rc) rc = !strcmp(cmd, "train") ? cmd_train(&o) : cmd_sample(&o);
    fflush(stdout);
    return rc;
}
