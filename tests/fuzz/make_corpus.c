/* make_corpus.c — writes the fuzzers' seed corpus with nabla's own writers:
 *   make_corpus DIR     (DIR/idx, DIR/model, DIR/image must exist)
 * idx:   a 3-image 4x5 file and its labels, each plain and gzip-wrapped, plus a
 *        real .gz stream the fuzzer mutates as raw bytes (mode byte first, see
 *        fuzz_idx.c);
 * model: tiny Dense models from nb_save: uncompiled with class names, and
 *        compiled with Adam / SGD after one training step (so the optimizer
 *        state is stored), each with and without the CRC fix-up mode byte;
 * image: a 12x12 stroke as grey PNG, grey+alpha PNG, RGB BMP and binary PGM. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image_write.h>

#include "../../examples/mnist/idx.h"

static const char *dir;

static void fail(const char *what)
{
    fprintf(stderr, "make_corpus: %s: %s\n", what, nb_last_error());
    exit(1);
}

static char *path_of(const char *sub, const char *name)
{
    static char buf[8][1024]; /* a few results may be alive at once */
    static int k;
    k = (k + 1) & 7;
    snprintf(buf[k], sizeof buf[k], "%s/%s/%s", dir, sub, name);
    return buf[k];
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail(path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) fail(path);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Write mode byte + the contents of file src as DIR/sub/name. */
static void seed_from(const char *src, const char *sub, const char *name, uint8_t mode)
{
    size_t n;
    uint8_t *b = slurp(src, &n);
    FILE *f = fopen(path_of(sub, name), "wb");
    if (!f || fwrite(&mode, 1, 1, f) != 1 || fwrite(b, 1, n, f) != n || fclose(f) != 0) fail(name);
    free(b);
}

static void idx_seeds(void)
{
    uint8_t px[3 * 4 * 5], lab[3] = {0, 7, 9};
    for (int i = 0; i < (int)sizeof px; i++) px[i] = (uint8_t)(i * 29);
    char img[1024], lbl[1024];
    snprintf(img, sizeof img, "%s", path_of("idx", "tmp-images"));
    snprintf(lbl, sizeof lbl, "%s", path_of("idx", "tmp-labels"));
    if (idx_write(img, false, 3, (int[]){3, 4, 5}, px)) fail("idx images");
    seed_from(img, "idx", "images_plain", 0);
    seed_from(img, "idx", "images_gzwrap", 2);
    if (idx_write(img, true, 3, (int[]){3, 4, 5}, px)) fail("idx images gz");
    seed_from(img, "idx", "images_gzraw", 0);
    remove(img);
    if (idx_write(lbl, false, 1, (int[]){3}, lab)) fail("idx labels");
    seed_from(lbl, "idx", "labels_plain", 1);
    seed_from(lbl, "idx", "labels_gzwrap", 3);
    if (idx_write(lbl, true, 1, (int[]){3}, lab)) fail("idx labels gz");
    seed_from(lbl, "idx", "labels_gzraw", 1);
    remove(lbl);
}

static void model_seed(const char *name, nb_model *m)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path_of("model", "tmp.nb"));
    if (nb_save(m, tmp)) fail("nb_save");
    char raw[64], fixed[64];
    snprintf(raw, sizeof raw, "%s_raw", name);
    snprintf(fixed, sizeof fixed, "%s_fixcrc", name);
    seed_from(tmp, "model", raw, 0);
    seed_from(tmp, "model", fixed, 1);
    remove(tmp);
    nb_model_free(m);
}

static nb_model *tiny(int softmax_last)
{
    nb_model *m = nb_sequential(4);
    if (!m || nb_add_dense(m, 3, NB_RELU) || nb_add_dense(m, 2, softmax_last ? NB_SOFTMAX : NB_LINEAR)) fail("model");
    return m;
}

static void model_seeds(void)
{
    nb_model *m = tiny(0);
    if (nb_model_set_class_names(m, (const char *[]){"zero", "one"}, 2)) fail("class names");
    model_seed("plain", m);

    float x[2 * 4] = {0.1f, 0.2f, 0.3f, 0.4f, 0.9f, 0.8f, 0.7f, 0.6f};
    int32_t y[2] = {0, 1};
    float yf[2 * 2] = {1, 0, 0, 1};
    nb_fit_opts quiet = {.verbose = NB_VERBOSE_SILENT};
    m = tiny(0);
    if (nb_compile(m, &(nb_compile_opts){.loss = NB_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
                                         .optimizer = nb_adam(0.01f)}) ||
        nb_fit(m, x, y, 2, &quiet, NULL))
        fail("adam model");
    model_seed("adam", m);

    m = tiny(1);
    if (nb_compile(m, &(nb_compile_opts){.loss = NB_CATEGORICAL_CROSSENTROPY,
                                         .optimizer = nb_sgd_ex(&(nb_sgd_opts){.learning_rate = 0.1f, .momentum = 0.9f})}) ||
        nb_fit(m, x, yf, 2, &quiet, NULL))
        fail("sgd model");
    model_seed("sgd", m);
}

static void image_seeds(void)
{
    enum { S = 12 };
    uint8_t g[S * S], ga[S * S * 2], rgb[S * S * 3];
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            int ink = (x >= 5 && x <= 6 && y >= 2 && y <= 9) || (y == 9 && x >= 3 && x <= 8);
            uint8_t v = ink ? 20 : 235; /* dark stroke on paper */
            g[y * S + x] = v;
            ga[2 * (y * S + x)] = 0;
            ga[2 * (y * S + x) + 1] = ink ? 255 : 0; /* ink opaque, background transparent */
            rgb[3 * (y * S + x)] = v;
            rgb[3 * (y * S + x) + 1] = ink ? 40 : 220;
            rgb[3 * (y * S + x) + 2] = v;
        }
    if (!stbi_write_png(path_of("image", "stroke_gray.png"), S, S, 1, g, S)) fail("png");
    if (!stbi_write_png(path_of("image", "stroke_alpha.png"), S, S, 2, ga, S * 2)) fail("png alpha");
    if (!stbi_write_bmp(path_of("image", "stroke_rgb.bmp"), S, S, 3, rgb)) fail("bmp");
    FILE *f = fopen(path_of("image", "stroke.pgm"), "wb");
    if (!f || fprintf(f, "P5\n%d %d\n255\n", S, S) < 0 || fwrite(g, 1, sizeof g, f) != sizeof g || fclose(f)) fail("pgm");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_corpus DIR   (DIR/idx, DIR/model, DIR/image must exist)\n");
        return 2;
    }
    dir = argv[1];
    idx_seeds();
    model_seeds();
    image_seeds();
    return 0;
}
