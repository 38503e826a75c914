/* clock.h: injected time. Core logic never reads the system clock itself; it takes `now_us` from a
 * parley__clock (a function and its context), which is the monotonic system clock in production; tests
 * and simulations pass their own. A clock is owned by whoever made it; readers borrow it. The
 * monotonic clock makes a vDSO call (no kernel entry on Linux), allowed on the audio path. */
#ifndef PARLEY_BASE_CLOCK_H
#define PARLEY_BASE_CLOCK_H

#include <stdint.h>

typedef struct parley__clock {
  int64_t (*now_us)(void *ctx); /* microseconds, monotonic, arbitrary epoch */
  void *ctx;
} parley__clock;

static inline int64_t parley__clock_now(const parley__clock *c) { return c->now_us(c->ctx); }

/* CLOCK_MONOTONIC in microseconds. */
parley__clock parley__clock_monotonic(void);

#endif
