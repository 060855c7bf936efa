/* softmax_lab — the Keras softmax lab in C: four 2-D blobs, two ways to end a
 * classifier.
 *
 *   "standard":  Dense(25, relu) -> Dense(15, relu) -> Dense(4, softmax),
 *                loss from probabilities (SparseCategoricalCrossentropy())
 *   "preferred": the same with a linear last layer and the loss from logits
 *                (SparseCategoricalCrossentropy(from_logits=True)), which is
 *                numerically more stable; apply softmax afterwards for
 *                probabilities.
 *
 * Data: 2000 points around the centres [-5, 2], [-2, -2], [1, 2], [5, -2]
 * with standard deviation 1 (scikit-learn's make_blobs), drawn from nb_rng.
 *
 *   softmax_lab [--epochs 10] [--seed 30] [--verbose 0|1|2] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nabla/nabla.h>
#include "../common/cli.h"

#define CLASSES 4
#define N_TRAIN 2000
#define N_TEST 1000

static const float CENTRES[CLASSES][2] = {{-5, 2}, {-2, -2}, {1, 2}, {5, -2}};

/* n points, class i % 4 for point i, at its centre plus N(0, 1) noise. */
static void make_blobs(nb_rng *rng, int n, float *x, int32_t *y)
{
    for (int i = 0; i < n; i++) {
        y[i] = i % CLASSES;
        x[2 * i] = CENTRES[y[i]][0] + nb_rng_normal(rng);
        x[2 * i + 1] = CENTRES[y[i]][1] + nb_rng_normal(rng);
    }
}

/* Build, compile and train one of the two models; NULL after printing why. */
static nb_model *train(const char *name, bool preferred, const float *x, const int32_t *y, int epochs,
                       unsigned long long seed, nb_verbosity verbose)
{
    printf("\n== the %s model: last layer %s, loss from %s ==\n", name, preferred ? "linear" : "softmax",
           preferred ? "logits" : "probabilities");
    nb_model *m = nb_sequential(2);
    if (!m || nb_model_set_seed(m, seed) || nb_add_dense(m, 25, NB_RELU) || nb_add_dense(m, 15, NB_RELU) ||
        nb_add_dense(m, CLASSES, preferred ? NB_LINEAR : NB_SOFTMAX) ||
        nb_compile(m, &(nb_compile_opts){.loss = NB_SPARSE_CATEGORICAL_CROSSENTROPY,
                                          .from_logits = preferred,
                                          .optimizer = nb_adam(0.001f)}) ||
        nb_fit(m, x, y, N_TRAIN, &(nb_fit_opts){.epochs = epochs, .verbose = verbose}, NULL)) {
        fprintf(stderr, "softmax_lab: %s\n", nb_last_error());
        nb_model_free(m);
        return NULL;
    }
    return m;
}

static void print_row(const float *v)
{
    printf("[");
    for (int j = 0; j < CLASSES; j++) printf("%s%9.5f", j ? " " : "", v[j]);
    printf("]");
}

/* Accuracy on the training and the test points; prints the first rows. */
static int report(nb_model *m, const float *x, const int32_t *y, const float *xt, const int32_t *yt, bool logits)
{
    float out[5 * CLASSES], loss, acc, test_acc;
    if (nb_evaluate(m, x, y, N_TRAIN, &loss, &acc) || nb_evaluate(m, xt, yt, N_TEST, NULL, &test_acc) ||
        nb_predict(m, x, 5, out)) {
        fprintf(stderr, "softmax_lab: %s\n", nb_last_error());
        return 1;
    }
    printf("training loss %.4f, training accuracy %.4f, test accuracy %.4f (%d new points)\n", loss, acc, test_acc,
           N_TEST);
    float lo = out[0], hi = out[0];
    for (int i = 0; i < 5 * CLASSES; i++) lo = fminf(lo, out[i]), hi = fmaxf(hi, out[i]);
    printf("first five outputs (%s); largest value %.5f, smallest value %.5f:\n",
           logits ? "logits, not probabilities" : "probabilities", hi, lo);
    for (int i = 0; i < 5; i++) {
        printf("  ");
        print_row(out + i * CLASSES);
        printf(", category: %d (true %d)\n", nb_index_of_max(out + i * CLASSES, CLASSES), y[i]);
    }
    if (logits) {
        nb_softmax_rows(out, 5, CLASSES);
        printf("their softmax, the probabilities:\n");
        for (int i = 0; i < 5; i++) {
            float sum = 0;
            for (int j = 0; j < CLASSES; j++) sum += out[i * CLASSES + j];
            printf("  ");
            print_row(out + i * CLASSES);
            printf(", sum %.5f\n", sum);
        }
    }
    return 0;
}

static const char SYNOPSIS[] = "usage: softmax_lab [--epochs 10] [--seed 30] [--verbose 0|1|2]\n";

int main(int argc, char **argv)
{
    int epochs = 10, verbose = -1;
    unsigned long long seed = 30;
    static const struct option opts[] = {{"epochs", required_argument, NULL, 'e'},
                                         {"seed", required_argument, NULL, 's'},
                                         {"verbose", required_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    cli c;
    cli_begin(&c, "softmax_lab", NULL, SYNOPSIS, argc, argv, opts);
    for (int opt; (opt = cli_next(&c)) != -1;) {
        int rc = 0;
        switch (opt) {
        case 'e': rc = cli_int(&c, 1, 100000, &epochs); break;
        case 's': rc = cli_u64(&c, &seed); break;
        case 'v': rc = cli_int(&c, 0, 2, &verbose); break;
        case 'h': fputs(SYNOPSIS, stdout); return 0;
        default: return 2; /* cli_next has said why */
        }
        if (rc) return rc;
    }
    if (c.next_operand < c.argc) return cli_usage_error(&c, "unexpected argument '%s'", c.argv[c.next_operand]);
    static const nb_verbosity levels[] = {NB_VERBOSE_SILENT, NB_VERBOSE_BAR, NB_VERBOSE_EPOCH};
    nb_verbosity vb = verbose < 0 ? NB_VERBOSE_AUTO : levels[verbose];

    static float x[2 * N_TRAIN], xt[2 * N_TEST];
    static int32_t y[N_TRAIN], yt[N_TEST];
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    make_blobs(&rng, N_TRAIN, x, y);
    make_blobs(&rng, N_TEST, xt, yt);
    printf("%d training points in 4 blobs around (-5, 2), (-2, -2), (1, 2), (5, -2), std 1; seed %llu\n", N_TRAIN,
           seed);

    int rc = 1;
    nb_model *standard = train("standard", false, x, y, epochs, seed, vb), *preferred = NULL;
    if (standard && !report(standard, x, y, xt, yt, false) &&
        (preferred = train("preferred", true, x, y, epochs, seed, vb)) && !report(preferred, x, y, xt, yt, true)) {
        printf("\nWith the same seed the two models train alike: as in Keras, a loss given the output\n"
               "of a softmax layer reads that layer's logits instead of the clipped probabilities.\n"
               "The difference is what predict returns: probabilities, or logits you pass to softmax.\n");
        rc = 0;
    }
    nb_model_free(standard);
    nb_model_free(preferred);
    return rc;
}
