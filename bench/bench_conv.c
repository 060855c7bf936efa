/* bench_conv.c — the convolutional part of the Keras "simple MNIST convnet",
 * built directly from ops, against the same GEMMs called on BLIS directly.
 *
 *   x (B, 28, 28, 1) -> conv2d 3x3x32 + bias -> relu -> max_pool 2x2 stride 2
 *                    -> conv2d 3x3x64 + bias -> relu -> max_pool 2x2 stride 2 -> (B, 5, 5, 64)
 *
 * A training step is nb_forward + nb_backward of mean(output) (x is an input, so
 * the first convolution computes no dx). Its GEMMs, in im2col form:
 *   conv1 forward (B*676, 9)·(9, 32), dkernel (9, B*676)·(B*676, 32);
 *   conv2 forward (B*121, 288)·(288, 64), dkernel (288, B*121)·(B*121, 64),
 *         dcol (B*121, 64)·(64, 288);
 * 14.2 MFLOP per sample (4.85 forward). `gemm floor` is those five products as
 * bare bli_sgemm calls (BLIS threaded with the same thread count): no im2col,
 * col2im, bias, relu or pooling, so no step can be faster. An inference forward
 * does the two forward GEMMs. The per-op rows come from nb_profile; a conv
 * row minus its GEMMs (printed below it, one by one) is its im2col / col2im and
 * bias work.
 *
 * Usage: bench_conv [--batch N] [--threads T] [--steps S] [--clock wall|cpu]
 *   default: batches 32 and 128, NB_NUM_THREADS or 1 thread, wall-clock time.
 *   --clock cpu times with the process's CPU clock instead: on a busy shared
 *   machine this keeps other programs' time out of a ONE-thread run (with more
 *   threads it adds up every thread's time, spinning included, so use wall).
 * Each figure is the median of RUNS runs of `steps` steps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nabla/nabla.h>
#include "direct_gemm.h"

enum { RUNS = 5 };

static clockid_t bench_clock = CLOCK_MONOTONIC;

static double now(void)
{
    struct timespec ts;
    clock_gettime(bench_clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

typedef struct net {
    nb_graph *g;
    nb_tensor *x, *k1, *b1, *k2, *b2, *out, *loss;
    int B;
} net;

static void uniform(nb_rng *r, nb_tensor *t, float lim)
{
    for (size_t i = 0; i < t->size; i++) t->data[i] = nb_rng_uniform_range(r, -lim, lim);
}

static int build(net *n, int B)
{
    nb_rng r;
    nb_rng_seed(&r, 1);
    n->B = B;
    n->g = nb_graph_new();
    if (!n->g) return 1;
    nb_graph *g = n->g;
    n->x = nb_input(g, NB_F32, 4, (int[]){B, 28, 28, 1});
    n->k1 = nb_param(g, 4, (int[]){3, 3, 1, 32});
    n->b1 = nb_param(g, 1, (int[]){32});
    n->k2 = nb_param(g, 4, (int[]){3, 3, 32, 64});
    n->b2 = nb_param(g, 1, (int[]){64});
    if (!n->x || !n->k1 || !n->b1 || !n->k2 || !n->b2) return 1;
    for (size_t i = 0; i < n->x->size; i++) n->x->data[i] = nb_rng_uniform(&r);
    uniform(&r, n->k1, 0.2f);  /* Glorot-uniform limits: sqrt(6 / (9 + 288)) */
    uniform(&r, n->k2, 0.08f); /* sqrt(6 / (288 + 576)) */
    nb_tensor *h = nb_relu(g, nb_conv2d(g, n->x, n->k1, n->b1, 1, 1, NB_PAD_VALID, 1, 1));
    h = nb_max_pool2d(g, h, 2, 2, 2, 2, NB_PAD_VALID);
    h = nb_relu(g, nb_conv2d(g, h, n->k2, n->b2, 1, 1, NB_PAD_VALID, 1, 1));
    n->out = nb_max_pool2d(g, h, 2, 2, 2, 2, NB_PAD_VALID);
    n->loss = nb_mean(g, n->out);
    if (!n->loss) {
        fprintf(stderr, "bench_conv: %s\n", nb_graph_error(g));
        return 1;
    }
    return 0;
}

static void train_step(net *n)
{
    nb_forward(n->g);
    nb_backward(n->g, n->loss);
}
static void infer_step(net *n) { nb_forward(n->g); }

/* The five GEMMs of a training step (or the two of a forward) on bare BLIS. */
typedef struct gemm_bufs {
    float *col1, *col2, *y1, *y2, *dk1, *dk2, *k1, *k2, *dcol2;
    int B;
} gemm_bufs;

static float *buf(size_t n)
{
    float *p = calloc(n + 64, sizeof *p); /* padded: BLIS's small kernels may read past */
    for (size_t i = 0; p && i < n; i++) p[i] = (float)(i % 7) * 0.1f;
    return p;
}

static int gemm_alloc(gemm_bufs *b, int B)
{
    size_t m1 = (size_t)B * 676, m2 = (size_t)B * 121;
    *b = (gemm_bufs){buf(m1 * 9), buf(m2 * 288), buf(m1 * 32), buf(m2 * 64), buf(9 * 32), buf(288 * 64), buf(9 * 32),
                     buf(288 * 64), buf(m2 * 288), B};
    return !(b->col1 && b->col2 && b->y1 && b->y2 && b->dk1 && b->dk2 && b->k1 && b->k2 && b->dcol2);
}

static void gemm_free(gemm_bufs *b)
{
    free(b->col1), free(b->col2), free(b->y1), free(b->y2), free(b->dk1), free(b->dk2), free(b->k1), free(b->k2);
    free(b->dcol2);
}

/* The five products one by one (k = 0..4: conv1 forward, conv2 forward, conv1
 * dkernel, conv2 dkernel, conv2 dcol), so the per-op rows can be set against them. */
static const char *const gemm_names[5] = {"conv1 forward", "conv2 forward", "conv1 dkernel", "conv2 dkernel",
                                          "conv2 dcol"};
static void gemm_one(gemm_bufs *b, int k)
{
    int m1 = b->B * 676, m2 = b->B * 121;
    switch (k) {
    case 0: direct_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m1, 32, 9, b->col1, 9, 1, b->k1, 32, 1, 0.0f, b->y1, 32); break;
    case 1: direct_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m2, 64, 288, b->col2, 288, 1, b->k2, 64, 1, 0.0f, b->y2, 64); break;
    case 2: direct_sgemm(BLIS_TRANSPOSE, BLIS_NO_TRANSPOSE, 9, 32, m1, b->col1, 9, 1, b->y1, 32, 1, 1.0f, b->dk1, 32); break;
    case 3: direct_sgemm(BLIS_TRANSPOSE, BLIS_NO_TRANSPOSE, 288, 64, m2, b->col2, 288, 1, b->y2, 64, 1, 1.0f, b->dk2, 64); break;
    default: direct_sgemm(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, m2, 288, 64, b->y2, 64, 1, b->k2, 64, 1, 0.0f, b->dcol2, 288); break;
    }
}
static void gemm_forward(gemm_bufs *b)
{
    gemm_one(b, 0), gemm_one(b, 1);
}
static void gemm_train(gemm_bufs *b)
{
    for (int k = 0; k < 5; k++) gemm_one(b, k);
}

/* Median seconds per step of f over RUNS runs of `steps` steps. */
#define TIME_MEDIAN(result, steps, call)                                                                               \
    do {                                                                                                               \
        double s_[RUNS];                                                                                               \
        call;                                                                                                          \
        for (int r_ = 0; r_ < RUNS; r_++) {                                                                            \
            double t0_ = now();                                                                                        \
            for (int i_ = 0; i_ < (steps); i_++) call;                                                                 \
            s_[r_] = (now() - t0_) / (steps);                                                                          \
        }                                                                                                              \
        qsort(s_, RUNS, sizeof *s_, cmp);                                                                              \
        (result) = s_[RUNS / 2];                                                                                       \
    } while (0)

static int bench(int B, int steps)
{
    net n;
    gemm_bufs gb;
    if (build(&n, B) || gemm_alloc(&gb, B)) return 1;
    const double fwd1 = 2.0 * 676 * 9 * 32, fwd2 = 2.0 * 121 * 288 * 64; /* per sample */
    const double train_flops = 2 * fwd1 + 3 * fwd2, infer_flops = fwd1 + fwd2;
    const char *arch = bli_arch_string(bli_arch_query_id());
    double tt, tg, ti, tgi;
    nb_graph_set_training(n.g, true);
    TIME_MEDIAN(tt, steps, train_step(&n));
    TIME_MEDIAN(tg, steps, gemm_train(&gb));
    nb_graph_set_training(n.g, false);
    TIME_MEDIAN(ti, steps, infer_step(&n));
    TIME_MEDIAN(tgi, steps, gemm_forward(&gb));
    const char *clk = bench_clock == CLOCK_MONOTONIC ? "wall" : "cpu";
    printf("nabla conv train batch=%d threads=%d blis=%s clock=%s step_ms=%.3f samples_per_s=%.0f gflops=%.1f "
           "gemm_floor_ms=%.3f gemm_floor_samples_per_s=%.0f ratio=%.2f\n",
           B, nb_get_num_threads(), arch, clk, tt * 1e3, B / tt, train_flops * B / tt * 1e-9, tg * 1e3, B / tg, tt / tg);
    printf("nabla conv infer batch=%d threads=%d blis=%s clock=%s step_ms=%.3f samples_per_s=%.0f gflops=%.1f "
           "gemm_floor_ms=%.3f gemm_floor_samples_per_s=%.0f ratio=%.2f\n",
           B, nb_get_num_threads(), arch, clk, ti * 1e3, B / ti, infer_flops * B / ti * 1e-9, tgi * 1e3, B / tgi, ti / tgi);
    /* where a training step goes, per op */
    nb_graph_set_training(n.g, true);
    nb_profile_reset();
    nb_profile_enable(true);
    for (int i = 0; i < steps; i++) train_step(&n);
    nb_profile_enable(false);
    printf("per op over %d training steps (batch %d):\n", steps, B);
    nb_profile_print(stdout);
    printf("the same steps' GEMMs alone (bare bli_sgemm), ms in all:");
    for (int k = 0; k < 5; k++) {
        double tk;
        TIME_MEDIAN(tk, steps, gemm_one(&gb, k));
        printf("%s %s %.1f", k ? "," : "", gemm_names[k], tk * steps * 1e3);
    }
    printf("\n");
    nb_graph_free(n.g);
    gemm_free(&gb);
    return 0;
}

int main(int argc, char **argv)
{
    int batch = 0, steps = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) nb_set_num_threads(atoi(argv[i + 1]));
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--clock") && !strcmp(argv[i + 1], "cpu")) bench_clock = CLOCK_PROCESS_CPUTIME_ID;
        else if (!strcmp(argv[i], "--clock") && !strcmp(argv[i + 1], "wall")) bench_clock = CLOCK_MONOTONIC;
        else {
            fprintf(stderr, "usage: bench_conv [--batch N] [--threads T] [--steps S] [--clock wall|cpu]\n");
            return 2;
        }
    }
    static const int batches[] = {32, 128};
    for (int k = 0; k < 2; k++) {
        int B = batch > 0 ? batch : batches[k];
        if (bench(B, steps > 0 ? steps : B >= 128 ? 10 : 40)) return 1;
        if (batch > 0) break;
    }
    return 0;
}
