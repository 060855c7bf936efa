/* test_words.c — the words example: reading and checking the word list,
 * shuffling and splitting, examples with '.' padding, the two models' training
 * (the loss falls, steps allocate nothing), the MLP's step graph against the
 * model, deterministic sampling, and the program's exit statuses. */
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "../examples/words/app.h"
#include "../examples/words/data.h"
#include "../examples/words/models.h"
#include "tmpdir.h"

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* A list of n made-up words of consonant-vowel syllables (learnable patterns). */
static void write_syllable_list(const char *path, int n)
{
    static const char cons[] = "bdklmnprst", vow[] = "aeiou";
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    nb_rng r;
    nb_rng_seed(&r, 5);
    for (int i = 0; i < n; i++) {
        int syl = 1 + (int)nb_rng_below(&r, 3);
        for (int s = 0; s < syl; s++) fprintf(f, "%c%c", cons[nb_rng_below(&r, 10)], vow[nb_rng_below(&r, 5)]);
        if (nb_rng_below(&r, 2)) fputc('s', f);
        fputc('\n', f);
    }
    assert_int_equal(fclose(f), 0);
}

/* Run words_main with a NULL-terminated argument list; stdout captured into
 * *captured (malloc'ed; NULL to discard). */
static int run_words(char **captured, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, captured);
    argv[argc++] = "words";
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 31;) argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    fflush(stdout);
    const char *capture = at("stdout.txt");
    int saved = dup(1), fd = open(capture, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 1);
    close(fd);
    int rc = words_main(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    FILE *f = fopen(capture, "r");
    assert_non_null(f);
    char *text = calloc(1, 1 << 16);
    assert_non_null(text);
    size_t len = fread(text, 1, (1 << 16) - 1, f);
    fclose(f);
    text[len] = '\0';
    fputs(text, stdout); /* keep it in the test log */
    if (captured) *captured = text;
    else free(text);
    return rc;
}

static void test_symbols(void **state)
{
    (void)state;
    assert_int_equal(words_symbol('.'), 0);
    assert_int_equal(words_symbol('a'), 1);
    assert_int_equal(words_symbol('z'), 26);
    assert_int_equal(words_symbol('A'), -1);
    assert_int_equal(words_symbol('\''), -1);
    for (int s = 0; s < WORDS_SYMBOLS; s++) assert_int_equal(words_symbol(words_char(s)), s);
}

static void test_read_filters_and_counts(void **state)
{
    (void)state;
    char text[256];
    char long_line[WORDS_MAX_LINE + 8];
    memset(long_line, 'a', WORDS_MAX_LINE + 1);
    long_line[WORDS_MAX_LINE + 1] = '\0';
    int len = snprintf(text, sizeof text, "cat\nDog\nit's\ncaf\xc3\xa9\n%s\n\nzebra\r\nox", long_line);
    write_file(at("list"), text, (size_t)len);
    words_list w;
    assert_int_equal(words_read(at("list"), &w), NB_OK);
    assert_int_equal(w.lines, 8);
    assert_int_equal(w.n, 3);
    assert_int_equal(w.non_ascii, 1);
    assert_int_equal(w.too_long, 1);
    assert_int_equal(w.other, 3); /* Dog, it's, the empty line */
    assert_string_equal(words_at(&w, 0), "cat");
    assert_string_equal(words_at(&w, 1), "zebra");
    assert_string_equal(words_at(&w, 2), "ox");
    words_free(&w);
    /* exactly WORDS_MAX_LINE letters is kept */
    long_line[WORDS_MAX_LINE] = '\n';
    write_file(at("list64"), long_line, WORDS_MAX_LINE + 1);
    assert_int_equal(words_read(at("list64"), &w), NB_OK);
    assert_int_equal(w.n, 1);
    assert_int_equal((int)strlen(words_at(&w, 0)), WORDS_MAX_LINE);
    words_free(&w);
}

static void test_read_errors(void **state)
{
    (void)state;
    words_list w;
    assert_int_equal(words_read(at("absent"), &w), NB_ERR_IO);
    assert_non_null(strstr(nb_last_error(), "absent"));
    assert_null(w.text);
    write_file(at("empty"), "", 0);
    assert_int_equal(words_read(at("empty"), &w), NB_ERR_FORMAT);
    assert_non_null(strstr(nb_last_error(), "no words"));
    write_file(at("capitals"), "Alice\nBob\n", 10);
    assert_int_equal(words_read(at("capitals"), &w), NB_ERR_FORMAT);
    assert_null(w.start);
    /* the program: exit status 1 and a "words: ..." line */
    assert_int_equal(run_words(NULL, "train", "--words", at("absent"), NULL), 1);
    assert_int_equal(run_words(NULL, "train", "--words", at("empty"), NULL), 1);
}

static void test_shuffle_deterministic(void **state)
{
    (void)state;
    write_syllable_list(at("syl"), 200);
    words_list a, b;
    assert_int_equal(words_read(at("syl"), &a), NB_OK);
    assert_int_equal(words_read(at("syl"), &b), NB_OK);
    int32_t *orig = malloc(sizeof(int32_t) * (size_t)a.n);
    memcpy(orig, a.start, sizeof(int32_t) * (size_t)a.n);
    words_shuffle(&a, WORDS_SPLIT_SEED);
    words_shuffle(&b, WORDS_SPLIT_SEED);
    assert_memory_equal(a.start, b.start, sizeof(int32_t) * (size_t)a.n);
    int moved = 0;
    long sum_a = 0, sum_o = 0;
    for (int i = 0; i < a.n; i++) moved += a.start[i] != orig[i], sum_a += a.start[i], sum_o += orig[i];
    assert_true(moved > a.n / 2);
    assert_int_equal(sum_a, sum_o); /* a permutation */
    words_shuffle(&b, 7);
    assert_memory_not_equal(a.start, b.start, sizeof(int32_t) * (size_t)a.n);
    assert_int_equal(words_train_count(200), 180);
    assert_int_equal(words_train_count(63875), 57487);
    free(orig);
    words_free(&a);
    words_free(&b);
}

static void test_examples_padding(void **state)
{
    (void)state;
    write_file(at("two"), "cat\nox\n", 7);
    words_list w;
    assert_int_equal(words_read(at("two"), &w), NB_OK);
    assert_int_equal(words_examples(&w, 0, 2, 3, NULL, NULL), 7);
    int32_t x[7 * 3], y[7];
    assert_int_equal(words_examples(&w, 0, 2, 3, x, y), 7);
    /* ...->c  ..c->a  .ca->t  cat->.  ...->o  ..o->x  .ox->. */
    static const int32_t ex[7 * 3] = {0, 0, 0, 0, 0, 3, 0, 3, 1, 3, 1, 20, 0, 0, 0, 0, 0, 15, 0, 15, 24};
    static const int32_t ey[7] = {3, 1, 20, 0, 15, 24, 0};
    assert_memory_equal(x, ex, sizeof ex);
    assert_memory_equal(y, ey, sizeof ey);
    /* a context longer than the word: all padding before it */
    int32_t x16[3 * 16], y16[3];
    assert_int_equal(words_examples(&w, 1, 1, 16, x16, y16), 3);
    for (int j = 0; j < 14; j++) assert_int_equal(x16[2 * 16 + j], 0);
    assert_int_equal(x16[2 * 16 + 14], 15);
    assert_int_equal(x16[2 * 16 + 15], 24);
    assert_int_equal(y16[2], 0);
    words_free(&w);
}

/* The training examples of the syllable list for a model of `kind`. */
static words_set syllable_set(words_kind kind, int32_t **x, int32_t **y)
{
    write_syllable_list(at("syl"), 400);
    words_list w;
    assert_int_equal(words_read(at("syl"), &w), NB_OK);
    int c = words_context(kind);
    long n = words_examples(&w, 0, w.n, c, NULL, NULL);
    *x = malloc(sizeof(int32_t) * (size_t)(n * c));
    *y = malloc(sizeof(int32_t) * (size_t)n);
    words_examples(&w, 0, w.n, c, *x, *y);
    words_free(&w);
    return (words_set){.n = n, .context = c, .x = *x, .y = *y};
}

static void check_training(words_kind kind, int steps, int batch)
{
    int32_t *x, *y;
    words_set set = syllable_set(kind, &x, &y);
    nb_model *m = words_build(kind, 3);
    assert_non_null(m);
    assert_int_equal(nb_model_param_count(m), kind == WORDS_MLP ? 19915 : 104603);
    assert_int_equal(words_compile(m, 3e-3f), NB_OK);
    nb_dataset probe = {.n = 512, .x_i32 = x, .labels = y};
    float before, after;
    assert_int_equal(nb_evaluate_data(m, &probe, &before, NULL), NB_OK);
    words_trained t;
    assert_int_equal(words_train(m, &set, steps, batch, 1, stdout, &t), NB_OK);
    assert_int_equal(nb_evaluate_data(m, &probe, &after, NULL), NB_OK);
    printf("loss before %.4f after %.4f; training loss first tenth %.4f, last %.4f\n", before, after, t.first_loss,
           t.last_loss);
    assert_true(before > 2.8f);                  /* about ln 27 = 3.30 at the start */
    assert_true(after < before - 1.0f);          /* the syllables are easy to learn */
    assert_true(t.last_loss < t.first_loss - 0.3);
    assert_int_equal(t.step_allocs, 0);
    nb_model_free(m);
    free(x);
    free(y);
}

static void test_mlp_learns(void **state)
{
    (void)state;
    check_training(WORDS_MLP, 400, 32);
}

static void test_transformer_learns(void **state)
{
    (void)state;
    check_training(WORDS_TRANSFORMER, 150, 32);
}

/* The hand-built graph of one MLP step computes the model's own loss. */
static void test_step_graph_matches_model(void **state)
{
    (void)state;
    int32_t *x, *y;
    words_set set = syllable_set(WORDS_MLP, &x, &y);
    nb_model *m = words_build(WORDS_MLP, 9);
    assert_int_equal(words_compile(m, 1e-3f), NB_OK);
    float graph_loss, model_loss;
    nb_graph *g = words_mlp_step_graph(m, &set, 20, &graph_loss);
    assert_non_null(g);
    assert_int_equal(nb_evaluate_data(m, &(nb_dataset){.n = 20, .x_i32 = x, .labels = y}, &model_loss, NULL), NB_OK);
    assert_float_equal(graph_loss, model_loss, 1e-5);
    FILE *f = fopen(at("step.dot"), "w");
    assert_int_equal(nb_graph_dot(g, f, NB_DOT_VALUES | NB_DOT_GRADS), NB_OK);
    fclose(f);
    nb_graph_free(g);
    assert_null(words_mlp_step_graph(m, &set, 0, &graph_loss));
    nb_model_free(m);
    free(x);
    free(y);
}

static void test_train_and_sample_program(void **state)
{
    (void)state;
    write_syllable_list(at("syl"), 300);
    char *out;
    assert_int_equal(run_words(&out, "train", "--words", at("syl"), "--steps", "200", "--seed", "4", "--model-file",
                               at("w.nb"), "--dot", at("g.dot"), NULL), 0);
    const char *last = strstr(out, "validation loss: ");
    assert_non_null(last);
    float v;
    assert_int_equal(sscanf(last, "validation loss: %f nats/char\n", &v), 1);
    assert_true(v > 0.5f && v < 3.0f);
    assert_string_equal(last + strcspn(last, "\n"), "\n"); /* the last line */
    free(out);
    FILE *f = fopen(at("g.dot"), "r");
    char head[16] = {0};
    assert_non_null(f);
    assert_true(fread(head, 1, 7, f) == 7);
    fclose(f);
    assert_string_equal(head, "digraph");
    /* sampling: the same seed gives the same words; the prefix starts each */
    char *s1, *s2, *s3;
    assert_int_equal(run_words(&s1, "sample", "--model-file", at("w.nb"), "-n", "8", "--seed", "11", NULL), 0);
    assert_int_equal(run_words(&s2, "sample", "--model-file", at("w.nb"), "--seed=11", "-n", "8", NULL), 0);
    assert_string_equal(s1, s2);
    int lines = 0;
    for (const char *p = s1; *p; p++) {
        lines += *p == '\n';
        assert_true(*p == '\n' || (*p >= 'a' && *p <= 'z'));
    }
    assert_int_equal(lines, 8);
    assert_int_equal(run_words(&s3, "sample", "--model-file", at("w.nb"), "-n", "5", "--prefix", "ka", "--temperature",
                               "0.5", NULL), 0);
    for (const char *p = s3; *p; p += strcspn(p, "\n") + 1) assert_int_equal(strncmp(p, "ka", 2), 0);
    free(s1), free(s2), free(s3);
    assert_int_equal(run_words(NULL, "sample", "--model-file", at("absent.nb"), NULL), 1);
}

static void test_bad_flags(void **state)
{
    (void)state;
    assert_int_equal(run_words(NULL, NULL), 2);
    assert_int_equal(run_words(NULL, "fly", NULL), 2);
    assert_int_equal(run_words(NULL, "train", "--steps", "0", NULL), 2);
    assert_int_equal(run_words(NULL, "train", "--steps", "12x", NULL), 2);
    assert_int_equal(run_words(NULL, "train", "--model", "cnn", NULL), 2);
    assert_int_equal(run_words(NULL, "train", "--lr", "abc", NULL), 2);
    assert_int_equal(run_words(NULL, "train", "--batch", NULL), 2);
    assert_int_equal(run_words(NULL, "train", "--model", "transformer", "--dot", "x.dot", NULL), 2);
    assert_int_equal(run_words(NULL, "train", "--nope", NULL), 2);
    assert_int_equal(run_words(NULL, "train", "extra", NULL), 2);
    assert_int_equal(run_words(NULL, "train", "--prefix", "ab", NULL), 2); /* a sample flag */
    assert_int_equal(run_words(NULL, "sample", "--prefix", "Ab", NULL), 2);
    assert_int_equal(run_words(NULL, "sample", "--temperature", "0", NULL), 2);
    assert_int_equal(run_words(NULL, "sample", "-n", "0", NULL), 2);
    assert_int_equal(run_words(NULL, "sample", "-x", NULL), 2);
    assert_int_equal(run_words(NULL, "--help", NULL), 0);
    assert_int_equal(run_words(NULL, "sample", "--help", NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_symbols),
        cmocka_unit_test(test_read_filters_and_counts),
        cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_shuffle_deterministic),
        cmocka_unit_test(test_examples_padding),
        cmocka_unit_test(test_mlp_learns),
        cmocka_unit_test(test_transformer_learns),
        cmocka_unit_test(test_step_graph_matches_model),
        cmocka_unit_test(test_train_and_sample_program),
        cmocka_unit_test(test_bad_flags),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
