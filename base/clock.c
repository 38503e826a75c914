/* clock.c: the monotonic system clock behind parley__clock. Stateless. */
#define _POSIX_C_SOURCE 200809L
#include "base/clock.h"

#include <time.h>

static int64_t monotonic_now_us(void *ctx) {
  (void)ctx;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

parley__clock parley__clock_monotonic(void) { return (parley__clock){monotonic_now_us, 0}; }
