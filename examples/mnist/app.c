/* app.c — the mnist example: train a network on MNIST or Fashion-MNIST,
 * evaluate it, and classify your own pictures.
 *
 *   mnist train   [--arch mlp|cnn] [--data DIR] [--epochs 5] [--batch 32] [--lr 0.001] [--seed 42]
 *                 [--model mnist.nb] [--plot curves.png] [--errors errors.png]
 *                 [--threads N] [--validation-split 0] [--limit N] [--verbose 0|1|2]
 *   mnist eval    [--model mnist.nb] [--data DIR] [--errors errors.png]
 *   mnist predict [--model mnist.nb] [--threads N] IMAGE...
 *
 * Two models (--arch), both trained with sparse categorical cross-entropy from
 * logits, Adam(0.001), batch 32, 5 epochs:
 *   mlp (default)  the TensorFlow "basic classification" tutorial's: Flatten ->
 *                  Dense(128, relu) -> Dense(10) logits;
 *   cnn            the Keras "simple MNIST convnet": (28, 28, 1) images ->
 *                  Conv2D(32, 3x3, relu) -> MaxPooling2D(2) -> Conv2D(64, 3x3, relu)
 *                  -> MaxPooling2D(2) -> Flatten -> Dropout(0.5) -> Dense(10) logits.
 * eval and predict read which one from the model file. Images stay bytes in
 * memory and are scaled to [0, 1] per batch (nb_dataset.x_u8); either model
 * takes rows of rows x cols values (the CNN sees them as one-channel images). */
#include "app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "../common/cli.h"
#include "idx.h"
#include <nabla/nabla.h>
#include <nabla/nb_dist.h>
#include "plot.h"
#include "preprocess.h"

#define DEFAULT_MODEL "mnist.nb"

static const char *const DIGIT_NAMES[IDX_CLASSES] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
static const char *const FASHION_NAMES[IDX_CLASSES] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                       "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
/* Where to look for the data when neither --data nor NABLA_DATA says. */
static const char *const DATA_DIRS[] = {"./data/mnist", "/usr/share/datasets/mnist", "/usr/share/datasets/fashion-mnist"};
#define N_DATA_DIRS (int)(sizeof DATA_DIRS / sizeof DATA_DIRS[0])

#define SYNOPSIS                                                                                   \
    "usage: mnist train   [--arch mlp|cnn] [--data DIR] [--epochs 5] [--batch 32] [--lr 0.001]\n"      \
    "                     [--seed 42] [--model mnist.nb] [--plot FILE.png] [--errors FILE.png]\n"    \
    "                     [--threads N] [--validation-split 0] [--limit N] [--verbose 0|1|2]\n"      \
    "       mnist eval    [--model mnist.nb] [--data DIR] [--errors FILE.png] [--threads N]\n"       \
    "       mnist predict [--model mnist.nb] [--threads N] IMAGE...\n"

static const char USAGE[] =
    SYNOPSIS
    "\n"
    "train    trains a model (--arch) with Adam on the training set, reports test loss,\n"
    "         accuracy and a confusion matrix, and saves the model\n"
    "eval     reloads a saved model (either kind) and reports the same on the test set\n"
    "predict  prints the top 3 classes of each picture (any size, PNG/JPEG/BMP/...)\n"
    "\n"
    "--arch mlp|cnn        the model: mlp (default) Flatten -> Dense(128, relu) -> Dense(10);\n"
    "                      cnn Conv2D(32, 3x3, relu) -> MaxPooling2D(2) -> Conv2D(64, 3x3, relu)\n"
    "                      -> MaxPooling2D(2) -> Flatten -> Dropout(0.5) -> Dense(10)\n"
    "--data DIR            a folder of IDX files: train-images-idx3-ubyte, train-labels-idx1-ubyte,\n"
    "                      t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally .gz;\n"
    "                      default: $NABLA_DATA, else the first of ./data/mnist,\n"
    "                      /usr/share/datasets/mnist, /usr/share/datasets/fashion-mnist\n"
    "                      (a folder whose name contains \"fashion\" is read as Fashion-MNIST)\n"
    "--epochs N            passes over the training set (5)\n"
    "--batch N             samples per step (32)\n"
    "--lr X                Adam's learning rate (0.001)\n"
    "--seed N              seed for the initial weights and the shuffling (42)\n"
    "--model FILE          where to save / load the model (mnist.nb)\n"
    "--plot FILE.png       draw loss and accuracy per epoch\n"
    "--errors FILE.png     draw misclassified test images with true and predicted classes\n"
    "--threads N           threads for the matrix products (1, or $NB_NUM_THREADS)\n"
    "--validation-split F  hold out the last fraction F of the training set (0: none, as the\n"
    "                      TensorFlow tutorial)\n"
    "--limit N             use only the first N training and N test images (quick runs)\n"
    "--verbose N           0 silent, 1 progress bar, 2 one line per epoch (default: bar on a\n"
    "                      terminal, else one line per epoch)\n"
    "\n"
    "Flags take their value as --flag VALUE or --flag=VALUE. Exit status: 0 success, 1 failure,\n"
    "2 bad usage.\n";

/* Options of every subcommand (each uses its own subset). */
typedef struct options {
    const char *data, *model, *plot, *errors;
    bool cnn; /* --arch cnn */
    int epochs, batch, limit, threads, verbose;
    float lr, split;
    unsigned long long seed;
    char **images; /* predict: the positional arguments (room for argc) */
    int n_images;
} options;

static int fail(const char *what)
{
    fprintf(stderr, "mnist: %s\n", what);
    return 1;
}

static int fail_status(void)
{
    return fail(nb_last_error()[0] ? nb_last_error() : "unknown failure");
}

/* ---- arguments ------------------------------------------------------------ */

/* Every option, and the subcommands that take it. */
enum { FOR_TRAIN = 1, FOR_EVAL = 2, FOR_PREDICT = 4, FOR_ALL = 7 };
static const struct {
    struct option opt;
    int commands;
} OPTIONS[] = {
    {{"help", no_argument, NULL, 'h'}, FOR_ALL},
    {{"model", required_argument, NULL, 'm'}, FOR_ALL},
    {{"threads", required_argument, NULL, 't'}, FOR_ALL},
    {{"data", required_argument, NULL, 'd'}, FOR_TRAIN | FOR_EVAL},
    {{"arch", required_argument, NULL, 'a'}, FOR_TRAIN},
    {{"errors", required_argument, NULL, 'x'}, FOR_TRAIN | FOR_EVAL},
    {{"plot", required_argument, NULL, 'p'}, FOR_TRAIN},
    {{"epochs", required_argument, NULL, 'e'}, FOR_TRAIN},
    {{"batch", required_argument, NULL, 'b'}, FOR_TRAIN},
    {{"limit", required_argument, NULL, 'l'}, FOR_TRAIN},
    {{"verbose", required_argument, NULL, 'v'}, FOR_TRAIN},
    {{"lr", required_argument, NULL, 'r'}, FOR_TRAIN},
    {{"validation-split", required_argument, NULL, 'V'}, FOR_TRAIN},
    {{"seed", required_argument, NULL, 's'}, FOR_TRAIN},
};
#define N_OPTIONS (int)(sizeof OPTIONS / sizeof OPTIONS[0])

/* Store the value of option `opt` (a val of OPTIONS) into *o; 0 or 2. */
static int set_option(const cli *c, int opt, options *o)
{
    switch (opt) {
    case 'm': o->model = c->value; return 0;
    case 'd': o->data = c->value; return 0;
    case 'a':
        if (strcmp(c->value, "mlp") && strcmp(c->value, "cnn"))
            return cli_usage_error(c, "%s needs mlp or cnn, got '%s'", c->flag, c->value);
        o->cnn = !strcmp(c->value, "cnn");
        return 0;
    case 'x': o->errors = c->value; return 0;
    case 'p': o->plot = c->value; return 0;
    case 't': return cli_int(c, 1, 1024, &o->threads);
    case 'e': return cli_int(c, 1, 100000, &o->epochs);
    case 'b': return cli_int(c, 1, 1 << 20, &o->batch);
    case 'l': return cli_int(c, 1, IDX_MAX_COUNT, &o->limit);
    case 'v': return cli_int(c, 0, 2, &o->verbose);
    case 'r': return cli_float(c, 0, 1e3, 1, &o->lr);
    case 'V': return cli_float(c, 0, 1, 0, &o->split);
    case 's': return cli_u64(c, &o->seed);
    default: return 2; /* '?': cli_next has said why */
    }
}

/* Parse argv[1..] (argv[1] is `cmd`) into *o; 0, 2 after a usage error, or -1
 * when --help printed the usage. o->images must have room for argc entries. */
static int parse_args(const char *cmd, int argc, char **argv, options *o)
{
    char **images = o->images;
    *o = (options){.images = images, .model = DEFAULT_MODEL, .epochs = 5, .batch = 32, .lr = 0.001f, .seed = NB_DEFAULT_SEED,
                   .verbose = -1};
    int mask = !strcmp(cmd, "train") ? FOR_TRAIN : !strcmp(cmd, "eval") ? FOR_EVAL : FOR_PREDICT;
    struct option opts[N_OPTIONS + 1];
    int n = 0;
    for (int i = 0; i < N_OPTIONS; i++)
        if (OPTIONS[i].commands & mask) opts[n++] = OPTIONS[i].opt;
    opts[n] = (struct option){0};
    cli c;
    cli_begin(&c, "mnist", cmd, SYNOPSIS, argc - 1, argv + 1, opts);
    for (int opt; (opt = cli_next(&c)) != -1;) {
        if (opt == 'h') {
            fputs(USAGE, stdout);
            return -1;
        }
        int rc = set_option(&c, opt, o);
        if (rc) return rc;
    }
    for (int i = c.next_operand; i < c.argc; i++) {
        if (mask != FOR_PREDICT) return cli_usage_error(&c, "'%s': unexpected argument for '%s'", c.argv[i], cmd);
        o->images[o->n_images++] = c.argv[i];
    }
    if (mask == FOR_PREDICT && o->n_images == 0) return cli_usage_error(&c, "predict needs at least one IMAGE");
    return 0;
}

/* ---- data ----------------------------------------------------------------- */

static bool has_set(const char *dir, const char *prefix)
{
    char stem[64], path[4096];
    snprintf(stem, sizeof stem, "%s-images-idx3-ubyte", prefix);
    return idx_find(dir, stem, path, sizeof path) == NB_OK;
}

/* Pick the data folder holding the `prefix` set (see USAGE); NULL after
 * printing why none fits. */
static const char *find_data(const char *given, const char *prefix)
{
    const char *env = getenv("NABLA_DATA");
    const char *chosen = given ? given : env && env[0] ? env : NULL;
    const char *source = given ? "--data" : "NABLA_DATA";
    if (chosen) {
        struct stat st;
        if (stat(chosen, &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "mnist: %s %s: no such folder\n", source, chosen);
            return NULL;
        }
        if (!has_set(chosen, prefix)) {
            fprintf(stderr, "mnist: %s %s: no %s-images-idx3-ubyte[.gz] there (expected the four MNIST IDX files)\n",
                    source, chosen, prefix);
            return NULL;
        }
        return chosen;
    }
    for (int i = 0; i < N_DATA_DIRS; i++)
        if (has_set(DATA_DIRS[i], prefix)) return DATA_DIRS[i];
    fprintf(stderr,
            "mnist: no data set found (no %s-images-idx3-ubyte[.gz] in ./data/mnist, /usr/share/datasets/mnist or "
            "/usr/share/datasets/fashion-mnist); run scripts/setup.sh to install Debian's Fashion-MNIST, or put the "
            "four MNIST IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
            "t10k-labels-idx1-ubyte.gz) in ./data/mnist, or pass --data DIR / set NABLA_DATA\n",
            prefix);
    return NULL;
}

/* Fashion-MNIST when the folder's path says so. */
static bool is_fashion(const char *dir)
{
    for (const char *p = dir; *p; p++)
        if (!strncasecmp(p, "fashion", 7)) return true;
    return false;
}

static void print_data_source(const char *dir, const char *const *names)
{
    printf("data: %s (%s)\n", dir, names == FASHION_NAMES ? "Fashion-MNIST" : "MNIST digits");
}

/* ---- reports -------------------------------------------------------------- */

/* Class name i of the model, or the digit when the model has none. */
static const char *class_name(const nb_model *m, int i)
{
    const char *s = nb_model_class_name(m, i);
    return s ? s : i >= 0 && i < IDX_CLASSES ? DIGIT_NAMES[i] : "?";
}

/* Predictions for the whole set, then the confusion matrix and (optionally)
 * the misclassified-images picture. */
static int report_test(nb_model *m, const mnist_set *test, const nb_dataset *data, const char *errors_png)
{
    int n = test->n, k = IDX_CLASSES;
    float *logits = malloc(sizeof(float) * (size_t)n * k);
    int *wrong = malloc(sizeof(int) * (size_t)n);
    uint8_t *truth = malloc((size_t)n), *pred = malloc((size_t)n);
    int rc = 0;
    if (!logits || !wrong || !truth || !pred) {
        rc = fail("out of memory for the test predictions");
        goto done;
    }
    if (nb_predict_data(m, data, logits) != NB_OK) {
        rc = fail_status();
        goto done;
    }
    long confusion[IDX_CLASSES][IDX_CLASSES] = {{0}};
    int n_wrong = 0;
    for (int i = 0; i < n; i++) {
        int p = nb_index_of_max(logits + (size_t)i * k, k), t = test->labels[i];
        confusion[t][p]++;
        if (p != t) {
            wrong[n_wrong] = i;
            truth[n_wrong] = (uint8_t)t;
            pred[n_wrong] = (uint8_t)p;
            n_wrong++;
        }
    }
    bool named = nb_model_class_count(m) == k && strcmp(class_name(m, 0), "0") != 0;
    printf("\nconfusion matrix (rows: true class, columns: predicted class)\n%*s", named ? 15 : 3, "");
    for (int j = 0; j < k; j++) printf("%6d", j);
    printf("   recall\n");
    for (int t = 0; t < k; t++) {
        long row = 0;
        for (int j = 0; j < k; j++) row += confusion[t][j];
        if (named) printf("%2d %-12s", t, class_name(m, t));
        else printf("%2d ", t);
        for (int j = 0; j < k; j++) printf("%6ld", confusion[t][j]);
        printf("   %5.1f%%\n", row ? 100.0 * confusion[t][t] / row : 0.0);
    }
    printf("misclassified: %d of %d\n", n_wrong, n);
    if (errors_png) {
        const char *names[IDX_CLASSES];
        for (int j = 0; j < k; j++) names[j] = class_name(m, j);
        if (plot_errors(errors_png, test->images, test->rows, test->cols, wrong, truth, pred, n_wrong, names, n_wrong,
                        n) != NB_OK) {
            rc = fail_status();
            goto done;
        }
        printf("misclassified images drawn to %s\n", errors_png);
    }
done:
    free(logits);
    free(wrong);
    free(truth);
    free(pred);
    return rc;
}

static nb_dataset view_of(const mnist_set *s)
{
    return (nb_dataset){.n = s->n, .x_u8 = s->images, .x_scale = 1.0f / 255.0f, .labels_u8 = s->labels};
}

static void apply_threads(const options *o)
{
    if (o->threads > 0) nb_set_num_threads(o->threads);
}

/* ---- train ---------------------------------------------------------------- */

/* The chosen model, seeded, not compiled; NULL with nb_last_error. */
static nb_model *build_model(bool cnn, int rows, int cols, unsigned long long seed)
{
    nb_model *m = cnn ? nb_sequential_shape(3, (int[]){rows, cols, 1}) : nb_sequential(rows * cols);
    if (!m || nb_model_set_seed(m, seed)) goto fail;
    if (cnn) {
        if (nb_add_layer(m, nb_layer_conv2d(m, 32, 3, 3, 1, NB_PAD_VALID, NB_RELU)) ||
            nb_add_layer(m, nb_layer_max_pool2d(m, 2, 0, NB_PAD_VALID)) ||
            nb_add_layer(m, nb_layer_conv2d(m, 64, 3, 3, 1, NB_PAD_VALID, NB_RELU)) ||
            nb_add_layer(m, nb_layer_max_pool2d(m, 2, 0, NB_PAD_VALID)) || nb_add_layer(m, nb_layer_flatten(m)) ||
            nb_add_layer(m, nb_layer_dropout(m, 0.5f)) || nb_add_dense(m, IDX_CLASSES, NB_LINEAR))
            goto fail;
    } else if (nb_add_dense(m, 128, NB_RELU) || nb_add_dense(m, IDX_CLASSES, NB_LINEAR)) {
        goto fail;
    }
    return m;
fail:
    nb_model_free(m);
    return NULL;
}

static int cmd_train(const options *o)
{
    const char *dir = find_data(o->data, "train");
    if (!dir) return 1;
    if (!has_set(dir, "t10k")) {
        fprintf(stderr, "mnist: %s: no t10k-images-idx3-ubyte[.gz] (the test set) beside the training set\n", dir);
        return 1;
    }
    const char *const *names = is_fashion(dir) ? FASHION_NAMES : DIGIT_NAMES;
    print_data_source(dir, names);
    apply_threads(o);

    mnist_set train = {0}, test = {0};
    nb_model *m = NULL;
    nb_history h = {0};
    int rc = 0;
    if (mnist_load(dir, "train", &train) || mnist_load(dir, "t10k", &test)) {
        rc = fail_status();
        goto done;
    }
    if (train.rows != test.rows || train.cols != test.cols) {
        fprintf(stderr, "mnist: %s: training images are %dx%d but test images %dx%d\n", dir, train.rows, train.cols,
                test.rows, test.cols);
        rc = 1;
        goto done;
    }
    if (o->limit && o->limit < train.n) train.n = o->limit;
    if (o->limit && o->limit < test.n) test.n = o->limit;
    printf("%d training and %d test images of %dx%d\n", train.n, test.n, train.rows, train.cols);

    if (!(m = build_model(o->cnn, train.rows, train.cols, o->seed)) || nb_model_set_class_names(m, names, IDX_CLASSES) ||
        nb_compile(m, &(nb_compile_opts){.loss = NB_SPARSE_CATEGORICAL_CROSSENTROPY,
                                          .from_logits = true,
                                          .optimizer = nb_adam(o->lr)})) {
        rc = fail_status();
        goto done;
    }
    nb_model_summary(m, stdout);
    static const nb_verbosity verbosity[] = {NB_VERBOSE_SILENT, NB_VERBOSE_BAR, NB_VERBOSE_EPOCH};
    nb_dataset data = view_of(&train);
    nb_fit_opts fo = {.epochs = o->epochs,
                      .batch_size = o->batch,
                      .validation_split = o->split,
                      .verbose = o->verbose < 0 ? NB_VERBOSE_AUTO : verbosity[o->verbose]};
    fflush(stdout);
    double t0 = nb_now();
    nb_status s = nb_fit_data(m, &data, &fo, &h);
    double secs = nb_now() - t0;
    if (s) {
        rc = fail_status();
        goto done;
    }
    printf("trained %d epochs in %.2f s: %.3f s/epoch, %.0f samples/s\n", o->epochs, secs, secs / o->epochs,
           (double)h.train_samples * o->epochs / secs);

    nb_dataset tdata = view_of(&test);
    float loss, acc;
    if (nb_evaluate_data(m, &tdata, &loss, &acc)) {
        rc = fail_status();
        goto done;
    }
    printf("test loss: %.4f - test accuracy: %.4f\n", loss, acc);
    if (nb_dist_rank() != 0) goto done; /* under mpirun only rank 0 reports, saves and plots */
    if ((rc = report_test(m, &test, &tdata, o->errors))) goto done;
    if (nb_save(m, o->model)) {
        rc = fail_status();
        goto done;
    }
    printf("model saved to %s\n", o->model);
    if (o->plot) {
        char title[160];
        snprintf(title, sizeof title, "%s: %s, Adam %g, batch %d", names == FASHION_NAMES ? "Fashion-MNIST" : "MNIST",
                 o->cnn ? "convnet" : "784-128-10", o->lr, o->batch);
        if (plot_history(o->plot, title, h.epochs, h.loss, h.accuracy, h.val_loss, h.val_accuracy)) {
            rc = fail_status();
            goto done;
        }
        printf("training curves drawn to %s\n", o->plot);
    }
done:
    nb_history_free(&h);
    nb_model_free(m);
    mnist_set_free(&train);
    mnist_set_free(&test);
    return rc;
}

/* ---- eval ----------------------------------------------------------------- */

/* Load a model and check it takes `width` inputs and gives IDX_CLASSES outputs. */
static nb_model *load_model(const char *path, int width)
{
    nb_model *m = nb_load(path);
    if (!m) {
        fail_status();
        return NULL;
    }
    if (nb_model_input_width(m) != width || nb_model_output_width(m) != IDX_CLASSES) {
        fprintf(stderr, "mnist: %s: the model maps %d inputs to %d outputs; this needs %d inputs and %d classes\n",
                path, nb_model_input_width(m), nb_model_output_width(m), width, IDX_CLASSES);
        nb_model_free(m);
        return NULL;
    }
    return m;
}

/* True when the model's last layer already outputs probabilities. */
static bool outputs_probabilities(const nb_model *m)
{
    return nb_model_layer_activation(m, nb_model_layer_count(m) - 1) == NB_SOFTMAX;
}

static int cmd_eval(const options *o)
{
    const char *dir = find_data(o->data, "t10k");
    if (!dir) return 1;
    apply_threads(o);
    mnist_set test = {0};
    nb_model *m = NULL;
    int rc = 0;
    if (mnist_load(dir, "t10k", &test)) {
        rc = fail_status();
        goto done;
    }
    if (!(m = load_model(o->model, test.rows * test.cols))) {
        rc = 1;
        goto done;
    }
    if (nb_model_class_count(m) == 0) nb_model_set_class_names(m, is_fashion(dir) ? FASHION_NAMES : DIGIT_NAMES, IDX_CLASSES);
    if (nb_model_loss(m) == NB_LOSS_NONE &&
        nb_compile(m, &(nb_compile_opts){.loss = NB_SPARSE_CATEGORICAL_CROSSENTROPY,
                                          .from_logits = !outputs_probabilities(m)})) {
        rc = fail_status();
        goto done;
    }
    printf("data: %s, model: %s\n", dir, o->model);
    nb_dataset data = view_of(&test);
    float loss, acc;
    if (nb_evaluate_data(m, &data, &loss, &acc)) {
        rc = fail_status();
        goto done;
    }
    printf("test loss: %.4f - test accuracy: %.4f (%d images)\n", loss, acc, test.n);
    rc = report_test(m, &test, &data, o->errors);
done:
    nb_model_free(m);
    mnist_set_free(&test);
    return rc;
}

/* ---- predict -------------------------------------------------------------- */

static int cmd_predict(const options *o)
{
    apply_threads(o);
    nb_model *m = load_model(o->model, PRE_SIDE * PRE_SIDE);
    if (!m) return 1;
    /* Place the picture as the model's data set was made (class names tell). */
    pre_layout layout = !strcmp(class_name(m, 0), FASHION_NAMES[0]) ? PRE_FASHION : PRE_MNIST;
    int rc = 0;
    for (int i = 0; i < o->n_images; i++) {
        float x[PRE_SIDE * PRE_SIDE], p[IDX_CLASSES];
        if (pre_image_file(o->images[i], layout, x) || nb_predict(m, x, 1, p)) {
            rc = fail_status();
            continue; /* report every picture */
        }
        if (!outputs_probabilities(m)) nb_softmax_rows(p, 1, IDX_CLASSES);
        printf("%s:", o->images[i]);
        for (int r = 0; r < 3; r++) {
            int best = nb_index_of_max(p, IDX_CLASSES);
            printf("%s %s %.1f%%", r ? "," : "", class_name(m, best), 100.0 * p[best]);
            p[best] = -1;
        }
        printf("\n");
    }
    nb_model_free(m);
    return rc;
}

int mnist_main(int argc, char **argv)
{
    int status;
    if (!cli_command("mnist", SYNOPSIS, USAGE, argc, argv, (const char *const[]){"train", "eval", "predict", NULL},
                     &status))
        return status;
    const char *cmd = argv[1];
    options o = {.images = malloc(sizeof(char *) * (size_t)argc)};
    if (!o.images) return fail("out of memory");
    int rc = parse_args(cmd, argc, argv, &o);
    if (rc < 0) rc = 0; /* --help */
    else if (!rc) {
        if (!strcmp(cmd, "train")) rc = cmd_train(&o);
        else if (!strcmp(cmd, "eval")) rc = cmd_eval(&o);
        else rc = cmd_predict(&o);
    }
    free(o.images);
    fflush(stdout);
    return rc;
}
