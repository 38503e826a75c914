/* echo_delay.c: the echo delay estimator (see echo_delay.h). Owns the far-end envelope history and the
 * per-lag correlation averages, allocated in parley__echo_delay_new; update() is arithmetic over
 * preallocated arrays and runs on the audio thread. */
#include "engine/echo_delay.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_MS 4
#define MEAN_RATE 0.02      /* envelope mean: ~200 ms, so syllables stand out of it */
#define CORR_RATE (1.0 / 750) /* correlation average: ~3 s of blocks */
#define SEARCH_BLOCKS 25    /* a search every 100 ms */
#define WARMUP_BLOCKS 125   /* 0.5 s of far-end signal before the first estimate */
#define ACTIVE_LEVEL 3e-4   /* far-end RMS above -70 dBFS counts as signal */
#define MIN_PEAK 0.15       /* normalised correlation the peak must reach */
#define ONSET_FRACTION 0.5 /* the onset: the earliest lag before the peak above this share of it */
#define AGREE 3             /* searches in a row within AGREE_BLOCKS of each other */
#define AGREE_BLOCKS 2

struct parley__echo_delay {
  size_t block;           /* samples per envelope block */
  size_t lags;            /* lags searched, in blocks (0..lags-1) */
  float *far_hist;        /* far envelope (mean removed), ring of `lags` blocks */
  double *corr;           /* per-lag average of near(t) * far(t - lag) */
  size_t pos;             /* blocks seen */
  double far_acc, near_acc;
  size_t acc_n;           /* samples in the current block */
  double far_mean, near_mean, far_pow, near_pow;
  size_t active_blocks;   /* blocks with far-end signal */
  long candidate;         /* last search's onset (blocks), -1 none */
  int agree;
  long estimate;          /* samples, -1 none */
};

parley__echo_delay *parley__echo_delay_new(int rate_hz, int max_delay_ms) {
  if (rate_hz < 8000 || rate_hz > 96000 || max_delay_ms < 0 || max_delay_ms > 2000) return NULL;
  parley__echo_delay *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  d->block = (size_t)rate_hz * BLOCK_MS / 1000;
  d->lags = (size_t)max_delay_ms / BLOCK_MS + 1;
  d->far_hist = calloc(d->lags, sizeof *d->far_hist);
  d->corr = calloc(d->lags, sizeof *d->corr);
  if (!d->far_hist || !d->corr) {
    parley__echo_delay_free(d);
    return NULL;
  }
  parley__echo_delay_reset(d);
  return d;
}

void parley__echo_delay_free(parley__echo_delay *d) {
  if (!d) return;
  free(d->far_hist);
  free(d->corr);
  free(d);
}

void parley__echo_delay_reset(parley__echo_delay *d) {
  if (!d) return;
  memset(d->far_hist, 0, d->lags * sizeof *d->far_hist);
  memset(d->corr, 0, d->lags * sizeof *d->corr);
  d->pos = d->acc_n = d->active_blocks = 0;
  d->far_acc = d->near_acc = d->far_mean = d->near_mean = d->far_pow = d->near_pow = 0;
  d->candidate = d->estimate = -1;
  d->agree = 0;
}

/* The onset of the correlation peak in blocks, or -1 when no peak stands out. */
static long search(const parley__echo_delay *d) {
  size_t best = 0;
  for (size_t l = 1; l < d->lags; l++)
    if (d->corr[l] > d->corr[best]) best = l;
  double norm = sqrt(d->far_pow * d->near_pow);
  if (norm <= 0 || d->corr[best] < MIN_PEAK * norm) return -1;
  size_t on = best;
  while (on > 0 && d->corr[on - 1] > d->corr[best] * ONSET_FRACTION) on--;
  return (long)on;
}

static void block_done(parley__echo_delay *d) {
  double far = sqrt(d->far_acc / (double)d->block), near = sqrt(d->near_acc / (double)d->block);
  d->far_acc = d->near_acc = 0;
  d->acc_n = 0;
  if (d->pos == 0) d->far_mean = far, d->near_mean = near;
  d->far_mean += MEAN_RATE * (far - d->far_mean);
  d->near_mean += MEAN_RATE * (near - d->near_mean);
  double fh = far - d->far_mean, nh = near - d->near_mean;
  d->far_hist[d->pos % d->lags] = (float)fh;
  d->pos++;
  if (far > ACTIVE_LEVEL) d->active_blocks++;
  /* Lag l pairs this near block with the far block l blocks ago (blocks before the start are 0). */
  size_t avail = d->pos < d->lags ? d->pos : d->lags;
  for (size_t l = 0; l < avail; l++) {
    double f = d->far_hist[(d->pos - 1 - l) % d->lags];
    d->corr[l] += CORR_RATE * (nh * f - d->corr[l]);
  }
  d->far_pow += CORR_RATE * (fh * fh - d->far_pow);
  d->near_pow += CORR_RATE * (nh * nh - d->near_pow);
  if (d->pos % SEARCH_BLOCKS || d->active_blocks < WARMUP_BLOCKS || far <= ACTIVE_LEVEL) return;
  long on = search(d);
  if (on < 0) {
    d->agree = 0;
    return;
  }
  d->agree = d->candidate >= 0 && labs(on - d->candidate) <= AGREE_BLOCKS ? d->agree + 1 : 1;
  d->candidate = on;
  if (d->agree >= AGREE) d->estimate = on * (long)d->block;
}

void parley__echo_delay_update(parley__echo_delay *d, const float *far, const float *near, size_t n) {
  for (size_t i = 0; i < n; i++) {
    d->far_acc += (double)far[i] * far[i];
    d->near_acc += (double)near[i] * near[i];
    if (++d->acc_n == d->block) block_done(d);
  }
}

long parley__echo_delay_get(const parley__echo_delay *d) { return d ? d->estimate : -1; }
