/* clock.h: injected time. Core logic never reads the system clock itself; it takes `now_us` from a
 * parley__clock, which is the monotonic system clock in production and a simulated clock in tests.
 * A clock is owned by whoever made it; readers borrow it. Reading is real-time safe for the sim clock;
 * the monotonic clock makes a vDSO call (no kernel entry on Linux), allowed on the audio path. */
#ifndef PARLEY_ENGINE_CLOCK_H
#define PARLEY_ENGINE_CLOCK_H

#include <stdint.h>

typedef struct parley__clock {
  int64_t (*now_us)(void *ctx); /* microseconds, monotonic, arbitrary epoch */
  void *ctx;
} parley__clock;

static inline int64_t parley__clock_now(const parley__clock *c) { return c->now_us(c->ctx); }

/* CLOCK_MONOTONIC in microseconds. */
parley__clock parley__clock_monotonic(void);

/* A simulated clock: time moves only when the owner advances it. Single-threaded. */
typedef struct parley__sim_clock {
  int64_t now_us;
} parley__sim_clock;

parley__clock parley__clock_sim(parley__sim_clock *sim);

#endif
