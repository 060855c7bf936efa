/* bench_cnn.c — training and inference throughput of the Keras "simple MNIST
 * convnet" built with nabla's layer API, on synthetic MNIST-shaped data
 * (uniform pixels, random labels):
 *
 *   (28, 28, 1) -> Conv2D(32, 3x3, relu) -> MaxPooling2D(2) -> Conv2D(64, 3x3, relu)
 *   -> MaxPooling2D(2) -> Flatten -> Dropout(0.5) -> Dense(10) logits,
 *   sparse CE from logits, Adam(0.001)
 *
 *   bench_cnn [--mode train|infer|profile|gemm|arch] [--batch 32] [--threads 1]
 *             [--samples 6400] [--epochs 3]
 *
 * train    samples/s of nb_fit (the whole step: forward, backward, Adam); the
 *          median epoch of --epochs, the first (which sizes the buffers) dropped
 *          when there are more; allocs_per_step counts nb_alloc_count calls per
 *          step after that first epoch (0 is the goal); cpu_samples_per_s divides
 *          by the process's CPU time instead (see cpu_now)
 * infer    samples/s of nb_predict in batches of --batch (best of --epochs passes)
 * profile  two training epochs with per-op timing (nb_profile_*); the rest beyond
 *          the ops is the optimizer and batch gathering
 * gemm     the training epoch against the same GEMMs as bare bli_sgemm calls
 *          (BLIS threaded with the same thread count), and the inference pass
 *          against its forward GEMMs: floor_frac = GEMM-only time / nabla time,
 *          the fraction of the GEMM floor nabla reaches (1 would be no overhead
 *          at all: no im2col, col2im, bias, relu, pooling, dropout, loss or Adam);
 *          cpu_floor_frac is the same in CPU time (steadier on a busy machine)
 *
 * The GEMMs of one training step, im2col form, B the batch:
 *   conv1 forward (B*676, 9)·(9, 32), dkernel (9, B*676)·(B*676, 32) (no dx: the input needs none)
 *   conv2 forward (B*121, 288)·(288, 64), dkernel (288, B*121)·(B*121, 64), dcol (B*121, 64)·(64, 288)
 *   dense forward (B, 1600)·(1600, 10), dkernel (1600, B)·(B, 10), dx (B, 10)·(10, 1600)
 * 14.26 MFLOP per training sample, 4.88 per inference sample.
 * arch     the BLIS kernel set in use and BLIS_ARCH_TYPE as the library left it
 *          (compare_cnn.py hands the same value to PyTorch)
 * Every mode prints one line of key=value fields (compare_cnn.py reads them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nabla/nabla.h>
#include "direct_gemm.h"
#include "fit_timing.h"

#define TRAIN_FLOPS (2.0 * (676 * 9 * 32) * 2 + 2.0 * (121 * 288 * 64) * 3 + 2.0 * (1600 * 10) * 3)
#define INFER_FLOPS (2.0 * (676 * 9 * 32) + 2.0 * (121 * 288 * 64) + 2.0 * (1600 * 10))

typedef struct {
    const char *mode;
    int batch, threads, samples, epochs;
} config;

static int parse(int argc, char **argv, config *c)
{
    *c = (config){"train", 32, 1, 6400, 3};
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return -1;
        if (!strcmp(a, "--mode")) c->mode = v;
        else if (!strcmp(a, "--batch")) c->batch = atoi(v);
        else if (!strcmp(a, "--threads")) c->threads = atoi(v);
        else if (!strcmp(a, "--samples")) c->samples = atoi(v);
        else if (!strcmp(a, "--epochs")) c->epochs = atoi(v);
        else return -1;
    }
    return c->batch >= 1 && c->threads >= 1 && c->samples >= 1 && c->epochs >= 1 ? 0 : -1;
}

static nb_model *make_model(void)
{
    nb_model *m = nb_sequential_shape(3, (int[]){28, 28, 1});
    if (!m || nb_add_layer(m, nb_layer_conv2d(m, 32, 3, 3, 1, NB_PAD_VALID, NB_RELU)) ||
        nb_add_layer(m, nb_layer_max_pool2d(m, 2, 0, NB_PAD_VALID)) ||
        nb_add_layer(m, nb_layer_conv2d(m, 64, 3, 3, 1, NB_PAD_VALID, NB_RELU)) ||
        nb_add_layer(m, nb_layer_max_pool2d(m, 2, 0, NB_PAD_VALID)) || nb_add_layer(m, nb_layer_flatten(m)) ||
        nb_add_layer(m, nb_layer_dropout(m, 0.5f)) || nb_add_dense(m, 10, NB_LINEAR) ||
        nb_compile(m, &(nb_compile_opts){.loss = NB_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true,
                                          .optimizer = nb_adam(0.001f)})) {
        fprintf(stderr, "bench_cnn: %s\n", nb_last_error());
        nb_model_free(m);
        return NULL;
    }
    return m;
}

/* The GEMMs of nb_predict over the whole set (forward == 1) or of one training
 * epoch, as bare bli_sgemm calls on buffers of the same shapes. */
static double time_gemms(const config *c, bool forward_only, double *cpu_s)
{
    int B = c->batch;
    size_t col1 = (size_t)B * 676 * 9, col2 = (size_t)B * 121 * 288;
    float *a1 = calloc(col1, sizeof(float)), *y1 = calloc((size_t)B * 676 * 32, sizeof(float));
    float *a2 = calloc(col2, sizeof(float)), *y2 = calloc((size_t)B * 121 * 64, sizeof(float));
    float *k1 = calloc(9 * 32, sizeof(float)), *dk1 = calloc(9 * 32, sizeof(float));
    float *k2 = calloc(288 * 64, sizeof(float)), *dk2 = calloc(288 * 64, sizeof(float));
    float *w = calloc(1600 * 10, sizeof(float)), *dw = calloc(1600 * 10, sizeof(float));
    float *dx = calloc((size_t)B * 1600, sizeof(float)), *z = calloc((size_t)B * 10, sizeof(float));
    double t0 = nb_now(), c0 = cpu_now();
    for (int s = 0; s < c->samples; s += B) {
        int b = c->samples - s < B ? c->samples - s : B, r1 = b * 676, r2 = b * 121;
        direct_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, r1, 32, 9, a1, 9, 1, k1, 32, 1, 0.0f, y1, 32);
        direct_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, r2, 64, 288, a2, 288, 1, k2, 64, 1, 0.0f, y2, 64);
        direct_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, b, 10, 1600, y2, 1600, 1, w, 10, 1, 0.0f, z, 10);
        if (forward_only) continue;
        direct_sgemm(BLIS_TRANSPOSE, BLIS_NO_TRANSPOSE, 1600, 10, b, y2, 1600, 1, z, 10, 1, 1.0f, dw, 10);
        direct_sgemm(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, b, 1600, 10, z, 10, 1, w, 10, 1, 0.0f, dx, 1600);
        direct_sgemm(BLIS_TRANSPOSE, BLIS_NO_TRANSPOSE, 288, 64, r2, a2, 288, 1, y2, 64, 1, 1.0f, dk2, 64);
        direct_sgemm(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, r2, 288, 64, y2, 64, 1, k2, 64, 1, 0.0f, a2, 288);
        direct_sgemm(BLIS_TRANSPOSE, BLIS_NO_TRANSPOSE, 9, 32, r1, a1, 9, 1, y1, 32, 1, 1.0f, dk1, 32);
    }
    double dt = nb_now() - t0;
    *cpu_s = cpu_now() - c0;
    free(a1), free(y1), free(a2), free(y2), free(k1), free(dk1), free(k2), free(dk2);
    free(w), free(dw), free(dx), free(z);
    return dt;
}

/* Seconds for nb_predict over all samples in batches: the best of c->epochs passes. */
static double time_predict(nb_model *m, const float *x, float *out, const config *c, double *cpu_s)
{
    int warm = c->batch < c->samples ? c->batch : c->samples;
    if (nb_predict(m, x, warm, out) != NB_OK) return -1;
    double best = 1e30;
    *cpu_s = 1e30;
    for (int e = 0; e < c->epochs; e++) {
        double t0 = nb_now(), c0 = cpu_now();
        for (int s = 0; s < c->samples; s += c->batch) {
            int b = c->samples - s < c->batch ? c->samples - s : c->batch;
            if (nb_predict(m, x + (size_t)s * 784, b, out + (size_t)s * 10) != NB_OK) return -1;
        }
        double dt = nb_now() - t0, dc = cpu_now() - c0;
        best = dt < best ? dt : best;
        *cpu_s = dc < *cpu_s ? dc : *cpu_s;
    }
    return best;
}

static int run_profile(nb_model *m, const nb_dataset *d, config *c, const char *blis_arch)
{
    c->epochs = 2;
    double allocs, cpu;
    nb_profile_reset();
    double t0 = nb_now();
    nb_profile_enable(true);
    int rc = fit_epoch_seconds(m, d, c->epochs, c->batch, "bench_cnn", &allocs, &cpu) > 0 ? 0 : 1;
    nb_profile_enable(false);
    double total = nb_now() - t0;
    int steps = c->epochs * ((c->samples + c->batch - 1) / c->batch);
    printf("per-op time over %d epochs of %d samples (convnet, batch %d, %d thread(s), BLIS %s):\n", c->epochs,
           c->samples, c->batch, c->threads, blis_arch);
    nb_profile_print(stdout);
    printf("total %.1f ms for %d steps (%.1f us/step); the rest beyond the ops is the optimizer and batch gathering\n",
           1e3 * total, steps, 1e6 * total / steps);
    return rc;
}

int main(int argc, char **argv)
{
    config c;
    if (parse(argc, argv, &c)) {
        fprintf(stderr, "usage: bench_cnn [--mode train|infer|profile|gemm|arch] [--batch 32] [--threads 1] "
                        "[--samples 6400] [--epochs 3]\n");
        return 2;
    }
    nb_set_num_threads(c.threads); /* also initialises BLIS */
    if (!strcmp(c.mode, "arch")) {
        const char *env = getenv("BLIS_ARCH_TYPE"); /* set by nabla's constructor when it was unset */
        printf("nabla arch blis=%s blis_arch_type=%s\n", bli_arch_string(bli_arch_query_id()), env ? env : "");
        return 0;
    }
    float *x = malloc((size_t)c.samples * 784 * sizeof *x), *out = malloc((size_t)c.samples * 10 * sizeof *out);
    int32_t *y = malloc((size_t)c.samples * sizeof *y);
    if (!x || !y || !out) return fprintf(stderr, "bench_cnn: out of memory\n"), 1;
    nb_rng r;
    nb_rng_seed(&r, 1);
    for (size_t i = 0; i < (size_t)c.samples * 784; i++) x[i] = nb_rng_uniform(&r);
    for (int i = 0; i < c.samples; i++) y[i] = (int32_t)nb_rng_below(&r, 10);
    nb_dataset d = {.n = c.samples, .x = x, .labels = y};
    const char *blis_arch = bli_arch_string(bli_arch_query_id());
    nb_model *m = make_model();
    if (!m) return 1;
    int rc = 0;
    double allocs = -1, cpu = 0, gcpu = 0, icpu = 0, gicpu = 0;
    if (!strcmp(c.mode, "train")) {
        double dt = fit_epoch_seconds(m, &d, c.epochs, c.batch, "bench_cnn", &allocs, &cpu);
        if (dt <= 0) rc = 1;
        else
            printf("nabla train model=cnn batch=%d threads=%d blis=%s epoch_s=%.4f samples_per_s=%.0f gflops=%.1f "
                   "cpu_samples_per_s=%.0f allocs_per_step=%g\n",
                   c.batch, c.threads, blis_arch, dt, c.samples / dt, TRAIN_FLOPS * c.samples / dt * 1e-9,
                   c.samples / cpu, allocs);
    } else if (!strcmp(c.mode, "infer")) {
        double dt = time_predict(m, x, out, &c, &cpu);
        if (dt <= 0) rc = 1;
        else
            printf("nabla infer model=cnn batch=%d threads=%d blis=%s epoch_s=%.4f samples_per_s=%.0f gflops=%.1f "
                   "cpu_samples_per_s=%.0f\n",
                   c.batch, c.threads, blis_arch, dt, c.samples / dt, INFER_FLOPS * c.samples / dt * 1e-9, c.samples / cpu);
    } else if (!strcmp(c.mode, "gemm")) {
        double dt = fit_epoch_seconds(m, &d, c.epochs, c.batch, "bench_cnn", &allocs, &cpu), g = time_gemms(&c, false, &gcpu);
        double di = time_predict(m, x, out, &c, &icpu), gi = time_gemms(&c, true, &gicpu);
        if (dt <= 0 || di <= 0) rc = 1;
        else {
            printf("nabla gemm train model=cnn batch=%d threads=%d blis=%s epoch_s=%.4f gemm_only_s=%.4f floor_frac=%.3f "
                   "cpu_floor_frac=%.3f\n",
                   c.batch, c.threads, blis_arch, dt, g, g / dt, gcpu / cpu);
            printf("nabla gemm infer model=cnn batch=%d threads=%d blis=%s pass_s=%.4f gemm_only_s=%.4f floor_frac=%.3f "
                   "cpu_floor_frac=%.3f\n",
                   c.batch, c.threads, blis_arch, di, gi, gi / di, gicpu / icpu);
        }
    } else if (!strcmp(c.mode, "profile")) {
        rc = run_profile(m, &d, &c, blis_arch);
    } else {
        fprintf(stderr, "bench_cnn: unknown mode %s\n", c.mode);
        rc = 2;
    }
    nb_model_free(m);
    free(x);
    free(y);
    free(out);
    return rc;
}
