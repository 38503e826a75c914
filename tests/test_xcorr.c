/* test_xcorr.c: the lag search used by the latency measurements, against delays built in. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "sim/xcorr.h"
#include "parley/parley.h"
#include "tests/audio_helpers.h"

/* The speech clip against a copy of itself delayed by a known number of samples (in silence) and
 * scaled: the lag comes back exactly, with a correlation of 1; a stretch of noise finds nothing. */
Test(xcorr, best_lag_finds_a_known_delay) {
  size_t nx;
  int rate;
  float *x = th_load_wav("speech_a_48k.wav", &nx, &rate);
  cr_assert_not_null(x);
  const long delays[] = {0, 1, 957, 2401, 14399};
  size_t n = 48000, max_lag = 14400;
  float *y = calloc(nx + max_lag, sizeof *y);
  cr_assert_not_null(y);
  for (size_t k = 0; k < sizeof delays / sizeof *delays; k++) {
    memset(y, 0, (nx + max_lag) * sizeof *y);
    for (size_t i = 0; i < nx; i++) y[i + (size_t)delays[k]] = 0.5f * x[i];
    double peak = 0;
    long lag = parley__xcorr_best_lag(x + 24000, n, y + 24000, nx + max_lag - 24000, (long)max_lag, &peak);
    cr_expect_eq(lag, delays[k], "found %ld for %ld", lag, delays[k]);
    cr_expect_gt(peak, 0.999, "peak %.4f", peak);
  }
  double peak = 0;
  cr_expect_eq(parley__xcorr_best_lag(x, n, y, n + 10, 11, &peak), PARLEY_EINVAL, "y too short");
  cr_expect_eq(parley__xcorr_best_lag(NULL, n, y, nx, 10, &peak), PARLEY_EINVAL);
  cr_expect_eq(parley__xcorr_best_lag(x, 0, y, nx, 10, &peak), PARLEY_EINVAL);
  th_noise(y, nx, 7, 0.3);
  (void)parley__xcorr_best_lag(x + 24000, n, y, nx, 4800, &peak);
  cr_expect_lt(peak, 0.1, "noise correlates %.3f with speech", peak);
  free(x);
  free(y);
}
