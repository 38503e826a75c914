/* audio_helpers.c: see audio_helpers.h. Test-only code. */
#include "tests/audio_helpers.h"

#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/rng.h"

float *th_read_wav(const char *path, size_t *n, int *rate_hz) {
  SF_INFO info = {0};
  SNDFILE *f = sf_open(path, SFM_READ, &info);
  if (!f) return NULL;
  if (info.channels != 1 || info.frames < 0) {
    sf_close(f);
    return NULL;
  }
  float *x = calloc((size_t)info.frames + 1, sizeof *x); /* + 1: an empty file still gets a buffer */
  if (x) *n = (size_t)sf_readf_float(f, x, info.frames);
  *rate_hz = info.samplerate;
  sf_close(f);
  return x;
}

float *th_load_wav(const char *name, size_t *n, int *rate_hz) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", PARLEY_TEST_DATA, name);
  return th_read_wav(path, n, rate_hz);
}

int th_save_wav(const char *path, const float *x, size_t n, int rate_hz) {
  SF_INFO info = {.samplerate = rate_hz, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
  SNDFILE *f = sf_open(path, SFM_WRITE, &info);
  if (!f) return -1;
  sf_count_t w = sf_writef_float(f, x, (sf_count_t)n);
  sf_close(f);
  return w == (sf_count_t)n ? 0 : -1;
}

void th_sine(float *x, size_t n, double freq_hz, int rate_hz, double amplitude) {
  for (size_t i = 0; i < n; i++) x[i] = (float)(amplitude * sin(2 * 3.14159265358979323846 * freq_hz * (double)i / rate_hz));
}

void th_noise(float *x, size_t n, unsigned long long seed, double amplitude) {
  parley__rng r;
  parley__rng_seed(&r, seed);
  for (size_t i = 0; i < n; i++) x[i] = (float)(amplitude * (2 * parley__rng_uniform(&r) - 1));
}

static double energy(const float *x, size_t n) {
  double e = 0;
  for (size_t i = 0; i < n; i++) e += (double)x[i] * x[i];
  return e;
}

double th_rms(const float *x, size_t n) { return n ? sqrt(energy(x, n) / (double)n) : 0; }

double th_energy_ratio_db(const float *x, const float *y, size_t n) {
  return 10 * log10((energy(x, n) + 1e-20) / (energy(y, n) + 1e-20));
}

double th_snr_db(const float *ref, const float *test, size_t n) {
  double err = 0;
  for (size_t i = 0; i < n; i++) {
    double d = (double)ref[i] - test[i];
    err += d * d;
  }
  return 10 * log10((energy(ref, n) + 1e-20) / (err + 1e-20));
}

double th_xcorr_at(const float *a, const float *b, size_t n, long lag) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < n; i++) {
    long j = (long)i + lag;
    if (j < 0) continue;
    ab += (double)a[i] * b[j];
    aa += (double)a[i] * a[i];
    bb += (double)b[j] * b[j];
  }
  return (aa > 0 && bb > 0) ? ab / sqrt(aa * bb) : 0;
}

long th_best_lag(const float *a, const float *b, size_t n, long max_lag, double *peak) {
  long best = 0;
  double best_v = -2;
  for (long lag = 0; lag <= max_lag; lag++) {
    double v = th_xcorr_at(a, b, n, lag);
    if (v > best_v) {
      best_v = v;
      best = lag;
    }
  }
  if (peak) *peak = best_v;
  return best;
}

long th_best_lag_speech(const float *a, const float *b, size_t n, long max_lag, double *peak) {
  enum { D = 8, REFINE = 16 };
  size_t nd = n / D, bd_len = (n + (size_t)max_lag) / D;
  float *ad = malloc(nd * sizeof *ad), *bd = malloc(bd_len * sizeof *bd);
  if (!ad || !bd) {
    free(ad);
    free(bd);
    return th_best_lag(a, b, n, max_lag, peak);
  }
  for (size_t i = 0; i < nd; i++) {
    float s = 0;
    for (size_t k = 0; k < D; k++) s += a[i * D + k];
    ad[i] = s;
  }
  for (size_t i = 0; i < bd_len; i++) {
    float s = 0;
    for (size_t k = 0; k < D; k++) s += b[i * D + k];
    bd[i] = s;
  }
  long coarse = th_best_lag(ad, bd, nd, max_lag / D, NULL) * D;
  free(ad);
  free(bd);
  long best = coarse;
  double best_v = -2;
  for (long lag = coarse - REFINE; lag <= coarse + REFINE; lag++) {
    if (lag < 0 || lag > max_lag) continue;
    double v = th_xcorr_at(a, b, n, lag);
    if (v > best_v) {
      best_v = v;
      best = lag;
    }
  }
  if (peak) *peak = best_v;
  return best;
}
