/* rng.h: a small seeded pseudo-random generator (xoshiro256**) for simulations, jitter in tests and
 * benches, and randomised timers. NOT for keys, SRTP salts or ICE credentials: those use libcrypto's
 * RAND_bytes. State is owned by the caller; one thread at a time; real-time safe. */
#ifndef PARLEY_BASE_RNG_H
#define PARLEY_BASE_RNG_H

#include <stdint.h>

typedef struct parley__rng {
  uint64_t s[4];
} parley__rng;

/* Seeds through splitmix64 so that nearby seeds give unrelated streams. */
void parley__rng_seed(parley__rng *r, uint64_t seed);
uint64_t parley__rng_u64(parley__rng *r);
/* Uniform in [0, 1). */
double parley__rng_uniform(parley__rng *r);
/* Uniform integer in [0, n); n > 0. */
uint32_t parley__rng_below(parley__rng *r, uint32_t n);
/* Standard normal (mean 0, deviation 1), Box-Muller. */
double parley__rng_gauss(parley__rng *r);

#endif
