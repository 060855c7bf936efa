/* test_examples.c — smoke tests of the example programs, run in-process:
 *   mnist: on a small generated IDX set (digits drawn with the plot font,
 *   jittered and noisy, normalised as MNIST was), train one epoch, save, eval,
 *   and predict a large dark-on-light PNG of a digit; the error paths' exit
 *   codes; Fashion-MNIST class names chosen from the folder's name.
 *   backprop_explained: the loss 0.2288503 and the gradient -0.2045524 at the
 *   true class, and its DOT output. */
#define _GNU_SOURCE /* nftw's FTW_DEPTH / FTW_PHYS */
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <stb_image.h>
#include <stb_image_write.h>

#include "nb_blis.h" /* bli_finalize: release BLIS's pools so a leak check sees only ours */

#include "../examples/backprop_explained/lesson.h"
#include "../examples/mnist/app.h"
#include "../examples/mnist/idx.h"
#include "../examples/mnist/plot.h"
#include "../examples/mnist/preprocess.h"

#define N_TRAIN 300
#define N_TEST 100

static char root[64], data[128], fashion[128];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* char var[] = root/name */
#define PATH(var, name)                                                                                               \
    char var[256];                                                                                                     \
    snprintf(var, sizeof var, "%s/%s", root, name)

/* Digit k drawn with the plot font at `scale`, offset (ox, oy), into a 48x48
 * grey picture (ink 255 on 0) with noise, then normalised like MNIST. */
static void draw_digit(nb_rng *rng, int k, uint8_t *out)
{
    plot_canvas c;
    assert_int_equal(plot_new(&c, 48, 48, (plot_color){0, 0, 0}), NB_OK);
    char text[2] = {(char)('0' + k), 0};
    int scale = 2 + (int)nb_rng_below(rng, 3);
    plot_text(&c, 4 + (int)nb_rng_below(rng, 12), 4 + (int)nb_rng_below(rng, 12), text, scale,
              (plot_color){255, 255, 255});
    uint8_t gray[48 * 48];
    for (int i = 0; i < 48 * 48; i++) {
        float v = c.rgb[3 * i] + 12.0f * nb_rng_normal(rng);
        gray[i] = (uint8_t)fminf(255, fmaxf(0, v));
    }
    plot_free(&c);
    float x[PRE_SIDE * PRE_SIDE];
    assert_int_equal(pre_gray(gray, 48, 48, "digit", PRE_MNIST, x), NB_OK);
    for (int i = 0; i < PRE_SIDE * PRE_SIDE; i++) out[i] = (uint8_t)lrintf(255 * x[i]);
}

static void write_split(const char *dir, const char *prefix, int n, nb_rng *rng)
{
    uint8_t *img = malloc((size_t)n * 784), *lab = malloc((size_t)n);
    assert_non_null(img);
    assert_non_null(lab);
    for (int i = 0; i < n; i++) {
        lab[i] = (uint8_t)(i % 10);
        draw_digit(rng, lab[i], img + (size_t)i * 784);
    }
    char path[256];
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    assert_int_equal(idx_write(path, true, 3, (int[]){n, 28, 28}, img), NB_OK);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, prefix); /* plain, to mix both */
    assert_int_equal(idx_write(path, false, 1, (int[]){n}, lab), NB_OK);
    free(img);
    free(lab);
}

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/nabla_ex_XXXXXX");
    if (!mkdtemp(root)) return -1;
    snprintf(data, sizeof data, "%s/digits", root);
    snprintf(fashion, sizeof fashion, "%s/fashion-mini", root);
    if (mkdir(data, 0755) || mkdir(fashion, 0755)) return -1;
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    write_split(data, "train", N_TRAIN, &rng);
    write_split(data, "t10k", N_TEST, &rng);
    write_split(fashion, "train", 40, &rng);
    write_split(fashion, "t10k", 20, &rng);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Run mnist_main with a NULL-terminated argument list, stdout captured into
 * `captured` (a malloc'ed string the caller frees, or NULL to discard). */
static int run_mnist(char **captured, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, captured);
    argv[argc++] = "mnist";
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 31;) argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    fflush(stdout);
    PATH(capture, "stdout.txt");
    int saved = dup(1), fd = open(capture, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 1);
    close(fd);
    int rc = mnist_main(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    FILE *f = fopen(capture, "r");
    assert_non_null(f);
    char *text = calloc(1, 1 << 16);
    assert_non_null(text);
    size_t len = fread(text, 1, (1 << 16) - 1, f);
    text[len] = '\0';
    fclose(f);
    fputs(text, stdout); /* keep it in the test log */
    if (captured) *captured = text;
    else free(text);
    return rc;
}

static void test_mnist_train_eval_predict(void **state)
{
    (void)state;
    char *out;
    PATH(model, "digits.nb");
    PATH(curves, "curves.png");
    PATH(errors, "errors.png");
    PATH(seven, "seven.png");
    int rc = run_mnist(&out, "train", "--data", data, "--epochs", "1", "--batch", "10", "--lr", "0.005", "--seed",
                       "3", "--model", model, "--plot", curves, "--errors", errors, "--verbose", "2",
                       "--validation-split", "0.1", NULL);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "(MNIST digits)"));
    assert_non_null(strstr(out, "300 training and 100 test images of 28x28"));
    assert_non_null(strstr(out, "confusion matrix"));
    float acc = -1;
    const char *line = strstr(out, "test accuracy: ");
    assert_non_null(line);
    assert_int_equal(sscanf(line, "test accuracy: %f", &acc), 1);
    assert_true(acc >= 0.8f); /* clean, separable glyphs: one epoch suffices */
    free(out);

    /* the saved model: the architecture and the class names */
    nb_model *m = nb_load(model);
    if (!m) fail_msg("nb_load: %s", nb_last_error());
    assert_int_equal(nb_model_input_width(m), 784);
    assert_int_equal(nb_model_output_width(m), 10);
    assert_int_equal(nb_model_class_count(m), 10);
    assert_string_equal(nb_model_class_name(m, 7), "7");
    nb_model_free(m);
    /* both pictures are PNGs of the expected size */
    int w, h, comp;
    assert_true(stbi_info(curves, &w, &h, &comp));
    assert_int_equal(w, 900);
    assert_true(stbi_info(errors, &w, &h, &comp));
    assert_int_equal(w, 8 * 116 + 16);

    /* eval reloads it and gets the same accuracy */
    assert_int_equal(run_mnist(&out, "eval", "--model", model, "--data", data, NULL), 0);
    float acc2 = -1;
    line = strstr(out, "test accuracy: ");
    assert_non_null(line);
    assert_int_equal(sscanf(line, "test accuracy: %f", &acc2), 1);
    assert_float_equal(acc, acc2, 1e-6);
    free(out);

    /* predict: a large 7, dark on a light background, off-centre */
    plot_canvas c;
    assert_int_equal(plot_new(&c, 160, 120, (plot_color){235, 235, 225}), NB_OK);
    plot_text(&c, 20, 10, "7", 12, (plot_color){20, 20, 60});
    assert_int_equal(plot_save_png(&c, seven), NB_OK);
    plot_free(&c);
    assert_int_equal(run_mnist(&out, "predict", "--model", model, seven, NULL), 0);
    char want[300];
    snprintf(want, sizeof want, "%s: 7 ", seven);
    if (!strstr(out, want)) fail_msg("expected the top class 7: %s", out);
    assert_non_null(strstr(out, "%,"));
    free(out);
    /* the same with --flag=VALUE after the operand (getopt_long moves operands last) */
    char model_flag[300];
    snprintf(model_flag, sizeof model_flag, "--model=%s", model);
    assert_int_equal(run_mnist(&out, "predict", seven, model_flag, "--threads=1", NULL), 0);
    if (!strstr(out, want)) fail_msg("expected the top class 7: %s", out);
    free(out);
}

static void test_mnist_fashion_names(void **state)
{
    (void)state;
    PATH(model, "fashion.nb");
    char *out;
    assert_int_equal(run_mnist(&out, "train", "--data", fashion, "--epochs", "1", "--model", model, "--verbose",
                               "0", "--limit", "30", NULL),
                     0);
    assert_non_null(strstr(out, "(Fashion-MNIST)"));
    assert_non_null(strstr(out, "30 training and 20 test images"));
    assert_non_null(strstr(out, "Ankle boot"));
    free(out);
    nb_model *m = nb_load(model);
    assert_non_null(m);
    assert_string_equal(nb_model_class_name(m, 0), "T-shirt/top");
    assert_string_equal(nb_model_class_name(m, 9), "Ankle boot");
    nb_model_free(m);
}

/* --arch cnn: the Keras convnet trains briefly, eval reloads it from the file
 * alone and agrees, and predict feeds it a picture (784 values, as the MLP). */
static void test_mnist_cnn(void **state)
{
    (void)state;
    PATH(model, "cnn.nb");
    PATH(picture, "cnn_seven.png");
    char *out;
    assert_int_equal(run_mnist(&out, "train", "--arch", "cnn", "--data", data, "--limit", "256", "--epochs", "1",
                               "--batch", "16", "--lr", "0.003", "--model", model, "--verbose", "2", NULL),
                     0);
    assert_non_null(strstr(out, "256 training and 100 test images"));
    assert_non_null(strstr(out, "(None, 26, 26, 32)"));
    assert_non_null(strstr(out, "(None, 5, 5, 64)"));
    assert_non_null(strstr(out, "Total params: 34,826"));
    float acc = -1, acc2 = -2;
    const char *line = strstr(out, "test accuracy: ");
    assert_non_null(line);
    assert_int_equal(sscanf(line, "test accuracy: %f", &acc), 1);
    assert_true(acc >= 0.5f); /* one short epoch on clean glyphs */
    free(out);

    nb_model *m = nb_load(model);
    if (!m) fail_msg("nb_load: %s", nb_last_error());
    assert_int_equal(nb_model_layer_count(m), 7);
    assert_string_equal(nb_model_layer_kind(m, 0), "Conv2D");
    assert_string_equal(nb_model_layer_kind(m, 5), "Dropout");
    assert_int_equal(nb_model_input_width(m), 784);
    assert_int_equal(nb_model_param_count(m), 34826);
    nb_model_free(m);

    assert_int_equal(run_mnist(&out, "eval", "--model", model, "--data", data, NULL), 0);
    line = strstr(out, "test accuracy: ");
    assert_non_null(line);
    assert_int_equal(sscanf(line, "test accuracy: %f", &acc2), 1);
    assert_float_equal(acc, acc2, 1e-6); /* inference mode: dropout off in both */
    free(out);

    plot_canvas c;
    assert_int_equal(plot_new(&c, 120, 120, (plot_color){0, 0, 0}), NB_OK);
    plot_text(&c, 30, 10, "7", 12, (plot_color){255, 255, 255});
    assert_int_equal(plot_save_png(&c, picture), NB_OK);
    plot_free(&c);
    assert_int_equal(run_mnist(&out, "predict", "--model", model, picture, NULL), 0);
    assert_non_null(strstr(out, picture));
    assert_non_null(strstr(out, "%,"));
    free(out);
}

static void test_mnist_errors(void **state)
{
    (void)state;
    PATH(missing_dir, "no-such-folder");
    PATH(missing_model, "missing.nb");
    PATH(seven, "seven.png");
    PATH(good_model, "digits.nb");
    PATH(notes, "notes.txt");
    PATH(broken_model, "broken.nb");
    char *help;
    assert_int_equal(run_mnist(&help, "--help", NULL), 0);
    assert_non_null(strstr(help, "mnist predict")); /* the usage, on stdout */
    free(help);
    assert_int_equal(run_mnist(NULL, NULL), 2);
    assert_int_equal(run_mnist(NULL, "fly", NULL), 2);
    assert_int_equal(run_mnist(NULL, "train", "--epochs", "zero", NULL), 2);
    assert_int_equal(run_mnist(NULL, "train", "--epochs", NULL), 2);
    assert_int_equal(run_mnist(NULL, "train", "--arch", "rnn", NULL), 2);
    assert_int_equal(run_mnist(NULL, "eval", "--arch", "cnn", NULL), 2); /* the model file says */
    assert_int_equal(run_mnist(NULL, "train", "--lr", "-1", NULL), 2);
    assert_int_equal(run_mnist(NULL, "train", "--colour", "red", NULL), 2);
    assert_int_equal(run_mnist(NULL, "eval", "--plot", "x.png", NULL), 2); /* a train-only flag */
    assert_int_equal(run_mnist(NULL, "predict", NULL), 2);
    assert_int_equal(run_mnist(NULL, "train", "--epochs=0", NULL), 2);
    assert_int_equal(run_mnist(NULL, "train", "--batch=", NULL), 2);
    assert_int_equal(run_mnist(NULL, "train", "--seed", "-3", NULL), 2);
    assert_int_equal(run_mnist(NULL, "train", "--e", "3", NULL), 2); /* ambiguous: --epochs or --errors */
    assert_int_equal(run_mnist(NULL, "train", "--help=yes", NULL), 2);
    assert_int_equal(run_mnist(NULL, "train", "-x", NULL), 2);
    assert_int_equal(run_mnist(NULL, "eval", "extra", NULL), 2);
    assert_int_equal(run_mnist(NULL, "predict", "--threads=0", "x.png", NULL), 2);
    assert_int_equal(run_mnist(NULL, "train", "--epochs", "zero", NULL), 2); /* a second parse starts afresh */
    assert_int_equal(run_mnist(NULL, "eval", "--help", NULL), 0);
    assert_int_equal(run_mnist(NULL, "train", "--data", missing_dir, NULL), 1);
    assert_int_equal(run_mnist(NULL, "train", "--data", root, NULL), 1); /* a folder without IDX files */
    assert_int_equal(run_mnist(NULL, "eval", "--data", data, "--model", missing_model, NULL), 1);
    assert_int_equal(run_mnist(NULL, "predict", "--model", missing_model, seven, NULL), 1);
    /* a picture that is not one, with a good model */
    FILE *f = fopen(notes, "w");
    assert_non_null(f);
    fputs("not a picture", f);
    fclose(f);
    assert_int_equal(run_mnist(NULL, "predict", "--model", good_model, notes, NULL), 1);
    /* a corrupt data set: labels out of range */
    char dir[200], path[256];
    snprintf(dir, sizeof dir, "%s/broken", root);
    assert_int_equal(mkdir(dir, 0755), 0);
    uint8_t img[2 * 784] = {0}, lab[2] = {1, 12};
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    assert_int_equal(idx_write(path, false, 3, (int[]){2, 28, 28}, img), NB_OK);
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
    assert_int_equal(idx_write(path, false, 3, (int[]){2, 28, 28}, img), NB_OK);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
    assert_int_equal(idx_write(path, false, 1, (int[]){2}, lab), NB_OK);
    assert_int_equal(run_mnist(NULL, "train", "--data", dir, "--model", broken_model, NULL), 1);
    assert_non_null(strstr(nb_last_error(), "label 12 at index 1 is outside [0, 9]"));
}

static void test_backprop_explained(void **state)
{
    (void)state;
    PATH(dot, "lesson.dot");
    PATH(text, "lesson.txt");
    char *argv[] = {"backprop_explained", "--dot", dot, NULL};
    FILE *out = fopen(text, "w+");
    assert_non_null(out);
    assert_int_equal(backprop_main(3, argv, out), 0);
    rewind(out);
    char line[512];
    float loss = 0, grad = 0, worst = 1, conv_diff = 1, conv_fd = 1;
    int found = 0;
    while (fgets(line, sizeof line, out)) {
        if (sscanf(line, "loss = %f, gradient at the true class = %f", &loss, &grad) == 2) found |= 1;
        if (sscanf(line, "nb_gradcheck (h = 1e-3, every parameter): worst relative error %f", &worst) == 1)
            found |= 2;
        if (strstr(line, "By hand: max z = 4.1; log-sum-exp") && strstr(line, "= 4.328850")) found |= 4;
        if (strstr(line, "softmax(z) = [0.1605981, 0.0048496, 0.0293386, 0.7954476, 0.0097660]")) found |= 8;
        /* part 3: the convolution kernel's gradient [[1, 8], [3, 2]] three ways */
        if (strstr(line, "d loss / d K (nabla)       [  1.0,   8.0]")) found |= 16;
        if (sscanf(line, "conv kernel gradient: by hand vs nabla max |diff| %f, nb_gradcheck worst relative error %f",
                   &conv_diff, &conv_fd) == 2)
            found |= 32;
        if (strstr(line, "K[1,0]              3.0000     3.0000     ")) found |= 64;
    }
    fclose(out);
    assert_int_equal(found, 127);
    assert_true(conv_diff < 1e-6);
    assert_true(conv_fd < 1e-3);
    assert_float_equal(loss, 0.2288503f, 6e-8); /* to the float nearest the double-precision value */
    assert_float_equal(grad, -0.2045524f, 2e-7);
    assert_true(worst < 1e-3);
    FILE *f = fopen(dot, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "digraph nabla {\n");
    fclose(f);
    char *bad[] = {"backprop_explained", "--dot", NULL};
    assert_int_equal(backprop_main(2, bad, stdout), 2);
    char *unknown[] = {"backprop_explained", "--dots=x.dot", NULL}, *operand[] = {"backprop_explained", "extra", NULL};
    assert_int_equal(backprop_main(2, unknown, stdout), 2);
    assert_int_equal(backprop_main(2, operand, stdout), 2);
}

int main(void)
{
    nb_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mnist_train_eval_predict),
        cmocka_unit_test(test_mnist_fashion_names),
        cmocka_unit_test(test_mnist_cnn),
        cmocka_unit_test(test_mnist_errors),
        cmocka_unit_test(test_backprop_explained),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    bli_finalize();
    return failed;
}
