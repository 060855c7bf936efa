/* rng.c — PCG32 (XSH-RR), after the reference pcg32_random_r / pcg32_srandom_r. */
#include <math.h>

#include <nabla/nb_rng.h>

void nb_rng_seed(nb_rng *r, uint64_t seed)
{
    r->state = 0u;
    r->inc = (54u << 1u) | 1u;
    nb_rng_u32(r);
    r->state += seed;
    nb_rng_u32(r);
}

uint32_t nb_rng_below(nb_rng *r, uint32_t n)
{
    if (n == 0) return 0;
    uint32_t threshold = (uint32_t)(-n) % n; /* reject the biased low values */
    for (;;) {
        uint32_t x = nb_rng_u32(r);
        if (x >= threshold) return x % n;
    }
}

float nb_rng_uniform(nb_rng *r) { return (float)(nb_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

float nb_rng_uniform_range(nb_rng *r, float lo, float hi) { return lo + (hi - lo) * nb_rng_uniform(r); }

float nb_rng_normal(nb_rng *r)
{
    /* u1 in (0, 1] so the log is finite */
    double u1 = ((double)nb_rng_u32(r) + 1.0) / 4294967296.0;
    double u2 = (double)nb_rng_u32(r) / 4294967296.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void nb_rng_shuffle(nb_rng *r, int32_t *idx, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)nb_rng_below(r, (uint32_t)i + 1);
        int32_t tmp = idx[i];
        idx[i] = idx[j];
        idx[j] = tmp;
    }
}
