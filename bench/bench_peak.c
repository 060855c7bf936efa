/* bench_peak.c — one core's float32 multiply-add peak: the ceiling no kernel on
 * this machine can pass, against which GEMM and inference speeds are read.
 *
 *   bench_peak [--seconds 0.3]
 *
 * Twelve independent accumulators of 16 floats (GCC's vector extension) each
 * take one multiply-add per round, more than the FMA units' latency times
 * their count on current x86 cores, so the units never wait. Compiled for
 * AVX-512, AVX2 + FMA and the baseline like the library's hot loops
 * (NB_HOT_LOOP); the loader picks the CPU's. The best of five runs is printed
 * as one key=value line:  nabla peak threads=1 gflops=227.1 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nabla/nabla.h> /* nb_now */

#ifndef NB_HOT_LOOP
#define NB_HOT_LOOP
#endif

typedef float v16 __attribute__((vector_size(64)));
enum { ACC = 12, LANES = 16 };

/* `rounds` rounds of ACC multiply-adds of LANES floats; returns a checksum so
 * the work cannot be dropped. */
NB_HOT_LOOP static float fma_rounds(long rounds)
{
    v16 a[ACC], m, c;
    for (int l = 0; l < LANES; l++) m[l] = 0.9999999f, c[l] = 1e-7f;
    for (int i = 0; i < ACC; i++)
        for (int l = 0; l < LANES; l++) a[i][l] = (float)(i + l);
    for (long r = 0; r < rounds; r++)
#pragma GCC unroll 12
        for (int i = 0; i < ACC; i++) a[i] = a[i] * m + c; /* contracted to FMA (-ffp-contract=fast) */
    float sum = 0.0f;
    for (int i = 0; i < ACC; i++)
        for (int l = 0; l < LANES; l++) sum += a[i][l];
    return sum;
}

int main(int argc, char **argv)
{
    double seconds = 0.3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) seconds = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_peak [--seconds 0.3]\n");
            return 2;
        }
    }
    long rounds = 1000000;
    double t0 = nb_now();
    float check = fma_rounds(rounds);
    double dt = nb_now() - t0;
    if (dt > 0) rounds = (long)((double)rounds * seconds / dt) + 1;
    double best = 0;
    for (int run = 0; run < 5; run++) {
        t0 = nb_now();
        check += fma_rounds(rounds);
        dt = nb_now() - t0;
        double gflops = 2.0 * ACC * LANES * (double)rounds / dt * 1e-9;
        if (gflops > best) best = gflops;
    }
    printf("nabla peak threads=1 gflops=%.1f checksum=%g\n", best, (double)check);
    return 0;
}
