/* xcorr.h: where a stretch of sent audio turns up in received audio: the lag of the best normalised
 * cross-correlation, searched coarse then fine. For measurements (parley-bench latency, parley-call's
 * loopback latency), not for the audio path.
 *
 * Threads: pure functions of their arguments; any thread. Not real-time code (O(n x max_lag / 32)). */
#ifndef PARLEY_SIM_XCORR_H
#define PARLEY_SIM_XCORR_H

#include <stddef.h>

/* The lag L in [0, max_lag] maximising the normalised cross-correlation of x[0..n) with y[L..L+n):
 * first every 8th lag on every 4th sample, then every lag within 12 of the best on every sample.
 * *peak gets that correlation (-1..1; 0 against silence). x and y are borrowed. Returns L, or
 * PARLEY_EINVAL (NULL, n == 0, max_lag < 0, or y shorter than n + max_lag: ny counts y's samples). */
long parley__xcorr_best_lag(const float *x, size_t n, const float *y, size_t ny, long max_lag, double *peak);

#endif
