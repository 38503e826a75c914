/* timescale.c: WSOLA-style time-scale modification (see timescale.h). Owns the played-audio history
 * and a scratch buffer for merge, both allocated at create; everything else works in the caller's
 * buffers. Audio thread only; no allocation, locks or system calls after create. */
#include "engine/timescale.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "parley/parley.h"

#define W PARLEY__TIMESCALE_OVERLAP_SAMPLES
#define MIN_LAG PARLEY__TIMESCALE_MIN_LAG_SAMPLES
#define MAX_PITCH PARLEY__TIMESCALE_MAX_PITCH_SAMPLES
#define HIST (MAX_PITCH + W)
/* A splice needs this much waveform similarity; below it the seam would be heard (noise-like or
 * changing audio), so accelerate/stretch leave the frame alone. */
#define MIN_CORR 0.5
/* Of the correlation peaks, the longest within this share of the best: in voiced speech a multiple
 * of the period, so one splice moves the delay further and fewer splices are needed. */
#define LONG_LAG_SHARE 0.8
/* A frame this far below the speech level (-20 dB) is near-silent: accelerate cuts the most it may
 * there with a plain crossfade, which is not heard, and need not match a period. */
#define QUIET_SHARE 0.1
#define QUIET_FLOOR 1e-4 /* rms under which a frame is silent whatever the level */
#define LEVEL_DECAY_S 3.0 /* the tracked speech level falls 20 dB in this long without louder audio */
#define FADE_START 960 /* 20 ms of expansion before the level starts to fall */
#define FADE_PER_SAMPLE 0.9995f /* about -20 dB per 100 ms */
#define SILENT_ENERGY 1e-9
#define PI 3.14159265358979323846

struct parley__timescale {
  size_t max_frame;
  float hist[HIST]; /* last HIST samples played, oldest first */
  size_t hist_len;
  size_t expand_run; /* samples of the current run of expansion */
  float gain;
  float scratch[W];
  float fade[W]; /* raised-cosine fade-in, fade[k] from ~0 to ~1 */
  double level;  /* speech level: the rms of the loudest recent played frames, slowly decaying */
  double *corr;  /* lag search scratch, indexed by lag, max_frame entries */
};

parley__timescale *parley__timescale_new(size_t max_frame_samples, int *err) {
  if (max_frame_samples < 2 * W || max_frame_samples > 48000) {
    if (err) *err = PARLEY_EINVAL;
    return NULL;
  }
  parley__timescale *ts = calloc(1, sizeof *ts);
  if (!ts) {
    if (err) *err = PARLEY_ENOMEM;
    return NULL;
  }
  ts->max_frame = max_frame_samples;
  ts->gain = 1.0f;
  ts->corr = calloc(max_frame_samples, sizeof *ts->corr);
  if (!ts->corr) {
    free(ts);
    if (err) *err = PARLEY_ENOMEM;
    return NULL;
  }
  for (size_t k = 0; k < W; k++) ts->fade[k] = (float)(0.5 - 0.5 * cos(PI * ((double)k + 0.5) / W));
  if (err) *err = 0;
  return ts;
}

void parley__timescale_free(parley__timescale *ts) {
  if (!ts) return;
  free(ts->corr);
  free(ts);
}

static double dot(const float *a, const float *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}

/* The splice lag in [lo, hi] (hi < max_frame): of the peaks of the normalised correlation of x[0, W)
 * with x[lag, lag + W) that reach LONG_LAG_SHARE of the best one, the longest; x must hold hi + W
 * samples. Returns 0 if nothing reaches MIN_CORR (silence counts as a perfect match at lo). */
static size_t best_lag(parley__timescale *ts, const float *x, size_t lo, size_t hi) {
  double e0 = dot(x, x, W);
  if (e0 < SILENT_ENERGY) return lo;
  size_t best = 0;
  double best_c = MIN_CORR;
  double el = dot(x + lo, x + lo, W); /* energy of x[lag, lag + W), slid along */
  for (size_t lag = lo; lag <= hi; lag++) {
    if (lag > lo) el += (double)x[lag + W - 1] * x[lag + W - 1] - (double)x[lag - 1] * x[lag - 1];
    double c = dot(x, x + lag, W) / sqrt(e0 * (el > 0 ? el : 0) + 1e-30);
    ts->corr[lag] = c;
    if (c > best_c) {
      best_c = c;
      best = lag;
    }
  }
  /* Only peaks of the correlation: a lag beside a period matches well in a smooth waveform but
   * would splice it out of phase. */
  for (size_t lag = hi - 1; best && lag > best; lag--) {
    const double *c = ts->corr;
    if (c[lag] >= LONG_LAG_SHARE * best_c && c[lag] >= c[lag - 1] && c[lag] >= c[lag + 1]) return lag;
  }
  return best;
}

static double rms_of(const float *x, size_t n) { return n ? sqrt(dot(x, x, n) / (double)n) : 0; }

bool parley__timescale_is_quiet(const parley__timescale *ts, const float *x, size_t n) {
  if (!ts || !x || n == 0) return false;
  double rms = rms_of(x, n);
  return rms < QUIET_SHARE * ts->level || rms < QUIET_FLOOR;
}

static int lag_range(const parley__timescale *ts, size_t n, size_t max_lag, size_t *hi) {
  if (n > ts->max_frame) return PARLEY_EINVAL;
  *hi = max_lag;
  if (n < W || *hi > n - W) *hi = n < W ? 0 : n - W;
  return 0;
}

int parley__timescale_accelerate(parley__timescale *ts, const float *in, size_t n, size_t max_remove_samples,
                                 float *out) {
  size_t hi;
  if (!ts || !in || !out || in == out || lag_range(ts, n, max_remove_samples, &hi) < 0) return PARLEY_EINVAL;
  size_t lag = 0;
  if (hi >= MIN_LAG) lag = parley__timescale_is_quiet(ts, in, n) ? hi : best_lag(ts, in, MIN_LAG, hi);
  if (lag == 0) {
    memcpy(out, in, n * sizeof *out);
    return (int)n;
  }
  /* out = fade from in[0..W) into in[lag..lag+W), then in[lag+W..n). */
  for (size_t k = 0; k < W; k++) out[k] = in[k] * (1.0f - ts->fade[k]) + in[lag + k] * ts->fade[k];
  memcpy(out + W, in + lag + W, (n - lag - W) * sizeof *out);
  return (int)(n - lag);
}

int parley__timescale_stretch(parley__timescale *ts, const float *in, size_t n, size_t max_insert_samples,
                              float *out) {
  size_t hi;
  if (!ts || !in || !out || in == out || lag_range(ts, n, max_insert_samples, &hi) < 0) return PARLEY_EINVAL;
  size_t lag = hi >= MIN_LAG ? best_lag(ts, in, MIN_LAG, hi) : 0;
  if (lag == 0) {
    memcpy(out, in, n * sizeof *out);
    return (int)n;
  }
  /* out = in[0..lag), then fade from in[lag..lag+W) back into in[0..W), then in[W..n): the piece
   * in[0..lag) plays twice. */
  memcpy(out, in, lag * sizeof *out);
  for (size_t k = 0; k < W; k++) out[lag + k] = in[lag + k] * (1.0f - ts->fade[k]) + in[k] * ts->fade[k];
  memcpy(out + lag + W, in + W, (n - W) * sizeof *out);
  return (int)(n + lag);
}

void parley__timescale_played(parley__timescale *ts, const float *x, size_t n) {
  if (!ts || !x) return;
  if (n > 0) {
    ts->level *= pow(0.1, (double)n / (LEVEL_DECAY_S * 48000.0));
    double rms = rms_of(x, n);
    if (rms > ts->level) ts->level = rms;
  }
  if (n >= HIST) {
    memcpy(ts->hist, x + n - HIST, HIST * sizeof *x);
    ts->hist_len = HIST;
    return;
  }
  size_t keep = ts->hist_len + n > HIST ? HIST - n : ts->hist_len;
  memmove(ts->hist, ts->hist + ts->hist_len - keep, keep * sizeof *x);
  memcpy(ts->hist + keep, x, n * sizeof *x);
  ts->hist_len = keep + n;
}

/* Pitch lag of the history's end: the lag whose preceding W samples best match the last W. */
static size_t history_pitch(const parley__timescale *ts) {
  if (ts->hist_len < MIN_LAG + W) return 0;
  const float *end = ts->hist + ts->hist_len - W;
  size_t hi = ts->hist_len - W < MAX_PITCH ? ts->hist_len - W : MAX_PITCH;
  double e0 = dot(end, end, W);
  size_t best = MIN_LAG;
  double best_c = -2.0;
  for (size_t lag = MIN_LAG; lag <= hi; lag++) {
    double el = dot(end - lag, end - lag, W);
    double c = dot(end, end - lag, W) / sqrt(e0 * el + 1e-30);
    if (c > best_c) {
      best_c = c;
      best = lag;
    }
  }
  return best;
}

/* n samples repeating the last pitch period, faded by the running expansion gain; advances the run
 * only when commit is set. */
static void continue_history(parley__timescale *ts, float *out, size_t n, bool commit) {
  size_t p = history_pitch(ts);
  if (p == 0) {
    memset(out, 0, n * sizeof *out);
    return;
  }
  const float *src = ts->hist + ts->hist_len - p;
  float g = ts->gain;
  size_t run = ts->expand_run;
  for (size_t k = 0; k < n; k++, run++) {
    if (run >= FADE_START) g *= FADE_PER_SAMPLE;
    out[k] = src[k % p] * g;
  }
  if (commit) {
    ts->gain = g;
    ts->expand_run = run;
  }
}

int parley__timescale_expand(parley__timescale *ts, float *out, size_t n) {
  if (!ts || !out || n > ts->max_frame) return PARLEY_EINVAL;
  continue_history(ts, out, n, true);
  return (int)n;
}

void parley__timescale_merge(parley__timescale *ts, float *x, size_t n) {
  if (!ts || !x || n < W) return;
  continue_history(ts, ts->scratch, W, false);
  for (size_t k = 0; k < W; k++) x[k] = ts->scratch[k] * (1.0f - ts->fade[k]) + x[k] * ts->fade[k];
  ts->expand_run = 0;
  ts->gain = 1.0f;
}
