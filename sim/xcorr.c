/* xcorr.c: see xcorr.h. Owns nothing. */
#include "sim/xcorr.h"

#include <math.h>

#include "parley/parley.h"

#define COARSE_LAG_STEP 8
#define COARSE_SAMPLE_STEP 4
#define FINE_SPAN 12 /* > COARSE_LAG_STEP: the true peak lies within a coarse step of the coarse best */

static double ncorr(const float *x, const float *y, size_t n, size_t step) {
  double xy = 0, xx = 0, yy = 0;
  for (size_t i = 0; i < n; i += step) {
    xy += (double)x[i] * y[i];
    xx += (double)x[i] * x[i];
    yy += (double)y[i] * y[i];
  }
  return xx > 0 && yy > 0 ? xy / sqrt(xx * yy) : 0;
}

long parley__xcorr_best_lag(const float *x, size_t n, const float *y, size_t ny, long max_lag, double *peak) {
  if (!x || !y || !peak || n == 0 || max_lag < 0 || ny < n + (size_t)max_lag) return PARLEY_EINVAL;
  long best = 0;
  double bc = -2;
  for (long l = 0; l <= max_lag; l += COARSE_LAG_STEP) {
    double c = ncorr(x, y + l, n, COARSE_SAMPLE_STEP);
    if (c > bc) bc = c, best = l;
  }
  long lo = best > FINE_SPAN ? best - FINE_SPAN : 0, hi = best + FINE_SPAN < max_lag ? best + FINE_SPAN : max_lag;
  bc = -2;
  for (long l = lo; l <= hi; l++) {
    double c = ncorr(x, y + l, n, 1);
    if (c > bc) bc = c, best = l;
  }
  *peak = bc;
  return best;
}
