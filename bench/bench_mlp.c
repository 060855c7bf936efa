/* bench_mlp.c — training and inference throughput of an MLP built with nabla's
 * Keras-style API, on synthetic MNIST-shaped data (uniform pixels, random labels).
 *
 *   bench_mlp [--mode train|infer|profile|gemm|kernels] [--layers 784,128,10] [--batch 32]
 *             [--threads 1] [--samples 60000] [--epochs 3]
 *
 * train    samples/s of nb_fit (Adam, sparse CE from logits); the median epoch of
 *          --epochs (the first, which builds buffers, is dropped when there are more)
 * infer    samples/s of nb_predict
 * profile  one training epoch with per-op timing (nb_profile_*) and the rest
 *          (optimizer, batch gathering) as one line
 * gemm     the same epoch's GEMMs alone, as bare bli_sgemm calls: the floor
 *          a training step can reach; prints nabla's time as a multiple of it
 * kernels  the BLIS kernel set nabla selected (nb_blis_kernels), the value of
 *          BLIS_ARCH_TYPE in this process ("unset" when nabla left BLIS to choose),
 *          and nb_sgemm's speed at 512 x 512 x 512 (compare_pytorch.py gives
 *          PyTorch's BLIS the same kernels and checks the speed matches)
 * Every mode prints one line of key=value fields (compare_pytorch.py reads them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nabla/nabla.h>
#include "direct_gemm.h"
#include "fit_timing.h"

enum { MAX_LAYERS = 8 };

typedef struct {
    const char *mode;
    int layers[MAX_LAYERS], n_layers;
    int batch, threads, samples, epochs;
} config;

static int parse_layers(const char *s, config *c)
{
    c->n_layers = 0;
    while (*s && c->n_layers < MAX_LAYERS) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 1 << 20) return -1;
        c->layers[c->n_layers++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return c->n_layers >= 2 ? 0 : -1;
}

static int parse(int argc, char **argv, config *c)
{
    *c = (config){"train", {784, 128, 10}, 3, 32, 1, 60000, 3};
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return -1;
        if (!strcmp(a, "--mode")) c->mode = v;
        else if (!strcmp(a, "--layers")) { if (parse_layers(v, c)) return -1; }
        else if (!strcmp(a, "--batch")) c->batch = atoi(v);
        else if (!strcmp(a, "--threads")) c->threads = atoi(v);
        else if (!strcmp(a, "--samples")) c->samples = atoi(v);
        else if (!strcmp(a, "--epochs")) c->epochs = atoi(v);
        else return -1;
    }
    return c->batch >= 1 && c->threads >= 1 && c->samples >= 1 && c->epochs >= 1 ? 0 : -1;
}

/* Matmul FLOPs per training sample: forward and weight gradient of every layer,
 * input gradient of every layer but the first (the input needs none). */
static double train_flops(const config *c)
{
    double f = 0;
    for (int l = 0; l + 1 < c->n_layers; l++) {
        double mn = (double)c->layers[l] * c->layers[l + 1];
        f += 2 * mn + 2 * mn + (l > 0 ? 2 * mn : 0);
    }
    return f;
}

static nb_model *make_model(const config *c)
{
    nb_model *m = nb_sequential(c->layers[0]);
    for (int l = 1; l < c->n_layers; l++)
        if (nb_add_dense(m, c->layers[l], l + 1 < c->n_layers ? NB_RELU : NB_LINEAR) != NB_OK) break;
    if (nb_compile(m, &(nb_compile_opts){.loss = NB_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
                                          .optimizer = nb_adam(0.001f)}) != NB_OK) {
        fprintf(stderr, "bench_mlp: %s\n", nb_last_error());
        nb_model_free(m);
        return NULL;
    }
    return m;
}

/* The GEMMs of one training epoch as bare bli_sgemm calls (same shapes, same strides). */
static double time_gemms(const config *c, const float *x)
{
    int L = c->n_layers - 1, B = c->batch, widest = 0;
    for (int l = 0; l <= L; l++) widest = c->layers[l] > widest ? c->layers[l] : widest;
    float *w[MAX_LAYERS], *dw[MAX_LAYERS], *act[MAX_LAYERS], *dact[MAX_LAYERS];
    for (int l = 0; l < L; l++) {
        size_t n = (size_t)c->layers[l] * c->layers[l + 1];
        w[l] = calloc(n, sizeof(float));
        dw[l] = calloc(n, sizeof(float));
    }
    for (int l = 0; l <= L; l++) {
        act[l] = calloc((size_t)B * widest + 16, sizeof(float));
        dact[l] = calloc((size_t)B * widest + 16, sizeof(float));
    }
    double t0 = nb_now();
    for (int s = 0; s < c->samples; s += B) {
        int b = c->samples - s < B ? c->samples - s : B;
        const float *in = x + (size_t)s * c->layers[0];
        for (int l = 0; l < L; l++) { /* act[l+1] = act[l] · w[l] */
            int k = c->layers[l], n = c->layers[l + 1];
            direct_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, b, n, k, l ? act[l] : in, k, 1, w[l], n, 1, 0.0f,
                         act[l + 1], n);
        }
        for (int l = L - 1; l >= 0; l--) {
            int k = c->layers[l], n = c->layers[l + 1];
            /* dw[l] += act[l]^T · dact[l+1];  dact[l] = dact[l+1] · w[l]^T */
            direct_sgemm(BLIS_TRANSPOSE, BLIS_NO_TRANSPOSE, k, n, b, l ? act[l] : in, k, 1, dact[l + 1], n, 1, 1.0f,
                         dw[l], n);
            if (l > 0)
                direct_sgemm(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, b, k, n, dact[l + 1], n, 1, w[l], n, 1, 0.0f, dact[l], k);
        }
    }
    double dt = nb_now() - t0;
    for (int l = 0; l < L; l++) free(w[l]), free(dw[l]);
    for (int l = 0; l <= L; l++) free(act[l]), free(dact[l]);
    return dt;
}

/* nb_sgemm's GFLOP/s for an n x n x n product: the median of 9 runs. */
static double sgemm_gflops(int n)
{
    float *a = calloc((size_t)n * n, sizeof *a), *b = calloc((size_t)n * n, sizeof *b), *c = calloc((size_t)n * n, sizeof *c);
    double dts[9] = {0};
    if (a && b && c) {
        for (size_t i = 0; i < (size_t)n * n; i++) a[i] = b[i] = 1.0f / (float)(1 + i % 7);
        nb_sgemm(n, n, n, a, n, 1, b, n, 1, 0.0f, c, n); /* warm up */
        for (int r = 0; r < 9; r++) {
            double t0 = nb_now();
            nb_sgemm(n, n, n, a, n, 1, b, n, 1, 0.0f, c, n);
            dts[r] = nb_now() - t0;
        }
        qsort(dts, 9, sizeof *dts, direct_cmp_double);
    }
    free(a);
    free(b);
    free(c);
    return dts[4] > 0 ? 2.0 * n * n * n / dts[4] * 1e-9 : 0.0;
}

int main(int argc, char **argv)
{
    config c;
    if (parse(argc, argv, &c)) {
        fprintf(stderr, "usage: bench_mlp [--mode train|infer|profile|gemm|kernels] [--layers 784,128,10] [--batch 32] "
                        "[--threads 1] [--samples 60000] [--epochs 3]\n");
        return 2;
    }
    nb_set_num_threads(c.threads);
    int in = c.layers[0], classes = c.layers[c.n_layers - 1];
    float *x = malloc((size_t)c.samples * in * sizeof *x);
    int32_t *y = malloc((size_t)c.samples * sizeof *y);
    if (!x || !y) return fprintf(stderr, "bench_mlp: out of memory\n"), 1;
    nb_rng r;
    nb_rng_seed(&r, 1);
    for (size_t i = 0; i < (size_t)c.samples * in; i++) x[i] = nb_rng_uniform(&r);
    for (int i = 0; i < c.samples; i++) y[i] = (int32_t)nb_rng_below(&r, (uint32_t)classes);
    nb_dataset d = {.n = c.samples, .x = x, .labels = y};
    char model[64] = "";
    for (int l = 0, at = 0; l < c.n_layers; l++) at += snprintf(model + at, sizeof model - (size_t)at, l ? "-%d" : "%d", c.layers[l]);
    const char *blis_arch = nb_blis_kernels();
    int rc = 0;
    nb_model *m = make_model(&c);
    if (!m) return 1;
    if (!strcmp(c.mode, "train") || !strcmp(c.mode, "gemm")) {
        double dt = fit_epoch_seconds(m, &d, c.epochs, c.batch, "bench_mlp", NULL, NULL);
        if (dt <= 0) rc = 1;
        else if (!strcmp(c.mode, "train"))
            printf("nabla train model=%s batch=%d threads=%d blis=%s epoch_s=%.4f samples_per_s=%.0f gflops=%.1f\n", model,
                   c.batch, c.threads, blis_arch, dt, c.samples / dt, train_flops(&c) * c.samples / dt * 1e-9);
        else {
            double g = time_gemms(&c, x);
            printf("nabla gemm model=%s batch=%d threads=%d blis=%s epoch_s=%.4f gemm_only_s=%.4f ratio=%.3f\n", model,
                   c.batch, c.threads, blis_arch, dt, g, dt / g);
        }
    } else if (!strcmp(c.mode, "kernels")) {
        const char *env = getenv("BLIS_ARCH_TYPE");
        printf("nabla kernels blis=%s blis_arch_type=%s threads=%d sgemm512_gflops=%.1f\n", blis_arch,
               env && env[0] ? env : "unset", c.threads, sgemm_gflops(512));
    } else if (!strcmp(c.mode, "infer")) {
        float *out = malloc((size_t)c.samples * classes * sizeof *out);
        nb_predict(m, x, c.batch < c.samples ? c.batch : c.samples, out); /* warm up */
        double best = 1e30;
        for (int e = 0; e < c.epochs; e++) {
            double t0 = nb_now();
            for (int s = 0; s < c.samples; s += c.batch) {
                int b = c.samples - s < c.batch ? c.samples - s : c.batch;
                if (nb_predict(m, x + (size_t)s * in, b, out + (size_t)s * classes) != NB_OK) rc = 1;
            }
            double dt = nb_now() - t0;
            best = dt < best ? dt : best;
        }
        printf("nabla infer model=%s batch=%d threads=%d blis=%s epoch_s=%.4f samples_per_s=%.0f\n", model, c.batch,
               c.threads, blis_arch, best, c.samples / best);
        free(out);
    } else if (!strcmp(c.mode, "profile")) {
        c.epochs = 2;
        nb_profile_reset();
        double t0 = nb_now();
        nb_profile_enable(true);
        rc = fit_epoch_seconds(m, &d, c.epochs, c.batch, "bench_mlp", NULL, NULL) > 0 ? 0 : 1;
        nb_profile_enable(false);
        double total = nb_now() - t0;
        printf("per-op time over %d epochs of %d samples (model %s, batch %d, %d thread(s), BLIS %s):\n", c.epochs,
               c.samples, model, c.batch, c.threads, blis_arch);
        nb_profile_print(stdout);
        printf("total %.1f ms for %d steps (%.2f us/step); the rest beyond the ops is the optimizer and batch gathering\n",
               1e3 * total, c.epochs * ((c.samples + c.batch - 1) / c.batch),
               1e6 * total / (c.epochs * ((c.samples + c.batch - 1) / c.batch)));
    } else {
        fprintf(stderr, "bench_mlp: unknown mode %s\n", c.mode);
        rc = 2;
    }
    nb_model_free(m);
    free(x);
    free(y);
    return rc;
}
