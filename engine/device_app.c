/* device_app.c: the APP backend. The app owns the sound I/O (e.g. a mobile audio callback) and meets
 * the engine through two SPSC rings of frames (base/ring.h), one slot per interleaved frame:
 *   capture: app thread --push--> ring --tick--> process `in`
 *   playout: process `out` --tick--> ring --pull--> app thread
 * The engine side runs one period per parley__device_step (the caller's tick). Owns both rings,
 * allocated at new; push, pull and the tick are real-time safe (ring slot copies only).
 * A tick with too few captured frames fills the gap with silence (underrun_frames); playout frames
 * that do not fit because the app is not pulling are dropped (overrun_frames).
 * With cfg.app_trim_backlog, each ring's consumer (the tick for capture, pull for playout) skips a
 * standing backlog: the minimum left over after its reads, once it stayed above zero for a whole
 * window of reads (device.h). Only the consumer pops, so the rings stay single-producer/consumer.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/device_backend.h"
#include "base/ring.h"
#include "parley/parley.h"

/* Standing-backlog tracker of one ring, owned by its consumer thread. */
typedef struct backlog {
  size_t min_left;
  unsigned reads;
} backlog;

typedef struct app_state {
  parley__ring *capture;
  parley__ring *playout;
  backlog cap_bl; /* tick thread */
  backlog play_bl; /* app's playout thread */
} app_state;

/* After a read that left `left` frames: how many to skip now. A read that empties the ring ends the
 * run; once PARLEY__DEVICE_APP_TRIM_WINDOW reads in a row left frames over, the fewest of them is
 * standing backlog. Counting runs (not fixed windows of reads) trims a backlog that a stall left
 * behind exactly a window after it formed, not up to two windows later. */
static size_t backlog_excess(backlog *b, size_t left) {
  if (left == 0) {
    b->reads = 0;
    b->min_left = SIZE_MAX;
    return 0;
  }
  if (left < b->min_left) b->min_left = left;
  if (++b->reads < PARLEY__DEVICE_APP_TRIM_WINDOW) return 0;
  size_t x = b->min_left;
  b->reads = 0;
  b->min_left = SIZE_MAX;
  return x;
}

static void trim(parley__device *d, parley__ring *r, backlog *b) {
  if (!d->cfg.app_trim_backlog) return;
  size_t x = backlog_excess(b, parley__ring_count(r));
  size_t k = 0;
  for (; k < x && parley__ring_read_slot(r); k++) parley__ring_release(r);
  if (k) atomic_fetch_add_explicit(&d->trimmed_frames, k, memory_order_relaxed);
}

static size_t pow2_at_least(size_t n) {
  size_t p = 2;
  while (p < n) p <<= 1;
  return p;
}

static int app_open(parley__device *d) {
  app_state *s = calloc(1, sizeof(app_state));
  if (!s) return PARLEY_ENOMEM;
  s->cap_bl.min_left = s->play_bl.min_left = SIZE_MAX;
  d->impl = s;
  return 0;
}

static int app_prepare(parley__device *d) {
  app_state *s = d->impl;
  size_t frames = d->cfg.app_ring_frames ? d->cfg.app_ring_frames : 8 * d->period_frames;
  size_t cap = pow2_at_least(frames);
  size_t slot = sizeof(float) * (size_t)d->channels;
  s->capture = parley__ring_new(slot, cap);
  s->playout = parley__ring_new(slot, cap);
  return s->capture && s->playout ? 0 : PARLEY_ENOMEM;
}

static void app_close(parley__device *d) {
  app_state *s = d->impl;
  if (!s) return;
  parley__ring_free(s->capture);
  parley__ring_free(s->playout);
  free(s);
  d->impl = NULL;
}

static int app_period(parley__device *d) {
  app_state *s = d->impl;
  size_t ch = (size_t)d->channels, n = d->period_frames, got = 0;
  for (; got < n; got++)
    if (parley__ring_pop(s->capture, d->in_buf + got * ch) != 0) break;
  if (got < n) {
    memset(d->in_buf + got * ch, 0, (n - got) * ch * sizeof(float));
    atomic_fetch_add_explicit(&d->underrun_frames, n - got, memory_order_relaxed);
  }
  trim(d, s->capture, &s->cap_bl);
  memset(d->out_buf, 0, n * ch * sizeof(float));
  d->cfg.process(d->cfg.user, d->in_buf, d->out_buf, n);
  parley__device_count_frames(d, n);
  size_t put = 0;
  for (; put < n; put++)
    if (parley__ring_push(s->playout, d->out_buf + put * ch) != 0) break;
  if (put < n) atomic_fetch_add_explicit(&d->overrun_frames, n - put, memory_order_relaxed);
  return PARLEY__DEVICE_PERIOD_MORE;
}

int parley__device_app_push(parley__device *d, const float *in, size_t frames) {
  if (!d || (!in && frames)) return PARLEY_EINVAL;
  if (d->cfg.backend != PARLEY__DEVICE_APP) return PARLEY_ESTATE;
  if (frames == 0) return 0;
  app_state *s = d->impl;
  size_t ch = (size_t)d->channels, i = 0;
  if (frames > (size_t)INT_MAX) frames = INT_MAX;
  for (; i < frames; i++)
    if (parley__ring_push(s->capture, in + i * ch) != 0) break;
  return (int)i;
}

int parley__device_app_pull(parley__device *d, float *out, size_t frames) {
  if (!d || (!out && frames)) return PARLEY_EINVAL;
  if (d->cfg.backend != PARLEY__DEVICE_APP) return PARLEY_ESTATE;
  if (frames == 0) return 0;
  app_state *s = d->impl;
  size_t ch = (size_t)d->channels, i = 0;
  if (frames > (size_t)INT_MAX) frames = INT_MAX;
  for (; i < frames; i++)
    if (parley__ring_pop(s->playout, out + i * ch) != 0) break;
  memset(out + i * ch, 0, (frames - i) * ch * sizeof(float));
  trim(d, s->playout, &s->play_bl);
  return (int)i;
}

const parley__device_ops parley__device_app_ops = {
    .open = app_open,
    .prepare = app_prepare,
    .period = app_period,
    .close = app_close,
};
