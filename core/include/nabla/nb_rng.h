/* nb_rng.h — a small seeded random generator (PCG32, O'Neill 2014, pcg-random.org:
 * 64-bit LCG state, XSH-RR output). The same seed gives the same numbers on
 * every machine; initialisers and shuffling draw from an explicit nb_rng, never rand(). */
#ifndef NB_RNG_H
#define NB_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Generator state: a plain value, copy it to fork a stream. */
typedef struct nb_rng {
    uint64_t state;
    uint64_t inc; /* stream selector, always odd */
} nb_rng;

/* Seed the generator (pcg32_srandom_r with stream 54: the reference's demo stream).
 * Seeds are accepted as they are; any value is valid. */
void nb_rng_seed(nb_rng *r, uint64_t seed);

/* Next 32 random bits. */
static inline uint32_t nb_rng_u32(nb_rng *r) /* inline: dropout draws one per element */
{
    uint64_t old = r->state;
    r->state = old * 6364136223846793005ULL + r->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31u));
}

/* Uniform integer in [0, n) without modulo bias; returns 0 for n == 0. */
uint32_t nb_rng_below(nb_rng *r, uint32_t n);

/* Uniform float in [0, 1) with 24 random bits. */
float nb_rng_uniform(nb_rng *r);

/* Uniform float in [lo, hi). */
float nb_rng_uniform_range(nb_rng *r, float lo, float hi);

/* Standard normal draw (Box–Muller in double precision, one draw per call). */
float nb_rng_normal(nb_rng *r);

/* Fisher–Yates shuffle of an index array of n entries. */
void nb_rng_shuffle(nb_rng *r, int32_t *idx, int n);

#ifdef __cplusplus
}
#endif
#endif
